"""SASL state machines: PLAIN (RFC 4616), LOGIN (UW prompts), CRAM-MD5 (RFC 2195), and advertising."""

import hashlib
import hmac
import os
import re

import pytest

from auth import AuthFailed, Principal, sasl
from auth.authenticator import Authenticator
from server.config import Config

ALICE = Principal("alice", 5001, 5001, "/srv/mail/alice")
# RFC 2195's challenge ends in ".net" (its base64 says so); ".com" gives another digest.
CRAM_CHALLENGE = b"<1896.697170952@postoffice.reston.mci.net>"
CRAM_DIGEST = "b913a602c7eda7a495b4e6e7334d3890"


class RecordingAuthenticator:
    """Accepts alice/wonderland and tim's RFC 2195 digest; records what it was asked."""

    def __init__(self, challenge_enabled=True):
        self.calls = []
        self.challenge_enabled = challenge_enabled

    def challenge_mechanisms_enabled(self):
        return self.challenge_enabled

    def check_password(self, user, password, rhost=None):
        self.calls.append(("password", user, password, rhost))
        if (user, bytes(password)) != ("alice", b"wonderland"):
            raise AuthFailed("wrong")
        return ALICE

    def check_cram_md5(self, user, challenge, hexdigest):
        self.calls.append(("cram", user, challenge, hexdigest))
        expected = hmac.new(b"tanstaaftanstaaf", challenge, hashlib.md5).hexdigest()
        if (user, hexdigest) != ("tim", expected):
            raise AuthFailed("wrong")
        return ALICE


def _run(mechanism, messages):
    """Feed messages in turn; return the list of results (Challenges, then the Principal)."""
    return [mechanism.respond(message) for message in messages]


# --- PLAIN ----------------------------------------------------------------


@pytest.mark.parametrize(
    "messages, challenges",
    [
        ([b"\x00alice\x00wonderland"], []),
        ([b"alice\x00alice\x00wonderland"], []),
        ([None, b"\x00alice\x00wonderland"], [b""]),
    ],
)
def test_plain_success(messages, challenges):
    """PLAIN accepts `[authzid] NUL authcid NUL passwd`, with or without an initial response."""
    auth = RecordingAuthenticator()
    results = _run(sasl.start("plain", auth, "host", rhost="192.0.2.1"), messages)
    assert results == [sasl.Challenge(c) for c in challenges] + [ALICE]
    assert auth.calls == [("password", "alice", b"wonderland", "192.0.2.1")]


@pytest.mark.parametrize(
    "message",
    [
        b"",
        b"alice",
        b"alice\x00wonderland",
        b"\x00alice\x00wonder\x00land",
        b"\x00\x00wonderland",
        b"\x00alice\x00",
        b"\x00\xffalice\x00wonderland",
        b"\xff\x00alice\x00wonderland",
    ],
)
def test_plain_malformed(message):
    """Wrong NUL count, empty user or password and non-UTF-8 identities are syntax errors."""
    auth = RecordingAuthenticator()
    with pytest.raises(sasl.MalformedResponse):
        sasl.start("PLAIN", auth, "host").respond(message)
    assert auth.calls == []


def test_plain_different_authzid_fails():
    """Asking to act as another user is refused as a failed authentication."""
    auth = RecordingAuthenticator()
    with pytest.raises(AuthFailed):
        sasl.start("PLAIN", auth, "host").respond(b"root\x00alice\x00wonderland")
    assert auth.calls == []


def test_plain_wrong_password_fails():
    """A wrong password raises AuthFailed from the authenticator."""
    with pytest.raises(AuthFailed):
        sasl.start("PLAIN", RecordingAuthenticator(), "host").respond(b"\x00alice\x00nope")


def test_plain_password_keeps_its_bytes():
    """PLAIN passes the password as the exact bytes sent, spaces and all."""
    auth = RecordingAuthenticator()
    with pytest.raises(AuthFailed):
        sasl.start("PLAIN", auth, "host").respond(b"\x00alice\x00 with space\xff")
    assert auth.calls[0][2] == b" with space\xff"


# --- LOGIN ----------------------------------------------------------------


def test_login_prompts_like_uw():
    """LOGIN asks `User Name\\0` then `Password\\0` and then authenticates."""
    auth = RecordingAuthenticator()
    results = _run(sasl.start("login", auth, "host"), [None, b"alice", b"wonderland"])
    assert results == [sasl.Challenge(b"User Name\x00"), sasl.Challenge(b"Password\x00"), ALICE]


def test_login_initial_response_is_the_user_name():
    """An initial response to LOGIN is taken as the user name, skipping the first prompt."""
    results = _run(sasl.start("LOGIN", RecordingAuthenticator(), "host"), [b"alice", b"wonderland"])
    assert results == [sasl.Challenge(b"Password\x00"), ALICE]


@pytest.mark.parametrize("messages", [[None, b""], [b""]])
def test_login_empty_user_name_is_malformed(messages):
    """An empty user name ends LOGIN with a syntax error."""
    mechanism = sasl.start("LOGIN", RecordingAuthenticator(), "host")
    with pytest.raises(sasl.MalformedResponse):
        _run(mechanism, messages)


