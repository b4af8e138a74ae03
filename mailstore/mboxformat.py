"""The Berkeley mbox format as UW c-client reads and writes it (reference/mbox-compat.md).

Pure functions over a bytes-like buffer (an mmap in production): find message
boundaries, read UW's metadata headers, and render them again. No locking,
no file handling: that is mailstore.mbox's concern.
"""

import gc
import mmap
import re
import struct
import zlib
import time
from array import array

from mailstore.fromline import is_from_line

# System flags as bits; "OLD" is UW's Status: O (the message is no longer \Recent).
SEEN, ANSWERED, FLAGGED, DELETED, DRAFT, OLD = 1, 2, 4, 8, 16, 32
FLAG_NAMES = ((ANSWERED, "\\Answered"), (FLAGGED, "\\Flagged"), (DELETED, "\\Deleted"),
              (DRAFT, "\\Draft"), (SEEN, "\\Seen"))
_LETTERS = {ord("R"): SEEN, ord("O"): OLD, ord("D"): DELETED, ord("F"): FLAGGED,
            ord("A"): ANSWERED, ord("T"): DRAFT}

# UW pads the status block so most flag changes keep the header's size (§5).
PAD_BLOCK, PAD_BLOCK_WITH_BASE = 50, 80
PSEUDO_SUBJECT = b"DON'T DELETE THIS MESSAGE -- FOLDER INTERNAL DATA"

# One metadata header line and its continuation lines, any case; UW matches
# case-sensitively and drops wrongly-cased copies ("bogus" headers), so the
# case is checked after the match.
_META = re.compile(
    rb"^(status|x-status|x-keywords|x-uid|x-imapbase|x-imap):[^\n]*\n(?:[ \t][^\n]*\n)*",
    re.M | re.I)
_CANONICAL = {b"Status", b"X-Status", b"X-Keywords", b"X-UID", b"X-IMAPbase", b"X-IMAP"}
_CONTENT_LENGTH = re.compile(rb"^Content-Length:[ \t]*(\d{1,12})[ \t\r]*\n", re.M | re.I)


# Pages of a mapped file count in the process's RSS once touched, until they are
# unmapped: a pass over a 1 GB mailbox would show as 1 GB. Every this many
# bytes read through the map they are dropped (the page cache keeps them, so a
# later read is a minor fault, not I/O).
RELEASE_BYTES = 4 << 20
# What one read fault maps on Linux (/sys/kernel/mm/transparent_hugepage aside).
FAULT_AROUND_BYTES = 64 << 10
# The largest page-cache folio a fault maps at once (a PMD: 2 MiB on x86-64 and arm64).
LARGE_FOLIO = 2 << 20


class PageRelease:
    """Keeps a pass over an mmap from holding the whole file in the process's RSS."""

    __slots__ = ("buf", "pending")

    def __init__(self, buf):
        self.buf = buf if isinstance(buf, mmap.mmap) else None
        self.pending = 0

    def consumed(self, count):
        """count more bytes were read through the map; drop its pages now and then."""
        self.pending += count
        if self.pending >= RELEASE_BYTES and self.buf is not None:
            self.pending = 0
            try:
                self.buf.madvise(mmap.MADV_DONTNEED)
            except (ValueError, OSError):
                self.buf = None  # closed meanwhile, or not allowed here: stop trying


class NotMbox(Exception):
    """The file does not start with a From_ line, so it is not an mbox."""


# A message's offsets and size, packed by Message: start, header, body, end,
# size, then its hidden spans as (start, end) pairs.
_NUMBERS = struct.Struct("5q")
# Spans longer than this are sized in pieces of it (see crlf_size).
SIZE_PIECE = 1 << 20
_NUMBER = struct.Struct("q")
_SPANS_AT = _NUMBERS.size


def _packed_number(index):
    """A property for one of the integers packed in Message._where."""
    at = index * _NUMBER.size

    def get(self):
        return _NUMBER.unpack_from(self._where, at)[0]

    def set(self, value):
        where = self._where
        self._where = where[:at] + _NUMBER.pack(value) + where[at + _NUMBER.size:]

    return property(get, set)


