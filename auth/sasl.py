"""SASL server mechanisms (RFC 4422): PLAIN, LOGIN and CRAM-MD5, without I/O.

The protocol layer decodes base64, handles the client's '*' cancel, and calls
`respond` with each client message (None when the client gave no initial
response). `respond` returns a Challenge to send, or the Principal when the
exchange is done; it raises AuthFailed for wrong credentials and
MalformedResponse for messages that break the mechanism's syntax.
"""

import os
import re
import time
from collections import namedtuple

from auth import AuthFailed

PLAIN = "PLAIN"
LOGIN = "LOGIN"
CRAM_MD5 = "CRAM-MD5"

# UW's AUTH=LOGIN prompts, NUL included (servers.md §4.5).
LOGIN_USER_PROMPT = b"User Name\x00"
LOGIN_PASSWORD_PROMPT = b"Password\x00"

HEX_DIGEST = re.compile(r"[0-9a-fA-F]{32}")


class UnknownMechanism(Exception):
    """The client named a mechanism this server does not offer."""


class MalformedResponse(Exception):
    """A client message does not follow the mechanism's syntax."""


class Challenge(namedtuple("Challenge", "data")):
    """Bytes the server sends to the client before its next response."""

    __slots__ = ()


class Mechanism:
    """One exchange in progress; `respond` feeds it the client's next message.

    The steps are a generator that yields each Challenge and returns the
    Principal, so each mechanism reads top to bottom like its RFC.
    """

    def __init__(self, name, steps):
        self.name = name
        self._steps = steps
        self._finished = False
        # Run up to the point where the first client message (or None) is taken.
        next(self._steps)

    def respond(self, data):
        """Take the client's next message; return a Challenge or the Principal."""
        if self._finished:
            raise RuntimeError("SASL exchange already finished")
        try:
            return self._steps.send(data)
        except StopIteration as done:
            self._finished = True
            return done.value
        except BaseException:
            # A failed exchange is over; it is never resumed.
            self._finished = True
            raise


def _utf8(data, what):
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        raise MalformedResponse("%s is not UTF-8" % what) from None


def _required(data, what):
    if data is None:
        raise MalformedResponse("%s is missing" % what)
    return data


def _plain_steps(authenticator, rhost):
    """RFC 4616: one message `authzid NUL authcid NUL passwd`."""
    data = yield
    if data is None:
        # No initial response: ask for it with an empty challenge (RFC 4422 §5).
        data = yield Challenge(b"")
    fields = _required(data, "PLAIN response").split(b"\x00")
    if len(fields) != 3:
        raise MalformedResponse("PLAIN response needs exactly two NULs")
    authzid, authcid, password = fields
    if not authcid or not password:
        raise MalformedResponse("PLAIN response has an empty user name or password")
    user = _utf8(authcid, "PLAIN user name")
    # Acting as another user (UW's mailadm override) is not offered.
    if authzid and _utf8(authzid, "PLAIN authorization identity") != user:
        raise AuthFailed("PLAIN authorization identity differs from the user")
    return authenticator.check_password(user, password, rhost)


def _login_steps(authenticator, rhost):
    """The non-standard LOGIN mechanism: user name, then password, each prompted as UW does."""
    data = yield
    if data is None:
        data = yield Challenge(LOGIN_USER_PROMPT)
    if not _required(data, "LOGIN user name"):
        raise MalformedResponse("LOGIN user name is empty")
    # Old clients are not strict about UTF-8; keep their bytes as they are.
    user = data.decode("utf-8", "surrogateescape")
    password = yield Challenge(LOGIN_PASSWORD_PROMPT)
    return authenticator.check_password(user, _required(password, "LOGIN password"), rhost)


def _cram_md5_steps(authenticator, challenge):
    """RFC 2195: the server's challenge, then `user SP hexdigest`."""
    data = yield
    # CRAM-MD5 starts with the server; the client has nothing to say first.
    if data is not None:
        raise MalformedResponse("CRAM-MD5 takes no initial response")
    data = yield Challenge(challenge)
    text = _required(data, "CRAM-MD5 response").decode("utf-8", "surrogateescape")
    # Split at the LAST space: the digest has none, a user name might.
    user, space, digest = text.rpartition(" ")
    if not space or not user or not HEX_DIGEST.fullmatch(digest):
        raise MalformedResponse("CRAM-MD5 response is not 'user hexdigest'")
    return authenticator.check_cram_md5(user, challenge, digest)


def plain(authenticator, rhost=None):
    """A PLAIN exchange."""
    return Mechanism(PLAIN, _plain_steps(authenticator, rhost))


def login(authenticator, rhost=None):
    """A LOGIN exchange."""
    return Mechanism(LOGIN, _login_steps(authenticator, rhost))


def cram_md5(authenticator, challenge):
    """A CRAM-MD5 exchange with the given challenge bytes."""
    return Mechanism(CRAM_MD5, _cram_md5_steps(authenticator, challenge))


def cram_md5_challenge(hostname):
    """UW's challenge: `<decimal pid.decimal time@hostname>` as bytes."""
    return ("<%d.%d@%s>" % (os.getpid(), int(time.time()), hostname)).encode("ascii", "replace")


def start(name, authenticator, hostname, rhost=None):
    """Begin the exchange for mechanism name (any case); UnknownMechanism for others."""
    wanted = name.upper()
    if wanted == PLAIN:
        return plain(authenticator, rhost)
    if wanted == LOGIN:
        return login(authenticator, rhost)
    if wanted == CRAM_MD5:
        return cram_md5(authenticator, cram_md5_challenge(hostname))
    raise UnknownMechanism(name)


def mechanisms(authenticator, plaintext_allowed):
    """The mechanism names to advertise, in order."""
    names = [PLAIN, LOGIN] if plaintext_allowed else []
    if authenticator.challenge_mechanisms_enabled():
        names.append(CRAM_MD5)
    return names


# A client message that was not valid base64 (RFC 4422 §5: the exchange fails).
INVALID = object()


def decode_response(text):
    """A client's base64 message decoded, or INVALID."""
    import base64
    import binascii

    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError, TypeError):
        return INVALID


def run_exchange(mechanism, data, ask):
    """Drive a mechanism to its Principal.

    `data` is the decoded initial response (None if none was sent);
    `ask(challenge)` sends a challenge and returns the client's decoded
    answer (or INVALID), or raises to cancel in the protocol's own way.
    """
    while True:
        if data is INVALID:
            raise AuthFailed("client response is not base64")
        try:
            result = mechanism.respond(data)
        except MalformedResponse as error:
            raise AuthFailed("malformed SASL response: %s" % error) from None
        if not isinstance(result, Challenge):
            return result
        data = ask(result.data)
