"""Find damage in an mbox file and plan a repair that keeps every intact message.

Pure functions over a bytes-like buffer, as in mailstore.mboxformat: `examine`
reports what is wrong and decides what the repaired file holds; `render`
yields that file. Locking, the journal and the sidecars are the caller's
(admin.check).

What counts as damage, and what a repair does with it:

- Crash debris: runs of NUL bytes (what a crash leaves in preallocated or
  zero-filled blocks; mbox writers never store NUL, UW turns it into 0x80)
  and, at the end of a message, lines holding control bytes that mail text
  does not carry. Debris at the end of a message, and anything before the
  first From_ line, is moved out (the caller saves it to a rescue file); NUL
  bytes inside a message are dropped.
- A message hidden behind debris or behind a cut-off line: a valid From_ line
  that does not start a line, directly after debris or after a non-blank
  byte other than ">" (quoting), and followed by a header line, starts a
  message.
- A truncated message (last line cut off, header never ended, or fewer body
  bytes than its Content-Length): kept, with its last line and header ended.
- Broken UW metadata (mbox-compat.md §5-7): an unreadable X-IMAP/X-IMAPbase,
  a damaged pseudo-message, base headers after message 1, wrongly-cased
  metadata names, X-UIDs that repeat or go backwards. UIDs that still rise
  are kept; a message whose UID is not usable gets a new one above all
  others (and moves to the end, since UIDs rise through the file). A lost
  UIDVALIDITY is taken from the caller's hint (the index sidecar) if there
  is one, else a new one is made.

Text between messages that looks like mail stays with the message before it:
nothing tells it apart from that message's body (UW reads it the same way).
"""

import re
import time

from mailstore import mboxformat as fmt

MAX_UID = 0xFFFFFFFF
MAX_KEYWORDS = 30
MAX_KEYWORD_LENGTH = 50
# Control bytes that mail text does not contain: C0 except TAB, LF, FF, CR,
# SO/SI and ESC (ISO-2022 text uses those three), and DEL.
_DEBRIS_BYTES = re.compile(rb"[\x00-\x08\x0b\x10-\x1a\x1c-\x1f\x7f]")
_HEADER_LINE = re.compile(rb"[!-9;-~]+:")
_KEYWORD = re.compile(r"[!#$&'+-.0-9<-Z^-z|~]+\Z")
_CONTENT_LENGTH = re.compile(rb"^Content-Length:[ \t]*(\d{1,12})[ \t\r]*$", re.M | re.I)
_PSEUDO_SENDERS = (b"From MAILER-DAEMON ", b"From MAILER_DAEMON ")


class Piece:
    """One message as found: its bytes in the file and what its metadata said."""

    __slots__ = ("number", "start", "stop", "nuls", "meta", "uid", "flags", "keywords")

    def __init__(self, number, start, stop, nuls):
        self.number, self.start, self.stop, self.nuls = number, start, stop, nuls
        self.meta = None
        self.uid = 0
        self.flags = 0
        self.keywords = ()


class Examination:
    """What examine() found and what the repaired file will hold."""

    def __init__(self):
        self.findings = []
        self.rescued = []
        self.pieces = []
        self.pseudo = False
        self.uidvalidity = 0
        self.last_uid = 0
        self.keywords = []
        self.kept_uids = 0
        self.new_uids = 0

    @property
    def damaged(self):
        return bool(self.findings)

    def note(self, text):
        self.findings.append(text)


class NoMessages(Exception):
    """Not a single From_ line anywhere: not an mbox file, nothing to repair."""


def examine(buf, hint=None, now=None):
    """Examine an mbox buffer; `hint` is (uidvalidity, last_uid, keywords) from an index, or None."""
    exam = Examination()
    pieces = _split(buf, exam)
    if not pieces:
        return exam
    _read_metadata(buf, pieces)
    base = _take_base(buf, pieces, exam)
    _settle_uids(pieces, base, hint, exam, int(time.time() if now is None else now))
    return exam


# -- finding the messages -------------------------------------------------------

def _split(buf, exam):
    """The messages' spans, with debris cut off and noted in exam.rescued."""
    n = len(buf)
    pos = fmt.skip_leading_whitespace(buf)
    if pos == n:
        return []
    first = pos if fmt.from_line_at(buf, pos) else _next_start(buf, pos, n)
    if first == n:
        raise NoMessages("no From_ line found: not an mbox file")
    if first > pos:
        _rescue(buf, exam, pos, first, "%d bytes before the first message are not mail"
                % (first - pos))
    pieces, start = [], first
    while start < n:
        piece, start = _piece(buf, start, len(pieces) + 1, exam)
        pieces.append(piece)
    return pieces


def _next_start(buf, pos, limit):
    """The next From_ line after pos: at a line start, or hidden behind debris or a cut-off line."""
    standard = fmt.next_boundary(buf, pos)
    limit = min(limit, standard)
    found = buf.find(b"From ", pos, limit)
    while found >= 0:
        if found > 0 and buf[found - 1:found] != b"\n" and _hidden_start(buf, found):
            return found
        found = buf.find(b"From ", found + 1, limit)
    return standard


