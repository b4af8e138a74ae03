"""COMPRESS=DEFLATE (RFC 4978) with Python's imaplib through the real entry point: plain,
after STARTTLS, and on an implicit-TLS (imaps) listener, where deflate runs inside TLS.

imaplib has no COMPRESS of its own; DeflateIMAP adds it the way a client library
does: after the tagged OK everything it sends is deflated with a sync flush and
everything it reads is inflated. curl has no IMAP COMPRESS support to test with.
"""

import imaplib
import zlib

import pytest

import mailgen
from clienttools import GUARD_SECONDS
from test_imap_clients import fetch_all, ok, open_mailbox


class Deflating:
    """imaplib's reading and sending with a raw deflate layer once COMPRESS succeeded."""

    deflater = inflater = None
    inflated = b""

    def compress(self):
        kind, data = self._simple_command("COMPRESS", "DEFLATE")
        if kind == "OK":
            self.deflater = zlib.compressobj(6, zlib.DEFLATED, -15)
            self.inflater = zlib.decompressobj(-15)
        return kind, data

    def send(self, data):
        if self.deflater:
            data = self.deflater.compress(data) + self.deflater.flush(zlib.Z_SYNC_FLUSH)
        super().send(data)

    def _more(self):
        while True:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise imaplib.IMAP4.abort("connection closed")
            self.wire_bytes += len(chunk)
            output = self.inflater.decompress(chunk)
            if output:
                self.inflated += output
                return

    def read(self, size):
        if not self.inflater:
            return super().read(size)
        while len(self.inflated) < size:
            self._more()
        data, self.inflated = self.inflated[:size], self.inflated[size:]
        return data

    def readline(self):
        if not self.inflater:
            return super().readline()
        while b"\n" not in self.inflated:
            self._more()
        line, _, self.inflated = self.inflated.partition(b"\n")
        return line + b"\n"


class DeflateIMAP(Deflating, imaplib.IMAP4):
    wire_bytes = 0


class DeflateIMAP_SSL(Deflating, imaplib.IMAP4_SSL):
    wire_bytes = 0


@pytest.fixture(autouse=True)
def compress_known_to_imaplib(monkeypatch):
    """imaplib refuses commands it has no state table entry for."""
    monkeypatch.setitem(imaplib.Commands, "COMPRESS", ("AUTH", "SELECTED"))


def exercise(client, setup):
    """Log in, compress, then fetch every message, append one and read it back: all intact,
    and fewer octets crossed the wire than the inflated text holds."""
    ok(client.login(setup.user, setup.password))
    assert "COMPRESS=DEFLATE" in client.capabilities or "COMPRESS=DEFLATE" in ok(
        client.capability())[0].decode()
    ok(client.compress())
    kind, data = client.compress()
    assert (kind, data[0].split(b"]")[0]) == ("NO", b"[COMPRESSIONACTIVE"), data
    assert open_mailbox(client, "INBOX") == len(setup.messages)
    fetched = fetch_all(client)
    assert [fetched[n]["BODY"] for n in sorted(fetched)] == setup.messages
    extra = mailgen.client_view(mailgen.generate(1, seed=4977,
                                                 first_number=len(setup.messages) + 1)[0][0])
    ok(client.append("INBOX", None, None, extra))
    count = open_mailbox(client, "INBOX")
    assert fetch_all(client, which=str(count))[count]["BODY"] == extra
    text_size = sum(len(m) for m in setup.messages)
    assert 0 < client.wire_bytes < text_size
    client.logout()
    assert setup.spool_messages()[-1] == extra


def test_imaplib_compress_on_a_plain_connection(mail_setup, start_imap):
    """COMPRESS DEFLATE after LOGIN on a plain loopback connection."""
    listener = start_imap(mail_setup.config_path)
    exercise(DeflateIMAP(listener.host, listener.port, timeout=GUARD_SECONDS), mail_setup)


def test_imaplib_compress_after_starttls(mail_setup, start_imap, tls_certificate,
                                         client_tls_context):
    """STARTTLS, LOGIN, then COMPRESS: deflate inside the TLS session."""
    cert, key = tls_certificate
    listener = start_imap(mail_setup.write_config(ssl_cert_file=cert, ssl_key_file=key))
    client = DeflateIMAP(listener.host, listener.port, timeout=GUARD_SECONDS)
    ok(client.starttls(ssl_context=client_tls_context))
    assert client.sock.version() is not None
    exercise(client, mail_setup)


def test_imaplib_compress_on_imaps(mail_setup, start_imap, tls_certificate, client_tls_context):
    """On an implicit-TLS listener (imapd --tls) COMPRESS works the same inside TLS."""
    cert, key = tls_certificate
    listener = start_imap(mail_setup.write_config(ssl_cert_file=cert, ssl_key_file=key), "--tls")
    client = DeflateIMAP_SSL(listener.host, listener.port, ssl_context=client_tls_context,
                             timeout=GUARD_SECONDS)
    exercise(client, mail_setup)
