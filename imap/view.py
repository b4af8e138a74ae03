"""The selected mailbox as one session sees it (RFC 3501 §2.3.1.2, RFC 2180).

Message numbers belong to the session: they change only when this session
reports EXPUNGE. The mailbox underneath may change at any time (another
session, an MTA); `report_changes` tells the client at the points where
IMAP allows it.
"""

import bisect
import datetime

from imap.command import SAVED_RESULT
from imap.contexts import UpdateContexts
from imap.reported import ReportedFlags, reported_flags
from mailstore import StoreError
from mailstore import mboxformat as fmt
from mailstore.uidset import UidSet

SYSTEM_FLAGS = {"\\Seen": fmt.SEEN, "\\Answered": fmt.ANSWERED, "\\Flagged": fmt.FLAGGED,
                "\\Deleted": fmt.DELETED, "\\Draft": fmt.DRAFT}
# Messages of this RFC822.SIZE and more are parsed where they lie (imap.plaintext)
# rather than copied into one bytes object; smaller ones are faster copied.
PARSE_IN_PLACE_FROM = 1 << 20
FLAG_LIST = b"\\Answered \\Flagged \\Deleted \\Draft \\Seen"


def split_flags(names):
    """(system flag bits, keywords) from flag names; \\Recent cannot be set (RFC 3501 §2.3.2)."""
    bits, keywords = 0, []
    for name in names:
        if name in SYSTEM_FLAGS:
            bits |= SYSTEM_FLAGS[name]
        elif not name.startswith("\\") and name not in keywords:
            keywords.append(name)
    return bits, tuple(keywords)


def flag_names(flags, keywords, recent):
    """The flag names of a message, as a list of str."""
    names = [name for name, bit in SYSTEM_FLAGS.items() if flags & bit]
    names.extend(keywords)
    if recent:
        names.append("\\Recent")
    return names


def flags_announcement(keywords, readonly):
    """The untagged FLAGS and PERMANENTFLAGS lines for a mailbox's keywords."""
    words = b"".join(k.encode() + b" " for k in keywords)
    if readonly:
        permanent = b"OK [PERMANENTFLAGS ()] No permanent flags permitted"
    else:
        permanent = b"OK [PERMANENTFLAGS (" + words + b"\\* " + FLAG_LIST + b")] Permanent flags"
    return [b"FLAGS (" + words + FLAG_LIST + b")", permanent]


def flags_item(flags, keywords, recent):
    """`FLAGS (...)` as FETCH sends it."""
    return b"FLAGS (" + " ".join(flag_names(flags, keywords, recent)).encode() + b")"


class MessageView:
    """One message as FETCH, SEARCH and SORT read it: numbers, flags, CRLF text.

    The text is read once and kept, in the wire's CRLF form whose length is
    RFC822.SIZE (mbox-compat.md §9).
    """

    __slots__ = ("mailbox", "stored", "seq", "uid", "recent", "_text", "_header", "_parsed")

    def __init__(self, mailbox, stored, seq, recent):
        self.mailbox, self.stored, self.seq = mailbox, stored, seq
        self.uid, self.recent = stored.uid, recent
        self._text = self._header = self._parsed = None

    @property
    def flags(self):
        return frozenset(flag_names(self.stored.flags, self.stored.keywords, self.recent))

    @property
    def size(self):
        return self.stored.size

    @property
    def modseq(self):
        """MODSEQ (RFC 7162 §3.1.4.2), from the mailbox's shared modseq file."""
        return self.mailbox.modseqs.of(self.uid)

    @property
    def internal_date(self):
        seconds, offset = self.mailbox.internal_date(self.stored)
        zone = datetime.timezone(datetime.timedelta(minutes=offset))
        return datetime.datetime.fromtimestamp(seconds, zone)

    def cached(self, kind, compute):
        """A value computed from this message's text, from the mailbox's cache when it has one."""
        return self.mailbox.cached(self.stored, kind, compute)

    def header(self):
        if self._header is None:
            self._header = wire_form(self.mailbox.header_bytes(self.stored))
        return self._header

    def message(self):
        if self._text is None:
            self._text = wire_form(self.mailbox.message_text(self.stored))
        return self._text

    def parsed_text(self):
        """What imap.mime reads: a large message in place (imap.plaintext), else message()."""
        if self._parsed is None:
            if self.stored.size >= PARSE_IN_PLACE_FROM:
                from imap.plaintext import plain_text

                self._parsed = plain_text(self.mailbox, self.stored)
            if self._parsed is None:
                self._parsed = self.message()
        return self._parsed

    def large_text(self):
        """parsed_text() when it is read in place, else None."""
        text = self.parsed_text() if self.stored.size >= PARSE_IN_PLACE_FROM else None
        return None if text is None or isinstance(text, bytes) else text


def wire_form(data):
    """Stored text as clients get it: CRs dropped, LF as CRLF, a last line terminated."""
    text = data.replace(b"\r", b"").replace(b"\n", b"\r\n")
    if text and not text.endswith(b"\n"):
        text += b"\r\n"
    return text


