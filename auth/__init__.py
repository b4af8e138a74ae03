"""Who may log in: a principal, or the same failure for every reason.

Authenticators return a Principal or raise AuthFailed; the failure never says
whether the user exists (the protocol answers both cases alike).
"""



class Principal:
    """A logged-in system user: whose mail to serve and whose rights to take.

    A plain immutable class, not a dataclass: importing dataclasses costs
    several milliseconds on every connection's start-up path.
    """

    __slots__ = ("name", "uid", "gid", "home")

    def __init__(self, name, uid, gid, home):
        for field, value in zip(self.__slots__, (name, uid, gid, home)):
            object.__setattr__(self, field, value)

    def __setattr__(self, field, value):
        raise AttributeError("Principal is immutable")

    def _fields(self):
        return (self.name, self.uid, self.gid, self.home)

    def __eq__(self, other):
        return isinstance(other, Principal) and self._fields() == other._fields()

    def __hash__(self):
        return hash(self._fields())

    def __repr__(self):
        return "Principal(name=%r, uid=%d, gid=%d, home=%r)" % self._fields()


class AuthFailed(Exception):
    """The credentials were not accepted (unknown user and wrong password alike).

    The text is for syslog only, never for the client.
    """


class BreakInAttempt(AuthFailed):
    """A user name no client sends by mistake: over 64 bytes, or with control characters.

    UW logs such a name at ALERT as a "SYSTEM BREAK-IN ATTEMPT", and the
    session may not log in again (servers.md §3.3, §4.3). The client is
    answered as for any other failure.
    """

    def __init__(self, reason, name):
        super().__init__(reason)
        self.name = name


def challenge_mechanisms_enabled(config):
    """True when APOP and CRAM-MD5 can be offered: plaintext secrets are on hand.

    Light enough for the greeting: only the secrets file's presence is checked.
    """
    from auth import secretsfile

    return secretsfile.is_present(config.cram_md5_file) or bool(config.passwd_file)
