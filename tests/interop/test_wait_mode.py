"""Wait mode: the servers started with a listening socket, as xinetd `wait = yes` and systemd `Accept=no` do.

The test owns the listening socket, as xinetd or systemd would, and starts the
real server with it either on fd 0 and 1 (xinetd, inetd `wait`) or on fd 3
with LISTEN_FDS and LISTEN_PID (systemd, fd 0 on /dev/null). Real clients
(imaplib, poplib) log in as the system user `pyimapd-test` through PAM and read
the spool; syslog goes to a socket the test reads. The last tests run the
shipped `-wait` xinetd files in the real xinetd.
"""

import imaplib
import os
import poplib
import re
import signal
import socket
import ssl
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

import mailgen
from syslogtools import syslog_collector  # noqa: F401  (a fixture)
from test_xinetd import ATTRIBUTE, SHIPPED_DIR, connect, xinetd  # noqa: F401  (a fixture)

REPO = Path(__file__).resolve().parents[2]
SCRIPTS = {"imap": REPO / "imapd.py", "pop3": REPO / "ipop3d.py"}
# How systemd passes the socket: fd 3, LISTEN_FDS and LISTEN_PID naming the server's pid
# (the shell's pid, which exec keeps); stdin /dev/null.
SYSTEMD_HANDOVER = 'exec 3<&0 0</dev/null; export LISTEN_FDS=1 LISTEN_PID=$$; exec "$@"'
HANDOVERS = ("xinetd", "systemd")
CONCURRENT_CLIENTS = 3
# A guard against a hung server or client, never a measurement.
GUARD_SECONDS = 60
# A session spans this many idle exits' worth of time in the idle-exit tests.
SHORT_IDLE_EXIT = 0.5


def wait_until(condition, what):
    """Poll `condition` until it is true; fail after the guard time."""
    deadline = time.monotonic() + GUARD_SECONDS
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail("gave up waiting for " + what)
        time.sleep(0.02)


