"""The TLS policy of imapd and ipop3d, through their real entry points as inetd starts them.

Each server runs behind server/listener.py (one process per connection, as
under inetd) or on a socket pair, and real TLS clients (Python's ssl module on
OpenSSL) talk to it over raw sockets, so that every byte and every refusal is
the server's own. Old clients are imitated with `@SECLEVEL=0` and a
`maximum_version`; a permissive TLS server made here shows that each such
client does complete a handshake elsewhere, so a refusal proves our policy,
not a limit of the client library.
"""

import contextlib
import ctypes
import os
import shutil
import socket
import ssl
import subprocess
import sys
import threading
import warnings

import pytest

from clienttools import GUARD_SECONDS
from conftest import IMAPD, IPOP3D, REPO_ROOT
from syslogtools import run_on_socketpair, server_command, syslog_collector  # noqa: F401  (a fixture)

# What each protocol sends to upgrade, how the upgrade is accepted, and its
# implicit-TLS port (RFC 8314: imaps 993, pop3s 995).
PROTOCOLS = {
    "imap": {"starttls": b"s STARTTLS\r\n", "go_ahead": b"s OK", "port": 993, "script": IMAPD},
    "pop3": {"starttls": b"STLS\r\n", "go_ahead": b"+OK", "port": 995, "script": IPOP3D},
}
# Suites a sane server never agrees to, with why. A client library that cannot
# offer one (RC4 is gone from OpenSSL 3's default provider) skips that case.
WEAK_CIPHERS = {
    "AES128-GCM-SHA256": "static RSA key exchange: no forward secrecy",
    "DES-CBC3-SHA": "3DES (Sweet32)",
    "NULL-SHA256": "no encryption at all",
    "RC4-SHA": "RC4 (RFC 7465)",
}
CLONE_NEWNET = 0x40000000


# -- clients ------------------------------------------------------------------


