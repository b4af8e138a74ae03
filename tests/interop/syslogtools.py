"""A syslog socket that is read all the time, and servers run on a socket pair that log to it.

The servers log with syslog(3) to the datagram socket /dev/log. Linux queues
only max_dgram_qlen (often 10) datagrams per socket and then blocks the
sender, so a socket that is read only after the session can stall a server
that logs more, or one whose /dev/log is shared with other processes on the
host that log too. The collector reads in a thread from the start, and lines
are picked by the server's pid.

Without a system /dev/log the socket is bound there; with one, the server
runs in a private mount namespace with the collector's socket bound over it.
"""

import os
import re
import socket
import subprocess
import sys
import threading
import time

import pytest

# A guard against a hung server, never a measurement.
GUARD_SECONDS = 60


class SyslogCollector:
    """Every datagram sent to the socket, kept as (priority value, message text)."""

    def __init__(self, directory):
        self.private = os.path.exists("/dev/log")
        self.path = str(directory / "log.sock") if self.private else "/dev/log"
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(self.path)
        os.chmod(self.path, 0o666)  # the servers log after dropping root
        self.entries = []
        self.thread = threading.Thread(target=self._read, daemon=True)
        self.thread.start()

    def _read(self):
        while True:
            try:
                datagram = self.sock.recv(65536).decode("utf-8", "replace")
            except OSError:
                return  # closed at teardown
            match = re.match(r"<(\d+)>(.*)", datagram, re.S)
            if match:
                self.entries.append((int(match.group(1)), match.group(2)))

    def wrap(self, command):
        """command, run so that its /dev/log is this socket."""
        if not self.private:
            return command
        return ["unshare", "-m", "sh", "-c", 'mount --bind "$0" /dev/log && exec "$@"', self.path] + command

    def lines_of(self, pid):
        """The messages of process pid (ident[pid]: text), all of those sent before this call."""
        marker = "[%d]: " % pid
        return [(priority, text) for priority, text in self.lines() if marker in text]

    def lines(self):
        """Every message sent before this call, as (priority, text)."""
        self._sync()
        return list(self.entries)

    def _sync(self):
        """Wait until the reader has taken every datagram queued before now (the queue is FIFO)."""
        sentinel = "sync-%d-%d" % (os.getpid(), len(self.entries))
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sender:
            sender.sendto(b"<0>" + sentinel.encode(), self.path)
        deadline = time.monotonic() + GUARD_SECONDS
        while not any(text == sentinel for _, text in list(self.entries)):
            assert time.monotonic() < deadline, "the syslog reader is stuck"
            time.sleep(0.01)

    def close(self):
        self.sock.close()
        os.unlink(self.path)


@pytest.fixture
def syslog_collector(tmp_path):
    """A SyslogCollector for one test."""
    collector = SyslogCollector(tmp_path)
    try:
        yield collector
    finally:
        collector.close()


def run_on_socketpair(collector, command, client, cwd=None):
    """Run a server command on a socket pair as inetd does, logging to collector.

    client(sock) talks to it and returns the socket to read the rest from.
    Returns (exit status, the bytes left to read until the server closed,
    the server's syslog lines as (priority, text)). `unshare` and `sh` exec
    the server, so the pid is the server's.
    """
    ours, theirs = socket.socketpair()
    ours.settimeout(GUARD_SECONDS)
    with theirs:
        process = subprocess.Popen(collector.wrap(command), stdin=theirs, stdout=theirs, cwd=cwd)
    with ours:
        sock = client(ours)
        rest = b""
        while True:
            data = sock.recv(65536)
            if not data:
                break
            rest += data
    status = process.wait(timeout=GUARD_SECONDS)
    return status, rest, collector.lines_of(process.pid)


def server_command(script, config, *args):
    return [sys.executable, str(script), "--config", str(config), *args]
