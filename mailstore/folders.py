"""Folders of the mbox store: names to paths, LIST, CREATE, DELETE, RENAME, subscriptions.

Folders are files under `location.root` (the home directory, UW style) and
directories are levels of hierarchy; INBOX is `location.inbox`.  Unlike UW's
defaults (servers.md §5) every name stays inside the root: no absolute
paths, no `~user`, no `..`, no dot files (UW's `hide-dot-files`, which also
keeps `~/.pyimapd` and shell start-up files out of reach).
"""

import contextlib
import errno
import fcntl
import os
import stat
import time

from mailstore import StoreError
from mailstore.locking import lock_mbox
from mailstore.mboxformat import pseudo_message

DELIMITER = b"/"
# UW's NETMAXMBX is 256 bytes; modified UTF-7 makes non-Latin names about
# three times longer than their text, so allow more.  PATH_MAX bounds it too.
MAX_NAME = 1024
# How long DELETE waits for a delivery agent that holds the folder's locks.
DELETE_LOCK_TIMEOUT = 5

NOSELECT = "\\Noselect"
NOINFERIORS = "\\Noinferiors"
HAS_CHILDREN = "\\HasChildren"
HAS_NO_CHILDREN = "\\HasNoChildren"
MARKED = "\\Marked"
UNMARKED = "\\Unmarked"

SUBSCRIPTIONS_FILE = ".mailboxlist"
# How much of a file LIST reads to tell an mbox; UW skips leading white space too.
_SNIFF = 256


def _refuse(text):
    return StoreError(StoreError.NO_PERMISSION, text)


def is_inbox(name):
    """True for the name INBOX, in any case (RFC 3501 §5.1)."""
    return name.upper() == b"INBOX"


def check_name(name):
    """Refuse names that could leave the folder root or that IMAP cannot carry.

    Returns the name's hierarchy components.  Only printable ASCII is
    allowed: modified UTF-7 needs nothing else, and CR, LF or NUL would
    break the subscription file or the path.
    """
    if is_inbox(name):
        return [b"INBOX"]
    if not name:
        raise _refuse("Empty mailbox name")
    if len(name) > MAX_NAME:
        raise _refuse("Mailbox name too long")
    if any(byte < 0x20 or byte > 0x7E for byte in name):
        raise _refuse("Invalid mailbox name: control or 8-bit characters")
    if name.startswith(DELIMITER):
        raise _refuse("Absolute mailbox names are not allowed")
    if name.startswith((b"~", b"#")):  # UW: other users' homes and namespaces
        raise _refuse("Mailbox names starting with ~ or # are not supported")
    components = name.split(DELIMITER)
    for component in components:
        if not component:
            raise _refuse("Invalid mailbox name: empty hierarchy level")
        if component.startswith(b"."):
            raise _refuse("Invalid mailbox name: a level starts with a dot")
    if is_inbox(components[0]):
        raise _refuse("INBOX cannot contain other mailboxes")
    return components


def _root(location):
    return os.path.realpath(location.root)


def _inside(path, directory):
    return path == directory or path.startswith(directory.rstrip(os.sep) + os.sep)


def resolve(location, name):
    """The absolute path of a mailbox; StoreError NO_PERMISSION if it would leave the root.

    Directories on the way may be symbolic links only to places inside the
    root; the final component is not followed here (the mbox driver opens it
    with O_NOFOLLOW).
    """
    if is_inbox(name):
        return location.inbox
    components = check_name(name)
    root = _root(location)
    path = os.path.join(root, *(os.fsdecode(c) for c in components))
    parent = os.path.realpath(os.path.dirname(path))
    if not _inside(parent, root):
        raise _refuse("Mailbox name leaves the mail directory")
    path = os.path.join(parent, os.path.basename(path))
    if _inside(path, os.path.realpath(location.index_dir)):
        raise _refuse("Mailbox name refers to the server's index directory")
    if path == os.path.realpath(location.inbox):
        raise _refuse("Mailbox name refers to INBOX; use the name INBOX")
    return path


