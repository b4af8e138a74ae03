"""The Maildir driver's mailbox: one folder (tmp/, new/, cur/) with Dovecot's UID files.

Every change is one atomic rename, link or unlink, so a kill -9 at any
instant leaves every message in new/ or cur/ whole:

- delivery (APPEND, COPY): write tmp/NAME and sync it, then rename it into
  new/ (\\Recent; NAME:2,FLAGS if it has flags), as procmail and Dovecot do;
- flags: rename cur/BASE:2,OLD to cur/BASE:2,NEW; a message in new/ moves
  to cur/ on the way, and that move is what ends \\Recent;
- expunge: unlink.  Nothing else ever removes a file from new/ or cur/.

UIDs come from `dovecot-uidlist` (mailstore.maildiruidlist), which is only
replaced (temporary file + rename) under `dovecot-uidlist.lock`, created
with O_EXCL, so Dovecot and pyimapd give a file the same UID.  Keywords are
the letters a-z, named in `dovecot-keywords`.
"""

import contextlib
import hashlib
import mmap
import os
import socket
import time

from mailstore import StoreError, modseq
from mailstore import maildiruidlist as uidfile
from mailstore.mboxformat import ANSWERED, DELETED, DRAFT, FLAGGED, OLD, SEEN
from mailstore.sessionlock import SessionLock, held_elsewhere
from mailstore.text import FileText, lf_pieces

UIDLIST, KEYWORDS = "dovecot-uidlist", "dovecot-keywords"
# Dovecot's uidlist lock: taken for at most a directory scan, so one older
# than Dovecot's own stale age (2 minutes) is left over from a crash.
UIDLIST_STALE_AGE = 120
UIDLIST_LOCK_TIMEOUT = 150
# A directory changed within this many seconds of our scan may change again
# within the same timestamp tick; such a scan is redone at the next check.
RACY_SECONDS = 2

_LETTER_FLAGS = {"D": DRAFT, "F": FLAGGED, "R": ANSWERED, "S": SEEN, "T": DELETED}
_FLAG_LETTERS = sorted(_LETTER_FLAGS.items())
_DELIVERY_COUNTER = [0]


class MaildirMessage:
    """One message file: its UID, where it is now, and what its name says."""

    __slots__ = ("uid", "base", "name", "subdir", "flags", "keywords", "other", "folder",
                 "zone", "_size", "_mtime")

    def __init__(self, folder, uid, base, subdir, name, keyword_names):
        self.folder, self.uid, self.base = folder, uid, base
        self.zone = self._size = self._mtime = None
        self.set_name(subdir, name, keyword_names)

    def set_name(self, subdir, name, keyword_names):
        """Take the flags from a (possibly new) file name."""
        self.subdir, self.name = subdir, name
        self.flags, self.keywords, self.other = parse_info(name, keyword_names)
        if subdir == "cur":
            self.flags |= OLD

    @property
    def size(self):
        """RFC822.SIZE, computed from the file on first use."""
        if self._size is None:
            self.folder.message_text(self)
        return self._size


def parse_info(name, keyword_names):
    """(flag bits, keywords, letters we keep but do not know) from `BASE:2,LETTERS`."""
    _, sep, info = name.partition(":")
    if not sep or not info.startswith("2,"):
        return 0, (), ""
    flags, keywords, other = 0, [], ""
    for letter in info[2:]:
        if letter in _LETTER_FLAGS:
            flags |= _LETTER_FLAGS[letter]
            continue
        index = ord(letter) - ord("a")
        if 0 <= index < len(keyword_names) and keyword_names[index]:
            keywords.append(keyword_names[index])
        else:
            other += letter  # P (passed), or a keyword letter with no name: kept as is
    return flags, tuple(keywords), other


def info_name(base, flags, keywords, other, keyword_names):
    """`BASE:2,LETTERS`, the letters in ASCII order as the Maildir rules ask."""
    letters = {letter for letter, bit in _FLAG_LETTERS if flags & bit}
    letters.update(chr(ord("a") + keyword_names.index(k)) for k in keywords if k in keyword_names)
    letters.update(other)
    return base + ":2," + "".join(sorted(letters))


