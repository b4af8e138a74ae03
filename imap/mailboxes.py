"""Commands on mailboxes by name (RFC 3501 §6.3): SELECT, LIST, STATUS, APPEND and the rest."""

import time

from imap import wire
from imap.session import AUTHENTICATED, SELECTED, Bad, No
from imap.view import SelectedMailbox, flags_announcement, split_flags
from mailstore import mboxformat as fmt

DELIMITER = b"/"


def _name_text(name):
    return name.decode("utf-8", "replace")


def _check_new_name(name):
    """CREATE and RENAME targets must be valid modified UTF-7 (RFC 3501 §5.1.3)."""
    from imap import utf7

    if not name or not utf7.is_valid(name) or b"\r" in name or b"\n" in name:
        raise No("Invalid mailbox name", "CANNOT")


def select(session, command, readonly=False):
    """RFC 3501 §6.3.1 (and §6.3.2 for EXAMINE); responses in UW's order (servers.md §3.4)."""
    (name,) = command.args
    if session.selected:
        session.selected.close()
        session.selected = None
        session.state = AUTHENTICATED
    mailbox = session.store.open_mailbox(name, readonly=readonly)
    view = SelectedMailbox(session, mailbox, name, readonly)
    try:
        view.open()
    except Exception:
        mailbox.close()
        raise
    _announce(session, view)
    session.selected, session.state = view, SELECTED
    mode = "READ-ONLY" if readonly else "READ-WRITE"
    return "[%s] %s completed" % (mode, "EXAMINE" if readonly else "SELECT")


def _announce(session, view):
    mailbox = view.mailbox
    send = session.send_untagged
    send(b"%d EXISTS" % len(view.uids))
    send(b"%d RECENT" % len(view.recent))
    send(b"OK [UIDVALIDITY %d] UID validity status" % mailbox.uidvalidity)
    send(b"OK [UIDNEXT %d] Predicted next UID" % mailbox.uidnext)
    for line in flags_announcement(mailbox.keywords, view.readonly):
        send(line)
    unseen = next((n for n, m in enumerate(mailbox.messages, 1) if not m.flags & fmt.SEEN), 0)
    if unseen:
        send(b"OK [UNSEEN %d] First unseen message" % unseen)


def examine(session, command):
    return select(session, command, readonly=True)


def create(session, command):
    """RFC 3501 §6.3.3; `a/b/` makes only the directory (a \\Noselect name)."""
    (name,) = command.args
    if name == b"INBOX":
        raise No("Can't create INBOX", "ALREADYEXISTS")
    _check_new_name(name.rstrip(DELIMITER))
    session.store.create(name)
    return "CREATE completed"


def delete(session, command):
    """RFC 3501 §6.3.4."""
    (name,) = command.args
    if name == b"INBOX":
        raise No("Can't delete INBOX", "CANNOT")
    if session.selected and session.selected.name == name:
        raise No("Can not DELETE the selected mailbox", "INUSE")
    session.store.delete(name)
    return "DELETE completed"


def rename(session, command):
    """RFC 3501 §6.3.5; RENAME INBOX moves its messages and leaves INBOX empty."""
    old, new = command.args
    _check_new_name(new)
    if new == b"INBOX":
        raise No("Can't rename to INBOX", "ALREADYEXISTS")
    if session.selected and session.selected.name == old:
        raise No("Can not RENAME the selected mailbox", "INUSE")
    session.store.rename(old, new)
    return "RENAME completed"


def subscribe(session, command):
    """RFC 3501 §6.3.6; stored in ~/.mailboxlist as UW does."""
    session.store.subscribe(command.args[0])
    return "SUBSCRIBE completed"


def unsubscribe(session, command):
    """RFC 3501 §6.3.7."""
    session.store.unsubscribe(command.args[0])
    return "UNSUBSCRIBE completed"


