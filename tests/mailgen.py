"""Deterministic test mailboxes, written as an MTA writes a spool file, and the views clients get.

A spool mbox written here has no metadata headers (no Status, X-UID, X-IMAPbase,
Content-Length): each message is a From_ line, the header, an empty line, the
body, and an empty separator line, with body lines starting `From ` quoted as
`>From ` (mboxo, as MTAs and UW write it).

Messages are returned in the form a POP3 client sees after CRLF handling and
dot-unstuffing, *without* the `Status:` line that a UW-style server synthesizes
(it depends on the session, so tests split it off with `split_status`).
"""

import base64
import random
import re
import time

# 2025-11-20 00:00:00 UTC: messages are dated from here on, one per few hours.
BASE_TIME = 1763596800
# The c-client metadata headers a server adds and must hide (mbox-compat.md §5).
METADATA_HEADERS = (b"Status", b"X-Status", b"X-Keywords", b"X-UID", b"X-IMAP", b"X-IMAPbase")

_DAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
_PEOPLE = (("Ada Lovelace", "ada@example.org"), ("Grace Hopper", "grace@example.net"),
           ("Ken Thompson", "ken@example.com"), ("Barbara Liskov", "barbara@example.edu"),
           ("Dennis Ritchie", "dmr@example.com"), ("Radia Perlman", "radia@example.org"))
_RECIPIENT = ("Test User", "pyimapd-test@localhost")
_WORDS = ("mailbox", "spool", "lock", "server", "message", "folder", "client", "delivery",
          "header", "body", "protocol", "retrieve", "delete", "quota", "backup", "report")
_FROM_FIRST_LINE = re.compile(rb"(?m)^From [^\n]*\n")
_STATUS_LINE = re.compile(rb"Status: ([R ][O ])")


def ctime(when):
    """The asctime form of a UTC time, as a From_ line carries it (day padded with a space)."""
    t = time.gmtime(when)
    return "%s %s %2d %02d:%02d:%02d %d" % (_DAYS[t.tm_wday], _MONTHS[t.tm_mon - 1], t.tm_mday,
                                             t.tm_hour, t.tm_min, t.tm_sec, t.tm_year)


def rfc822_date(when):
    """The RFC 5322 Date: form of a UTC time."""
    t = time.gmtime(when)
    return "%s, %02d %s %d %02d:%02d:%02d +0000" % (_DAYS[t.tm_wday], t.tm_mday, _MONTHS[t.tm_mon - 1],
                                                   t.tm_year, t.tm_hour, t.tm_min, t.tm_sec)


def quote_from_lines(text):
    """Quote body lines that begin with `From ` as an MTA does (mboxo: prefix `>`)."""
    return re.sub(r"(?m)^From ", ">From ", text)


def _sentence(rng):
    words = [rng.choice(_WORDS) for _ in range(rng.randint(5, 12))]
    return " ".join(words).capitalize() + "."


def _paragraph(rng):
    return "\n".join(_sentence(rng) for _ in range(rng.randint(2, 5)))


def _plain_body(rng, number):
    """Text with the lines that trip up POP3 and mbox code: `From `, `.` and `..` starts."""
    return ("Hello,\n\n%s\n\nFrom the minutes of meeting %d:\n%s\n.\n..two dots\n"
            ".single dot at the start\n>From an already quoted line\n\n%s\n-- \n%s\n"
            % (_paragraph(rng), number, _paragraph(rng), _paragraph(rng), rng.choice(_PEOPLE)[0]))


def _eight_bit_body(rng, number):
    """UTF-8 text sent as 8bit, which must arrive byte for byte."""
    return ("Grüße aus Zürich, message %d.\nCafé, naïve, façade, smörgåsbord, Ελληνικά, 日本語.\n\n"
            "%s\nFrom here on, nothing special.\n" % (number, _paragraph(rng)))


def _multipart_body(rng, number, boundary):
    """A multipart/mixed body: a text part and a base64 attachment of random bytes."""
    blob = bytes(rng.getrandbits(8) for _ in range(rng.randint(300, 6000)))
    encoded = base64.encodebytes(blob).decode("ascii")
    return ("This is a multi-part message in MIME format.\n\n--%s\n"
            "Content-Type: text/plain; charset=us-ascii\n\n%s\n.\nSee the attachment.\n\n"
            "--%s\nContent-Type: application/octet-stream; name=\"data-%d.bin\"\n"
            "Content-Transfer-Encoding: base64\n"
            "Content-Disposition: attachment; filename=\"data-%d.bin\"\n\n%s\n--%s--\n"
            % (boundary, _paragraph(rng), boundary, number, number, encoded, boundary))


