"""The mbox mailbox as IMAP uses it: several open copies, flags, expunge by UID, APPEND."""

import os

from mailstore import mboxformat as fmt

from test_mbox_store import Spool, delivery, mta_append, sha256_of


def spool_with(tmp_path, count):
    spool = Spool(tmp_path)
    spool.write(b"".join(delivery(n) for n in range(1, count + 1)))
    return spool


def flags_by_uid(mailbox):
    return {m.uid: (m.flags & ~fmt.OLD, m.keywords) for m in mailbox.messages}


def test_flag_change_in_one_session_is_seen_by_another(tmp_path):
    """A flag stored through one open mailbox appears in another after refresh()."""
    spool = spool_with(tmp_path, 3)
    first, second = spool.open(), spool.open()
    try:
        first.claim_recent()
        second.refresh()
        first.store_flags([2], "+", fmt.FLAGGED, ("$Work",))
        assert second.refresh() is True
        assert flags_by_uid(second)[2] == (fmt.FLAGGED, ("$Work",))
        assert second.keywords == ["$Work"]
    finally:
        first.close()
        second.close()


def test_concurrent_flag_changes_on_one_message_are_both_kept(tmp_path):
    """Two sessions adding different flags to one message both win (no lost update)."""
    spool = spool_with(tmp_path, 2)
    first, second = spool.open(), spool.open()
    try:
        first.store_flags([1], "+", fmt.SEEN, ())
        second.store_flags([1], "+", fmt.ANSWERED, ())
        check = spool.open(readonly=True)
        assert flags_by_uid(check)[1][0] == fmt.SEEN | fmt.ANSWERED
        check.close()
    finally:
        first.close()
        second.close()


def test_flag_change_does_not_move_other_messages(tmp_path):
    """After the first write, a flag change patches headers in place: bodies stay at their offsets."""
    spool = spool_with(tmp_path, 50)
    mailbox = spool.open()
    try:
        mailbox.claim_recent()
        before = [(m.start, m.body, m.end) for m in mailbox.messages]
        size = os.path.getsize(spool.path)
        mailbox.store_flags([25], "+", fmt.SEEN | fmt.FLAGGED, ())
        assert [(m.start, m.body, m.end) for m in mailbox.messages] == before
        assert os.path.getsize(spool.path) == size
    finally:
        mailbox.close()


def test_claim_recent_gives_recent_to_one_session_only(tmp_path):
    """New mail is \\Recent in the first session that claims it and in no other (RFC 3501 §2.3.2)."""
    spool = spool_with(tmp_path, 2)
    first, second = spool.open(), spool.open()
    try:
        assert first.claim_recent() == {1, 2}
        second.refresh()
        assert second.claim_recent() == set()
        mta_append(spool.path, b"\n" + delivery(3))
        second.refresh()
        assert second.claim_recent() == {3}
        first.refresh()
        assert first.claim_recent() == set()
    finally:
        first.close()
        second.close()


def test_expunge_by_uid_removes_only_named_deleted_messages(tmp_path):
    """expunge(uids) removes \\Deleted messages among uids and keeps other \\Deleted ones."""
    spool = spool_with(tmp_path, 4)
    mailbox = spool.open()
    try:
        mailbox.store_flags([1, 2, 3], "+", fmt.DELETED, ())
        assert mailbox.expunge({2, 3, 4}) == [2, 3]
        assert [m.uid for m in mailbox.messages] == [1, 4]
    finally:
        mailbox.close()
    assert [uid for uid, _, _ in spool.snapshot()[2]] == [1, 4]


def test_expunge_keeps_mail_delivered_meanwhile(tmp_path):
    """Mail an MTA appends after the session opened survives the session's EXPUNGE."""
    spool = spool_with(tmp_path, 3)
    mailbox = spool.open()
    try:
        mailbox.store_flags([1], "+", fmt.DELETED, ())
        mta_append(spool.path, b"\n" + delivery(4))
        assert mailbox.expunge() == [1]
    finally:
        mailbox.close()
    validity, uidnext, messages = spool.snapshot()
    assert [uid for uid, _, _ in messages] == [2, 3, 4]
    assert uidnext == 5


