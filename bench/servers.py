"""The servers under test, each set up the way it runs in production for one connection.

- pyimapd: `/usr/bin/python3 imapd.py --config FILE` (and ipop3d.py) started as
  inetd starts it: as root when the benchmark runs as root (it drops to the
  user after login), the socket on fd 0/1; virtual user from a passwd_file,
  logged in with LOGIN / USER+PASS.
- Dovecot: `/usr/lib/dovecot/imap` and `/usr/lib/dovecot/pop3` with `-c` a
  minimal dovecot.conf, run as the user with USER and HOME set: preauth mode,
  so there is no login step. Preauthenticated, Dovecot's pop3 sends no greeting
  at all (it opens the mailbox and waits for a command), so its "greeting" is
  the reply to a NOOP sent at once.
- GNU mailutils: `imap4d -i --preauth` (inetd mode, `preauth stdio`: the user
  is the one running it) and `pop3d -i` started as root as inetd would, logged
  in with USER+PASS through its `virtdomain` module (a passwd file of its own).

Every server gets its own copy of the same spool file. The served identity
is the system account `pyimapd-test` (created by tests/setup_system_user.sh)
or `nobody` when the benchmark runs as root, else the invoking user.
"""

import os
import pwd
import shutil
import socket
import subprocess
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PYTHON = "/usr/bin/python3"
PASSWORD = "bench-Secret-1"
DOVECOT_IMAP = "/usr/lib/dovecot/imap"
DOVECOT_POP3 = "/usr/lib/dovecot/pop3"
IMAP4D = "/usr/sbin/imap4d"
POP3D = "/usr/sbin/pop3d"
MAILUTILS_DOMAIN = "localhost"
# What a server install contains (setup.cfg), byte-compiled before measuring.
PACKAGES = ("imap", "pop3", "mailstore", "server", "auth", "imapd.py", "ipop3d.py")
INSTALL_HINT = "apt-get install dovecot-imapd dovecot-pop3d mailutils-imap4d mailutils-pop3d"


class Identity:
    """Whom the mail belongs to, and whom inetd-style servers are started as."""

    def __init__(self):
        if os.geteuid() == 0:
            for name in ("pyimapd-test", "nobody"):
                try:
                    entry = pwd.getpwnam(name)
                    break
                except KeyError:
                    continue
            else:
                raise SystemExit("run as root: needs the account pyimapd-test or nobody")
            self.inetd_uid, self.inetd_gid = 0, 0
        else:
            entry = pwd.getpwuid(os.getuid())
            self.inetd_uid, self.inetd_gid = os.getuid(), os.getgid()
        self.name, self.uid, self.gid = entry.pw_name, entry.pw_uid, entry.pw_gid

    def own(self, path):
        if os.geteuid() == 0:
            os.chown(path, self.uid, self.gid)


def _environment(identity, home):
    return {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "USER": identity.name,
            "LOGNAME": identity.name, "HOME": str(home), "LANG": "C.UTF-8"}


class Launch:
    """How to start one server for one connection, and how its client logs in."""

    def __init__(self, argv, env, cwd, user, group, login=None, greets=True):
        self.argv, self.env, self.cwd, self.user, self.group = argv, env, cwd, user, group
        # None for preauth, else (user name, password) for LOGIN or USER/PASS.
        self.login = login
        # Dovecot's pop3 started preauthenticated sends no greeting: it answers commands at once.
        self.greets = greets


