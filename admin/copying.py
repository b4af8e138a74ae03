"""copy and move: messages from one mailbox to another with flags, keywords and dates.

Into a mailbox that never gave out a UID (a new one, or an empty one) the
messages keep their UIDs and the source's UIDVALIDITY (and UIDNEXT when the
whole mailbox is copied), so the copy is a faithful clone. Into a mailbox
that holds mail they keep their UIDs when all lie above its last UID, and
get new ones otherwise, as with IMAP COPY.
"""

from mailstore import StoreError
from mailstore import mboxformat as fmt

# Messages are read and written in batches, so memory stays bounded.
BATCH_MESSAGES = 500
BATCH_BYTES = 32 << 20


def append_keeping_uids(mailbox, items, uidvalidity=None, last_uid=None):
    """Append (uid, data, flags, keywords, date) items with their UIDs; the driver decides how.

    A driver offers this as a mailbox method `append_with_uids(items,
    uidvalidity=None, last_uid=None)` (Maildir: mailstore.maildirrestore);
    the mbox driver's lives in mailstore.mboxrestore.
    """
    method = getattr(mailbox, "append_with_uids", None)
    if method is not None:
        return method(items, uidvalidity=uidvalidity, last_uid=last_uid)
    from mailstore.mbox import MboxMailbox

    if isinstance(mailbox, MboxMailbox):
        from mailstore.mboxrestore import append_with_uids

        return append_with_uids(mailbox, items, uidvalidity, last_uid)
    raise StoreError(StoreError.NO_PERMISSION, "this mail storage cannot keep UIDs")


def open_or_create(store, name):
    """(mailbox, created): open name read-write, creating it first if it does not exist."""
    try:
        return store.open_mailbox(name), False
    except StoreError as error:
        if error.kind != StoreError.NOT_FOUND:
            raise
    store.create(name)
    return store.open_mailbox(name), True


def parse_uid_set(text):
    """The UID set of --uids (IMAP syntax: 1:5,9,20:*) as ranges; ValueError if malformed."""
    from imap.parser import Cursor, ParseError, sequence_set

    cursor = Cursor(text.encode("ascii", "replace"))
    try:
        ranges = sequence_set(cursor)
    except ParseError:
        raise ValueError("invalid UID set %r (use IMAP syntax such as 1:5,9,20:*)" % text) \
            from None
    if not cursor.at_end():
        raise ValueError("invalid UID set %r" % text)
    return ranges


def selected_uids(mailbox, uid_ranges):
    """The UIDs to copy: all, or those of the set that exist."""
    from imap.sequence import resolve_uids

    uids = [m.uid for m in mailbox.messages]
    return uids if uid_ranges is None else resolve_uids(uid_ranges, uids)


def never_gave_uids(mailbox):
    return not mailbox.messages and mailbox.last_uid == 0


def copy_messages(source, target, uids, progress, whole=False):
    """Append the source's messages with these UIDs to target; True when their UIDs were kept."""
    fresh = never_gave_uids(target)
    keep = fresh or (bool(uids) and uids[0] > target.last_uid)
    uidvalidity = source.uidvalidity if fresh else None
    for items, spool in _batches(source, uids, target.store.location.index_dir):
        with spool:
            if keep:
                append_keeping_uids(target, items, uidvalidity)
                uidvalidity = None
            else:
                target.append([item[1:] for item in items])
        progress.advance(len(items))
    if keep and fresh and whole and source.last_uid > target.last_uid:
        append_keeping_uids(target, [], uidvalidity, source.last_uid)
    elif keep and uidvalidity is not None:
        append_keeping_uids(target, [], uidvalidity)
    return keep


def _batches(source, uids, scratch_directory):
    """(items, Spool holding their texts): lists of (uid, text, flags, keywords, date),
    read under the source's read lock; a large message's text waits in a scratch file."""
    from mailstore.text import Spool

    position = 0
    while position < len(uids):
        items, size, spool = [], 0, Spool(scratch_directory)
        with source.reading():
            while position < len(uids) and len(items) < BATCH_MESSAGES and size < BATCH_BYTES:
                message = source.by_uid(uids[position])
                position += 1
                if message is None:
                    continue  # expunged by someone meanwhile
                text = spool.add(source.visible_chunks(message), message.size)
                size += len(text)
                items.append((message.uid, text, message.flags, message.keywords,
                              source.internal_date(message)))
        if items:
            yield items, spool
        else:
            spool.close()


def remove_moved(source, uids):
    """Expunge exactly the moved messages from the source (others' \\Deleted stay)."""
    source.store_flags(uids, "+", fmt.DELETED, ())
    source.expunge(set(uids))


def copy_between(source, target, uid_ranges, move):
    """copy or move from (store, name) to (store, name): (messages, whether UIDs were kept)."""
    from admin.context import ToolError, display_name
    from admin.progress import Progress

    if _same_mailbox(source, target):
        raise ToolError("source and destination are the same mailbox")
    origin = source[0].open_mailbox(source[1], readonly=not move)
    try:
        uids = selected_uids(origin, uid_ranges)
        if uid_ranges is not None and not uids:
            raise ToolError("no message in %s has a UID in that set" % display_name(source[1]))
        destination, _ = open_or_create(*target)
        progress = Progress(len(uids), display_name(target[1]))
        try:
            kept = copy_messages(origin, destination, uids, progress, whole=uid_ranges is None)
        finally:
            progress.finish()
            destination.close()
        if move and uids:
            remove_moved(origin, uids)
    finally:
        origin.close()
    return len(uids), kept


def _same_mailbox(source, target):
    """True when both name one mbox file or one Maildir folder directory."""
    import os

    paths = [_mailbox_path(*side) for side in (source, target)]
    if None in paths:
        return source == target
    return os.path.realpath(paths[0]) == os.path.realpath(paths[1])


def _mailbox_path(store, name):
    """The file or directory of a mailbox, or None for a store without either."""
    from mailstore import folders
    from mailstore.maildirstore import MaildirStore
    from mailstore.mboxstore import MboxStore

    if isinstance(store, MboxStore):
        return folders.resolve(store.location, name)
    if isinstance(store, MaildirStore):
        return store.path(name)
    return None
