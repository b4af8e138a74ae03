"""Commands on mailboxes by name (RFC 3501 §6.3): SELECT, LIST, STATUS, APPEND and the rest."""

import time

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
    """RFC 3501 §6.3.1 (and §6.3.2 for EXAMINE); responses in UW's order (servers.md §3.4).

    RFC 7162 parameters: CONDSTORE enables it; QRESYNC (only once enabled,
    §3.2.5) adds what changed since the client's modseq.
    """
    from imap import condstore

    name = session.mailbox_name(command.args[0])
    parameters = command.args[1] if len(command.args) > 1 else None
    if parameters and parameters.qresync and not session.qresync:
        raise Bad("QRESYNC parameter without ENABLE QRESYNC")
    if parameters and parameters.condstore:
        session.enable_condstore()
    if session.selected:
        session.selected.close()
        session.selected = None
        session.state = AUTHENTICATED
        if session.rev2 or session.qresync:
            # RFC 9051 §6.3.2, RFC 7162 §3.2.11: the end of the old mailbox's responses.
            session.send_untagged(b"OK [CLOSED] Previous mailbox closed")
    mailbox = session.store.open_mailbox(name, readonly=readonly)
    view = SelectedMailbox(session, mailbox, name, readonly)
    try:
        view.open()
    except Exception:
        mailbox.close()
        raise
    _announce(session, view)
    session.selected, session.state = view, SELECTED
    if parameters and parameters.qresync:
        condstore.select_resync(session, view, parameters)
    mode = "READ-ONLY" if readonly else "READ-WRITE"
    return "[%s] %s completed" % (mode, "EXAMINE" if readonly else "SELECT")


def _announce(session, view):
    """RFC 3501 §6.3.1; for IMAP4rev2 (RFC 9051 §6.3.2) without RECENT and
    UNSEEN, and with the mailbox's LIST response; HIGHESTMODSEQ (RFC 7162 §3.1.2.1)."""
    from imap import condstore

    mailbox = view.mailbox
    send = session.send_untagged
    send(b"%d EXISTS" % len(view.uids))
    if not session.rev2:
        send(b"%d RECENT" % len(view.recent))
    send(b"OK [UIDVALIDITY %d] UID validity status" % mailbox.uidvalidity)
    send(b"OK [UIDNEXT %d] Predicted next UID" % mailbox.uidnext)
    send(condstore.highest_response(mailbox))
    for line in flags_announcement(mailbox.keywords, view.readonly):
        send(line)
    if session.rev2:
        from imap.listing import send_list_of

        send_list_of(session, view.name)
        return
    unseen = next((n for n, m in enumerate(mailbox.messages, 1) if not m.flags & fmt.SEEN), 0)
    if unseen:
        send(b"OK [UNSEEN %d] First unseen message" % unseen)


def examine(session, command):
    return select(session, command, readonly=True)


def create(session, command):
    """RFC 3501 §6.3.3; `a/b/` makes only the directory (a \\Noselect name)."""
    name = session.mailbox_name(command.args[0])
    if name == b"INBOX":
        raise No("Can't create INBOX", "ALREADYEXISTS")
    _check_new_name(name.rstrip(DELIMITER))
    session.store.create(name)
    return "CREATE completed"


def delete(session, command):
    """RFC 3501 §6.3.4."""
    name = session.mailbox_name(command.args[0])
    if name == b"INBOX":
        raise No("Can't delete INBOX", "CANNOT")
    if session.selected and session.selected.name == name:
        raise No("Can not DELETE the selected mailbox", "INUSE")
    session.store.delete(name)
    return "DELETE completed"


def rename(session, command):
    """RFC 3501 §6.3.5; RENAME INBOX moves its messages and leaves INBOX empty."""
    old, new = (session.mailbox_name(name) for name in command.args)
    _check_new_name(new)
    if new == b"INBOX":
        raise No("Can't rename to INBOX", "ALREADYEXISTS")
    if session.selected and session.selected.name == old:
        raise No("Can not RENAME the selected mailbox", "INUSE")
    session.store.rename(old, new)
    return "RENAME completed"


def subscribe(session, command):
    """RFC 3501 §6.3.6; stored in ~/.mailboxlist as UW does."""
    session.store.subscribe(session.mailbox_name(command.args[0]))
    return "SUBSCRIBE completed"


