#!/usr/bin/python3
"""Peak memory of pyimapd sessions on a large mailbox, and where it comes from.

    sudo python3 bench/memory.py MBOX [--workdir DIR] [--scenarios imap-first,imap-second,pop3]
    python3 bench/memory.py MBOX --profile open|imap|pop3 [--fresh] [--select] [--top N]

Server mode (the default) runs the real imapd.py / ipop3d.py as inetd starts
them (bench/servers.py, bench/client.py) on one private copy of MBOX, in order:

- imap-first:  LOGIN, SELECT INBOX (no index yet), FETCH 1:* (UID FLAGS
               RFC822.SIZE INTERNALDATE ENVELOPE) (no cached envelopes), LOGOUT
- imap-second: the same again (index and envelope cache from the first)
- pop3:        USER/PASS, STAT, UIDL, LIST, RETR of every message, QUIT (no DELE)

and prints, per session, the peak RSS (VmHWM, mapped mailbox pages included)
and the peak RssAnon (private memory) sampled every 10 ms, also up to the end of
each command, with each command's time. Also available for --scenarios:
`pop3-first` (a fresh copy, no index), `imap-delivery` (SELECT, one message
appended to the spool as an MTA does, NOOP: the re-read of what changed) and
`imap-bodies` (SELECT, FETCH 1:* (BODY.PEEK[]): every message's text),
`imap-structure` (SELECT, FETCH 1:* (BODYSTRUCTURE), UID SEARCH BODY),
`imap-binary` (SELECT, FETCH 1:* (BINARY.SIZE[1] BINARY.PEEK[1])),
`imap-copy` (SELECT, COPY 1:* into a new folder, which is then deleted) and
`imap-append` (SELECT, APPEND of one 50 MB message with LITERAL+).

Profile mode runs the same work in this process through the store API, with
tracemalloc on: a thread samples the traced memory and takes a snapshot each
time it grows past the last snapshot by 5%, so the report names the lines
holding memory near the peak. `open` opens INBOX (with --fresh: a new copy of
MBOX, no index: the first open; else the index and cache of the last run),
`imap` the first two commands of imap-first/imap-second run through the real
IMAP session code (SELECT INBOX, the envelope FETCH, LOGOUT; no login, replies
dropped), `pop3` an open plus every message's text as RETR reads it; --select
adds SELECT's write to `open` and `pop3` (\\Recent claimed: every header
rewritten on a spool that has no UW metadata yet). Traced memory is Python allocations only, without the
interpreter's own overhead; ru_maxrss is printed too.
"""

import argparse
import os
import shutil
import sys
import threading
import time
from pathlib import Path

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))

from client import Connection, ImapClient  # noqa: E402
from servers import REPO, Identity, PyImapd  # noqa: E402

sys.path.insert(0, str(REPO))

ENVELOPE_FETCH = b"FETCH 1:* (UID FLAGS RFC822.SIZE INTERNALDATE ENVELOPE)"
DELIVERY = (b"From mta@example.org Thu Nov 26 10:00:00 2026\nFrom: mta@example.org\n"
            b"Subject: new mail during a session\n\nHello.\n\n")
DEFAULT_WORKDIR = "/var/tmp/pyimapd-memory"
# POP3 RETR commands in flight at once (RFC 2449 PIPELINING), as bench/scenarios.py does.
RETR_WINDOW = 16
SNAPSHOT_GROWTH = 1.05
SAMPLE_SECONDS = 0.05


def mb(kb):
    return kb / 1024.0


# -- server mode ------------------------------------------------------------------


class Session:
    """One server process; marks record the peak RssAnon up to each command's end."""

    def __init__(self, server, protocol, name, timeout):
        launch = server.launch(protocol)
        self.stderr_path = server.root / ("%s.stderr" % name)
        self.stderr_path.unlink(missing_ok=True)
        self.conn = Connection(launch.argv, launch.env, launch.cwd, launch.user, launch.group,
                               self.stderr_path, timeout)
        self.login = launch.login
        self.marks = []

    def mark(self, label, seconds):
        self.marks.append((label, seconds, mb(self.conn.peak_anon_kb)))

    def timed(self, label, action):
        started = time.perf_counter()
        result = action()
        self.mark(label, time.perf_counter() - started)
        return result

    def finish(self):
        self.conn.wait_closed()
        status = self.conn.status
        stderr = self.conn.stderr_text().strip()
        self.conn.close()
        if status != 0 or stderr:
            raise SystemExit("server exit status %s; stderr: %s" % (status, stderr[-2000:]))
        return {"peak_rss_mb": self.conn.peak_rss_mb, "peak_anon_mb": self.conn.peak_anon_mb,
                "marks": self.marks}