def _hidden_start(buf, pos):
    """A From_ line glued to what precedes it, followed by a header line."""
    before = buf[pos - 1]
    if before in b" \t>\r":
        return False
    if not fmt.from_line_at(buf, pos):
        return False
    return _HEADER_LINE.match(buf, fmt.line_end(buf, pos)) is not None


def _piece(buf, start, number, exam):
    """The message at start: (Piece, where the next one starts)."""
    n = len(buf)
    header = fmt.line_end(buf, start)
    limit = _next_start(buf, header, n)
    hend = fmt.header_end(buf, header, limit)
    body = min(fmt.line_end(buf, hend), limit) if hend < limit else limit
    exact = fmt.content_length_end(buf, buf[header:hend], body)
    if exact is not None and exact >= body:
        following = exact + 1 if buf[exact:exact + 1] == b"\n" else exact
        return Piece(number, start, exact, 0), min(following, n)
    stop = _debris_start(buf, header, limit)
    if stop < limit:
        _rescue(buf, exam, stop, limit, "message %d: %d bytes of debris after it"
                % (number, limit - stop))
    nuls = bytes(buf[start:stop]).count(b"\0") if buf.find(b"\0", start, stop) >= 0 else 0
    if nuls:
        exam.note("message %d: %d NUL bytes inside it (dropped)" % (number, nuls))
    _note_truncation(buf, Piece(number, start, stop, nuls), header, exam)
    return Piece(number, start, stop, nuls), limit


def _debris_start(buf, low, limit):
    """Where trailing debris begins: the first debris line followed by only debris or blank lines."""
    cut = stop = limit
    while stop > low:
        line_start = max(buf.rfind(b"\n", low, stop - 1) + 1, low)
        line = buf[line_start:stop]
        if _DEBRIS_BYTES.search(line):
            cut = line_start
        elif line.strip(b"\r\n"):
            break
        stop = line_start
    return cut


def _rescue(buf, exam, start, end, text):
    """Move bytes out of the mailbox; only NULs and white space are dropped without a copy."""
    if buf[start:end].strip(b"\0 \t\r\n"):
        exam.rescued.append((start, end))
    exam.note(text)


def _note_truncation(buf, piece, header, exam):
    """Note a message that ends inside its header, mid-line, or short of its Content-Length."""
    stop = piece.stop
    hend = fmt.header_end(buf, header, stop)
    if stop > header and buf[stop - 1:stop] != b"\n":
        exam.note("message %d is truncated: its last line is cut off (kept, line ended)"
                  % piece.number)
    elif hend >= stop and stop > header:
        exam.note("message %d is truncated inside its header (kept, header ended)" % piece.number)
    else:
        match = _CONTENT_LENGTH.search(bytes(buf[header:hend]))
        body = fmt.line_end(buf, hend)
        if match and stop - body < int(match.group(1)):
            exam.note("message %d is truncated: %d of its %s body bytes are there (kept)"
                      % (piece.number, max(stop - body, 0), match.group(1).decode()))


# -- the metadata ---------------------------------------------------------------

def piece_bytes(buf, piece):
    """The message's bytes as they will be kept (NUL bytes dropped)."""
    data = bytes(buf[piece.start:piece.stop])
    return data.replace(b"\0", b"") if piece.nuls else data


def _read_metadata(buf, pieces):
    for piece in pieces:
        data = piece_bytes(buf, piece)
        message, _ = fmt.scan_message(data, 0)
        piece.meta = fmt.read_meta(data, message)


def _take_base(buf, pieces, exam):
    """(uidvalidity, last_uid, keywords) from message 1, or None; pop the pseudo-message."""
    first = pieces[0]
    for piece in pieces[1:]:
        if piece.meta.imap is not None or piece.meta.imapbase is not None:
            exam.note("message %d carries X-IMAP/X-IMAPbase, which only message 1 may (dropped)"
                      % piece.number)
    for piece in pieces:
        if piece.meta.bogus:
            exam.note("message %d: wrongly-cased metadata header (dropped)" % piece.number)
    if first.meta.imap is not None or _looks_like_pseudo(buf, first):
        pieces.pop(0)
        exam.pseudo = True
        base = fmt.parse_base(first.meta.imap) if first.meta.imap is not None else None
        if base is None:
            exam.note("the folder-data pseudo-message is damaged: its X-IMAP is unreadable")
            return "broken"
        return base
    if first.meta.imapbase is not None:
        base = fmt.parse_base(first.meta.imapbase)
        if base is None:
            exam.note("message 1: its X-IMAPbase (UIDVALIDITY, last UID) is unreadable")
            return "broken"
        return base
    if first.meta.uid is not None:
        exam.note("message 1 has an X-UID but no X-IMAPbase: the UIDVALIDITY is lost")
        return "broken"
    return None


def _looks_like_pseudo(buf, piece):
    head = bytes(buf[piece.start:min(piece.stop, piece.start + 1024)])
    return head.startswith(_PSEUDO_SENDERS) and fmt.PSEUDO_SUBJECT in head