class Server:
    """A server's private directory: a spool, a home, its configuration."""

    name = label = ""
    binaries = ()

    def __init__(self, root, identity):
        self.root = Path(root)
        self.identity = identity

    @classmethod
    def missing(cls):
        """The binaries of this server that are not installed."""
        return [path for path in cls.binaries if not os.access(path, os.X_OK)]

    def setup(self):
        """Create the directories and configuration (the spool stays empty)."""
        if self.root.exists():
            shutil.rmtree(self.root)
        self.root.mkdir(parents=True)
        self.root.chmod(0o755)
        self.spool_dir = self.root / "spool"
        self.spool_dir.mkdir()
        # The user creates its own dotlock here, as in a 1777 /var/mail.
        self.spool_dir.chmod(0o1777)
        self.home = self.root / "home"
        self.home.mkdir()
        self.identity.own(self.home)
        self.write_config()

    def spool(self, protocol):
        return self.spool_dir / self.identity.name

    def install(self, source, protocol):
        """A fresh private copy of source as the spool file, and no index or cache at all."""
        self.reset_index()
        for path in self.spool_dir.iterdir():
            path.unlink()
        target = self.spool(protocol)
        if source is None:
            target.write_bytes(b"")
        else:
            shutil.copyfile(source, target)
        target.chmod(0o600)
        self.identity.own(target)
        return target

    def reset_index(self):
        for entry in self.home.iterdir():
            if entry.is_dir() and not entry.is_symlink():
                shutil.rmtree(entry)
            else:
                entry.unlink()

    def write_config(self):
        raise NotImplementedError

    def launch(self, protocol):
        raise NotImplementedError

    def version(self):
        return ""


class PyImapd(Server):
    name, label = "pyimapd", "pyimapd"
    binaries = (PYTHON,)

    def write_config(self):
        (self.root / "passwd").write_text("%s:{PLAIN}%s:%d:%d::%s::\n" % (
            self.identity.name, PASSWORD, self.identity.uid, self.identity.gid, self.home))
        self.config = self.root / "pyimapd.conf"
        # index_dir stays at its default, ~/.pyimapd (inside home, emptied for a first open).
        self.config.write_text(
            "mail_location = mbox:~/mail:INBOX=%s/%%u\n"
            "passwd_file = %s\n"
            "cram_md5_file = %s\n"
            "login_failure_delay = 0\n"
            # Wait mode must not exit between the start-up samples.
            "wait_mode_idle_exit = 3600\n"
            % (self.spool_dir, self.root / "passwd", self.root / "no-cram-md5.pwd"))

    def setup(self):
        super().setup()
        self.compile()

    @staticmethod
    def compile():
        """Byte-compile the server as `pip install` does: the modules imported after the
        privilege drop could not write their own __pycache__, so every connection would
        compile them again."""
        subprocess.run([PYTHON, "-m", "compileall", "-q", "-j", "0"] +
                       [str(REPO / name) for name in PACKAGES], check=True)

    def launch(self, protocol):
        program = REPO / ("imapd.py" if protocol == "imap" else "ipop3d.py")
        return Launch([PYTHON, str(program), "--config", str(self.config)],
                      _environment(self.identity, self.root), str(self.root),
                      self.identity.inetd_uid, self.identity.inetd_gid,
                      login=(self.identity.name, PASSWORD))

    def start_wait_mode(self, protocol, stderr_path):
        """The server started once on a loopback listening socket, as xinetd `wait = yes` starts it."""
        return WaitModeProcess(self.launch(protocol), stderr_path)

    def version(self):
        commit = subprocess.run(["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"],
                                capture_output=True, text=True).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(REPO), "status", "--porcelain", "--",
                                *PACKAGES],
                               capture_output=True, text=True).stdout.strip()
        return "pyimapd %s%s" % (commit or "?", " (+ uncommitted server changes)" if dirty else "")


class WaitModeProcess:
    """One pyimapd process holding a listening socket on fd 0/1; it forks a session per connection."""

    def __init__(self, launch, stderr_path):
        self.listener = socket.create_server(("127.0.0.1", 0), backlog=64)
        self.address = self.listener.getsockname()
        with open(stderr_path, "ab") as stderr:
            self.process = subprocess.Popen(launch.argv, stdin=self.listener, stdout=self.listener,
                                            stderr=stderr, env=launch.env, cwd=launch.cwd,
                                            user=launch.user, group=launch.group, extra_groups=[],
                                            close_fds=True)

    def stop(self):
        """SIGTERM (stop accepting), then wait for the process; True if it was still running."""
        running = self.process.poll() is None
        if running:
            self.process.terminate()
        self.process.wait(timeout=60)
        self.listener.close()
        return running


