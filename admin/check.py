"""check: report damage in an mbox file and its sidecars; with --repair, mend it.

The file is examined under the read lock the servers use; a repair takes
the MTA's write locks (dotlock, fcntl, flock) for the whole run and writes
through the journal, in place, so a crash at any instant leaves either the
old file or the repaired one (mailstore.journal). What mailstore.mboxrepair
moves out of the mailbox (debris that is not NUL bytes) is first saved to
a rescue file in the user's index directory. The index sidecar and the
ENVELOPE/BODYSTRUCTURE cache are removed after a repair, and files left by
an older file at the same path are removed: the servers rebuild what they
need.
"""

import contextlib
import errno
import glob
import mmap
import os
import socket
import stat
import time

from admin.context import ToolError
from mailstore import StoreError, journal, mboxindex, mboxrepair


class Report:
    """What check found (problems) and did (actions), in the order it happened."""

    def __init__(self):
        self.problems = []
        self.actions = []
        self.summary = ""
        self.expected_uids = None


def mbox_path(store, name):
    """The file of an mbox store's mailbox; ToolError for other drivers."""
    from mailstore import folders
    from mailstore.mboxstore import MboxStore

    if not isinstance(store, MboxStore):
        raise ToolError("check works on mbox files; this mailbox is in a %s store"
                        % getattr(getattr(store, "location", None), "driver", "different"))
    return folders.resolve(store.location, name)


def check(store, name, repair):
    """Check (and with repair, mend) one mbox mailbox; returns a Report."""
    path = mbox_path(store, name)
    fd = _open(path, repair)
    try:
        report = _check_open_file(store, path, fd, repair)
    finally:
        os.close(fd)
    if report.expected_uids is not None:
        _verify(store, name, report.expected_uids)
    return report


def _verify(store, name, expected):
    """Read the repaired file as the servers will: the same messages and UIDs, or fail loudly."""
    mailbox = store.open_mailbox(name, readonly=True)
    try:
        found = [m.uid for m in mailbox.messages]
    finally:
        mailbox.close()
    if found != expected:
        raise ToolError("after the repair the mailbox reads as %d messages, not the %d written; "
                        "the rescue file keeps what was moved out" % (len(found), len(expected)))


def _open(path, repair):
    flags = (os.O_RDWR if repair else os.O_RDONLY) | os.O_NOFOLLOW | os.O_NOCTTY | os.O_NONBLOCK
    try:
        fd = os.open(path, flags)
    except OSError as error:
        if error.errno == errno.ELOOP:
            raise ToolError("%s is a symbolic link; refusing it" % path) from None
        raise ToolError("%s: %s" % (path, error.strerror)) from None
    st = os.fstat(fd)
    if not stat.S_ISREG(st.st_mode):
        os.close(fd)
        raise ToolError("%s is not a regular file" % path)
    return fd


def _lock(store, path, fd, exclusive):
    from mailstore.locking import lock_mbox

    config = store.config
    return lock_mbox(path, fd, methods=config.mbox_write_locks if exclusive
                     else config.mbox_read_locks, exclusive=exclusive,
                     timeout=config.mbox_lock_timeout, privileged=_privileged())


def _privileged():
    from server.privileges import privileged_gid, privileged_group_effective

    return privileged_group_effective if privileged_gid() is not None else None


def _check_open_file(store, path, fd, repair):
    report = Report()
    st = os.fstat(fd)
    identity = (st.st_dev, st.st_ino)
    with _lock(store, path, fd, exclusive=repair):
        _pending_journal(store, path, fd, identity, repair, report)
        size = os.fstat(fd).st_size
        index = mboxindex.load(store.index_path(path, identity), identity)
        if size == 0:
            report.summary = "empty mailbox"
            _check_index_file(store, path, identity, index, report)
        else:
            with contextlib.closing(mmap.mmap(fd, size, prot=mmap.PROT_READ)) as buf:
                exam = _examine(buf, index, path)
                _compare_index(buf, fd, index, exam, report)
                _check_index_file(store, path, identity, index, report)
                report.problems[:0] = exam.findings
                report.summary = _summary(exam)
                if repair and exam.damaged:
                    _rewrite(store, path, fd, identity, buf, exam, report)
                    report.expected_uids = [piece.uid for piece in exam.pieces]
        _leftover_sidecars(store, path, identity, repair, report)
        if repair and report.problems:
            _drop_sidecars(store, path, identity, report)
    return report


def _examine(buf, index, path):
    hint = (index.uidvalidity, index.last_uid, index.keywords) if index else None
    try:
        return mboxrepair.examine(buf, hint)
    except mboxrepair.NoMessages:
        raise ToolError("%s holds no From_ line at all: not an mbox file, left alone"
                        % path) from None


