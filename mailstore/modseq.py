"""Modification sequences (RFC 7162 CONDSTORE/QRESYNC) for one mailbox, shared on disk.

Every process serving a mailbox (and every session in it) must hand out the
same MODSEQ for the same change, so the state lives in one file per mailbox
in the user's index directory, read and written only under an fcntl lock on
that file:

    PYIMAPD-MODSEQ 1 <uidvalidity> <snapshot length>\\n
    <snapshot: marshal of highest, forgotten, per-UID columns, expunged UIDs>
    F <modseq> <uid> <flag bits> [keyword ...]\\n     the UID has these flags since modseq
    X <modseq> <uid>\\n                              the UID was expunged at modseq

Records are appended; when they outnumber the messages the file is compacted
(a new snapshot, written to a temporary file and renamed over the old one).

Nothing hooks the individual writes.  Instead a driver calls `sync` with its
current view of the mailbox whenever that view changed, while no one can
change the mailbox under it (mbox: under its read or write lock; Maildir:
the folder is scanned again under this file's lock).  `sync` compares the
view with the last recorded flags of each UID and records what differs under
one new modseq: our own STOREs, expunges and appends, and equally changes
made by an MTA or another IMAP server, noticed when pyimapd next looks.  A
process killed between its mailbox write and its record leaves a difference
that the next sync records, so the file cannot fall behind the mailbox.

A modseq is max(highest + 1, the clock in microseconds).  A lost or damaged
file is rebuilt with every message at a modseq above the clock (plus a
margin), so above anything handed out before: clients resynchronise fully,
which is correct, and never see a modseq go backwards.
"""

import bisect
import contextlib
import errno
import fcntl
import itertools
import marshal
import os
import time
from array import array

from mailstore import sidecarfile
from mailstore.mboxformat import OLD

MAGIC = b"PYIMAPD-MODSEQ"
VERSION = 1
# Compact when the records outnumber the live messages and exceed this.
COMPACT_MIN_RECORDS = 2000
# Expunged UIDs remembered for QRESYNC (RFC 7162 §3.2.5.1 lets the server
# report more UIDs than vanished); older ones are forgotten on compaction.
MAX_EXPUNGED = 20000
# A rebuilt file starts this many microseconds past the clock, above any
# modseq a burst of changes may have handed out just before the file was lost.
REBUILD_MARGIN = 1000000
# Records are written in pieces of this size (a kill -9 may land between them).
WRITE_CHUNK = 1 << 16
# A large change set is rendered and written this many records at a time.
WRITE_LINES = 4096
# Records newer than the snapshot's columns are folded into them when they
# outnumber this and a quarter of the messages (see ModseqState.fold).
FOLD_MIN = 8192


def clock_modseq():
    """The clock as a modseq: microseconds since the epoch (fits mod-sequence-value)."""
    return time.time_ns() // 1000


def flag_key(message):
    """What a modseq tracks of a message: its flags (\\Recent aside) and keywords."""
    return message.flags & ~OLD, tuple(message.keywords)


