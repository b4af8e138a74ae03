"""Wait mode: accept connections on an inherited listening socket, one forked child each.

xinetd `wait = yes` and systemd `Accept=no` start the server once with the
listening socket and leave accepting to it. This process then imports what
sessions need and reads the configuration once, and for each connection forks
a child that puts the connection on fd 0/1 and runs exactly what an
inetd-started process runs (server.entry.Connection.serve): its own syslog
lines, timeouts, implicit TLS by port, the certificate read per connection,
the privilege drop after login. A child starts with no interpreter start-up
and no imports left to do, which is what makes this mode fast.

The parent never reads or writes a connection. It reaps children on SIGCHLD,
runs at most `max_connections` at once (the rest wait in the listen backlog),
and exits after `wait_mode_idle_exit` seconds with no session, so that xinetd
or systemd start it afresh for the next client; the socket stays theirs, so
no connection is lost meanwhile. SIGTERM or SIGINT stop the accepting and
leave running sessions to finish.
"""

import errno
import os
import select
import signal
import time

from server.entry import SD_LISTEN_FDS_START
from server.listener import RESOURCE_RETRY_SECONDS, SignalPipe, reap_children

# Sessions import the protocol, storage and auth modules after the greeting (at
# login, SELECT, FETCH ...); all of them are loaded here once instead of in
# every child, with the standard and third-party modules they load lazily.
PRELOAD_PACKAGES = ("auth", "imap", "mailstore")
PRELOAD_MODULES = ("server.login", "server.privileges", "server.compression", "pam", "crypt",
                   "datetime", "email.utils", "ipaddress", "unicodedata", "traceback")
# TLS, preloaded only where a certificate is configured.
PRELOAD_TLS = ("ssl", "server.tls")
_STOP_SIGNALS = {int(signal.SIGINT), int(signal.SIGTERM)}


class ConfigCache:
    """The configuration, read once and again only when its file changes (stat per connection)."""

    def __init__(self, path):
        from server.config import resolve_path

        self.path = path
        self.file = resolve_path(path)
        self.signature = self.stat()
        self.config = self.load()

    def stat(self):
        try:
            info = os.stat(self.file)
        except OSError:
            return None
        return (info.st_ino, info.st_size, info.st_mtime_ns, info.st_ctime_ns)

    def load(self):
        from server.config import load_or_error

        return load_or_error(self.path)

    def current(self):
        """The Config (or ConfigError) for the next connection, re-read if the file changed."""
        signature = self.stat()
        if signature != self.signature:
            self.signature, self.config = signature, self.load()
        return self.config

    def setting(self, name):
        """A setting of the current configuration; its default while the file has an error."""
        from server.config import SETTINGS

        return getattr(self.config, name, SETTINGS[name][1])


def preload(config):
    """Import what sessions need, so that children find it loaded.

    A module that cannot be imported (python-pam missing) is left to the
    child, which then fails or logs as an inetd-started server would.
    """
    import importlib
    import pkgutil
    import warnings

    names = list(PRELOAD_MODULES)
    for package in PRELOAD_PACKAGES:
        module = importlib.import_module(package)
        names += [package + "." + info.name for info in pkgutil.iter_modules(module.__path__)]
    if getattr(config, "ssl_cert_file", ""):
        names += PRELOAD_TLS
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # crypt, as auth imports it
        for name in names:
            try:
                importlib.import_module(name)
            except ImportError:
                continue


def take_listener(listening):
    """Leave the listening socket only on `listening`'s own descriptor.

    xinetd passes it as fd 0 and 1, systemd as fd 3: those copies are
    pointed at /dev/null or closed, so that a child, which puts its
    connection on fd 0/1 and closes `listening`, holds no way to accept.
    """
    own, identity = listening.fileno(), _inode(listening.fileno())
    for fd in (0, 1, SD_LISTEN_FDS_START):
        if fd == own or _inode(fd) != identity:
            continue
        if fd == SD_LISTEN_FDS_START:
            os.close(fd)
        else:
            null = os.open(os.devnull, os.O_RDWR)
            os.dup2(null, fd)
            os.close(null)
    for name in ("LISTEN_PID", "LISTEN_FDS", "LISTEN_FDNAMES"):
        os.environ.pop(name, None)


def _inode(fd):
    try:
        info = os.fstat(fd)
    except OSError:
        return None
    return (info.st_dev, info.st_ino)


def run(listening, connection):
    """Accept and fork until idle for wait_mode_idle_exit seconds or stopped; the exit status."""
    from server.log import Log

    take_listener(listening)
    configs = ConfigCache(connection.options["config"])
    preload(configs.config)
    log = Log(connection.program, configs.setting("syslog_facility"))
    signals = SignalPipe()
    try:
        AcceptLoop(listening, connection, configs, log, signals).run()
    finally:
        listening.close()
        signals.close()
    return 0


class AcceptLoop:
    """The parent's loop: wait for a connection, a signal or the idle deadline."""

    def __init__(self, listening, connection, configs, log, signals):
        self.listening, self.connection = listening, connection
        self.configs, self.log, self.signals = configs, log, signals
        self.children = set()
        self.last_activity = time.monotonic()

    def run(self):
        pause = None
        while True:
            full = len(self.children) >= self.configs.setting("max_connections")
            waiting_on = [self.signals.read_fd]
            if not (full or pause):
                waiting_on.append(self.listening)
            timeout = pause if pause else self.idle_timeout()
            readable, _, _ = select.select(waiting_on, [], [], timeout)
            pause = None
            if self.signals.read_fd in readable:
                delivered = self.signals.received()
                self.reap()
                if delivered & _STOP_SIGNALS:
                    return
            if self.listening in readable:
                if not self.accept_and_fork():
                    pause = RESOURCE_RETRY_SECONDS
            elif not readable and not self.children and self.idle_timeout() == 0:
                return

    def idle_timeout(self):
        """Seconds left before the idle exit; None while sessions run (a child's exit wakes us)."""
        if self.children:
            return None
        idle = time.monotonic() - self.last_activity
        return max(0.0, self.configs.setting("wait_mode_idle_exit") - idle)

    def reap(self):
        before = len(self.children)
        reap_children(self.children)
        if len(self.children) != before:
            self.last_activity = time.monotonic()

    def accept_and_fork(self):
        """Accept one connection and fork its session; False when resources ran out."""
        try:
            sock, _ = self.listening.accept()
        except (BlockingIOError, InterruptedError, ConnectionAbortedError):
            return True
        except OSError as error:
            # Out of descriptors or memory: keep accepting later, as inetd does.
            if error.errno in (errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM):
                return False
            raise
        self.last_activity = time.monotonic()
        with sock:
            config = self.configs.current()
            try:
                pid = os.fork()
            except OSError as error:
                self.log("err", "wait mode: cannot fork for a connection: %s" % error)
                return False
            if pid == 0:
                self.run_child(sock, config)
            self.children.add(pid)
        return True

    def run_child(self, sock, config):
        """In the child: the connection on fd 0/1, the inetd-mode session, then exit; never returns."""
        status = 1
        try:
            self.signals.close()  # the default handlers and signal mask, as inetd gives them
            self.listening.close()
            os.dup2(sock.fileno(), 0)
            os.dup2(sock.fileno(), 1)
            sock.close()
            status = self.connection.serve(config)
        except SystemExit as exit:
            status = exit.code if isinstance(exit.code, int) else 1
        except BaseException:
            # serve() logs the session's own errors; this is the fork's plumbing failing.
            import traceback

            self.log("err", "wait mode: connection setup failed: %s" % traceback.format_exc())
        finally:
            os._exit(status)
