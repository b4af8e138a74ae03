"""The measured conversations. Each flow starts from a fresh copy of the mailbox.

A flow calls `record(metric, value)` for every number it measures (times in
ms, rates in MB/s with MB = 10^6 bytes, memory in MB = 2^20 bytes); the metric
names are the keys of report.METRICS. Times are taken by the client from
sending a command to reading the end of its reply, so they include the
loopback round trip, which is the same for every server.
"""

import contextlib
import re
import socket
import subprocess
import time

import corpus
from client import (EXPUNGE_LINE, FETCH_LINE, BenchError, Connection, ImapClient, ProtocolError,
                    literal_bytes)

BODY_FETCH_COUNT = 500
# Sequence numbers per STORE command when flagging every tenth message (keeps lines short).
STORE_CHUNK = 1000
# POP3 RETR commands in flight at once (RFC 2449 PIPELINING, which all three announce).
RETR_WINDOW = 16
ENVELOPE_FETCH = b"FETCH 1:* (UID FLAGS RFC822.SIZE INTERNALDATE ENVELOPE)"
MESSAGE_START = re.compile(rb"(?:\A|\n\n)From ")


def ms(seconds):
    return seconds * 1000.0


class Flow:
    """What every flow shares: the server, the options, the recorder, warnings."""

    def __init__(self, server, options, record, warn):
        self.server, self.options, self.record, self.warn = server, options, record, warn
        self.peak_rss, self.peak_anon = {}, {}

    @contextlib.contextmanager
    def connection(self, protocol, phase):
        """A started server; on success it must close cleanly, on failure it is killed."""
        launch = self.server.launch(protocol)
        stderr_path = self.options.workdir / ("%s-%s-%s.stderr" % (self.server.name, protocol, phase))
        stderr_path.unlink(missing_ok=True)
        conn = Connection(launch.argv, launch.env, launch.cwd, launch.user, launch.group,
                          stderr_path, self.options.timeout)
        try:
            yield conn, launch
        except BaseException as error:
            conn.kill()
            stderr = conn.stderr_text().strip()
            if stderr and isinstance(error, BenchError):
                error.args = ("%s\n[server stderr] %s" % (error.args[0], stderr[-1500:]),)
            raise
        status = conn.reap()
        conn.close()
        self.peak_rss[phase] = conn.peak_rss_mb
        self.peak_anon[phase] = conn.peak_anon_mb
        # Per session, for the JSON only (the tables show the maximum over the flow).
        self.record("%s_rss_%s" % (protocol, phase), conn.peak_rss_mb)
        self.record("%s_anon_%s" % (protocol, phase), conn.peak_anon_mb)
        stderr = conn.stderr_text().strip()
        if status != 0:
            raise ProtocolError("%s %s: exit status %s; stderr: %s"
                                % (protocol, phase, status, stderr[-1500:]))
        if stderr and self.server.name == "pyimapd":
            self.warn("%s %s wrote to stderr: %s" % (protocol, phase, stderr[-1500:]))

    def memory_mark(self, conn, name):
        """Record (JSON only) the peak private memory since the previous mark, then reset it."""
        self.record("anon_until_" + name, conn.peak_anon_mb)
        conn.peak_anon_kb = conn.anon_now_kb() or 0

    def check_count(self, what, found, expected):
        if found != expected:
            self.warn("%s: %s, expected %s" % (what, found, expected))

    def spool_messages(self, protocol):
        with open(self.server.spool(protocol), "rb") as spool:
            return len(MESSAGE_START.findall(spool.read()))


# -- start-up -----------------------------------------------------------------------


def greeting_time(server, protocol, options, warn):
    """Milliseconds from starting the server to its complete greeting line (empty mailbox)."""
    server.install(None, protocol)
    flow = Flow(server, options, lambda *_: None, warn)
    with flow.connection(protocol, "greeting") as (conn, launch):
        if not launch.greets:
            conn.send(b"NOOP\r\n")
        line = conn.line()
        elapsed = time.perf_counter() - conn.started
        if not (line.startswith(b"* OK") or line.startswith(b"* PREAUTH")
                or line.startswith(b"+OK")):
            raise ProtocolError("greeting: %r" % line)
        conn.send(b"Z LOGOUT\r\n" if protocol == "imap" else b"QUIT\r\n")
        conn.wait_closed()
    return ms(elapsed)


def wait_mode_greeting_time(address, protocol, timeout):
    """Milliseconds from connect() to the complete greeting of a running wait-mode server."""
    try:
        return _wait_mode_greeting(address, protocol, timeout)
    except OSError as error:
        raise ProtocolError("wait mode: %s" % error) from None


