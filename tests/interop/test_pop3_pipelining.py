"""POP3 PIPELINING (RFC 2449 §6.6) with real clients: a batch of commands gets its replies in order, in one write.

Separate small writes of pipelined replies each wait for the client's delayed
ACK under Nagle's algorithm; ipop3d queues the replies of every command it
already has and writes them together before it waits for more input.
"""

import poplib
import socket
import subprocess
import sys

from clienttools import GUARD_SECONDS
from conftest import IPOP3D, REPO_ROOT
from test_pop3_clients import login

BATCH = [b"STAT", b"LIST", b"UIDL 2", b"TOP 1 0", b"DELE 3", b"NOOP", b"LIST 3"]
MULTILINE = [False, True, False, True, False, False, False]


def read_reply(pop, multiline):
    """One reply through poplib: the status line, and the lines of a multi-line one."""
    try:
        if multiline:
            status, lines, _ = pop._getlongresp()
            return [status] + lines
        return [pop._getresp()]
    except poplib.error_proto as error:  # an -ERR reply
        return [error.args[0]]


def test_poplib_pipelined_batch_gets_the_replies_of_one_at_a_time(mail_setup, start_pop3):
    """Commands sent in one write are answered in order with exactly the replies they get one by one."""
    listener = start_pop3(mail_setup.config_path)
    login(listener, mail_setup).quit()  # new mail becomes old mail: TOP's Status: line stays put
    one_by_one = login(listener, mail_setup)
    expected = []
    for command, multiline in zip(BATCH, MULTILINE):
        one_by_one._putcmd(command.decode())
        expected.append(read_reply(one_by_one, multiline))
    one_by_one.rset()
    one_by_one.quit()

    pop = login(listener, mail_setup)
    pop.sock.sendall(b"".join(command + b"\r\n" for command in BATCH))
    got = [read_reply(pop, multiline) for multiline in MULTILINE]
    pop.quit()
    assert got == expected
    assert got[-1][0].startswith(b"-ERR")  # LIST 3 after DELE 3: no such message
    assert len(mail_setup.spool_messages()) == len(mail_setup.messages) - 1


def test_replies_to_a_pipelined_batch_leave_in_one_write(mail_setup):
    """On a SOCK_SEQPACKET pair every server write is one record: a batch's replies are one record."""
    client, server_end = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    with server_end:
        process = subprocess.Popen([sys.executable, str(IPOP3D), "--config",
                                    str(mail_setup.config_path)], cwd=REPO_ROOT,
                                   stdin=server_end, stdout=server_end, stderr=subprocess.PIPE)
    with client:
        client.settimeout(GUARD_SECONDS)
        assert client.recv(65536).startswith(b"+OK")
        client.sendall(b"USER %s\r\nPASS %s\r\n" % (mail_setup.user.encode(),
                                                       mail_setup.password.encode()))
        assert client.recv(65536).count(b"+OK") == 2
        client.sendall(b"".join(command + b"\r\n" for command in BATCH))
        record = client.recv(1 << 20)
        assert record.count(b"\r\n.\r\n") == 2  # LIST and TOP, complete
        assert record.endswith(b"-ERR No such message\r\n")  # the last command's reply is there
        assert record.count(b"+OK") == 6
        client.sendall(b"QUIT\r\n")
        assert client.recv(65536).startswith(b"+OK")
    _, stderr = process.communicate(timeout=GUARD_SECONDS)
    assert process.returncode == 0, stderr