class Message:
    """One message's place in the file and its parsed metadata.

    Offsets: `start` is the From_ line, `header` the first header line,
    `body` the first body byte, `end` the end of the message text (the
    separator line excluded); `hidden` lists (start, end) spans of metadata
    lines inside the header, which clients never see; `size` is RFC822.SIZE.

    A 100,000-message mailbox keeps 100,000 of these for a whole session, so
    the offsets, size and spans live in one packed bytes object (about 140
    bytes, where separate ints and a tuple of tuples took about 800) and are
    unpacked when read. `uid` stays a plain int: the session's UID lists and
    dicts share that one object.
    """

    __slots__ = ("_where", "uid", "flags", "keywords", "dirty", "check")

    start = _packed_number(0)
    header = _packed_number(1)
    body = _packed_number(2)
    end = _packed_number(3)
    size = _packed_number(4)

    def __init__(self, start, header, body, end, hidden, size=0):
        self._where = _NUMBERS.pack(start, header, body, end, size)
        if hidden:
            self.hidden = hidden
        self.uid = 0
        self.flags = 0
        self.keywords = ()
        self.dirty = False
        # fingerprint() of the From_ line and header as last read (None: unknown):
        # a refresh re-reads only the messages whose bytes changed.
        self.check = None

    @property
    def hidden(self):
        flat = _unpack_offsets(self._where[_SPANS_AT:])
        return tuple(zip(flat[0::2], flat[1::2]))

    @hidden.setter
    def hidden(self, spans):
        self._where = self._where[:_SPANS_AT] + pack_offsets(
            offset for span in spans for offset in span)

    @property
    def packed_hidden(self):
        """The hidden spans as packed offsets (for the index sidecar)."""
        return self._where[_SPANS_AT:]

    def moved(self, delta):
        """Shift every offset by delta (the message's bytes were copied unchanged)."""
        values = _unpack_offsets(self._where)
        shifted = array("q", [value + delta for value in values])
        shifted[4] = values[4]  # the size, not an offset
        self._where = shifted.tobytes()

    @classmethod
    def packed(cls, numbers, hidden):
        """A Message from _NUMBERS-packed bytes and packed hidden spans."""
        message = cls(0, 0, 0, 0, ())
        message._where = numbers + hidden
        return message


def packed_record_lengths(messages):
    """How long each message's packed record (offsets, size, spans) is."""
    return array("i", [len(message._where) for message in messages])


def packed_records(messages):
    """The messages' packed records, back to back, as one bytes object."""
    return b"".join([message._where for message in messages])


def from_packed_records(lengths, records, uids, flags, checks):
    """Messages again from packed_records() output and their uid, flag and check columns.

    Reopening a 100,000-message mailbox builds all of them, so this skips
    __init__ (which would pack offsets only to throw them away) and the
    cyclic garbage collector, which would otherwise walk the growing list
    every few hundred new objects for nothing.
    """
    new, messages = Message.__new__, []
    append, position = messages.append, 0
    collecting = gc.isenabled()
    gc.disable()
    try:
        for length, uid, flag, check in zip(lengths, uids, flags, checks):
            message = new(Message)
            message._where = records[position:position + length]
            position += length
            message.uid, message.flags, message.check = uid, flag, check
            message.keywords, message.dirty = (), False
            append(message)
    finally:
        if collecting:
            gc.enable()
    if position != len(records):
        raise ValueError("packed records and their lengths disagree")
    return messages


def pack_numbers(start, header, body, end, size):
    """A Message's offsets and size packed as Message.packed takes them."""
    return _NUMBERS.pack(start, header, body, end, size)


def pack_offsets(offsets):
    """File offsets as one compact bytes object (b"" for none)."""
    return array("q", offsets).tobytes()


def _unpack_offsets(packed):
    values = array("q")
    values.frombytes(packed)
    return values


def skip_leading_whitespace(buf):
    """Offset of the first byte that is not CR, LF, SP or TAB (UW tolerates these)."""
    i, n = 0, len(buf)
    while i < n and buf[i] in b"\r\n \t":
        i += 1
    return i


