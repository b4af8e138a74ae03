"""The Maildir driver's store: INBOX is the root Maildir, folders as Dovecot lays them out.

LAYOUT=maildir++ (the default): folder `a/b` is the directory `ROOT/.a.b`,
a Maildir with a `maildirfolder` file; a name may not contain ".", which
is the hierarchy separator on disk (Dovecot refuses it too).
LAYOUT=fs: folder `a/b` is `ROOT/a/b`; a directory without cur/ holds
other folders only (\\Noselect).

Names are checked as for mbox folders (mailstore.folders.check_name); each
open folder is a mailstore.maildir.MaildirMailbox.
"""

import contextlib
import fcntl
import hashlib
import os
import shutil

from mailstore import StoreError
from mailstore.folders import (HAS_CHILDREN, HAS_NO_CHILDREN, MARKED, NOINFERIORS, NOSELECT,
                               UNMARKED, check_name, is_inbox)
from mailstore.maildir import MaildirMailbox

DELIMITER = b"/"
SUBSCRIPTIONS = "subscriptions"
MAILDIR_PARTS = ("cur", "new", "tmp")
# Where DELETE moves a folder before removing it: a name no layout lists.
TRASH_PREFIX = "..pyimapd-deleted-"


def _refuse(text):
    return StoreError(StoreError.NO_PERMISSION, text)


def make_maildir(path, folder_marker):
    """Create path with cur/, new/, tmp/ (mode 0700); Maildir++ folders get `maildirfolder`."""
    try:
        os.makedirs(path, mode=0o700, exist_ok=True)
        for part in MAILDIR_PARTS:
            with contextlib.suppress(FileExistsError):
                os.mkdir(os.path.join(path, part), 0o700)
        if folder_marker:
            os.close(os.open(os.path.join(path, "maildirfolder"), os.O_WRONLY | os.O_CREAT, 0o600))
    except OSError as error:
        raise StoreError(StoreError.NO_PERMISSION, "cannot create Maildir: %s"
                         % error.strerror) from None


def is_maildir(path):
    return os.path.isdir(os.path.join(path, "cur"))