_ERRNO_KINDS = {
    errno.ENOENT: StoreError.NOT_FOUND, errno.EEXIST: StoreError.EXISTS,
    errno.ENOTEMPTY: StoreError.EXISTS, errno.EACCES: StoreError.NO_PERMISSION,
    errno.EPERM: StoreError.NO_PERMISSION, errno.EROFS: StoreError.NO_PERMISSION,
    # ENOTDIR: a level of the name is a folder file, which cannot hold folders.
    errno.ENOTDIR: StoreError.NO_PERMISSION, errno.ENAMETOOLONG: StoreError.NO_PERMISSION,
}


def _store_error(error, text):
    """Name an OSError for the client; strerror only, never a path."""
    kind = _ERRNO_KINDS.get(error.errno, StoreError.TEMPORARY)
    return StoreError(kind, "%s: %s" % (text, error.strerror or "system error"))


# -- LIST ---------------------------------------------------------------------

def _looks_like_mbox(path, st):
    """Empty, or `From ` after any white space (a cheap check; the driver does the full one).

    Other files are not listed: a home directory holds much that is not
    mail.  O_NOATIME keeps the read from clearing the "new mail" state
    that atime records (mbox-compat.md §10).
    """
    if st.st_size == 0:
        return True
    flags = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_NOCTTY
    try:
        try:
            fd = os.open(path, flags | os.O_NOATIME)
        except PermissionError:
            fd = os.open(path, flags)  # O_NOATIME needs ownership
        try:
            start = os.pread(fd, _SNIFF, 0).lstrip(b"\r\n \t")
        finally:
            os.close(fd)
    except OSError:
        return False
    return start.startswith(b"From ") or (not start and st.st_size <= _SNIFF)


def _marked(st):
    """UW's "new mail" test: written since last read (mtime > atime) and not empty.

    servers.md says UW compares atime with ctime; mtime is used because
    utime(), with which UW and this server record "read", sets ctime too.
    """
    return MARKED if st.st_size > 0 and st.st_mtime_ns > st.st_atime_ns else UNMARKED


def _inbox_attributes(location):
    """INBOX never has inferiors (UW); marked from the spool file's times."""
    try:
        return {NOINFERIORS, _marked(os.stat(location.inbox))}
    except OSError:
        return {NOINFERIORS, UNMARKED}


def _identity(path):
    try:
        st = os.stat(path)
    except OSError:
        return None
    return (st.st_dev, st.st_ino)


