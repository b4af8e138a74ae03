"""Commands of the selected state (RFC 3501 §6.4), MOVE (RFC 6851), CANCELUPDATE (RFC 5267)."""


from imap import condstore
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
    """RFC 3501 §6.4.3, and UID EXPUNGE (RFC 4315 §2.1) for only the named UIDs.

    With CONDSTORE the tagged OK tells the new HIGHESTMODSEQ (RFC 7162 §3.1.8).
    """
    view = session.selected
    view.require_writable()
    uids = None
    if command.uid:
        uids = {uid for _, uid in view.resolve(command.args[0], True)}
    gone = view.mailbox.expunge(uids)
    view.report_expunged(gone)
    if not gone:
        return "EXPUNGE completed"
    if session.condstore and view.mailbox.modseqs.available:
        return "[HIGHESTMODSEQ %d] Expunged %d messages" % (view.mailbox.modseqs.highest,
                                                             len(gone))
    return "Expunged %d messages" % len(gone)


def fetch(session, command):
    """RFC 3501 §6.4.5; expunged-meanwhile messages give NO [EXPUNGEISSUED] (RFC 2180 §4.1).

    RFC 7162: MODSEQ, and CHANGEDSINCE (only messages changed after it, with
    MODSEQ), with VANISHED for UID FETCH once QRESYNC is enabled.
    """
    view = session.selected
    sequence_set, items = command.args[:2]
    modifiers = command.args[2] if len(command.args) > 2 else None
    targets = view.resolve(sequence_set, command.uid)
    if modifiers or any(item.name == "MODSEQ" for item in items):
        targets, items = _changed_since(session, command, modifiers, targets, items)
    marked = _mark_seen(view, targets) if fetching.sets_seen(items) else set()
    missing = 0
    with view.mailbox.reading():
        for number, uid in targets:
            message = view.view_of(number, uid)
            if message is None:
                missing += 1
                continue
            wanted = items
            if uid in marked:
                # RFC 7162 §3.1: a \Seen set by FETCH comes with UID and MODSEQ.
                wanted = condstore.with_items(items, _FLAGS_ITEM, *(
                    (condstore.UID_ITEM, condstore.MODSEQ_ITEM) if session.condstore else ()))
            pieces = _render(message, wanted, command.uid)  # may refuse: before any byte
            fetching.send_pieces(session.send, [b"* "] + pieces + [b"\r\n"])
            if any(item.name == "FLAGS" for item in wanted):
                _remember(view, message)
            if any(item.name == "MODSEQ" for item in wanted):
                condstore.told_modseq(view, uid)
    if missing and not command.uid:
        # A UID command may report the EXPUNGE right after (RFC 3501 §7.4.1) and
        # ignores UIDs that are gone (§6.4.8); by number it is RFC 2180 §4.1.2's NO.
        raise No("Some of the requested messages no longer exist", "EXPUNGEISSUED")
    return "FETCH completed"


def _changed_since(session, command, modifiers, targets, items):
    """FETCH's CONDSTORE part: (the targets to fetch, the items with MODSEQ)."""
    condstore.require_modseqs(session)
    if modifiers is None:
        return targets, items
    view = session.selected
    if modifiers.vanished:
        if not (command.uid and session.qresync):
            raise Bad("VANISHED needs UID FETCH and ENABLE QRESYNC")
        ranges = condstore.uid_ranges(view, command.args[0])
        condstore.send_vanished_earlier(session, condstore.vanished_earlier(
            view, modifiers.changedsince, ranges))
    since, modseqs = modifiers.changedsince, view.mailbox.modseqs
    return ([(n, u) for n, u in targets if modseqs.of(u) > since],
            condstore.with_items(items, condstore.MODSEQ_ITEM))


def _render(message, items, by_uid):
    from imap.mime import NotLeaf, UnknownEncoding

    try:
        return fetching.render_pieces(message, items, by_uid)
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
        view.contexts.touched(unseen)
    return unseen


def _remember(view, message):
    stored = view.mailbox.by_uid(message.uid)
    if stored is not None:
        view.reported[message.uid] = reported_flags(stored)


