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
import zlib
from array import array

from mailstore import mboxformat as fmt
from mailstore import sidecarfile

FORMAT = 2
# Below this many messages a scan is as cheap as loading an index.
MIN_MESSAGES = 200


class Index:
    """What an index file held, checked against the open file by `usable`."""

    __slots__ = ("stamp", "uidvalidity", "last_uid", "keywords", "pseudo", "messages", "layout")

    def __init__(self, stamp, uidvalidity, last_uid, keywords, pseudo, messages, layout):
        self.stamp, self.uidvalidity, self.last_uid = stamp, uidvalidity, last_uid
        self.keywords, self.pseudo, self.messages, self.layout = keywords, pseudo, messages, layout

    @property
    def indexed_size(self):
        return self.stamp[1]


def fingerprint(buf, message):
    """A hash of the bytes an in-place change could touch: From_ line and header."""
    return zlib.crc32(buf[message.start:message.body])


# Per-message integer columns, stored as arrays so loading them is one copy each.
_COLUMNS = ("start", "header", "body", "end", "uid", "flags", "size")


def _pack_messages(buf, messages):
    """Columns of the messages' integers, their hidden spans flattened, their keywords."""
    columns = [array("q", (getattr(m, name) for m in messages)).tobytes() for name in _COLUMNS]
    checks = array("q", (fingerprint(buf, m) for m in messages)).tobytes()
    counts = array("q", (len(m.hidden) for m in messages)).tobytes()
    spans = array("q", (offset for m in messages for span in m.hidden for offset in span)).tobytes()
    keywords = {i: m.keywords for i, m in enumerate(messages) if m.keywords}
    return columns, checks, counts, spans, keywords


def _unpack_messages(packed):
    """[(Message, fingerprint)] from _pack_messages' output."""
    columns, checks, counts, spans, keywords = packed
    starts, headers, bodies, ends, uids, flags, sizes = (_ints(c) for c in columns)
    spans, entries, position = _ints(spans), [], 0
    for i, (start, header, body, end, count) in enumerate(
            zip(starts, headers, bodies, ends, _ints(counts))):
        flat = spans[position:position + 2 * count]
        position += 2 * count
        message = fmt.Message(start, header, body, end,
                              tuple(zip(flat[0::2], flat[1::2])))
        message.uid, message.flags, message.size = uids[i], flags[i], sizes[i]
        message.keywords = tuple(keywords.get(i, ()))
        entries.append(message)
    return list(zip(entries, _ints(checks)))


def _ints(data):
    values = array("q")
    values.frombytes(data)
    return values


def save(path, mailbox):
    """Write the index for an open, fully written mailbox (atomically: temp file + rename)."""
    buf = mailbox.map
    data = (FORMAT, mailbox.identity, mailbox.stamp, mailbox.uidvalidity, mailbox.last_uid,
            list(mailbox.keywords),
            _pack_messages(buf, [mailbox.pseudo] if mailbox.pseudo else []),
            _pack_messages(buf, mailbox.messages), mailbox.layout)
    sidecarfile.write_replacing(path, marshal.dumps(data))


def load(path, identity):
    """The Index stored at path for this file identity, or None (missing, foreign, damaged)."""
    try:
        with open(path, "rb") as handle:
            data = marshal.loads(handle.read())
        version, stored_identity, stamp, uidvalidity, last_uid, keywords, pseudo, messages, \
            layout = data
    except (OSError, EOFError, ValueError, TypeError):
        return None
    if version != FORMAT or tuple(stored_identity) != tuple(identity):
        return None
    try:
        pseudo = _unpack_messages(pseudo)
        return Index(tuple(stamp), uidvalidity, last_uid, list(keywords),
                     pseudo[0] if pseudo else None, _unpack_messages(messages), layout)
    except (TypeError, ValueError, IndexError):
        return None


def usable(index, buf, stamp):
    """True when the indexed messages are exactly what the file holds up to the indexed size."""
    if stamp[0] != index.stamp[0] or len(buf) < index.indexed_size:
        return False
    if stamp == index.stamp:
        return True
    entries = ([index.pseudo] if index.pseudo else []) + index.messages
    return all(message.body <= len(buf) and fingerprint(buf, message) == check
               for message, check in entries)


def remove(path):
    _remove(path)


def _remove(path):
    try:
        os.unlink(path)
    except OSError:
        pass
