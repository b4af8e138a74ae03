"""Fixtures for interop tests: a real system user's spool, and ipop3d or imapd started as inetd starts them.

API (all function-scoped unless noted):

- `mail_setup` -> MailSetup: a temporary spool (mode 1777) holding the mbox of
  the real system user `pyimapd-test` (MESSAGE_COUNT messages from
  tests/mailgen.py, owned by the user, mode 0600), a home directory for the
  user's folders and index, and a configuration file. `.messages` are the client
  views; `.spool_messages()` reads the spool back; `.append(count)` delivers more
  mail as an MTA would; `.write_config(**settings)` rewrites the configuration
  with extra settings. Skips unless running as root with the user present.
- `start_pop3` -> start(config_path, *server_args) -> Listener(host, port):
  server/listener.py on 127.0.0.1 and a free port, running
  `[sys.executable, ipop3d.py, "--config", config_path, *server_args]` per
  connection. Stopped (SIGTERM) at teardown; its stderr goes to a log file that
  is printed when the test fails.
- `start_imap`: the same for imapd.py.
- `pop3_over_socketpair` -> open(config_path, *server_args) -> poplib.POP3
  connected to ipop3d running on one end of a socket pair as fd 0 and 1, for
  tests that need no TCP; its `.server_process` is the ipop3d Popen, which is
  waited for at teardown.
- `tls_certificate` (session) -> (cert_path, key_path): a self-signed
  certificate for CN=localhost and IP 127.0.0.1, made by `openssl req`.
- `client_tls_context` -> ssl.SSLContext that trusts only that certificate.
"""

import os
import poplib
import pwd
import shutil
import socket
import ssl
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import pytest

TESTS_DIR = Path(__file__).resolve().parents[1]
REPO_ROOT = TESTS_DIR.parent
IPOP3D = REPO_ROOT / "ipop3d.py"
IMAPD = REPO_ROOT / "imapd.py"
# tests/mailgen.py is shared by every test directory; none of them is a package.
sys.path.insert(0, str(TESTS_DIR))

import mailgen  # noqa: E402  (needs the path above)

TEST_USER = "pyimapd-test"
TEST_PASSWORD = "Test-pass-1"
MESSAGE_COUNT = 12
MAILBOX_SEED = 1939
# Small, so that failed-login delays and lock waits do not slow the suite.
LOGIN_FAILURE_DELAY = 0.1
MBOX_LOCK_TIMEOUT = 2
# A guard against a hung process, never a measurement.
PROCESS_GUARD_SECONDS = 60


@pytest.fixture(scope="session")
def system_account():
    """The pwd entry of the real system user the server logs in through PAM."""
    if os.geteuid() != 0:
        pytest.skip("interop tests run as root: the server logs in a real user and drops root, as under inetd")
    try:
        return pwd.getpwnam(TEST_USER)
    except KeyError:
        pytest.skip("system user %s does not exist; run `bash tests/setup_system_user.sh` as root" % TEST_USER)


@dataclass
class MailSetup:
    """One test's spool, home, configuration and the messages it started with."""

    account: pwd.struct_passwd
    root: Path
    config_path: Path
    messages: list = field(default_factory=list)
    settings: dict = field(default_factory=dict)
    user: str = TEST_USER
    password: str = TEST_PASSWORD

    @property
    def spool_dir(self):
        return self.root / "spool"

    @property
    def spool(self):
        return self.spool_dir / self.user

    @property
    def home(self):
        return self.root / "home"

    def write_config(self, **settings):
        """Write the configuration file: the base settings, overridden by `settings`."""
        self.settings.update(settings)
        text = "".join("%s = %s\n" % item for item in self.settings.items())
        self.config_path.write_text("# pyimapd interop test configuration\n" + text)
        return self.config_path

    def spool_messages(self):
        """The messages now in the spool file, as a client would see them."""
        return mailgen.read_mbox(self.spool)

    def append(self, count, seed=MAILBOX_SEED + 1):
        """Append `count` new messages to the spool as an MTA does; return their client views."""
        first = len(self.messages) + 1
        added = mailgen.make_mbox(self.spool, count, seed, append=True, first_number=first)
        self.messages.extend(added)
        return added


def _make_private_root():
    """A directory the test user can traverse (pytest's own tmp tree is root-only, mode 0700)."""
    root = Path(tempfile.mkdtemp(prefix="pyimapd-interop-"))
    root.chmod(0o755)
    return root


def _make_user_dir(path, account, mode):
    path.mkdir(mode=mode)
    path.chmod(mode)
    os.chown(path, account.pw_uid, account.pw_gid)


def _base_settings(root):
    home = root / "home"
    return {
        "mail_location": "mbox:%s/mail:INBOX=%s/%%u" % (home, root / "spool"),
        "disable_plaintext_auth": "no",
        "cram_md5_file": str(root / "no-cram-md5.pwd"),
        "pam_service": "pop",
        "login_failure_delay": str(LOGIN_FAILURE_DELAY),
        "mbox_lock_timeout": str(MBOX_LOCK_TIMEOUT),
        "index_dir": str(home / ".pyimapd"),
    }