def selected_imap_session(server, name, timeout):
    """(Session, ImapClient) after the greeting, LOGIN and SELECT INBOX, each timed."""
    session = Session(server, "imap", name, timeout)
    client = ImapClient(session.conn)
    session.timed("greeting", client.greeting)
    session.timed("LOGIN", lambda: client.command(
        b'LOGIN "%s" "%s"' % tuple(part.encode() for part in session.login)))
    session.timed("SELECT", lambda: client.command(b"SELECT INBOX"))
    return session, client


def imap_session(server, name, timeout):
    session, client = selected_imap_session(server, name, timeout)
    _, _, untagged = session.timed("FETCH", lambda: client.command(ENVELOPE_FETCH, keep=False))
    session.timed("LOGOUT", lambda: client.conn.send(b"Z LOGOUT\r\n"))
    return session.finish()


def imap_bodies_session(server, name, timeout):
    """SELECT, then every message's full text (BODY.PEEK[]), as a client that
    downloads a mailbox does; the replies are read and dropped."""
    session, client = selected_imap_session(server, name, timeout)
    session.timed("FETCH", lambda: client.command(b"FETCH 1:* (BODY.PEEK[])", keep=False))
    session.timed("LOGOUT", lambda: client.conn.send(b"Z LOGOUT\r\n"))
    return session.finish()


def imap_structure_session(server, name, timeout):
    """SELECT, every message's BODYSTRUCTURE (as a MUA's list view asks), a body search."""
    session, client = selected_imap_session(server, name, timeout)
    session.timed("FETCH", lambda: client.command(b"FETCH 1:* (BODYSTRUCTURE)", keep=False))
    session.timed("SEARCH", lambda: client.command(b'UID SEARCH BODY "quokkafeather"',
                                                    keep=False))
    session.timed("LOGOUT", lambda: client.conn.send(b"Z LOGOUT\r\n"))
    return session.finish()


def imap_binary_session(server, name, timeout):
    """SELECT, then every message's first part decoded (RFC 3516 BINARY), with its size."""
    session, client = selected_imap_session(server, name, timeout)
    session.timed("FETCH", lambda: client.command(b"FETCH 1:* (BINARY.SIZE[1] BINARY.PEEK[1])",
                                                   keep=False))
    session.timed("LOGOUT", lambda: client.conn.send(b"Z LOGOUT\r\n"))
    return session.finish()


