"""The benchmark's client: one server process per connection, started as inetd starts it.

`Connection` accepts a real loopback TCP connection, starts the server
command with the accepted socket as fd 0 and fd 1 (as inetd `nowait` does),
and keeps the client end. Reads are buffered and scan for the end of a reply
with `bytes.find` only, so the client costs little next to the server it
measures. When the session ends, `os.wait4` gives the server's exit status.
A thread samples the server's /proc/PID/status every 10 ms: VmHWM, its peak
resident set size (which counts the pages of a mailbox the server mapped
with mmap), and RssAnon (private memory) for a second figure. Not wait4's
ru_maxrss: Linux carries that across fork and exec, so it starts at the RSS
of the process that started the server (a test runner of 90 MB made every
server look 90 MB); VmHWM belongs to the server's own address space.

Every wait has a deadline; a reply that says NO, BAD or -ERR where the
benchmark expects success raises `ProtocolError` with the exchange.
"""

import os
import re
import socket
import subprocess
import threading
import time

RECEIVE_SIZE = 1 << 20
# How often the server's anonymous memory is sampled from /proc (there is no peak counter for it).
MEMORY_SAMPLE_SECONDS = 0.01
# Drop consumed bytes from the buffer once this many have piled up.
COMPACT_AFTER = 4 << 20



def _status_kb(status, field):
    """A `Field:   N kB` value of /proc/PID/status, or None."""
    start = status.find(field)
    if start < 0:
        return None
    return int(status[start + len(field):status.index(b"kB", start)])

class BenchError(Exception):
    """A scenario could not be measured; the message shows the exchange."""


class ProtocolError(BenchError):
    """The server answered a command with a failure or broke the protocol."""


class Timeout(BenchError):
    """The server did not answer within the deadline."""


