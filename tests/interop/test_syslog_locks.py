"""A mailbox lock that is not given up in time: the client is told, and syslog says so (issue 6, point 4).

The servers run on a socket pair with their syslog socket bound over /dev/log
(the fixtures of test_syslog.py); the test holds an fcntl write lock on the
spool, as a delivering MTA does, for the whole session.
"""

import fcntl
import os
import re

from test_syslog import PASSWORD, account, received, run_session, syslog_socket  # noqa: F401  (fixtures)


def hold_spool_lock(config):
    """An fd holding an fcntl write lock on the test account's spool file (alice)."""
    fd = os.open(os.path.join(os.path.dirname(config), "spool", "alice"), os.O_RDWR)
    fcntl.lockf(fd, fcntl.LOCK_EX)
    return fd


def lock_lines(sock):
    return [text for _, text in received(sock)
            if "is locked" in text or "no mailbox" in text]


def test_pop3_lock_timeout_is_answered_in_use_and_logged(syslog_socket, account):
    """ipop3d waits mbox_lock_timeout for the spool, answers -ERR [IN-USE] and logs the wait and the refusal."""
    sock, bind_log = syslog_socket
    with open(account, "a") as config:
        config.write("mbox_lock_timeout = 1\n")
    fd = hold_spool_lock(account)
    try:
        answer = run_session(account, [b"USER alice", b"PASS " + PASSWORD.encode()], bind_log)
    finally:
        os.close(fd)
    assert b"-ERR [IN-USE]" in answer
    lines = lock_lines(sock)
    assert any(re.search(r"ipop3d\[\d+\]: Mailbox \S+/alice is locked \(fcntl\), waiting up to 1 seconds",
                         text) for text in lines), lines
    assert any(re.search(r"ipop3d\[\d+\]: Login user=alice host=\[local\] no mailbox \(.*locked", text)
               for text in lines), lines


def test_imap_lock_timeout_is_answered_inuse_and_logged(syslog_socket, account):
    """imapd's SELECT waits mbox_lock_timeout, answers NO [INUSE] and logs the wait."""
    sock, bind_log = syslog_socket
    with open(account, "a") as config:
        config.write("mbox_lock_timeout = 1\n")
    fd = hold_spool_lock(account)
    try:
        answer = run_session(account, [b"a LOGIN alice " + PASSWORD.encode(), b"b SELECT INBOX",
                                       b"c LOGOUT"], bind_log, "imapd.py")
    finally:
        os.close(fd)
    assert re.search(rb"\r\nb NO \[INUSE\] ", answer), answer
    assert any(re.search(r"imapd\[\d+\]: Mailbox \S+/alice is locked \(fcntl\), waiting up to 1 seconds", text)
               for text in lock_lines(sock))