def children_of(pid):
    """Pids of the live (not zombie) processes whose parent is pid."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid and fields[0] != "Z":
            found.append(int(entry.name))
    return found


def socket_inodes(pid):
    """The inodes of the sockets process pid holds open."""
    inodes = set()
    for link in Path("/proc/%d/fd" % pid).iterdir():
        try:
            target = os.readlink(link)
        except OSError:
            continue
        match = re.fullmatch(r"socket:\[(\d+)\]", target)
        if match:
            inodes.add(int(match.group(1)))
    return inodes


class WaitModeServer:
    """One server started in wait mode on a listening socket the test holds, as xinetd or systemd do."""

    def __init__(self, protocol, config_path, collector, log_path, handover="xinetd", args=(), port=0):
        self.listener = socket.socket()
        self.listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            self.listener.bind(("127.0.0.1", port))
        except OSError:
            self.listener.close()
            raise
        self.listener.listen(16)
        self.port = self.listener.getsockname()[1]
        command = [sys.executable, str(SCRIPTS[protocol]), "--config", str(config_path), *args]
        if handover == "systemd":
            command = ["sh", "-c", SYSTEMD_HANDOVER, "sh"] + command
        self.log_path = log_path
        with open(log_path, "wb") as log:
            stdout = log if handover == "systemd" else self.listener
            self.process = subprocess.Popen(collector.wrap(command), stdin=self.listener,
                                            stdout=stdout, stderr=log, cwd=REPO)
        self.pid = self.process.pid

    @property
    def listener_inode(self):
        return os.fstat(self.listener.fileno()).st_ino

    def sessions(self):
        return children_of(self.pid)

    def stop(self):
        """SIGTERM if still running, then wait for it; the exit status."""
        if self.process.poll() is None:
            self.process.terminate()
        return self.process.wait(timeout=GUARD_SECONDS)

    def close(self):
        self.stop()
        self.listener.close()
        for pid in self.sessions():
            os.kill(pid, signal.SIGKILL)
        text = self.log_path.read_text(errors="replace") if self.log_path.exists() else ""
        if text:
            print("---- %s ----\n%s" % (self.log_path.name, text))


@pytest.fixture
def start_wait_mode(syslog_collector, tmp_path):  # noqa: F811  (the imported fixture)
    """start(protocol, config_path, handover, *args, port=0) -> a running WaitModeServer.

    All are stopped and closed at teardown.
    """
    servers = []

    def start(protocol, config_path, handover="xinetd", *args, port=0):
        log_path = tmp_path / ("wait-%s-%d.log" % (protocol, len(servers)))
        server = WaitModeServer(protocol, config_path, syslog_collector, log_path, handover, args, port)
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.close()


def normalised(lines):
    """Syslog lines as (priority, `ident: text`), without the time stamp and the pid."""
    result = []
    for priority, text in lines:
        match = re.match(r".*? (\w+)\[\d+\]: (.*)", text, re.S)
        result.append((priority, "%s: %s" % match.groups()))
    return result


# -- clients ------------------------------------------------------------------


def pop3_client(port, context=None):
    if context is not None:
        return poplib.POP3_SSL("127.0.0.1", port, context=context, timeout=GUARD_SECONDS)
    return poplib.POP3("127.0.0.1", port, timeout=GUARD_SECONDS)


def imap_client(port, context=None):
    if context is not None:
        return imaplib.IMAP4_SSL("127.0.0.1", port, ssl_context=context, timeout=GUARD_SECONDS)
    return imaplib.IMAP4("127.0.0.1", port, timeout=GUARD_SECONDS)


CLIENTS = {"imap": imap_client, "pop3": pop3_client}


def log_in(protocol, client, setup):
    if protocol == "imap":
        assert client.login(setup.user, setup.password)[0] == "OK"
        kind, data = client.select("INBOX", readonly=True)
        assert (kind, int(data[0])) == ("OK", len(setup.messages))
    else:
        client.user(setup.user)
        client.pass_(setup.password)
        assert client.stat()[0] == len(setup.messages)


def read_message(protocol, client, number):
    """Message `number` as the client sees it (POP3: without the Status: line UW adds)."""
    if protocol == "imap":
        kind, data = client.fetch(str(number), "(BODY.PEEK[])")
        assert kind == "OK"
        return data[0][1]
    lines = client.retr(number)[1]
    return mailgen.split_status(b"".join(line + b"\r\n" for line in lines))[1]


def log_out(protocol, client):
    if protocol == "imap":
        assert client.logout()[0] == "BYE"
    else:
        assert client.quit().startswith(b"+OK")


def full_session(protocol, port, setup, number=1):
    """Connect, log in, read one message, log out; the message."""
    client = CLIENTS[protocol](port)
    log_in(protocol, client, setup)
    message = read_message(protocol, client, number)
    log_out(protocol, client)
    return message


def inetd_session(protocol, setup, collector, tmp_path):
    """The same session with the server started per connection (inetd nowait); its syslog lines."""
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    client = {}

    def connect_client():
        client["session"] = CLIENTS[protocol](port)

    thread = threading.Thread(target=connect_client)
    thread.start()
    connection, _ = listener.accept()
    listener.close()
    command = [sys.executable, str(SCRIPTS[protocol]), "--config", str(setup.config_path)]
    with connection, open(tmp_path / "inetd.log", "wb") as log:
        process = subprocess.Popen(collector.wrap(command), stdin=connection, stdout=connection,
                                   stderr=log, cwd=REPO)
    thread.join(GUARD_SECONDS)
    log_in(protocol, client["session"], setup)
    read_message(protocol, client["session"], 1)
    log_out(protocol, client["session"])
    assert process.wait(timeout=GUARD_SECONDS) == 0
    return collector.lines_of(process.pid)


# -- tests ------------------------------------------------------------------------


@pytest.mark.parametrize("handover", HANDOVERS)
@pytest.mark.parametrize("protocol", ["imap", "pop3"])
def test_concurrent_clients_each_get_a_session_child(start_wait_mode, mail_setup, syslog_collector,
                                                     protocol, handover):
    """Several clients at once are served by children of one server, which outlives them all."""
    server = start_wait_mode(protocol, mail_setup.config_path, handover)
    clients = [CLIENTS[protocol](server.port) for _ in range(CONCURRENT_CLIENTS)]
    wait_until(lambda: len(server.sessions()) == CONCURRENT_CLIENTS, "one child per client")
    sessions = server.sessions()
    if protocol == "imap":  # all logged in at once (POP3 locks the maildrop: one at a time)
        for client in clients:
            log_in(protocol, client, mail_setup)
    for number, client in enumerate(clients, 1):
        if protocol == "pop3":
            log_in(protocol, client, mail_setup)
        assert read_message(protocol, client, number) == mail_setup.messages[number - 1]
        log_out(protocol, client)
    wait_until(lambda: not server.sessions(), "the children to exit after logout")
    assert server.process.poll() is None
    assert full_session(protocol, server.port, mail_setup) == mail_setup.messages[0]
    for pid in sessions:
        texts = [text for _, text in syslog_collector.lines_of(pid)]
        assert any("Login user=%s host=[127.0.0.1]" % mail_setup.user in text for text in texts), texts
        assert any("Logout user=%s host=[127.0.0.1]" % mail_setup.user in text for text in texts), texts
    assert syslog_collector.lines_of(server.pid) == []  # the parent logs nothing per connection
    assert server.stop() == 0


@pytest.mark.parametrize("protocol", ["imap", "pop3"])
def test_syslog_lines_are_those_of_inetd_mode(start_wait_mode, mail_setup, syslog_collector,
                                              tmp_path, protocol):
    """A wait-mode child logs exactly the lines, priorities and ident an inetd-started server logs."""
    inetd_lines = inetd_session(protocol, mail_setup, syslog_collector, tmp_path)
    server = start_wait_mode(protocol, mail_setup.config_path)
    client = CLIENTS[protocol](server.port)
    wait_until(lambda: server.sessions(), "the session child")
    child = server.sessions()[0]
    log_in(protocol, client, mail_setup)
    read_message(protocol, client, 1)
    log_out(protocol, client)
    wait_until(lambda: not server.sessions(), "the child to exit")
    assert len(inetd_lines) >= 2
    assert normalised(syslog_collector.lines_of(child)) == normalised(inetd_lines)


@pytest.mark.parametrize("handover", HANDOVERS)
def test_children_do_not_hold_the_listening_socket(start_wait_mode, mail_setup, handover):
    """A session child has its connection on fd 0/1 and no descriptor of the listening socket."""
    server = start_wait_mode("imap", mail_setup.config_path, handover)
    client = imap_client(server.port)
    wait_until(lambda: server.sessions(), "the session child")
    child = server.sessions()[0]
    assert server.listener_inode in socket_inodes(server.pid)
    assert server.listener_inode not in socket_inodes(child)
    own = [int(os.readlink("/proc/%d/fd/%d" % (child, fd))[8:-1]) for fd in (0, 1)]
    assert own[0] == own[1] != server.listener_inode
    log_in("imap", client, mail_setup)
    log_out("imap", client)


def test_idle_exit_after_the_last_session(start_wait_mode, mail_setup):
    """With no session for wait_mode_idle_exit seconds the server exits 0, never while a session runs."""
    mail_setup.write_config(wait_mode_idle_exit=SHORT_IDLE_EXIT)
    server = start_wait_mode("pop3", mail_setup.config_path)
    client = pop3_client(server.port)
    log_in("pop3", client, mail_setup)
    time.sleep(SHORT_IDLE_EXIT * 4)  # a session outlasting the idle period keeps the server up
    assert server.process.poll() is None
    assert read_message("pop3", client, 2) == mail_setup.messages[1]
    log_out("pop3", client)
    assert server.process.wait(timeout=GUARD_SECONDS) == 0


def test_idle_exit_without_any_connection(start_wait_mode, mail_setup):
    """Started but never connected to, the server still exits after the idle period (systemd hand-over)."""
    mail_setup.write_config(wait_mode_idle_exit=SHORT_IDLE_EXIT)
    server = start_wait_mode("imap", mail_setup.config_path, "systemd")
    assert server.process.wait(timeout=GUARD_SECONDS) == 0


@pytest.mark.parametrize("handover", HANDOVERS)
def test_sigterm_stops_accepting_and_leaves_the_session_running(start_wait_mode, mail_setup, handover):
    """After SIGTERM the server exits 0 while a logged-in client goes on reading and logs out cleanly."""
    server = start_wait_mode("imap", mail_setup.config_path, handover)
    client = imap_client(server.port)
    log_in("imap", client, mail_setup)
    wait_until(lambda: server.sessions(), "the session child")
    child = server.sessions()[0]
    server.process.send_signal(signal.SIGTERM)
    assert server.process.wait(timeout=GUARD_SECONDS) == 0
    assert os.path.exists("/proc/%d" % child)
    assert read_message("imap", client, 3) == mail_setup.messages[2]
    log_out("imap", client)


def test_max_connections_holds_further_clients_in_the_backlog(start_wait_mode, mail_setup):
    """With max_connections = 1 a second client is greeted only once the first session has ended."""
    mail_setup.write_config(max_connections=1)
    server = start_wait_mode("pop3", mail_setup.config_path)
    first = pop3_client(server.port)
    waiting = socket.create_connection(("127.0.0.1", server.port), timeout=GUARD_SECONDS)
    time.sleep(0.5)  # time for a wrong server to greet it; a right one never does
    waiting.setblocking(False)
    with pytest.raises(BlockingIOError):
        waiting.recv(100)
    assert len(server.sessions()) == 1
    log_in("pop3", first, mail_setup)
    log_out("pop3", first)
    waiting.settimeout(GUARD_SECONDS)
    assert waiting.recv(100).startswith(b"+OK ")
    waiting.close()


def test_configuration_error_answers_each_connection(start_wait_mode, mail_setup, syslog_collector):
    """A broken configuration is reported to every client and logged by its child, as in inetd mode."""
    mail_setup.config_path.write_text("no_such_setting = 1\n")
    server = start_wait_mode("imap", mail_setup.config_path)
    for _ in range(2):
        with socket.create_connection(("127.0.0.1", server.port), timeout=GUARD_SECONDS) as sock:
            assert sock.recv(100) == b"* BYE Server configuration error\r\n"
    wait_until(lambda: not server.sessions(), "the children to exit")
    assert server.process.poll() is None
    errors = [text for priority, text in syslog_collector.lines()
              if "configuration error" in text and "[%d]: " % server.pid not in text]
    assert len(errors) == 2 and all("no_such_setting" in text for text in errors)


def test_configuration_change_applies_to_the_next_connection(start_wait_mode, mail_setup):
    """The running server reads its configuration again when the file changes."""
    server = start_wait_mode("pop3", mail_setup.config_path)
    assert pop3_client(server.port).getwelcome().startswith(b"+OK POP3 ")
    mail_setup.write_config(login_greeting="Changed greeting")
    client = pop3_client(server.port)
    assert client.getwelcome() == b"+OK Changed greeting"
    client.quit()


def new_certificate(directory, name):
    """A fresh self-signed certificate for 127.0.0.1 in directory: (cert path, key path, DER bytes)."""
    cert, key = directory / ("%s.pem" % name), directory / ("%s.key" % name)
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=" + name,
                    "-days", "2", "-addext", "subjectAltName=IP:127.0.0.1",
                    "-keyout", str(key), "-out", str(cert)],
                   check=True, capture_output=True, stdin=subprocess.DEVNULL)
    return cert, key, ssl.PEM_cert_to_DER_cert(cert.read_text())


@pytest.mark.parametrize("protocol", ["imap", "pop3"])
def test_implicit_tls_reads_the_certificate_per_connection(start_wait_mode, mail_setup, tmp_path,
                                                           protocol):
    """With --tls every child does the handshake, with the certificate file as it is at that connection."""
    cert_dir = tmp_path / "tls"
    cert_dir.mkdir()
    cert, key, first_der = new_certificate(cert_dir, "first")
    mail_setup.write_config(ssl_cert_file=cert, ssl_key_file=key)
    server = start_wait_mode(protocol, mail_setup.config_path, "systemd", "--tls")
    context = ssl.create_default_context(cafile=str(cert))
    client = CLIENTS[protocol](server.port, context)
    assert client.sock.getpeercert(binary_form=True) == first_der
    log_in(protocol, client, mail_setup)
    log_out(protocol, client)
    renewed, renewed_key, second_der = new_certificate(cert_dir, "second")
    os.replace(renewed_key, key)
    os.replace(renewed, cert)
    client = CLIENTS[protocol](server.port, ssl.create_default_context(cafile=str(cert)))
    assert client.sock.getpeercert(binary_form=True) == second_der
    log_in(protocol, client, mail_setup)
    assert read_message(protocol, client, 1) == mail_setup.messages[0]
    log_out(protocol, client)


def test_implicit_tls_by_local_port(start_wait_mode, mail_setup, tls_certificate, client_tls_context):
    """Listening on port 995 without --tls, each child still starts TLS at once, as UW decides by port."""
    cert, key = tls_certificate
    mail_setup.write_config(ssl_cert_file=cert, ssl_key_file=key)
    try:
        server = start_wait_mode("pop3", mail_setup.config_path, "xinetd", port=995)
    except OSError:
        pytest.skip("127.0.0.1:995 is in use on this host")
    client = poplib.POP3_SSL("127.0.0.1", server.port, context=client_tls_context, timeout=GUARD_SECONDS)
    assert client.sock.version() in ("TLSv1.2", "TLSv1.3")
    log_in("pop3", client, mail_setup)
    assert read_message("pop3", client, 1) == mail_setup.messages[0]
    log_out("pop3", client)


# -- the shipped wait-mode files in the real xinetd ----------------------------------

WAIT_SERVICES = ("imap-wait", "imaps-wait", "ipop3-wait", "pop3s-wait")


@pytest.mark.parametrize("name", WAIT_SERVICES)
def test_shipped_wait_file_is_off_and_shares_its_service_name(name):
    """Each -wait file is disabled, wait = yes, names the nowait file's service, and has an id of its own."""
    text = (SHIPPED_DIR / name).read_text()
    assert text.startswith("# default: off\n# description: ")
    attributes = {m.group(2): m.group(4) for m in map(ATTRIBUTE.match, text.splitlines()) if m}
    assert (attributes["disable"], attributes["wait"], attributes["id"]) == ("yes", "yes", name)
    nowait = (SHIPPED_DIR / name[:-len("-wait")]).read_text()
    assert re.search(r"^service (\S+)", text, re.M).group(1) == re.search(
        r"^service (\S+)", nowait, re.M).group(1)
    assert attributes["server"] == re.search(r"server\s*= (\S+)", nowait).group(1)
    assert attributes.get("server_args", "") == ("--tls" if name.startswith(("imaps", "pop3s")) else "")


