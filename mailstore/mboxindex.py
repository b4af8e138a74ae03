"""The mbox index sidecar: where each message is and what its metadata said, kept per mailbox.

Reopening a large mailbox from this costs O(new mail) instead of a scan of
the whole file. The index lives in the user's index directory, never in the
spool, and is only a cache: it is checked against the file on every open and
a mismatch of any kind means a full parse (reference/mbox-compat.md; the
file is always the truth).

Checks, cheapest first: the same inode, a file no shorter than indexed; then
either the file's size, mtime and ctime are exactly those recorded when the
index was written (nobody touched it since), or every indexed message's From_
line and header still hash the same (zlib.crc32 over those bytes only), in
which case only mail appended after the indexed end is parsed.
"""

import marshal
import os
import struct
import zlib
from array import array

from mailstore import mboxformat as fmt
from mailstore import sidecarfile

FORMAT = 3
# Below this many messages a scan is as cheap as loading an index.
MIN_MESSAGES = 200


class Index:
    """What an index file held, checked against the open file by `usable`.

    `pseudo` is UW's pseudo-message or None; `checks` holds the fingerprint
    of the pseudo-message (first, if any) and of every message, in order.
    """

    __slots__ = ("stamp", "uidvalidity", "last_uid", "keywords", "pseudo", "messages",
                 "checks", "layout")

    def __init__(self, stamp, uidvalidity, last_uid, keywords, pseudo, messages, checks, layout):
        self.stamp, self.uidvalidity, self.last_uid = stamp, uidvalidity, last_uid
        self.keywords, self.pseudo, self.messages, self.layout = keywords, pseudo, messages, layout
        self.checks = checks

    @property
    def indexed_size(self):
        return self.stamp[1]


def fingerprint(buf, message):
    """A hash of the bytes an in-place change could touch: From_ line and header."""
    return zlib.crc32(buf[message.start:message.body])


def _fingerprints(buf, messages):
    """fingerprint() of each message, its pages of the map let go on the way."""
    pages = fmt.PageRelease(buf)
    for message in messages:
        pages.consumed(message.end - message.start)
        yield fingerprint(buf, message)


# Per-message integer columns, stored as arrays so loading them is one copy each.
_COLUMNS = ("start", "header", "body", "end", "uid", "flags", "size")
# A hidden span is two 8-byte offsets, packed as the Message keeps them.
_SPAN_BYTES = 16


def _pack_messages(buf, messages):
    """Yield the parts of the messages' record, one at a time so each is written and freed:
    columns of their integers, their fingerprints, hidden-span counts, the spans, keywords."""
    yield [array("q", (getattr(m, name) for m in messages)).tobytes() for name in _COLUMNS]
    yield array("q", _fingerprints(buf, messages)).tobytes()
    yield array("q", (len(m.packed_hidden) // _SPAN_BYTES for m in messages)).tobytes()
    # Grown in place: b"".join would first list 100,000 slices (32 MB at close).
    spans = bytearray()
    for message in messages:
        spans += message.packed_hidden
    yield spans
    del spans
    yield {i: m.keywords for i, m in enumerate(messages) if m.keywords}


_PARTS = 5


def _unpack_messages(packed):
    """([Message], their fingerprints) from _pack_messages' output."""
    columns, checks, counts, spans, keywords = packed
    starts, headers, bodies, ends, uids, flags, sizes = (_ints(c) for c in columns)
    entries, position = [], 0
    for i, (start, header, body, end, size, count) in enumerate(
            zip(starts, headers, bodies, ends, sizes, _ints(counts))):
        numbers = fmt.pack_numbers(start, header, body, end, size)
        message = fmt.Message.packed(numbers, spans[position:position + count * _SPAN_BYTES])
        position += count * _SPAN_BYTES
        message.uid, message.flags = uids[i], flags[i]
        if i in keywords:
            message.keywords = tuple(keywords[i])
        entries.append(message)
    return entries, _ints(checks)


def _ints(data):
    values = array("q")
    values.frombytes(data)
    return values


def save(path, mailbox):
    """Write the index for an open, fully written mailbox (atomically: temp file + rename).

    The file is a sequence of marshal records: the header, then the parts of
    the pseudo-message's and the messages' records.
    """
    buf = mailbox.map
    header = (FORMAT, mailbox.identity, mailbox.stamp, mailbox.uidvalidity, mailbox.last_uid,
              list(mailbox.keywords), mailbox.layout)

    def write(handle):
        marshal.dump(header, handle)
        for messages in ([mailbox.pseudo] if mailbox.pseudo else [], mailbox.messages):
            for part in _pack_messages(buf, messages):
                marshal.dump(part, handle)

    sidecarfile.write_replacing(path, write)


def load(path, identity):
    """The Index stored at path for this file identity, or None (missing, foreign, damaged)."""
    try:
        with open(path, "rb") as handle:
            header = marshal.load(handle)
            if header[0] != FORMAT or tuple(header[1]) != tuple(identity):
                return None
            pseudo = [marshal.load(handle) for _ in range(_PARTS)]
            messages = [marshal.load(handle) for _ in range(_PARTS)]
        _, _, stamp, uidvalidity, last_uid, keywords, layout = header
    except (OSError, EOFError, ValueError, TypeError, IndexError):
        return None
    try:
        pseudo, pseudo_checks = _unpack_messages(pseudo)
        messages, checks = _unpack_messages(messages)
        if len(pseudo) > 1 or len(checks) != len(messages):
            return None
        return Index(tuple(stamp), uidvalidity, last_uid, list(keywords),
                     pseudo[0] if pseudo else None, messages, pseudo_checks + checks, layout)
    except (TypeError, ValueError, IndexError, struct.error):
        return None


def usable(index, buf, stamp):
    """True when the indexed messages are exactly what the file holds up to the indexed size."""
    if stamp[0] != index.stamp[0] or len(buf) < index.indexed_size:
        return False
    if stamp == index.stamp:
        return True
    entries = ([index.pseudo] if index.pseudo else []) + index.messages
    if any(message.body > len(buf) for message in entries):
        return False
    return all(found == check for found, check in zip(_fingerprints(buf, entries), index.checks))


def remove(path):
    _remove(path)


def _remove(path):
    try:
        os.unlink(path)
    except OSError:
        pass
