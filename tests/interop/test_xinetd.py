"""The project's own xinetd service files, run by the real xinetd, serving a real system user.

Each test runs `xinetd -dontfork` on a configuration of its own whose includedir
holds copies of xinetd.d/{imap,imaps,ipop3,pop3s}, changed only where a test run
must differ from production: `disable = no` (the chkconfig switch) for the
service under test, a loopback test port (`port`, `bind`, `type = UNLISTED`),
and `server` pointing at a two-line wrapper that runs this checkout's imapd.py
or ipop3d.py with the repository's interpreter, `--config` added to `server_args`.
(xinetd passes the basename of `server` as argv[0], so `server = .../bin/python`
would leave Python unable to find its virtual environment; a script whose #!
line names the interpreter, like the installed bin/imapd, does not have that
problem.) Clients log in as `pyimapd-test` through real PAM
(services `imap` and `pop`) and read a message from the test spool.

xinetd does not stop the servers it started when it exits (Debian's xinetd
2.3.15 leaves them running on SIGTERM and SIGQUIT alike), so the fixture ends
any server process of the test by its pid after stopping xinetd.
"""

import imaplib
import os
import poplib
import re
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import time
from pathlib import Path

import pytest

import mailgen

REPO_ROOT = Path(__file__).resolve().parents[2]
SHIPPED_DIR = REPO_ROOT / "xinetd.d"
SHIPPED_SERVICES = ("imap", "imaps", "ipop3", "pop3s")
# The program a shipped file names (server = /opt/pyimapd/bin/NAME) -> this checkout's script.
SERVER_SCRIPTS = {"imapd": REPO_ROOT / "imapd.py", "ipop3d": REPO_ROOT / "ipop3d.py"}
XINETD = shutil.which("xinetd") or "/usr/sbin/xinetd"
ATTRIBUTE = re.compile(r"^(\s*)(\w+)(\s*[-+]?=\s*)(.*?)\s*$")
STARTED = re.compile(r"Started working: (\d+) available service")
# A guard against a hung xinetd, server or client, never a measurement.
GUARD_SECONDS = 60

pytestmark = pytest.mark.skipif(not os.path.exists(XINETD),
                                reason="xinetd is not installed (apt-get install xinetd)")


def free_port():
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def checkout_server(directory, program):
    """A wrapper named like the shipped program that runs this checkout's script with our interpreter."""
    wrapper = directory / program
    if not wrapper.exists():
        wrapper.write_text('#!/bin/sh\nexec %s %s "$@"\n' % (sys.executable, SERVER_SCRIPTS[program]))
        wrapper.chmod(0o755)
    return wrapper


def for_test_run(text, port, config_path, enable, bin_dir):
    """A shipped service file with only the test-run changes: switch, loopback port, this checkout's server."""
    lines, extra_args = [], ""
    for line in text.splitlines():
        match = ATTRIBUTE.match(line)
        name = match.group(2) if match else None
        if name == "disable" and enable:
            line = match.group(1) + name + match.group(3) + "no"
        elif name == "server":
            server = checkout_server(bin_dir, Path(match.group(4)).name)
            line = match.group(1) + name + match.group(3) + str(server)
        elif name == "server_args":
            extra_args = match.group(4)
            continue
        elif line.strip() == "}":
            args = "--config %s %s" % (config_path, extra_args)
            lines += ["\tserver_args\t= " + args.strip(), "\tport\t\t= %d" % port,
                      "\tbind\t\t= 127.0.0.1", "\ttype\t\t= UNLISTED"]
        lines.append(line)
    return "\n".join(lines) + "\n"