def line_end(buf, pos):
    """Offset just past the LF ending the line at pos (or the buffer's end)."""
    nl = buf.find(b"\n", pos)
    return len(buf) if nl < 0 else nl + 1


def from_line_at(buf, pos):
    """True when a valid From_ line starts at pos."""
    if buf[pos:pos + 5] != b"From ":
        return False
    nl = buf.find(b"\n", pos, pos + 1024)
    line = buf[pos:nl if nl >= 0 else min(len(buf), pos + 1024)]
    return is_from_line(line)


def header_end(buf, header, limit):
    """Offset of the empty line ending the header that starts at `header`, or limit."""
    if buf[header:header + 1] == b"\n" or buf[header:header + 2] == b"\r\n":
        return header
    best = limit
    for pattern in (b"\n\n", b"\n\r\n"):
        # Each search stops where an earlier end was found: a header ended by LF LF
        # is not followed by a search for CR LF through the whole body.
        found = find_in_pieces(buf, pattern, header, best)
        if 0 <= found < best:
            best = found + 1
    return best


def next_boundary(buf, pos):
    """Offset of the next valid From_ line at or after a line start past pos."""
    n = len(buf)
    while True:
        found = find_in_pieces(buf, b"\nFrom ", pos, n)
        if found < 0:
            return n
        if from_line_at(buf, found + 1):
            return found + 1
        pos = found + 1


def content_length_end(buf, header_bytes, body):
    """Where the message ends if its Content-Length is exact (Dovecot style), else None.

    Exact means EOF, or a valid From_ line, follows that many body bytes
    (with or without a separating empty line).
    """
    match = _CONTENT_LENGTH.search(header_bytes)
    if not match:
        return None
    end = body + int(match.group(1))
    n = len(buf)
    if end > n:
        return None
    if end == n or (end == n - 1 and buf[end:end + 1] == b"\n"):
        return end
    if buf[end:end + 1] == b"\n" and from_line_at(buf, end + 1):
        return end
    return end if from_line_at(buf, end) else None


def text_end(buf, body, limit):
    """End of the message text before `limit`: a final empty line is the separator."""
    if limit - body >= 2 and buf[limit - 2:limit] == b"\n\n":
        return limit - 1
    if limit - body >= 3 and buf[limit - 3:limit] == b"\n\r\n":
        return limit - 2
    return limit


def scan_message(buf, start):
    """Parse the message whose From_ line is at start; return (Message, next_start)."""
    header = line_end(buf, start)
    limit = next_boundary(buf, header)
    hend = header_end(buf, header, limit)
    body = min(line_end(buf, hend), limit) if hend < limit else limit
    header_bytes = buf[header:hend]
    exact = content_length_end(buf, header_bytes, body)
    if exact is not None and exact >= body:
        nxt = exact + 1 if buf[exact:exact + 1] == b"\n" and exact + 1 <= len(buf) else exact
        nxt = min(nxt, len(buf))
        end = exact
    else:
        nxt, end = limit, text_end(buf, body, limit)
    hidden = pack_offsets(offset for match in _META.finditer(header_bytes)
                          for offset in (header + match.start(), header + match.end()))
    message = Message.packed(pack_numbers(start, header, body, end, 0), hidden)
    message.check = zlib.crc32(buf[hend:body], zlib.crc32(header_bytes, zlib.crc32(buf[start:header])))
    return message, nxt


def changed_messages(buf, messages):
    """The messages whose From_ line and header no longer hash to their `check`.

    A refresh asks this of every message after any write to the file, so it
    is one loop with one unpack per message, and it lets the map's pages go
    as it passes (each header read faults in the pages around it).
    """
    changed, crc32, numbers = [], zlib.crc32, _NUMBERS.unpack_from
    pages = PageRelease(buf)
    for message in messages:
        start, _, body, end, _ = numbers(message._where)
        pages.consumed(max(end - start, FAULT_AROUND_BYTES))
        if crc32(buf[start:body]) != message.check:
            changed.append(message)
    return changed