def test_xinetd_wait_yes_serves_pop3_and_imap(xinetd, mail_setup, tls_certificate, client_tls_context):
    """Real xinetd starts one server per -wait service; concurrent clients of all four are its children's."""
    cert, key = tls_certificate
    mail_setup.write_config(ssl_cert_file=str(cert), ssl_key_file=str(key), wait_mode_idle_exit=2)
    assert xinetd.start(mail_setup.config_path, enabled=WAIT_SERVICES, services=WAIT_SERVICES) == 4
    services = {"imap-wait": "imap", "imaps-wait": "imaps", "ipop3-wait": "ipop3", "pop3s-wait": "pop3s"}
    clients = {name: [connect(kind, xinetd.ports[name], client_tls_context) for _ in range(2)]
               for name, kind in services.items()}
    servers = xinetd.server_pids()
    assert len(servers) == 4  # one accepting server per service, however many clients
    assert sum(len(children_of(pid)) for pid in servers) == 8
    for name, pair in clients.items():
        protocol = "imap" if name.startswith("imap") else "pop3"
        for number, client in enumerate(pair, 1):
            log_in(protocol, client, mail_setup)
            assert read_message(protocol, client, number) == mail_setup.messages[number - 1]
            log_out(protocol, client)
    # Idle, each server exits; xinetd then starts a new one for the next client.
    wait_until(lambda: not xinetd.server_pids(), "the servers' idle exit")
    client = connect("imap", xinetd.ports["imap-wait"], client_tls_context)
    restarted = xinetd.server_pids()
    assert len(restarted) == 1 and restarted[0] not in servers
    log_in("imap", client, mail_setup)
    assert read_message("imap", client, 4) == mail_setup.messages[3]
    log_out("imap", client)
