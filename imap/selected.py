"""Commands of the selected state (RFC 3501 §6.4) and IDLE (RFC 2177), MOVE (RFC 6851)."""


from imap import fetch as fetching
from imap.command import FetchItem
from imap.session import AUTHENTICATED, Bad, No
from imap.view import reported_flags, split_flags
from mailstore import StoreError
from mailstore import mboxformat as fmt


def check(session, command):
    """RFC 3501 §6.4.1: every change is already on disk, so this only looks for news."""
    session.selected.mailbox.refresh()
    return "CHECK completed"


def close(session, command):
    """RFC 3501 §6.4.2: expunge silently (unless read-only), then leave the mailbox."""
    view = session.selected
    if not view.readonly:
        view.mailbox.expunge()
    _leave(session)
    return "CLOSE completed"


def unselect(session, command):
    """RFC 3691: leave without expunging."""
    _leave(session)
    return "UNSELECT completed"


def _leave(session):
    session.selected.close()
    session.selected = None
    session.state = AUTHENTICATED


def expunge(session, command):
    """RFC 3501 §6.4.3, and UID EXPUNGE (RFC 4315 §2.1) for only the named UIDs."""
    view = session.selected
    view.require_writable()
    uids = None
    if command.uid:
        uids = {uid for _, uid in view.resolve(command.args[0], True)}
    gone = view.mailbox.expunge(uids)
    view.report_expunged(gone)
    return "Expunged %d messages" % len(gone) if gone else "EXPUNGE completed"


def fetch(session, command):
    """RFC 3501 §6.4.5; expunged-meanwhile messages give NO [EXPUNGEISSUED] (RFC 2180 §4.1)."""
    view = session.selected
    sequence_set, items = command.args
    targets = view.resolve(sequence_set, command.uid)
    marked = _mark_seen(view, targets) if fetching.sets_seen(items) else set()
    missing = 0
    with view.mailbox.reading():
        for number, uid in targets:
            message = view.view_of(number, uid)
            if message is None:
                missing += 1
                continue
            wanted = items
            if uid in marked and not any(i.name == "FLAGS" for i in items):
                wanted = items + (_FLAGS_ITEM,)
            session.send(b"* " + _render(message, wanted, command.uid) + b"\r\n")
            if any(item.name == "FLAGS" for item in wanted):
                _remember(view, message)
    if missing and not command.uid:
        # A UID command may report the EXPUNGE right after (RFC 3501 §7.4.1) and
        # ignores UIDs that are gone (§6.4.8); by number it is RFC 2180 §4.1.2's NO.
        raise No("Some of the requested messages no longer exist", "EXPUNGEISSUED")
    return "FETCH completed"


def _render(message, items, by_uid):
    from imap.mime import NotLeaf, UnknownEncoding

    try:
        return fetching.render(message, items, by_uid)
    except UnknownEncoding:
        raise No("Unknown content transfer encoding", "UNKNOWN-CTE") from None
    except NotLeaf:
        raise Bad("BINARY only applies to single parts") from None


def _mark_seen(view, targets):
    """Set \\Seen before the text goes out (RFC 3501 §6.4.5); the UIDs it was set on."""
    if view.readonly:
        return set()
    unseen = set()
    for _, uid in targets:
        stored = view.mailbox.by_uid(uid)
        if stored is not None and not stored.flags & fmt.SEEN:
            unseen.add(uid)
    if unseen:
        view.mailbox.store_flags(unseen, "+", fmt.SEEN, ())
    return unseen


def _remember(view, message):
    stored = view.mailbox.by_uid(message.uid)
    if stored is not None:
        view.reported[message.uid] = reported_flags(stored)


def store(session, command):
    """RFC 3501 §6.4.6: applied to the file's current flags; FETCH FLAGS unless .SILENT."""
    view = session.selected
    view.require_writable()
    sequence_set, mode, silent, names = command.args
    targets = view.resolve(sequence_set, command.uid)
    bits, keywords = split_flags(names)
    view.mailbox.store_flags([uid for _, uid in targets], mode, bits, keywords)
    view.report_keywords()
    missing = 0
    for number, uid in targets:
        message = view.view_of(number, uid)
        if message is None:
            missing += 1
            continue
        if not silent:
            items = (_FLAGS_ITEM,)
            session.send(b"* " + fetching.render(message, items, command.uid) + b"\r\n")
        _remember(view, message)
    if missing and not command.uid:
        # A UID command may report the EXPUNGE right after (RFC 3501 §7.4.1) and
        # ignores UIDs that are gone (§6.4.8); by number it is RFC 2180 §4.1.2's NO.
        raise No("Some of the requested messages no longer exist", "EXPUNGEISSUED")
    return "STORE completed"


def search(session, command):
    """RFC 3501 §6.4.4; `* SEARCH`, or `* ESEARCH` when RETURN options were given (RFC 4731)."""
    charset, key, returns = command.args
    found = [m.uid if command.uid else m.seq for m in _matching(session, charset, key)]
    if returns is None:
        session.send(b"* SEARCH" + b"".join(b" %d" % n for n in found) + b"\r\n")
    else:
        session.send(_esearch_response(command, returns, found) + b"\r\n")
    return "SEARCH completed"


