"""A per-mailbox cache of values computed from message text (ENVELOPE, BODYSTRUCTURE).

A message's text never changes under its UID (RFC 3501 §2.3.1.1), so a value
computed once can be kept for as long as the UIDVALIDITY is the same. The
cache is a file in the user's index directory; anything wrong with it
(missing, damaged, another UIDVALIDITY) simply means an empty cache.

The file is read through mmap and each value unmarshalled when asked for:
100,000 messages' envelopes are about 50 MB on disk and would be 80 MB of
Python objects if loaded whole. Layout: a marshal header (format,
UIDVALIDITY, kind names, sorted keys, value offsets), then the marshalled
values back to back. A key is UID * _KINDS_MAX + the kind's number.
"""

import marshal
import mmap
from array import array

from mailstore import sidecarfile
from mailstore.mboxformat import PageRelease

FORMAT = 2
_KINDS_MAX = 16
# New values are written out (merged into the file) whenever this much has
# been computed, so a first FETCH of 100,000 envelopes does not hold them all.
SPILL_BYTES = 8 << 20


class FieldCache:
    """Values by (UID, kind); `save` writes them back only when something changed."""

    def __init__(self, path, uidvalidity):
        self.path, self.uidvalidity = path, uidvalidity
        self._map = None
        self._reopen()

    def _load(self):
        try:
            with open(self.path, "rb") as handle:
                version, uidvalidity, kinds, keys, offsets = marshal.load(handle)
                base = handle.tell()
                if version != FORMAT or uidvalidity != self.uidvalidity:
                    return
                mapped = mmap.mmap(handle.fileno(), 0, prot=mmap.PROT_READ)
        except (OSError, EOFError, ValueError, TypeError):
            return
        self.kinds, self._keys, self._offsets = list(kinds), _ints(keys), _ints(offsets)
        if len(self._offsets) != len(self._keys) + 1 or base + self._offsets[-1] > len(mapped):
            self.kinds, self._keys, self._offsets = [], array("q"), array("q", [0])
            mapped.close()
            return
        self._map, self._base, self._pages = mapped, base, PageRelease(mapped)

    def _key(self, uid, kind, add=False):
        if kind not in self.kinds:
            if not add or len(self.kinds) >= _KINDS_MAX:
                return None
            self.kinds.append(kind)
        return uid * _KINDS_MAX + self.kinds.index(kind)

    def get(self, uid, kind, compute):
        """The cached value, or compute() stored for next time."""
        key = self._key(uid, kind, add=True)
        if key is None:
            return compute()
        value = None
        if key in self._new:
            value = marshal.loads(self._new[key])
        elif uid not in self._forgotten:
            value = self._stored(key)
        if value is None:
            value = compute()
            data = self._new[key] = marshal.dumps(value)  # kept small until saved
            self.added = True
            self._new_bytes += len(data)
            if self._new_bytes >= SPILL_BYTES:
                self.save()
        return value

    def _stored(self, key):
        position = _find(self._keys, key)
        if position is None:
            return None
        start, end = self._offsets[position], self._offsets[position + 1]
        self._pages.consumed(end - start)
        try:
            return marshal.loads(self._map[self._base + start:self._base + end])
        except (EOFError, ValueError, TypeError):
            return None

    def keys(self):
        """Every (UID, kind) that has a value."""
        stored = (key for key in self._keys if key // _KINDS_MAX not in self._forgotten)
        for key in sorted(set(stored) | set(self._new)):
            yield key // _KINDS_MAX, self.kinds[key % _KINDS_MAX]

    def keep_only(self, present):
        """Forget every UID not in the set present (expunged since the values were computed)."""
        gone = {key // _KINDS_MAX for key in self._keys if key // _KINDS_MAX not in present}
        gone.update(key // _KINDS_MAX for key in self._new if key // _KINDS_MAX not in present)
        self.forget(gone - self._forgotten)

    def forget(self, uids):
        """Drop the values of expunged messages."""
        gone = set(uids)
        if not gone:
            return
        self._forgotten |= gone
        for key in [key for key in self._new if key // _KINDS_MAX in gone]:
            del self._new[key]
        self.added = True

    def save(self):
        if not self.added:
            return
        if not sidecarfile.write_replacing(self.path, self._write):
            self._new_bytes = 0  # try again only after as much more
            return
        self._reopen()

    def _reopen(self):
        """After a save: read the file just written, as a fresh cache would."""
        if self._map is not None:
            self._map.close()
        self.kinds, self._keys, self._offsets = [], array("q"), array("q", [0])
        self._map, self._base, self._pages = None, 0, None
        self._new, self._forgotten, self._new_bytes = {}, set(), 0
        self.added = False
        self._load()

    def _write(self, handle):
        """Old values copied as stored bytes, new ones as marshalled: no value is rebuilt."""
        entries = sorted([(key, i) for i, key in enumerate(self._keys)
                          if key not in self._new and key // _KINDS_MAX not in self._forgotten]
                         + [(key, None) for key in self._new])
        keys, offsets, offset = array("q"), array("q", [0]), 0
        for key, position in entries:
            keys.append(key)
            offset += len(self._value_bytes(key, position))
            offsets.append(offset)
        marshal.dump((FORMAT, self.uidvalidity, self.kinds, keys.tobytes(),
                      offsets.tobytes()), handle)
        for key, position in entries:
            handle.write(self._value_bytes(key, position))

    def _value_bytes(self, key, position):
        return self._new[key] if position is None else self._raw(position)

    def _raw(self, position):
        start, end = self._offsets[position], self._offsets[position + 1]
        self._pages.consumed(end - start)
        return self._map[self._base + start:self._base + end]


def _ints(data):
    values = array("q")
    values.frombytes(data)
    return values


def _find(keys, key):
    """The position of key in the sorted array keys, or None."""
    low, high = 0, len(keys)
    while low < high:
        middle = (low + high) // 2
        if keys[middle] < key:
            low = middle + 1
        else:
            high = middle
    return low if low < len(keys) and keys[low] == key else None