def unique_name(text_size, vsize):
    """A new file's name: time, microseconds, pid, counter and randomness, host, sizes."""
    _DELIVERY_COUNTER[0] += 1
    now = time.time()
    host = socket.gethostname().replace("/", "\\057").replace(":", "\\072")
    name = "%d.M%dP%dQ%dR%s.%s,S=%d" % (now, int(now % 1 * 1e6), os.getpid(), _DELIVERY_COUNTER[0],
                                          os.urandom(4).hex(), host, text_size)
    return name + (",W=%d" % vsize if vsize is not None else "")


def wire_size(data):
    """Octets clients get: CRs dropped, each LF as CRLF, an open last line closed (as mbox)."""
    size = len(data) - data.count(b"\r") + data.count(b"\n")
    return size + 2 if data and not data.endswith(b"\n") else size


def _stored_form(data):
    """A function giving the message's pieces as stored: LF line ends, the last line closed."""
    if isinstance(data, FileText):
        return lambda: _closed(lf_pieces(data.chunks()))
    text = data.replace(b"\r\n", b"\n")
    if text and not text.endswith(b"\n"):
        text += b"\n"
    return lambda: (text,)


def _closed(pieces):
    last = b"\n"
    for piece in pieces:
        yield piece
        last = piece[-1:]
    if last != b"\n":
        yield b"\n"


def _sizes(pieces):
    """(size, wire size or None when a stray CR makes it unknowable) of stored pieces."""
    size = crs = lfs = 0
    for piece in pieces:
        size, crs, lfs = size + len(piece), crs + piece.count(b"\r"), lfs + piece.count(b"\n")
    return size, None if crs else size + lfs


def _delivery_order(base):
    """New files get UIDs in delivery-time order: the leading seconds, then the name."""
    seconds = base.split(".", 1)[0]
    return (int(seconds) if seconds.isdigit() else 0, base)