@pytest.fixture
def mail_setup(system_account, tmp_path):
    """A spool with MESSAGE_COUNT generated messages for the test user, and its configuration."""
    root = _make_private_root()
    try:
        (root / "spool").mkdir()
        (root / "spool").chmod(0o1777)  # as UW recommends for /var/spool/mail: users make dotlocks
        _make_user_dir(root / "home", system_account, 0o700)
        setup = MailSetup(account=system_account, root=root, config_path=tmp_path / "pyimapd.conf",
                          settings=_base_settings(root))
        setup.messages = mailgen.make_mbox(setup.spool, MESSAGE_COUNT, MAILBOX_SEED)
        os.chown(setup.spool, system_account.pw_uid, system_account.pw_gid)
        setup.spool.chmod(0o600)
        setup.write_config()
        yield setup
    finally:
        shutil.rmtree(root, ignore_errors=True)


@dataclass
class Listener:
    """A running server/listener.py process serving ipop3d or imapd on host:port."""

    host: str
    port: int
    process: subprocess.Popen
    log_path: Path

    def stop(self):
        """Stop accepting connections (SIGTERM) and wait for the listener to exit."""
        if self.process.poll() is None:
            self.process.terminate()
        self.process.wait(timeout=PROCESS_GUARD_SECONDS)
        self.process.stdout.close()


def _listener_command(server_script, config_path, server_args):
    server = [sys.executable, str(server_script), "--config", str(config_path), *server_args]
    return [sys.executable, "-m", "server.listener", "--host", "127.0.0.1", "--port", "0", "--", *server]


def _start_listener(server_script, config_path, server_args, log_path):
    with open(log_path, "wb") as log:
        process = subprocess.Popen(_listener_command(server_script, config_path, server_args),
                                   cwd=REPO_ROOT, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                   stderr=log)
    line = process.stdout.readline().decode("ascii", "replace")
    if not line.startswith("listening on "):
        process.kill()
        process.wait()
        pytest.fail("listener did not start: %r\n%s" % (line, log_path.read_text(errors="replace")))
    port = int(line.strip().rpartition(":")[2])
    return Listener("127.0.0.1", port, process, log_path)


def _print_logs(paths):
    """Show what the listener and the servers wrote to stderr; pytest prints it for failed tests."""
    for path in paths:
        text = path.read_text(errors="replace") if path.exists() else ""
        if text:
            print("---- %s ----\n%s" % (path.name, text))


def _listeners_of(server_script, tmp_path):
    """Fixture body: yield start(config_path, *server_args) for one server; stop all at teardown."""
    listeners = []

    def start(config_path, *server_args):
        log_path = tmp_path / ("%s-listener-%d.log" % (server_script.stem, len(listeners)))
        listener = _start_listener(server_script, config_path, server_args, log_path)
        listeners.append(listener)
        return listener

    yield start
    for listener in listeners:
        listener.stop()
    _print_logs([listener.log_path for listener in listeners])


@pytest.fixture
def start_pop3(tmp_path):
    """Start ipop3d behind the built-in listener on 127.0.0.1, as inetd would; stop it afterwards."""
    yield from _listeners_of(IPOP3D, tmp_path)


@pytest.fixture
def start_imap(tmp_path):
    """Start imapd behind the built-in listener on 127.0.0.1, as inetd would; stop it afterwards."""
    yield from _listeners_of(IMAPD, tmp_path)


class SocketPOP3(poplib.POP3):
    """poplib's client on an already connected socket instead of a TCP connection it opens."""

    def __init__(self, connected_socket, server_process):
        self._connected_socket = connected_socket
        self.server_process = server_process
        super().__init__("localhost")

    def _create_socket(self, timeout):
        return self._connected_socket


def _hang_up(client_end):
    """Close our end for good, even while poplib's file object still refers to it."""
    try:
        client_end.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass  # already closed by the test
    client_end.close()


@pytest.fixture
def pop3_over_socketpair(tmp_path):
    """Run ipop3d with one end of a socket pair as fd 0 and 1 (as inetd passes the connection)."""
    sessions = []

    def open_session(config_path, *server_args):
        client_end, server_end = socket.socketpair()
        log_path = tmp_path / ("socketpair-%d.log" % len(sessions))
        with server_end, open(log_path, "wb") as log:
            process = subprocess.Popen([sys.executable, str(IPOP3D), "--config", str(config_path),
                                        *server_args], cwd=REPO_ROOT,
                                       stdin=server_end, stdout=server_end, stderr=log)
        sessions.append((client_end, process, log_path))
        return SocketPOP3(client_end, process)

    yield open_session
    for client_end, process, _ in sessions:
        _hang_up(client_end)
        process.wait(timeout=PROCESS_GUARD_SECONDS)
    _print_logs([log_path for _, _, log_path in sessions])


@pytest.fixture(scope="session")
def tls_certificate(tmp_path_factory):
    """A self-signed certificate and key for localhost/127.0.0.1, valid for two days."""
    if shutil.which("openssl") is None:
        pytest.skip("openssl is not installed (apt-get install openssl)")
    directory = tmp_path_factory.mktemp("tls")
    cert, key = directory / "cert.pem", directory / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes",
                    "-subj", "/CN=localhost", "-days", "2",
                    "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1",
                    "-keyout", str(key), "-out", str(cert)],
                   check=True, capture_output=True, stdin=subprocess.DEVNULL)
    return cert, key


@pytest.fixture
def client_tls_context(tls_certificate):
    """A client TLS context that verifies the server against the test certificate only."""
    return ssl.create_default_context(cafile=str(tls_certificate[0]))
