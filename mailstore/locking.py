"""Lock an mbox file the way the MTAs expect (reference/locking.md §§2-4, 7, 9).

A mailbox is protected by up to three independent locks: the dotlock
`<mailbox>.lock` (procmail, Postfix, Exim, mail.local, UW), an fcntl record
lock (Postfix, procmail, Dovecot) and flock (UW, mail.local).  On local Linux
filesystems fcntl and flock do not see each other, so a writer takes all three.

Every lock is tried without blocking.  Because peers take them in different
orders, waiting for one while holding another can deadlock (locking.md §4), so
when any lock is busy everything already held is released before sleeping and
the whole set is tried again, until the timeout gives StoreError(IN_USE).
"""

import contextlib
import errno
import fcntl
import os
import stat
import struct
import time

from mailstore import StoreError
from server.limits import DOTLOCK_STALE_AGE, MBOX_LOCK_TIMEOUT

WRITE_METHODS = ("dotlock", "fcntl", "flock")
# Dovecot's default mbox_read_locks; a dotlock is exclusive by nature, so a
# shared read takes one only when the caller asks for it.
READ_METHODS = ("fcntl",)

# Back-off between rounds: short at first so a delivery that finishes quickly
# costs little, then about once a second as UW retries.
FIRST_BACKOFF = 0.2
MAX_BACKOFF = 1.0

# UW makes lock files 0666 so any user's process can break a stale one.
DOTLOCK_MODE = 0o666

# struct flock: l_type, l_whence (short); l_start, l_len (off_t, 64-bit in
# every Python build); l_pid (pid_t, must be 0 for OFD locks).  Native
# alignment reproduces the C layout.
_FLOCK_STRUCT = "hhqqi"


