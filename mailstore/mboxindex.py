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
from array import array

from mailstore import mboxformat as fmt
from mailstore import sidecarfile

FORMAT = 5
# Below this many messages a scan is as cheap as loading an index.
MIN_MESSAGES = 200
# Messages whose packed records are written or read at a time.
_PIECE = 8192


class Index:
    """What an index file held, checked against the open file by `usable`.

    `pseudo` is UW's pseudo-message or None; each message carries in `check`
    the fingerprint its From_ line and header had when it was indexed.
    """

    __slots__ = ("stamp", "uidvalidity", "last_uid", "keywords", "pseudo", "messages",
                 "layout", "modseq_mark")

    def __init__(self, stamp, uidvalidity, last_uid, keywords, pseudo, messages, layout,
                 modseq_mark=None):
        self.stamp, self.uidvalidity, self.last_uid = stamp, uidvalidity, last_uid
        self.keywords, self.pseudo, self.messages, self.layout = keywords, pseudo, messages, layout
        self.modseq_mark = modseq_mark

    @property
    def indexed_size(self):
        return self.stamp[1]


def _check_of(buf, message):
    """The message's fingerprint: kept from its last read, computed if unknown."""
    return message.check if message.check is not None else fmt.fingerprint(buf, message)


def _write_group(handle, buf, messages):
    """One group (the pseudo-message, or the messages): a marshal record of its columns,
    then the raw bytes of its packed records, written and read back a piece at a time
    (all of them at once would be 14 MB more at 100,000 messages)."""
    lengths = fmt.packed_record_lengths(messages)
    columns = (len(messages), lengths.tobytes(),
               array("q", [m.uid for m in messages]).tobytes(),
               array("q", [m.flags for m in messages]).tobytes(),
               array("q", [_check_of(buf, m) for m in messages]).tobytes(),
               {i: list(m.keywords) for i, m in enumerate(messages) if m.keywords},
               sum(lengths))
    marshal.dump(columns, handle)
    for first in range(0, len(messages), _PIECE):
        handle.write(fmt.packed_records(messages[first:first + _PIECE]))


def _read_group(handle):
    """[Message] (with their fingerprints in `check`) as _write_group wrote them."""
    count, lengths, uids, flags, checks, keywords, size = marshal.load(handle)
    lengths, uids, flags, checks = _ints(lengths, "i"), _ints(uids), _ints(flags), _ints(checks)
    if not len(lengths) == len(uids) == len(flags) == len(checks) == count \
            or sum(lengths) != size:
        raise ValueError("index group is damaged")
    messages = []
    for first in range(0, count, _PIECE):
        part = slice(first, first + _PIECE)
        records = handle.read(sum(lengths[part]))
        messages += fmt.from_packed_records(lengths[part], records, uids[part], flags[part],
                                            checks[part])
    for i, words in keywords.items():
        messages[i].keywords = tuple(words)
    return messages


def _ints(data, kind="q"):
    values = array(kind)
    values.frombytes(data)
    return values


def save(path, mailbox, modseq_mark=None):
    """Write the index for an open, fully written mailbox (atomically: temp file + rename).

    The file is a marshal header, then the pseudo-message's group and the
    messages' group. `modseq_mark` says where the modseq file stood when it
    last matched these messages (mailstore.modseq.ModseqLog.mark).
    """
    buf = mailbox.map
    header = (FORMAT, mailbox.identity, mailbox.stamp, mailbox.uidvalidity, mailbox.last_uid,
              list(mailbox.keywords), mailbox.layout, modseq_mark)

    def write(handle):
        marshal.dump(header, handle)
        _write_group(handle, buf, [mailbox.pseudo] if mailbox.pseudo else [])
        _write_group(handle, buf, mailbox.messages)

    sidecarfile.write_replacing(path, write)


def load(path, identity):
    """The Index stored at path for this file identity, or None (missing, foreign, damaged)."""
    try:
        with open(path, "rb") as handle:
            header = marshal.load(handle)
            if header[0] != FORMAT or tuple(header[1]) != tuple(identity):
                return None
            pseudo = _read_group(handle)
            messages = _read_group(handle)
        _, _, stamp, uidvalidity, last_uid, keywords, layout, modseq_mark = header
        if len(pseudo) > 1 or not isinstance(layout, int):
            return None
        return Index(tuple(stamp), uidvalidity, last_uid, list(keywords),
                     pseudo[0] if pseudo else None, messages, layout,
                     tuple(modseq_mark) if modseq_mark else None)
    except (OSError, EOFError, ValueError, TypeError, IndexError, AttributeError, struct.error):
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
    return not fmt.changed_messages(buf, entries)


def remove(path):
    _remove(path)


def _remove(path):
    try:
        os.unlink(path)
    except OSError:
        pass