class Dovecot(Server):
    name, label = "dovecot", "Dovecot"
    binaries = (DOVECOT_IMAP, DOVECOT_POP3)

    def write_config(self):
        self.config = self.root / "dovecot.conf"
        # Everything else at Dovecot's defaults (mbox_lazy_writes, dirty syncs, index files
        # in ~/mail/.imap), which is how Debian runs it. Standalone, it logs to stderr.
        self.config.write_text(
            "mail_location = mbox:~/mail:INBOX=%s/%%u\n"
            "ssl = no\n"
            "protocols = imap pop3\n"
            "base_dir = %s\n"
            "state_dir = %s\n"
            % (self.spool_dir, self.root / "run", self.root / "state"))
        self.config.chmod(0o644)

    def launch(self, protocol):
        binary = DOVECOT_IMAP if protocol == "imap" else DOVECOT_POP3
        return Launch([binary, "-c", str(self.config)], _environment(self.identity, self.home),
                      str(self.home), self.identity.uid, self.identity.gid,
                      greets=protocol == "imap")

    def version(self):
        result = subprocess.run(["dovecot", "--version"], capture_output=True, text=True)
        return "Dovecot " + result.stdout.strip()


class Mailutils(Server):
    name, label = "mailutils", "mailutils"
    binaries = (IMAP4D, POP3D)

    def setup(self):
        super().setup()
        # pop3d's virtdomain module serves <home>/INBOX; that directory holds its spool.
        self.pop_box = self.root / "popbox"
        self.pop_box.mkdir()
        self.identity.own(self.pop_box)

    def spool(self, protocol):
        if protocol == "pop3":
            return self.pop_box / "INBOX"
        return super().spool(protocol)

    def install(self, source, protocol):
        for path in self.pop_box.iterdir():
            path.unlink()
        return super().install(source, protocol)

    def write_config(self):
        hashed = subprocess.run(["openssl", "passwd", "-6", PASSWORD], capture_output=True,
                                text=True, check=True).stdout.strip()
        domains = self.root / "virtdomain"
        domains.mkdir()
        (domains / MAILUTILS_DOMAIN).write_text("%s:%s:%d:%d::%s:/bin/false\n" % (
            self.identity.name, hashed, self.identity.uid, self.identity.gid, self.root / "popbox"))
        self.imap_config = self.root / "imap4d.conf"
        self.imap_config.write_text(
            'mailbox { mailbox-pattern "%s/${user}"; mailbox-type mbox; };\n'
            "logging { syslog false; };\n"
            "preauth stdio;\n" % self.spool_dir)
        self.pop_config = self.root / "pop3d.conf"
        self.pop_config.write_text(
            "mailbox { mailbox-type mbox; };\n"
            "logging { syslog false; };\n"
            "auth { authentication generic; authorization virtdomain; };\n"
            'virtdomain { passwd-dir "%s"; };\n' % domains)

    def launch(self, protocol):
        if protocol == "imap":
            return Launch([IMAP4D, "--config-file=%s" % self.imap_config, "-i", "--preauth"],
                          _environment(self.identity, self.home), str(self.home),
                          self.identity.uid, self.identity.gid)
        return Launch([POP3D, "--config-file=%s" % self.pop_config, "-i"],
                      _environment(self.identity, self.root), str(self.root),
                      self.identity.inetd_uid, self.identity.inetd_gid,
                      login=("%s@%s" % (self.identity.name, MAILUTILS_DOMAIN), PASSWORD))

    def version(self):
        result = subprocess.run([IMAP4D, "--version"], capture_output=True, text=True)
        return result.stdout.splitlines()[0] if result.stdout else "GNU mailutils"


SERVERS = {server.name: server for server in (PyImapd, Dovecot, Mailutils)}