class MaildirStore:
    """A user's Maildir: INBOX at the root (or INBOX=), folders beside it."""

    def __init__(self, location, config, log=None, user="MAILER-DAEMON"):
        self.location = location
        self.config = config
        self.user = user
        self.log = log or (lambda priority, message: None)
        self.fs_layout = location.layout == "fs"

    def modseq_log(self, path, inode):
        """The shared modseq file of a folder (mailstore.modseq), in the user's index
        directory (the folder itself is Dovecot's), named by its path and inode."""
        from mailstore import modseq

        name = hashlib.sha256(os.fsencode(path)).hexdigest()[:24]
        log_path = os.path.join(self.location.index_dir, "modseq-%s-%x" % (name, inode))
        try:
            os.makedirs(self.location.index_dir, mode=0o700, exist_ok=True)
        except OSError:
            return modseq.unavailable(log_path, self.log)
        return modseq.ModseqLog(log_path, self.log)

    # -- names and paths --------------------------------------------------

    def path(self, name):
        """The directory of a mailbox name; NO_PERMISSION for names the layout cannot hold."""
        if is_inbox(name):
            return self.location.inbox
        components = check_name(name)
        if self.fs_layout:
            if any(c in (b"cur", b"new", b"tmp") for c in components):
                raise _refuse("Invalid mailbox name: cur, new and tmp are Maildir's own")
            return os.path.join(self.location.root, *(os.fsdecode(c) for c in components))
        if b"." in name:
            raise _refuse("Invalid mailbox name: '.' is the Maildir++ hierarchy separator")
        return os.path.join(self.location.root, "." + os.fsdecode(name.replace(DELIMITER, b".")))

    def open_inbox(self, readonly=False, exclusive_session=False):
        """Open INBOX, creating the root Maildir on first use as Dovecot does."""
        make_maildir(self.location.inbox, folder_marker=False)
        mailbox = MaildirMailbox(self.location.inbox, self, readonly)
        mailbox.open(exclusive_session)
        return mailbox

    def open_mailbox(self, name, readonly=False):
        """Open INBOX or a folder; a missing one is NOT_FOUND, a bare directory NOT_SELECTABLE."""
        if is_inbox(name):
            return self.open_inbox(readonly)
        path = self.path(name)
        if not is_maildir(path):
            if os.path.isdir(path):
                raise StoreError(StoreError.NOT_SELECTABLE, "a directory is not a mailbox")
            raise StoreError(StoreError.NOT_FOUND, "no such mailbox")
        mailbox = MaildirMailbox(path, self, readonly)
        mailbox.open()
        return mailbox

    # -- CREATE, DELETE, RENAME -------------------------------------------

    def create(self, name):
        """CREATE a Maildir folder; its uidlist is written at once so UIDVALIDITY lasts."""
        if is_inbox(name):
            raise StoreError(StoreError.EXISTS, "Can't create INBOX")
        if b"*" in name or b"%" in name:
            raise _refuse("Invalid mailbox name: wildcards are not allowed")
        directory_only = name.endswith(DELIMITER)
        name = name.rstrip(DELIMITER)
        path = self.path(name)
        if is_maildir(path) or (directory_only and os.path.isdir(path)):
            raise StoreError(StoreError.EXISTS, "Mailbox already exists")
        if directory_only and self.fs_layout:
            os.makedirs(path, mode=0o700, exist_ok=True)  # fs: a level that holds folders only
            return
        make_maildir(self.location.root, folder_marker=False)
        make_maildir(path, folder_marker=not self.fs_layout)
        self.open_mailbox(name).close()

    def delete(self, name):
        """DELETE: the folder and its messages go; its inferiors stay (RFC 3501 §6.3.4)."""
        if is_inbox(name):
            raise _refuse("Can't delete INBOX")
        path = self.path(name)
        if not os.path.isdir(path):
            raise StoreError(StoreError.NOT_FOUND, "Mailbox does not exist")
        if self.fs_layout:
            self._delete_fs(path)
            return
        trash = os.path.join(self.location.root, TRASH_PREFIX + os.urandom(6).hex())
        try:
            os.rename(path, trash)  # atomic: the folder is gone or still whole
        except OSError as error:
            raise StoreError(StoreError.TEMPORARY, "Can't delete mailbox: %s"
                             % error.strerror) from None
        shutil.rmtree(trash, ignore_errors=True)

    def _delete_fs(self, path):
        """LAYOUT=fs: remove the Maildir parts; the directory goes too unless it holds folders."""
        if not is_maildir(path):
            try:
                os.rmdir(path)
            except OSError:
                raise StoreError(StoreError.HAS_CHILDREN,
                                 "Mailbox has inferior hierarchical names") from None
            return
        for entry in os.listdir(path):
            full = os.path.join(path, entry)
            if entry in MAILDIR_PARTS or not os.path.isdir(full):
                if os.path.isdir(full):
                    shutil.rmtree(full, ignore_errors=True)
                else:
                    with contextlib.suppress(OSError):
                        os.unlink(full)
        with contextlib.suppress(OSError):
            os.rmdir(path)

    def rename(self, old, new):
        """RENAME a folder with its inferiors; INBOX's messages move and INBOX stays (§6.3.5)."""
        if is_inbox(new):
            raise StoreError(StoreError.EXISTS, "Can't rename to INBOX")
        if b"*" in new or b"%" in new:
            raise _refuse("Invalid mailbox name: wildcards are not allowed")
        if is_inbox(old):
            self._move_inbox_messages(new)
            return
        old_path, new_path = self.path(old), self.path(new)
        if new.startswith(old + DELIMITER):
            raise _refuse("Can't rename a mailbox into itself")
        moves = [(old_path, new_path)] if os.path.isdir(old_path) else []
        if not self.fs_layout:
            # Inferiors are directories of their own: `.old.x` becomes `.new.x`.
            prefix = "." + os.fsdecode(old.replace(DELIMITER, b".")) + "."
            renamed = "." + os.fsdecode(new.replace(DELIMITER, b".")) + "."
            moves += [(os.path.join(self.location.root, entry),
                       os.path.join(self.location.root, renamed + entry[len(prefix):]))
                      for entry in sorted(os.listdir(self.location.root)) if entry.startswith(prefix)]
        elif moves:
            os.makedirs(os.path.dirname(new_path), mode=0o700, exist_ok=True)
        if not moves:
            raise StoreError(StoreError.NOT_FOUND, "Mailbox does not exist")
        for source, target in moves:
            if os.path.lexists(target):
                raise StoreError(StoreError.EXISTS, "Target mailbox already exists")
        try:
            for source, target in moves:
                os.rename(source, target)
        except OSError as error:
            raise StoreError(StoreError.TEMPORARY, "Can't rename mailbox: %s"
                             % error.strerror) from None

    def _move_inbox_messages(self, new):
        """RENAME INBOX: copy every message (flags, keywords, dates) to `new`, then expunge them."""
        from mailstore.text import move_all

        self.create(new)
        inbox = self.open_inbox()
        try:
            move_all(inbox, self.open_mailbox(new), self.location.index_dir)
        finally:
            inbox.close()

    # -- LIST -------------------------------------------------------------

    def list(self, pattern):
        """(name, attributes) of INBOX and every folder the LIST pattern matches."""
        if pattern.matches(b"INBOX"):
            yield b"INBOX", {NOINFERIORS, _marked(self.location.inbox)}
        folders = self._fs_folders() if self.fs_layout else self._maildirpp_folders()
        names = set(folders)
        for name in list(folders):  # levels above a folder that are not folders themselves
            levels = name.split(DELIMITER)
            for depth in range(1, len(levels)):
                names.add(DELIMITER.join(levels[:depth]))
        for name in sorted(names):
            if not pattern.matches(name):
                continue
            children = any(other.startswith(name + DELIMITER) for other in names)
            attributes = {HAS_CHILDREN if children else HAS_NO_CHILDREN}
            if folders.get(name):
                attributes.add(_marked(folders[name]))
            else:
                attributes.add(NOSELECT)
            yield name, attributes

    def _maildirpp_folders(self):
        """{name: path} of the `.a.b` Maildirs in the root."""
        folders = {}
        try:
            entries = os.listdir(self.location.root)
        except OSError:
            return folders
        for entry in entries:
            if not entry.startswith(".") or entry.startswith("..") or len(entry) < 2:
                continue
            name = os.fsencode(entry[1:]).replace(b".", DELIMITER)
            path = os.path.join(self.location.root, entry)
            if _listable(name) and is_maildir(path):
                folders[name] = path
        return folders

    def _fs_folders(self):
        """{name: path or None for a directory that only holds folders} under the root."""
        folders = {}
        root = self.location.root
        for directory, subdirs, _ in os.walk(root):
            subdirs[:] = [d for d in subdirs if d not in MAILDIR_PARTS and not d.startswith(".")]
            if directory == root:
                continue
            name = os.fsencode(os.path.relpath(directory, root)).replace(os.sep.encode(), DELIMITER)
            if _listable(name):
                folders[name] = directory if is_maildir(directory) else None
        return folders

    # -- subscriptions: Dovecot's `subscriptions` file -------------------------
    # Version 2 (Dovecot 2.3): "V<TAB>2", an empty line, then one name per
    # line with TAB between hierarchy levels.  Version 1 files (names as
    # written, "/" between levels) are read too.

    def _subscriptions_path(self):
        return os.path.join(self.location.root, SUBSCRIPTIONS)

    def subscriptions(self):
        try:
            with open(self._subscriptions_path(), "rb") as handle:
                lines = [line.rstrip(b"\r") for line in handle.read().split(b"\n")]
        except FileNotFoundError:
            return []
        if lines and lines[0] == b"V\t2":
            lines = lines[lines.index(b"", 1) + 1:] if b"" in lines[1:] else []
            lines = [line.replace(b"\t", DELIMITER) for line in lines]
        return list(dict.fromkeys(name for name in lines if name))

    def subscribe(self, name):
        check_name(name)
        name = b"INBOX" if is_inbox(name) else name
        self._update_subscriptions(lambda names: names if name in names else names + [name])

    def unsubscribe(self, name):
        name = b"INBOX" if is_inbox(name) else name

        def remove(names):
            if name not in names:
                raise StoreError(StoreError.NOT_FOUND, "Not subscribed to that mailbox")
            return [other for other in names if other != name]

        self._update_subscriptions(remove)

    def _update_subscriptions(self, change):
        """Read, change and replace the file under an flock on the root directory."""
        from mailstore.maildiruidlist import replace_file

        make_maildir(self.location.root, folder_marker=False)
        dir_fd = os.open(self.location.root, os.O_RDONLY | os.O_DIRECTORY)
        try:
            fcntl.flock(dir_fd, fcntl.LOCK_EX)
            names = change(self.subscriptions())
            replace_file(self._subscriptions_path(), b"V\t2\n\n" + b"".join(
                n.replace(DELIMITER, b"\t") + b"\n" for n in names))
        except OSError as error:
            raise StoreError(StoreError.TEMPORARY, "Can't update subscriptions: %s"
                             % error.strerror) from None
        finally:
            os.close(dir_fd)


def _listable(name):
    try:
        check_name(name)
    except StoreError:
        return False
    return not is_inbox(name)


def _marked(path):
    """\\Marked while new/ holds mail nobody has looked at."""
    try:
        with os.scandir(os.path.join(path, "new")) as entries:
            return MARKED if any(not e.name.startswith(".") for e in entries) else UNMARKED
    except OSError:
        return UNMARKED
