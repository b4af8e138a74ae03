"""The plaintext-login policy of imapd's session on a link that is neither local nor encrypted.

The tests reach only loopback, so the remote link is a stand-in transport
here; the same session code runs over real sockets in the transcript and
interop suites.
"""

from imap.session import ImapSession
from server.config import Config


class RemotePlainLink:
    """A transport for a TCP client on another host, before any TLS."""

    encrypted = False
    sock = object()

    def __init__(self):
        self.written = []

    def is_loopback(self):
        return False

    def peer_text(self):
        return "[192.0.2.7]"

    def write(self, data):
        self.written.append(data)


def remote_session(**settings):
    config = Config(dict({"cram_md5_file": "/nonexistent", "ssl_cert_file": "/etc/cert.pem"},
                         **settings))
    return ImapSession(RemotePlainLink(), config, lambda *args: None, "mail.example")


def answers(session, line):
    session.serve_one(line)
    session.flush()
    return b"".join(session.transport.written)


def test_capabilities_say_logindisabled_and_hide_plaintext_mechanisms():
    """Before TLS on a remote link: LOGINDISABLED and STARTTLS, no AUTH=PLAIN or AUTH=LOGIN (RFC 3501 §6.2.3)."""
    words = remote_session().capability_text().split()
    assert b"LOGINDISABLED" in words and b"STARTTLS" in words
    assert not [w for w in words if w.startswith(b"AUTH=")]


def test_login_is_refused_with_privacyrequired():
    """LOGIN on a remote plaintext link is refused before any password is checked."""
    assert answers(remote_session(), b"a1 LOGIN alice secret") == (
        b"a1 NO [PRIVACYREQUIRED] Plaintext authentication disallowed on non-secure connections\r\n")


def test_authenticate_plain_is_refused():
    """AUTHENTICATE PLAIN is not offered, so it is refused without a challenge."""
    assert answers(remote_session(), b"a1 AUTHENTICATE PLAIN").startswith(b"a1 NO ")


def test_administrator_may_allow_plaintext():
    """With disable_plaintext_auth = no, LOGINDISABLED goes and PLAIN/LOGIN are offered."""
    words = remote_session(disable_plaintext_auth=False).capability_text().split()
    assert b"LOGINDISABLED" not in words
    assert b"AUTH=PLAIN" in words and b"AUTH=LOGIN" in words
