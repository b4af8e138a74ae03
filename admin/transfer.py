"""transfer: a whole account from one mail_location to another, as clients knew it.

Every folder and directory, every message with its UID, flags, keywords and
internal date, each mailbox's UIDVALIDITY and UIDNEXT, and the
subscriptions. The destination must hold no mail yet, so that nothing is
merged and every UID can be kept; this is checked for all folders before
anything is written. The source is only read.
"""

from admin.context import ToolError, display_name
from admin.copying import copy_messages, never_gave_uids
from admin.progress import Progress
from mailstore import StoreError

NOSELECT = "\\Noselect"
HAS_NO_CHILDREN = "\\HasNoChildren"


def _delimiter(store):
    return getattr(store, "delimiter", b"/")


def _translator(source, target):
    """Map a source folder name to the target's hierarchy delimiter."""
    old, new = _delimiter(source), _delimiter(target)
    if old == new:
        return lambda name: name

    def translate(name):
        levels = name.split(old)
        if any(new in level for level in levels):
            raise ToolError("folder %s cannot be named in the destination: a level holds %r"
                            % (display_name(name), new.decode()))
        return new.join(levels)

    return translate


def _folders(store):
    from imap.listpattern import ListPattern

    return list(store.list(ListPattern(b"", b"*", _delimiter(store))))


def plan(source, target):
    """[(source name, target name, attributes, message count)]; ToolError if the target has mail."""
    translate = _translator(source, target)
    entries = []
    for name, attributes in _folders(source):
        count = 0
        if NOSELECT not in attributes:
            mailbox = source.open_mailbox(name, readonly=True)
            count = len(mailbox.messages)
            mailbox.close()
            _require_empty(target, translate(name))
        entries.append((name, translate(name), attributes, count))
    return entries


def _require_empty(store, name):
    try:
        mailbox = store.open_mailbox(name, readonly=True)
    except StoreError as error:
        if error.kind == StoreError.NOT_FOUND:
            return
        raise
    try:
        if not never_gave_uids(mailbox):
            raise ToolError("the destination already has mail in %s; transfer needs an "
                            "empty destination" % display_name(name))
    finally:
        mailbox.close()


def transfer(source, target, report):
    """Copy everything; report(text) gets one line per folder. Returns the message count.

    All folders are created before any message is copied, so a destination
    that refuses folders fails before it holds any mail.
    """
    entries = plan(source, target)
    for name, target_name, attributes, _ in entries:
        if NOSELECT not in attributes:
            _create_folder(target, target_name)
        elif HAS_NO_CHILDREN in attributes:
            _create_folder(target, target_name + _delimiter(target))
    progress = Progress(sum(entry[3] for entry in entries), "")
    try:
        for name, target_name, attributes, count in entries:
            if NOSELECT not in attributes:
                progress.advance(0, display_name(name))
                _transfer_folder(source, target, name, target_name, progress)
                report("%s: %d messages" % (display_name(name), count))
    finally:
        progress.finish()
    translate = _translator(source, target)
    for name in source.subscriptions():
        target.subscribe(translate(name))
    return sum(entry[3] for entry in entries)


def _create_folder(store, name):
    """Create a folder (or with a trailing delimiter a directory); INBOX and existing ones stay."""
    if name.upper() == b"INBOX":
        return
    try:
        store.create(name)
    except StoreError as error:
        if error.kind != StoreError.EXISTS:
            raise


def _transfer_folder(source, target, name, target_name, progress):
    origin = source.open_mailbox(name, readonly=True)
    try:
        destination = target.open_mailbox(target_name)
        try:
            uids = [m.uid for m in origin.messages]
            if not copy_messages(origin, destination, uids, progress, whole=True):
                raise ToolError("%s: the UIDs could not be kept" % display_name(name))
        finally:
            destination.close()
    finally:
        origin.close()