def store(session, command):
    """RFC 3501 §6.4.6: applied to the file's current flags; FETCH FLAGS unless .SILENT.

    With UNCHANGEDSINCE (RFC 7162 §3.1.3) messages changed after that modseq
    are left alone and named in MODIFIED; the others get FETCH with MODSEQ
    even when silent.  Once CONDSTORE is enabled every FETCH here carries
    UID and MODSEQ, and a silent STORE still tells a new MODSEQ.
    """
    view = session.selected
    view.require_writable()
    sequence_set, mode, silent, names = command.args[:4]
    unchangedsince = command.args[4] if len(command.args) > 4 else None
    if unchangedsince is not None:
        condstore.require_modseqs(session)
    targets = view.resolve(sequence_set, command.uid)
    bits, keywords = split_flags(names)
    refused = view.mailbox.store_flags([uid for _, uid in targets], mode, bits, keywords,
                                       unchangedsince)
    view.contexts.touched(uid for _, uid in targets if uid not in refused)
    view.report_keywords()
    missing = 0
    for number, uid in targets:
        if uid in refused:
            continue
        message = view.view_of(number, uid)
        if message is None:
            missing += 1
            continue
        items = _store_items(view, message, silent, unchangedsince is not None)
        if items:
            session.send(b"* " + fetching.render(message, items, command.uid) + b"\r\n")
        _remember(view, message)
        condstore.told_modseq(view, uid)
    return _store_outcome(command, targets, refused, missing)


def _store_items(view, message, silent, conditional):
    """The FETCH items STORE answers with for one message (none: no FETCH)."""
    items = () if silent else (_FLAGS_ITEM,)
    if view.told_modseqs is None:
        return items
    if items or conditional or view.told_modseqs.get(message.uid) != message.modseq:
        return condstore.with_items(items, condstore.UID_ITEM, condstore.MODSEQ_ITEM)
    return items


def _store_outcome(command, targets, refused, missing):
    """The tagged text: MODIFIED names what UNCHANGEDSINCE refused (RFC 7162 §3.1.3)."""
    from imap.sequence import format_uid_set

    code = None
    if refused:
        numbers = [uid if command.uid else number for number, uid in targets if uid in refused]
        code = "MODIFIED " + format_uid_set(sorted(numbers)).decode()
    if missing and not command.uid:
        # A UID command may report the EXPUNGE right after (RFC 3501 §7.4.1) and
        # ignores UIDs that are gone (§6.4.8); by number it is RFC 2180 §4.1.2's NO.
        raise No("Some of the requested messages no longer exist", code or "EXPUNGEISSUED")
    if code:
        return "[%s] Conditional STORE failed" % code
    return "STORE completed"


def search(session, command):
    """RFC 3501 §6.4.4; `* SEARCH`, or `* ESEARCH` when RETURN options were given
    (RFC 4731) or the client speaks IMAP4rev2 (RFC 9051 §6.4.4: RETURN () is ALL)."""
    from imap.command import ReturnOptions

    charset, key, returns = command.args
    if returns is None and session.rev2:
        returns = ReturnOptions(("ALL",))
    found = _search_or_forget(session, command, returns, charset, key)
    _answer(session, command, returns, found, None, charset, key, None)
    return "SEARCH completed"


def sort(session, command):
    """RFC 5256 SORT; with RETURN options ESORT (RFC 5267 §3), ordered ESEARCH results."""
    from imap import sort as sorting

    criteria, charset, key, returns = command.args
    found = _search_or_forget(session, command, returns, charset, key)
    keys = None
    with session.selected.mailbox.reading():
        if returns is None:
            found = sorting.sort(criteria, found)
        else:
            # The keys an update context keeps; they order exactly as sorting.sort does.
            keyed = sorted((sorting.order_key(criteria, message), message) for message in found)
            keys, found = [k for k, _ in keyed], [message for _, message in keyed]
    _answer(session, command, returns, found, criteria, charset, key, keys)
    return "SORT completed"


def _search_or_forget(session, command, returns, charset, key):
    """The matching messages; a SAVE search that fails leaves `$` empty (RFC 5182 §2.1)."""
    returns = returns or ()
    if "UPDATE" in returns and command.tag in session.selected.contexts:
        raise Bad("Tag reuse")  # RFC 5267 §4.3: updates are told apart by tag
    try:
        return _matching(session, charset, key)
    except (No, StoreError):
        if "SAVE" in returns:
            session.selected.save(())
        raise


def _answer(session, command, returns, found, criteria, charset, key, keys):
    """The untagged results, then what RETURN asks to keep: `$` and an update context.

    `keys` are the SORT order keys of `found`, None for SEARCH.
    """
    from imap import esearch, wire

    numbers = [m.uid if command.uid else m.seq for m in found]
    if returns is None:
        name = b"SEARCH" if criteria is None else b"SORT"
        session.send(b"* " + name + b"".join(b" %d" % n for n in numbers)
                     + _modseq_suffix(key, found, b" (MODSEQ %d)") + b"\r\n")
        return
    view = session.selected
    if esearch.wants_response(returns):
        # RFC 7162 §3.1.5: MODSEQ is the highest of the messages the result names.
        named = set(esearch.saved(returns, numbers))
        session.send_untagged(esearch.response(command.tag, command.uid, returns, numbers,
                                               ordered=criteria is not None)
                              + _modseq_suffix(key, [m for m, n in zip(found, numbers)
                                                     if n in named], b" MODSEQ %d"))
    if "SAVE" in returns:
        view.save(esearch.saved(returns, [m.uid for m in found]))
    if "UPDATE" in returns:
        if view.contexts.full():
            # RFC 5267 §4.3.1: the search itself still succeeds.
            session.send_untagged(b"NO [NOUPDATE " + wire.string(command.tag)
                                  + b"] Too many update contexts")
        else:
            view.contexts.add(command.tag, command.uid, criteria,
                              searching_charset(charset), key, found, keys)


