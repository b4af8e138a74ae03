"""UW's session lock: an exclusive flock on /tmp/.<dev>.<ino> held while a POP3 session runs.

RFC 1939 gives a POP3 session exclusive access to its maildrop. Using UW's
own lock name means a real UW imapd/ipop3d on the same host sees us too
(locking.md §6). The name is checked as UW checks it: no symlink, one link.
"""

import errno
import fcntl
import os
import stat

from mailstore import StoreError


def session_lock_path(st, directory="/tmp"):
    """UW's name for the lock of the file with this stat."""
    return os.path.join(directory, ".%x.%x" % (st.st_dev, st.st_ino))


def held_elsewhere(mailbox_fd, directory="/tmp"):
    """True while some session holds the lock of this mailbox; takes and writes nothing."""
    try:
        fd = os.open(session_lock_path(os.fstat(mailbox_fd), directory),
                     os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except OSError:
        return False  # no lock file (or not one we could use): no POP3 session
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        return False
    except OSError as error:
        return error.errno in (errno.EWOULDBLOCK, errno.EAGAIN)
    finally:
        os.close(fd)


class SessionLock:
    """An exclusive session lock on one mailbox file; IN_USE when another holds it."""

    def __init__(self, mailbox_fd, directory="/tmp"):
        self.path = session_lock_path(os.fstat(mailbox_fd), directory)
        self.fd = None

    def acquire(self):
        for _ in range(5):
            fd = self._open_checked()
            if fd is None:
                continue  # unlinked by its holder's release between our open and fstat
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError as error:
                os.close(fd)
                if error.errno in (errno.EWOULDBLOCK, errno.EAGAIN):
                    raise StoreError(StoreError.IN_USE, "mailbox is locked by another session") from None
                raise StoreError(StoreError.TEMPORARY, "cannot lock session: %s" % error.strerror) from None
            if self._still_named(fd):
                os.ftruncate(fd, 0)
                os.write(fd, b"%d" % os.getpid())
                self.fd = fd
                return self
            os.close(fd)  # unlinked by its previous holder while we waited: retry
        raise StoreError(StoreError.TEMPORARY, "session lock keeps changing")

    def _open_checked(self):
        old_umask = os.umask(0)
        try:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o666)
        except OSError as error:
            raise StoreError(StoreError.TEMPORARY, "cannot open session lock %s: %s"
                             % (self.path, error.strerror)) from None
        finally:
            os.umask(old_umask)
        st = os.fstat(fd)
        if stat.S_ISREG(st.st_mode) and st.st_nlink == 0:
            # The session that held it released it (unlink, then close) just
            # after our open found the name: not a link attack, a file now gone.
            os.close(fd)
            return None
        if not stat.S_ISREG(st.st_mode) or st.st_nlink != 1:
            os.close(fd)
            raise StoreError(StoreError.NO_PERMISSION, "SECURITY PROBLEM: hard link to lock name %s"
                             % self.path)
        return fd

    def _still_named(self, fd):
        try:
            named = os.lstat(self.path)
        except FileNotFoundError:
            return False
        held = os.fstat(fd)
        return (named.st_dev, named.st_ino) == (held.st_dev, held.st_ino)

    def release(self):
        if self.fd is None:
            return
        try:
            os.unlink(self.path)
        except OSError:
            pass
        os.close(self.fd)
        self.fd = None