class _Walk:
    """A lazy, sorted, depth-first walk of the folder tree under the root.

    Symbolic links are never followed nor listed (the driver refuses them),
    nor are dot files, names IMAP cannot carry, non-mbox files, the spool
    file and index directory if they live under the root, and, at the top,
    anything named "inbox" in any case (UW: the name means the spool).
    """

    def __init__(self, location, pattern):
        self.pattern = pattern
        self.root = os.fsencode(_root(location))
        self.hidden = {_identity(location.inbox), _identity(location.index_dir)} - {None}

    def _entries(self, path, prefix):
        """The listable-looking entries of one directory; none if unreadable."""
        try:
            with os.scandir(path) as scan:
                entries = [entry for entry in scan if self._visible(entry, prefix)]
        except OSError:
            return []
        return sorted(entries, key=lambda entry: entry.name)

    def _visible(self, entry, prefix):
        name = entry.name
        if name.startswith(b".") or any(byte < 0x20 or byte > 0x7E for byte in name):
            return False
        if not prefix and is_inbox(name):
            return False
        try:
            st = entry.stat(follow_symlinks=False)
        except OSError:
            return False
        if not (stat.S_ISREG(st.st_mode) or stat.S_ISDIR(st.st_mode)):
            return False
        return (st.st_dev, st.st_ino) not in self.hidden

    def _is_mailbox(self, entry):
        return entry.is_dir(follow_symlinks=False) or _looks_like_mbox(
            entry.path, entry.stat(follow_symlinks=False))

    def start(self):
        """The entries of the pattern's literal prefix directory, if it is a safe one."""
        prefix = self.pattern.literal_prefix()
        if not prefix:
            return prefix, self._entries(self.root, prefix)
        try:
            check_name(prefix)
        except StoreError:
            return prefix, []
        path = os.path.join(self.root, prefix)
        if os.path.realpath(path) != path or not os.path.isdir(path):
            return prefix, []  # a symlink on the way, or nothing there
        if is_inbox(prefix.split(DELIMITER)[0]) or _identity(path) in self.hidden:
            return prefix, []
        return prefix, self._entries(path, prefix)

    def folders(self):
        """Yield (name, attributes) for every matching folder and directory."""
        prefix, entries = self.start()
        stack = [(prefix, iter(entries))]
        while stack:
            prefix, entries = stack[-1]
            entry = next(entries, None)
            if entry is None:
                stack.pop()
                continue
            name = prefix + DELIMITER + entry.name if prefix else entry.name
            if len(name) > MAX_NAME:
                continue
            if entry.is_dir(follow_symlinks=False):
                yield from self._directory(stack, name, entry)
            elif self.pattern.matches(name) and self._is_mailbox(entry):
                yield name, {NOINFERIORS, _marked(entry.stat(follow_symlinks=False))}

    def _directory(self, stack, name, entry):
        """List a directory as \\Noselect if it matches; descend if anything below can."""
        matches = self.pattern.matches(name)
        descend = self.pattern.may_descend(name) and len(name) < MAX_NAME
        if not (matches or descend):
            return
        children = self._entries(entry.path, name)
        if matches:
            has_children = any(self._is_mailbox(child) for child in children)
            yield name, {NOSELECT, HAS_CHILDREN if has_children else HAS_NO_CHILDREN}
        if descend:
            stack.append((name, iter(children)))


def list_folders(location, pattern):
    """Yield (name, attributes) for INBOX and the folders matching a ListPattern.

    Files carry \\Noinferiors (an mbox file cannot hold folders) and
    \\Marked or \\Unmarked; directories carry \\Noselect and \\HasChildren
    or \\HasNoChildren (RFC 3348).  Directories are read only where the
    pattern can still match, so `LIST "" %` reads one directory.
    """
    if pattern.matches(b"INBOX"):
        yield b"INBOX", _inbox_attributes(location)
    yield from _Walk(location, pattern).folders()


# -- CREATE, DELETE, RENAME ---------------------------------------------------

def _check_new_name(name):
    """Names a client may create: also no wildcards, which LIST could not tell apart."""
    if b"*" in name or b"%" in name:
        raise _refuse("Invalid mailbox name: wildcards are not allowed")


def _make_directories(root, components):
    """Create each missing level under root with mode 0700 (UW's directory-protection)."""
    path = root
    for component in components:
        path = os.path.join(path, os.fsdecode(component))
        try:
            os.mkdir(path, 0o700)
        except FileExistsError:
            if not os.path.isdir(path):
                raise _refuse("Mailbox %s cannot contain other mailboxes"
                              % os.fsdecode(component)) from None
        except OSError as error:
            raise _store_error(error, "Can't create mailbox directory") from None


def _write_new_folder(path, hostname):
    """Create the file (0600, never over an existing one) holding UW's pseudo-message."""
    data = pseudo_message(int(time.time()), 0, [], hostname)
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_NOCTTY
    try:
        fd = os.open(path, flags, 0o600)
    except FileExistsError:
        raise StoreError(StoreError.EXISTS, "Mailbox already exists") from None
    except OSError as error:
        raise _store_error(error, "Can't create mailbox") from None
    try:
        with open(fd, "wb") as handle:
            handle.write(data)
            handle.flush()  # before utime(), or the write would set mtime again
            now = time.time()
            os.utime(fd, (now, now - 1))  # "read": a new folder is \Unmarked
    except OSError as error:
        with contextlib.suppress(OSError):
            os.unlink(path)
        raise _store_error(error, "Can't create mailbox") from None


