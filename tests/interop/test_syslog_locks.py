"""A mailbox lock that is not given up in time: the client is told, and syslog says so (issue 6, point 4).

The servers run on a socket pair, logging to a collector (syslogtools.py),
with the virtual user `alice` of test_syslog.py's `account` fixture; the test
holds an fcntl write lock on the spool, as a delivering MTA does, for the
whole session.
"""

import fcntl
import os
import re
import socket
from pathlib import Path

from syslogtools import run_on_socketpair, server_command, syslog_collector  # noqa: F401  (a fixture)
from test_syslog import PASSWORD, account  # noqa: F401  (a fixture)

REPO = Path(__file__).resolve().parents[2]


def hold_spool_lock(config):
    """An fd holding an fcntl write lock on the test account's spool file (alice)."""
    fd = os.open(os.path.join(os.path.dirname(config), "spool", "alice"), os.O_RDWR)
    fcntl.lockf(fd, fcntl.LOCK_EX)
    return fd


def locked_session(collector, config, program, lines):
    """Run program on a socket pair while the spool is locked; (its answer, its syslog texts)."""
    with open(config, "a") as handle:
        handle.write("mbox_lock_timeout = 1\n")

    def client(sock):
        sock.sendall(b"".join(line + b"\r\n" for line in lines))
        sock.shutdown(socket.SHUT_WR)
        return sock

    fd = hold_spool_lock(config)
    try:
        _status, answer, entries = run_on_socketpair(collector, server_command(REPO / program, config),
                                                     client, cwd=REPO)
    finally:
        os.close(fd)
    return answer, [text for _, text in entries]


def test_pop3_lock_timeout_is_answered_in_use_and_logged(syslog_collector, account):
    """ipop3d waits mbox_lock_timeout for the spool, answers -ERR [IN-USE] and logs the wait and the refusal."""
    answer, texts = locked_session(syslog_collector, account, "ipop3d.py",
                                   [b"USER alice", b"PASS " + PASSWORD.encode()])
    assert b"-ERR [IN-USE]" in answer
    assert any(re.search(r"ipop3d\[\d+\]: Mailbox \S+/alice is locked \(fcntl\), waiting up to 1 seconds",
                         text) for text in texts), texts
    assert any(re.search(r"ipop3d\[\d+\]: Login user=alice host=\[local\] no mailbox \(.*locked", text)
               for text in texts), texts


def test_imap_lock_timeout_is_answered_inuse_and_logged(syslog_collector, account):
    """imapd's SELECT waits mbox_lock_timeout, answers NO [INUSE] and logs the wait."""
    answer, texts = locked_session(syslog_collector, account, "imapd.py",
                                   [b"a LOGIN alice " + PASSWORD.encode(), b"b SELECT INBOX", b"c LOGOUT"])
    assert re.search(rb"\r\nb NO \[INUSE\] ", answer), answer
    assert any(re.search(r"imapd\[\d+\]: Mailbox \S+/alice is locked \(fcntl\), waiting up to 1 seconds", text)
               for text in texts), texts
