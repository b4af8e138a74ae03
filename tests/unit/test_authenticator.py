"""Authenticator: which source decides a login, UW's retry rules, APOP and CRAM-MD5.

PAM itself is replaced by a fake module here; tests/interop/test_pam_real.py
runs the real one.
"""

import hashlib
import os
import pwd
import sys
import types

import pytest

from auth import AuthFailed, Principal
from auth.authenticator import Authenticator
from server.config import Config

NOBODY = pwd.getpwnam("nobody")
NOBODY_PRINCIPAL = Principal("nobody", NOBODY.pw_uid, NOBODY.pw_gid, NOBODY.pw_dir)

# RFC 1939 section 7 (APOP) and RFC 2195 section 2 (CRAM-MD5) examples.
APOP_TIMESTAMP = "<1896.697170952@dbc.mtview.ca.us>"
APOP_SECRET = "tanstaaf"
APOP_DIGEST = "c4c9334bac560ecc979e58001b3e22fb"
# RFC 2195's challenge ends in ".net" (its base64 says so); ".com" gives another digest.
CRAM_CHALLENGE = b"<1896.697170952@postoffice.reston.mci.net>"
CRAM_SECRET = "tanstaaftanstaaf"
CRAM_DIGEST = "b913a602c7eda7a495b4e6e7334d3890"


class FakePam:
    """Stands in for python-pam: accepts the passwords in `accept`, records every call."""

    def __init__(self):
        self.accept = {}
        self.calls = []

    def module(self):
        fake = self

        class Handle:
            reason = None

            def authenticate(self, user, password, service="login"):
                fake.calls.append((user, password, service))
                if b"\x00" in password:
                    raise ValueError("NUL")
                accepted = fake.accept.get(user) == password
                self.reason = "Success" if accepted else "Authentication failure"
                return accepted

        return types.SimpleNamespace(pam=Handle)


@pytest.fixture
def fake_pam(monkeypatch):
    """A fake `pam` module, installed where `import pam` will find it."""
    fake = FakePam()
    monkeypatch.setitem(sys.modules, "pam", fake.module())
    return fake


@pytest.fixture
def log():
    """A log callback that keeps (priority, message) pairs."""
    messages = []

    def record(priority, message):
        messages.append((priority, message))

    record.messages = messages
    return record


def _secrets_file(tmp_path, text, mode=0o600):
    path = tmp_path / "cram-md5.pwd"
    path.write_text(text)
    os.chmod(path, mode)
    return str(path)


def _passwd_file(tmp_path, text):
    path = tmp_path / "users"
    path.write_text(text)
    return str(path)


def _authenticator(cram_md5_file="", passwd_file="", log=None, service=None):
    config = Config({"cram_md5_file": cram_md5_file, "passwd_file": passwd_file})
    return Authenticator(config, log=log, service=service)


# --- which mechanisms are on ---------------------------------------------


def test_challenge_mechanisms_off_without_secrets(tmp_path):
    """Without a secrets file or passwd_file there is nothing to check APOP or CRAM-MD5 against."""
    assert not _authenticator(str(tmp_path / "absent")).challenge_mechanisms_enabled()


def test_challenge_mechanisms_on_when_secrets_file_present(tmp_path):
    """The secrets file's presence, even when empty, turns APOP and CRAM-MD5 on."""
    assert _authenticator(_secrets_file(tmp_path, "")).challenge_mechanisms_enabled()


def test_challenge_mechanisms_on_even_for_refused_secrets_file(tmp_path):
    """A refused secrets file still counts as present: advertised, then failing closed."""
    assert _authenticator(_secrets_file(tmp_path, "", 0o644)).challenge_mechanisms_enabled()


def test_challenge_mechanisms_on_with_passwd_file(tmp_path):
    """A configured passwd_file holds plaintext secrets, so APOP and CRAM-MD5 work."""
    assert _authenticator(passwd_file=_passwd_file(tmp_path, "")).challenge_mechanisms_enabled()