def make_message(rng, number, when):
    """One message as stored in the spool: header, empty line, body; LF line ends, From_ quoted."""
    name, address = rng.choice(_PEOPLE)
    kind = number % 3
    header = ["Return-Path: <%s>" % address,
              "Received: from mail.example.net (mail.example.net [192.0.2.%d])\n"
              "\tby localhost (Postfix) with ESMTP id %08X\n\tfor <%s>; %s"
              % (number % 250 + 1, rng.getrandbits(32), _RECIPIENT[1], rfc822_date(when)),
              "From: %s <%s>" % (name, address),
              "To: %s <%s>" % _RECIPIENT,
              "Subject: Test message %d about the %s\n\tand a folded subject line"
              % (number, rng.choice(_WORDS)),
              "Date: %s" % rfc822_date(when),
              "Message-ID: <%d.%08x@example.net>" % (number, rng.getrandbits(32)),
              "MIME-Version: 1.0"]
    if kind == 0:
        header.append("Content-Type: text/plain; charset=us-ascii")
        body = _plain_body(rng, number)
    elif kind == 1:
        boundary = "=_boundary_%08x" % rng.getrandbits(32)
        header.append('Content-Type: multipart/mixed; boundary="%s"' % boundary)
        body = _multipart_body(rng, number, boundary)
    else:
        header += ["Content-Type: text/plain; charset=utf-8", "Content-Transfer-Encoding: 8bit"]
        body = _eight_bit_body(rng, number)
    text = "\n".join(header) + "\n\n" + quote_from_lines(body)
    return text.encode("utf-8")


def mbox_entry(message, sender, when):
    """A message framed as an MTA appends it: From_ line, message, empty separator line."""
    return b"From %s %s\n" % (sender.encode("ascii"), ctime(when).encode("ascii")) + message + b"\n"


def client_view(message):
    """What a POP3 client gets for a stored message: CRLF line ends (Status: line aside)."""
    return message.replace(b"\n", b"\r\n")


def generate(count, seed, first_number=1):
    """Return (stored message, sender, date) for `count` messages, the same for the same seed."""
    rng = random.Random(seed)
    messages = []
    for number in range(first_number, first_number + count):
        when = BASE_TIME + number * 3 * 3600 + rng.randint(0, 3000)
        message = make_message(rng, number, when)
        sender = _PEOPLE[number % len(_PEOPLE)][1]
        messages.append((message, sender, when))
    return messages


def make_mbox(path, count, seed, append=False, first_number=1):
    """Write (or append) `count` messages to the mbox at path; return their client views."""
    generated = generate(count, seed, first_number)
    with open(path, "ab" if append else "wb") as spool:
        for message, sender, when in generated:
            spool.write(mbox_entry(message, sender, when))
    return [client_view(message) for message, _, _ in generated]


def hide_metadata(message):
    """Remove the c-client metadata headers from a stored message, as a server hides them."""
    header, separator, body = message.partition(b"\n\n")
    kept = [line for line in header.split(b"\n")
            if line.split(b":", 1)[0] not in METADATA_HEADERS]
    return b"\n".join(kept) + separator + body


def _is_pseudo_message(message):
    header = message.partition(b"\n\n")[0]
    return any(line.startswith(b"X-IMAP:") for line in header.split(b"\n"))


def read_mbox(path):
    """Read a spool file as a client would see it: client views, metadata hidden, no pseudo-message.

    Splits at every line starting with `From `; files written from `make_mbox`
    and by MTAs quote such body lines, so that is exact for them.
    """
    with open(path, "rb") as spool:
        data = spool.read()
    parts = _FROM_FIRST_LINE.split(data)
    if parts[0].strip(b"\r\n \t"):
        raise ValueError("%s does not start with a From_ line" % path)
    messages = []
    for index, part in enumerate(parts[1:]):
        if part.endswith(b"\n\n"):
            part = part[:-1]  # the separator line belongs to no message
        if index == 0 and _is_pseudo_message(part):
            continue
        messages.append(client_view(hide_metadata(part)))
    return messages


def split_status(download):
    """Split a downloaded message into (the XY of its synthesized `Status: XY` line, the rest).

    UW ipop3d adds that line as the last header line; return (None, download)
    if there is none, so a test can assert on it.
    """
    header, separator, body = download.partition(b"\r\n\r\n")
    lines = header.split(b"\r\n")
    match = _STATUS_LINE.fullmatch(lines[-1])
    if len(lines) < 2 or not match:
        return None, download
    return match.group(1).decode("ascii"), b"\r\n".join(lines[:-1]) + separator + body


def to_lf(message):
    """The LF form of a CRLF message, as MDAs and mbox writers receive it."""
    return message.replace(b"\r\n", b"\n")