def test_login_wrong_password_fails():
    """A wrong LOGIN password raises AuthFailed."""
    with pytest.raises(AuthFailed):
        _run(sasl.start("LOGIN", RecordingAuthenticator(), "host"), [b"alice", b"nope"])


# --- CRAM-MD5 -------------------------------------------------------------


def test_cram_md5_challenge_format():
    """The challenge is `<decimal pid.decimal time@hostname>`, as UW sends it."""
    challenge = sasl.start("cram-md5", RecordingAuthenticator(), "mail.example").respond(None)
    match = re.fullmatch(rb"<(\d+)\.(\d+)@mail\.example>", challenge.data)
    assert match and int(match.group(1)) == os.getpid()


def test_cram_md5_round_trip_with_generated_challenge():
    """A client answering the generated challenge with the right HMAC is accepted."""
    auth = RecordingAuthenticator()
    mechanism = sasl.start("CRAM-MD5", auth, "host")
    challenge = mechanism.respond(None).data
    digest = hmac.new(b"tanstaaftanstaaf", challenge, hashlib.md5).hexdigest()
    assert mechanism.respond(b"tim " + digest.encode()) == ALICE


def test_cram_md5_rfc2195_vector_with_real_authenticator(tmp_path):
    """RFC 2195's example exchange succeeds end to end through the real Authenticator."""
    users = tmp_path / "users"
    users.write_text("tim:{PLAIN}tanstaaftanstaaf:5003:5003::/srv/mail/tim:/bin/false\n")
    auth = Authenticator(Config({"cram_md5_file": "", "passwd_file": str(users)}))
    mechanism = sasl.cram_md5(auth, CRAM_CHALLENGE)
    assert mechanism.respond(None) == sasl.Challenge(CRAM_CHALLENGE)
    assert mechanism.respond(b"tim " + CRAM_DIGEST.encode()).name == "tim"


def test_cram_md5_user_name_split_at_last_space():
    """The response splits at the last space, so the user part may itself contain spaces."""
    auth = RecordingAuthenticator()
    mechanism = sasl.cram_md5(auth, CRAM_CHALLENGE)
    mechanism.respond(None)
    with pytest.raises(AuthFailed):
        mechanism.respond(b"tim smith " + CRAM_DIGEST.encode())
    assert auth.calls == [("cram", "tim smith", CRAM_CHALLENGE, CRAM_DIGEST)]


@pytest.mark.parametrize(
    "response",
    [
        b"tim",
        b"tim" + CRAM_DIGEST.encode(),
        b" " + CRAM_DIGEST.encode(),
        b"tim " + CRAM_DIGEST.encode()[:-1],
        b"tim " + CRAM_DIGEST.encode() + b"0",
        b"tim " + b"g" * 32,
        b"tim " + CRAM_DIGEST.encode() + b" ",
    ],
)
def test_cram_md5_malformed(response):
    """A response that is not `user SP 32-hex-digits` is a syntax error."""
    auth = RecordingAuthenticator()
    mechanism = sasl.cram_md5(auth, CRAM_CHALLENGE)
    mechanism.respond(None)
    with pytest.raises(sasl.MalformedResponse):
        mechanism.respond(response)
    assert auth.calls == []


def test_cram_md5_initial_response_is_malformed():
    """CRAM-MD5 is server-first; a client initial response is a syntax error."""
    with pytest.raises(sasl.MalformedResponse):
        sasl.start("CRAM-MD5", RecordingAuthenticator(), "host").respond(b"tim x")


# --- the exchange as a whole ----------------------------------------------


@pytest.mark.parametrize("name", ["GSSAPI", "ANONYMOUS", "XOAUTH2", "", "PLAIN "])
def test_unknown_mechanism(name):
    """Mechanisms other than PLAIN, LOGIN and CRAM-MD5 raise UnknownMechanism."""
    with pytest.raises(sasl.UnknownMechanism):
        sasl.start(name, RecordingAuthenticator(), "host")


def test_finished_exchange_cannot_continue():
    """After success the exchange refuses further messages instead of restarting."""
    mechanism = sasl.start("PLAIN", RecordingAuthenticator(), "host")
    mechanism.respond(b"\x00alice\x00wonderland")
    with pytest.raises(RuntimeError):
        mechanism.respond(b"\x00alice\x00wonderland")


def test_failed_exchange_cannot_continue():
    """After a failure the exchange is over; a further message cannot yield a principal."""
    mechanism = sasl.start("PLAIN", RecordingAuthenticator(), "host")
    with pytest.raises(AuthFailed):
        mechanism.respond(b"\x00alice\x00nope")
    with pytest.raises(RuntimeError):
        mechanism.respond(b"\x00alice\x00wonderland")


@pytest.mark.parametrize(
    "plaintext_allowed, challenge_enabled, expected",
    [
        (True, True, ["PLAIN", "LOGIN", "CRAM-MD5"]),
        (True, False, ["PLAIN", "LOGIN"]),
        (False, True, ["CRAM-MD5"]),
        (False, False, []),
    ],
)
def test_mechanisms_to_advertise(plaintext_allowed, challenge_enabled, expected):
    """PLAIN and LOGIN only when plaintext is allowed; CRAM-MD5 only with shared secrets."""
    auth = RecordingAuthenticator(challenge_enabled)
    assert sasl.mechanisms(auth, plaintext_allowed) == expected
