"""Append to an mbox with UIDs chosen by the caller, and carry over a UIDVALIDITY.

An IMAP APPEND lets the mailbox pick the next UIDs; copying a mailbox or a
whole account (pyimapd-mailutil copy/transfer) must instead keep the UIDs,
UIDVALIDITY and UIDNEXT the source had, or every client downloads it again.
This works on an open MboxMailbox under its write lock, with the driver's
own append steps, and keeps RFC 3501 §2.3.1.1 true: UIDs only go up.
"""

from mailstore import StoreError


def append_with_uids(mailbox, items, uidvalidity=None, last_uid=None):
    """Append (uid, data, flag bits, keywords, (unix time, zone minutes)) items; return the UIDs.

    UIDs must rise and lie above the mailbox's last UID. `uidvalidity` is
    taken only by a mailbox that never gave out a UID (EXISTS otherwise);
    `last_uid` raises the last UID (so UIDNEXT) to at least that value.
    """
    uids = [item[0] for item in items]
    if any(b <= a for a, b in zip(uids, uids[1:])) or any(uid < 1 for uid in uids):
        raise StoreError(StoreError.CORRUPT, "UIDs to append must be positive and rising")
    mailbox._prepare_append()
    with mailbox._write_lock(), mailbox._undone_on_failure():
        _take_uid_state(mailbox, uids, uidvalidity)
        mailbox._append_numbered(items, last_uid or 0)
    return uids


def _take_uid_state(mailbox, uids, uidvalidity):
    """Under the write lock: refuse UIDs that would go backwards; adopt the UIDVALIDITY."""
    if uids and uids[0] <= mailbox.last_uid:
        raise StoreError(StoreError.EXISTS, "UID %d is not above the mailbox's last UID %d"
                         % (uids[0], mailbox.last_uid))
    if uidvalidity is None or uidvalidity == mailbox.uidvalidity:
        return
    if mailbox.messages or mailbox.last_uid:
        raise StoreError(StoreError.EXISTS, "the mailbox has given out UIDs; its UIDVALIDITY stays")
    mailbox.uidvalidity, mailbox.dirty = uidvalidity, True
