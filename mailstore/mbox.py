"""The mbox driver's mailbox: one UW-compatible spool or folder file, read through mmap.

A Mailbox is parsed under a short read lock and then held with no lock on
the file, as UW and Dovecot do; writes re-read any mail appended meanwhile
under the write lock and rewrite in place through the journal.
"""

import contextlib
import errno
import itertools
import mmap
import os
import stat
import time
import zlib
from array import array

from mailstore import StoreError, journal, journal_moves, mboxindex, modseq
from mailstore import mboxformat as fmt
from mailstore.fromline import format_from_line, parse_from_line
from mailstore.locking import lock_mbox
from mailstore.sessionlock import SessionLock, held_elsewhere
from mailstore.text import chunks_of
from mailstore.uidset import UidSet

# UW c-client's NUSERFLAGS: the keywords one mailbox can hold.
MAX_KEYWORDS = 30


class MboxMailbox:
    """One open mbox file: its messages, UID state, and the write-back."""

    def __init__(self, path, store, readonly, must_exist=False):
        self.path = path
        self.must_exist = must_exist
        self.stamp = None
        self.indexed_stamp = None
        self.field_cache = None
        # Messages whose dirty flag was set since the last write: a write
        # visits these, not all of a 100,000-message mailbox.
        self._touched = []
        self._pages = None
        # Counts every time messages were (re)read from the file, as opposed to
        # our own header patches: a session whose last look saw this count
        # knows that only its own flag changes happened since (RFC 2180 views).
        self.reads = 0
        self.store = store
        self.readonly = readonly
        self.fd = None
        self.map = None
        self.size = 0
        self.identity = None
        self.messages = []
        self.pseudo = None
        self.uidvalidity = 0
        self.last_uid = 0
        self.keywords = []
        self.dirty = False
        self.session_lock = None
        self.layout = None
        # RFC 7162 modseqs, shared on disk (mailstore.modseq); none while the file is missing.
        self.modseqs = modseq.ModseqLog(None)
        self._modseq_candidates = None

    # -- opening and parsing ---------------------------------------------

    def open(self, exclusive_session=False):
        """Open and parse the file; a missing file is an empty mailbox."""
        fd = self._open_file()
        if fd is None:
            if self.must_exist:
                raise StoreError(StoreError.NOT_FOUND, "no such mailbox")
            self.uidvalidity = int(time.time())
            return
        self.fd = fd
        self.identity = self._identity()
        self.modseqs = self.store.modseq_log(self.path, self.identity)
        if exclusive_session:
            try:
                self.session_lock = SessionLock(fd).acquire()
            except StoreError:
                self.close()
                raise
        self._recover_journal()
        with self._lock(exclusive=False):
            self._map_and_parse()

    def _open_file(self):
        mode = os.O_RDONLY if self.readonly else os.O_RDWR
        try:
            fd = os.open(self.path, mode | os.O_NOFOLLOW | os.O_NOCTTY | os.O_NONBLOCK)
        except FileNotFoundError:
            return None
        except OSError as error:
            if error.errno == errno.EISDIR:
                raise StoreError(StoreError.NOT_SELECTABLE, "a directory is not a mailbox") from None
            if error.errno == errno.ELOOP:
                self.store.log("crit", "refusing symbolic link as mailbox: %s" % self.path)
                raise StoreError(StoreError.NO_PERMISSION, "mailbox is a symbolic link") from None
            if error.errno in (errno.EACCES, errno.EPERM):
                raise StoreError(StoreError.NO_PERMISSION, "no access to mailbox") from None
            raise StoreError(StoreError.TEMPORARY, "cannot open mailbox: %s" % error.strerror) from None
        try:
            self._check_file(os.fstat(fd))
        except StoreError:
            os.close(fd)
            raise
        return fd

    def _check_file(self, st):
        if stat.S_ISDIR(st.st_mode):
            raise StoreError(StoreError.NOT_SELECTABLE, "a directory is not a mailbox")
        if not stat.S_ISREG(st.st_mode):
            raise StoreError(StoreError.CORRUPT, "mailbox is not a regular file")
        if os.geteuid() != 0 and st.st_uid != os.geteuid():
            self.store.log("err", "mailbox %s is owned by uid %d, not by the user"
                           % (self.path, st.st_uid))
            raise StoreError(StoreError.NO_PERMISSION, "mailbox is not owned by the user")

    def _record_modseqs(self):
        """Give changes (ours, or another program's) their modseqs: called whenever the
        messages were (re)read, always under a lock with every known message there.
        After our own same-size patches only the patched messages need comparing."""
        candidates, self._modseq_candidates = self._modseq_candidates, None
        self.modseqs.sync(self.uidvalidity, self.messages, candidates)

    def _identity(self):
        st = os.fstat(self.fd)
        return (st.st_dev, st.st_ino)

    def _lock(self, exclusive):
        config = self.store.config
        methods = config.mbox_write_locks if exclusive else config.mbox_read_locks
        return lock_mbox(self.path, self.fd, methods=methods, exclusive=exclusive,
                         timeout=config.mbox_lock_timeout, log=self.store.log,
                         privileged=_privileged_factory())

    def _recover_journal(self):
        path = self.store.journal_path(self.path, self.identity)
        if self.readonly or not os.path.exists(path):
            return
        with self._lock(exclusive=True):
            if journal.recover(self.fd, path, self.identity):
                self.store.log("warning", "completed an interrupted rewrite of %s" % self.path)

    def _map_and_parse(self):
        """(Re)read the whole file under the caller's lock."""
        self.reads += 1
        self._unmap()
        self.size = os.fstat(self.fd).st_size
        if self.size == 0:
            # Until the pseudo-message is written, a re-read of a file that
            # was empty before too keeps the UIDVALIDITY this session may
            # have reported; any UID handed out means a new one.
            if not (self.uidvalidity and self.last_uid == 0):
                self.uidvalidity = int(time.time())
            self.messages, self.pseudo, self.layout = [], None, None
            self.last_uid, self.keywords = 0, []
            self._parsed()
            return
        self.map = mmap.mmap(self.fd, self.size, prot=mmap.PROT_READ)
        self._drop_parsed_messages()
        if not self._take_index():
            try:
                messages = fmt.scan(self.map)
            except fmt.NotMbox:
                raise StoreError(StoreError.CORRUPT, "%s is not in mbox format" % self.path) from None
            self._apply_metadata(messages)
            self.layout = self._layout_digest()
        self._parsed()

    def _drop_parsed_messages(self):
        """Let the previous parse go before the next is built: after a rewrite of a
        100,000-message file both sets of Messages would be alive at once (30 MB).
        Message 1 stays: _apply_metadata compares the new one with it."""
        self.messages = self.messages[:1]
        self._touched = []

    # -- the index sidecar (mailstore.mboxindex) -----------------------------

    def _take_index(self):
        """Take the messages from the index when it still describes the file; else False."""
        index = mboxindex.load(self._index_path(), self.identity)
        if index is None or not mboxindex.usable(index, self.map, self._file_stamp()):
            return False
        self.pseudo = index.pseudo
        self.uidvalidity, self.last_uid = index.uidvalidity, index.last_uid
        self.keywords = index.keywords
        self.messages = index.messages
        self._touched = []
        self.layout = index.layout
        self.dirty = False
        # An index that still matches the file exactly need not be written again at close
        # (that would hash every message's header: O(mailbox) for a reopen).
        self.indexed_stamp = index.stamp
        if self.size == index.indexed_size:
            if index.stamp == self._file_stamp() and self.modseqs.unchanged_since(
                    index.modseq_mark):
                # Neither the mailbox nor the modseq file changed since they last agreed
                # on these messages: there is nothing to compare (O(mailbox) otherwise).
                self._modseq_candidates = []
            return True
        if not self.messages:
            return False
        # New mail can also change where the last indexed message ends (the
        # separator before the new From_ line), so that one is parsed again.
        last = self.messages.pop()
        fresh = fmt.scan(self.map, last.start)
        if not self._assign_uids(fresh, trusted=True,
                                 previous=self.messages[-1].uid if self.messages else 0):
            return False
        self.messages.extend(fresh)
        self._layout_changed(removed=[last], added=fresh)
        return True

    def _save_index(self):
        """Keep the index for next time: only for large mailboxes, fully written, unchanged."""
        if (self.map is None or len(self.messages) < mboxindex.MIN_MESSAGES or self.dirty
                or self.stamp != self._file_stamp() or self.stamp == self.indexed_stamp
                or self._dirty_messages()):
            return
        try:
            self.store.ensure_index_dir()
        except StoreError:
            return
        mboxindex.save(self._index_path(), self, self.modseqs.mark())
        self.indexed_stamp = self.stamp

    def _save_field_cache(self):
        if self.field_cache is None:
            return
        self.field_cache.keep_only({m.uid for m in self.messages})
        try:
            self.store.ensure_index_dir()
        except StoreError:
            return
        self.field_cache.save()

    def _index_path(self):
        return self.store.index_path(self.path, self.identity)

    def _file_stamp(self):
        st = os.fstat(self.fd)
        return (st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)

    def _parsed(self):
        """Remember what the file looked like, to notice anyone's later change."""
        self._record_modseqs()
        self.stamp = self._file_stamp()

    def _layout_digest(self):
        """Where each known message starts and its From_ line, as one number.

        Mail appended by an MTA and in-place header patches by another session
        leave this unchanged; a rewrite by another program that moved data does
        not, and our offsets would then point at the wrong bytes. It is a sum
        over the messages, so new mail adds its part and a rewritten tail takes
        its old part out: keeping it costs O(change), not O(mailbox).
        """
        return self._layout_part(([self.pseudo] if self.pseudo else []) + self.messages)

    def _layout_part(self, messages):
        """The messages' share of _layout_digest."""
        total, buf = 0, self.map
        pages = fmt.PageRelease(buf)
        for message in messages:
            start = message.start
            pages.consumed(message.end - start)
            entry = b"%d " % start + buf[start:message.header]
            total += zlib.crc32(entry) | zlib.adler32(entry) << 32
        return total & _LAYOUT_MASK

    def _layout_changed(self, removed=(), added=()):
        """Take messages out of the layout and put others in (same start and From_ line
        when a message is parsed again: it comes out and back in unchanged)."""
        if self.layout is not None:
            self.layout = (self.layout - self._layout_part(removed)
                           + self._layout_part(added)) & _LAYOUT_MASK

    def _unmap(self):
        if self.map is not None:
            self.map.close()
            self.map = None

    def _apply_metadata(self, messages):
        """UW's rules for UIDs, UIDVALIDITY and flags (mbox-compat.md §7)."""
        self._touched = []
        before = (self.uidvalidity, self.last_uid,
                  self.messages[0].check if self.messages and not self.pseudo else None)
        self.pseudo, base = self._take_base(messages)
        self.uidvalidity, self.last_uid, self.keywords = base or (0, 0, [])
        if not self._assign_uids(messages, trusted=base is not None):
            self.store.log("notice", "assigning new unique identifiers to all messages in %s"
                           % self.path)
            self.uidvalidity, self.last_uid = int(time.time()), 0
            for message in messages:
                message.uid = 0
            self._assign_uids(messages, trusted=False)
        if base is None:
            self.uidvalidity = self.uidvalidity or self._unwritten_uidvalidity(messages, *before)
            self.dirty = True
        self.messages = messages

    @staticmethod
    def _unwritten_uidvalidity(messages, previous, previous_last_uid, previous_first):
        """UIDVALIDITY for mail whose UID base nobody has written yet (a new spool, or
        one a POP3 session held when we wanted to write it): the one this session
        already showed while the file only grew (same message 1), else a new one."""
        if previous and (previous_last_uid == 0
                         or (messages and messages[0].check == previous_first)):
            return previous
        return int(time.time())

    def _take_base(self, messages):
        """Pop the pseudo-message if present; return it and the UID base of message 1."""
        if not messages:
            return None, None
        meta = fmt.read_meta(self.map, messages[0])
        if meta.imap is not None:
            base = fmt.parse_base(meta.imap)
            if base:
                return messages.pop(0), base
        if meta.imapbase is not None:
            return None, fmt.parse_base(meta.imapbase)
        return None, None

    def _assign_uids(self, messages, trusted, previous=0):
        """Read flags and UIDs; False when stored UIDs go backwards or repeat."""
        known = set(self.keywords)
        pages = fmt.PageRelease(self.map)
        for index, message in enumerate(messages):
            pages.consumed(message.end - message.start)
            meta = self._take_metadata(message, known)
            if meta.bogus or (index and (meta.imap or meta.imapbase)):
                self._mark_dirty(message)
            uid = int(meta.uid) if trusted and meta.uid and meta.uid.isdigit() else 0
            if uid and uid <= previous:
                return False
            if not uid:
                uid = self.last_uid + 1
                self._mark_dirty(message)
            message.uid = uid
            self.last_uid = max(self.last_uid, uid)
            previous = uid
        return True

    def _take_metadata(self, message, known):
        """Flags, keywords (those in the mailbox's list) and size from the file; the metadata."""
        meta = fmt.read_meta(self.map, message)
        message.flags = fmt.flags_from_letters(meta.status)
        message.keywords = tuple(k.decode("ascii", "replace") for k in (meta.keywords or ())
                                 if k.decode("ascii", "replace") in known)
        message.size = fmt.compute_size(self.map, message)
        return meta

    # -- reading ---------------------------------------------------------

    @property
    def uidnext(self):
        return self.last_uid + 1

    def visible_chunks(self, message, header_only=False, chunk=1 << 16):
        """Yield the message as clients see it (LF form as stored), in bounded chunks."""
        spans = fmt.visible_spans(message)
        for start, end in spans:
            if header_only:
                end = min(end, message.body)
            for pos in range(start, end, chunk):
                yield self._read(pos, min(end, pos + chunk))
            if header_only and end >= message.body:
                return

    def header_bytes(self, message):
        """The visible header, including the empty line that ends it."""
        return b"".join(self.visible_chunks(message, header_only=True))

    def mapped_text(self, message):
        """(visible header, map, body start, end): the visible text is the header
        followed by map[body start:end], read in place (imap.plaintext)."""
        return self.header_bytes(message), self.map, message.body, message.end

    def body_chunks(self, message, chunk=1 << 16):
        """Yield the body in bounded chunks."""
        for pos in range(message.body, message.end, chunk):
            yield self._read(pos, min(message.end, pos + chunk))

    def _read(self, start, end):
        """Bytes of the map, whose pages are let go now and then (fmt.PageRelease)."""
        self._note_read(end - start)
        return self.map[start:end]

    def _note_read(self, count):
        if self._pages is None or self._pages.buf is not self.map:
            self._pages = fmt.PageRelease(self.map)
        # A read fault maps the pages around it too (fault-around, 64 KiB by
        # default): a short header read counts as that much.
        self._pages.consumed(max(count, fmt.FAULT_AROUND_BYTES))

    def message_text(self, message):
        """The whole message as clients see it (LF form as stored)."""
        return b"".join(self.visible_chunks(message))

    def internal_date(self, message):
        """(unix time, zone offset in minutes) from the From_ line; the epoch if unparsable."""
        return tuple(self.cached(message, "date", lambda: self._parse_internal_date(message)))

    def _parse_internal_date(self, message):
        parsed = parse_from_line(bytes(self.map[message.start:message.header]).rstrip(b"\r\n"))
        return (parsed[1], parsed[2]) if parsed else (0, 0)

    def cached(self, message, kind, compute):
        """A value computed from a message's text (ENVELOPE, BODYSTRUCTURE), kept across sessions."""
        if self.fd is None or len(self.messages) < mboxindex.MIN_MESSAGES:
            return compute()
        if self.field_cache is None or self.field_cache.uidvalidity != self.uidvalidity:
            from mailstore.fieldcache import FieldCache

            self.field_cache = FieldCache(
                self.store.cache_path(self.path, self.identity), self.uidvalidity)
        return self.field_cache.get(message.uid, kind, compute)

    def by_uid(self, uid):
        """The message with this UID, or None (expunged, or not yet seen)."""
        # Messages are in file order, which is ascending UID order (UW's rule,
        # kept by _assign_uids): a binary search needs no per-message dict.
        messages, low, high = self.messages, 0, len(self.messages)
        while low < high:
            middle = (low + high) // 2
            if messages[middle].uid < uid:
                low = middle + 1
            else:
                high = middle
        if low < len(messages) and messages[low].uid == uid:
            return messages[low]
        return None

    # -- several sessions on one mailbox (RFC 2180) ------------------------

    def changed(self):
        """True when someone wrote to (or created) the file since we parsed it."""
        if self.fd is None:
            return os.path.exists(self.path)
        return self._file_stamp() != self.stamp

    def refresh(self):
        """Re-read the file if anyone changed it; True when it was re-read."""
        if not self.changed():
            return False
        if self.fd is None:
            self._open_created()
            return True
        with self._lock(exclusive=False):
            self._reload()
        return True

    @contextlib.contextmanager
    def reading(self):
        """Hold the read lock while message text is read, so no rewrite moves it meanwhile."""
        if self.fd is None:
            yield
            return
        with self._lock(exclusive=False):
            if self.changed():
                self._reload()
            yield

    def claim_recent(self):
        """Persist UIDs of new mail and take its \\Recent for this session (RFC 3501 §2.3.2).

        Under the write lock every message not yet marked old is marked old,
        so exactly one session reports it as \\Recent. Returns those UIDs.
        A read-only session claims nothing and sees them as recent; so does
        one that cannot write now (a full disk must not refuse SELECT).
        """
        if self.readonly or self.fd is None:
            return self._unclaimed()
        try:
            with self._write_lock(), self._undone_on_failure():
                # UW writes its pseudo-message into an empty file opened
                # read-write, so that the UIDVALIDITY lasts (§6).
                self.dirty = self.dirty or self.size == 0
                recent = self._unclaimed()
                for message in self.messages:
                    if not message.flags & fmt.OLD:
                        message.flags |= fmt.OLD
                        self._mark_dirty(message)
                self._write_changes()
        except StoreError as error:
            # Without a UID base in the file our UIDVALIDITY is made up, and the
            # next writer (a POP3 QUIT) would make up another: refuse as before.
            if error.kind not in (StoreError.TEMPORARY, StoreError.IN_USE) or self.dirty:
                raise
            self.store.log("warning", "cannot mark new mail in %s as seen: %s"
                           % (self.path, error))
            return self._unclaimed()
        return recent

    def _unclaimed(self):
        return UidSet(m.uid for m in self.messages if not m.flags & fmt.OLD)

    def store_flags(self, uids, mode, bits, keywords, unchanged_since=None):
        """Add (+), remove (-) or set ("") flags and keywords on messages by UID.

        Applied to the file's current state under the write lock, so a change
        another session made meanwhile to other flags is kept. UIDs expunged
        meanwhile are skipped. Returns the UIDs left alone because their
        modseq is above unchanged_since (RFC 7162 §3.1.3).
        """
        wanted = set(uids)
        with self._write_lock(), self._undone_on_failure():
            refused = modseq.refused(self.modseqs, self.uidvalidity, self.messages, wanted,
                                     unchanged_since)
            if mode != "-":
                self._add_keywords(keywords)
            for message in self._messages_by_uid(wanted - refused):
                self._apply_flags(message, mode, bits, keywords)
            self._write_changes()
        return refused

    def expunge(self, uids=None):
        """Remove \\Deleted messages (only those in uids if given); return their UIDs."""
        with self._write_lock(), self._undone_on_failure():
            doomed = [m for m in self.messages if m.flags & fmt.DELETED
                      and (uids is None or m.uid in uids)]
            if doomed:
                self._rewrite({id(m) for m in doomed})
            else:
                self._write_changes()
        return [m.uid for m in doomed]

    def append(self, items):
        """Append messages; items are (data, flag bits, keywords, (unix time, zone minutes)).

        Returns the new UIDs. The new text and the raised UID base go through
        one journal with any pending header patches: a `kill -9` or a full
        disk leaves either all of it or none, never a torn message that
        would swallow the MTA's next delivery.
        """
        self._prepare_append()
        with self._write_lock(), self._undone_on_failure():
            numbered = [(uid,) + tuple(item) for uid, item in enumerate(items, self.last_uid + 1)]
            self._append_numbered(numbered)
        return [item[0] for item in numbered]

    def _prepare_append(self):
        if self.readonly:
            raise StoreError(StoreError.NO_PERMISSION, "mailbox is read-only")
        if self.fd is None:
            self._create_file()

    def _append_numbered(self, numbered, last_uid=0):
        """Under the write lock: append (uid, data, bits, keywords, date) items with those
        UIDs (rising, above the last UID), raising the last UID to cover them and last_uid."""
        for item in numbered:
            self._add_keywords(item[3])
        self.last_uid = max([self.last_uid, last_uid] + [item[0] for item in numbered])
        self.dirty = True
        self._rewrite(set(), appended=_NewMail(self, numbered) if numbered else None)
        if numbered:
            now = time.time()
            os.utime(self.fd, (now - 1, now))  # new mail: mtime after atime, UW's \\Marked

    def _separator(self):
        """What must come before a new From_ line: the file must end in a blank line."""
        if self.size == 0:
            return b""
        tail = os.pread(self.fd, 2, self.size - 2) if self.size >= 2 else b"\n"
        return b"" if tail == b"\n\n" else (b"\n" if tail.endswith(b"\n") else b"\n\n")

    @contextlib.contextmanager
    def _write_lock(self):
        """The write lock, with the messages re-read if anyone changed the file."""
        if self.readonly:
            raise StoreError(StoreError.NO_PERMISSION, "mailbox is read-only")
        self.store.ensure_index_dir()
        with self._lock(exclusive=True):
            if self.changed():
                self._reload()
            yield

    def _reload(self):
        """Under a lock: read the file again after someone else's change."""
        st = os.fstat(self.fd)
        if (st.st_dev, st.st_ino) != self.identity:
            raise StoreError(StoreError.TEMPORARY, "mailbox was replaced by another program")
        if not self._reload_changed_parts(st.st_size):
            self._map_and_parse()

    def _reload_changed_parts(self, size):
        """Re-read only what another process changed, when that is all it did: mail
        appended (an MTA, another session's APPEND) and same-size header patches
        (another session's flags, RFC 2180). False when anything moved: then the
        whole file must be read again (a rewrite, an expunge, a foreign program).

        A message counts as changed when the hash of its From_ line and header
        differs from when it was read; it is re-read alone, and must still end
        its header where it did. The result is what a full read would give.
        """
        self.reads += 1
        known = ([self.pseudo] if self.pseudo else []) + self.messages
        # UIDs given in memory only (mail not yet numbered in the file) could
        # come out otherwise in a full read: then take that.
        if self.map is None or size < self.size or len(self.messages) < 2 or self.dirty \
                or self._dirty_messages() or any(m.check is None for m in known):
            return False
        self._remap(size)
        changed = fmt.changed_messages(self.map, known)
        if not (self._rescan_patched(changed) and self._take_file_base()
                and self._take_patched_metadata(changed)):
            return False
        # New mail can change where the last known message ends (the separator
        # before the new From_ line), so that one is read again with it.
        last = self.messages.pop()
        self._layout_changed(removed=[last])
        return (self._start_of_new_mail(last.start) == last.start
                and self._take_new_messages(last.start, True, self.messages[-1].uid, changed))

    def _rescan_patched(self, changed):
        """Re-find the metadata lines of messages patched in place; False if more than
        their headers' content changed (a header that grew or shrank moved data)."""
        for message in changed:
            old = (message.header, message.body)
            fresh = self._rescan_header(message)
            if (fresh.header, fresh.body) != old or not fmt.from_line_at(self.map, message.start):
                return False
        return True

    def _take_patched_metadata(self, changed):
        """Flags and keywords of the patched messages, as a full read takes them; False
        if a patch gave one another X-UID (then only a full read is right)."""
        known = set(self.keywords)
        for message in changed:
            if message is self.pseudo:
                continue
            meta = self._take_metadata(message, known)
            if meta.uid and meta.uid.isdigit() and int(meta.uid) != message.uid:
                return False
        return True

    def _file_base(self):
        """(uidvalidity, last UID, keywords) as the file holds them now, or None."""
        first = self.pseudo or (self.messages[0] if self.messages else None)
        if first is None:
            return None
        meta = fmt.read_meta(self.map, first)
        line = meta.imap if self.pseudo else meta.imapbase
        return fmt.parse_base(line) if line is not None else None

    def _take_file_base(self):
        """The UID base as a full read takes it (pseudo-message or message 1); False if
        there is none (a full read numbers the mail anew) or its UIDVALIDITY changed."""
        base = self._file_base()
        if base is None or base[0] != self.uidvalidity:
            return False
        self.last_uid = max(base[1], self.messages[-1].uid)
        self.keywords = list(base[2])
        return True

    def _write_changes(self):
        """Write dirty headers and the UID base, if anything changed."""
        if self.dirty or self._dirty_messages():
            self._rewrite(set())

    def _add_keywords(self, keywords):
        new = [k for k in keywords if k not in self.keywords]
        if not new:
            return
        if len(self.keywords) + len(new) > MAX_KEYWORDS:
            raise StoreError(StoreError.NO_PERMISSION, "too many keywords in this mailbox")
        self.keywords.extend(new)
        self.dirty = True

    def _apply_flags(self, message, mode, bits, keywords):
        if mode == "+":
            flags, names = message.flags | bits, message.keywords + tuple(
                k for k in keywords if k not in message.keywords)
        elif mode == "-":
            flags = message.flags & ~bits
            names = tuple(k for k in message.keywords if k not in keywords)
        else:
            flags, names = (message.flags & fmt.OLD) | bits, tuple(dict.fromkeys(keywords))
        if (flags, names) != (message.flags, message.keywords):
            message.flags, message.keywords = flags, names
            self._mark_dirty(message)

    def _open_created(self):
        """The file did not exist at open; it does now (a first delivery)."""
        self.open()

    def _create_file(self):
        """Create a missing INBOX spool file for a first APPEND (mode 0600, as MTAs do)."""
        try:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
            os.close(fd)
        except FileExistsError:
            pass
        except OSError as error:
            raise StoreError(StoreError.NO_PERMISSION, "cannot create mailbox: %s"
                             % error.strerror) from None
        self.open()

    # -- writing ---------------------------------------------------------

    def commit(self, seen_uids=(), expunge=False):
        """Write flag changes back, expunge \\Deleted mail if asked, keep new deliveries.

        Under the write lock the file is re-checked: appended mail is parsed
        and kept; a file that shrank or was replaced is refused, not written.
        """
        if self.readonly or self.fd is None:
            return 0
        self.store.ensure_index_dir()
        with self._lock(exclusive=True), self._undone_on_failure():
            self._catch_up()
            for message in self.messages:
                if message.uid in seen_uids and not message.flags & fmt.SEEN:
                    message.flags |= fmt.SEEN
                    self._mark_dirty(message)
                if not message.flags & fmt.OLD:
                    message.flags |= fmt.OLD
                    self._mark_dirty(message)
            # A commit visits every message anyway, so it also writes changes
            # made on the message objects directly (POP3's DELE marks them).
            self._touched = [m for m in self.messages if m.dirty]
            doomed = [m for m in self.messages if expunge and m.flags & fmt.DELETED]
            if not (self.dirty or doomed or self._touched):
                return 0
            self._rewrite({id(m) for m in doomed})
        return len(doomed)

    def _catch_up(self):
        """Under the write lock: parse mail appended since we last looked."""
        st = os.fstat(self.fd)
        if (st.st_dev, st.st_ino) != self.identity:
            raise StoreError(StoreError.TEMPORARY, "mailbox was replaced by another program")
        if st.st_size < self.size:
            raise StoreError(StoreError.TEMPORARY, "mailbox shrank from %d to %d bytes"
                             % (self.size, st.st_size))
        if st.st_size == self.size:
            # An unchanged stamp is trusted here as in _write_lock: hashing every
            # From_ line (O(mailbox)) only to learn that nobody wrote is not needed.
            if self.changed():
                self._check_layout()
            return
        old_size = self._remap(st.st_size)
        self._check_layout()
        start = self._start_of_new_mail(old_size)
        if old_size and start is None:
            raise StoreError(StoreError.TEMPORARY, "unexpected changes to mailbox")
        if old_size == 0:
            self._map_and_parse()
            return
        # Another session may have numbered the new mail already (its X-UIDs and a
        # raised base): trust them as a full read would, or this commit would
        # number them again with our older last UID and give two UIDs one message.
        base = self._file_base()
        if base is not None and base[0] != self.uidvalidity:
            raise StoreError(StoreError.TEMPORARY, "mailbox was renumbered by another program")
        if base is not None:
            self.last_uid = max(self.last_uid, base[1])
            self.keywords = list(base[2]) + [k for k in self.keywords if k not in base[2]]
        previous = self.messages[-1].uid if self.messages else 0
        if not self._take_new_messages(start, base is not None, previous):
            raise StoreError(StoreError.TEMPORARY, "unexpected UIDs in new mail")

    def _parse_appended(self, old_size):
        """After our own journalled append: parse the new messages, whose UIDs we wrote."""
        self._remap(os.fstat(self.fd).st_size)
        start = self._start_of_new_mail(old_size)
        previous = self.messages[-1].uid if self.messages else 0
        if start is None or not self._take_new_messages(start, True, previous):
            self._map_and_parse()

    def _remap(self, size):
        """Map the file again at its new size; return the old size."""
        old_size = self.size
        self._unmap()
        self.size = size
        self.map = mmap.mmap(self.fd, self.size, prot=mmap.PROT_READ)
        return old_size

    def _start_of_new_mail(self, old_size):
        """Where the first message past old_size starts, or None if none starts there."""
        start = old_size + fmt.skip_leading_whitespace(self.map[old_size:old_size + 4096])
        return start if fmt.from_line_at(self.map, start) else None

    def _take_new_messages(self, start, trusted, previous=0, changed=()):
        """Scan the messages from `start` on and add them; False if their UIDs are out of order.

        For modseqs only the new messages and `changed` are compared with what
        was recorded (None: all of them, when messages may have gone).
        """
        fresh = fmt.scan(self.map, start)
        if not self._assign_uids(fresh, trusted, previous):
            return False
        self.messages.extend(fresh)
        self._layout_changed(added=fresh)
        self.reads += 1
        if changed is not None:
            self._modseq_candidates = [m for m in changed if m is not self.pseudo] + fresh
        self._parsed()
        return True

    def _check_layout(self):
        """Refuse to write when another program rewrote what we parsed (UW aborts too)."""
        if self.layout is not None and self._layout_digest() != self.layout:
            raise StoreError(StoreError.TEMPORARY, "mailbox was rewritten by another program")

    def _rewrite(self, doomed, appended=None):
        """Compute the new file, journal it, then write it in place.

        `appended` is new mail to put after the last message, in the same
        journal as the header patches (and the UID base that counts it).
        """
        patches, tail_from = self._plan(doomed)
        moves = tail_from is not None
        if moves and self.session_lock is None:
            self._wait_for_no_pop3_session()
        path = self.store.journal_path(self.path, self.identity)
        old_size = self.size
        placed = _Placements()  # where each message of the tail lands
        # The moved messages' old share of the layout, read while the old bytes are there.
        moved_layout = self._layout_part(self._known_from(tail_from)) if moves else 0
        try:
            # An expunge moves mail down: the moves form copies it once, in
            # place; anything else (or too small a gap) takes the full form.
            if not (moves and journal_moves.write_journal(
                    path, self.identity, patches, tail_from,
                    self._tail_pieces(tail_from, doomed, appended, placed), self.size)):
                placed = _Placements()
                writes = []
                if moves:
                    writes.append((tail_from,
                                   self._tail_chunks(tail_from, doomed, appended, placed)))
                elif appended:
                    writes.append((self.size, itertools.chain([self._separator()],
                                                              appended.chunks())))
                journal.write_journal(path, self.identity, writes, self.size,
                                      moves or bool(appended), patches)
            del patches  # done with: what follows re-reads the file
            journal.apply(self.fd, path)
        except OSError as error:
            raise StoreError(StoreError.TEMPORARY, "cannot update mailbox: %s"
                             % error.strerror) from None
        now = time.time()
        os.utime(self.fd, (now, now - 1))  # UW: atime > mtime means "read"
        if doomed:
            self.messages = [m for m in self.messages if id(m) not in doomed]
        if moves:
            self._reparse_from(tail_from, placed, appended, moved_layout, bool(doomed))
        else:
            self._after_patches()
            if appended:
                self._parse_appended(old_size)
        self.dirty = False

    def _known_from(self, offset):
        """The pseudo-message and messages that start at or after offset."""
        known = ([self.pseudo] if self.pseudo else []) + self.messages
        return [m for m in known if m.start >= offset]

    def _reparse_from(self, tail_from, placed, appended, moved_layout, expunged):
        """After a rewrite that moved data from tail_from on: re-read only from there.

        The messages before tail_from kept their place (some got same-size
        patches); those after it were written by us with their UIDs.  Those
        copied byte for byte (`placed` says where to) are only shifted: a scan
        of a 1 GB tail costs more than the move.  The rest are scanned again.
        `moved_layout` is the old layout share of the tail; after an expunge
        (`expunged`) every message is compared for modseqs, to find the gone.
        """
        self.reads += 1
        keep = [m for m in self.messages if m.start < tail_from]
        if self.layout is not None:
            self.layout = (self.layout - moved_layout) & _LAYOUT_MASK
        if placed and not appended and not (tail_from == 0 and self.pseudo):
            self._place_tail(keep, tail_from, placed, expunged)
            return
        if not keep or tail_from <= keep[0].start:
            self._map_and_parse()
            return
        patched = self._rescan_kept(keep, tail_from)
        changed = None if expunged else keep[:1] + patched
        if not self._take_new_messages(tail_from, True, keep[-1].uid, changed):
            self._map_and_parse()

    def _rescan_kept(self, keep, tail_from):
        """The messages before the moved tail: re-find the metadata we patched in place."""
        patched = [m for m in self._dirty_messages() if m.start < tail_from]
        self.messages, self._touched = keep, []
        self._remap(os.fstat(self.fd).st_size)
        for message in ([self.pseudo] if self.pseudo else []) + keep[:1] + patched:
            self._rescan_header(message)
            message.dirty = False
        return patched

    def _place_tail(self, keep, tail_from, placed, expunged):
        """Take the moved messages at their new offsets, as a scan of the file would find them."""
        patched = self._rescan_kept(keep, tail_from)
        for message, start, header_length, other_size in placed:
            if header_length == _Placements.SAME:
                message.moved(start - message.start)
            elif header_length == _Placements.SCAN:
                fresh = fmt.scan_message(self.map, start)[0]
                fresh.size = fmt.compute_size(self.map, fresh)
                message._where, message.check = fresh._where, fresh.check
                self._note_read(message.end - message.start)
            else:
                fresh = fmt.with_new_header(self.map, start, header_length,
                                            message.end - message.body, 0)
                fresh.size = other_size + fmt.header_size(self.map, fresh)
                message._where, message.check = fresh._where, fresh.check
                self._note_read(header_length)
            message.dirty = False
        self.messages = keep + placed.messages
        self._layout_changed(added=placed.messages)
        if not expunged:
            self._modseq_candidates = keep[:1] + patched + placed.messages
        self._parsed()

    @contextlib.contextmanager
    def _undone_on_failure(self):
        """Under the write lock: if the write fails, forget the in-memory changes.

        Flags, keywords and UIDs are changed on the parsed messages before the
        journal is written; a refused write (full disk, a POP3 session, a
        foreign rewrite) must not leave them looking done, or a later write
        would store what the client was told failed.
        """
        before = self.uidvalidity, self.last_uid  # what an empty file's re-read keeps
        try:
            yield
        except StoreError:
            self.uidvalidity, self.last_uid = before
            self._map_and_parse()
            raise

    def _wait_for_no_pop3_session(self):
        """Refuse to move data while a POP3 session holds the file (IN_USE).

        A POP3 session reads by the offsets it parsed at login, without a lock,
        as UW's does; moving messages under it would garble what it sends.
        Header patches move nothing and go ahead.
        """
        if held_elsewhere(self.fd):
            raise StoreError(StoreError.IN_USE, "a POP3 session holds the mailbox")

    def _after_patches(self):
        """Same-size header patches moved no message: re-find only the patched metadata."""
        patched = self._dirty_messages()
        self._modseq_candidates = patched
        for message in ([self.pseudo] if self.pseudo else []) + self.messages[:1] + patched:
            self._rescan_header(message)
            message.dirty = False
        self._touched = []
        self._parsed()

    def _rescan_header(self, message):
        """Re-read where a message's metadata lines are after a same-size header change."""
        self._note_read(message.body - message.start)
        fresh = fmt.scan_message(self.map, message.start)[0]
        message.hidden, message.check = fresh.hidden, fresh.check
        return fresh

    def _plan(self, doomed):
        """The same-size header patches (a journal.PatchList) before the first byte that
        moves, and that offset (None if nothing moves): the tail from there on is rewritten."""
        writes = journal.PatchList()
        if all(id(m) in doomed for m in self.messages) and not self.pseudo:
            return writes, 0  # just the pseudo-message (see _tail_pieces)
        tail_from = self._plan_pseudo(writes)
        need_base = self.pseudo is None
        for message in self._plan_candidates(doomed):
            if tail_from is not None:
                break
            if id(message) in doomed:
                tail_from = message.start
                break
            base = self._base_line() if need_base else None
            need_base = False
            if not (message.dirty or base):
                continue
            region = self._header_region(message, base)
            if region is None:
                continue
            if len(region) != message.body - message.header:
                tail_from = message.start
            else:
                patch = _changed_part(region, self.map[message.header:message.body])
                if patch is not None:
                    writes.append((message.header + patch[0], patch[1]))
        return writes, tail_from

    def _plan_candidates(self, doomed):
        """The messages _plan must visit, in file order: all when some are doomed,
        else message 1 (it may carry X-IMAPbase) and the dirty ones."""
        if doomed:
            return self.messages
        first = self.messages[:1]
        rest = [m for m in self._dirty_messages() if not first or m is not first[0]]
        return first + sorted(rest, key=lambda m: m.start)

    def _mark_dirty(self, message):
        message.dirty = True
        self._touched.append(message)

    def _dirty_messages(self):
        """The messages with unwritten changes, each once."""
        seen = set()
        dirty = []
        for message in self._touched:
            if message.dirty and id(message) not in seen:
                seen.add(id(message))
                dirty.append(message)
        return dirty

    def _messages_by_uid(self, uids):
        """The messages with these UIDs (those still here), cheaply for a few."""
        if len(uids) * 8 < len(self.messages):
            found = (self.by_uid(uid) for uid in sorted(uids))
            return [m for m in found if m is not None]
        return [m for m in self.messages if m.uid in uids]

    def _base_line(self):
        """X-IMAPbase for message 1; the last UID padded so it can change in place."""
        return fmt.base_line(self.uidvalidity, self.last_uid, self.keywords, padded=True)

    def _plan_pseudo(self, writes):
        """Patch the pseudo-message's X-IMAP line; 0 (rewrite all) if its size changes."""
        if not self.pseudo:
            return None
        line = fmt.base_line(self.uidvalidity, self.last_uid, self.keywords, b"X-IMAP")
        for start, end in self.pseudo.hidden:
            if self.map[start:start + 7] == b"X-IMAP:":
                if end - start == len(line):
                    if self.map[start:end] != line:
                        writes.append((start, line))
                    return None
        return 0

    def _tail_chunks(self, tail_from, doomed, appended, placed):
        """The rewritten file from tail_from on as bytes, in bounded chunks (the full form)."""
        for kind, where, length in self._tail_pieces(tail_from, doomed, appended, placed):
            if kind == "l":
                yield where
                continue
            for pos in range(where, where + length, journal.CHUNK):
                yield self._read(pos, min(where + length, pos + journal.CHUNK))

    def _tail_pieces(self, tail_from, doomed, appended, placed):
        """The rewritten file from tail_from on, then `appended`: ("c", offset, length)
        for bytes copied from the file as they are, ("l", bytes, length) for new ones.
        Neighbouring pieces of one kind are merged (a message left alone, its
        separator and the next one are one copy).  `placed` (_Placements) learns
        where each message of the tail lands."""
        pending = None
        for piece in self._raw_tail_pieces(tail_from, doomed, appended, placed):
            if not piece[2]:
                continue
            if pending is None:
                pending = piece
            elif piece[0] == pending[0] == "c" and pending[1] + pending[2] == piece[1]:
                pending = ("c", pending[1], pending[2] + piece[2])
            elif piece[0] == pending[0] == "l" and pending[2] < journal.CHUNK:
                pending = ("l", pending[1] + piece[1], pending[2] + piece[2])
            else:
                yield pending
                pending = piece
        if pending is not None:
            yield pending

    def _raw_tail_pieces(self, tail_from, doomed, appended, placed):
        need_base = self.pseudo is None
        at = tail_from  # where the next piece lands
        if tail_from == 0 and (self.pseudo or len(doomed) == len(self.messages)):
            pseudo = fmt.pseudo_message(self.uidvalidity, self.last_uid, self.keywords,
                                        os.uname().nodename)
            yield "l", pseudo, len(pseudo)
            at += len(pseudo)
        for message in self.messages:
            if id(message) in doomed:
                continue
            base = self._base_line() if need_base else None
            need_base = False
            if message.start < tail_from:
                continue
            start, body, end = message.start, message.body, message.end
            self._note_read(end - start)
            header = self._header_region(message, base)
            # The separator: the file's own empty line when it has one.
            if end > body and self.map[end - 1:end] != b"\n":
                separator = ("l", b"\n\n", 2)
            elif self.map[end:end + 1] == b"\n":
                separator = ("c", end, 1)
            else:
                separator = ("l", b"\n", 1)
            if not (separator[0] == "c" and end > body):
                placed.add(message, at, _Placements.SCAN)
            elif header is None:
                placed.add(message, at, _Placements.SAME)
            else:
                placed.add(message, at, len(header),
                           message.size - fmt.header_size(self.map, message))
            if header is None:
                yield "c", start, body - start
            else:
                yield "c", start, message.header - start
                yield "l", header, len(header)
            yield "c", body, end - body
            yield separator
            at += end - start + separator[2] + (0 if header is None
                                                else len(header) - (body - message.header))
        if appended:
            for chunk in appended.chunks():
                yield "l", chunk, len(chunk)

    def _header_region(self, message, base):
        """The header to write: None to keep it as on disk, else the bytes.

        Another session may have patched a message's flags in place since we
        parsed it (RFC 2180); rendering our stale copy would undo that.  Only
        X-IMAPbase, if it must change, is replaced when its size allows.
        """
        ends = self.map[max(message.header, message.body - 3):message.body]
        if message.dirty or not ends.endswith((b"\n\n", b"\n\r\n")):
            return self._render_header(message, base)
        if base is None:
            return None
        region = self._read(message.header, message.body)
        for start, end in message.hidden:
            if self.map[start:start + 11] == b"X-IMAPbase:" and end - start == len(base):
                offset = start - message.header
                return region[:offset] + base + region[offset + len(base):]
        return self._render_header(message, base)

    def _render_header(self, message, base):
        """Visible header lines, then UW's metadata block, then the empty line."""
        visible = []
        pos = message.header
        for hstart, hend in message.hidden:
            visible.append(self._read(pos, hstart))
            pos = hend
        end_of_header = message.body
        blank = self.map[end_of_header - 2:end_of_header] == b"\r\n" and 2 or 1
        blank_start = end_of_header - blank if message.body > message.header else message.header
        if pos < blank_start:
            visible.append(self.map[pos:blank_start])
        text = b"".join(visible)
        if text and not text.endswith(b"\n"):
            text += b"\n"
        return text + fmt.status_block(message, message.keywords, base) + b"\n"

    def close(self):
        """Release the file; nothing is written to it (the index sidecar may be)."""
        if self.fd is not None:
            self._save_index()
            self._save_field_cache()
        if self.session_lock:
            self.session_lock.release()
            self.session_lock = None
        self._unmap()
        self.modseqs.close()
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None


