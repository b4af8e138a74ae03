"""A per-mailbox cache of values computed from message text (ENVELOPE, BODYSTRUCTURE).

A message's text never changes under its UID (RFC 3501 §2.3.1.1), so a value
computed once can be kept for as long as the UIDVALIDITY is the same. The
cache is a file in the user's index directory; anything wrong with it
(missing, damaged, another UIDVALIDITY) simply means an empty cache.

The file is read through mmap and each value unmarshalled when asked for:
100,000 messages' envelopes are about 50 MB on disk and would be 80 MB of
Python objects if loaded whole. Layout: a marshal header (format,
UIDVALIDITY, kind names, number of keys), the sorted keys and the value
offsets as raw 64-bit arrays, then the marshalled values back to back.
A key is UID * _KINDS_MAX + the kind's number.
"""

import bisect
import heapq
import marshal
import mmap
from array import array

from mailstore import sidecarfile
from mailstore.mboxformat import PageRelease

FORMAT = 3
_KINDS_MAX = 16
# New values are written out (merged into the file) whenever this much has
# been computed, so a first FETCH of 100,000 envelopes does not hold them all.
SPILL_BYTES = 4 << 20
# Stored values are copied to a rewritten file in slices of at most this size.
_COPY_BYTES = 1 << 20


class FieldCache:
    """Values by (UID, kind); `save` writes them back only when something changed."""

    def __init__(self, path, uidvalidity):
        self.path, self.uidvalidity = path, uidvalidity
        self._map = None
        self._reopen()

    def _load(self):
        keys, offsets = array("q"), array("q")
        try:
            with open(self.path, "rb") as handle:
                version, uidvalidity, kinds, count = marshal.load(handle)
                if version != FORMAT or uidvalidity != self.uidvalidity:
                    return
                keys.fromfile(handle, count)
                offsets.fromfile(handle, count + 1)
                base = handle.tell()
                mapped = mmap.mmap(handle.fileno(), 0, prot=mmap.PROT_READ)
        except (OSError, EOFError, ValueError, TypeError, OverflowError, MemoryError):
            return
        self.kinds, self._keys, self._offsets = list(kinds), keys, offsets
        if offsets[0] != 0 or base + self._offsets[-1] > len(mapped):
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

    def _position(self, key):
        """Where key's value is in the file, or None."""
        position = bisect.bisect_left(self._keys, key)
        return position if position < len(self._keys) and self._keys[position] == key else None

    def _stored(self, key):
        position = self._position(key)
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
        """Forget every UID not in present (expunged since the values were computed).

        present is ascending, as a mailbox's messages are: one walk beside the
        sorted keys, where a set of 100,000 UIDs would take 4 MB at close.
        """
        present = iter(present)
        current = next(present, None)
        gone = set()
        for uid in heapq.merge(_uids(self._keys), sorted({key // _KINDS_MAX for key in self._new})):
            while current is not None and current < uid:
                current = next(present, None)
            if current != uid:
                gone.add(uid)
        self.forget(gone)

    def forget(self, uids):
        """Drop the values of expunged messages (also those computed after an earlier forget)."""
        gone = set(uids)
        if not gone:
            return
        dropped = [key for key in self._new if key // _KINDS_MAX in gone]
        for key in dropped:
            del self._new[key]
        if dropped or not gone <= self._forgotten:
            self._forgotten |= gone
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
        self._new, self._forgotten, self._new_bytes = _NewValues(), set(), 0
        self.added = False
        self._load()

    def _write(self, handle):
        """Old values copied as stored bytes, new ones as marshalled: no value is rebuilt.

        The file is planned as runs of stored values and lists of new keys, so a
        spill of a first FETCH (new keys after all stored ones) copies the old
        values in a few large slices instead of one by one, and holds no
        per-value Python objects beyond the two arrays (16 bytes a value).
        """
        segments = self._segments()
        keys, offsets = array("q"), array("q", [0])
        for segment in segments:
            if isinstance(segment, list):
                for key in segment:
                    keys.append(key)
                    offsets.append(offsets[-1] + len(self._new[key]))
            else:
                first, stop = segment
                keys.extend(self._keys[first:stop])
                shift = offsets[-1] - self._offsets[first]
                offsets.extend(map(shift.__add__, self._offsets[first + 1:stop + 1]))
        marshal.dump((FORMAT, self.uidvalidity, self.kinds, len(keys)), handle)
        keys.tofile(handle)  # as they are: a marshalled copy took 3 MB more at 100,000
        offsets.tofile(handle)
        del keys, offsets
        for segment in segments:
            if isinstance(segment, list):
                for key in segment:
                    handle.write(self._new[key])
            else:
                self._copy_stored(handle, *segment)

    def _segments(self):
        """The new file's entries in key order: (first, stop) runs of stored positions
        to keep, and lists of new keys."""
        dropped = self._dropped_positions()
        segments, position = [], 0
        for key in sorted(self._new):
            at = bisect.bisect_left(self._keys, key)
            if at > position or not segments:
                segments.extend(_runs(position, at, dropped))
                segments.append([])
                position = at
            segments[-1].append(key)
        segments.extend(_runs(position, len(self._keys), dropped))
        return segments

    def _dropped_positions(self):
        """Stored positions not to copy: values replaced by new ones, and forgotten UIDs'."""
        dropped = [position for position in map(self._position, self._new) if position is not None]
        for uid in self._forgotten:
            low = bisect.bisect_left(self._keys, uid * _KINDS_MAX)
            dropped.extend(range(low, bisect.bisect_left(self._keys, (uid + 1) * _KINDS_MAX, low)))
        return sorted(dropped)

    def _copy_stored(self, handle, first, stop):
        """Write the stored values at positions first..stop-1, in bounded slices."""
        start, end = self._base + self._offsets[first], self._base + self._offsets[stop]
        for position in range(start, end, _COPY_BYTES):
            piece = min(end, position + _COPY_BYTES) - position
            self._pages.consumed(piece)
            handle.write(self._map[position:position + piece])


class _NewValues:
    """The values computed since the last save, key -> marshalled bytes, with the
    bytes in one buffer.  As 17,000 bytes objects between two saves of a first
    FETCH of 100,000 envelopes they left the allocator's pools full of holes
    (peak RssAnon 69 MB against 60 with a quarter of the buffer); one buffer is
    one block, returned whole when the save drops it."""

    def __init__(self):
        self._index = {}  # key -> its number in _bounds
        self._bounds = array("q")  # start, end of each value in _data
        self._data = bytearray()

    def __setitem__(self, key, value):
        self._index[key] = len(self._bounds) // 2
        self._bounds.extend((len(self._data), len(self._data) + len(value)))
        self._data += value

    def __getitem__(self, key):
        number = self._index[key]
        return bytes(self._data[self._bounds[2 * number]:self._bounds[2 * number + 1]])

    def __delitem__(self, key):
        del self._index[key]  # its bytes stay in the buffer until the save

    def __contains__(self, key):
        return key in self._index

    def __iter__(self):
        return iter(self._index)

    def __len__(self):
        return len(self._index)


def _runs(first, stop, dropped):
    """(first, stop) runs of positions from first to stop that are not in dropped (sorted)."""
    runs = []
    for position in dropped[bisect.bisect_left(dropped, first):bisect.bisect_left(dropped, stop)]:
        if position > first:
            runs.append((first, position))
        first = position + 1
    if stop > first:
        runs.append((first, stop))
    return runs


def _uids(keys):
    """The UID of each key, in order."""
    return (key // _KINDS_MAX for key in keys)
