"""Who may log in: a principal, or the same failure for every reason.

Authenticators return a Principal or raise AuthFailed; the failure never says
whether the user exists (the protocol answers both cases alike).
"""

from dataclasses import dataclass


@dataclass(frozen=True)
class Principal:
    """A logged-in system user: whose mail to serve and whose rights to take."""

    name: str
    uid: int
    gid: int
    home: str


class AuthFailed(Exception):
    """The credentials were not accepted (unknown user and wrong password alike).

    The text is for syslog only, never for the client.
    """