class ModseqState:
    """The modseqs of one mailbox in memory: per UID, and the expunged UIDs.

    What the snapshot held stays in its columns (sorted UIDs, their modseqs
    and flags), looked up by bisection: loading it for a 100,000-message
    mailbox is three array copies, where a dict took 17 MB and a tenth of a
    second. Records read or made since the snapshot go to `changed` and
    `removed` on top of it.
    """

    def __init__(self, highest, forgotten, columns=None, expunged=None):
        self.highest = highest
        # Expunges at or below this modseq may be forgotten: a client asking
        # about an older modseq is told every UID that is missing.
        self.forgotten = forgotten
        self.uids, self.modseqs, self.flags, self.keywords = columns or (
            array("q"), array("q"), array("q"), {})
        self.changed = {}        # uid -> (modseq, flags, keywords), newer than the columns
        self.removed = set()     # UIDs in the columns expunged since
        self.expunged = expunged if expunged is not None else {}  # uid -> modseq
        self.count = len(self.uids)   # UIDs with a record
        self.records = 0         # records since the snapshot

    def record(self, uid):
        """(modseq, flags, keywords) recorded for a UID still here, or None."""
        found = self.changed.get(uid)
        if found is not None:
            return found
        at = self._position(uid)
        if at is None or uid in self.removed:
            return None
        return self.modseqs[at], self.flags[at], self.keywords.get(at, ())

    def _position(self, uid):
        at = bisect.bisect_left(self.uids, uid)
        return at if at < len(self.uids) and self.uids[at] == uid else None

    def note_flags(self, modseq, uid, flags, keywords):
        if self.record(uid) is None:
            self.count += 1
        self.changed[uid] = (modseq, flags, keywords)
        self.removed.discard(uid)
        self.expunged.pop(uid, None)
        self.highest = max(self.highest, modseq)
        if len(self.changed) > max(FOLD_MIN, self.count >> 2):
            self.fold()

    def fold(self):
        """Take `changed` and `removed` into the columns.  A change to every message
        of 100,000 (a POP3 QUIT marking all seen) held as a dict of tuples took
        11 MB; as columns it takes 2.4.  A merge of the sorted columns with the
        sorted changed UIDs, so that no record is held for every message."""
        if not self.changed and not self.removed:
            return
        columns = array("q"), array("q"), array("q"), {}
        changed = sorted(self.changed)
        next_changed = 0
        for at, uid in enumerate(self.uids):
            while next_changed < len(changed) and changed[next_changed] <= uid:
                _add_record(columns, changed[next_changed], self.changed[changed[next_changed]])
                next_changed += 1
            if uid not in self.changed and uid not in self.removed:
                _add_record(columns, uid, (self.modseqs[at], self.flags[at],
                                           self.keywords.get(at, ())))
        for uid in changed[next_changed:]:
            _add_record(columns, uid, self.changed[uid])
        self.uids, self.modseqs, self.flags, self.keywords = columns
        self.changed, self.removed = {}, set()

    def note_expunge(self, modseq, uid):
        if self.record(uid) is not None:
            self.count -= 1
            self.changed.pop(uid, None)
            if self._position(uid) is not None:
                self.removed.add(uid)
            self.expunged[uid] = modseq
        elif uid not in self.expunged:
            self.expunged[uid] = modseq
        self.highest = max(self.highest, modseq)

    def known_uids(self):
        """Every UID with a record, ascending."""
        removed, changed = self.removed, self.changed
        kept = (uid for uid in self.uids if uid not in removed and uid not in changed)
        return sorted(itertools.chain(kept, changed))

    def differences(self, messages, candidates=None):
        """(messages whose flags differ from the record, UIDs recorded but gone).

        With `candidates` only those messages are compared and nothing is
        taken as gone: the caller knows nothing else changed.
        """
        record = self.record
        if candidates is not None:
            return [m for m in candidates if _differs(record(m.uid), m)], []
        changed = [m for m in messages if _differs(record(m.uid), m)]
        new = sum(1 for m in changed if record(m.uid) is None)
        if self.count + new == len(messages):
            return changed, []
        present = {m.uid for m in messages}
        return changed, [uid for uid in self.known_uids() if uid not in present]

    def forget_old_expunges(self):
        """Keep the newest MAX_EXPUNGED expunged UIDs; remember up to where we forgot."""
        if len(self.expunged) <= MAX_EXPUNGED:
            return
        ordered = sorted(self.expunged.items(), key=lambda item: item[1])
        cut = len(ordered) - MAX_EXPUNGED
        self.forgotten = max(self.forgotten, ordered[cut - 1][1])
        self.expunged = dict(ordered[cut:])