# --- the secrets file decides plaintext logins ----------------------------


@pytest.mark.parametrize(
    "user, password",
    [
        ("nobody", "s3cret pass"),
        ("NOBODY", "s3cret pass"),
        ("nobody", " s3cret pass"),
        ("nobody", b"s3cret pass"),
    ],
)
def test_secrets_file_accepts_its_password(tmp_path, fake_pam, user, password):
    """A listed system user logs in with the file's secret (case fallback, one leading space dropped)."""
    auth = _authenticator(_secrets_file(tmp_path, "nobody\ts3cret pass\n"))
    assert auth.check_password(user, password) == NOBODY_PRINCIPAL
    assert fake_pam.calls == []


@pytest.mark.parametrize(
    "user, password",
    [
        ("nobody", "wrong"),
        ("nobody", "  s3cret pass"),
        ("nobody", "s3cret pass "),
        ("nobody", ""),
        ("daemon", "system password"),
        ("root", "rootpw"),
        ("ghost-user-pyimapd", "ghost"),
    ],
)
def test_secrets_file_refuses_everything_else(tmp_path, fake_pam, user, password):
    """Wrong secrets, unlisted users (even with a PAM-valid password), root and non-system users fail."""
    fake_pam.accept = {"daemon": b"system password"}
    text = "nobody\ts3cret pass\nroot\trootpw\nghost-user-pyimapd\tghost\n"
    auth = _authenticator(_secrets_file(tmp_path, text))
    with pytest.raises(AuthFailed) as failure:
        auth.check_password(user, password)
    assert fake_pam.calls == []
    if password:
        assert password not in str(failure.value)


def test_secret_with_leading_space_matches_first_try(tmp_path, fake_pam):
    """A secret that itself starts with a space matches as given."""
    auth = _authenticator(_secrets_file(tmp_path, "nobody\t lead\n"))
    assert auth.check_password("nobody", " lead") == NOBODY_PRINCIPAL


def test_refused_secrets_file_fails_every_login_and_logs(tmp_path, fake_pam, log):
    """A world-readable secrets file fails closed: no login, not even through PAM, and an error is logged."""
    fake_pam.accept = {"nobody": b"right"}
    auth = _authenticator(_secrets_file(tmp_path, "nobody\tright\n", 0o644), log=log)
    with pytest.raises(AuthFailed):
        auth.check_password("nobody", "right")
    with pytest.raises(AuthFailed):
        auth.check_apop("nobody", APOP_TIMESTAMP, APOP_DIGEST)
    assert fake_pam.calls == []
    assert log.messages and all(priority == "err" for priority, _ in log.messages)
    assert not any("right" in message for _, message in log.messages)


# --- the passwd_file ------------------------------------------------------

VIRTUAL = """\
alice:{PLAIN}wonderland:5001:5001::/srv/mail/alice:/bin/false
mrose:{PLAIN}tanstaaf:5002:5002::/srv/mail/mrose:/bin/false
tim:{PLAIN}tanstaaftanstaaf:5003:5003::/srv/mail/tim:/bin/false
toor:{PLAIN}rootly:0:0::/root:/bin/sh
hashed:{SHA512-CRYPT}$6$x$y:5004:5004::/srv/mail/hashed:/bin/false
nobody:{PLAIN}virtual-nobody:5005:5005::/srv/mail/nobody:/bin/false
crypted:{SHA512-CRYPT}%s:5006:5006::/srv/mail/crypted:/bin/false
crammed:{CRAM-MD5}%s:5007:5007::/srv/mail/crammed:/bin/false
odd:{SSHA512}c2VjcmV0:5008:5008::/srv/mail/odd:/bin/false
""" % (
    # doveadm pw -p tanstaaftanstaaf -s SHA512-CRYPT, and -s CRAM-MD5 (tests/unit/test_schemes.py)
    "$6$4.R6ps3cAb1BwyHL$no92ozAJN.EzlOXAPSFG1LZCelEqCLlXAZ19wuX.4pH2L5xKVs21D24abyK4GIMo.jn56SJzaV7xrmHZWV.aW.",
    "d06d4e1b26fccaa4b0b61801132340a354b21152711fb604ca3e035e7015116b",
)


