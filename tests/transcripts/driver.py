"""Golden transcripts played against the real ipop3d and imapd, started as inetd starts them.

The server runs as `python ipop3d.py --config FILE` (transcripts in pop3/) or
`python imapd.py --config FILE` (transcripts in imap/) with fd 0 and fd 1 on
one end of a socket pair; the test holds the other end.

Transcript syntax, one directive per line:

    # text              a comment (blank lines are skipped too)
    @mailbox NAME       the spool starts as mailboxes/NAME.mbox (default: the UW fixture INBOX)
    @driver mbox        the transcript depends on mbox-only facts (the spool file's
                        bytes, UW's folder files): it is not played against Maildir
    @config NAME = V    a setting for this transcript's configuration file
    @hang-guard SECONDS how long a server line is waited for (default 30 s): a
                        transcript whose server never answers a step fails sooner
    C: text             send text and CRLF ("C:" alone sends an empty line)
    C+ text             queue a line; queued lines go out in one write with the
                        next C: line, or before the next server line is read
    C! NAME = md5 TEXT          hex MD5 of TEXT (the APOP digest)
    C! NAME = cram-md5 USER SECRET CHALLENGE
                                the base64 CRAM-MD5 answer to a base64 challenge
    C! NAME = repeat N TEXT     TEXT repeated N times (over-long lines)
    C! NAME = bytes TEXT        TEXT with backslash escapes (x00, r, n) as the octets they
                                name (NUL, bare CR or LF and 8-bit octets in literal8 data)
    S: text             the next server line is exactly text
    S~ regex            the next server line matches regex (re.fullmatch);
                        named groups become variables, used as {NAME} in C and
                        S lines (in S~ lines as the escaped text); a NAME starts
                        with a letter, so {12} and {12+} stay as they are
    =HANGUP             the client closes every open connection without QUIT
    =RECONNECT          the sessions end; a new one starts on the same mailbox
    =MAILBOX-UNCHANGED  the sessions end; the spool file is byte for byte as before
                        (Maildir: every file and name)
    =MAILBOX-COUNT n    the sessions end; the spool file holds n messages (UW's
                        pseudo-message that keeps an empty mailbox's UIDVALIDITY
                        is not one; Maildir: files in new/ and cur/)
    =DELIVER NAME       mid-session, append mailboxes/NAME.mbox to the spool as an
                        MTA does (dotlock, fcntl and flock held while appending;
                        Maildir: each message written to tmp/, renamed into new/)

Every transcript is played against both drivers (mailroom.driver "mbox" or
"maildir"): for Maildir the mailbox is converted with its UIDs, UIDVALIDITY,
flags, keywords and dates (maildirroom.py), so the same lines must come back.
    =PAUSE SECONDS      wait (at most 2 s), for behaviour that depends on the clock
                        changing, such as a value derived from the time of day
    =COMPRESS [N]       from here on connection N (default 1) deflates what it sends
                        and inflates what it reads (RFC 4978), as after COMPRESS OK

Concurrent sessions on the same mailbox: C2:, C2+, S2:, S2~ (digits 2 to 9)
are the same lines for a second (third, ...) connection, which starts at its
first line (so its first line is usually the greeting, S2~). Queued C+ lines
of a connection go out with its next C: line or before its next server line.
The end directives end every open connection; C1:/S1: name the first one.
After an end directive, the next line of a connection starts a new session
on the same (possibly changed) mailbox.

A session ends when the server closes the connection without sending anything
more than the transcript expects, exits with status 0 and writes no stderr.
"""