class MboxLock:
    """The set of locks on one mailbox, taken together and released together.

    Use as a context manager; `held` names the locks actually held, which
    lacks "dotlock" when the spool directory refuses one (UW's "Mailbox
    vulnerable" case).
    """

    def __init__(self, path, fd, methods, exclusive, timeout, stale_age, log, privileged):
        self.path = path
        self.lock_path = path + ".lock"
        self.fd = fd
        self.methods = tuple(methods)
        self.exclusive = exclusive
        self.timeout = timeout
        self.stale_age = stale_age
        self._log = log or _discard_log
        self._privileged = privileged
        self._held = []
        # Kept open while held: an open inode cannot be freed and reused, so
        # comparing (st_dev, st_ino) at release reliably tells ours apart
        # from a lock a peer created after removing ours.
        self._dotlock_fd = None
        # Set once the directory refused the dotlock (EACCES): like UW, carry
        # on with the kernel locks alone and warn once per acquisition.
        self._dotlock_unavailable = False

    @property
    def held(self):
        """Names of the locks held now, in the order they were taken."""
        return tuple(self._held)

    def __enter__(self):
        self.acquire()
        return self

    def __exit__(self, exc_type, exc, traceback):
        self.release()

    def acquire(self):
        """Take every lock in `methods`, retrying as a set until `timeout`."""
        self._dotlock_unavailable = False
        deadline = time.monotonic() + self.timeout
        delay = FIRST_BACKOFF
        busy = self._try_all()
        if busy is not None:
            self._log("info", "Mailbox %s is locked (%s), waiting up to %g seconds"
                      % (self.path, busy, self.timeout))
        while busy is not None:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise StoreError(StoreError.IN_USE, "Mailbox %s is locked by another process "
                                 "(%s lock busy)" % (self.path, busy))
            time.sleep(min(delay, remaining))
            delay = min(delay * 2, MAX_BACKOFF)
            busy = self._try_all()

    def release(self):
        """Drop every held lock, the last taken first."""
        while self._held:
            method = self._held.pop()
            try:
                _RELEASERS[method](self)
            except OSError as error:
                self._log("warning", "Cannot release %s lock on %s: %s"
                          % (method, self.path, error.strerror))

    def _try_all(self):
        """Take all locks once; None on success, else the busy method (nothing held then)."""
        for method in self.methods:
            try:
                taken = _TAKERS[method](self)
            except StoreError:
                self.release()
                raise
            except OSError as error:
                self.release()
                raise StoreError(StoreError.TEMPORARY, "Cannot %s-lock %s: %s"
                                 % (method, self.path, error.strerror)) from error
            if not taken:
                self.release()
                return method
        return None

    # --- dotlock ---------------------------------------------------------

    def _take_dotlock(self):
        """Create `<mailbox>.lock`; False while a live one exists."""
        # A stale lock removed here may be re-created by a peer at once, so
        # allow a few rounds before calling the lock busy.
        for _ in range(3):
            if self._dotlock_unavailable:
                return True
            try:
                self._dotlock_fd = self._with_privilege_on_eacces(_create_lock_file,
                                                                  self.lock_path)
            except FileExistsError:
                if not self._remove_if_stale():
                    return False
                continue
            except PermissionError:
                self._give_up_dotlock("directory %s must have 1777 protection"
                                      % os.path.dirname(os.path.abspath(self.lock_path)))
                return True
            self._held.append("dotlock")
            return True
        return False

    def _remove_if_stale(self):
        """Unlink the existing lock if its ctime is older than stale_age; True to retry now."""
        try:
            info = os.lstat(self.lock_path)
        except FileNotFoundError:
            return True
        if stat.S_ISLNK(info.st_mode):
            self._log("crit", "SECURITY PROBLEM: symbolic link on lock name: %s" % self.lock_path)
            raise StoreError(StoreError.NO_PERMISSION,
                             "Lock name %s is a symbolic link" % self.lock_path)
        age = time.time() - info.st_ctime
        dead_owner = _dead_local_owner(self.lock_path)
        if age < self.stale_age and not dead_owner:
            return False
        if dead_owner:
            self._log("warning", "Removing lock %s of dead process %d" % (self.lock_path, dead_owner))
        else:
            self._log("warning", "Removing stale lock %s (%d seconds old)" % (self.lock_path, age))
        # Between the lstat and the unlink a peer may have replaced the stale
        # lock; UW and Dovecot share this window, which no unlink can close.
        try:
            self._with_privilege_on_eacces(os.unlink, self.lock_path)
        except FileNotFoundError:
            pass
        except PermissionError as error:
            self._give_up_dotlock("cannot remove stale lock %s: %s"
                                  % (self.lock_path, error.strerror))
        return True

    def _give_up_dotlock(self, reason):
        """Continue with kernel locks only, as UW does when it cannot dotlock."""
        # UW's choice (locking.md §2): refusing service would lock users out
        # of a spool set up for setgid MUAs; fcntl+flock still exclude the
        # MTAs that also take a kernel lock: procmail, Postfix, Exim and
        # mail.local all do (locking.md §1).
        self._dotlock_unavailable = True
        self._log("warning", "Mailbox vulnerable - %s" % reason)

    def _release_dotlock(self):
        """Unlink the lock file, but only if it is still the one we created."""
        fd, self._dotlock_fd = self._dotlock_fd, None
        try:
            if _same_file(self.lock_path, os.fstat(fd)):
                self._with_privilege_on_eacces(os.unlink, self.lock_path)
            else:
                self._log("warning", "Lock %s was removed or replaced by another process"
                          % self.lock_path)
        finally:
            os.close(fd)

    def _with_privilege_on_eacces(self, operation, lock_path):
        """Run operation(lock_path); on EACCES retry it once with the privileged group."""
        try:
            return operation(lock_path)
        except PermissionError:
            # As Dovecot does: the mail group may only lock mailboxes the
            # user can read, or users could lock each other out.  access()
            # checks the real uid/gid, which the privilege drop made the user's.
            if self._privileged is None or not os.access(self.path, os.R_OK):
                raise
        with self._privileged():
            return operation(lock_path)

    # --- kernel locks ----------------------------------------------------

    def _take_fcntl(self):
        """Open File Description record lock on the whole file; False if a peer holds one."""
        lock_type = fcntl.F_WRLCK if self.exclusive else fcntl.F_RDLCK
        if not _set_ofd_lock(self.fd, lock_type):
            return False
        self._held.append("fcntl")
        return True

    def _release_fcntl(self):
        """Drop our OFD record lock."""
        _set_ofd_lock(self.fd, fcntl.F_UNLCK)

    def _take_flock(self):
        """flock(2) the file; False if a peer holds a conflicting flock."""
        operation = fcntl.LOCK_EX if self.exclusive else fcntl.LOCK_SH
        try:
            fcntl.flock(self.fd, operation | fcntl.LOCK_NB)
        except BlockingIOError:
            return False
        self._held.append("flock")
        return True

    def _release_flock(self):
        """Drop our flock."""
        fcntl.flock(self.fd, fcntl.LOCK_UN)


_TAKERS = {"dotlock": MboxLock._take_dotlock, "fcntl": MboxLock._take_fcntl,
           "flock": MboxLock._take_flock}
_RELEASERS = {"dotlock": MboxLock._release_dotlock, "fcntl": MboxLock._release_fcntl,
              "flock": MboxLock._release_flock}