def test_passwd_file_user_logs_in_with_principal_from_file(tmp_path, fake_pam):
    """A passwd_file user gets the uid, gid and home written in the file."""
    auth = _authenticator(passwd_file=_passwd_file(tmp_path, VIRTUAL))
    expected = Principal("alice", 5001, 5001, "/srv/mail/alice")
    assert auth.check_password("Alice", "wonderland") == expected


@pytest.mark.parametrize(
    "user, password",
    [("alice", "wrong"), ("toor", "rootly"), ("hashed", "anything"), ("nobody", "pam-password")],
)
def test_passwd_file_refusals(tmp_path, fake_pam, user, password):
    """Wrong password, uid 0 and non-{PLAIN} entries fail; a listed name never falls through to PAM."""
    fake_pam.accept = {"nobody": b"pam-password", "hashed": b"anything"}
    auth = _authenticator(passwd_file=_passwd_file(tmp_path, VIRTUAL))
    with pytest.raises(AuthFailed):
        auth.check_password(user, password)
    assert fake_pam.calls == []


@pytest.mark.parametrize("user, uid", [("crypted", 5006), ("crammed", 5007)])
def test_hashed_passwd_file_users_log_in_with_their_password(tmp_path, fake_pam, user, uid):
    """SHA512-CRYPT and CRAM-MD5 entries accept the password they were made from, without PAM."""
    auth = _authenticator(passwd_file=_passwd_file(tmp_path, VIRTUAL))
    assert auth.check_password(user, CRAM_SECRET).uid == uid
    with pytest.raises(AuthFailed):
        auth.check_password(user, CRAM_SECRET + "x")
    assert fake_pam.calls == []


def test_cram_md5_entry_answers_cram_md5_but_not_apop(tmp_path):
    """A {CRAM-MD5} entry passes RFC 2195's exchange; APOP needs the plaintext, so it fails."""
    auth = _authenticator(passwd_file=_passwd_file(tmp_path, VIRTUAL))
    assert auth.check_cram_md5("crammed", CRAM_CHALLENGE, CRAM_DIGEST).uid == 5007
    timestamp = APOP_TIMESTAMP
    digest = hashlib.md5((timestamp + CRAM_SECRET).encode()).hexdigest()
    with pytest.raises(AuthFailed):
        auth.check_apop("crammed", timestamp, digest)


def test_crypt_entry_refuses_challenge_mechanisms(tmp_path):
    """A {SHA512-CRYPT} entry can check passwords only: CRAM-MD5 and APOP with the right secret fail."""
    auth = _authenticator(passwd_file=_passwd_file(tmp_path, VIRTUAL))
    with pytest.raises(AuthFailed):
        auth.check_cram_md5("crypted", CRAM_CHALLENGE, CRAM_DIGEST)
    digest = hashlib.md5((APOP_TIMESTAMP + CRAM_SECRET).encode()).hexdigest()
    with pytest.raises(AuthFailed):
        auth.check_apop("crypted", APOP_TIMESTAMP, digest)


def test_unknown_scheme_fails_closed_and_is_logged(tmp_path, fake_pam, log):
    """A scheme this server cannot check refuses the login (no PAM fallback) and tells the administrator."""
    fake_pam.accept = {"odd": b"secret"}
    auth = _authenticator(passwd_file=_passwd_file(tmp_path, VIRTUAL), log=log)
    with pytest.raises(AuthFailed):
        auth.check_password("odd", "secret")
    assert fake_pam.calls == []
    assert log.messages == [("err", "%s: user odd has a {SSHA512} password, a scheme this server "
                                    "cannot check" % (tmp_path / "users"))]


