"""transfer: a whole account from one mail_location to another, as clients knew it.

Every folder and directory, every message with its UID, flags, keywords and
internal date, each mailbox's UIDVALIDITY and UIDNEXT, and the
subscriptions. The destination must hold no mail yet, so that nothing is
merged and every UID can be kept; this is checked for all folders before
anything is written. The source is only read.

Between mbox and Maildir the IMAP names stay the same ("/" between levels
in both stores; on disk mbox makes directories and Maildir++ `.a.b`
names). What one format cannot hold is refused before anything is
written: a "." in a name for Maildir++, a folder that holds both mail and
folders for mbox (a file cannot be a directory), more than 26 keywords in
one Maildir folder. Maildir++ has no empty directories: one in an mbox
source is reported and left out (LAYOUT=fs keeps it).
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
    """[(source name, target name, attributes, message count)]; ToolError if the target has
    mail or cannot hold a folder as it is."""
    translate = _translator(source, target)
    entries = []
    for name, attributes in _folders(source):
        count = 0
        if NOSELECT not in attributes:
            _require_nameable(target, name, translate(name))
            _require_no_children(target, name, attributes)
            mailbox = source.open_mailbox(name, readonly=True)
            count = len(mailbox.messages)
            keywords = {k for message in mailbox.messages for k in message.keywords}
            mailbox.close()
            _require_keyword_room(target, name, keywords)
            _require_empty(target, translate(name))
        entries.append((name, translate(name), attributes, count))
    return entries


def _require_nameable(store, name, target_name):
    """The destination can name the folder (Maildir++: no "."; LAYOUT=fs: no cur, new, tmp)."""
    from mailstore import folders

    if target_name.upper() == b"INBOX":
        return
    try:
        if hasattr(store, "path"):
            store.path(target_name)
        else:
            folders.resolve(store.location, target_name)
    except StoreError as error:
        raise ToolError("folder %s cannot be named in the destination: %s"
                        % (display_name(name), error)) from None


def _require_no_children(store, name, attributes):
    """An mbox folder is a file: it cannot also hold folders, as a Maildir folder can."""
    from mailstore.folders import HAS_CHILDREN
    from mailstore.mboxstore import MboxStore

    if isinstance(store, MboxStore) and HAS_CHILDREN in attributes:
        raise ToolError("folder %s holds both messages and folders, which an mbox file "
                        "cannot; move its messages or its subfolders first" % display_name(name))


def _require_keyword_room(store, name, keywords):
    from mailstore.maildirstore import MaildirStore
    from mailstore.maildiruidlist import MAX_KEYWORDS

    if isinstance(store, MaildirStore) and len(keywords) > MAX_KEYWORDS:
        raise ToolError("folder %s uses %d keywords; a Maildir folder holds at most %d"
                        % (display_name(name), len(keywords), MAX_KEYWORDS))


def _keeps_empty_directories(store):
    """Maildir++ lists a level only while a folder lies below it: it has no empty directories."""
    from mailstore.maildirstore import MaildirStore

    return not isinstance(store, MaildirStore) or store.fs_layout


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
        elif HAS_NO_CHILDREN not in attributes:
            continue  # made with the folders below it
        elif _keeps_empty_directories(target):
            _create_folder(target, target_name + _delimiter(target))
        else:
            report("%s/: an empty directory, which Maildir++ cannot hold; left out"
                   % display_name(name))
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
