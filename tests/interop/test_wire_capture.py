"""Nothing readable on the wire: real packets captured with tcpdump during every kind of login.

The servers run behind the listener as inetd runs them; tcpdump records the
loopback traffic to a pcap file, which is taken apart here into each
connection's bytes. Every secure login (APOP, CRAM-MD5 in POP3 and IMAP,
STLS, STARTTLS, pop3s, imaps) must leave no trace of the password, in the
clear or base64-encoded at any alignment, while a plaintext USER/PASS on the
same capture shows the password, which proves the search would find it.

The second test gives the client an address that is not loopback: the server
runs in a network namespace joined to ours by a veth pair. There LOGIN and
USER are refused before TLS and work after STARTTLS/STLS.
"""

import base64
import hmac
import imaplib
import os
import poplib
import shutil
import signal
import socket
import ssl
import struct
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

from clienttools import GUARD_SECONDS

REPO_ROOT = Path(__file__).resolve().parents[2]
IMAPD, IPOP3D = REPO_ROOT / "imapd.py", REPO_ROOT / "ipop3d.py"

# The password of the passwd_file entry every session logs in with: long and
# distinctive, so that finding it (or its base64) in a capture is no accident.
WIRE_PASSWORD = b"Wire-7d3f-never-in-clear"
# While tcpdump writes the file, how often it is looked at for the last packet.
CAPTURE_POLL_SECONDS = 0.05
PCAP_ETHERNET = 1
# RFC 2544's benchmarking range: never a real network on a test host.
SERVER_ADDRESS, CLIENT_ADDRESS = "198.18.83.2", "198.18.83.1"

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="capturing packets needs root")


# --- the capture ---------------------------------------------------------------


def password_forms(secret):
    """Byte strings that occur in any text holding secret in the clear or in base64, at any alignment."""
    forms = [secret]
    for shift in range(3):
        encoded = base64.b64encode(b"\x00" * shift + secret)
        # Keep the characters made only of secret bits: not the prefix's, not the unknown suffix's.
        first = (8 * shift + 5) // 6
        last = 8 * (shift + len(secret)) // 6
        forms.append(encoded[first:last])
    return forms


def tcp_payloads(pcap):
    """[(source port, destination port, payload bytes)] of the TCP/IPv4 packets in a pcap file."""
    magic = pcap[:4]
    order = "<" if magic in (b"\xd4\xc3\xb2\xa1", b"\x4d\x3c\xb2\xa1") else ">"
    linktype = struct.unpack(order + "I", pcap[20:24])[0]
    assert linktype == PCAP_ETHERNET, "unexpected link type %d" % linktype
    packets, offset = [], 24
    while offset + 16 <= len(pcap):
        captured = struct.unpack(order + "I", pcap[offset + 8:offset + 12])[0]
        frame = pcap[offset + 16:offset + 16 + captured]
        offset += 16 + captured
        if len(frame) < 34 or frame[12:14] != b"\x08\x00" or frame[23] != socket.IPPROTO_TCP:
            continue
        ip = frame[14:]
        ip_header, total = (ip[0] & 0x0F) * 4, struct.unpack("!H", ip[2:4])[0]
        tcp = ip[ip_header:total]
        source, destination = struct.unpack("!HH", tcp[:4])
        packets.append((source, destination, tcp[(tcp[12] >> 4) * 4:]))
    return packets


