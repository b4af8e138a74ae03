"""CONDSTORE and QRESYNC (RFC 7162) as the session speaks them.

The modseqs come from the mailbox's shared file (mailstore.modseq, reached
as `mailbox.modseqs`); this module turns them into responses: HIGHESTMODSEQ
or NOMODSEQ, MODSEQ fetch items, VANISHED (EARLIER), and what SELECT
(QRESYNC ...) sends.
"""

from imap.command import SAVED_RESULT, FetchItem
from imap.sequence import format_uid_set
from imap.view import flags_item
from mailstore.mboxformat import OLD

MODSEQ_ITEM = FetchItem("MODSEQ")
UID_ITEM = FetchItem("UID")


def highest_response(mailbox):
    """The untagged OK of SELECT/EXAMINE (RFC 7162 §3.1.2.1, §3.1.2.2)."""
    if not mailbox.modseqs.available:
        return b"OK [NOMODSEQ] No permanent modsequences"
    return b"OK [HIGHESTMODSEQ %d] Highest" % mailbox.modseqs.highest


def status_value(mailbox):
    """STATUS HIGHESTMODSEQ: 0 for a mailbox without persistent modseqs (RFC 7162 §3.1.2.3)."""
    return mailbox.modseqs.highest if mailbox.modseqs.available else 0


def require_modseqs(session):
    """A command uses modseqs: enable CONDSTORE; BAD on a NOMODSEQ mailbox (RFC 7162 §3.1.2.2)."""
    from imap.session import Bad

    session.enable_condstore()
    if session.selected and not session.selected.mailbox.modseqs.available:
        raise Bad("This mailbox has no permanent modsequences")


def with_items(items, *extra):
    """items plus each of extra that is not among them."""
    names = {item.name for item in items}
    return tuple(items) + tuple(item for item in extra if item.name not in names)


def uses_modseq(key):
    """True when a search key has a MODSEQ criterion anywhere."""
    name = key[0]
    if name == "MODSEQ":
        return True
    if name == "NOT":
        return uses_modseq(key[1])
    if name == "OR":
        return uses_modseq(key[1]) or uses_modseq(key[2])
    if name == "AND":
        return any(uses_modseq(part) for part in key[1])
    return False


def highest_of(messages):
    """The highest MODSEQ of MessageViews, for SEARCH's `(MODSEQ n)` (RFC 7162 §3.1.5)."""
    return max((message.modseq for message in messages), default=None)


# -- VANISHED (EARLIER) ----------------------------------------------------------


def vanished_earlier(view, since, ranges):
    """The UIDs within `ranges` expunged after modseq `since` (RFC 7162 §3.2.5.1, §3.2.6).

    UIDs this session still shows are left out: they go out as a plain
    VANISHED, which also counts them off.  When the mailbox forgot expunges
    that old, every missing UID in the ranges is reported, as §3.2.5.1 allows.
    """
    mailbox = view.mailbox
    last = mailbox.uidnext - 1
    shown = set(view.uids)
    gone, complete = mailbox.modseqs.expunged_since(since)
    if complete:
        return sorted(uid for uid in gone if uid not in shown and _within(uid, ranges, last))
    present = {message.uid for message in mailbox.messages}
    return [uid for uid in _uids_within(ranges, last) if uid not in present and uid not in shown]


def send_vanished_earlier(session, uids):
    if uids:
        session.send_untagged(b"VANISHED (EARLIER) " + format_uid_set(uids))


def uid_ranges(view, sequence_set):
    """The UID ranges of a UID set as sent; `$` as the saved UIDs."""
    if sequence_set == SAVED_RESULT:
        return tuple((uid, uid) for uid in sorted(view.saved))
    return sequence_set


def _within(uid, ranges, last):
    for low, high in ranges:
        low, high = sorted((last if low is None else low, last if high is None else high))
        if low <= uid <= high:
            return True
    return False


def _uids_within(ranges, last):
    wanted = set()
    for low, high in ranges:
        low, high = sorted((last if low is None else low, last if high is None else high))
        wanted.update(range(low, min(high, last) + 1))
    return sorted(wanted)


# -- SELECT (QRESYNC ...) ----------------------------------------------------------


def select_resync(session, view, parameters):
    """After SELECT's usual responses: what changed since the client's modseq
    (RFC 7162 §3.2.5): VANISHED (EARLIER), then FETCH UID FLAGS MODSEQ.

    Nothing when the UIDVALIDITY differs: the client must start over.
    """
    uidvalidity, since, known_uids, _ = parameters.qresync
    if uidvalidity != view.uidvalidity or not view.mailbox.modseqs.available:
        return
    ranges = known_uids or ((1, None),)
    send_vanished_earlier(session, vanished_earlier(view, since, ranges))
    last = view.mailbox.uidnext - 1
    changed = [(number, uid) for number, uid in enumerate(view.uids, 1)
               if _within(uid, ranges, last) and view.mailbox.modseqs.of(uid) > since]
    if not changed:
        return
    from imap import fetch

    items = (UID_ITEM, FetchItem("FLAGS"), MODSEQ_ITEM)
    for number, uid in changed:
        message = view.view_of(number, uid)
        if message is not None:
            session.send(b"* " + fetch.render(message, items, True) + b"\r\n")


# -- what a CONDSTORE session was told (SelectedMailbox.told_modseqs) ----------------


def start_modseqs(view):
    """CONDSTORE is on: each message's MODSEQ now is what the client starts from."""
    if view.told_modseqs is None and view.mailbox.modseqs.available:
        modseqs = view.mailbox.modseqs
        view.told_modseqs = {m.uid: modseqs.of(m.uid) for m in view.mailbox.messages}


def told_modseq(view, uid):
    """A FETCH just told the client this message's MODSEQ."""
    if view.told_modseqs is not None:
        view.told_modseqs[uid] = view.mailbox.modseqs.of(uid)


def report_modseq_changes(view):
    """The flag-change report of a CONDSTORE session: `FETCH (UID FLAGS MODSEQ)` for
    each message whose MODSEQ moved, even if its flags came back to what they were
    (RFC 7162 §3.1: UID and MODSEQ in every unsolicited FETCH)."""
    modseqs, told = view.mailbox.modseqs, view.told_modseqs
    for number, uid in enumerate(view.uids, 1):
        stored = view.mailbox.by_uid(uid)
        if stored is None:
            continue
        now = modseqs.of(uid)
        if told.get(uid, now) != now:
            view.session.send(b"* %d FETCH (UID %d %s MODSEQ (%d))\r\n" % (
                number, uid, flags_item(stored.flags & ~OLD, stored.keywords,
                                        uid in view.recent), now))
            view.contexts.touched((uid,))
        told[uid] = now
    view.remember_all()