def _changed_part(new, old):
    """(offset, bytes) of the part of `new` that differs from the same-size `old`, or None.

    A POP3 QUIT that sets \\Seen on 100,000 messages patches each one's status
    block; holding every whole header until the journal is written took
    150 MB, the changed lines take a tenth of that.
    """
    if new == old:
        return None
    first, step = 0, 64
    while new[first:first + step] == old[first:first + step]:
        first += step
    while new[first] == old[first]:
        first += 1
    last = len(new)
    while new[last - step:last] == old[last - step:last] and last - step > first:
        last -= step
    while new[last - 1] == old[last - 1]:
        last -= 1
    return first, new[first:last]


# The layout sum is kept to 64 bits.
_LAYOUT_MASK = (1 << 64) - 1


class _Placements:
    """Where each message of a rewritten tail lands, and how to find it there without
    scanning the file again: SAME (copied byte for byte: shifted), a header length
    (only the header is new: that header is read, the rest of the size kept), or SCAN.
    Packed, as a 100,000-message tail would otherwise take tens of MB of tuples."""

    SAME, SCAN = -1, -2

    def __init__(self):
        self.messages = []
        self._numbers = array("q")  # start, header length or SAME/SCAN, size less header

    def add(self, message, start, header_length, other_size=0):
        self.messages.append(message)
        self._numbers.extend((start, header_length, other_size))

    def __bool__(self):
        return bool(self.messages)

    def __iter__(self):
        numbers = self._numbers
        for index, message in enumerate(self.messages):
            yield (message,) + tuple(numbers[3 * index:3 * index + 3])


class _NewMail:
    """The mbox text of messages being appended, rendered afresh each time it is read.

    A rewrite may read it twice (a moves-form journal that does not fit
    falls back to the full form), and a COPY of large messages hands them
    over as FileText: nothing here holds more than a piece at a time.
    """

    def __init__(self, mailbox, numbered):
        self.mailbox, self.numbered = mailbox, numbered
        self.sender = "%s@%s" % (mailbox.store.user, os.uname().nodename)

    def chunks(self):
        for uid, data, bits, keywords, date in self.numbered:
            message = fmt.Message(0, 0, 0, 0, ())
            message.uid, message.flags = uid, bits
            message.keywords = tuple(k for k in keywords if k in self.mailbox.keywords)
            yield from fmt.append_pieces(chunks_of(data), format_from_line(self.sender, *date),
                                         message)


def _privileged_factory():
    """server.privileges.privileged_group_effective when a saved mail group exists."""
    try:
        from server.privileges import privileged_gid, privileged_group_effective
    except ImportError:
        return None
    return privileged_group_effective if privileged_gid() is not None else None