def with_new_header(buf, start, header_length, body_length, size):
    """The Message scan_message would find at start, where a message was written with a new
    header of header_length bytes (From_ line, body and separator copied as they were):
    only the header is read, not the body."""
    header = line_end(buf, start)
    body = header + header_length
    hend = header_end(buf, header, body)
    header_bytes = buf[header:hend]
    hidden = pack_offsets(offset for match in _META.finditer(header_bytes)
                          for offset in (header + match.start(), header + match.end()))
    message = Message.packed(pack_numbers(start, header, body, body + body_length, size), hidden)
    message.check = zlib.crc32(buf[hend:body], zlib.crc32(header_bytes, zlib.crc32(buf[start:header])))
    return message


def header_size(buf, message):
    """The part of RFC822.SIZE that is the visible header (see compute_size)."""
    return sum(crlf_size(buf, s, min(e, message.body)) for s, e in visible_spans(message)
               if s < message.body)


def fingerprint(buf, message):
    """A hash of the bytes an in-place change could touch: the From_ line and the header."""
    return zlib.crc32(buf[message.start:message.body])


def scan(buf, start=0):
    """Parse every message from `start` (a From_ line, or the file's beginning) to EOF."""
    pos = start
    if start == 0:
        pos = skip_leading_whitespace(buf)
        if pos == len(buf):
            return []
        if not from_line_at(buf, pos):
            raise NotMbox("file does not begin with a From_ line")
    messages = []
    n = len(buf)
    pages = PageRelease(buf)
    while pos < n:
        message, next_pos = scan_message(buf, pos)
        messages.append(message)
        pages.consumed(next_pos - pos)
        pos = next_pos
    return messages


def crlf_size(buf, start, end):
    """Octets of buf[start:end] on the wire: CRs dropped, every LF sent as CRLF.

    A large span is counted a piece at a time and its mapped pages let go, so
    that sizing a 100 MB message neither copies it nor keeps it resident.
    """
    if end - start <= SIZE_PIECE:
        return wire_octets(buf[start:end])  # most messages: no madvise call each
    return sum(wire_octets(piece) for piece in mapped_pieces(buf, start, end))


def mapped_pieces(buf, start, end):
    """buf[start:end] as bytes, SIZE_PIECE at a time, each piece's mapped pages let go
    once the caller is done with it."""
    for at in range(start, end, SIZE_PIECE):
        stop = min(end, at + SIZE_PIECE)
        yield buf[at:stop]
        let_go(buf, at, stop)


def find_in_pieces(buf, pattern, start, end):
    """buf.find(pattern, start, end), searching a mapped file SIZE_PIECE at a time
    and letting the pages searched go: a 100 MB body is passed over, not kept."""
    if end - start <= SIZE_PIECE or not isinstance(buf, mmap.mmap):
        return buf.find(pattern, start, end)
    overlap = len(pattern) - 1
    for at in range(start, end, SIZE_PIECE):
        found = buf.find(pattern, at, min(end, at + SIZE_PIECE + overlap))
        if found >= 0:
            return found
        let_go(buf, at, min(end, at + SIZE_PIECE))
    return -1


def let_go(buf, start, end):
    """Drop the mapped pages of buf[start:end] from the process's RSS (they are read
    again from the page cache if needed): a pass over one large message would
    otherwise keep all of it resident, as PageRelease does for many small ones.

    The range is widened to whole LARGE_FOLIO units: a fault on a page of a
    large page-cache folio (a file written moments ago) maps all of it, and
    a release of part of it would leave the rest in the RSS for good."""
    if isinstance(buf, mmap.mmap) and end > start:
        first = start - start % LARGE_FOLIO
        last = min(len(buf), end + (-end) % LARGE_FOLIO)
        try:
            buf.madvise(mmap.MADV_DONTNEED, first, last - first)
        except (ValueError, OSError):
            pass  # the pages stay: only memory, never correctness


def wire_octets(chunk):
    """Octets of chunk on the wire: CRs dropped, every LF sent as CRLF."""
    # Most mail holds no CR: `in` finds that out at memchr speed, count() would not.
    crs = chunk.count(b"\r") if b"\r" in chunk else 0
    return len(chunk) - crs + chunk.count(b"\n")