class Targets:
    """The (number, uid) pairs a command names, made as they are iterated (any number
    of times): FETCH 1:* of 100,000 messages as a list of pairs would take 10 MB.

    `spans` are inclusive (first, last) positions in `uids`, the session's numbering
    when the command began (EXPUNGE replaces that list, new mail only extends it).
    """

    __slots__ = ("uids", "spans")

    def __init__(self, uids, spans):
        self.uids, self.spans = uids, spans

    def __iter__(self):
        uids = self.uids
        for first, last in self.spans:
            for position in range(first, last + 1):
                yield position + 1, uids[position]

    def __len__(self):
        return sum(last - first + 1 for first, last in self.spans)


class SelectedMailbox:
    """The session's numbering of one open mailbox and what it has told the client."""

    def __init__(self, session, mailbox, name, readonly):
        self.session, self.mailbox, self.name = session, mailbox, name
        self.readonly = readonly
        self.uids = []
        self.recent = UidSet()
        self.reported = ReportedFlags()
        self.stamp = None
        self.reads = None
        self.uidvalidity = 0
        self.keywords = []
        self.expunge_deferred = False
        # RFC 5182: `$`, the UIDs the last SEARCH RETURN (SAVE) kept; a new
        # SELECT starts a new SelectedMailbox, which resets it to empty.
        self.saved = frozenset()
        self.contexts = UpdateContexts(self)
        # IMAP4rev2 has no \\Recent (RFC 9051 §2.3.2): such a session claims
        # none, so the mail stays new for a legacy session.
        self.track_recent = not session.rev2
        # With CONDSTORE (RFC 7162): the MODSEQ the client has of each message, so that
        # a change shows even when the flags came back to what they were. None: off.
        self.told_modseqs = None

    def open(self):
        """Claim \\Recent for new mail and take the current messages as the numbering."""
        if self.track_recent:
            self.recent = UidSet(self.mailbox.claim_recent())
        self.keywords = list(self.mailbox.keywords)
        self.uidvalidity = self.mailbox.uidvalidity
        self.uids = [m.uid for m in self.mailbox.messages]
        self.remember_all()
        if self.session.condstore:
            from imap import condstore

            condstore.start_modseqs(self)

    def close(self):
        self.mailbox.close()

    def forget_recent(self):
        """The client enabled IMAP4rev2 while this mailbox was selected."""
        self.recent, self.track_recent = UidSet(), False

    def remember_all(self):
        self.reported = ReportedFlags(self.mailbox.messages)
        self.stamp = self.mailbox.stamp
        self.reads = getattr(self.mailbox, "reads", None)

    # -- numbers --------------------------------------------------------

    def number(self, uid):
        # UIDs ascend with message numbers (RFC 3501 §2.3.1.1): no dict per message.
        position = bisect.bisect_left(self.uids, uid)
        if position < len(self.uids) and self.uids[position] == uid:
            return position + 1
        return None

    def resolve(self, sequence_set, by_uid):
        """[(number, uid)] named by a sequence set or UID set (RFC 3501 §9 seq-number)."""
        from imap import sequence
        from imap.session import Bad

        if sequence_set == SAVED_RESULT:
            # The same messages by number or by UID; expunged ones are no longer in it.
            return [(n, u) for n, u in enumerate(self.uids, 1) if u in self.saved]
        if by_uid:
            return Targets(self.uids, sequence.uid_position_spans(sequence_set, self.uids))
        try:
            spans = sequence.number_spans(sequence_set, len(self.uids))
        except sequence.SequenceError:
            raise Bad("Invalid message sequence number") from None
        return Targets(self.uids, [(low - 1, high - 1) for low, high in spans])

    def view_of(self, number, uid):
        """A MessageView, or None when the message was expunged by someone else."""
        stored = self.mailbox.by_uid(uid)
        return None if stored is None else MessageView(self.mailbox, stored, number,
                                                       uid in self.recent)

    def search_context(self, charset):
        """What SEARCH needs to know of this mailbox: "*", `$`, the time, the charset."""
        from imap.search import SearchContext

        return SearchContext(max_seq=len(self.uids), max_uid=self.uids[-1] if self.uids else 0,
                             charset=charset, saved=self.saved)

    def save(self, uids):
        """Make uids the saved search result `$` (RFC 5182 §2.1)."""
        self.saved = frozenset(uids)
        self.contexts.renumbered()

    def require_writable(self):
        from imap.session import No

        if self.readonly:
            raise No("Mailbox is read-only", "READ-ONLY")

    def stored_messages(self):
        """(uid, stored message or None if gone) for each of our UIDs: one walk of two
        ascending sequences, no lookup table."""
        messages, position = self.mailbox.messages, 0
        for uid in self.uids:
            while position < len(messages) and messages[position].uid < uid:
                position += 1
            found = position < len(messages) and messages[position].uid == uid
            yield uid, messages[position] if found else None

    # -- telling the client about changes ---------------------------------

    def report_changes(self, allow_expunge):
        """EXPUNGE, EXISTS/RECENT and FETCH FLAGS for what changed (RFC 3501 §7.4.1, §5.2)."""
        try:
            self.mailbox.refresh()
            if self.only_own_flag_changes() and not (allow_expunge and self.expunge_deferred):
                # STORE (or FETCH's \Seen) already told the client: no O(mailbox) walk.
                self.stamp = self.mailbox.stamp
            elif self.mailbox.stamp != self.stamp or (allow_expunge and self.expunge_deferred):
                self.report_mailbox_changes(allow_expunge)
            # After EXISTS, so ADDTO numbers are valid (RFC 5267 §4.3.3).
            self.contexts.refresh()
        except StoreError as error:
            self.session.log("warning", "cannot check mailbox for changes user=%s: %s"
                             % (self.session.user_name, error))

    def only_own_flag_changes(self):
        """True when the file changed only by this session's header patches since the
        last look: the store read nothing from it meanwhile (a store that cannot
        tell has no `reads`, and every change is looked at in full)."""
        reads = getattr(self.mailbox, "reads", None)
        return reads is not None and reads == self.reads and self.mailbox.stamp != self.stamp

    def report_mailbox_changes(self, allow_expunge):
        if self.mailbox.uidvalidity != self.uidvalidity:
            self.lost_uidvalidity()
        self.report_keywords()
        gone = [uid for uid, stored in self.stored_messages() if stored is None]
        if allow_expunge:
            self.report_expunged(gone)
        self.expunge_deferred = bool(gone) and not allow_expunge
        self.report_new_mail()
        if self.told_modseqs is None:
            self.report_flag_changes()
        else:
            from imap import condstore

            condstore.report_modseq_changes(self)

    def report_keywords(self):
        """New keywords change FLAGS and PERMANENTFLAGS (RFC 3501 §7.2.6; UW sends both)."""
        if self.mailbox.keywords == self.keywords:
            return
        self.keywords = list(self.mailbox.keywords)
        for line in flags_announcement(self.keywords, self.readonly):
            self.session.send_untagged(line)

    def lost_uidvalidity(self):
        """Another program renumbered the mailbox: the client must start again (RFC 3501 §2.3.1.1)."""
        from imap.session import CloseSession

        self.session.log("notice", "UIDVALIDITY of %s changed under user=%s"
                         % (self.name.decode("utf-8", "replace"), self.session.user_name))
        self.session.send(b"* BYE [ALERT] Mailbox was renumbered by another program\r\n")
        raise CloseSession()

    def report_expunged(self, uids):
        """`* n EXPUNGE` for each, highest number first so every number is current;
        once QRESYNC is enabled one `* VANISHED uid-set` instead (RFC 7162 §3.2.10)."""
        from imap.sequence import format_uid_set

        gone = set(uids)
        if not gone:
            return
        # REMOVEFROM goes first, while its message numbers are valid (RFC 5267 §4.3.4).
        self.contexts.expunging(gone)
        if self.session.qresync:
            self.session.send(b"* VANISHED " + format_uid_set(
                sorted(u for u in self.uids if u in gone)) + b"\r\n")
        else:
            for number in range(len(self.uids), 0, -1):
                if self.uids[number - 1] in gone:
                    self.session.send(b"* %d EXPUNGE\r\n" % number)
        self.uids = [u for u in self.uids if u not in gone]
        self.recent -= gone

    def report_new_mail(self):
        last = self.uids[-1] if self.uids else 0
        fresh = [m.uid for m in self.mailbox.messages if m.uid > last]
        if not fresh:
            return
        if not self.readonly and self.track_recent:
            self.recent |= self.mailbox.claim_recent()
        self.uids.extend(fresh)
        self.session.send(b"* %d EXISTS\r\n" % len(self.uids))
        if self.track_recent:
            self.session.send(b"* %d RECENT\r\n" % len(self.recent))
        notifier = self.session.notifier
        if notifier and notifier.new_mail_items():
            self.fetch_new_mail(fresh, notifier.new_mail_items())

    def fetch_new_mail(self, uids, items):
        """NOTIFY's MessageNew fetch attributes for each new message (RFC 5465 §5.1)."""
        from imap import fetch

        with self.mailbox.reading():
            for uid in uids:
                message = self.view_of(self.number(uid), uid)
                if message is not None:
                    self.session.send(b"* " + fetch.render(message, items, self.session.rev2)
                                      + b"\r\n")

    def report_flag_changes(self):
        for number, (uid, stored) in enumerate(self.stored_messages(), 1):
            if stored is None:
                continue
            now = reported_flags(stored)
            told = self.reported.get(uid)
            if told is None:
                self.reported[uid] = now  # new mail: nothing told yet, nothing to report
            elif told != now:
                # RFC 9051 §7.5.2: an unsolicited FETCH carries the UID.
                uid_item = b"UID %d " % uid if self.session.rev2 else b""
                self.session.send(b"* %d FETCH (%s%s)\r\n" % (
                    number, uid_item, flags_item(stored.flags & ~fmt.OLD, stored.keywords,
                                                 uid in self.recent)))
                self.contexts.touched((uid,))
                self.reported[uid] = now
        self.stamp = self.mailbox.stamp
        self.reads = getattr(self.mailbox, "reads", None)