def _summary(exam):
    return "%d messages, UIDVALIDITY %d, UIDNEXT %d" % (
        len(exam.pieces), exam.uidvalidity, exam.last_uid + 1)


def _pending_journal(store, path, fd, identity, repair, report):
    """An interrupted rewrite: finished now when repairing, else reported."""
    journal_path = store.journal_path(path, identity)
    if not os.path.exists(journal_path):
        return
    if not repair:
        report.problems.append("an interrupted rewrite is pending (its journal is replayed "
                               "at the next read-write open)")
        return
    if journal.recover(fd, journal_path, identity):
        report.actions.append("finished an interrupted rewrite from its journal")
    else:
        report.actions.append("discarded an incomplete journal (the file was untouched)")


def _compare_index(buf, fd, index, exam, report):
    """An index the servers would trust must agree with the file on UIDs and flags."""
    if index is None or exam.damaged:
        return
    st = os.fstat(fd)
    stamp = (st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)
    if not mboxindex.usable(index, buf, stamp):
        return
    found = {piece.start: piece for piece in exam.pieces}
    for message in index.messages:
        piece = found.get(message.start)
        if piece is None or (piece.uid, piece.flags, tuple(piece.keywords)) != (
                message.uid, message.flags, tuple(message.keywords)):
            report.problems.append("the index sidecar contradicts the file at byte %d"
                                   % message.start)
            return
    if index.uidvalidity != exam.uidvalidity:
        report.problems.append("the index sidecar has another UIDVALIDITY than the file")


def _check_index_file(store, path, identity, index, report):
    index_path = store.index_path(path, identity)
    if index is None and os.path.exists(index_path):
        report.problems.append("the index sidecar is unreadable or of another format")


def _rewrite(store, path, fd, identity, buf, exam, report):
    """Save what is moved out, then write the repaired file through the journal."""
    from mailstore.sessionlock import held_elsewhere

    if held_elsewhere(fd):
        raise StoreError(StoreError.IN_USE, "a POP3 session holds the mailbox; try again later")
    if exam.rescued:
        report.actions.append("saved %d bytes of debris to %s" % (
            sum(end - start for start, end in exam.rescued), _save_rescued(store, path, buf, exam)))
    store.ensure_index_dir()
    journal_path = store.journal_path(path, identity)
    chunks = mboxrepair.render(buf, exam, socket.gethostname())
    try:
        journal.write_journal(journal_path, identity, [(0, chunks)], len(buf), tail=True)
        journal.apply(fd, journal_path)
    except OSError as error:
        raise StoreError(StoreError.TEMPORARY, "cannot rewrite the mailbox: %s"
                         % error.strerror) from None
    now = time.time()
    os.utime(fd, (now, now - 1))  # UW: atime after mtime means "read"
    report.actions.append("rewrote the mailbox: %d messages, %d kept their UIDs, %d got new ones"
                          % (len(exam.pieces), exam.kept_uids, exam.new_uids))


def _save_rescued(store, path, buf, exam):
    """Write the moved-out bytes to a new 0600 file under the index directory; its path."""
    directory = os.path.join(store.location.index_dir, "rescue")
    os.makedirs(directory, mode=0o700, exist_ok=True)
    name = "%s-%s-%d" % (os.path.basename(path), time.strftime("%Y%m%d-%H%M%S"), os.getpid())
    rescue = os.path.join(directory, name)
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW
    with open(os.open(rescue, flags, 0o600), "wb") as handle:
        for start, end in exam.rescued:
            handle.write(b"--- bytes %d to %d of %s ---\n" % (start, end, os.fsencode(path)))
            handle.write(buf[start:end])
            handle.write(b"\n")
        handle.flush()
        os.fsync(handle.fileno())
    return rescue


def _sidecars(store, path, identity):
    return [store.index_path(path, identity), store.cache_path(path, identity)]


def _drop_sidecars(store, path, identity, report):
    for sidecar in _sidecars(store, path, identity):
        with contextlib.suppress(FileNotFoundError):
            os.unlink(sidecar)
            report.actions.append("removed %s (the servers rebuild it)" % sidecar)


def _leftover_sidecars(store, path, identity, repair, report):
    """Sidecars named for this path but another inode: left by a file that was replaced."""
    current = set(_sidecars(store, path, identity) + [store.journal_path(path, identity)])
    leftovers = []
    for sidecar in _sidecars(store, path, (0, 0)) + [store.journal_path(path, (0, 0))]:
        stem = sidecar[:-len("-0")]
        leftovers += [p for p in glob.glob(glob.escape(stem) + "-*") if p not in current
                      and not p.endswith(".tmp")]
    if not leftovers:
        return
    report.problems.append("%d sidecar files are left from an earlier file at this path"
                           % len(leftovers))
    if repair:
        for leftover in leftovers:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(leftover)
        report.actions.append("removed %d leftover sidecar files" % len(leftovers))
