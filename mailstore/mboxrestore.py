"""Append to an mbox with UIDs chosen by the caller, and carry over a UIDVALIDITY.

An IMAP APPEND lets the mailbox pick the next UIDs; copying a mailbox or a
whole account (pyimapd-mailutil copy/transfer) must instead keep the UIDs,
UIDVALIDITY and UIDNEXT the source had, or every client downloads it again.
This works on an open MboxMailbox under its write lock, with the driver's
own append steps, and keeps RFC 3501 §2.3.1.1 true: UIDs only go up.
"""

import os
import time

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
    if mailbox.readonly:
        raise StoreError(StoreError.NO_PERMISSION, "mailbox is read-only")
    if mailbox.fd is None:
        mailbox._create_file()
    with mailbox._write_lock():
        _take_uid_state(mailbox, uids, uidvalidity)
        for _, _, _, keywords, _ in items:
            mailbox._add_keywords(keywords)
        mailbox._keep_uidvalidity_of_empty_file()
        if items:
            _write_messages(mailbox, items)
        top = max([mailbox.last_uid, last_uid or 0] + uids)
        if top != mailbox.last_uid:
            mailbox.last_uid, mailbox.dirty = top, True
        mailbox._write_changes()
        if items:
            now = time.time()
            os.utime(mailbox.fd, (now - 1, now))  # new mail: mtime after atime, UW's \Marked
        mailbox._parsed()
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


def _write_messages(mailbox, items):
    """Write the messages after the last one, then give the parsed copies their UIDs.

    The driver's catch-up parse numbers new mail from the last UID on; the
    X-UID headers written here already hold the wanted UIDs, so only the
    in-memory numbers are set to match and nothing is rewritten for them.
    """
    text = mailbox._separator() + b"".join(
        mailbox._append_text(uid, data, bits, keywords, date)
        for uid, data, bits, keywords, date in items)
    known = len(mailbox.messages)
    mailbox._write_at_end(text)
    mailbox._catch_up()
    fresh = mailbox.messages[known:]
    if len(fresh) != len(items):
        raise StoreError(StoreError.TEMPORARY, "appended messages were not found again")
    for message, item in zip(fresh, items):
        message.uid, message.dirty = item[0], False
    mailbox.last_uid = max(mailbox.last_uid, items[-1][0])
    mailbox.dirty = True