def processes_with(marker):
    """Pids of the processes whose command line contains `marker` (the test's config path)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            if marker.encode() in (entry / "cmdline").read_bytes():
                found.append(int(entry.name))
        except OSError:
            continue  # exited meanwhile
    return found


def proc_status(pid):
    """The fields of /proc/PID/status as {name: value text}."""
    text = Path("/proc/%d/status" % pid).read_text()
    return dict(line.split(":\t", 1) for line in text.splitlines() if ":\t" in line)


def wait_until(condition, what):
    """Poll `condition` until it is true; fail after the guard time."""
    deadline = time.monotonic() + GUARD_SECONDS
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail("gave up waiting for " + what)
        time.sleep(0.05)


class Xinetd:
    """One foreground xinetd with its own configuration, include directory and logs."""

    def __init__(self, directory, marker):
        self.directory = directory
        self.marker = marker
        self.include_dir = directory / "xinetd.d"
        self.log_path = directory / "xinetd.log"
        self.service_log_path = directory / "services.log"
        self.process = None
        self.ports = {}

    def start(self, config_path, enabled=(), services=SHIPPED_SERVICES):
        """Install test copies of the shipped files `services` (only `enabled` switched on), start xinetd.

        Returns the number of services xinetd reports as available.
        """
        self.include_dir.mkdir()
        bin_dir = self.directory / "bin"
        bin_dir.mkdir()
        for name in services:
            self.ports[name] = free_port()
            text = (SHIPPED_DIR / name).read_text()
            (self.include_dir / name).write_text(
                for_test_run(text, self.ports[name], config_path, name in enabled, bin_dir))
        conf = self.directory / "xinetd.conf"
        conf.write_text("defaults\n{\n\tinstances\t= 20\n\tlog_type\t= FILE %s\n}\nincludedir %s\n"
                        % (self.service_log_path, self.include_dir))
        self.process = subprocess.Popen(
            [XINETD, "-dontfork", "-f", str(conf), "-pidfile", str(self.directory / "xinetd.pid"),
             "-filelog", str(self.log_path)], stdin=subprocess.DEVNULL)
        wait_until(self._started, "xinetd to start (see %s)" % self.log_path)
        return int(STARTED.search(self.log_path.read_text()).group(1))

    def _started(self):
        if self.process.poll() is not None:
            pytest.fail("xinetd exited with %s:\n%s" % (self.process.returncode, self.log_text()))
        return self.log_path.exists() and STARTED.search(self.log_path.read_text()) is not None

    def log_text(self):
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def server_pids(self):
        """The pids of the servers xinetd started for this test (children of xinetd)."""
        children = []
        for pid in processes_with(self.marker):
            try:
                if int(proc_status(pid)["PPid"]) == self.process.pid:
                    children.append(pid)
            except OSError:
                continue  # exited meanwhile
        return children

    def stop(self):
        """Stop xinetd, then kill any server it left running and wait until none is left."""
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=GUARD_SECONDS)
        for pid in processes_with(self.marker):
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        wait_until(lambda: not processes_with(self.marker), "the test's servers to exit")


@pytest.fixture
def xinetd(mail_setup, tmp_path):
    """An Xinetd for this test; stopped at teardown, with no server of the test left running."""
    directory = tmp_path / "xinetd"
    directory.mkdir()
    runner = Xinetd(directory, str(mail_setup.config_path))
    yield runner
    runner.stop()
    for path in (runner.log_path, runner.service_log_path):
        if path.exists():
            print("---- %s ----\n%s" % (path.name, path.read_text(errors="replace")))


def refuses_connections(port):
    """True when nothing accepts TCP connections on 127.0.0.1:port."""
    try:
        socket.create_connection(("127.0.0.1", port), timeout=GUARD_SECONDS).close()
    except ConnectionRefusedError:
        return True
    return False


# -- clients ------------------------------------------------------------------


def pop3_reads_first_message(client, setup):
    """Log in with USER/PASS, check the count, RETR message 1 and QUIT; return it without Status:."""
    client.user(setup.user)
    client.pass_(setup.password)
    assert client.stat()[0] == len(setup.messages)
    lines = client.retr(1)[1]
    client.quit()
    status, message = mailgen.split_status(b"".join(line + b"\r\n" for line in lines))
    assert status is not None
    return message


def imap_reads_first_message(client, setup):
    """Log in with LOGIN, SELECT INBOX, FETCH message 1 and LOGOUT; return its text."""
    assert client.login(setup.user, setup.password)[0] == "OK"
    kind, data = client.select("INBOX")
    assert (kind, int(data[0])) == ("OK", len(setup.messages))
    kind, data = client.fetch("1", "(BODY.PEEK[])")
    assert kind == "OK"
    client.logout()
    return data[0][1]


def connect(service, port, tls_context):
    """A Python client for the service, connected to 127.0.0.1:port (implicit TLS for imaps/pop3s)."""
    if service == "ipop3":
        return poplib.POP3("127.0.0.1", port, timeout=GUARD_SECONDS)
    if service == "pop3s":
        return poplib.POP3_SSL("127.0.0.1", port, context=tls_context, timeout=GUARD_SECONDS)
    if service == "imap":
        return imaplib.IMAP4("127.0.0.1", port, timeout=GUARD_SECONDS)
    return imaplib.IMAP4_SSL("127.0.0.1", port, ssl_context=tls_context, timeout=GUARD_SECONDS)


def tls_version(client):
    """The TLS version of a client's connection, or None for plaintext."""
    sock = client.sock
    return sock.version() if isinstance(sock, ssl.SSLSocket) else None