import base64
import errno
import fcntl
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
import time
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
# {NAME} in a C line; a name starts with a letter, so IMAP literal markers ({12}) stay as sent.
VARIABLE = re.compile(r"\{([A-Za-z_]\w*)\}")
# A step line: C or S, an optional connection number, the kind mark, then SP or the end.
STEP = re.compile(r"([CS])([1-9]?)([:+!~])(?: |$)")
# How long =DELIVER waits for the server's locks, as an MTA would; a guard, not a timer.
DELIVERY_LOCK_SECONDS = 10
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
    """A spool (or ~/Maildir), a home, a passwd_file and a configuration for the user alice."""

    def __init__(self, driver="mbox"):
        self.driver = driver
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
        self.maildir = self.home / "Maildir"
        (self.root / "passwd").write_text("%s:{PLAIN}%s:%d:%d::%s::\n"
                                          % (USER, PASSWORD, self.uid, self.gid, self.home))

    def _own(self, path):
        if os.geteuid() == 0:
            os.chown(path, self.uid, self.gid)

    def install(self, source):
        """Make the spool file (or ~/Maildir) a private copy of source, owned by the served user."""
        if self.driver == "maildir":
            import maildirroom

            shutil.rmtree(self.maildir, ignore_errors=True)
            maildirroom.write_maildir(source, self.maildir)
            self._own_tree(self.maildir)
            return
        shutil.copyfile(source, self.spool)
        self.spool.chmod(0o600)
        self._own(self.spool)

    def _own_tree(self, top):
        self._own(top)
        for directory, subdirs, names in os.walk(top):
            for name in subdirs + names:
                self._own(os.path.join(directory, name))

    def snapshot(self):
        """What =MAILBOX-UNCHANGED compares: the spool's bytes, or the Maildir's files."""
        if self.driver == "maildir":
            import maildirroom

            return maildirroom.snapshot(self.maildir)
        return self.spool_bytes()

    def count_messages(self):
        if self.driver == "maildir":
            import maildirroom

            return maildirroom.count_messages(self.maildir)
        return count_messages(self.spool_bytes())

    def write_config(self, overrides=None):
        """Write the configuration (base settings, then overrides) and return its path."""
        location = ("maildir:~/Maildir" if self.driver == "maildir"
                    else "mbox:~/mail:INBOX=%s/%%u" % self.spool_dir)
        settings = {
            "mail_location": location,
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

    def deliver(self, source):
        """Append the messages in source to the spool as an MTA does, under all three locks."""
        if self.driver == "maildir":
            import maildirroom

            maildirroom.deliver(source, self.maildir)
            self._own_tree(self.maildir)
            return
        data = Path(source).read_bytes()
        dotlock = self.spool_dir / (USER + ".lock")
        deadline = time.monotonic() + DELIVERY_LOCK_SECONDS
        lock_fd = _retry_until(deadline, lambda: os.open(
            dotlock, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644))
        try:
            with open(self.spool, "r+b") as spool:
                _retry_until(deadline, lambda: fcntl.lockf(spool, fcntl.LOCK_EX | fcntl.LOCK_NB))
                _retry_until(deadline, lambda: fcntl.flock(spool, fcntl.LOCK_EX | fcntl.LOCK_NB))
                spool.seek(0, os.SEEK_END)
                spool.write(_separated(spool, data))
                spool.flush()
                os.fsync(spool.fileno())
        finally:
            os.close(lock_fd)
            dotlock.unlink()

    def remove(self):
        shutil.rmtree(self.root)


def _separated(spool, data):
    """data, after the empty line that must come before a From_ line (mbox-compat.md)."""
    end = spool.tell()
    if not end:
        return data
    spool.seek(max(0, end - 2))
    tail = spool.read()
    if tail.endswith(b"\n\n"):
        return data
    return (b"\n" if tail.endswith(b"\n") else b"\n\n") + data


def _retry_until(deadline, take):
    """take() until it stops failing with EEXIST/EAGAIN/EACCES, failing the test at deadline."""
    while True:
        try:
            return take()
        except OSError as error:
            if error.errno not in (errno.EEXIST, errno.EAGAIN, errno.EACCES, errno.EWOULDBLOCK):
                raise
            if time.monotonic() > deadline:
                raise AssertionError("=DELIVER: the spool stayed locked for %d s"
                                     % DELIVERY_LOCK_SECONDS) from None
            time.sleep(0.01)


def count_messages(mbox):
    """Messages in mbox bytes: From_ lines at the start or after an empty line.

    UW's pseudo-message, which keeps the UIDVALIDITY of a mailbox with no mail
    (an X-IMAP header in the first message), is not mail and is not counted.
    """
    count = len(MESSAGE_START.findall(mbox))
    first_header = mbox.split(b"\n\n", 1)[0]
    if count and re.search(rb"^X-IMAP: ", first_header, re.MULTILINE):
        count -= 1
    return count


# -- one connection -----------------------------------------------------------


class ServerProcess:
    """One ipop3d (or imapd) process on a socket pair, and the client's end of it."""

    def __init__(self, config, program=SERVER, hang_guard=HANG_GUARD_SECONDS, arguments=()):
        ours, theirs = socket.socketpair()
        self.stderr = tempfile.TemporaryFile()
        command = [sys.executable, str(program), *arguments, "--config", str(config)]
        self.process = subprocess.Popen(command, stdin=theirs, stdout=theirs,
                                        stderr=self.stderr, cwd=REPO)
        theirs.close()
        self.sock = ours
        self.hang_guard = hang_guard
        self.sock.settimeout(hang_guard)
        self.buffer = b""
        self.deflater = self.inflater = None

    def start_deflate(self):
        """Raw deflate both ways from now on (RFC 4978), as a client does after COMPRESS OK."""
        import zlib

        self.deflater = zlib.compressobj(6, zlib.DEFLATED, -15)
        self.inflater = zlib.decompressobj(-15)
        self.buffer = self.inflater.decompress(self.buffer)

    def send(self, data):
        if self.deflater:
            data = self.deflater.compress(data) + self.deflater.flush(zlib_sync_flush())
        self.sock.sendall(data)

    def receive(self):
        """The next bytes from the server; b"" once it has closed the connection."""
        data = self._receive_raw()
        while self.inflater and data:
            inflated = self.inflater.decompress(data)
            if inflated:
                return inflated
            data = self._receive_raw()
        return data

    def _receive_raw(self):
        try:
            return self.sock.recv(65536)
        except ConnectionResetError:
            # The server closed before reading everything sent: a close all the same.
            return b""
        except socket.timeout:
            raise AssertionError("server silent for %g s; read so far: %r"
                                 % (self.hang_guard, self.buffer)) from None

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
        status = self.process.wait(timeout=self.hang_guard)
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
    hang_guard: float = HANG_GUARD_SECONDS
    drivers: tuple = ("mbox", "maildir")


STEP_KINDS = ("C:", "C+", "C!", "S:", "S~")
END_DIRECTIVES = ("=HANGUP", "=RECONNECT", "=MAILBOX-UNCHANGED", "=MAILBOX-COUNT")
DIRECTIVES = END_DIRECTIVES + ("=DELIVER", "=PAUSE", "=COMPRESS")
# =PAUSE is for a clock to tick over, never for a server timer to expire.
MAX_PAUSE_SECONDS = 2


def zlib_sync_flush():
    import zlib

    return zlib.Z_SYNC_FLUSH


def parse_transcript(path):
    """Read a transcript file; ValueError names the line that breaks the syntax.

    Steps are (line number, kind, text) with kind "C:", "C+", "C!", "S:" or "S~"
    for the first connection, "C2:" ... for the others, or a directive.
    """
    transcript = Transcript(Path(path))
    if Path(path).parent.name == IMAP_TRANSCRIPTS.name:
        transcript.program = IMAP_SERVER
    for number, line in enumerate(Path(path).read_text(encoding="utf-8").split("\n"), 1):
        line = line.rstrip("\r")
        if not line.strip() or line.startswith("#"):
            continue
        if line.startswith("@"):
            _parse_setup(transcript, number, line)
        elif STEP.match(line):
            match = STEP.match(line)
            side, connection, mark = match.groups()
            if side + mark not in STEP_KINDS or (connection and mark == "!"):
                raise ValueError("%s:%d: not a transcript line: %r" % (path, number, line))
            kind = side + ("" if connection in ("", "1") else connection) + mark
            transcript.steps.append((number, kind, line[match.end():]))
        elif line.split(" ")[0] in DIRECTIVES:
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
    elif word == "@driver":
        transcript.drivers = tuple(rest.split())
    elif word == "@hang-guard":
        transcript.hang_guard = float(rest)
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


def repeat(count, text):
    """text repeated count times: a long line without a long transcript line."""
    return text * int(count)


def octets(text):
    """TEXT's escapes as octets, as a str that C: lines encode back to exactly those octets."""
    data = text.encode("ascii").decode("unicode_escape").encode("latin-1")
    return data.decode("utf-8", "surrogateescape") if not any(b > 0x7F for b in data) \
        else "".join(chr(b) if b < 0x80 else chr(0xDC00 + b) for b in data)


# name: (number of arguments, function); the last argument takes the rest of the line.
FUNCTIONS = {"md5": (1, md5_hex), "cram-md5": (3, cram_md5_answer), "repeat": (2, repeat),
             "bytes": (1, octets)}


class Player:
    """Plays one transcript against fresh server processes in a Mailroom."""

    def __init__(self, transcript, mailroom):
        self.transcript = transcript
        self.mailroom = mailroom
        self.variables = {}
        # connection number -> ServerProcess, and its queued C+ lines
        self.servers = {}
        self.queued = {}
        self.original = None
        self.config = None

    def play(self):
        self.mailroom.install(self.transcript.mailbox)
        self.original = self.mailroom.snapshot()
        self.config = self.mailroom.write_config(self.transcript.settings)
        try:
            self.connection(1)
            for number, kind, text in self.transcript.steps:
                self.located(number, self.step, kind, text)
            self.located("end", self.end_sessions)
        finally:
            for server in self.servers.values():
                server.close()

    def located(self, where, action, *arguments):
        """Run action; an AssertionError from it names the transcript file and line."""
        try:
            action(*arguments)
        except AssertionError as failure:
            raise AssertionError("%s:%s: %s" % (self.transcript.path.name, where, failure)) from None

    def connection(self, number):
        """The server of connection number, started at its first use."""
        if number not in self.servers:
            self.servers[number] = ServerProcess(self.config, self.transcript.program,
                                                 self.transcript.hang_guard)
            self.queued[number] = []
        return self.servers[number]

    def step(self, kind, text):
        if kind.startswith("="):
            self.directive(kind, text)
            return
        number = int(kind[1:-1] or 1)
        kind = kind[0] + kind[-1]
        self.connection(number)
        if kind in ("C:", "C+"):
            self.queued[number].append(self.substitute(text).encode("utf-8", "surrogateescape"))
            if kind == "C:":
                self.flush(number)
        elif kind == "C!":
            self.compute(text)
        else:
            self.flush(number)
            self.expect(number, kind, text)

    def flush(self, number):
        if self.queued.get(number):
            self.servers[number].send_lines(self.queued[number])
            self.queued[number] = []

    def substitute(self, text, escape=str):
        def value(match):
            if match.group(1) not in self.variables:
                raise AssertionError("no variable %r captured yet" % match.group(1))
            return escape(self.variables[match.group(1)])

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

    def expect(self, number, kind, text):
        line = self.servers[number].read_line().decode("utf-8", "surrogateescape")
        where = "" if number == 1 else "connection %d: " % number
        text = self.substitute(text, str if kind == "S:" else re.escape)
        if kind == "S:":
            assert line == text, "%sexpected %r, server said %r" % (where, text, line)
            return
        match = re.fullmatch(text, line)
        assert match, "%sexpected a match for %r, server said %r" % (where, text, line)
        self.variables.update(match.groupdict())

    def directive(self, kind, text):
        for number in self.servers:
            self.flush(number)
        if kind == "=DELIVER":
            self.mailroom.deliver(MAILBOXES / (text.strip() + ".mbox"))
            return
        if kind == "=COMPRESS":
            self.servers[int(text or 1)].start_deflate()
            return
        if kind == "=PAUSE":
            seconds = float(text)
            assert 0 < seconds <= MAX_PAUSE_SECONDS, "=PAUSE takes up to %d s" % MAX_PAUSE_SECONDS
            time.sleep(seconds)
            return
        if kind == "=HANGUP":
            for server in self.servers.values():
                server.hang_up()
        self.end_sessions()
        if kind == "=RECONNECT":
            self.connection(1)
        elif kind == "=MAILBOX-UNCHANGED":
            assert self.mailroom.snapshot() == self.original, "the mailbox file changed"
        elif kind == "=MAILBOX-COUNT":
            count = self.mailroom.count_messages()
            assert count == int(text), "the mailbox holds %d messages, not %s" % (count, text)

    def end_sessions(self):
        """Every open connection closes cleanly; then none is open."""
        for number, server in sorted(self.servers.items()):
            self.flush(number)
            try:
                server.expect_clean_exit()
            except AssertionError as failure:
                where = "" if number == 1 else "connection %d: " % number
                raise AssertionError(where + str(failure)) from None
        for server in self.servers.values():
            server.close()
        self.servers, self.queued = {}, {}


def play(path, mailroom):
    """Play the transcript at path; AssertionError names the transcript line that failed."""
    Player(parse_transcript(path), mailroom).play()