def legacy_client(maximum=ssl.TLSVersion.TLSv1_1, ciphers="DEFAULT"):
    """A client that offers nothing newer than `maximum` (and, below TLS 1.3, only `ciphers`)."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    with warnings.catch_warnings():  # TLS 1.0 and 1.1 are deprecated: that is the point
        warnings.simplefilter("ignore", DeprecationWarning)
        context.minimum_version = ssl.TLSVersion.TLSv1
        context.maximum_version = maximum
    context.set_ciphers(ciphers + ":@SECLEVEL=0")  # SECLEVEL 0: OpenSSL 3 allows TLS < 1.2 only there
    return context


def trusting(*certificates):
    """A verifying client context that trusts exactly these certificate files."""
    context = ssl.create_default_context()
    context.load_verify_locations(cadata="".join(path.read_text() for path in certificates))
    return context


def permissive_server_accepts(client_context, certificate):
    """True when client_context completes a handshake with a server that allows everything OpenSSL can."""
    server_context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        server_context.minimum_version = ssl.TLSVersion.TLSv1
    server_context.set_ciphers("ALL:eNULL:@SECLEVEL=0")
    server_context.load_cert_chain(*certificate)
    client_end, server_end = socket.socketpair()
    client_end.settimeout(GUARD_SECONDS)
    server_end.settimeout(GUARD_SECONDS)

    def serve():
        with contextlib.suppress(OSError):
            server_context.wrap_socket(server_end, server_side=True).close()

    thread = threading.Thread(target=serve)
    thread.start()
    try:
        client_context.wrap_socket(client_end).close()
        return True
    except ssl.SSLError:
        return False
    finally:
        client_end.close()
        thread.join(GUARD_SECONDS)
        server_end.close()


# -- talking to the server over a raw socket ---------------------------------------


def read_line(sock):
    """One reply line read byte by byte, so that nothing after it is taken from the socket."""
    line = b""
    while not line.endswith(b"\n"):
        byte = sock.recv(1)
        if not byte:
            raise EOFError("the server closed the connection after %r" % line)
        line += byte
    return line


def read_until(sock, prefix):
    """Reply lines up to and including the first that starts with prefix."""
    lines = [read_line(sock)]
    while not lines[-1].startswith(prefix):
        lines.append(read_line(sock))
    return lines


def read_to_end(sock):
    """Everything the server still sends until it closes."""
    data = b""
    while True:
        chunk = sock.recv(65536)
        if not chunk:
            return data
        data += chunk


def connect(listener):
    sock = socket.create_connection((listener.host, listener.port), GUARD_SECONDS)
    sock.settimeout(GUARD_SECONDS)
    return sock


def upgrade(sock, protocol):
    """Ask for STARTTLS/STLS on a fresh connection and read its go-ahead; the greeting first."""
    read_line(sock)
    sock.sendall(PROTOCOLS[protocol]["starttls"])
    assert read_line(sock).startswith(PROTOCOLS[protocol]["go_ahead"])


def open_tls(listener, protocol, mode, context):
    """A TLS connection to the server, implicit or by STARTTLS/STLS; raises ssl.SSLError if refused."""
    sock = connect(listener)
    if mode == "starttls":
        upgrade(sock, protocol)
    try:
        return context.wrap_socket(sock, server_hostname="localhost")
    except BaseException:
        sock.close()
        raise


def capabilities(sock, protocol):
    """The capability words the server lists now (CAPABILITY or CAPA)."""
    if protocol == "imap":
        sock.sendall(b"c CAPABILITY\r\n")
        lines = read_until(sock, b"c OK")
        return lines[0].split()[2:]
    sock.sendall(b"CAPA\r\n")
    return [line.split()[0] for line in read_until(sock, b".\r\n")[1:-1]]


def log_in(sock, protocol, user, password):
    """Log in with LOGIN or USER/PASS; the final reply line."""
    if protocol == "imap":
        sock.sendall(b"l LOGIN %s %s\r\n" % (user.encode(), password.encode()))
        return read_until(sock, b"l ")[-1]
    sock.sendall(b"USER %s\r\n" % user.encode())
    read_line(sock)
    sock.sendall(b"PASS %s\r\n" % password.encode())
    return read_line(sock)


def logged_in(reply):
    return reply.startswith(b"l OK") or reply.startswith(b"+OK")


# -- fixtures --------------------------------------------------------------------


def make_certificate(directory, name):
    """A fresh self-signed certificate for localhost, with its key, in directory/name.{crt,key}."""
    cert, key = directory / (name + ".crt"), directory / (name + ".key")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=localhost",
                    "-days", "2", "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1",
                    "-keyout", str(key), "-out", str(cert)],
                   check=True, capture_output=True, stdin=subprocess.DEVNULL, timeout=GUARD_SECONDS)
    return cert, key


@pytest.fixture
def certificate(tmp_path):
    """The server's certificate and key, in files of this test's own that it may replace."""
    if shutil.which("openssl") is None:
        pytest.skip("openssl is not installed (apt-get install openssl)")
    directory = tmp_path / "tls"
    directory.mkdir()
    return make_certificate(directory, "server")


@pytest.fixture
def tls_config(mail_setup, certificate):
    """The interop configuration with the certificate set."""
    cert, key = certificate
    return mail_setup.write_config(ssl_cert_file=cert, ssl_key_file=key)


@pytest.fixture
def start(request):
    """start(protocol, config, *args): the listener of imapd or ipop3d, by protocol name."""
    starters = {"imap": request.getfixturevalue("start_imap"),
                "pop3": request.getfixturevalue("start_pop3")}
    return lambda protocol, config, *args: starters[protocol](config, *args)


def listener_for(start, protocol, mode, config):
    return start(protocol, config, "--tls") if mode == "implicit" else start(protocol, config)


BOTH_PROTOCOLS = pytest.mark.parametrize("protocol", sorted(PROTOCOLS))
BOTH_MODES = pytest.mark.parametrize("mode", ["implicit", "starttls"])


# -- protocol versions and ciphers ---------------------------------------------------


@BOTH_PROTOCOLS
@BOTH_MODES
def test_client_limited_to_tls_1_1_is_refused(start, tls_config, certificate, protocol, mode):
    """A client that offers only TLS 1.0 and 1.1 fails the handshake, while the next modern client succeeds."""
    old = legacy_client(maximum=ssl.TLSVersion.TLSv1_1)
    assert permissive_server_accepts(old, certificate), "the control server refused the old client"
    listener = listener_for(start, protocol, mode, tls_config)
    with pytest.raises(ssl.SSLError):
        open_tls(listener, protocol, mode, old)
    with open_tls(listener, protocol, mode, trusting(certificate[0])) as tls:
        assert tls.version() in ("TLSv1.2", "TLSv1.3")


@BOTH_PROTOCOLS
@pytest.mark.parametrize("cipher", sorted(WEAK_CIPHERS))
def test_weak_cipher_suites_are_refused(start, tls_config, certificate, protocol, cipher):
    """A TLS 1.2 client that offers only a weak suite (kRSA, 3DES, NULL, RC4) is refused."""
    try:
        client = legacy_client(maximum=ssl.TLSVersion.TLSv1_2, ciphers=cipher)
    except ssl.SSLError:
        pytest.skip("this OpenSSL cannot offer %s at all" % cipher)
    if not permissive_server_accepts(client, certificate):
        pytest.skip("this OpenSSL cannot negotiate %s even with a permissive server" % cipher)
    listener = start(protocol, tls_config, "--tls")
    with pytest.raises(ssl.SSLError):
        open_tls(listener, protocol, "implicit", client)


@BOTH_PROTOCOLS
def test_tls_1_2_client_gets_a_forward_secret_aead_suite(start, tls_config, certificate, protocol):
    """A default client held to TLS 1.2 gets ECDHE or DHE with AES-GCM or ChaCha20-Poly1305."""
    client = trusting(certificate[0])
    client.maximum_version = ssl.TLSVersion.TLSv1_2
    listener = start(protocol, tls_config, "--tls")
    with open_tls(listener, protocol, "implicit", client) as tls:
        name, version, _bits = tls.cipher()
        assert version == "TLSv1.2"
        assert name.startswith(("ECDHE-", "DHE-")) and ("GCM" in name or "CHACHA20" in name), name


# -- the certificate is read per connection -------------------------------------------


@BOTH_PROTOCOLS
@BOTH_MODES
def test_replaced_certificate_is_served_to_the_next_connection(start, tls_config, certificate,
                                                                tmp_path, protocol, mode):
    """Renewing the certificate files (renamed into place) changes what the next connection gets, no restart."""
    old_cert, old_key = certificate
    new_cert, new_key = make_certificate(tmp_path, "renewed")
    client = trusting(old_cert, new_cert)
    listener = listener_for(start, protocol, mode, tls_config)
    original = old_cert.read_text()
    with open_tls(listener, protocol, mode, client) as tls:
        first = tls.getpeercert(binary_form=True)
    for source, target in ((new_cert, old_cert), (new_key, old_key)):
        staged = target.with_suffix(".new")
        shutil.copyfile(source, staged)
        os.replace(staged, target)
    with open_tls(listener, protocol, mode, client) as tls:
        second = tls.getpeercert(binary_form=True)
    assert first == ssl.PEM_cert_to_DER_cert(original)
    assert second == ssl.PEM_cert_to_DER_cert(new_cert.read_text())


# -- STARTTLS and STLS: when they are offered, and what follows ------------------------


@BOTH_PROTOCOLS
def test_starttls_is_refused_after_login_and_the_session_goes_on_in_the_clear(start, tls_config,
                                                                              mail_setup, protocol):
    """After a plaintext login STARTTLS/STLS is refused (RFC 3501 §6.2.1, RFC 2595 §4) and no handshake starts."""
    listener = start(protocol, tls_config)
    with connect(listener) as sock:
        read_line(sock)
        assert logged_in(log_in(sock, protocol, mail_setup.user, mail_setup.password))
        sock.sendall(PROTOCOLS[protocol]["starttls"])
        refusal = read_line(sock)
        assert refusal.startswith(b"s BAD" if protocol == "imap" else b"-ERR"), refusal
        count = len(mail_setup.messages)
        probe, answer = (b"n NOOP\r\n", b"n OK") if protocol == "imap" else (b"STAT\r\n", b"+OK %d " % count)
        sock.sendall(probe)
        assert read_until(sock, answer[:2])[-1].startswith(answer)


@BOTH_PROTOCOLS
def test_capabilities_are_listed_afresh_after_tls_and_a_second_upgrade_is_refused(
        start, tls_config, certificate, mail_setup, protocol):
    """Before TLS the list offers STARTTLS/STLS; asked again inside TLS it does not, a second upgrade fails, login works."""
    upgrade_word = b"STARTTLS" if protocol == "imap" else b"STLS"
    listener = start(protocol, tls_config)
    sock = connect(listener)
    read_line(sock)
    assert upgrade_word in capabilities(sock, protocol)
    sock.sendall(PROTOCOLS[protocol]["starttls"])
    assert read_line(sock).startswith(PROTOCOLS[protocol]["go_ahead"])
    with trusting(certificate[0]).wrap_socket(sock, server_hostname="localhost") as tls:
        listed = capabilities(tls, protocol)
        assert upgrade_word not in listed
        assert (b"AUTH=PLAIN" if protocol == "imap" else b"USER") in listed
        tls.sendall(PROTOCOLS[protocol]["starttls"])
        assert read_line(tls).startswith(b"s BAD" if protocol == "imap" else b"-ERR")
        assert logged_in(log_in(tls, protocol, mail_setup.user, mail_setup.password))


@BOTH_PROTOCOLS
def test_commands_pipelined_behind_starttls_are_never_run(start, tls_config, certificate, protocol):
    """Plaintext sent in the same packet as STARTTLS/STLS is dropped, not answered inside TLS (CVE-2011-0411)."""
    injected = b"i CAPABILITY\r\n" if protocol == "imap" else b"CAPA\r\n"
    listener = start(protocol, tls_config)
    sock = connect(listener)
    read_line(sock)
    sock.sendall(PROTOCOLS[protocol]["starttls"] + injected)
    assert read_line(sock).startswith(PROTOCOLS[protocol]["go_ahead"])
    try:
        tls = trusting(certificate[0]).wrap_socket(sock, server_hostname="localhost")
    except (ssl.SSLError, ConnectionError):
        return  # the server read the injected bytes as its handshake and failed it: also safe
    with tls:
        tls.sendall(b"n NOOP\r\n" if protocol == "imap" else b"USER probe\r\n")
        first = read_line(tls)
        assert first.startswith(b"n OK" if protocol == "imap" else b"+OK User name accepted"), first


# -- implicit TLS by port, as UW decides -------------------------------------------------


def _setns(fd):
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.setns(fd, CLONE_NEWNET) != 0:
        error = ctypes.get_errno()
        raise OSError(error, os.strerror(error))


@contextlib.contextmanager
def network_namespace_of(pid):
    """Run the block in the network namespace of process pid; sockets made there stay there."""
    with open("/proc/self/ns/net") as ours, open("/proc/%d/ns/net" % pid) as theirs:
        _setns(theirs.fileno())
        try:
            yield
        finally:
            _setns(ours.fileno())


@pytest.fixture
def start_on_port(tmp_path):
    """start(script, config, port): the listener on 127.0.0.1:port in a network namespace of its own."""
    if os.geteuid() != 0 or shutil.which("unshare") is None:
        pytest.skip("needs root and unshare(1) for a private network namespace")
    processes = []

    def start_listener(script, config, port):
        command = ["unshare", "--net", "sh", "-c", 'ip link set lo up && exec "$@"', "sh",
                   sys.executable, "-m", "server.listener", "--host", "127.0.0.1", "--port", str(port),
                   "--", sys.executable, str(script), "--config", str(config)]
        log = open(tmp_path / ("listener-%d.log" % port), "wb")
        process = subprocess.Popen(command, cwd=REPO_ROOT, stdin=subprocess.DEVNULL,
                                   stdout=subprocess.PIPE, stderr=log)
        log.close()
        processes.append(process)
        line = process.stdout.readline()
        assert line.startswith(b"listening on "), line + (tmp_path / ("listener-%d.log" % port)).read_bytes()
        return process.pid

    yield start_listener
    for process in processes:
        process.terminate()
        process.wait(timeout=GUARD_SECONDS)
        process.stdout.close()


@BOTH_PROTOCOLS
def test_tls_starts_before_the_greeting_on_the_implicit_tls_port(start_on_port, tls_config,
                                                                 certificate, protocol):
    """Without --tls, a connection to port 993 (imapd) or 995 (ipop3d) is TLS from its first byte."""
    port = PROTOCOLS[protocol]["port"]
    pid = start_on_port(PROTOCOLS[protocol]["script"], tls_config, port)
    with network_namespace_of(pid):
        sock = socket.create_connection(("127.0.0.1", port), GUARD_SECONDS)
    with trusting(certificate[0]).wrap_socket(sock, server_hostname="localhost") as tls:
        assert tls.version() in ("TLSv1.2", "TLSv1.3")
        assert read_line(tls).startswith(b"* OK" if protocol == "imap" else b"+OK")


# -- clients that stall ------------------------------------------------------------------


@BOTH_PROTOCOLS
def test_silent_client_cannot_hold_the_handshake_open(start, mail_setup, certificate, protocol):
    """A client that connects to the TLS port and sends nothing is dropped after login_timeout."""
    cert, key = certificate
    config = mail_setup.write_config(ssl_cert_file=cert, ssl_key_file=key, login_timeout=1)
    listener = start(protocol, config, "--tls")
    with connect(listener) as sock:
        assert read_to_end(sock) == b""  # closed, nothing sent: the guard timeout would raise


@BOTH_PROTOCOLS
def test_client_sending_half_a_tls_record_is_logged_out(start, mail_setup, certificate, protocol):
    """After the handshake, the header of a TLS record without its body does not stall the server forever."""
    cert, key = certificate
    config = mail_setup.write_config(ssl_cert_file=cert, ssl_key_file=key, login_timeout=1)
    listener = start(protocol, config, "--tls")
    with open_tls(listener, protocol, "implicit", trusting(cert)) as tls:
        read_line(tls)
        raw = socket.socket(fileno=os.dup(tls.fileno()))
        with raw:
            raw.sendall(b"\x17\x03\x03\x00\x40")  # application data, 64 bytes announced, none sent
            raw.settimeout(GUARD_SECONDS)
            assert read_to_end(raw) != b""  # the autologout reply (in TLS), then the close


# -- failures are logged, not shown --------------------------------------------------------


def run_server(collector, protocol, config, client, *args):
    """(exit status, bytes left after client(sock), syslog texts) of one server run on a socket pair."""
    status, rest, lines = run_on_socketpair(
        collector, server_command(PROTOCOLS[protocol]["script"], config, *args), client, cwd=REPO_ROOT)
    return status, rest, [text for _, text in lines]


@BOTH_PROTOCOLS
def test_refused_handshake_is_logged_as_such_and_sends_no_plaintext(syslog_collector, tls_config,
                                                                    protocol):
    """A TLS 1.1 client on imaps/pop3s: syslog says why at notice, no traceback; the client gets no plaintext reply."""
    def old_client(raw):
        # A failed wrap_socket() closes the socket it wraps: give it a duplicate to keep raw.
        with pytest.raises(ssl.SSLError):
            legacy_client().wrap_socket(raw.dup())
        return raw

    status, rest, texts = run_server(syslog_collector, protocol, tls_config, old_client, "--tls")
    assert (status, rest) == (0, b"")
    assert any("TLS handshake failed host=[local]: UNSUPPORTED_PROTOCOL" in text for text in texts), texts
    assert not any("Traceback" in text or "internal error" in text for text in texts), texts


@BOTH_PROTOCOLS
def test_unreadable_certificate_on_the_tls_port_is_logged_and_the_client_gets_nothing(
        syslog_collector, mail_setup, tmp_path, protocol):
    """With the certificate file missing, imaps/pop3s log the reason at err and close without a word."""
    config = mail_setup.write_config(ssl_cert_file=tmp_path / "missing.crt", ssl_key_file=tmp_path / "missing.key")

    def silent_client(raw):
        return raw

    status, rest, texts = run_server(syslog_collector, protocol, config, silent_client, "--tls")
    assert (status, rest) == (1, b"")
    assert any("TLS not available: cannot load ssl_cert_file/ssl_key_file" in text for text in texts), texts
    assert not any("Traceback" in text for text in texts), texts


@BOTH_PROTOCOLS
def test_upgrade_with_an_unreadable_certificate_is_refused_and_the_session_goes_on(
        syslog_collector, mail_setup, tmp_path, protocol):
    """STARTTLS/STLS with the certificate gone gets a refusal, not a crash; the session still answers."""
    config = mail_setup.write_config(ssl_cert_file=tmp_path / "missing.crt", ssl_key_file=tmp_path / "missing.key")
    replies = []

    def upgrading_client(raw):
        read_line(raw)
        raw.sendall(PROTOCOLS[protocol]["starttls"])
        replies.append(read_line(raw))
        raw.sendall(b"q LOGOUT\r\n" if protocol == "imap" else b"QUIT\r\n")
        return raw

    status, rest, texts = run_server(syslog_collector, protocol, config, upgrading_client)
    assert status == 0
    assert replies[0].startswith(b"s NO" if protocol == "imap" else b"-ERR"), replies
    assert b"certificate" in replies[0]
    assert rest.startswith(b"* BYE" if protocol == "imap" else b"+OK"), rest
    assert any("failed: cannot load certificate" in text for text in texts), texts
    assert not any("Traceback" in text for text in texts), texts