def _wait_mode_greeting(address, protocol, timeout):
    started = time.perf_counter()
    with socket.create_connection(address, timeout=timeout) as sock:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        data = b""
        while b"\r\n" not in data:
            chunk = sock.recv(4096)
            if not chunk:
                raise ProtocolError("wait mode: connection closed before the greeting: %r" % data)
            data += chunk
        elapsed = time.perf_counter() - started
        if not (data.startswith(b"* OK") or data.startswith(b"+OK")):
            raise ProtocolError("wait mode greeting: %r" % data)
        sock.sendall(b"Z LOGOUT\r\n" if protocol == "imap" else b"QUIT\r\n")
        while sock.recv(4096):
            pass
    return ms(elapsed)


def bare_start_time(argv, user, group):
    """Milliseconds from starting argv to its exit, started the same way as the servers."""
    started = time.perf_counter()
    process = subprocess.Popen(argv, stdin=subprocess.DEVNULL, user=user, group=group,
                               extra_groups=[], close_fds=True)
    process.wait()
    return ms(time.perf_counter() - started)


# -- IMAP ---------------------------------------------------------------------------


class ImapFlow(Flow):
    """First open, reopen with the read scenarios, then the writing ones."""

    def run(self, source, count):
        self.server.install(source, "imap")
        self.first_open(count)
        self.reads(count)
        self.writes(count)
        self.record("imap_rss", max(self.peak_rss.values()))
        self.record("imap_anon", max(self.peak_anon.values()))
        self.check_count("IMAP: messages left in the spool after EXPUNGE",
                         self.spool_messages("imap"), count - count // 10)

    def open(self, conn, launch, count, metric, total_metric):
        client = ImapClient(conn)
        client.greeting()
        if launch.login:
            seconds, _, _ = client.command(b'LOGIN "%s" "%s"' % tuple(
                part.encode() for part in launch.login))
            self.record("imap_login", ms(seconds))
        seconds, _, untagged = client.command(b"SELECT INBOX")
        self.record(total_metric, ms(time.perf_counter() - conn.started))
        self.record(metric, ms(seconds))
        exists = re.search(rb"\* (\d+) EXISTS", untagged)
        self.check_count("SELECT: EXISTS", int(exists.group(1)) if exists else None, count)
        return client

    def logout(self, client, conn, metric=None):
        started = time.perf_counter()
        client.conn.send(b"Z LOGOUT\r\n")
        conn.wait_closed()
        if metric:
            self.record(metric, ms(time.perf_counter() - started))

    def first_open(self, count):
        with self.connection("imap", "first-open") as (conn, launch):
            client = self.open(conn, launch, count, "imap_select_first", "imap_start_select_first")
            self.logout(client, conn, "imap_logout_first")

    def fetch_envelopes(self, client, count, metric):
        seconds, _, untagged = client.command(ENVELOPE_FETCH)
        self.record(metric, ms(seconds))
        self.check_count("FETCH 1:* ENVELOPE: FETCH responses", len(FETCH_LINE.findall(untagged)),
                         count)

    def reads(self, count):
        with self.connection("imap", "reopen") as (conn, launch):
            client = self.open(conn, launch, count, "imap_select_reopen", "imap_start_select_reopen")
            self.memory_mark(conn, "imap_select_reopen")
            self.fetch_envelopes(client, count, "imap_fetch_envelope")
            self.memory_mark(conn, "imap_fetch_envelope")
            seconds, _, untagged = client.command(b"UID SEARCH BODY " + corpus.RARE_WORD.encode())
            self.record("imap_search_body", ms(seconds))
            self.memory_mark(conn, "imap_search_body")
            found = re.search(rb"\* SEARCH([ \d]*)\r\n", untagged)
            self.check_count("UID SEARCH BODY %s: UIDs found" % corpus.RARE_WORD,
                             len(found.group(1).split()) if found else None, corpus.rare_count(count))
            first = max(1, count - BODY_FETCH_COUNT + 1)
            seconds, _, untagged = client.command(b"FETCH %d:%d BODY.PEEK[]" % (first, count))
            size = literal_bytes(untagged)
            self.record("imap_body_ms", ms(seconds))
            self.record("imap_body_mbps", size / 1e6 / seconds)
            self.memory_mark(conn, "imap_body")
            self.check_count("FETCH BODY.PEEK[]: FETCH responses", len(FETCH_LINE.findall(untagged)),
                             count - first + 1)
            self.logout(client, conn)

    def writes(self, count):
        with self.connection("imap", "write") as (conn, launch):
            client = self.open(conn, launch, count, "imap_select_reopen2", "imap_start_select_reopen2")
            self.memory_mark(conn, "imap_select_reopen2")
            self.fetch_envelopes(client, count, "imap_fetch_envelope_again")
            self.memory_mark(conn, "imap_fetch_envelope_again")
            seconds, _, _ = client.command(b"STORE 1 +FLAGS (\\Flagged)")
            self.record("imap_store_one", ms(seconds))
            tenth = list(range(10, count + 1, 10))
            store = 0.0
            for start in range(0, len(tenth), STORE_CHUNK):
                numbers = b",".join(b"%d" % n for n in tenth[start:start + STORE_CHUNK])
                seconds, _, _ = client.command(b"STORE " + numbers + b" +FLAGS.SILENT (\\Deleted)")
                store += seconds
            self.record("imap_store_deleted", ms(store))
            seconds, _, untagged = client.command(b"EXPUNGE")
            self.record("imap_expunge", ms(seconds))
            self.record("imap_store_expunge", ms(store + seconds))
            self.memory_mark(conn, "imap_store_expunge")
            expunged = len(EXPUNGE_LINE.findall(untagged))
            misspelt = re.search(rb"\* \d+ EXPUNGED\r\n", untagged)
            if not expunged and misspelt:
                self.warn("EXPUNGE answered with %r lines (RFC 3501 7.4.1: EXPUNGE)"
                          % misspelt.group().strip().decode())
            else:
                self.check_count("EXPUNGE: EXPUNGE responses", expunged, len(tenth))
            self.logout(client, conn, "imap_logout_expunge")


# -- POP3 ---------------------------------------------------------------------------


class Pop3Flow(Flow):
    """Login + STAT on a first open, then a full download session that deletes every tenth."""

    def run(self, source, count):
        self.server.install(source, "pop3")
        with self.connection("pop3", "first-open") as (conn, launch):
            self.open(conn, launch, count, "pop3_stat_first", "pop3_start_stat_first")
            self.quit(conn)
        with self.connection("pop3", "download") as (conn, launch):
            self.open(conn, launch, count, "pop3_stat_reopen", "pop3_start_stat_reopen")
            self.memory_mark(conn, "pop3_stat_reopen")
            self.listing(conn, b"UIDL\r\n", "pop3_uidl", count)
            self.listing(conn, b"LIST\r\n", "pop3_list", count)
            self.memory_mark(conn, "pop3_list")
            self.retrieve_all(conn, count)
            self.memory_mark(conn, "pop3_retr")
            self.delete_every_tenth(conn, count)
            self.quit(conn, "pop3_quit")
        self.record("pop3_rss", max(self.peak_rss.values()))
        self.record("pop3_anon", max(self.peak_anon.values()))
        self.check_count("POP3: messages left in the spool after QUIT",
                         self.spool_messages("pop3"), count - count // 10)

    def open(self, conn, launch, count, metric, total_metric):
        if launch.greets:
            conn.pop_reply()
        if launch.login:
            started = time.perf_counter()
            conn.send(b"USER %s\r\n" % launch.login[0].encode())
            conn.pop_reply()
            conn.send(b"PASS %s\r\n" % launch.login[1].encode())
            conn.pop_reply()
            self.record("pop3_login", ms(time.perf_counter() - started))
        started = time.perf_counter()
        conn.send(b"STAT\r\n")
        line = conn.pop_reply()
        now = time.perf_counter()
        self.record(metric, ms(now - started))
        self.record(total_metric, ms(now - conn.started))
        self.check_count("STAT: messages", int(line.split()[1]), count)

    def quit(self, conn, metric=None):
        started = time.perf_counter()
        conn.send(b"QUIT\r\n")
        conn.pop_reply()
        conn.wait_closed()
        if metric:
            self.record(metric, ms(time.perf_counter() - started))

    def listing(self, conn, command, metric, count):
        started = time.perf_counter()
        conn.send(command)
        _, body = conn.pop_multiline()
        self.record(metric, ms(time.perf_counter() - started))
        self.check_count("%s: lines" % command.strip().decode(), body.count(b"\r\n"), count)

    def retrieve_all(self, conn, count):
        """RETR 1..count with RETR_WINDOW commands in flight; bytes are the message bodies."""
        size, sent = 0, 0
        started = time.perf_counter()
        for number in range(1, count + 1):
            while sent < min(count, number + RETR_WINDOW - 1):
                batch_end = min(count, sent + RETR_WINDOW)
                conn.send(b"".join(b"RETR %d\r\n" % n for n in range(sent + 1, batch_end + 1)))
                sent = batch_end
            size += conn.pop_multiline(keep=False)[1]
        seconds = time.perf_counter() - started
        self.record("pop3_retr_ms", ms(seconds))
        self.record("pop3_retr_mbps", size / 1e6 / seconds)

    def delete_every_tenth(self, conn, count):
        numbers = range(10, count + 1, 10)
        started = time.perf_counter()
        sender = conn.send_in_background(b"".join(b"DELE %d\r\n" % n for n in numbers))
        for _ in numbers:
            conn.pop_reply()
        sender.join()
        self.record("pop3_dele", ms(time.perf_counter() - started))
