"""Golden transcripts played against the real ipop3d and imapd, started as inetd starts them.

The server runs as `python ipop3d.py --config FILE` (transcripts in pop3/) or
`python imapd.py --config FILE` (transcripts in imap/) with fd 0 and fd 1 on
one end of a socket pair; the test holds the other end.

Transcript syntax, one directive per line:

    # text              a comment (blank lines are skipped too)
    @mailbox NAME       the spool starts as mailboxes/NAME.mbox (default: the UW fixture INBOX)
    @config NAME = V    a setting for this transcript's configuration file
    C: text             send text and CRLF ("C:" alone sends an empty line)
    C+ text             queue a line; queued lines go out in one write with the
                        next C: line, or before the next server line is read
    C! NAME = md5 TEXT          hex MD5 of TEXT (the APOP digest)
    C! NAME = cram-md5 USER SECRET CHALLENGE
                                the base64 CRAM-MD5 answer to a base64 challenge
    S: text             the next server line is exactly text
    S~ regex            the next server line matches regex (re.fullmatch);
                        named groups become variables, used as {NAME} in C lines
    =HANGUP             the client closes the connection without QUIT
    =RECONNECT          the session ends; a new one starts on the same mailbox
    =MAILBOX-UNCHANGED  the session ends; the spool file is byte for byte as before
    =MAILBOX-COUNT n    the session ends; the spool file holds n messages

A session ends when the server closes the connection without sending anything
more than the transcript expects, exits with status 0 and writes no stderr.
"""

import base64
import hashlib
import hmac
import os
import pwd
import re
import shutil
import socket
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
SERVER = REPO / "ipop3d.py"
IMAP_SERVER = REPO / "imapd.py"
HERE = Path(__file__).resolve().parent
TRANSCRIPTS = HERE / "pop3"
IMAP_TRANSCRIPTS = HERE / "imap"
MAILBOXES = HERE / "mailboxes"
UW_FIXTURES = Path("/work/shared/fixtures/compat/uw")
# The INBOX that real UW servers answered for in UW_FIXTURES/expected.json.
UW_INBOX = UW_FIXTURES / "INBOX.mbox"
USER, PASSWORD = "alice", "secret"
# The system account a root test run serves the virtual user as (tests/setup_system_user.sh).
SERVED_ACCOUNT = "pyimapd-test"
# A guard against a hung server, never a performance limit: PAM's failure
# delay for an unknown user is the slowest answer a transcript waits for.
HANG_GUARD_SECONDS = 30
VARIABLE = re.compile(r"\{(\w+)\}")
MESSAGE_START = re.compile(rb"(?:\A|\n\n)From ")


# -- the user's files ---------------------------------------------------------


def served_ids():
    """(uid, gid) to serve the virtual user as: a test account under root, else our own."""
    if os.geteuid() != 0:
        return os.getuid(), os.getgid()
    for name in (SERVED_ACCOUNT, "nobody"):
        try:
            entry = pwd.getpwnam(name)
        except KeyError:
            continue
        return entry.pw_uid, entry.pw_gid
    raise RuntimeError("no account %s or nobody to serve the test user as" % SERVED_ACCOUNT)


class Mailroom:
    """A spool, a home, a passwd_file and a configuration for the virtual user alice."""

    def __init__(self):
        self.root = Path(tempfile.mkdtemp(prefix="pyimapd-transcript-"))
        # After dropping root the served uid must still reach its spool file and home.
        self.root.chmod(0o755)
        self.uid, self.gid = served_ids()
        self.spool_dir, self.home = self.root / "spool", self.root / "home"
        self.spool_dir.mkdir()
        self.spool_dir.chmod(0o1777)  # the user creates its own dotlock here, as in /var/mail
        self.home.mkdir()
        self._own(self.home)
        self.spool = self.spool_dir / USER
        (self.root / "passwd").write_text("%s:{PLAIN}%s:%d:%d::%s::\n"
                                          % (USER, PASSWORD, self.uid, self.gid, self.home))

    def _own(self, path):
        if os.geteuid() == 0:
            os.chown(path, self.uid, self.gid)

    def install(self, source):
        """Make the spool file a private copy of source, owned by the served user."""
        shutil.copyfile(source, self.spool)
        self.spool.chmod(0o600)
        self._own(self.spool)

    def write_config(self, overrides=None):
        """Write the configuration (base settings, then overrides) and return its path."""
        settings = {
            "mail_location": "mbox:~/mail:INBOX=%s/%%u" % self.spool_dir,
            "passwd_file": str(self.root / "passwd"),
            "cram_md5_file": str(self.root / "no-cram-md5.pwd"),
            "login_failure_delay": "0",
        }
        settings.update(overrides or {})
        path = self.root / "pyimapd.conf"
        path.write_text("".join("%s = %s\n" % item for item in settings.items()))
        return path

    def spool_bytes(self):
        return self.spool.read_bytes()

    def remove(self):
        shutil.rmtree(self.root)