# -- tests --------------------------------------------------------------------


@pytest.mark.parametrize("name", SHIPPED_SERVICES)
def test_shipped_file_is_red_hat_style_and_off(name):
    """Each shipped file has the chkconfig header, is disabled, and runs the /opt/pyimapd program as root."""
    text = (SHIPPED_DIR / name).read_text()
    assert text.startswith("# default: off\n# description: ")
    attributes = {m.group(2): m.group(4) for m in map(ATTRIBUTE.match, text.splitlines()) if m}
    assert attributes["disable"] == "yes"
    assert (attributes["socket_type"], attributes["wait"], attributes["user"]) == ("stream", "no", "root")
    program = "/opt/pyimapd/bin/" + ("imapd" if name.startswith("imap") else "ipop3d")
    assert attributes["server"] == program
    assert attributes.get("server_args", "") == ("--tls" if name.endswith("s") else "")
    assert "USERID" not in text  # UW FAQ 7.24: IDENT lookups hang connections behind firewalls


def test_shipped_files_serve_nothing_until_switched_on(xinetd, mail_setup):
    """With every file as shipped (disable = yes) xinetd offers no service and each port refuses."""
    assert xinetd.start(mail_setup.config_path, enabled=()) == 0
    for name in SHIPPED_SERVICES:
        assert refuses_connections(xinetd.ports[name]), name


@pytest.mark.parametrize("name", SHIPPED_SERVICES)
def test_switched_on_service_serves_the_user_through_pam(xinetd, mail_setup, tls_certificate,
                                                         client_tls_context, name):
    """disable = no turns exactly that service on; a real client logs in through PAM and reads the spool."""
    cert, key = tls_certificate
    mail_setup.write_config(ssl_cert_file=str(cert), ssl_key_file=str(key))
    assert xinetd.start(mail_setup.config_path, enabled=(name,)) == 1
    for other in SHIPPED_SERVICES:
        if other != name:
            assert refuses_connections(xinetd.ports[other]), other
    client = connect(name, xinetd.ports[name], client_tls_context)
    assert (tls_version(client) in ("TLSv1.2", "TLSv1.3")) == name.endswith("s")
    if name in ("ipop3", "pop3s"):
        message = pop3_reads_first_message(client, mail_setup)
    else:
        message = imap_reads_first_message(client, mail_setup)
    assert message == mail_setup.messages[0]
    wait_until(lambda: not xinetd.server_pids(), "the server to exit after the client logged out")


def test_server_runs_as_the_user_after_login(xinetd, mail_setup, system_account):
    """The imapd that xinetd started as root holds only the user's uids and gids once logged in."""
    assert xinetd.start(mail_setup.config_path, enabled=("imap",)) == 1
    client = imaplib.IMAP4("127.0.0.1", xinetd.ports["imap"], timeout=GUARD_SECONDS)
    pids = xinetd.server_pids()
    assert len(pids) == 1
    assert proc_status(pids[0])["Uid"].split() == ["0"] * 4
    assert client.login(mail_setup.user, mail_setup.password)[0] == "OK"
    status = proc_status(pids[0])
    assert status["Uid"].split() == [str(system_account.pw_uid)] * 4
    assert status["Gid"].split() == [str(system_account.pw_gid)] * 4
    client.logout()
    wait_until(lambda: not xinetd.server_pids(), "the server to exit after LOGOUT")


def test_a_wrong_password_is_refused_through_xinetd(xinetd, mail_setup):
    """Real PAM behind xinetd refuses a wrong password for the real user (-ERR, no mailbox opened)."""
    assert xinetd.start(mail_setup.config_path, enabled=("ipop3",)) == 1
    client = poplib.POP3("127.0.0.1", xinetd.ports["ipop3"], timeout=GUARD_SECONDS)
    client.user(mail_setup.user)
    with pytest.raises(poplib.error_proto, match="-ERR"):
        client.pass_("Wrong-pass-1")
    client.close()
    assert mail_setup.spool_messages() == mail_setup.messages