def _excerpt(data, limit=300):
    data = bytes(data)
    if len(data) > limit:
        data = data[:limit // 2] + b" ... " + data[-limit // 2:]
    return data.decode("utf-8", "replace")


class Connection:
    """One server process on an accepted loopback TCP connection, and the client end."""

    def __init__(self, argv, env, cwd, user, group, stderr_path, deadline_seconds):
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.bind(("127.0.0.1", 0))
        listener.listen(1)
        self.sock = socket.create_connection(listener.getsockname())
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        served, _ = listener.accept()
        listener.close()
        self.deadline_seconds = deadline_seconds
        self.buf = bytearray()
        self.pos = 0
        self.last_sent = b""
        self.rusage = None
        self.status = None
        self.stderr_path = stderr_path
        with open(stderr_path, "ab") as stderr:
            self.started = time.perf_counter()
            self.process = subprocess.Popen(argv, stdin=served, stdout=served, stderr=stderr,
                                            env=env, cwd=cwd, user=user, group=group,
                                            extra_groups=[], close_fds=True)
        served.close()
        self.peak_anon_kb = self.peak_rss_kb = 0
        self.sampler = threading.Thread(target=self._sample_memory, daemon=True)
        self.sampler.start()

    def _sample_memory(self):
        """Track the peak of RssAnon (private memory, without the pages of mapped
        files) and VmHWM (the kernel's own peak of the whole resident set)."""
        while self.status is None:
            status = self._status()
            anon, peak = _status_kb(status, b"RssAnon:"), _status_kb(status, b"VmHWM:")
            if anon is None or peak is None:
                return  # gone, or a zombie without an address space
            self.peak_anon_kb = max(self.peak_anon_kb, anon)
            self.peak_rss_kb = max(self.peak_rss_kb, peak)
            time.sleep(MEMORY_SAMPLE_SECONDS)

    def anon_now_kb(self):
        """The server's RssAnon in kB now, or None once it is gone."""
        return _status_kb(self._status(), b"RssAnon:")

    def _status(self):
        try:
            with open("/proc/%d/status" % self.process.pid, "rb") as handle:
                return handle.read()
        except OSError:
            return b""

    # -- bytes ----------------------------------------------------------

    def send(self, data):
        self.last_sent = data
        self.sock.sendall(data)

    def send_in_background(self, data):
        """Send a large pipelined batch while the caller reads the replies."""
        self.last_sent = data[:200]
        sender = threading.Thread(target=self.sock.sendall, args=(data,), daemon=True)
        sender.start()
        return sender

    def compact(self):
        """Forget consumed bytes; only between replies, as indexes into buf then move."""
        if self.pos > COMPACT_AFTER:
            # Keep the CRLF before pos: a tagged line is found as CRLF + tag.
            del self.buf[:self.pos - 2]
            self.pos = 2

    def _fill(self, deadline):
        remaining = deadline - time.perf_counter()
        if remaining <= 0:
            raise Timeout("no complete reply within %d s; sent %r; last bytes %r"
                          % (self.deadline_seconds, _excerpt(self.last_sent),
                             _excerpt(self.buf[-300:])))
        self.sock.settimeout(remaining)
        try:
            chunk = self.sock.recv(RECEIVE_SIZE)
        except socket.timeout:
            chunk = None
        except ConnectionResetError:
            chunk = b""
        if chunk is None:
            return self._fill(deadline)
        if not chunk:
            raise ProtocolError("server closed the connection; sent %r; unanswered bytes %r"
                                % (_excerpt(self.last_sent), _excerpt(self.buf[self.pos:])))
        self.buf += chunk

    def _deadline(self):
        return time.perf_counter() + self.deadline_seconds

    def find(self, pattern, start, deadline):
        """Absolute index of pattern at or after start, reading more as needed."""
        while True:
            index = self.buf.find(pattern, start)
            if index >= 0:
                return index
            start = max(start, len(self.buf) - len(pattern) + 1)
            self._fill(deadline)

    def line(self, deadline=None):
        """The next line without CRLF."""
        deadline = deadline or self._deadline()
        self.compact()
        end = self.find(b"\r\n", self.pos, deadline)
        line = bytes(self.buf[self.pos:end])
        self.pos = end + 2
        return line

    def take(self, end):
        data = bytes(self.buf[self.pos:end])
        self.pos = end
        return data

    # -- IMAP -------------------------------------------------------------

    def imap_tagged(self, tag, keep=True):
        """Read up to and including the tagged reply: (tagged line, everything before it)."""
        deadline = self._deadline()
        self.compact()
        prefix = tag + b" "
        # The greeting came first, so the line before pos ends with CRLF.
        start = self.find(b"\r\n" + prefix, self.pos - 2, deadline) + 2
        end = self.find(b"\r\n", start, deadline)
        before = bytes(self.buf[self.pos:start]) if keep else b""
        line = bytes(self.buf[start:end])
        self.pos = end + 2
        return line, before

    # -- POP3 -------------------------------------------------------------

    def pop_reply(self, deadline=None):
        line = self.line(deadline)
        if not line.startswith(b"+OK"):
            raise ProtocolError("C: %s\nS: %s" % (_excerpt(self.last_sent).strip(), _excerpt(line)))
        return line

    def pop_multiline(self, deadline=None, keep=True):
        """A +OK line and its body up to the dot line: (status line, body bytes or their count)."""
        deadline = deadline or self._deadline()
        status = self.pop_reply(deadline)
        # The status line's own CRLF starts the search, so an empty body is found too.
        end = self.find(b"\r\n.\r\n", self.pos - 2, deadline)
        if keep:
            body = bytes(self.buf[self.pos:end + 2])
        else:
            body = end + 2 - self.pos
        self.pos = end + 5
        return status, body

    # -- the end ----------------------------------------------------------

    def wait_closed(self):
        """Read to EOF (the server closed), then reap the server: its exit status."""
        deadline = self._deadline()
        while True:
            self.sock.settimeout(max(0.001, deadline - time.perf_counter()))
            try:
                chunk = self.sock.recv(RECEIVE_SIZE)
            except ConnectionResetError:
                break
            except socket.timeout:
                raise Timeout("server did not close the connection within %d s"
                              % self.deadline_seconds) from None
            if not chunk:
                break
        return self.reap()

    def reap(self):
        if self.status is None:
            _, status, self.rusage = os.wait4(self.process.pid, 0)
            self.status = os.waitstatus_to_exitcode(status)
            self.process.returncode = self.status
            self.sampler.join()
        return self.status

    @property
    def peak_rss_mb(self):
        """VmHWM: the kernel's peak resident set, mapped file pages included (a
        server gone before the first sample falls back to ru_maxrss)."""
        if self.peak_rss_kb:
            return self.peak_rss_kb / 1024.0
        return self.rusage.ru_maxrss / 1024.0 if self.rusage else None

    @property
    def peak_anon_mb(self):
        return self.peak_anon_kb / 1024.0

    def stderr_text(self):
        try:
            with open(self.stderr_path, "rb") as handle:
                return handle.read().decode("utf-8", "replace")
        except OSError:
            return ""

    def kill(self):
        """End a failed session: kill our server process (by its pid) and reap it."""
        if self.status is None:
            try:
                self.process.kill()
            except ProcessLookupError:
                pass
            self.reap()
        self.sock.close()

    def close(self):
        self.sock.close()


class ImapClient:
    """Tagged IMAP commands on a Connection, timed from send to the tagged reply."""

    def __init__(self, connection):
        self.conn = connection
        self.counter = 0

    def greeting(self):
        line = self.conn.line()
        if not (line.startswith(b"* OK") or line.startswith(b"* PREAUTH")):
            raise ProtocolError("greeting: %s" % _excerpt(line))
        return line

    def command(self, text, keep=True, allow_no=False):
        """Send one command; return (seconds, tagged line, untagged bytes)."""
        self.counter += 1
        tag = b"B%05d" % self.counter
        data = tag + b" " + text + b"\r\n"
        started = time.perf_counter()
        self.conn.send(data)
        line, before = self.conn.imap_tagged(tag, keep)
        seconds = time.perf_counter() - started
        if not line.startswith(tag + b" OK") and not allow_no:
            raise ProtocolError("C: %s\nS: %s%s" % (_excerpt(data).strip(),
                                                    _excerpt(before[-300:]), _excerpt(line)))
        return seconds, line, before


LITERAL_SIZE = re.compile(rb"\{(\d+)\}\r\n")
FETCH_LINE = re.compile(rb"(?:^|\r\n)\* \d+ FETCH ")
EXPUNGE_LINE = re.compile(rb"\* \d+ EXPUNGE\r\n")


def literal_bytes(data):
    """Bytes inside literals of a reply, skipping literal contents while counting."""
    total, index = 0, 0
    while True:
        match = LITERAL_SIZE.search(data, index)
        if not match:
            return total
        size = int(match.group(1))
        total += size
        index = match.end() + size
