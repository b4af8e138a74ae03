"""The two mail drivers the fault suite runs on: their files, and what a crash may leave.

Not a test module.  A test takes the `driver` fixture (conftest.py), which is
one of DRIVERS, and asks it where a user's mailboxes are, how to create and
snapshot them, how an MTA delivers to them, and which leftovers a crash may
leave: a lock left behind is a failure on both; Maildir's `tmp/` files are
not (the Maildir rules let a crashed delivery leave them, Dovecot removes
them after 36 hours).
"""

import os
import shutil
import time

# Internal dates of the generated Maildir messages (their files' mtime).
MAILDIR_EPOCH = 1400000000


class Mbox:
    """mbox: INBOX is a spool file, folders are files under ~/mail (or where told)."""

    name = "mbox"
    # Every change is one journalled rewrite: a STORE, an EXPUNGE or a MULTIAPPEND takes
    # effect on all its messages or on none, also across a crash.
    atomic_groups = True
    # The calls a crash child may die at (tests/fault/crash_child.py).
    hooked = ("write", "pwrite", "fsync", "ftruncate", "posix_fallocate", "unlink", "replace")
    non_write = ("pwrite", "fsync", "ftruncate", "posix_fallocate", "unlink", "replace")
    # How a child dies at a call: before it, after it, or half-way through a (p)write.
    kill_phases = ("before", "after", "torn")
    # ops_child.py operations that write: "index" writes the index sidecar and field cache.
    ops = ("append", "copy", "expunge", "index", "store")
    # The next session takes every lock the dead one held (SELECT takes the write lock),
    # so a lock still there after it is a failure.
    lazy_locks = False

    def location(self, home, inbox):
        return "mbox:%s:INBOX=%s" % (home, inbox)

    def room_location(self):
        """MailRoom's mail_location (its spool directory is filled in by the room)."""
        return None

    def inbox(self, home, spool):
        return str(spool)

    def folder(self, home, name):
        return os.path.join(str(home), name)

    def room_folder(self, home, name):
        """A folder of a MailRoom user (mail_location mbox:~/mail)."""
        return os.path.join(str(home), "mail", name)

    def create(self, path, messages, folder=False):
        """A mailbox file holding these mbox messages (From_ lines included)."""
        with open(path, "wb") as handle:
            handle.write(b"".join(messages))

    def roots(self, inbox, folder):
        """What a snapshot must hold to restore both mailboxes."""
        return [inbox, folder]

    def after_restore(self, paths):
        """An mtime an hour ago and an atime a day ahead (see atime_ahead)."""
        for path in paths:
            os.utime(path, (time.time(), time.time() - 3600))
            atime_ahead(path)

    def locks(self, mailboxes):
        return [path + ".lock" for path in mailboxes if os.path.lexists(path + ".lock")]

    def lock_of(self, mailbox):
        return mailbox + ".lock"

    def leftovers(self, mailboxes):
        """Harmless files a crash left (none for mbox: journals are checked apart)."""
        return []

    def consistency(self, mailbox, entries):
        """Problems of the mailbox's own metadata (mbox: checked against a fresh index)."""
        return []

    def procmail_target(self, mailbox):
        return mailbox

    def deliver(self, mailbox, message):
        from faultroom import deliver_locked

        deliver_locked(mailbox, message)