def lock_mbox(path, fd, methods=None, exclusive=True, timeout=MBOX_LOCK_TIMEOUT,
              stale_age=DOTLOCK_STALE_AGE, log=None, privileged=None):
    """An MboxLock on the mailbox `path` open as `fd`, for `with lock_mbox(...) as held:`.

    `methods` defaults to WRITE_METHODS for exclusive locks and READ_METHODS
    for shared ones.  `fd` must be open for writing when `exclusive` (fcntl
    write locks need it).  `log(priority, message)` receives "info",
    "warning" and "crit" messages.  `privileged` is a context-manager factory
    that grants the mail group; it is used only to create or remove the
    dotlock after EACCES, and only when the user can read the mailbox.
    """
    if methods is None:
        methods = WRITE_METHODS if exclusive else READ_METHODS
    unknown = [method for method in methods if method not in _TAKERS]
    if unknown:
        raise ValueError("unknown lock methods: %s" % ", ".join(unknown))
    return MboxLock(path, fd, methods, exclusive, timeout, stale_age, log, privileged)


def _create_lock_file(lock_path):
    """Create the dotlock with its owner already in it and return its open fd.

    The lock appears by link() of a finished file (UW's hitching post, here
    an unnamed O_TMPFILE), so a process killed at any instant leaves either
    no lock or one naming it, which the next process removes at once when
    that pid is gone.  Without O_TMPFILE (or /proc) it falls back to O_EXCL
    and writes the owner after: a kill in between leaves an empty lock that
    waits for the stale age, as UW's do.
    """
    owner = ("%d:%s\n" % (os.getpid(), os.uname().nodename)).encode()
    directory = os.path.dirname(lock_path) or "."
    try:
        fd = os.open(directory, os.O_TMPFILE | os.O_WRONLY, DOTLOCK_MODE)
    except OSError as error:
        if error.errno not in (errno.EOPNOTSUPP, errno.EISDIR, errno.EINVAL):
            raise
        return _create_lock_file_exclusively(lock_path, owner)
    try:
        os.fchmod(fd, DOTLOCK_MODE)
        _write_owner(fd, owner)
        _link_open_file(fd, directory, os.path.basename(lock_path))
    except FileNotFoundError:
        os.close(fd)
        if os.path.isdir("/proc/self/fd"):
            raise
        return _create_lock_file_exclusively(lock_path, owner)
    except BaseException:
        os.close(fd)
        raise
    return fd


def _link_open_file(fd, directory, name):
    """Give the unnamed file `fd` the name `directory/name`; EEXIST if it is taken.

    link() never replaces, also not a symlink, so EEXIST means busy.  Python
    calls linkat() with AT_SYMLINK_FOLLOW (needed to follow /proc/self/fd/N
    to the file) only when a dir_fd is given.
    """
    dir_fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.link("/proc/self/fd/%d" % fd, name, dst_dir_fd=dir_fd, follow_symlinks=True)
    finally:
        os.close(dir_fd)


def _create_lock_file_exclusively(lock_path, owner):
    """The O_EXCL way: atomic on local filesystems and NFSv3+ (locking.md §8)."""
    fd = os.open(lock_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, DOTLOCK_MODE)
    try:
        os.fchmod(fd, DOTLOCK_MODE)
        _write_owner(fd, owner)
    except BaseException:
        os.close(fd)
        # Best effort: a lock file left behind would merely go stale.
        with contextlib.suppress(OSError):
            os.unlink(lock_path)
        raise
    return fd


def _write_owner(fd, owner):
    # The content is informational (UW leaves it empty): a full disk
    # must not turn a lock we hold into a leaked file.
    with contextlib.suppress(OSError):
        os.write(fd, owner)


def _dead_local_owner(lock_path):
    """The pid in a lock we wrote (`pid:host`) if that process is gone from this host, else 0.

    Only our own format is trusted: other writers (procmail, dotlockfile, UW)
    leave other content or none, and their locks wait for the stale age.
    """
    try:
        with open(lock_path, "rb") as handle:
            content = handle.read(256)
    except OSError:
        return 0
    pid, sep, host = content.rstrip(b"\n").partition(b":")
    if not (sep and pid.isdigit() and host == os.uname().nodename.encode()):
        return 0
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return int(pid)
    except OSError:
        return 0  # alive under another uid (EPERM)
    return 0


def _same_file(path, info):
    """True if `path` (not followed if a symlink) is the file `info` describes."""
    try:
        current = os.lstat(path)
    except FileNotFoundError:
        return False
    return (current.st_dev, current.st_ino) == (info.st_dev, info.st_ino)


def _set_ofd_lock(fd, lock_type):
    """F_OFD_SETLK over the whole file; False when a conflicting lock exists."""
    # OFD locks belong to the open file, not the process: closing another fd
    # of the mailbox cannot drop them, yet they conflict with the classic
    # POSIX locks of Postfix, procmail and Dovecot (Linux >= 3.15).
    request = struct.pack(_FLOCK_STRUCT, lock_type, os.SEEK_SET, 0, 0, 0)
    try:
        fcntl.fcntl(fd, fcntl.F_OFD_SETLK, request)
    except OSError as error:
        if error.errno in (errno.EAGAIN, errno.EACCES):
            return False
        raise
    return True


def _discard_log(priority, message):
    """Log sink used when the caller passes none."""