def _add_record(columns, uid, record):
    uids, modseqs, flags, keywords = columns
    if record[2]:
        keywords[len(uids)] = record[2]
    uids.append(uid)
    modseqs.append(record[0])
    flags.append(record[1])


def _differs(record, message):
    if record is None:
        return True
    flags, keywords = flag_key(message)
    return record[1] != flags or record[2] != keywords


class ModseqLog:
    """The shared modseq file of one mailbox, and this process's copy of its state.

    `available` is False when the file cannot be kept (the index directory
    cannot be written): the mailbox then has no persistent modseqs and IMAP
    answers NOMODSEQ (RFC 7162 §3.1.2.2).
    """

    def __init__(self, path, log=None):
        self.path = path
        self.log = log or (lambda priority, message: None)
        self.fd = None
        self.offset = 0
        self.uidvalidity = None
        self.state = None
        self.available = True
        self._depth = 0

    # -- what IMAP asks --------------------------------------------------

    @property
    def highest(self):
        """HIGHESTMODSEQ: the modseq of the last change, expunges included."""
        return self.state.highest if self.state else 1

    def of(self, uid):
        """The modseq of a message; one not recorded yet counts as changed now."""
        record = self.state.record(uid) if self.state else None
        return record[0] if record else self.highest

    def changed_after(self, uids, since):
        """The UIDs (of messages still here) whose modseq is above `since`."""
        if self.state is None:
            return set()
        records = ((uid, self.state.record(uid)) for uid in uids)
        return {uid for uid, record in records if record is not None and record[0] > since}

    def expunged_since(self, modseq):
        """(UIDs expunged after modseq, complete): not complete when older expunges
        were forgotten, so every missing UID may have to be reported (QRESYNC)."""
        if self.state is None:
            return set(), False
        gone = {uid for uid, at in self.state.expunged.items() if at > modseq}
        return gone, modseq >= self.state.forgotten

    def mark(self):
        """Where the file stands while this process's copy matches it: (inode, size),
        or None. The mbox index keeps it, so that a later open can tell that nobody
        recorded anything since (see `unchanged_since`)."""
        if self.fd is None or self.state is None or self.uidvalidity is None:
            return None
        try:
            st = os.fstat(self.fd)
        except OSError:
            return None
        return (st.st_ino, self.offset) if st.st_size == self.offset else None

    def unchanged_since(self, mark):
        """True when the file is still exactly as `mark` found it."""
        if mark is None or not self.available or self.path is None:
            return False
        try:
            st = os.stat(self.path, follow_symlinks=False)
        except OSError:
            return False
        return (st.st_ino, st.st_size) == tuple(mark)

    # -- keeping the file --------------------------------------------------

    def sync(self, uidvalidity, messages, candidates=None):
        """Record what differs between `messages` (the current view) and the file.

        The caller guarantees that nobody changes the mailbox while this runs
        (or calls it inside `locked()` after scanning again).
        """
        with self.locked() as ready:
            if ready:
                self.update(uidvalidity, messages, candidates)

    @contextlib.contextmanager
    def locked(self):
        """Hold the file's lock (re-entrant); yields False when the file cannot be kept."""
        if self._depth:
            self._depth += 1
            try:
                yield self.fd is not None
            finally:
                self._depth -= 1
            return
        if not self._lock():
            yield False
            return
        self._depth = 1
        try:
            yield True
        finally:
            self._depth = 0
            with contextlib.suppress(OSError):
                fcntl.lockf(self.fd, fcntl.LOCK_UN)

    def update(self, uidvalidity, messages, candidates=None):
        """Inside locked(): catch up with the file, then record our differences."""
        try:
            self._catch_up(uidvalidity, messages)
            changed, gone = self.state.differences(messages, candidates)
            if changed or gone:
                self._append(changed, gone)
            if self.state.records > max(COMPACT_MIN_RECORDS, self.state.count):
                self._compact()
        except OSError as error:
            self.log("warning", "cannot update modseq file %s: %s" % (self.path, error.strerror))
            # What this process holds may now differ from the file: read it all next time
            # (a rebuild, if it comes to that, still starts above the clock).
            self.uidvalidity = None

    def close(self):
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None

    def _lock(self):
        """Open and lock the file, following a compaction's rename; False if impossible."""
        if not self.available or self.path is None:
            return False
        for _ in range(10):
            try:
                if self.fd is None:
                    self.fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o600)
                fcntl.lockf(self.fd, fcntl.LOCK_EX)
                if _same_file(self.fd, self.path):
                    return True
            except OSError as error:
                self._give_up(error)
                return False
            # Compacted meanwhile: the name is a new file; start over from it.
            self.close()
            self.state = None
        self._give_up(OSError(errno.EAGAIN, "the file keeps being replaced"))
        return False

    def _give_up(self, error):
        self.log("warning", "no modseqs for %s: %s" % (self.path, error.strerror))
        self.available = False
        self.close()

    def _catch_up(self, uidvalidity, messages):
        """Read what others appended; load or rebuild the file when needed."""
        size = os.fstat(self.fd).st_size
        if self.state is not None and self.uidvalidity == uidvalidity and size >= self.offset:
            if size > self.offset:
                self._read_records(size)
            return
        if self._load(size) and self.uidvalidity == uidvalidity:
            return
        self._rebuild(uidvalidity, messages)

    def _read_records(self, size):
        data = os.pread(self.fd, size - self.offset, self.offset)
        end = data.rfind(b"\n") + 1
        for line in data[:end].split(b"\n")[:-1]:
            _apply_record(self.state, line)
        self.state.records += data.count(b"\n", 0, end)
        self.offset += end

    def _load(self, size):
        """Read the whole file; False when it is empty or damaged."""
        self.state = None
        if size == 0:
            return False
        data = os.pread(self.fd, size, 0)
        header_end = data.find(b"\n")
        try:
            magic, version, uidvalidity, length = data[:header_end].split(b" ")
            if magic != MAGIC or int(version) != VERSION:
                raise ValueError("not a modseq file")
            start = header_end + 1
            state = _unpack(marshal.loads(data[start:start + int(length)]))
            self.state, self.uidvalidity = state, int(uidvalidity)
        except (ValueError, TypeError, EOFError, IndexError):
            self.log("warning", "damaged modseq file %s, starting it again" % self.path)
            return False
        self.offset = start + int(length)
        self._read_records(size)
        return True

    def _rebuild(self, uidvalidity, messages):
        """A new file: every message at one modseq above anything handed out before."""
        floor = clock_modseq() + REBUILD_MARGIN
        if self.state is not None:
            floor = max(floor, self.state.highest + 1)
        columns = array("q"), array("q"), array("q"), {}
        for message in sorted(messages, key=lambda m: m.uid):
            flags, keywords = flag_key(message)
            _add_record(columns, message.uid, (floor, flags, keywords))
        self.state, self.uidvalidity = ModseqState(floor, floor, columns), uidvalidity
        self._write_snapshot(replace=os.fstat(self.fd).st_size > 0)

    def _compact(self):
        self.state.forget_old_expunges()
        self._write_snapshot(replace=True)

    def _write_snapshot(self, replace):
        """The header and snapshot as the whole file: renamed over it, or into a new one."""
        blob = marshal.dumps(_pack(self.state))
        data = b"%s %d %d %d\n" % (MAGIC, VERSION, self.uidvalidity, len(blob)) + blob
        if replace:
            if not sidecarfile.write_replacing(self.path, data):
                raise OSError(errno.EIO, "cannot replace the modseq file")
            # Others find the new file when they lock the name next time.
            old = self.fd
            self.fd = os.open(self.path, os.O_RDWR | os.O_NOFOLLOW)
            fcntl.lockf(self.fd, fcntl.LOCK_EX)
            os.close(old)
        else:
            os.ftruncate(self.fd, 0)
            os.pwrite(self.fd, data, 0)
        self.offset = len(data)
        self.state.records = 0

    def _append(self, changed, gone):
        """Append records for one change set under one new modseq."""
        size = os.fstat(self.fd).st_size
        if size > self.offset:
            # A writer killed mid-record left a piece of a line: drop it.
            os.ftruncate(self.fd, self.offset)
        modseq = max(self.state.highest + 1, clock_modseq())
        lines = []
        for message in changed:
            flags, keywords = flag_key(message)
            lines.append(_flag_record(modseq, message.uid, flags, keywords))
            self.state.note_flags(modseq, message.uid, flags, keywords)
            if len(lines) == WRITE_LINES:
                self._write_records(lines)
        for uid in gone:
            lines.append(b"X %d %d\n" % (modseq, uid))
            self.state.note_expunge(modseq, uid)
        self._write_records(lines)

    def _write_records(self, lines):
        """Append record lines at the end we know of, and empty `lines`."""
        data = b"".join(lines)
        for start in range(0, len(data), WRITE_CHUNK):
            os.pwrite(self.fd, data[start:start + WRITE_CHUNK], self.offset + start)
        self.offset += len(data)
        self.state.records += len(lines)
        lines.clear()


