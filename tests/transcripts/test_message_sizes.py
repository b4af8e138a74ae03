"""RETR over the real ipop3d: octet counts, LIST sizes and message bytes against UW's own answers."""

import hashlib
import json
import re

import pytest

from driver import MAILBOXES, PASSWORD, USER, UW_FIXTURES, UW_INBOX

UW_EXPECTED = json.loads((UW_FIXTURES / "expected.json").read_text())
UW_MESSAGES = UW_EXPECTED["mailboxes"][0]["messages"]
STATUS_LINE = re.compile(rb"Status: [R ][O ]")


def log_in(server):
    assert server.read_line().startswith(b"+OK ")
    assert server.command(b"USER " + USER.encode()).startswith(b"+OK ")
    reply = server.command(b"PASS " + PASSWORD.encode())
    return int(re.fullmatch(rb"\+OK Mailbox open, (\d+) messages", reply).group(1))


def list_sizes(server):
    assert server.command(b"LIST") == b"+OK Mailbox scan listing follows"
    return [int(line.split()[1]) for line in server.read_multiline()]


def retrieve(server, number):
    """(octet count announced by RETR, message bytes with dot-stuffing undone)."""
    reply = server.command(b"RETR %d" % number)
    octets = int(re.fullmatch(rb"\+OK (\d+) octets", reply).group(1))
    lines = [line[1:] if line.startswith(b".") else line for line in server.read_multiline()]
    return octets, b"".join(line + b"\r\n" for line in lines)


def without_status_line(message):
    """The message with the synthesized Status: line, the last header line, taken out."""
    header, separator, body = message.partition(b"\r\n\r\n")
    *fields, status = header.split(b"\r\n")
    assert STATUS_LINE.fullmatch(status), "last header line is %r, not Status:" % status
    return b"\r\n".join(fields) + separator + body


def retrieve_all(server):
    """(LIST sizes, [(octets, bytes) of each RETR]) for the whole mailbox, then QUIT."""
    count = log_in(server)
    sizes = list_sizes(server)
    messages = [retrieve(server, number) for number in range(1, count + 1)]
    assert server.command(b"QUIT") == b"+OK Sayonara"
    server.expect_clean_exit()
    return sizes, messages


@pytest.mark.parametrize("mailbox", [UW_INBOX, MAILBOXES / "dots.mbox"], ids=lambda p: p.stem)
def test_retr_octet_count_is_list_size_and_bytes_sent(mailroom, start_server, mailbox):
    """Each RETR announces its LIST size and sends exactly that many octets before dot-stuffing."""
    mailroom.install(mailbox)
    sizes, messages = retrieve_all(start_server())
    assert [octets for octets, _ in messages] == sizes
    assert [len(data) for _, data in messages] == sizes


def test_list_sizes_are_uw_ipop3d_sizes(uw_inbox, start_server):
    """LIST gives the sizes real UW ipop3d gave for the fixture: RFC822.SIZE plus 12."""
    sizes, _ = retrieve_all(start_server())
    assert [[n, size] for n, size in enumerate(sizes, 1)] == UW_EXPECTED["pop3"]["list"]


def test_retr_without_status_line_is_uw_imapd_body(uw_inbox, start_server):
    """RETR minus its Status: line is, byte for byte, the BODY[] UW imapd sent for that message."""
    _, messages = retrieve_all(start_server())
    sent = [without_status_line(data) for _, data in messages]
    assert [len(data) for data in sent] == [m["rfc822_size"] for m in UW_MESSAGES]
    assert [hashlib.sha256(data).hexdigest() for data in sent] == [m["body_sha256"] for m in UW_MESSAGES]