def create(location, name, hostname):
    """CREATE: a folder file with UW's pseudo-message, or with a trailing `/` directories only."""
    if is_inbox(name):
        raise StoreError(StoreError.EXISTS, "Can't create INBOX")
    _check_new_name(name)
    directory_only = name.endswith(DELIMITER)
    if directory_only:
        name = name[:-1]
    path = resolve(location, name)
    components = name.split(DELIMITER)
    if os.path.lexists(path):
        raise StoreError(StoreError.EXISTS, "Mailbox already exists")
    if directory_only:
        _make_directories(_root(location), components)
        return
    _make_directories(_root(location), components[:-1])
    _write_new_folder(path, hostname)


def _existing(path):
    """lstat a mailbox path: NOT_FOUND if missing, refusal if it is a symbolic link."""
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        raise StoreError(StoreError.NOT_FOUND, "Mailbox does not exist") from None
    except OSError as error:
        raise _store_error(error, "Can't access mailbox") from None
    if stat.S_ISLNK(st.st_mode):
        raise _refuse("Mailbox is a symbolic link")
    if stat.S_ISREG(st.st_mode) and not _looks_like_mbox(path, st):
        raise StoreError(StoreError.NOT_FOUND, "Not a mailbox")
    if not (stat.S_ISREG(st.st_mode) or stat.S_ISDIR(st.st_mode)):
        raise StoreError(StoreError.NOT_FOUND, "Not a mailbox")
    return st


def _delete_file(path, lock_timeout):
    """Unlink under the MTA's locks, so no delivery in progress is cut off (UW does too)."""
    try:
        fd = os.open(path, os.O_RDWR | os.O_NOFOLLOW | os.O_NOCTTY | os.O_NONBLOCK)
    except OSError as error:
        raise _store_error(error, "Can't delete mailbox") from None
    try:
        with lock_mbox(path, fd, exclusive=True, timeout=lock_timeout):
            os.unlink(path)
    except OSError as error:
        raise _store_error(error, "Can't delete mailbox") from None
    finally:
        os.close(fd)


def delete(location, name, lock_timeout=DELETE_LOCK_TIMEOUT):
    """DELETE: unlink a folder file, or remove an empty directory.

    A directory that still holds anything is refused (RFC 3501 §6.3.4: a
    \\Noselect name with inferiors cannot be deleted), hidden files included:
    they are not ours to remove.
    """
    if is_inbox(name):
        raise _refuse("Can't delete INBOX")
    path = resolve(location, name)
    st = _existing(path)
    if stat.S_ISREG(st.st_mode):
        _delete_file(path, lock_timeout)
        return
    try:
        os.rmdir(path)
    except OSError as error:
        if error.errno in (errno.ENOTEMPTY, errno.EEXIST):
            raise StoreError(StoreError.HAS_CHILDREN,
                             "Mailbox has inferior hierarchical names") from None
        raise _store_error(error, "Can't delete mailbox") from None


def _move_file(old, new):
    """Rename that never replaces: link() fails on an existing target, rename() would not."""
    try:
        os.link(old, new)
    except FileExistsError:
        raise StoreError(StoreError.EXISTS, "Target mailbox already exists") from None
    except OSError as error:
        if error.errno not in (errno.EPERM, errno.EOPNOTSUPP, errno.EMLINK):
            raise
        if os.path.lexists(new):  # no hard links here: check, then rename
            raise StoreError(StoreError.EXISTS, "Target mailbox already exists") from None
        os.rename(old, new)
        return
    os.unlink(old)