def count_messages(mbox):
    """Messages in mbox bytes: From_ lines at the start or after an empty line."""
    return len(MESSAGE_START.findall(mbox))


# -- one connection -----------------------------------------------------------


class ServerProcess:
    """One ipop3d (or imapd) process on a socket pair, and the client's end of it."""

    def __init__(self, config, program=SERVER):
        ours, theirs = socket.socketpair()
        self.stderr = tempfile.TemporaryFile()
        command = [sys.executable, str(program), "--config", str(config)]
        self.process = subprocess.Popen(command, stdin=theirs, stdout=theirs,
                                        stderr=self.stderr, cwd=REPO)
        theirs.close()
        self.sock = ours
        self.sock.settimeout(HANG_GUARD_SECONDS)
        self.buffer = b""

    def send(self, data):
        self.sock.sendall(data)

    def receive(self):
        """The next bytes from the server; b"" once it has closed the connection."""
        try:
            return self.sock.recv(65536)
        except ConnectionResetError:
            # The server closed before reading everything sent: a close all the same.
            return b""
        except socket.timeout:
            raise AssertionError("server silent for %d s; read so far: %r"
                                 % (HANG_GUARD_SECONDS, self.buffer)) from None

    def send_lines(self, lines):
        """Send every line with its CRLF in a single write (pipelining)."""
        self.send(b"".join(line + b"\r\n" for line in lines))

    def read_line(self):
        """The next server line without its CRLF; a bare LF or an early close fails."""
        while b"\n" not in self.buffer:
            data = self.receive()
            if not data:
                raise AssertionError("server closed the connection; unanswered: %r" % self.buffer)
            self.buffer += data
        line, self.buffer = self.buffer.split(b"\n", 1)
        if not line.endswith(b"\r"):
            raise AssertionError("server line without CR before LF: %r" % line)
        return line[:-1]

    def command(self, line):
        """Send one command line and return the first line of the answer."""
        self.send_lines([line])
        return self.read_line()

    def read_multiline(self):
        """The lines of a multi-line body up to (without) the terminating dot line."""
        lines = []
        while True:
            line = self.read_line()
            if line == b".":
                return lines
            lines.append(line)

    def hang_up(self):
        self.sock.shutdown(socket.SHUT_WR)

    def wait_for_exit(self):
        """Wait for the server to close the connection and exit: (status, stderr text)."""
        rest = self.buffer
        while True:
            data = self.receive()
            if not data:
                break
            rest += data
        self.buffer = b""
        if rest:
            raise AssertionError("unexpected server output before the close: %r" % rest)
        status = self.process.wait(timeout=HANG_GUARD_SECONDS)
        self.stderr.seek(0)
        return status, self.stderr.read().decode("utf-8", "replace")

    def expect_clean_exit(self):
        """The server closed the connection, exited with status 0 and wrote nothing to stderr."""
        status, errors = self.wait_for_exit()
        assert (status, errors) == (0, ""), "server exit status %s, stderr:\n%s" % (status, errors)

    def close(self):
        """Release everything; kill the server if a failed test left it running."""
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()
        self.sock.close()
        self.stderr.close()


# -- transcripts --------------------------------------------------------------


@dataclass
class Transcript:
    """A parsed transcript: its setup and its steps as (line number, kind, text)."""

    path: Path
    program: Path = SERVER
    mailbox: Path = UW_INBOX
    settings: dict = field(default_factory=dict)
    steps: list = field(default_factory=list)


STEP_KINDS = ("C:", "C+", "C!", "S:", "S~")
END_DIRECTIVES = ("=HANGUP", "=RECONNECT", "=MAILBOX-UNCHANGED", "=MAILBOX-COUNT")


def parse_transcript(path):
    """Read a transcript file; ValueError names the line that breaks the syntax."""
    transcript = Transcript(Path(path))
    if Path(path).parent.name == IMAP_TRANSCRIPTS.name:
        transcript.program = IMAP_SERVER
    for number, line in enumerate(Path(path).read_text(encoding="utf-8").split("\n"), 1):
        line = line.rstrip("\r")
        if not line.strip() or line.startswith("#"):
            continue
        if line.startswith("@"):
            _parse_setup(transcript, number, line)
        elif line[:2] in STEP_KINDS and line[2:3] in ("", " "):
            transcript.steps.append((number, line[:2], line[3:]))
        elif line.split(" ")[0] in END_DIRECTIVES:
            transcript.steps.append((number, line.split(" ")[0], line.partition(" ")[2]))
        else:
            raise ValueError("%s:%d: not a transcript line: %r" % (path, number, line))
    return transcript