def visible_spans(message):
    """The (start, end) spans of the message's header+body that clients see."""
    spans, pos = [], message.header
    for hstart, hend in message.hidden:
        if hstart > pos:
            spans.append((pos, hstart))
        pos = hend
    spans.append((pos, message.end))
    return spans


def compute_size(buf, message):
    """RFC822.SIZE: the visible header and body in CRLF form (mbox-compat.md §9)."""
    # The sizes add up over disjoint spans: the whole text less the metadata lines
    # (all inside it) is one pass over the bytes instead of one per visible span.
    size = crlf_size(buf, message.header, message.end)
    size -= sum(crlf_size(buf, s, e) for s, e in message.hidden)
    if message.end > message.header and buf[message.end - 1:message.end] != b"\n":
        size += 2  # an unterminated last line is sent with a CRLF
    return size


class MetaHeaders:
    """The metadata headers of one message, as UW would honour them."""

    __slots__ = ("status", "uid", "keywords", "imap", "imapbase", "bogus")

    def __init__(self):
        self.status = None
        self.uid = None
        self.keywords = None
        self.imap = None
        self.imapbase = None
        self.bogus = False


def read_meta(buf, message):
    """Read the metadata lines of a message; wrongly-cased names count as bogus."""
    meta = MetaHeaders()
    letters = b""
    for hstart, hend in message.hidden:
        line = bytes(buf[hstart:line_end(buf, hstart)])
        name, _, value = line.partition(b":")
        value = value.strip()
        if name not in _CANONICAL:
            meta.bogus = True
            continue
        if name in (b"Status", b"X-Status"):
            letters += value
            meta.status = letters
        elif name == b"X-UID":
            meta.uid = value
        elif name == b"X-Keywords":
            meta.keywords = value.split()
        elif name == b"X-IMAP":
            meta.imap = value
        else:
            meta.imapbase = value
    return meta


def flags_from_letters(letters):
    """Flag bits from Status/X-Status letters; unknown letters are ignored (UW)."""
    flags = 0
    for letter in letters or b"":
        flags |= _LETTERS.get(letter, 0)
    return flags


def parse_base(value):
    """(uidvalidity, last_uid, keywords) from an X-IMAP/X-IMAPbase value, or None."""
    fields = value.split()
    if len(fields) < 2 or not fields[0].isdigit() or not fields[1].isdigit():
        return None
    uidvalidity = int(fields[0])
    if uidvalidity == 0 or uidvalidity > 0xFFFFFFFF:
        return None
    keywords = [k.decode("ascii", "replace") for k in fields[2:]]
    return uidvalidity, int(fields[1]), keywords


def status_block(message, keywords_text, base=None):
    """UW's metadata block for the end of a header (§5), padded for in-place updates."""
    flags = message.flags
    status = b"Status: " + (b"R" if flags & SEEN else b"") + (b"O" if flags & OLD else b"") + b"\n"
    xstatus = b"X-Status: " + b"".join(
        letter for bit, letter in ((DELETED, b"D"), (FLAGGED, b"F"), (ANSWERED, b"A"), (DRAFT, b"T"))
        if flags & bit) + b"\n"
    keywords = b"X-Keywords:" + b"".join(b" " + k.encode("ascii") for k in keywords_text)
    head = base or b""
    block = head + status + xstatus + keywords
    target = PAD_BLOCK_WITH_BASE if base else PAD_BLOCK
    if len(block) < target:
        block += b" " * (target - len(block))
    return block + b"\n" + b"X-UID: %d\n" % message.uid


def base_line(uidvalidity, last_uid, keywords, name=b"X-IMAPbase", padded=False):
    """The X-IMAPbase (or X-IMAP) line: UIDVALIDITY, last UID, keyword list.

    X-IMAP pads both numbers to 10 digits as UW does; a padded X-IMAPbase
    (as Dovecot writes it, and UW reads it) lets the last UID grow in place.
    """
    words = b"".join(b" " + k.encode("ascii") for k in keywords)
    if name == b"X-IMAP":
        return b"X-IMAP: %010d %010d%s\n" % (uidvalidity, last_uid, words)
    if padded:
        return b"%s: %d %010d%s\n" % (name, uidvalidity, last_uid, words)
    return b"%s: %d %d%s\n" % (name, uidvalidity, last_uid, words)