def refused(log, uidvalidity, messages, uids, since):
    """STORE UNCHANGEDSINCE (RFC 7162 §3.1.3): the UIDs to leave alone, checked
    against the file brought up to date; the caller holds the mailbox's write lock."""
    if since is None:
        return set()
    log.sync(uidvalidity, messages)
    return log.changed_after(uids, since)


def unavailable(path, log=None):
    """A ModseqLog for a mailbox whose modseqs cannot be kept (NOMODSEQ)."""
    modseqs = ModseqLog(path, log)
    modseqs.available = False
    return modseqs


def _same_file(fd, path):
    try:
        st = os.stat(path, follow_symlinks=False)
    except FileNotFoundError:
        return False
    own = os.fstat(fd)
    return (st.st_dev, st.st_ino) == (own.st_dev, own.st_ino)


def _flag_record(modseq, uid, flags, keywords):
    words = b"".join(b" " + k.encode("utf-8", "surrogateescape") for k in keywords)
    return b"F %d %d %d%s\n" % (modseq, uid, flags, words)


def _apply_record(state, line):
    """Apply one record line; a line that does not parse is skipped."""
    words = line.split(b" ")
    try:
        if words[0] == b"F" and len(words) >= 4:
            keywords = tuple(w.decode("utf-8", "surrogateescape") for w in words[4:] if w)
            state.note_flags(int(words[1]), int(words[2]), int(words[3]), keywords)
        elif words[0] == b"X" and len(words) == 3:
            state.note_expunge(int(words[1]), int(words[2]))
    except ValueError:
        pass


def _pack(state):
    state.fold()  # every record in the columns: they are the snapshot as they stand
    keywords = {i: list(words) for i, words in state.keywords.items()}
    expunged = sorted(state.expunged)
    return (state.highest, state.forgotten, state.uids.tobytes(), state.modseqs.tobytes(),
            state.flags.tobytes(), keywords, array("q", expunged).tobytes(),
            array("q", (state.expunged[uid] for uid in expunged)).tobytes())


def _unpack(packed):
    highest, forgotten, uids, modseqs, flags, keywords, expunged, expunged_at = packed
    uids, modseqs, flags = _ints(uids), _ints(modseqs), _ints(flags)
    if not len(uids) == len(modseqs) == len(flags):
        raise ValueError("columns differ in length")
    keywords = {i: tuple(words) for i, words in keywords.items()}
    return ModseqState(highest, forgotten, (uids, modseqs, flags, keywords),
                       dict(zip(_ints(expunged), _ints(expunged_at))))


def _ints(data):
    values = array("q")
    values.frombytes(data)
    return values