def test_user_not_in_passwd_file_goes_to_pam(tmp_path, fake_pam):
    """A system user missing from the passwd_file is checked by PAM as usual."""
    fake_pam.accept = {"daemon": b"pw"}
    auth = _authenticator(passwd_file=_passwd_file(tmp_path, VIRTUAL))
    assert auth.check_password("daemon", "pw").uid == pwd.getpwnam("daemon").pw_uid


def test_secrets_file_takes_precedence_over_passwd_file(tmp_path, fake_pam):
    """When the secrets file is present the passwd_file is not consulted."""
    auth = _authenticator(
        _secrets_file(tmp_path, "nobody\tfrom-secrets\n"), _passwd_file(tmp_path, VIRTUAL)
    )
    with pytest.raises(AuthFailed):
        auth.check_password("alice", "wonderland")
    assert auth.check_password("nobody", "from-secrets") == NOBODY_PRINCIPAL


def test_unreadable_passwd_file_fails_closed_and_logs(tmp_path, fake_pam, log):
    """A configured but missing passwd_file refuses every password login and says why."""
    fake_pam.accept = {"daemon": b"pw"}
    auth = _authenticator(passwd_file=str(tmp_path / "missing"), log=log)
    with pytest.raises(AuthFailed):
        auth.check_password("daemon", "pw")
    assert log.messages[0][0] == "err" and "missing" in log.messages[0][1]


# --- PAM ------------------------------------------------------------------


def test_pam_uses_configured_service_and_canonical_name(fake_pam):
    """PAM sees the passwd database's spelling of the name and the config's service ('pop')."""
    fake_pam.accept = {"nobody": b"pw"}
    assert _authenticator().check_password("NoBody", "pw") == NOBODY_PRINCIPAL
    assert fake_pam.calls == [("nobody", b"pw", "pop")]


def test_pam_service_can_be_overridden(fake_pam):
    """The service argument (imapd passes 'imap') replaces config.pam_service."""
    fake_pam.accept = {"nobody": b"pw"}
    _authenticator(service="imap").check_password("nobody", "pw")
    assert fake_pam.calls[0][2] == "imap"


def test_pam_leading_space_retried_once(fake_pam):
    """A refused password that starts with a space is tried once more without it."""
    fake_pam.accept = {"nobody": b"pw"}
    assert _authenticator().check_password("nobody", " pw") == NOBODY_PRINCIPAL
    assert [call[1] for call in fake_pam.calls] == [b" pw", b"pw"]


def test_pam_no_retry_without_leading_space(fake_pam):
    """A refused password without a leading space is tried exactly once."""
    with pytest.raises(AuthFailed):
        _authenticator().check_password("nobody", "bad")
    assert len(fake_pam.calls) == 1


def test_pam_failure_text_names_host_not_password(fake_pam):
    """The failure reason is for syslog: it names the client host and never the password."""
    with pytest.raises(AuthFailed) as failure:
        _authenticator().check_password("nobody", "hunter2", rhost="192.0.2.7")
    assert "192.0.2.7" in str(failure.value) and "hunter2" not in str(failure.value)


def test_pam_never_asked_about_root(fake_pam):
    """Root fails before PAM is called, whatever the password."""
    fake_pam.accept = {"root": b"pw"}
    with pytest.raises(AuthFailed):
        _authenticator().check_password("root", "pw")
    assert fake_pam.calls == []


def test_pam_unknown_user_fails_even_if_pam_says_yes(fake_pam):
    """A name without a passwd entry fails, though PAM is still run so it costs the same time."""
    fake_pam.accept = {"ghost-user-pyimapd": b"pw"}
    with pytest.raises(AuthFailed):
        _authenticator().check_password("ghost-user-pyimapd", "pw")
    assert len(fake_pam.calls) == 1


