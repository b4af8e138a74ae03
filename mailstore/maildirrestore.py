"""Deliver into a Maildir folder with UIDs chosen by the caller, and carry over a UIDVALIDITY.

The Maildir counterpart of mailstore.mboxrestore, for pyimapd-mailutil's
copy and transfer: the messages keep the UIDs, UIDVALIDITY and UIDNEXT they
had, so clients need not download them again.  The steps are the driver's
own (mailstore.maildir): each message is written to tmp/ and synced with
its internal date as mtime, then, under `dovecot-uidlist.lock`, renamed
into place and its record (the given UID) appended to dovecot-uidlist at
once, as Dovecot appends records; the file is rewritten whole at the end.
A kill -9 at any instant leaves every placed message whole and all but
at most the last one recorded; that one gets the next free UID at the
next scan, as a message delivered by an MDA does.  RFC 3501 §2.3.1.1 stays
true: UIDs only go up.

A message that was already seen by a session (the mbox `Status: O`, the
OLD bit) goes to cur/, one that was not goes to new/, where it is
\\Recent to the next session as it was in the source.
"""

import contextlib
import os

from mailstore import StoreError
from mailstore import maildiruidlist as uidfile
from mailstore.maildir import UIDLIST, info_name
from mailstore.mboxformat import OLD


def append_with_uids(mailbox, items, uidvalidity=None, last_uid=None):
    """Deliver (uid, data, flag bits, keywords, (unix time, zone minutes)) items; return the UIDs.

    UIDs must rise and lie above the folder's last UID. `uidvalidity` is
    taken only by a folder that never gave out a UID (EXISTS otherwise);
    `last_uid` raises the last UID (so UIDNEXT) to at least that value.
    """
    uids = [item[0] for item in items]
    if any(b <= a for a, b in zip(uids, uids[1:])) or any(uid < 1 for uid in uids):
        raise StoreError(StoreError.CORRUPT, "UIDs to append must be positive and rising")
    mailbox._writable()
    keywords = [k for item in items for k in item[3]]
    if keywords:
        mailbox._register_keywords(list(dict.fromkeys(keywords)))
    written = []
    try:
        for _, data, _, _, (seconds, _) in items:
            written.append(mailbox._write_tmp(data, seconds))
        with mailbox._uidlist_lock():
            uidlist, _ = mailbox._assign_uids({m.base for m in mailbox.messages})
            if _take_uid_state(uidlist, uids, uidvalidity):
                mailbox._write_uidlist(uidlist)
            with _appending(mailbox) as fd:
                pending, written = written, []
                try:
                    _place_each(mailbox, uidlist, pending, items, fd)
                finally:
                    uidlist.next_uid = max(uidlist.next_uid, (last_uid or 0) + 1)
                    mailbox._write_uidlist(uidlist)
    finally:
        for tmp, _ in written:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
    mailbox._fsync_dirs()
    mailbox._scan()
    return uids


def _take_uid_state(uidlist, uids, uidvalidity):
    """Under the lock: refuse UIDs that would go backwards; adopt the UIDVALIDITY (True)."""
    if uids and uids[0] < uidlist.next_uid:
        raise StoreError(StoreError.EXISTS, "UID %d is not above the mailbox's last UID %d"
                         % (uids[0], uidlist.next_uid - 1))
    if uidvalidity is None or uidvalidity == uidlist.uidvalidity:
        return False
    if uidlist.records or uidlist.next_uid > 1:
        raise StoreError(StoreError.EXISTS, "the mailbox has given out UIDs; its UIDVALIDITY stays")
    uidlist.uidvalidity = uidvalidity
    return True


@contextlib.contextmanager
def _appending(mailbox):
    """dovecot-uidlist open for appending records (the caller holds its lock)."""
    try:
        fd = os.open(mailbox._sub(UIDLIST), os.O_WRONLY | os.O_APPEND | os.O_NOFOLLOW)
    except OSError as error:
        raise StoreError(StoreError.TEMPORARY, "cannot write %s: %s"
                         % (UIDLIST, error.strerror)) from None
    try:
        yield fd
    finally:
        os.close(fd)


def _place_each(mailbox, uidlist, written, items, fd):
    """Rename each tmp/ file into new/ or cur/, then append its record to the uidlist at once,
    so a kill -9 leaves at most one placed file without its UID. A failure removes the files
    not yet placed; the caller rewrites the uidlist with the records of the placed ones."""
    for index, ((tmp, base), item) in enumerate(zip(written, items)):
        uid, _, bits, keywords, (_, zone) = item
        subdir = "cur" if bits & OLD else "new"
        name = base
        if bits & ~OLD or keywords or subdir == "cur":  # cur/ names always carry `:2,`
            name = info_name(base, bits & ~OLD, keywords, "", mailbox.keyword_slots)
        try:
            os.rename(tmp, mailbox._sub(subdir, name))
        except OSError as error:
            for leftover, _ in written[index:]:
                with contextlib.suppress(OSError):
                    os.unlink(leftover)
            raise StoreError(StoreError.TEMPORARY, "cannot deliver message file: %s"
                             % error.strerror) from None
        uidlist.records[base] = (uid, uidfile.zone_field(zone))
        uidlist.next_uid = max(uidlist.next_uid, uid + 1)
        if fd is not None:
            try:
                uidfile.append_record(fd, uid, uidfile.zone_field(zone), base)
            except OSError:
                fd = None  # a torn line stays the last one; the caller's rewrite records all