def list_mailboxes(session, command):
    """RFC 3501 §6.3.8 with CHILDREN (RFC 3348) attributes."""
    reference, pattern = command.args
    if not pattern:
        root = reference.split(DELIMITER, 1)[0] + DELIMITER if DELIMITER in reference else b""
        session.send_untagged(b'LIST (\\Noselect) "/" ' + wire.astring(root))
        return "LIST completed"
    for name, attributes in session.store.list(_pattern(reference, pattern)):
        _send_list(session, b"LIST", name, attributes)
    return "LIST completed"


def lsub(session, command):
    """RFC 3501 §6.3.9: subscribed names that match, existing or not."""
    reference, pattern = command.args
    matcher = _pattern(reference, pattern)
    subscribed = session.store.subscriptions()
    shown = set()
    for name in subscribed:
        if matcher.matches(name):
            _send_list(session, b"LSUB", name, ())
            continue
        # A "%" that stops at a level above a subscribed name shows that level
        # as \Noselect, unless it is itself subscribed (RFC 3501 §6.3.9).
        for parent in _parents(name):
            if parent not in shown and parent not in subscribed and matcher.matches(parent):
                shown.add(parent)
                _send_list(session, b"LSUB", parent, ("\\Noselect",))
    return "LSUB completed"


def _parents(name):
    """`a/b/c` -> `a`, `a/b`."""
    levels = name.split(DELIMITER)
    return [DELIMITER.join(levels[:n]) for n in range(1, len(levels))]


def _pattern(reference, pattern):
    from imap.listpattern import ListPattern

    try:
        return ListPattern(reference, pattern)
    except ValueError:
        raise Bad("Mailbox pattern too long") from None


def _send_list(session, word, name, attributes):
    flags = " ".join(sorted(attributes)).encode()
    session.send_untagged(word + b" (" + flags + b') "/" ' + wire.astring(name))


_STATUS_ITEMS = ("MESSAGES", "RECENT", "UIDNEXT", "UIDVALIDITY", "UNSEEN")


def status(session, command):
    """RFC 3501 §6.3.10, counted from the file without selecting it."""
    name, items = command.args
    unknown = [item for item in items if item not in _STATUS_ITEMS]
    if unknown:
        raise Bad("Unknown status item %s" % unknown[0])
    mailbox = session.store.open_mailbox(name, readonly=True)
    try:
        counts = {
            "MESSAGES": len(mailbox.messages),
            "RECENT": sum(1 for m in mailbox.messages if not m.flags & fmt.OLD),
            "UIDNEXT": mailbox.uidnext,
            "UIDVALIDITY": mailbox.uidvalidity,
            "UNSEEN": sum(1 for m in mailbox.messages if not m.flags & fmt.SEEN),
        }
    finally:
        mailbox.close()
    values = b" ".join(b"%s %d" % (item.encode(), counts[item]) for item in items)
    session.send_untagged(b"STATUS " + wire.astring(name) + b" (" + values + b")")
    return "STATUS completed"


def append(session, command):
    """RFC 3501 §6.3.11 with MULTIAPPEND (RFC 3502) and APPENDUID (RFC 4315)."""
    from imap.selected import open_target
    from imap.sequence import format_uid_set

    name, messages = command.args
    if any(not message.data for message in messages):
        raise No("Empty message", "CANNOT")
    items = [_append_item(message) for message in messages]
    target = open_target(session, name)
    try:
        uids = target.append(items)
        validity = target.uidvalidity
    finally:
        target.close()
    return "[APPENDUID %d %s] APPEND completed" % (validity, format_uid_set(uids).decode())


def _append_item(message):
    """(data, flag bits, keywords, (unix time, zone minutes)) for Mailbox.append."""
    bits, keywords = split_flags(message.flags)
    if message.date is None:
        now = time.time()
        return message.data, bits, keywords, (int(now), time.localtime(now).tm_gmtoff // 60)
    offset = message.date.utcoffset()
    return (message.data, bits, keywords,
            (int(message.date.timestamp()), int(offset.total_seconds()) // 60 if offset else 0))
