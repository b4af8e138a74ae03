"""Real servers for the fault tests: virtual users, their spools, imapd/ipop3d as inetd runs them.

A MailRoom is a directory holding a spool directory (mode 1777, as
/var/mail), one home per user (with ~/Maildir when the room's driver is
Maildir), a passwd_file of virtual users served as one
unprivileged uid (the test account `pyimapd-test` or `nobody` when we are
root, else our own uid) and the configuration file.  Servers run as inetd
starts them: on one end of a socket pair (`imap_session`, `pop3_session`)
or behind the built-in listener on loopback (`start_listener`).
"""

import fcntl
import imaplib
import os
import poplib
import pwd
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from faultdrivers import DRIVERS
from faultlib import GUARD_SECONDS, REPO

IMAPD = REPO / "imapd.py"
IPOP3D = REPO / "ipop3d.py"
SERVED_ACCOUNTS = ("pyimapd-test", "nobody")
# How long a test delivery waits for the spool's locks.
DELIVERY_LOCK_SECONDS = 30


def served_ids():
    """(uid, gid) the virtual users are served as."""
    if os.geteuid() != 0:
        return os.getuid(), os.getgid()
    for name in SERVED_ACCOUNTS:
        try:
            entry = pwd.getpwnam(name)
        except KeyError:
            continue
        return entry.pw_uid, entry.pw_gid
    raise RuntimeError("no account %s to serve the test users as" % " or ".join(SERVED_ACCOUNTS))


class MailRoom:
    """Spools, homes, a passwd_file and a configuration for some virtual users."""

    def __init__(self, users, parent=None, driver=None, maildir_users=(), **settings):
        # Not under pytest's tmp_path: that is mode 0700, which the served uid cannot pass.
        self.root = Path(tempfile.mkdtemp(prefix="pyimapd-fault-", dir=parent))
        self.root.chmod(0o755)  # the served uid must reach its spool and home
        self.uid, self.gid = served_ids()
        self.driver = DRIVERS[driver or "mbox"] if isinstance(driver, (str, type(None))) \
            else driver
        self.users = {name: "pw-%s-1" % name for name in users}
        self.spool_dir = self.root / "spool"
        self.spool_dir.mkdir()
        self.spool_dir.chmod(0o1777)
        (self.root / "home").mkdir()
        for name in self.users:
            self.own(self.home(name), directory=True)
        (self.root / "passwd").write_text("".join(
            "%s:{PLAIN}%s:%d:%d::%s::\n" % (name, password, self.uid, self.gid, self.home(name))
            for name, password in self.users.items()))
        self.settings = {
            "mail_location": (self.driver.room_location()
                              or "mbox:~/mail:INBOX=%s/%%u" % self.spool_dir),
            "passwd_file": str(self.root / "passwd"),
            "cram_md5_file": str(self.root / "no-cram-md5.pwd"),
            "disable_plaintext_auth": "no",
            "login_failure_delay": "0",
            "mbox_lock_timeout": "20",
        }
        self.settings.update(settings)
        self.config = self.root / "pyimapd.conf"
        self.config.write_text("".join("%s = %s\n" % item for item in self.settings.items()))
        # Users served on Maildir in a room of mbox users: the same passwd_file, another
        # configuration (as two server instances would be).
        self.maildir_users = set(maildir_users)
        self.maildir_config = self.root / "pyimapd-maildir.conf"
        self.maildir_config.write_text("".join("%s = %s\n" % item for item in dict(
            self.settings, mail_location=DRIVERS["maildir"].room_location()).items()))

    def driver_of(self, user):
        return DRIVERS["maildir"] if user in self.maildir_users else self.driver

    def config_of(self, user):
        return self.maildir_config if user in self.maildir_users else self.config

    def location_of(self, user):
        if user in self.maildir_users:
            return DRIVERS["maildir"].room_location()
        return self.settings["mail_location"]

    def home(self, user):
        return self.root / "home" / user

    def remove(self):
        shutil.rmtree(self.root, ignore_errors=True)

    def spool(self, user):
        return self.spool_dir / user

    def inbox(self, user):
        """The user's INBOX: the spool file (mbox) or ~/Maildir."""
        return Path(self.driver_of(user).inbox(self.home(user), self.spool(user)))

    def folder(self, user, name):
        return Path(self.driver_of(user).room_folder(self.home(user), name))

    def write_inbox(self, user, messages):
        """The user's INBOX holding these mbox messages (Maildir: one file each, in new/)."""
        if self.driver_of(user).name == "mbox":
            return self.write_spool(user, b"".join(messages))
        self.driver_of(user).create(str(self.inbox(user)), messages)
        self.own_tree(self.inbox(user))
        return self.inbox(user)

    def own_tree(self, top):
        """Hand a directory and all in it to the served uid."""
        for directory, _, files in os.walk(top):
            self.own(Path(directory))
            for name in files:
                self.own(Path(directory) / name)

    def own(self, path, directory=False):
        """Create (if a directory) and hand a path to the served uid."""
        if directory:
            path.mkdir(mode=0o700, exist_ok=True)
        if os.geteuid() == 0:
            os.chown(path, self.uid, self.gid)

    def write_spool(self, user, data):
        """The user's spool file with this content, owned by the user, mode 0600."""
        path = self.spool(user)
        path.write_bytes(data)
        path.chmod(0o600)
        self.own(path)
        return path

    def deliver(self, user, data):
        """Deliver one mbox message (From_ line included) as an MTA does: appended under all
        three locks (mbox), or written to tmp/ and renamed into new/ (Maildir)."""
        self.driver_of(user).deliver(str(self.inbox(user)), data)

    def imap_session(self):
        """imaplib on a socket pair whose other end is imapd's fd 0/1, as inetd starts it."""
        return _connected(SocketIMAP4, IMAPD, self.config)

    def pop3_session(self):
        """poplib on a socket pair whose other end is ipop3d's fd 0/1."""
        return _connected(SocketPOP3, IPOP3D, self.config)

    def start_listener(self, server, config=None):
        """server.listener on 127.0.0.1 (a free port), running a server script per connection
        (with this room's configuration, or `config`)."""
        config = config or self.config
        return Listener.start(server, config, self.root / ("%s-%s.log" % (server.stem,
                                                                          config.stem)))