class Maildir:
    """Maildir: INBOX is ~/Maildir, folder NAME is ~/Maildir/.NAME (Maildir++)."""

    name = "maildir"
    # Each message file is renamed or unlinked on its own, as in Dovecot and Courier:
    # a crash in the middle of a STORE, EXPUNGE, MULTIAPPEND or COPY of several messages
    # leaves some done and some not.  Each message is still either before or after.
    atomic_groups = False
    hooked = ("write", "fsync", "open", "rename", "link", "unlink", "utime")
    non_write = ("fsync", "open", "rename", "link", "unlink", "utime")
    kill_phases = ("before", "after")  # none of non_write writes data: no torn call
    # "scan" numbers mail delivered meanwhile (writes dovecot-uidlist), "commit" is
    # POP3's UPDATE (unlink DELEd, rename the rest to cur/ with \Seen).
    ops = ("append", "commit", "copy", "expunge", "scan", "store")
    # dovecot-uidlist.lock and dovecot-keywords.lock are only taken to number new mail or
    # name a new keyword, so a dead process's lock stays until someone needs it, and that
    # one must get it at once (it names a dead pid of this host, as Dovecot's do).
    lazy_locks = True

    def location(self, home, inbox):
        return "maildir:%s" % inbox

    def room_location(self):
        return "maildir:~/Maildir"

    def inbox(self, home, spool):
        return os.path.join(str(home), "Maildir")

    def folder(self, home, name):
        return os.path.join(str(home), "Maildir", "." + name)

    room_folder = folder

    def create(self, path, messages, folder=False):
        """A Maildir with each message (From_ line dropped) in new/, dated in delivery order.

        The names start with increasing seconds, so the first scan numbers
        them in this order.
        """
        for part in ("cur", "new", "tmp"):
            os.makedirs(os.path.join(path, part), exist_ok=True)
        if folder:
            open(os.path.join(path, "maildirfolder"), "wb").close()
        for number, message in enumerate(messages, 1):
            stamp = MAILDIR_EPOCH + number * 60
            name = os.path.join(path, "new", "%d.M%dP1Q%d.fault" % (stamp, number, number))
            with open(name, "wb") as handle:
                handle.write(without_from_line(message))
            os.utime(name, (stamp, stamp))

    def roots(self, inbox, folder):
        return [inbox]  # the folder is a directory inside it

    def after_restore(self, paths):
        pass

    def locks(self, mailboxes):
        return [os.path.join(path, name) for path in mailboxes
                for name in ("dovecot-uidlist.lock", "dovecot-keywords.lock")
                if os.path.lexists(os.path.join(path, name))]

    def lock_of(self, mailbox):
        return os.path.join(mailbox, "dovecot-uidlist.lock")

    def leftovers(self, mailboxes):
        """Files of deliveries that died in tmp/, and a dovecot-uidlist.tmp."""
        left = []
        for path in mailboxes:
            left += [os.path.join(path, "tmp", name)
                     for name in os.listdir(os.path.join(path, "tmp"))]
            left += [os.path.join(path, name) for name in ("dovecot-uidlist.tmp",
                                                           "dovecot-keywords.tmp")
                     if os.path.lexists(os.path.join(path, name))]
        return left

    def consistency(self, mailbox, entries):
        """dovecot-uidlist names every file in new/ and cur/ with the UID the session showed,
        UIDs are unique and below the next UID, and no file is in both new/ and cur/."""
        from mailstore.maildiruidlist import parse_uidlist

        with open(os.path.join(mailbox, "dovecot-uidlist"), "rb") as handle:
            uidlist = parse_uidlist(handle.read())
        if uidlist is None:
            return ["dovecot-uidlist unreadable"]
        problems = []
        bases = [name.partition(":")[0] for part in ("new", "cur")
                 for name in os.listdir(os.path.join(mailbox, part)) if not name.startswith(".")]
        if len(bases) != len(set(bases)):
            problems.append("a file is in new/ and cur/ at once")
        uids = sorted(uidlist.uid(base) or 0 for base in bases)
        if 0 in uids:
            problems.append("a file has no record in dovecot-uidlist")
        if uids != [entry.uid for entry in entries]:
            problems.append("dovecot-uidlist UIDs %s... differ from the session's %s..."
                            % (uids[:5], [entry.uid for entry in entries][:5]))
        if len(set(uids)) != len(uids) or (uids and uids[-1] >= uidlist.next_uid):
            problems.append("dovecot-uidlist: duplicate UIDs or next UID %d too low"
                            % uidlist.next_uid)
        return problems

    def procmail_target(self, mailbox):
        return mailbox + "/"  # procmail delivers to a Maildir when the name ends with "/"

    def deliver(self, mailbox, message):
        """Deliver as a Maildir MDA does: write tmp/NAME, then rename it into new/."""
        deliver_maildir(mailbox, without_from_line(message))


DRIVERS = {"mbox": Mbox(), "maildir": Maildir()}


def taken_at_once(lock_path, timeout):
    """True when a new locker gets this dotlock within `timeout` (its owner is dead)."""
    from mailstore import StoreError
    from mailstore.locking import lock_mbox

    assert lock_path.endswith(".lock")
    lock = lock_mbox(lock_path[:-len(".lock")], None, methods=("dotlock",), timeout=timeout)
    try:
        lock.acquire()
    except StoreError:
        return False
    lock.release()
    return True
_DELIVERED = [0]


def without_from_line(message):
    """An mbox message as a Maildir file holds it: no From_ line, no trailing separator."""
    if message.startswith(b"From "):
        message = message.split(b"\n", 1)[1]
    return message[:-1] if message.endswith(b"\n\n") else message


def deliver_maildir(mailbox, data):
    _DELIVERED[0] += 1
    name = "%d.M%dP%dQ%d.faultmta" % (time.time(), time.time() % 1 * 1e6, os.getpid(),
                                     _DELIVERED[0])
    temporary = os.path.join(mailbox, "tmp", name)
    with open(temporary, "wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())
    os.rename(temporary, os.path.join(mailbox, "new", name))


def atime_ahead(path):
    """Move a mailbox file's atime a day ahead, leaving its mtime.

    procmail sleeps a second, holding its locks, before writing to an mbox
    read during this second (so that the new mail shows as unread); an atime
    ahead of the clock is never updated by reading (relatime), which spares
    the trials that second.  The locking is the same.  Maildirs need nothing.
    """
    if os.path.isfile(path):
        os.utime(path, (time.time() + 86400, os.stat(path).st_mtime))


class Snapshot:
    """Files and directories (with the files' mtimes) saved, to be put back for each trial.

    A file is rewritten in place (same inode, as an mbox spool keeps its
    own); a directory is replaced as a whole.
    """

    def __init__(self, driver, paths):
        self.driver, self.paths, self.saved = driver, [str(p) for p in paths], []
        for path in self.paths:
            if os.path.isdir(path):
                for top, _, files in os.walk(path):
                    self.saved.append((top, None, None))
                    for name in files:
                        self.saved.append(_saved_file(os.path.join(top, name)))
            else:
                self.saved.append(_saved_file(path))

    def restore(self, relocate=lambda path: path, owner=None):
        """Put everything back (under relocate(path)), owned by owner=(uid, gid) if given."""
        for path in self.paths:
            if os.path.isdir(relocate(path)):
                shutil.rmtree(relocate(path))
        for path, data, mtime in self.saved:
            target = relocate(path)
            if data is None:
                os.makedirs(target, mode=0o700, exist_ok=True)
            else:
                with open(target, "wb") as handle:
                    handle.write(data)
                os.utime(target, (mtime, mtime))
            if owner:
                os.chown(target, *owner)
        self.driver.after_restore([relocate(p) for p in self.paths])


def _saved_file(path):
    with open(path, "rb") as handle:
        return path, handle.read(), os.stat(path).st_mtime