def _esearch_response(command, returns, found):
    """`* ESEARCH (TAG "t") [UID] MIN n MAX n COUNT n ALL set`; empty results only COUNT."""
    from imap import wire
    from imap.sequence import format_uid_set

    parts = [b"* ESEARCH (TAG " + wire.string(command.tag) + b")"]
    if command.uid:
        parts.append(b"UID")
    for option in returns:
        if option == "COUNT":
            parts.append(b"COUNT %d" % len(found))
        elif found and option == "MIN":
            parts.append(b"MIN %d" % found[0])
        elif found and option == "MAX":
            parts.append(b"MAX %d" % found[-1])
        elif found and option == "ALL":
            parts.append(b"ALL " + format_uid_set(found))
    return b" ".join(parts)


def _matching(session, charset, key):
    """The MessageViews matching a search key, in mailbox order."""
    from imap import search as searching

    view = session.selected
    try:
        charset = searching.check_charset(charset)
    except searching.BadCharset:
        raise No("Unsupported charset", "BADCHARSET (US-ASCII UTF-8)") from None
    context = searching.SearchContext(
        max_seq=len(view.uids), max_uid=view.uids[-1] if view.uids else 0,
        now=_now(), charset=charset)
    with view.mailbox.reading():
        # A generator: a view read for the search is dropped unless it matched, so
        # SEARCH BODY does not hold every message's text until it ends.
        messages = (m for m in (view.view_of(n, u) for n, u in enumerate(view.uids, 1)) if m)
        return searching.search(key, messages, context)


def sort(session, command):
    """RFC 5256 SORT."""
    from imap import sort as sorting

    criteria, charset, key = command.args
    found = sorting.sort(criteria, _matching(session, charset, key))
    session.send(b"* SORT" + b"".join(
        b" %d" % (m.uid if command.uid else m.seq) for m in found) + b"\r\n")
    return "SORT completed"


def thread(session, command):
    """RFC 5256 THREAD with ORDEREDSUBJECT and REFERENCES."""
    from imap import thread as threading

    algorithm, charset, key = command.args
    if algorithm not in ("ORDEREDSUBJECT", "REFERENCES"):
        raise Bad("Unknown threading algorithm")
    found = _matching(session, charset, key)
    body = threading.thread(algorithm, found, use_uid=command.uid)
    session.send(b"* THREAD" + (b" " + body if body else b"") + b"\r\n")
    return "THREAD completed"


def copy(session, command):
    """RFC 3501 §6.4.7 with COPYUID (RFC 4315); a missing target is NO [TRYCREATE]."""
    sequence_set, name = command.args
    code, _ = _copy(session, sequence_set, name, command.uid)
    return "[%s] COPY completed" % code if code else "COPY completed"


def move(session, command):
    """RFC 6851: copy, then expunge the originals, reporting COPYUID first."""
    view = session.selected
    view.require_writable()
    sequence_set, name = command.args
    code, moved = _copy(session, sequence_set, name, command.uid)
    if code:
        session.send(b"* OK [" + code.encode() + b"] Moved\r\n")
    view.mailbox.store_flags(moved, "+", fmt.DELETED, ())
    view.report_expunged(view.mailbox.expunge(set(moved)))
    return "MOVE completed"


def _copy(session, sequence_set, name, by_uid):
    """Append copies of the messages to mailbox name: (COPYUID code or None, source UIDs)."""
    from imap.sequence import format_uid_set

    view = session.selected
    targets = view.resolve(sequence_set, by_uid)
    items, uids = [], []
    with view.mailbox.reading():
        for _, uid in targets:
            stored = view.mailbox.by_uid(uid)
            if stored is None:
                continue
            items.append((view.mailbox.message_text(stored), stored.flags & ~fmt.OLD,
                          stored.keywords, view.mailbox.internal_date(stored)))
            uids.append(uid)
    if not items:
        if targets:
            raise No("Some of the requested messages no longer exist", "EXPUNGEISSUED")
        return None, []
    target = open_target(session, name)
    try:
        new_uids = target.append(items)
        validity = target.uidvalidity
    finally:
        target.close()
    return "COPYUID %d %s %s" % (validity, format_uid_set(uids).decode(),
                                 format_uid_set(new_uids).decode()), uids


def open_target(session, name):
    """The mailbox to COPY or APPEND to; missing is NO [TRYCREATE] (RFC 3501 §6.3.11)."""
    try:
        return session.store.open_mailbox(name)
    except StoreError as error:
        if error.kind == StoreError.NOT_FOUND:
            raise No("Mailbox does not exist", "TRYCREATE") from None
        raise


def _now():
    import datetime

    return datetime.datetime.now(datetime.timezone.utc)


_FLAGS_ITEM = FetchItem("FLAGS")