def imap_append_session(server, name, timeout):
    """SELECT, then APPEND of one 50 MB message (LITERAL+), as a client saving a
    large draft or an import tool does."""
    session, client = selected_imap_session(server, name, timeout)
    line = b"A long line of an appended message, sent as a LITERAL+ literal. " * 15 + b"\r\n"
    text = (b"From: big@example.org\r\nSubject: appended\r\n\r\n"
            + line * ((50 << 20) // len(line)))

    def append():
        client.conn.send(b"AP1 APPEND INBOX {%d+}\r\n" % len(text) + text + b"\r\n")
        line, _ = client.conn.imap_tagged(b"AP1", False)
        if not line.startswith(b"AP1 OK"):
            raise SystemExit("APPEND failed: %r" % line[:200])
    session.timed("APPEND", append)
    session.timed("LOGOUT", lambda: client.conn.send(b"Z LOGOUT\r\n"))
    return session.finish()


def imap_copy_session(server, name, timeout):
    """SELECT, then a copy of every message into a new folder, which is then deleted."""
    session, client = selected_imap_session(server, name, timeout)
    client.command(b"CREATE memory-copies")
    session.timed("COPY", lambda: client.command(b"COPY 1:* memory-copies"))
    client.command(b"DELETE memory-copies")
    session.timed("LOGOUT", lambda: client.conn.send(b"Z LOGOUT\r\n"))
    return session.finish()


def imap_delivery_session(server, name, timeout):
    """SELECT, then one message appended to the spool as an MTA does, then NOOP: the
    session re-reads what changed (every header is hashed to find flag patches)."""
    session, client = selected_imap_session(server, name, timeout)
    with open(server.spool("imap"), "r+b") as spool:
        spool.seek(-2, os.SEEK_END)
        ending = spool.read(2)
        separator = b"" if ending == b"\n\n" else b"\n" if ending.endswith(b"\n") else b"\n\n"
        spool.write(separator + DELIVERY)
    session.timed("NOOP", lambda: client.command(b"NOOP"))
    session.timed("LOGOUT", lambda: client.conn.send(b"Z LOGOUT\r\n"))
    return session.finish()


def pop3_session(server, name, timeout):
    session = Session(server, "pop3", name, timeout)
    conn = session.conn
    session.timed("greeting", conn.pop_reply)

    def login():
        conn.send(b"USER %s\r\n" % session.login[0].encode())
        conn.pop_reply()
        conn.send(b"PASS %s\r\n" % session.login[1].encode())
        conn.pop_reply()

    session.timed("USER/PASS", login)
    count = session.timed("STAT", lambda: _stat(conn))
    session.timed("UIDL", lambda: _multiline(conn, b"UIDL\r\n"))
    session.timed("LIST", lambda: _multiline(conn, b"LIST\r\n"))
    session.timed("RETR all", lambda: _retrieve_all(conn, count))
    session.timed("QUIT", lambda: (conn.send(b"QUIT\r\n"), conn.pop_reply()))
    return session.finish()


def _stat(conn):
    conn.send(b"STAT\r\n")
    return int(conn.pop_reply().split()[1])


def _multiline(conn, command):
    conn.send(command)
    conn.pop_multiline(keep=False)


def _retrieve_all(conn, count):
    sent = 0
    for number in range(1, count + 1):
        if sent < min(count, number + RETR_WINDOW - 1):
            end = min(count, sent + RETR_WINDOW)
            conn.send(b"".join(b"RETR %d\r\n" % n for n in range(sent + 1, end + 1)))
            sent = end
        conn.pop_multiline(keep=False)


SCENARIOS = {
    "imap-first": (imap_session, True),
    "imap-second": (imap_session, False),
    "imap-delivery": (imap_delivery_session, False),
    "imap-bodies": (imap_bodies_session, False),
    "imap-structure": (imap_structure_session, False),
    "imap-copy": (imap_copy_session, False),
    "imap-binary": (imap_binary_session, False),
    "imap-append": (imap_append_session, False),
    "pop3": (pop3_session, False),
    "pop3-first": (pop3_session, True),
}


def run_servers(options):
    server = PyImapd(options.workdir / "pyimapd", Identity())
    server.setup()
    installed = False
    results = []
    for name in options.scenarios:
        function, fresh = SCENARIOS[name]
        if fresh or not installed:
            progress("copying %s" % options.mbox)
            server.install(options.mbox, "imap")
            installed = True
        progress("%s (load %s)" % (name, load()))
        result = function(server, name, options.timeout)
        result["name"], result["load"] = name, load()
        results.append(result)
        print_session(result)
    if not options.keep:
        shutil.rmtree(server.root)
    return results


def print_session(result):
    print("%-12s peak RSS %6.1f MB  peak RssAnon %6.1f MB  (load %s)"
          % (result["name"], result["peak_rss_mb"], result["peak_anon_mb"], result["load"]))
    for label, seconds, anon in result["marks"]:
        print("    %-10s %8.2f s   RssAnon peak so far %6.1f MB" % (label, seconds, anon))
    sys.stdout.flush()


# -- profile mode ------------------------------------------------------------------


class PeakSnapshots:
    """Samples tracemalloc from a thread; keeps the snapshot taken nearest the peak."""

    def __init__(self):
        import tracemalloc

        self.tracemalloc = tracemalloc
        self.snapshot, self.snapshot_size = None, 0
        self.done = threading.Event()
        self.thread = threading.Thread(target=self._sample, daemon=True)

    def __enter__(self):
        self.tracemalloc.start(1)
        self.thread.start()
        return self

    def _sample(self):
        while not self.done.wait(SAMPLE_SECONDS):
            current, _ = self.tracemalloc.get_traced_memory()
            if current > self.snapshot_size * SNAPSHOT_GROWTH:
                self.snapshot = self.tracemalloc.take_snapshot()
                self.snapshot_size = current

    def __exit__(self, *exc):
        self.done.set()
        self.thread.join()
        self.peak = self.tracemalloc.get_traced_memory()[1]
        self.tracemalloc.stop()


def _store(workdir):
    from auth import Principal
    from mailstore import open_store
    from server.config import Config

    home = workdir / "home"
    home.mkdir(exist_ok=True)
    config = Config({"mail_location": "mbox:%s:INBOX=%s" % (home, workdir / "spool"),
                     "index_dir": str(workdir / "index")})
    return open_store(Principal("bench", os.getuid(), os.getgid(), str(home)), config)


class ScriptedTransport:
    """What an ImapSession reads and writes, without a client: commands given at
    once, replies counted and dropped."""

    encrypted, sock, tls, compression = False, None, None, None

    def __init__(self, commands):
        self.commands, self.sent = commands, 0

    def read(self, timeout):
        from server.transport import Disconnected

        if not self.commands:
            raise Disconnected("end of script")
        data, self.commands = self.commands, b""
        return data

    def write(self, data):
        self.sent += len(data)

    def pending(self):
        return False

    def is_loopback(self):
        return True

    def peer_text(self):
        return "[bench]"


def _imap_session(store):
    """SELECT INBOX and the envelope FETCH through the real IMAP session code."""
    from imap.session import AUTHENTICATED, ImapSession

    transport = ScriptedTransport(b"a SELECT INBOX\r\nb " + ENVELOPE_FETCH + b"\r\nc LOGOUT\r\n")
    session = ImapSession(transport, store.config, lambda *args: None, "bench")
    session.store, session.state = store, AUTHENTICATED
    session.principal = type("Principal", (), {"name": "bench"})()
    session.run()
    return transport.sent


def _read_texts(mailbox):
    total = 0
    with mailbox.reading():
        for stored in mailbox.messages:
            for chunk in mailbox.visible_chunks(stored):
                total += len(chunk)
    return total


def run_profile(options):
    workdir = options.workdir / "profile"
    spool = workdir / "spool"
    if options.fresh or not spool.exists():
        if workdir.exists():
            shutil.rmtree(workdir)
        workdir.mkdir(parents=True)
        progress("copying %s" % options.mbox)
        shutil.copyfile(options.mbox, spool)
    store = _store(workdir)
    progress("profile %s (load %s)" % (options.profile, load()))
    started = time.perf_counter()
    with PeakSnapshots() as peaks:
        if options.profile == "imap":
            _imap_session(store)
            opened = worked = time.perf_counter()
            after_open = peaks.tracemalloc.get_traced_memory()
        else:
            mailbox = store.open_inbox()
            if options.select:
                mailbox.claim_recent()
            opened = time.perf_counter()
            after_open = peaks.tracemalloc.get_traced_memory()
            if options.profile == "pop3":
                _read_texts(mailbox)
            worked = time.perf_counter()
            mailbox.close()
    # No ru_maxrss here: tracemalloc's snapshots (a tuple per live block) would dominate it.
    if options.profile == "imap":
        print("imap: SELECT, FETCH, LOGOUT %.2f s; traced peak %.1f MB"
              % (opened - started, peaks.peak / 2**20))
    else:
        print("%s: open %.2f s, work %.2f s, close %.2f s; traced after the open %.1f MB "
              "(peak %.1f MB), peak overall %.1f MB"
              % (options.profile, opened - started, worked - opened, time.perf_counter() - worked,
                 after_open[0] / 2**20, after_open[1] / 2**20, peaks.peak / 2**20))
    if peaks.snapshot is not None:
        print("snapshot at %.1f MB traced; top lines:" % (peaks.snapshot_size / 2**20))
        for stat in peaks.snapshot.statistics("lineno")[:options.top]:
            frame = stat.traceback[0]
            print("  %7.2f MB %8d blocks  %s:%d" % (stat.size / 2**20, stat.count,
                                                    _short(frame.filename), frame.lineno))


def _short(filename):
    try:
        return str(Path(filename).relative_to(REPO))
    except ValueError:
        return filename


# -- common -----------------------------------------------------------------------


def load():
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


def progress(text):
    print("[%s] %s" % (time.strftime("%H:%M:%S"), text), file=sys.stderr, flush=True)


def parse_arguments(argv):
    parser = argparse.ArgumentParser(description=__doc__.strip().splitlines()[0])
    parser.add_argument("mbox", type=Path, help="the mailbox to copy (never modified)")
    parser.add_argument("--workdir", type=Path, default=Path(DEFAULT_WORKDIR),
                        help="scratch space for the copy and the index (default %s)"
                             % DEFAULT_WORKDIR)
    parser.add_argument("--scenarios", default="imap-first,imap-second,pop3",
                        help="server mode: comma-separated, from %s" % ", ".join(SCENARIOS))
    parser.add_argument("--profile", choices=("open", "imap", "pop3"),
                        help="profile the store API in this process instead")
    parser.add_argument("--fresh", action="store_true",
                        help="profile: a new copy of MBOX, no index or cache (else reuse them)")
    parser.add_argument("--select", action="store_true",
                        help="profile: claim \\Recent after the open, as SELECT does (a write)")
    parser.add_argument("--top", type=int, default=15, help="profile: lines to show")
    parser.add_argument("--timeout", type=float, default=900, help="seconds per reply")
    parser.add_argument("--keep", action="store_true", help="server mode: keep the working copy")
    options = parser.parse_args(argv)
    options.scenarios = [name for name in options.scenarios.split(",") if name]
    unknown = set(options.scenarios) - set(SCENARIOS)
    if unknown:
        parser.error("unknown scenarios: %s" % ", ".join(sorted(unknown)))
    return options


def main(argv=None):
    options = parse_arguments(argv)
    options.workdir.mkdir(parents=True, exist_ok=True)
    if options.profile:
        run_profile(options)
    else:
        run_servers(options)


if __name__ == "__main__":
    main()