class MaildirMailbox:
    """One open Maildir folder: its messages, UID state, and the changes to them."""

    def __init__(self, path, store, readonly):
        self.path = path
        self.store = store
        self.readonly = readonly
        self.messages = []
        self.uidvalidity = 0
        self.last_uid = 0
        self.keywords = []
        self.keyword_slots = []
        self.stamp = None
        self.session_lock = None
        self._dir_fd = None
        self._uid_index = None
        self._seen_state = None
        self._racy = False
        self._keywords_changed = False
        self.modseqs = modseq.ModseqLog(None)

    # -- opening and scanning --------------------------------------------

    def open(self, exclusive_session=False):
        """Scan the folder; with exclusive_session, POP3's lock (RFC 1939 §8) as for mbox."""
        try:
            self._dir_fd = os.open(self.path, os.O_RDONLY | os.O_DIRECTORY)
        except FileNotFoundError:
            raise StoreError(StoreError.NOT_FOUND, "no such mailbox") from None
        except OSError as error:
            raise StoreError(StoreError.NO_PERMISSION, "cannot open mailbox: %s"
                             % error.strerror) from None
        self.modseqs = self.store.modseq_log(self.path, os.fstat(self._dir_fd).st_ino)
        if exclusive_session:
            try:
                self.session_lock = SessionLock(self._dir_fd).acquire()
            except StoreError:
                self.close()
                raise
        self._scan()

    def _sub(self, *parts):
        return os.path.join(self.path, *parts)

    def _list(self):
        """{base: (subdir, name)}; new/ is read before cur/, so a file moving on is seen."""
        listing = {}
        for subdir in ("new", "cur"):
            try:
                names = os.listdir(self._sub(subdir))
            except FileNotFoundError:
                continue
            except OSError as error:
                raise StoreError(StoreError.TEMPORARY, "cannot read mailbox directory: %s"
                                 % error.strerror) from None
            for name in names:
                if not name.startswith("."):
                    listing[name.partition(":")[0]] = (subdir, name)
        return listing

    def _confirmed_listing(self, expected):
        """A listing; read twice when a file we know seems gone.

        A rename inside a directory while readdir() runs may hide the file
        from that one pass; a second pass tells a moved file from a deleted one.
        """
        listing = self._list()
        if any(base not in listing for base in expected):
            listing = self._list()
        return listing

    def _scan(self):
        """Scan the folder, then give what changed its modseqs."""
        self._scan_folder()
        self._record_modseqs()

    def _record_modseqs(self):
        """Record changes in the shared modseq file (mailstore.modseq).

        Renames take no lock, so the view compared with the file is a scan
        made under the file's lock: no older view can overwrite a newer record.
        """
        with self.modseqs.locked() as ready:
            if not ready:
                return
            if self._state() != self._seen_state:
                self._scan_folder()
            highest = self.modseqs.highest
            self.modseqs.update(self.uidvalidity, self.messages)
            if self.modseqs.highest != highest:
                self._restamp()  # a flag set and cleared again elsewhere is a change too

    def _scan_folder(self):
        """Read the uidlist, keywords and directories; new files get UIDs under the lock."""
        state = self._state()
        self._read_keywords()
        known = {m.base for m in self.messages}
        uidlist = self._read_uidlist()
        listing = self._confirmed_listing(known)
        unnumbered = uidlist is None or any(base not in uidlist.records for base in listing)
        if unnumbered:
            try:
                with self._uidlist_lock():
                    uidlist, listing = self._assign_uids(known)
                unnumbered = False
            except StoreError as error:
                # A full disk or read-only folder must not make the numbered mail
                # unreadable: new files wait (unshown) for a scan that can write.
                if error.kind != StoreError.TEMPORARY or uidlist is None:
                    raise
                self.store.log("warning", "cannot number new mail in %s: %s" % (self.path, error))
        self._take(uidlist, listing, state)
        if unnumbered:
            self._seen_state = None  # try again at the next check

    def _assign_uids(self, known, extra=()):
        """Under the lock: UIDs for unknown files, then for `extra` (base, fields); write."""
        uidlist = self._read_uidlist()
        if uidlist is None:
            uidlist = uidfile.UidList(int(time.time()), 1, os.urandom(16).hex())
        listing = self._confirmed_listing(known | set(uidlist.records))
        extra = dict(extra)
        fresh = [b for b in listing if b not in uidlist.records and b not in extra]
        for base in sorted(fresh, key=_delivery_order):
            uidlist.add(base)
        for base, fields in extra.items():
            uidlist.add(base, fields)
        # Records of files gone from two passes are expunged mail; Dovecot drops them too.
        for base in [b for b in uidlist.records if b not in listing and b not in extra]:
            del uidlist.records[base]
        self._write_uidlist(uidlist)
        return uidlist, listing

    def _take(self, uidlist, listing, state):
        """Make the message list from the uidlist and the files that exist."""
        previous = {m.uid: m for m in self.messages}
        messages = []
        for base, (subdir, name) in listing.items():
            uid, fields = uidlist.records.get(base, (None, ""))
            if uid is None:
                continue  # delivered after the locked scan: the next scan numbers it
            message = previous.get(uid)
            if message is None or message.base != base:
                message = MaildirMessage(self, uid, base, subdir, name, self.keyword_slots)
                message.zone = uidfile.zone_of(fields) if fields else None
            elif (message.subdir, message.name) != (subdir, name) or self._keywords_changed:
                message.set_name(subdir, name, self.keyword_slots)
            messages.append(message)
        messages.sort(key=lambda m: m.uid)
        self.messages = messages
        self.uidvalidity = uidlist.uidvalidity
        self.last_uid = uidlist.next_uid - 1
        self._uid_index = None
        self._seen_state = state
        now = time.time()
        self._racy = any(now - mtime < RACY_SECONDS for mtime in state[1])
        self._restamp()

    def _restamp(self):
        """A digest of what a session reports: UIDs, flags, keywords, UIDVALIDITY, HIGHESTMODSEQ."""
        digest = hashlib.sha256(b"%d %r %d" % (self.uidvalidity, self.keywords,
                                               self.modseqs.highest))
        for message in self.messages:
            digest.update(b"%d %d %r;" % (message.uid, message.flags, message.keywords))
        self.stamp = digest.digest()

    def _state(self):
        """What tells us someone changed the folder: the directories and Dovecot's files."""
        stamps, mtimes = [], []
        for name in ("new", "cur", UIDLIST, KEYWORDS):
            try:
                st = os.stat(self._sub(name))
            except FileNotFoundError:
                stamps.append(None)
                continue
            stamps.append((st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns))
            mtimes.append(st.st_mtime)
        return tuple(stamps), tuple(mtimes)

    # -- Dovecot's files --------------------------------------------------

    def _read_uidlist(self):
        data = uidfile.read_file(self._sub(UIDLIST))
        if data is None:
            return None
        uidlist = uidfile.parse_uidlist(data)
        if uidlist is None:
            self.store.log("warning", "unreadable %s in %s, starting it again" % (UIDLIST, self.path))
        return uidlist

    def _write_uidlist(self, uidlist):
        try:
            uidfile.replace_file(self._sub(UIDLIST), uidlist.render())
        except OSError as error:
            raise StoreError(StoreError.TEMPORARY, "cannot write %s: %s"
                             % (UIDLIST, error.strerror)) from None

    def _uidlist_lock(self):
        return self._dotlock(UIDLIST)

    def _dotlock(self, name):
        from mailstore.locking import lock_mbox

        return lock_mbox(self._sub(name), None, methods=("dotlock",), exclusive=True,
                         timeout=UIDLIST_LOCK_TIMEOUT, stale_age=UIDLIST_STALE_AGE,
                         log=self.store.log)

    def _read_keywords(self):
        data = uidfile.read_file(self._sub(KEYWORDS))
        slots = uidfile.parse_keywords(data) if data else []
        self._keywords_changed = slots != self.keyword_slots
        self.keyword_slots = slots
        self.keywords = [name for name in slots if name]

    def _register_keywords(self, keywords):
        """Give new keywords letters in dovecot-keywords (under its lock); NO_PERMISSION past z."""
        if all(k in self.keyword_slots for k in keywords):
            return
        with self._dotlock(KEYWORDS):
            self._read_keywords()
            slots = list(self.keyword_slots)
            for keyword in keywords:
                if keyword in slots:
                    continue
                if None in slots:
                    slots[slots.index(None)] = keyword
                elif len(slots) < uidfile.MAX_KEYWORDS:
                    slots.append(keyword)
                else:
                    raise StoreError(StoreError.NO_PERMISSION, "too many keywords in this mailbox")
            try:
                uidfile.replace_file(self._sub(KEYWORDS), uidfile.render_keywords(slots))
            except OSError as error:
                raise StoreError(StoreError.TEMPORARY, "cannot write %s: %s"
                                 % (KEYWORDS, error.strerror)) from None
            self.keyword_slots, self.keywords = slots, [name for name in slots if name]
        for message in self.messages:  # a letter may have had no name until now
            message.set_name(message.subdir, message.name, self.keyword_slots)

    # -- reading ---------------------------------------------------------

    @property
    def uidnext(self):
        return self.last_uid + 1

    def by_uid(self, uid):
        """The message with this UID, or None (expunged, or not yet seen)."""
        if self._uid_index is None:
            self._uid_index = {m.uid: m for m in self.messages}
        return self._uid_index.get(uid)

    def _open_message(self, message):
        """An open file of the message, following a rename by another session."""
        for _ in range(2):
            try:
                # O_NOFOLLOW: a symbolic link in cur/ is not a message (the mbox driver agrees).
                fd = os.open(self._sub(message.subdir, message.name), os.O_RDONLY | os.O_NOFOLLOW)
                return open(fd, "rb")
            except FileNotFoundError:
                if not self._relocate(message):
                    break
            except OSError as error:
                raise StoreError(StoreError.CORRUPT, "cannot read message %d: %s"
                                 % (message.uid, error.strerror)) from None
        raise StoreError(StoreError.EXPUNGED, "message %d was expunged by another program"
                         % message.uid)

    def _relocate(self, message):
        """Find the message's file again after someone renamed it; False if it is gone."""
        found = self._confirmed_listing({message.base}).get(message.base)
        if found is None:
            return False
        message.set_name(*found, self.keyword_slots)
        return True

    def message_text(self, message):
        """The whole message as stored (LF line ends as Maildir files have)."""
        with self._open_message(message) as handle:
            data = handle.read()
        if message._size is None:
            message._size = wire_size(data)
        return data

    def header_bytes(self, message):
        """The header, including the empty line that ends it."""
        with self._open_message(message) as handle:
            data = b""
            while True:
                chunk = handle.read(8192)
                data += chunk
                end = header_end(data)
                if end < len(data) or not chunk:
                    return data[:end]

    def body_chunks(self, message, chunk=1 << 16):
        """Yield the body in bounded chunks."""
        start = len(self.header_bytes(message))
        with self._open_message(message) as handle:
            handle.seek(start)
            while True:
                data = handle.read(chunk)
                if not data:
                    return
                yield data

    def mapped_text(self, message):
        """(header, map, body start, size): the message file mapped, its header (with the
        empty line that ends it) as bytes, read in place (imap.plaintext)."""
        from mailstore import mboxformat as fmt

        with self._open_message(message) as handle:
            size = os.fstat(handle.fileno()).st_size
            if not size:
                return b"", b"", 0, 0
            buf = mmap.mmap(handle.fileno(), size, prot=mmap.PROT_READ)
        blank = fmt.header_end(buf, 0, size)
        body = min(fmt.line_end(buf, blank), size) if blank < size else size
        return buf[:body], buf, body, size

    def visible_chunks(self, message, header_only=False, chunk=1 << 16):
        """Yield the message (or its header) in bounded chunks."""
        if header_only:
            yield self.header_bytes(message)
            return
        with self._open_message(message) as handle:
            while True:
                data = handle.read(chunk)
                if not data:
                    return
                yield data

    def internal_date(self, message):
        """(unix time, zone offset in minutes): the file's mtime, in APPEND's zone or the local one."""
        if message._mtime is None:
            with self._open_message(message) as handle:
                message._mtime = int(os.fstat(handle.fileno()).st_mtime)
        zone = message.zone
        return message._mtime, time.localtime(message._mtime).tm_gmtoff // 60 if zone is None else zone

    def cached(self, message, kind, compute):
        """ENVELOPE and BODYSTRUCTURE are computed from the file each time (no sidecar yet)."""
        return compute()

    # -- several sessions on one mailbox (RFC 2180) ------------------------

    def changed(self):
        """True when someone changed the folder since we scanned it (or might have)."""
        return self._racy or self._state() != self._seen_state

    def refresh(self):
        """Scan the folder again if anyone changed it; True when it was scanned."""
        if not self.changed():
            return False
        self._scan()
        return True

    @contextlib.contextmanager
    def reading(self):
        """Files never change once delivered: only catch up with renames and deletions."""
        self.refresh()
        yield

    def claim_recent(self):
        """Move new/ to cur/: exactly one session wins each rename and reports \\Recent."""
        self.refresh()
        fresh = [m for m in self.messages if m.subdir == "new"]
        if self.readonly:
            return {m.uid for m in fresh}
        recent = set()
        for message in fresh:
            if self._rename(message, lambda flags, keywords: (flags, keywords), relocate=False):
                recent.add(message.uid)
        if fresh:
            self._changed_by_us()
        return recent

    def _rename(self, message, change, relocate=True):
        """Apply change(flags, keywords) to the file's current name; False if the file is gone."""
        for _ in range(5):
            flags, keywords = change(message.flags & ~OLD, message.keywords)
            name = info_name(message.base, flags, keywords, message.other, self.keyword_slots)
            if (message.subdir, message.name) == ("cur", name):
                return True
            try:
                os.rename(self._sub(message.subdir, message.name), self._sub("cur", name))
            except FileNotFoundError:
                if not relocate or not self._relocate(message):
                    return False
                continue
            except OSError as error:
                raise StoreError(StoreError.TEMPORARY, "cannot rename message file: %s"
                                 % error.strerror) from None
            message.set_name("cur", name, self.keyword_slots)
            return True
        raise StoreError(StoreError.TEMPORARY, "message %d keeps being renamed" % message.uid)

    def _changed_by_us(self):
        self._uid_index = None
        self._restamp()

    # -- writing ---------------------------------------------------------

    def _writable(self):
        if self.readonly:
            raise StoreError(StoreError.NO_PERMISSION, "mailbox is read-only")

    def store_flags(self, uids, mode, bits, keywords, unchanged_since=None):
        """Add (+), remove (-) or set ("") flags and keywords, on each file's current flags.

        Under the modseq file's lock, so that UNCHANGEDSINCE (RFC 7162 §3.1.3)
        and the change are one step for every pyimapd process; returns the
        UIDs left alone because their modseq is above unchanged_since.
        """
        self._writable()
        self.refresh()
        if mode != "-" and keywords:
            self._register_keywords(keywords)

        def change(flags, names):
            if mode == "+":
                return flags | bits, names + tuple(k for k in keywords if k not in names)
            if mode == "-":
                return flags & ~bits, tuple(k for k in names if k not in keywords)
            return bits, tuple(dict.fromkeys(keywords))

        with self.modseqs.locked():
            self._record_modseqs()
            wanted = set(uids)
            refused = (set() if unchanged_since is None
                       else self.modseqs.changed_after(wanted, unchanged_since))
            for message in self.messages:
                if message.uid in wanted and message.uid not in refused:
                    self._rename(message, change)
            self._changed_by_us()
            self._record_modseqs()
        return refused

    def _refuse_under_pop3(self):
        """An expunge while another POP3 session holds the folder is refused, as for mbox."""
        if self.session_lock is None and held_elsewhere(self._dir_fd):
            raise StoreError(StoreError.IN_USE, "a POP3 session holds the mailbox")

    def expunge(self, uids=None):
        """Unlink \\Deleted messages (only those in uids if given); return their UIDs."""
        self._writable()
        self.refresh()
        doomed = [m for m in self.messages if m.flags & DELETED and (uids is None or m.uid in uids)]
        if doomed:
            self._refuse_under_pop3()
        gone = [m.uid for m in doomed if self._unlink(m, still_deleted=True)]
        removed = set(gone)
        self.messages = [m for m in self.messages if m.uid not in removed]
        self._changed_by_us()
        self._record_modseqs()
        return gone

    def _unlink(self, message, still_deleted):
        """Remove the message's file; False when it was undeleted or moved meanwhile."""
        for _ in range(5):
            if still_deleted and not message.flags & DELETED:
                return False
            try:
                os.unlink(self._sub(message.subdir, message.name))
                return True
            except FileNotFoundError:
                if not self._relocate(message):
                    return True  # someone else expunged it: it is gone all the same
            except OSError as error:
                raise StoreError(StoreError.TEMPORARY, "cannot remove message file: %s"
                                 % error.strerror) from None
        return False

    def commit(self, seen_uids=(), expunge=False):
        """POP3's UPDATE: expunge messages marked \\Deleted in memory, mark the rest seen/old."""
        if self.readonly:
            return 0
        doomed = {m.uid for m in self.messages if expunge and m.flags & DELETED}
        if doomed:
            self._refuse_under_pop3()
        removed = sum(1 for m in self.messages
                      if m.uid in doomed and self._unlink(m, still_deleted=False))
        seen = set(seen_uids)
        for message in self.messages:
            if message.uid in doomed:
                continue
            if message.uid in seen or message.subdir == "new":
                bits = SEEN if message.uid in seen else 0
                self._rename(message, lambda flags, names, bits=bits: (flags | bits, names))
        self.messages = [m for m in self.messages if m.uid not in doomed]
        self._changed_by_us()
        self._record_modseqs()
        return removed

    def append(self, items):
        """Deliver messages; items are (data, flag bits, keywords, (unix time, zone minutes)).

        Each is written to tmp/ and synced, then renamed into new/ under the
        uidlist lock, so its UID is known and returned.
        """
        self._writable()
        keywords = [k for _, _, names, _ in items for k in names]
        if keywords:
            self._register_keywords(list(dict.fromkeys(keywords)))
        written = []
        try:
            for data, _, _, (seconds, _) in items:
                written.append(self._write_tmp(data, seconds))
            with self._uidlist_lock():
                placed = []
                try:
                    for (tmp, base), item in zip(list(written), items):
                        placed.append(self._place(tmp, base, item))
                        written.remove((tmp, base))
                    zones = [uidfile.zone_field(zone) for _, _, _, (_, zone) in items]
                    uidlist, _ = self._assign_uids({m.base for m in self.messages},
                                                   extra=list(zip(placed, zones)))
                except StoreError:
                    self._unplace(placed)
                    raise
        finally:
            for tmp, _ in written:
                with contextlib.suppress(OSError):
                    os.unlink(tmp)
        self._fsync_dirs()
        self._scan()
        return [uidlist.uid(base) for base in placed]

    def append_with_uids(self, items, uidvalidity=None, last_uid=None):
        """Deliver (uid, data, flags, keywords, date) items keeping their UIDs (mailutil copy)."""
        from mailstore.maildirrestore import append_with_uids

        return append_with_uids(self, items, uidvalidity, last_uid)

    def _write_tmp(self, data, seconds):
        """Write one message to tmp/ (LF line ends, as Dovecot stores them); (path, base)."""
        pieces = _stored_form(data)
        base = unique_name(*_sizes(pieces()))  # a pass first: the name carries the sizes
        path = self._sub("tmp", base)
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
        except OSError as error:
            raise StoreError(StoreError.TEMPORARY, "cannot create message file: %s"
                             % error.strerror) from None
        try:
            for piece in pieces():
                view = memoryview(piece)
                while view:
                    view = view[os.write(fd, view):]
            os.fsync(fd)
            os.utime(fd, (seconds, seconds))
        except OSError as error:
            os.close(fd)
            os.unlink(path)
            raise StoreError(StoreError.TEMPORARY, "cannot write message file: %s"
                             % error.strerror) from None
        os.close(fd)
        return path, base

    def _place(self, tmp, base, item):
        """Rename tmp/ into new/, with `:2,` flag letters when it has flags.

        new/ makes the message \\Recent, as an appended message is in mbox
        and in Dovecot (which reads flags from a new/ name and keeps them
        when it moves the file to cur/).
        """
        _, bits, keywords, _ = item
        name = info_name(base, bits, keywords, "", self.keyword_slots) if bits or keywords else base
        try:
            os.rename(tmp, self._sub("new", name))
        except OSError as error:
            raise StoreError(StoreError.TEMPORARY, "cannot deliver message file: %s"
                             % error.strerror) from None
        return base

    def _unplace(self, placed):
        """Take back files renamed into new/ when their UIDs could not be written: the client
        hears NO, so a retry must not make a second copy.  Without a uidlist record no
        session has shown them yet (the lock keeps others from numbering them)."""
        taken_back = set(placed)
        for name in os.listdir(self._sub("new")) if placed else ():
            if name.partition(":")[0] in taken_back:
                with contextlib.suppress(OSError):
                    os.unlink(self._sub("new", name))

    def _fsync_dirs(self):
        """Make the renames durable before the client is told the UIDs."""
        for subdir in ("new", "cur"):
            with contextlib.suppress(OSError):
                fd = os.open(self._sub(subdir), os.O_RDONLY | os.O_DIRECTORY)
                try:
                    os.fsync(fd)
                finally:
                    os.close(fd)

    def close(self):
        """Release the POP3 session lock; nothing needs writing."""
        if self.session_lock:
            self.session_lock.release()
            self.session_lock = None
        self.modseqs.close()
        if self._dir_fd is not None:
            os.close(self._dir_fd)
            self._dir_fd = None


def header_end(data):
    """Length of the header including the empty line that ends it (all of data if none)."""
    if data[:1] == b"\n":
        return 1
    if data[:2] == b"\r\n":
        return 2
    best = len(data)
    for pattern in (b"\n\n", b"\n\r\n"):
        found = data.find(pattern)
        if 0 <= found and found + len(pattern) < best:
            best = found + len(pattern)
    return best