def test_append_assigns_next_uids_and_keeps_them(tmp_path):
    """APPEND gives UIDNEXT, UIDNEXT+1 and a reopen shows the same UIDs, flags, date and text."""
    spool = spool_with(tmp_path, 2)
    mailbox = spool.open()
    try:
        uids = mailbox.append([
            (b"Subject: one\r\n\r\nFirst body\r\nFrom here on\r\n", fmt.SEEN, ("Todo",),
             (1700000000, 60)),
            (b"Subject: two\r\n\r\nSecond\r\n", 0, (), (1700000100, -300)),
        ])
        assert uids == [3, 4]
    finally:
        mailbox.close()
    reopened = spool.open(readonly=True)
    try:
        third = reopened.by_uid(3)
        assert third.flags & fmt.SEEN and third.keywords == ("Todo",)
        assert reopened.internal_date(third) == (1700000000, 60)
        assert reopened.message_text(third) == b"Subject: one\n\nFirst body\n>From here on\n"
        assert reopened.internal_date(reopened.by_uid(4)) == (1700000100, -300)
        assert reopened.uidnext == 5
    finally:
        reopened.close()


def test_append_renames_smuggled_metadata_headers(tmp_path):
    """An appended message cannot set its own UID or flags through metadata headers (UW)."""
    spool = spool_with(tmp_path, 1)
    mailbox = spool.open()
    try:
        mailbox.append([(b"Status: RO\r\nX-UID: 1\r\nSubject: s\r\n\r\nbody\r\n", 0, (),
                         (1700000000, 0))])
    finally:
        mailbox.close()
    reopened = spool.open(readonly=True)
    try:
        message = reopened.by_uid(2)
        assert not message.flags & fmt.SEEN
        assert reopened.header_bytes(message).startswith(
            b"X-Original-Status: RO\nX-Original-X-UID: 1\n")
        assert [m.uid for m in reopened.messages] == [1, 2]
    finally:
        reopened.close()


def test_append_to_missing_spool_creates_it(tmp_path):
    """A first APPEND to an INBOX whose spool file does not exist yet creates it (mode 0600)."""
    spool = Spool(tmp_path)
    mailbox = spool.open()
    try:
        assert mailbox.append([(b"Subject: s\r\n\r\nb\r\n", 0, (), (1700000000, 0))]) == [1]
    finally:
        mailbox.close()
    assert os.stat(spool.path).st_mode & 0o777 == 0o600
    assert [uid for uid, _, _ in spool.snapshot()[2]] == [1]


def test_refresh_after_another_sessions_expunge_reports_survivors(tmp_path):
    """A session re-reads the file another session rewrote; survivors keep their UIDs."""
    spool = spool_with(tmp_path, 5)
    first, second = spool.open(), spool.open()
    try:
        first.store_flags([2, 4], "+", fmt.DELETED, ())
        first.expunge()
        assert second.refresh() is True
        assert [m.uid for m in second.messages] == [1, 3, 5]
        assert second.by_uid(2) is None
    finally:
        first.close()
        second.close()


def test_unchanged_file_is_not_reread(tmp_path):
    """refresh() does nothing when nobody wrote to the file."""
    spool = spool_with(tmp_path, 2)
    mailbox = spool.open()
    try:
        mailbox.claim_recent()
        digest = sha256_of(spool.path)
        assert mailbox.refresh() is False
        assert sha256_of(spool.path) == digest
    finally:
        mailbox.close()


def test_expunge_waits_while_a_pop3_session_holds_the_mailbox(tmp_path):
    """A data-moving EXPUNGE is refused (IN_USE) while a POP3 session reads the file by offsets."""
    import pytest

    from mailstore import StoreError

    spool = spool_with(tmp_path, 3)
    first = spool.open()
    first.claim_recent()  # the first write adds UW's metadata, which moves data
    first.close()
    pop3 = spool.open(exclusive_session=True)
    imap = spool.open()
    try:
        imap.store_flags([1], "+", fmt.DELETED, ())
        with pytest.raises(StoreError) as refused:
            imap.expunge()
        assert refused.value.kind == StoreError.IN_USE
    finally:
        pop3.close()
    try:
        assert imap.expunge() == [1]
    finally:
        imap.close()