def _move_directory(old, new):
    """mkdir() claims the target atomically; rename() then replaces that empty directory."""
    try:
        os.mkdir(new, 0o700)
    except FileExistsError:
        raise StoreError(StoreError.EXISTS, "Target mailbox already exists") from None
    try:
        os.rename(old, new)
    except OSError:
        with contextlib.suppress(OSError):
            os.rmdir(new)
        raise


def rename(location, old, new):
    """RENAME a folder file or a directory with everything below it, within the root.

    Renaming INBOX moves its messages and leaves INBOX in place (RFC 3501
    §6.3.5); that is the session's job, so it is refused here.
    """
    if is_inbox(old):
        raise _refuse("Renaming INBOX is not done here")
    if is_inbox(new):
        raise StoreError(StoreError.EXISTS, "Can't rename to INBOX")
    _check_new_name(new)
    old_path, new_path = resolve(location, old), resolve(location, new)
    st = _existing(old_path)
    if stat.S_ISDIR(st.st_mode) and _inside(new_path, old_path):
        raise _refuse("Can't rename a mailbox into itself")
    if os.path.lexists(new_path):
        raise StoreError(StoreError.EXISTS, "Target mailbox already exists")
    _make_directories(_root(location), new.split(DELIMITER)[:-1])
    try:
        if stat.S_ISDIR(st.st_mode):
            _move_directory(old_path, new_path)
        else:
            _move_file(old_path, new_path)
    except OSError as error:
        raise _store_error(error, "Can't rename mailbox") from None


# -- Subscriptions ------------------------------------------------------------

def subscriptions_path(location):
    """UW's subscription list: `~/.mailboxlist`, one name per line."""
    return os.path.join(location.root, SUBSCRIPTIONS_FILE)


def subscribed(location):
    """The subscribed names in file order, duplicates dropped; none if there is no file."""
    try:
        with open(subscriptions_path(location), "rb") as handle:
            lines = handle.read().split(b"\n")
    except FileNotFoundError:
        return []
    except OSError as error:
        raise _store_error(error, "Can't read subscriptions") from None
    names = (line.rstrip(b"\r") for line in lines)
    return list(dict.fromkeys(name for name in names if name))


def _update_subscriptions(location, change):
    """Apply change(list of names) and write the file back through a temporary file.

    A lock on the root directory serialises sessions of the same user, so
    two concurrent SUBSCRIBEs cannot lose one another's update.
    """
    directory = os.path.dirname(subscriptions_path(location))
    try:
        dir_fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    except OSError as error:
        raise _store_error(error, "Can't update subscriptions") from None
    try:
        fcntl.flock(dir_fd, fcntl.LOCK_EX)
        names = change(subscribed(location))
        _replace_subscriptions(location, names)
    finally:
        os.close(dir_fd)  # releases the flock


def _replace_subscriptions(location, names):
    """Write a complete new file, then rename it over the old one (mode 0600).

    One fixed temporary name suffices: the caller holds the lock.
    """
    path = subscriptions_path(location)
    temporary = path + ".new"
    flags = os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW | os.O_NOCTTY
    try:
        fd = os.open(temporary, flags, 0o600)
        with open(fd, "wb") as handle:
            os.fchmod(fd, 0o600)
            handle.write(b"".join(name + b"\n" for name in names))
            handle.flush()
            os.fsync(fd)
        os.replace(temporary, path)
    except OSError as error:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise _store_error(error, "Can't update subscriptions") from None


def subscribe(location, name):
    """Add a name to the subscriptions; subscribing twice is not an error (unlike UW)."""
    check_name(name)
    name = b"INBOX" if is_inbox(name) else name
    _update_subscriptions(location, lambda names: names if name in names else names + [name])


def unsubscribe(location, name):
    """Remove a name from the subscriptions; NOT_FOUND if it was not subscribed."""
    name = b"INBOX" if is_inbox(name) else name

    def remove(names):
        if name not in names:
            raise StoreError(StoreError.NOT_FOUND, "Not subscribed to that mailbox")
        return [other for other in names if other != name]

    _update_subscriptions(location, remove)