def _stored_uid(value):
    if value is None or not value.isdigit():
        return 0
    return int(value)


def _keywords_of(meta):
    """The keyword names in a message's X-Keywords that a mailbox could hold."""
    names = (k.decode("ascii", "replace") for k in (meta.keywords or ()))
    return [k for k in names if len(k) <= MAX_KEYWORD_LENGTH and _KEYWORD.match(k)]


def _collect_keywords(pieces, keywords):
    """A lost keyword list, rebuilt from what the messages still carry (UW's limit of 30)."""
    found = list(keywords)
    for piece in pieces:
        for name in _keywords_of(piece.meta):
            if name not in found and len(found) < MAX_KEYWORDS:
                found.append(name)
    return found


def _settle_uids(pieces, base, hint, exam, now):
    """Decide UIDVALIDITY, each message's UID, flags and keywords, and the order to write."""
    if base is None:  # never written by an IMAP server: UW numbers it afresh, as here
        exam.uidvalidity, exam.last_uid, exam.keywords = now, 0, []
        trusted = False
    elif base == "broken":
        if hint:
            exam.uidvalidity, exam.last_uid, exam.keywords = hint[0], hint[1], list(hint[2])
            exam.note("UIDVALIDITY %d is taken from the index sidecar" % hint[0])
        else:
            exam.uidvalidity, exam.last_uid, exam.keywords = now, 0, []
            exam.note("no trustworthy UIDVALIDITY is left: a new one makes clients fetch "
                      "the mailbox again")
        exam.keywords = _collect_keywords(pieces, exam.keywords)
        trusted = True
    else:
        exam.uidvalidity, exam.last_uid, exam.keywords = base[0], base[1], list(base[2])
        trusted = True
    _number(pieces, exam, trusted)


def _number(pieces, exam, trusted):
    """Keep the rising UIDs; give the others new ones, moving those that sat among kept ones."""
    allowed, previous = set(exam.keywords), 0
    for piece in pieces:
        piece.flags = fmt.flags_from_letters(piece.meta.status)
        piece.keywords = tuple(k for k in _keywords_of(piece.meta) if k in allowed)
        uid = _stored_uid(piece.meta.uid) if trusted else 0
        if uid > MAX_UID:
            exam.note("message %d: X-UID %d is too large for a UID" % (piece.number, uid))
            uid = 0
        elif uid and uid <= previous:
            exam.note("message %d: X-UID %d is not above the UID before it (%d)"
                      % (piece.number, uid, previous))
            uid = 0
        piece.uid = uid
        previous = uid or previous
    last_kept = max((i for i, p in enumerate(pieces) if p.uid), default=-1)
    moved = [p for p in pieces[:max(last_kept, 0)] if not p.uid]
    for piece in moved:
        exam.note("message %d has no usable UID: it gets a new one and moves to the end"
                  % piece.number)
    order = [p for p in pieces[:last_kept + 1] if p.uid] + pieces[last_kept + 1:] + moved
    exam.last_uid = max(exam.last_uid, previous)
    exam.kept_uids = sum(1 for p in order if p.uid)
    for piece in order:
        if not piece.uid:
            exam.last_uid += 1
            piece.uid = exam.last_uid
    exam.new_uids = len(order) - exam.kept_uids
    exam.pieces = order


# -- the repaired file ----------------------------------------------------------

def render(buf, exam, hostname, now=None):
    """Yield the repaired file: pseudo-message if it had one, then every message in order."""
    if exam.pseudo or not exam.pieces:
        yield fmt.pseudo_message(exam.uidvalidity, exam.last_uid, exam.keywords, hostname, now)
    base = None if exam.pseudo else fmt.base_line(exam.uidvalidity, exam.last_uid,
                                                  exam.keywords, padded=True)
    for piece in exam.pieces:
        yield render_message(piece_bytes(buf, piece), piece, base)
        base = None


def render_message(data, piece, base=None):
    """One message: its From_ line, visible header, UW's metadata block, body, separator."""
    message, _ = fmt.scan_message(data, 0)
    message.uid, message.flags = piece.uid, piece.flags
    from_line = data[:message.header]
    if not from_line.endswith(b"\n"):
        from_line += b"\n"
    body = data[message.body:message.end]
    if body and not body.endswith(b"\n"):
        body += b"\n"
    return (from_line + visible_header(data, message)
            + fmt.status_block(message, piece.keywords, base) + b"\n" + body + b"\n")


def visible_header(data, message):
    """The header without metadata lines and without the empty line that ends it."""
    parts, pos = [], message.header
    for start, end in message.hidden:
        parts.append(data[pos:start])
        pos = end
    parts.append(data[pos:message.body])
    text = b"".join(parts)
    if text in (b"\n", b"\r\n"):
        return b""
    if text.endswith(b"\n\r\n"):
        return text[:-2]
    if text.endswith(b"\n\n"):
        return text[:-1]
    return text if not text or text.endswith(b"\n") else text + b"\n"
