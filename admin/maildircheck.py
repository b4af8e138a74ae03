"""check on a Maildir folder: the uidlist against the files, stale locks, old tmp/ files.

Without --repair nothing is changed: the folder is not even opened through
the driver, whose scan would number new files itself. With --repair:

- a stale `dovecot-uidlist.lock` or `dovecot-keywords.lock` (older than
  the driver's stale age, so no live writer holds it) is removed;
- files in tmp/ untouched for 36 hours (the Maildir rule; their ctime, as
  a delivery sets the mtime to the internal date) are moved to a rescue
  directory under the user's index directory, not deleted, since a delivery
  that died between its write and its rename may have left a whole message;
- under the uidlist lock, message files without a UID get the next ones
  and records whose file is gone (seen so in two directory passes) are
  dropped, exactly as the servers' scan does.  No message file is renamed
  or removed, so no message can be lost.
"""

import contextlib
import errno
import os
import shutil
import stat
import time

from admin.check import Report
from admin.context import ToolError
from mailstore import maildiruidlist as uidfile
from mailstore.maildir import KEYWORDS, UIDLIST, UIDLIST_STALE_AGE, MaildirMailbox
from mailstore.maildirstore import is_maildir

# Bernstein's maildir(5): a file in tmp/ not accessed for 36 hours is debris.
TMP_STALE_SECONDS = 36 * 3600
# At most this many file names are quoted in a report line.
NAMES_SHOWN = 3


def check(store, name, repair):
    """Check (and with repair, mend) one Maildir folder; returns a Report."""
    path = store.path(name)
    if not is_maildir(path):
        raise ToolError("%s is not a Maildir folder (no cur/ in it)" % path)
    report = Report()
    _stale_locks(path, repair, report)
    _old_tmp_files(store, path, repair, report)
    mailbox = MaildirMailbox(path, store, readonly=True)
    uidlist, listing = _inspect(mailbox, report)
    if repair and report.problems:
        uidlist, listing = _renumber(store, name)
        report.actions.append("dovecot-uidlist now matches the %d message files" % len(listing))
    report.summary = _summary(uidlist, listing)
    return report


def _summary(uidlist, listing):
    if uidlist is None:
        return "%d message files, no dovecot-uidlist" % len(listing)
    return "%d messages, UIDVALIDITY %d, UIDNEXT %d" % (len(listing), uidlist.uidvalidity,
                                                          uidlist.next_uid)


def _inspect(mailbox, report):
    """(uidlist or None, listing): the uidlist and the directories compared, read-only."""
    data = uidfile.read_file(os.path.join(mailbox.path, UIDLIST))
    uidlist = uidfile.parse_uidlist(data) if data is not None else None
    records = uidlist.records if uidlist else {}
    listing = mailbox._confirmed_listing(set(records))
    if data is not None and uidlist is None:
        report.problems.append("dovecot-uidlist is unreadable: the messages will get new UIDs "
                               "and a new UIDVALIDITY")
    elif uidlist is None and listing:
        report.problems.append("there is no dovecot-uidlist: the messages have no UIDs yet")
    unnumbered = sorted(base for base in listing if base not in records)
    if unnumbered and uidlist is not None:
        report.problems.append("%d message files in new/ or cur/ are not in dovecot-uidlist%s"
                               % (len(unnumbered), _some(unnumbered)))
    missing = sorted((uid for base, (uid, _) in records.items() if base not in listing))
    if missing:
        report.problems.append("%d dovecot-uidlist records have no message file (UIDs %s)"
                               % (len(missing), _some_uids(missing)))
    return uidlist, listing


def _some(names):
    shown = ", ".join(names[:NAMES_SHOWN])
    return ": " + shown + (", ..." if len(names) > NAMES_SHOWN else "")


def _some_uids(uids):
    return ", ".join("%d" % uid for uid in uids[:NAMES_SHOWN]) + (
        ", ..." if len(uids) > NAMES_SHOWN else "")


def _renumber(store, name):
    """Under the uidlist lock: UIDs for unknown files, records of gone files dropped."""
    mailbox = store.open_mailbox(name)
    try:
        with mailbox._uidlist_lock():
            uidlist, listing = mailbox._assign_uids({m.base for m in mailbox.messages})
    finally:
        mailbox.close()
    return uidlist, listing


def _stale_locks(path, repair, report):
    """Dotlocks left by a crash: older than the stale age no live writer holds them."""
    for name in (UIDLIST, KEYWORDS):
        lock = os.path.join(path, name + ".lock")
        age = _age(lock)
        if age is None or age < UIDLIST_STALE_AGE:
            continue
        report.problems.append("%s.lock is stale (%d seconds old)" % (name, age))
        if repair and _age(lock) is not None and _age(lock) >= UIDLIST_STALE_AGE:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(lock)
            report.actions.append("removed the stale %s.lock" % name)


def _age(path):
    """Seconds since the file's last change (ctime), or None when it does not exist."""
    try:
        return time.time() - os.lstat(path).st_ctime
    except FileNotFoundError:
        return None


def _old_tmp_files(store, path, repair, report):
    tmp = os.path.join(path, "tmp")
    try:
        names = sorted(os.listdir(tmp))
    except FileNotFoundError:
        return
    old = [name for name in names if _is_old_file(os.path.join(tmp, name))]
    if not old:
        return
    report.problems.append("%d files in tmp/ are older than 36 hours (unfinished deliveries)%s"
                           % (len(old), _some(old)))
    if repair:
        rescue = _rescue_directory(store, path)
        for name in old:
            _move(os.path.join(tmp, name), os.path.join(rescue, name))
        report.actions.append("moved %d old tmp/ files to %s" % (len(old), rescue))


def _is_old_file(path):
    try:
        info = os.lstat(path)
    except FileNotFoundError:
        return False
    return stat.S_ISREG(info.st_mode) and time.time() - info.st_ctime >= TMP_STALE_SECONDS


def _rescue_directory(store, path):
    """A new 0700 directory under the index directory's rescue/, named for the folder."""
    parent = os.path.join(store.location.index_dir, "rescue")
    os.makedirs(parent, mode=0o700, exist_ok=True)
    label = os.path.basename(os.path.normpath(path)).lstrip(".") or "Maildir"
    directory = os.path.join(parent, "%s-tmp-%s-%d" % (label, time.strftime("%Y%m%d-%H%M%S"),
                                                       os.getpid()))
    os.mkdir(directory, 0o700)
    return directory


def _move(source, target):
    """Rename; across file systems copy, sync, then remove the original."""
    try:
        os.rename(source, target)
        return
    except OSError as error:
        if error.errno != errno.EXDEV:
            raise
    shutil.copyfile(source, target, follow_symlinks=False)
    with open(target, "rb") as handle:
        os.fsync(handle.fileno())
    os.unlink(source)