def unsubscribe(session, command):
    """RFC 3501 §6.3.7."""
    session.store.unsubscribe(session.mailbox_name(command.args[0]))
    return "UNSUBSCRIBE completed"


# RFC 3501 §6.3.10, SIZE (RFC 8438), HIGHESTMODSEQ (RFC 7162 §3.1.2.3) and, for
# IMAP4rev2, DELETED (RFC 9051 §6.3.11).
_STATUS_ITEMS = ("MESSAGES", "RECENT", "UIDNEXT", "UIDVALIDITY", "UNSEEN", "SIZE", "DELETED",
                 "HIGHESTMODSEQ")


def status(session, command):
    """RFC 3501 §6.3.10, counted from the file without selecting it."""
    name, items = command.args
    unknown = [item for item in items if item not in _STATUS_ITEMS]
    if unknown:
        raise Bad("Unknown status item %s" % unknown[0])
    if "HIGHESTMODSEQ" in items:
        session.enable_condstore()  # a CONDSTORE enabling command (RFC 7162 §3.1)
    session.send_untagged(status_response(session, session.mailbox_name(name), items))
    return "STATUS completed"


def status_response(session, name, items):
    """The `STATUS name (item value ...)` line, for STATUS and LIST-STATUS (RFC 5819)."""
    from imap import condstore

    mailbox = session.store.open_mailbox(name, readonly=True)
    # The messages new to the selected mailbox are this session's \Recent
    # ones: the file has them as seen by a session already (RFC 3501 §2.3.2).
    view = session.selected if session.selected and session.selected.name == name else None
    try:
        messages = mailbox.messages
        counts = {
            "MESSAGES": lambda: len(messages),
            "RECENT": lambda: (len(view.recent) if view else
                               sum(1 for m in messages if not m.flags & fmt.OLD)),
            "UIDNEXT": lambda: mailbox.uidnext,
            "UIDVALIDITY": lambda: mailbox.uidvalidity,
            "UNSEEN": lambda: sum(1 for m in messages if not m.flags & fmt.SEEN),
            # RFC 8438 §2: the sum of the messages' RFC822.SIZE, metadata hidden.
            "SIZE": lambda: sum(m.size for m in messages),
            "DELETED": lambda: sum(1 for m in messages if m.flags & fmt.DELETED),
            "HIGHESTMODSEQ": lambda: condstore.status_value(mailbox),
        }
        values = b" ".join(b"%s %d" % (item.encode(), counts[item]()) for item in items)
    finally:
        mailbox.close()
    return b"STATUS " + session.wire_name(name) + b" (" + values + b")"


def append(session, command):
    """RFC 3501 §6.3.11 with MULTIAPPEND (RFC 3502), APPENDUID (RFC 4315), CATENATE
    (RFC 4469) and literal8 (RFC 3516). Every message is built before any is
    stored, so a failing URL or part appends nothing."""
    from imap.selected import append_to
    from imap.sequence import format_uid_set

    name, messages = command.args
    name = session.mailbox_name(name)
    texts = [_message_text(session, message) for message in messages]
    if any(not text for text in texts):
        raise No("Empty message", "CANNOT")
    items = [_append_item(message, text) for message, text in zip(messages, texts)]
    uids, validity = append_to(session, name, items)
    return "[APPENDUID %d %s] APPEND completed" % (validity, format_uid_set(uids).decode())


def _message_text(session, message):
    """The octets to store: the literal, or the CATENATE parts joined; binary made storable."""
    from imap import storable

    data, binary = message.data, message.binary
    if message.parts is not None:
        from imap.urls import catenated

        data = catenated(session, message.parts, session.config.imap_max_append_size)
        binary = any(part[0] == "TEXT" and part[2] for part in message.parts)
    if not binary:
        return data
    if not isinstance(data, bytes):  # a spilled literal8: made storable whole
        data = b"".join(data.chunks())
    try:
        return storable.storable(data)
    except storable.Unstorable:
        raise No("The message cannot be stored in binary form", "UNKNOWN-CTE") from None


def _append_item(message, data):
    """(data, flag bits, keywords, (unix time, zone minutes)) for Mailbox.append."""
    bits, keywords = split_flags(message.flags)
    if message.date is None:
        now = time.time()
        return data, bits, keywords, (int(now), time.localtime(now).tm_gmtoff // 60)
    offset = message.date.utcoffset()
    return (data, bits, keywords,
            (int(message.date.timestamp()), int(offset.total_seconds()) // 60 if offset else 0))