def _parse_setup(transcript, number, line):
    if transcript.steps:
        raise ValueError("%s:%d: @ lines come before the first step" % (transcript.path, number))
    word, _, rest = line.partition(" ")
    if word == "@mailbox":
        transcript.mailbox = MAILBOXES / (rest.strip() + ".mbox")
    elif word == "@config" and "=" in rest:
        name, _, value = rest.partition("=")
        transcript.settings[name.strip()] = value.strip()
    else:
        raise ValueError("%s:%d: unknown setup line %r" % (transcript.path, number, line))


def md5_hex(text):
    """The APOP digest: MD5 of the timestamp and secret as lower-case hex (RFC 1939 §7)."""
    return hashlib.md5(text.encode("utf-8")).hexdigest()


def cram_md5_answer(user, secret, challenge):
    """The base64 client answer to a base64 CRAM-MD5 challenge (RFC 2195)."""
    digest = hmac.new(secret.encode("utf-8"), base64.b64decode(challenge), hashlib.md5).hexdigest()
    return base64.b64encode(("%s %s" % (user, digest)).encode("utf-8")).decode("ascii")


# name: (number of arguments, function); the last argument takes the rest of the line.
FUNCTIONS = {"md5": (1, md5_hex), "cram-md5": (3, cram_md5_answer)}


class Player:
    """Plays one transcript against fresh server processes in a Mailroom."""

    def __init__(self, transcript, mailroom):
        self.transcript = transcript
        self.mailroom = mailroom
        self.variables = {}
        self.queued = []
        self.server = None
        self.original = None
        self.config = None

    def play(self):
        self.mailroom.install(self.transcript.mailbox)
        self.original = self.mailroom.spool_bytes()
        self.config = self.mailroom.write_config(self.transcript.settings)
        try:
            self.server = ServerProcess(self.config, self.transcript.program)
            for number, kind, text in self.transcript.steps:
                self.located(number, self.step, kind, text)
            self.located("end", self.end_session)
        finally:
            if self.server:
                self.server.close()

    def located(self, where, action, *arguments):
        """Run action; an AssertionError from it names the transcript file and line."""
        try:
            action(*arguments)
        except AssertionError as failure:
            raise AssertionError("%s:%s: %s" % (self.transcript.path.name, where, failure)) from None

    def step(self, kind, text):
        if kind in ("C:", "C+"):
            self.queued.append(self.substitute(text).encode("utf-8", "surrogateescape"))
            if kind == "C:":
                self.flush()
        elif kind == "C!":
            self.compute(text)
        elif kind in ("S:", "S~"):
            self.flush()
            self.expect(kind, text)
        else:
            self.directive(kind, text)

    def flush(self):
        if self.queued:
            self.server.send_lines(self.queued)
            self.queued = []

    def substitute(self, text):
        def value(match):
            if match.group(1) not in self.variables:
                raise AssertionError("no variable %r captured yet" % match.group(1))
            return self.variables[match.group(1)]

        return VARIABLE.sub(value, text)

    def compute(self, text):
        name, equals, call = text.partition("=")
        function_name, _, arguments = call.strip().partition(" ")
        if not equals or function_name not in FUNCTIONS:
            raise AssertionError("C! needs 'NAME = %s ARGS'" % " | ".join(FUNCTIONS))
        count, function = FUNCTIONS[function_name]
        values = self.substitute(arguments).split(" ", count - 1)
        if len(values) != count:
            raise AssertionError("%s takes %d arguments" % (function_name, count))
        self.variables[name.strip()] = function(*values)

    def expect(self, kind, text):
        line = self.server.read_line().decode("utf-8", "surrogateescape")
        if kind == "S:":
            assert line == text, "expected %r, server said %r" % (text, line)
            return
        match = re.fullmatch(text, line)
        assert match, "expected a match for %r, server said %r" % (text, line)
        self.variables.update(match.groupdict())

    def directive(self, kind, text):
        self.flush()
        if kind == "=HANGUP":
            self.server.hang_up()
        self.end_session()
        if kind == "=RECONNECT":
            self.server.close()
            self.server = ServerProcess(self.config, self.transcript.program)
        elif kind == "=MAILBOX-UNCHANGED":
            assert self.mailroom.spool_bytes() == self.original, "the mailbox file changed"
        elif kind == "=MAILBOX-COUNT":
            count = count_messages(self.mailroom.spool_bytes())
            assert count == int(text), "the mailbox holds %d messages, not %s" % (count, text)

    def end_session(self):
        if self.server and self.server.process.returncode is None:
            self.flush()
            self.server.expect_clean_exit()


def play(path, mailroom):
    """Play the transcript at path; AssertionError names the transcript line that failed."""
    Player(parse_transcript(path), mailroom).play()