class Capture:
    """tcpdump writing every TCP packet on an interface to a pcap file, until stopped."""

    def __init__(self, interface, path):
        if shutil.which("tcpdump") is None:
            pytest.skip("tcpdump is not installed (apt-get install tcpdump)")
        self.path = path
        # -Z root: tcpdump would otherwise drop to its own user and could not write here.
        self.process = subprocess.Popen(
            ["tcpdump", "-i", interface, "-n", "-s", "0", "-U", "-Z", "root", "-w", str(path), "tcp"],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        ready = self.process.stderr.readline().decode("utf-8", "replace")
        if "listening on" not in ready:
            self.process.kill()
            self.process.wait()
            pytest.fail("tcpdump did not start: %s" % ready)

    def stop_after(self, marker):
        """Wait until marker has been written to the file (so all before it is too), then stop."""
        deadline = time.monotonic() + GUARD_SECONDS
        while marker not in self.path.read_bytes():
            assert time.monotonic() < deadline, "tcpdump never recorded %r" % marker
            time.sleep(CAPTURE_POLL_SECONDS)
        self.process.send_signal(signal.SIGINT)
        self.process.wait(timeout=GUARD_SECONDS)
        self.process.stderr.close()

    def streams(self, server_ports):
        """{client port: (bytes the client sent, bytes the server sent)} for each connection."""
        streams = {}
        for source, destination, payload in tcp_payloads(self.path.read_bytes()):
            to_server = destination in server_ports
            client = source if to_server else destination
            sent, received = streams.get(client, (b"", b""))
            streams[client] = (sent + payload, received) if to_server else (sent, received + payload)
        return streams


# --- the sessions ---------------------------------------------------------------


# Each secure login: (the client, still logged in; bytes its client sends that
# prove its session is in the capture: a command in the clear, or the start of
# a TLS handshake record).


def pop3_apop(pop3, pop3s, imap, imaps, user, tls):
    pop = poplib.POP3(pop3.host, pop3.port, timeout=GUARD_SECONDS)
    pop.apop(user, WIRE_PASSWORD.decode())
    return pop, b"APOP " + user.encode()


def pop3_cram_md5(pop3, pop3s, imap, imaps, user, tls):
    pop = poplib.POP3(pop3.host, pop3.port, timeout=GUARD_SECONDS)
    challenge = pop._shortcmd("AUTH CRAM-MD5")[2:]
    digest = hmac.new(WIRE_PASSWORD, base64.b64decode(challenge), "md5").hexdigest()
    answer = base64.b64encode(("%s %s" % (user, digest)).encode()).decode()
    assert pop._shortcmd(answer).startswith(b"+OK Mailbox open")
    return pop, b"AUTH CRAM-MD5"


def pop3_stls(pop3, pop3s, imap, imaps, user, tls):
    pop = poplib.POP3(pop3.host, pop3.port, timeout=GUARD_SECONDS)
    pop.stls(context=tls)
    pop.user(user)
    pop.pass_(WIRE_PASSWORD.decode())
    return pop, b"STLS\r\n\x16\x03"


def pop3s_user_pass(pop3, pop3s, imap, imaps, user, tls):
    pop = poplib.POP3_SSL(pop3s.host, pop3s.port, context=tls, timeout=GUARD_SECONDS)
    pop.user(user)
    pop.pass_(WIRE_PASSWORD.decode())
    return pop, b"\x16\x03"


def imap_cram_md5(pop3, pop3s, imap, imaps, user, tls):
    client = imaplib.IMAP4(imap.host, imap.port, timeout=GUARD_SECONDS)
    assert client.login_cram_md5(user, WIRE_PASSWORD.decode())[0] == "OK"
    return client, b"AUTHENTICATE CRAM-MD5"


def imap_starttls(pop3, pop3s, imap, imaps, user, tls):
    client = imaplib.IMAP4(imap.host, imap.port, timeout=GUARD_SECONDS)
    assert client.starttls(ssl_context=tls)[0] == "OK"
    assert client.login(user, WIRE_PASSWORD.decode())[0] == "OK"
    return client, b"STARTTLS\r\n\x16\x03"


def imaps_login(pop3, pop3s, imap, imaps, user, tls):
    client = imaplib.IMAP4_SSL(imaps.host, imaps.port, ssl_context=tls, timeout=GUARD_SECONDS)
    assert client.login(user, WIRE_PASSWORD.decode())[0] == "OK"
    return client, b"\x16\x03"


SECURE_LOGINS = [pop3_apop, pop3_cram_md5, pop3_stls, pop3s_user_pass, imap_cram_md5,
                 imap_starttls, imaps_login]


def finish(client):
    """Log out and return the client's local port, which names its connection in the capture."""
    sock = client.sock
    port = sock.getsockname()[1]
    client.quit() if isinstance(client, poplib.POP3) else client.logout()
    return port


def wire_config(mail_setup, tls_certificate, **settings):
    """The test user in a passwd_file with WIRE_PASSWORD in {PLAIN} (APOP and CRAM-MD5 need it), and TLS."""
    account = mail_setup.account
    users = mail_setup.root / "passwd"
    users.write_text("%s:{PLAIN}%s:%d:%d::%s::\n" % (mail_setup.user, WIRE_PASSWORD.decode(),
                                                     account.pw_uid, account.pw_gid, mail_setup.home))
    users.chmod(0o600)
    cert, key = tls_certificate
    return mail_setup.write_config(passwd_file=users, ssl_cert_file=cert, ssl_key_file=key,
                                   disable_plaintext_auth="yes", **settings)


def test_no_password_on_the_wire_in_secure_logins(mail_setup, start_pop3, start_imap,
                                                  tls_certificate, client_tls_context, tmp_path):
    """APOP, CRAM-MD5, STLS, STARTTLS, pop3s and imaps logins show no password in the packets; plain USER/PASS does."""
    config = wire_config(mail_setup, tls_certificate)
    listeners = (start_pop3(config), start_pop3(config, "--tls"), start_imap(config),
                 start_imap(config, "--tls"))
    capture = Capture("lo", tmp_path / "wire.pcap")
    evidence = {}
    for login in SECURE_LOGINS:
        client, marker = login(*listeners, mail_setup.user, client_tls_context)
        evidence[login.__name__] = (finish(client), marker)
    control = poplib.POP3(listeners[0].host, listeners[0].port, timeout=GUARD_SECONDS)
    control.user(mail_setup.user)
    control.pass_(WIRE_PASSWORD.decode())  # allowed in the clear: the link is loopback
    control_port = finish(control)
    sentinel = b"XSENTINEL-" + uuid.uuid4().hex.encode()
    with socket.create_connection((listeners[0].host, listeners[0].port), GUARD_SECONDS) as last:
        last.sendall(sentinel + b"\r\nQUIT\r\n")
        last.recv(4096)
    capture.stop_after(sentinel)

    streams = capture.streams({listener.port for listener in listeners})
    assert any(form in streams[control_port][0] for form in password_forms(WIRE_PASSWORD))
    for name, (port, marker) in evidence.items():
        sent, received = streams.get(port, (b"", b""))
        assert marker in sent, "%s: its session is not in the capture" % name
        leaks = [form for form in password_forms(WIRE_PASSWORD) if form in sent + received]
        assert leaks == [], "%s: the password is readable on the wire: %r" % (name, leaks)


# --- a link that is not local ----------------------------------------------------


def run_ip(*arguments):
    return subprocess.run(["ip", *arguments], capture_output=True, text=True,
                          stdin=subprocess.DEVNULL, timeout=GUARD_SECONDS)


@pytest.fixture
def remote_link():
    """A network namespace whose address, SERVER_ADDRESS, our CLIENT_ADDRESS reaches over a veth pair."""
    if shutil.which("ip") is None:
        pytest.skip("ip is not installed (apt-get install iproute2)")
    namespace = "pyimapd-wire-%d" % os.getpid()
    outside, inside = "pyw%da" % (os.getpid() % 100000), "pyw%db" % (os.getpid() % 100000)
    created = run_ip("netns", "add", namespace)
    if created.returncode != 0:
        pytest.skip("cannot create a network namespace here: %s" % created.stderr.strip())
    try:
        steps = [("link", "add", outside, "type", "veth", "peer", "name", inside),
                 ("link", "set", inside, "netns", namespace),
                 ("addr", "add", CLIENT_ADDRESS + "/30", "dev", outside),
                 ("link", "set", outside, "up"),
                 ("-n", namespace, "addr", "add", SERVER_ADDRESS + "/30", "dev", inside),
                 ("-n", namespace, "link", "set", inside, "up"),
                 ("-n", namespace, "link", "set", "lo", "up")]
        for step in steps:
            result = run_ip(*step)
            if result.returncode != 0:
                pytest.skip("cannot set up the veth pair: ip %s: %s" % (" ".join(step), result.stderr))
        yield namespace
    finally:
        run_ip("link", "del", outside)
        run_ip("netns", "del", namespace)


def start_in_namespace(namespace, server_script, config, log_path, *server_args):
    """server/listener.py inside the namespace on SERVER_ADDRESS: (its process, its port)."""
    command = ["ip", "netns", "exec", namespace, sys.executable, "-m", "server.listener",
               "--host", SERVER_ADDRESS, "--port", "0", "--",
               sys.executable, str(server_script), "--config", str(config), *server_args]
    with open(log_path, "wb") as log:
        process = subprocess.Popen(command, cwd=REPO_ROOT, stdin=subprocess.DEVNULL,
                                   stdout=subprocess.PIPE, stderr=log)
    line = process.stdout.readline().decode("ascii", "replace")
    if not line.startswith("listening on "):
        process.kill()
        process.wait()
        pytest.fail("listener did not start in %s: %r\n%s" % (namespace, line, log_path.read_text()))
    return process, int(line.strip().rpartition(":")[2])


def stop(listener):
    """SIGTERM, as for any inetd; `ip netns exec` has exec'd the listener, so it gets the signal."""
    listener.terminate()
    listener.wait(timeout=GUARD_SECONDS)
    listener.stdout.close()


@pytest.fixture
def remote_tls(tls_certificate):
    """A client context that trusts the test certificate, which names localhost, not SERVER_ADDRESS."""
    context = ssl.create_default_context(cafile=str(tls_certificate[0]))
    context.check_hostname = False
    return context


def test_plaintext_login_refused_on_a_non_local_link_until_tls(mail_setup, tls_certificate,
                                                               remote_link, remote_tls, tmp_path):
    """From a non-loopback address: LOGINDISABLED, no USER; LOGIN and USER refused; both work after TLS."""
    config = wire_config(mail_setup, tls_certificate)
    imap, imap_port = start_in_namespace(remote_link, IMAPD, config, tmp_path / "imap.log")
    pop3, pop3_port = start_in_namespace(remote_link, IPOP3D, config, tmp_path / "pop3.log")
    user, password = mail_setup.user, WIRE_PASSWORD.decode()
    try:
        client = imaplib.IMAP4(SERVER_ADDRESS, imap_port, timeout=GUARD_SECONDS)
        assert client.sock.getsockname()[0] == CLIENT_ADDRESS
        assert {"LOGINDISABLED", "STARTTLS"} <= set(client.capabilities)
        assert not [word for word in client.capabilities if word.startswith("AUTH=PLAIN")]
        with pytest.raises(imaplib.IMAP4.error, match="PRIVACYREQUIRED"):
            client.login(user, password)
        assert client.starttls(ssl_context=remote_tls)[0] == "OK"
        assert "LOGINDISABLED" not in client.capabilities
        assert client.login(user, password)[0] == "OK"
        client.logout()

        pop = poplib.POP3(SERVER_ADDRESS, pop3_port, timeout=GUARD_SECONDS)
        capabilities = pop.capa()
        assert "STLS" in capabilities and "USER" not in capabilities
        with pytest.raises(poplib.error_proto, match="Plaintext authentication disallowed"):
            pop.user(user)
        pop.stls(context=remote_tls)
        assert "USER" in pop.capa()
        pop.user(user)
        assert pop.pass_(password).startswith(b"+OK Mailbox open")
        pop.quit()
    finally:
        stop(imap)
        stop(pop3)