def test_pam_nul_in_password_fails(fake_pam):
    """A NUL in the password (python-pam raises ValueError) is an ordinary failure."""
    with pytest.raises(AuthFailed):
        _authenticator().check_password("nobody", "a\x00b")


@pytest.mark.parametrize("user", ["", "x" * 65, "no\x00body", "a/b", "bad\nname"])
def test_bad_user_names_never_reach_pam(fake_pam, user):
    """Invalid names fail before any file or PAM call."""
    with pytest.raises(AuthFailed):
        _authenticator().check_password(user, "pw")
    assert fake_pam.calls == []


# --- APOP and CRAM-MD5 ----------------------------------------------------


def test_apop_rfc1939_vector_via_passwd_file(tmp_path):
    """RFC 1939's APOP example (mrose / tanstaaf) authenticates."""
    auth = _authenticator(passwd_file=_passwd_file(tmp_path, VIRTUAL))
    assert auth.check_apop("mrose", APOP_TIMESTAMP, APOP_DIGEST).uid == 5002


def test_apop_rfc1939_vector_via_secrets_file(tmp_path):
    """The same digest works for a system user listed in the secrets file."""
    auth = _authenticator(_secrets_file(tmp_path, "nobody\t%s\n" % APOP_SECRET))
    assert auth.check_apop("nobody", APOP_TIMESTAMP.encode(), APOP_DIGEST) == NOBODY_PRINCIPAL


@pytest.mark.parametrize(
    "user, digest",
    [
        ("mrose", APOP_DIGEST.upper()),
        ("mrose", APOP_DIGEST[:-1] + "0"),
        ("mrose", APOP_DIGEST[:-1]),
        ("mrose", "é" * 32),
        ("alice", APOP_DIGEST),
        ("nosuchuser", APOP_DIGEST),
    ],
)
def test_apop_refusals(tmp_path, user, digest):
    """Upper-case hex, wrong or short digests and other users fail (UW compares exactly)."""
    auth = _authenticator(passwd_file=_passwd_file(tmp_path, VIRTUAL))
    with pytest.raises(AuthFailed):
        auth.check_apop(user, APOP_TIMESTAMP, digest)


def test_apop_without_any_secret_source_fails(fake_pam):
    """With only PAM there is no secret to build the digest from, so APOP fails."""
    with pytest.raises(AuthFailed):
        _authenticator().check_apop("nobody", APOP_TIMESTAMP, APOP_DIGEST)
    assert fake_pam.calls == []


def test_cram_md5_rfc2195_vector(tmp_path):
    """RFC 2195's example (tim / tanstaaftanstaaf) authenticates."""
    auth = _authenticator(passwd_file=_passwd_file(tmp_path, VIRTUAL))
    assert auth.check_cram_md5("tim", CRAM_CHALLENGE, CRAM_DIGEST).uid == 5003


@pytest.mark.parametrize(
    "user, challenge, digest",
    [
        ("tim", CRAM_CHALLENGE, CRAM_DIGEST.upper()),
        ("tim", CRAM_CHALLENGE + b" ", CRAM_DIGEST),
        ("alice", CRAM_CHALLENGE, CRAM_DIGEST),
        ("toor", CRAM_CHALLENGE, CRAM_DIGEST),
    ],
)
def test_cram_md5_refusals(tmp_path, user, challenge, digest):
    """A digest for another challenge or user, in upper case, or for root fails."""
    auth = _authenticator(passwd_file=_passwd_file(tmp_path, VIRTUAL))
    with pytest.raises(AuthFailed):
        auth.check_cram_md5(user, challenge, digest)


def test_cram_md5_via_secrets_file_uses_system_principal(tmp_path):
    """CRAM-MD5 against the secrets file gives the system account's principal."""
    auth = _authenticator(_secrets_file(tmp_path, "nobody\t%s\n" % CRAM_SECRET))
    assert auth.check_cram_md5("nobody", CRAM_CHALLENGE, CRAM_DIGEST) == NOBODY_PRINCIPAL