def _connected(client_class, server, config):
    ours, theirs = socket.socketpair()
    with theirs:
        process = subprocess.Popen([sys.executable, str(server), "--config", str(config)],
                                   cwd=REPO, stdin=theirs, stdout=theirs,
                                   stderr=subprocess.DEVNULL)
    ours.settimeout(GUARD_SECONDS)
    return client_class(ours, process)


class SocketIMAP4(imaplib.IMAP4):
    """imaplib's client on an already connected socket; `.server` is the imapd process."""

    def __init__(self, connected_socket, server):
        self._connected_socket, self.server = connected_socket, server
        super().__init__("localhost")

    def _create_socket(self, timeout=None):
        return self._connected_socket


class SocketPOP3(poplib.POP3):
    """poplib's client on an already connected socket; `.server` is the ipop3d process."""

    def __init__(self, connected_socket, server):
        self._connected_socket, self.server = connected_socket, server
        super().__init__("localhost")

    def _create_socket(self, timeout):
        return self._connected_socket


def hang_up(client):
    """Close a client's socket for good, whatever state its protocol is in."""
    sock = getattr(client, "sock", None)
    if sock is None:
        return
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass
    sock.close()


class Listener:
    """A running `python -m server.listener` serving one server script on loopback."""

    def __init__(self, process, port, log_path):
        self.process, self.port, self.log_path = process, port, log_path

    @classmethod
    def start(cls, server, config, log_path):
        command = [sys.executable, "-m", "server.listener", "--host", "127.0.0.1", "--port", "0",
                   "--", sys.executable, str(server), "--config", str(config)]
        with open(log_path, "wb") as log:
            process = subprocess.Popen(command, cwd=REPO, stdin=subprocess.DEVNULL,
                                       stdout=subprocess.PIPE, stderr=log)
        line = process.stdout.readline().decode("ascii", "replace")
        if not line.startswith("listening on "):
            process.kill()
            process.wait()
            raise RuntimeError("listener did not start: %r" % line)
        return cls(process, int(line.strip().rpartition(":")[2]), log_path)

    def sessions(self):
        """PIDs of the server processes the listener started that still exist."""
        return children_of(self.process.pid)

    def stop(self):
        if self.process.poll() is None:
            self.process.terminate()
        self.process.wait(GUARD_SECONDS)
        self.process.stdout.close()


def children_of(pid):
    """PIDs whose parent is pid (from /proc)."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % entry, "rb") as handle:
                fields = handle.read().rsplit(b")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            found.append(int(entry))
    return found


def rss_kib(pid):
    """Resident set size of a process in KiB (VmRSS), or None once it is gone."""
    try:
        with open("/proc/%d/status" % pid) as handle:
            for line in handle:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


def deliver_locked(spool, data):
    """Append an mbox message under dotlock, fcntl and flock, as a careful MTA does."""
    lock_path = str(spool) + ".lock"
    deadline = time.monotonic() + DELIVERY_LOCK_SECONDS
    lock_fd = _retry_until(deadline, lambda: os.open(
        lock_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644))
    try:
        with open(spool, "r+b") as handle:
            _retry_until(deadline, lambda: fcntl.lockf(handle, fcntl.LOCK_EX | fcntl.LOCK_NB))
            _retry_until(deadline, lambda: fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB))
            handle.seek(0, os.SEEK_END)
            handle.write(separated(handle, data))
            handle.flush()
            os.fsync(handle.fileno())
    finally:
        os.close(lock_fd)
        os.unlink(lock_path)


def separated(handle, data):
    """data after whatever empty line a From_ line needs before it (the file's end is read)."""
    end = handle.tell()
    if not end:
        return data
    handle.seek(max(0, end - 2))
    tail = handle.read()
    if tail.endswith(b"\n\n") or end == 1 and tail == b"\n":
        return data
    return (b"\n" if tail.endswith(b"\n") else b"\n\n") + data


def _retry_until(deadline, attempt):
    while True:
        try:
            return attempt()
        except (BlockingIOError, FileExistsError, PermissionError):
            if time.monotonic() > deadline:
                raise
            time.sleep(0.01)


def terminate(process):
    """SIGKILL a server process we started and reap it."""
    try:
        process.send_signal(signal.SIGKILL)
    except ProcessLookupError:
        pass
    process.wait(GUARD_SECONDS)