def pseudo_message(uidvalidity, last_uid, keywords, hostname, now=None):
    """UW's "FOLDER INTERNAL DATA" pseudo-message that keeps a mailbox's UID state (§6)."""
    now = int(time.time() if now is None else now)
    ctime = time.asctime(time.localtime(now))
    zone = time.strftime("%z", time.localtime(now)).encode("ascii")
    date = time.strftime("%d %b %Y %H:%M:%S ", time.localtime(now)).encode("ascii") + zone
    host = hostname.encode("ascii", "replace")
    return (b"From MAILER-DAEMON " + ctime.encode("ascii") + b"\n"
            + b"Date: " + date + b"\n"
            + b"From: Mail System Internal Data <MAILER-DAEMON@" + host + b">\n"
            + b"Subject: " + PSEUDO_SUBJECT + b"\n"
            + b"Message-ID: <%d@" % now + host + b">\n"
            + base_line(uidvalidity, last_uid, keywords, b"X-IMAP")
            + b"Status: RO\n\n"
            + b"This entry holds the folder's UID and keyword state for the mail server.\n"
            + b"It is not a message and mail programs that know the format hide it.\n"
            + b"Removing it makes every mail client download this folder again,\n"
            + b"because the folder then gets new UIDs.\n\n")


# Metadata names a client may not smuggle into an appended message (mbox-compat.md §11):
# UW renames its Status: header to X-Original-Status:, and the others likewise.
_SMUGGLED = re.compile(rb"^(status|x-status|x-keywords|x-uid|x-imapbase|x-imap):", re.M | re.I)
_BODY_FROM = re.compile(rb"^From ", re.M)


def append_pieces(chunks, from_line, message):
    """An appended message as mbox text, in pieces: From_ line, header, UW metadata, quoted body.

    `chunks` yield the client's message (CRLF or LF), whole or in pieces
    (mailstore.text); `message` carries the flags, keywords and UID to
    record. Line ends become LF, NUL becomes 0x80 (UW), and every body line
    starting `From ` is quoted (mboxo, as UW and the MTAs do). The header
    ends at the first empty line; without one the whole text is header.
    """
    from mailstore.text import lf_pieces

    yield from_line + b"\n"
    in_header, line_start, last, seen = True, True, b"\n", False
    for piece in lf_pieces(chunks):
        piece = piece.replace(b"\0", b"\x80")
        if in_header:
            header, body = _split_header(piece, last == b"\n")
            yield _replace_at_lines(_SMUGGLED, _rename_smuggled, header, line_start)
            if body is None:
                line_start, last, seen = piece.endswith(b"\n"), piece[-1:], True
                continue
            yield status_block(message, message.keywords) + b"\n"
            in_header, line_start, last, seen, piece = False, True, b"\n", False, body
            if not piece:
                continue
        yield _replace_at_lines(_BODY_FROM, b">From ", piece, line_start)
        line_start, last, seen = piece.endswith(b"\n"), piece[-1:], True
    if in_header:
        ending = b"" if seen and last == b"\n" else b"\n"
        yield ending + status_block(message, message.keywords) + b"\n"
    elif seen and last != b"\n":
        yield b"\n"
    yield b"\n"


def _split_header(piece, after_line_end):
    """(header part, body part or None while the header goes on) of one piece."""
    if after_line_end and piece.startswith(b"\n"):
        return b"", piece[1:]
    split = piece.find(b"\n\n")
    if split < 0:
        return piece, None
    return piece[:split + 1], piece[split + 2:]


def _rename_smuggled(match):
    return b"X-Original-" + match.group(1) + b":"


def _replace_at_lines(pattern, replacement, piece, line_start):
    """pattern.sub on a piece, whose first line may continue the previous piece's."""
    if line_start:
        return pattern.sub(replacement, piece)
    cut = piece.find(b"\n") + 1
    return piece[:cut] + pattern.sub(replacement, piece[cut:]) if cut else piece