def _modseq_suffix(key, found, form):
    """SEARCH with a MODSEQ key answers the highest MODSEQ found (RFC 7162 §3.1.5)."""
    if not found or not condstore.uses_modseq(key):
        return b""
    return form % condstore.highest_of(found)


def cancelupdate(session, command):
    """RFC 5267 §4.3.5: stop the updates of the searches with these tags."""
    (tags,) = command.args
    unknown = [tag for tag in tags if not session.selected.contexts.cancel(tag)]
    if unknown:
        raise No("No update context has that tag")
    return "CANCELUPDATE completed"


def _matching(session, charset, key):
    """The MessageViews matching a search key, in mailbox order."""
    from imap import search as searching

    if session.rev2 and _uses_recent(key):
        raise Bad("IMAP4rev2 has no RECENT, NEW or OLD search keys")
    if condstore.uses_modseq(key):
        condstore.require_modseqs(session)
    view = session.selected
    context = view.search_context(searching_charset(charset))
    with view.mailbox.reading():
        # A generator: a view read for the search is dropped unless it matched, so
        # SEARCH BODY does not hold every message's text until it ends.
        messages = (m for m in (view.view_of(n, u) for n, u in enumerate(view.uids, 1)) if m)
        return searching.search(key, messages, context)


_RECENT_KEYS = frozenset(("RECENT", "NEW", "OLD"))


def _uses_recent(key):
    """True when a search key tests \\Recent anywhere (RFC 9051 §6.4.4 has no such key)."""
    name = key[0]
    if name in _RECENT_KEYS:
        return True
    if name == "NOT":
        return _uses_recent(key[1])
    if name == "OR":
        return _uses_recent(key[1]) or _uses_recent(key[2])
    if name == "AND":
        return any(_uses_recent(part) for part in key[1])
    return False


def searching_charset(charset):
    """The canonical charset name, or NO [BADCHARSET] (RFC 3501 §6.4.4)."""
    from imap import search as searching

    try:
        return searching.check_charset(charset)
    except searching.BadCharset:
        raise No("Unsupported charset", "BADCHARSET (US-ASCII UTF-8)") from None


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
    code, _ = _copy(session, sequence_set, session.mailbox_name(name), command.uid)
    return "[%s] COPY completed" % code if code else "COPY completed"


def move(session, command):
    """RFC 6851: copy, then expunge the originals, reporting COPYUID first."""
    view = session.selected
    view.require_writable()
    sequence_set, name = command.args
    code, moved = _copy(session, sequence_set, session.mailbox_name(name), command.uid)
    if code:
        session.send(b"* OK [" + code.encode() + b"] Moved\r\n")
    view.mailbox.store_flags(moved, "+", fmt.DELETED, ())
    view.report_expunged(view.mailbox.expunge(set(moved)))
    return "MOVE completed"


def _copy(session, sequence_set, name, by_uid):
    """Append copies of the messages to mailbox name: (COPYUID code or None, source UIDs).

    The texts are taken under the source's read lock and appended under the
    target's write lock, never both at once; a Spool holds them between,
    in a scratch file when they are large (a COPY of a 1 GB INBOX).
    """
    from imap.sequence import format_uid_set
    from mailstore.text import Spool, spooled_items

    view = session.selected
    targets = view.resolve(sequence_set, by_uid)
    with Spool(session.store.location.index_dir) as spool:
        items, uids = spooled_items(view.mailbox, [uid for _, uid in targets], spool)
        if not items:
            if targets:
                raise No("Some of the requested messages no longer exist", "EXPUNGEISSUED")
            return None, []
        new_uids, validity = append_to(session, name, items)
    return "COPYUID %d %s %s" % (validity, format_uid_set(uids).decode(),
                                 format_uid_set(new_uids).decode()), uids


def append_to(session, name, items):
    """Append items (Mailbox.append's) to mailbox name: (new UIDs, its UIDVALIDITY)."""
    target = open_target(session, name)
    try:
        return target.append(items), target.uidvalidity
    finally:
        target.close()


def open_target(session, name):
    """The mailbox to COPY or APPEND to; missing is NO [TRYCREATE] (RFC 3501 §6.3.11)."""
    try:
        return session.store.open_mailbox(name)
    except StoreError as error:
        if error.kind == StoreError.NOT_FOUND:
            raise No("Mailbox does not exist", "TRYCREATE") from None
        raise


_FLAGS_ITEM = FetchItem("FLAGS")
