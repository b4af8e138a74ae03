"""The mbox store's contract: UIDs that stick, writes that keep mail, refusals that touch nothing."""

import hashlib
import os
import re
import time

import pytest

from auth import Principal
from mailstore import StoreError
from mailstore import mboxformat as fmt
from mailstore import open_store
from server.config import Config


def delivery(number, body=None):
    """One message as an MTA appends it: From_ line, header, body, separator line."""
    body = body if body is not None else b"Body of message %d.\n>From the quoted line.\n" % number
    return (b"From sender%d@example.org Wed Dec  2 05:53:%02d 1992\n" % (number, number % 60)
            + b"From: Sender <sender%d@example.org>\n" % number
            + b"Subject: message %d\n" % number
            + b"Message-ID: <msg-%d@example.org>\n\n" % number
            + body + b"\n")


def mta_append(path, data):
    """Append mail the way a delivery agent does: open for append, write, close."""
    fd = os.open(path, os.O_WRONLY | os.O_APPEND)
    try:
        os.write(fd, data)
    finally:
        os.close(fd)


def sha256_of(path):
    """The SHA-256 of a file's bytes."""
    with open(path, "rb") as handle:
        return hashlib.sha256(handle.read()).hexdigest()


class Spool:
    """A user's spool INBOX under tmp_path and the store that serves it."""

    def __init__(self, tmp_path):
        self.home = tmp_path / "home"
        self.home.mkdir()
        self.path = str(tmp_path / "spool")
        config = Config({"mail_location": "mbox:%s:INBOX=%s" % (self.home, self.path),
                         "index_dir": str(tmp_path / "index"), "mbox_lock_timeout": 5})
        self.store = open_store(Principal("u", os.getuid(), os.getgid(), str(self.home)), config)

    def write(self, data):
        """Replace the spool file's content (creating it)."""
        with open(self.path, "wb") as handle:
            handle.write(data)

    def read(self):
        """The spool file's bytes."""
        with open(self.path, "rb") as handle:
            return handle.read()

    def open(self, **options):
        """store.open_inbox(**options)."""
        return self.store.open_inbox(**options)

    def snapshot(self, **options):
        """(uidvalidity, uidnext, [(uid, Message-ID, body)]) of a fresh read-only open."""
        mailbox = self.open(readonly=True, **options)
        try:
            return (mailbox.uidvalidity, mailbox.uidnext,
                    [(m.uid, message_id(mailbox, m), b"".join(mailbox.body_chunks(m)))
                     for m in mailbox.messages])
        finally:
            mailbox.close()


def message_id(mailbox, message):
    """The Message-ID value of a message's visible header."""
    match = re.search(rb"^Message-ID: (<[^>]*>)", mailbox.header_bytes(message), re.M | re.I)
    return match.group(1) if match else None


@pytest.fixture
def spool(tmp_path):
    """A fresh spool location (no file yet) with its store."""
    return Spool(tmp_path)


def test_first_open_of_an_mta_spool_assigns_uids_and_uidvalidity(spool):
    """A spool with no metadata gets UIDs 1..n and a UIDVALIDITY of about now."""
    spool.write(b"".join(delivery(n) for n in range(1, 5)))
    before = int(time.time())
    mailbox = spool.open()
    after = int(time.time())
    try:
        assert [m.uid for m in mailbox.messages] == [1, 2, 3, 4]
        assert before <= mailbox.uidvalidity <= after
        assert mailbox.uidnext == 5
        assert all(not m.flags & fmt.OLD for m in mailbox.messages)  # all \Recent
    finally:
        mailbox.close()


def test_commit_writes_uw_metadata_and_reopen_keeps_uids(spool):
    """After a commit, message 1 carries X-IMAPbase, every message Status O and X-UID,
    bodies are unchanged, and a reopen sees the same UIDs and UIDVALIDITY."""
    spool.write(b"".join(delivery(n) for n in range(1, 5)))
    mailbox = spool.open()
    uidvalidity = mailbox.uidvalidity
    bodies = [b"".join(mailbox.body_chunks(m)) for m in mailbox.messages]
    mailbox.commit()
    mailbox.close()
    data = spool.read()
    headers = [m.group(0) for m in re.finditer(rb"^From sender.*?\n\n", data, re.M | re.S)]
    assert len(headers) == 4
    assert re.search(rb"^X-IMAPbase: %d 0*4\n" % uidvalidity, headers[0], re.M)
    assert not any(b"X-IMAPbase" in h for h in headers[1:])
    for uid, header in enumerate(headers, 1):
        assert re.search(rb"^Status: O\n", header, re.M)
        assert re.search(rb"^X-UID: %d\n" % uid, header, re.M)
    assert spool.snapshot() == (uidvalidity, 5, [
        (uid, b"<msg-%d@example.org>" % uid, body) for uid, body in enumerate(bodies, 1)])


def test_commit_with_no_change_does_not_write(spool):
    """A mailbox whose metadata is already current is left byte-for-byte alone."""
    spool.write(b"".join(delivery(n) for n in range(1, 4)))
    mailbox = spool.open()
    mailbox.commit()
    mailbox.close()
    written, mtime = spool.read(), os.stat(spool.path).st_mtime_ns
    mailbox = spool.open()
    mailbox.commit()
    mailbox.close()
    assert (spool.read(), os.stat(spool.path).st_mtime_ns) == (written, mtime)


def test_flag_change_rewrites_only_the_changed_header(spool):
    """Setting a flag patches that message's padded header in place: the file size
    and every other byte stay the same."""
    spool.write(b"".join(delivery(n) for n in range(1, 4)))
    mailbox = spool.open()
    mailbox.commit()
    mailbox.close()
    before = spool.read()
    mailbox = spool.open()
    target = mailbox.messages[1]
    start, body = target.header, target.body
    target.flags |= fmt.FLAGGED | fmt.ANSWERED
    target.dirty = True
    mailbox.commit(seen_uids={2})
    mailbox.close()
    after = spool.read()
    assert len(after) == len(before)
    assert after[:start] == before[:start] and after[body:] == before[body:]
    mailbox = spool.open(readonly=True)
    try:
        assert mailbox.messages[1].flags & (fmt.SEEN | fmt.FLAGGED | fmt.ANSWERED) == (
            fmt.SEEN | fmt.FLAGGED | fmt.ANSWERED)
    finally:
        mailbox.close()


def test_expunging_everything_leaves_the_pseudo_message_and_keeps_uidnext(spool):
    """Expunging all mail writes UW's pseudo-message: no messages show, UIDVALIDITY and
    UIDNEXT survive, and the next delivery gets the next UID."""
    spool.write(b"".join(delivery(n) for n in range(1, 4)))
    mailbox = spool.open()
    uidvalidity = mailbox.uidvalidity
    for message in mailbox.messages:
        message.flags |= fmt.DELETED
    assert mailbox.commit(expunge=True) == 3
    mailbox.close()
    data = spool.read()
    assert data.startswith(b"From MAILER-DAEMON ")
    assert b"Subject: " + fmt.PSEUDO_SUBJECT + b"\n" in data
    assert b"X-IMAP: %010d 0000000003\n" % uidvalidity in data
    assert spool.snapshot() == (uidvalidity, 4, [])
    mta_append(spool.path, delivery(9))
    assert spool.snapshot()[:2] == (uidvalidity, 5)
    assert [uid for uid, _, _ in spool.snapshot()[2]] == [4]
    mailbox = spool.open()
    mailbox.commit()
    mailbox.close()
    assert spool.snapshot() == (uidvalidity, 5, [(4, b"<msg-9@example.org>",
                                                  b"Body of message 9.\n>From the quoted line.\n")])


@pytest.mark.parametrize("uids", [(5, 3), (5, 5), (2, 7, 7)], ids=["decreasing", "duplicate",
                                                                       "duplicate-later"])
def test_broken_uid_order_gives_new_uidvalidity_and_new_uids(spool, uids):
    """A decreasing or repeated X-UID makes UW start a new UID sequence: new
    UIDVALIDITY, UIDs 1..n, written back at the next commit."""
    old_validity = 1000000000
    parts = []
    for index, uid in enumerate(uids, 1):
        message = delivery(index)
        base = b"X-IMAPbase: %d 9\n" % old_validity if index == 1 else b""
        parts.append(message.replace(b"\n\n", b"\n" + base + b"X-UID: %d\n\n" % uid, 1))
    spool.write(b"".join(parts))
    mailbox = spool.open()
    try:
        assert mailbox.uidvalidity != old_validity
        assert [m.uid for m in mailbox.messages] == list(range(1, len(uids) + 1))
        new_validity = mailbox.uidvalidity
        mailbox.commit()
    finally:
        mailbox.close()
    validity, uidnext, messages = spool.snapshot()
    assert (validity, uidnext) == (new_validity, len(uids) + 1)
    assert [uid for uid, _, _ in messages] == list(range(1, len(uids) + 1))


def test_increasing_x_uids_are_kept_and_raise_the_last_uid(spool):
    """X-UIDs that increase are trusted, and one above the recorded last UID raises it (§7.5)."""
    parts = [delivery(1).replace(b"\n\n", b"\nX-IMAPbase: 1000000000 3\nX-UID: 2\n\n", 1),
             delivery(2).replace(b"\n\n", b"\nX-UID: 8\n\n", 1), delivery(3)]
    spool.write(b"".join(parts))
    assert spool.snapshot()[:2] == (1000000000, 10)
    assert [uid for uid, _, _ in spool.snapshot()[2]] == [2, 8, 9]


def test_mail_delivered_during_a_session_is_kept_and_gets_a_new_uid(spool):
    """A message an MTA appends between open and an expunging commit survives the
    rewrite and gets the next UID."""
    spool.write(b"".join(delivery(n) for n in range(1, 4)))
    mailbox = spool.open()
    mailbox.commit()
    mailbox.messages[0].flags |= fmt.DELETED
    mta_append(spool.path, delivery(7))
    assert mailbox.commit(expunge=True) == 1
    mailbox.close()
    _, uidnext, messages = spool.snapshot()
    assert [(uid, mid) for uid, mid, _ in messages] == [
        (2, b"<msg-2@example.org>"), (3, b"<msg-3@example.org>"), (4, b"<msg-7@example.org>")]
    assert messages[-1][2] == b"Body of message 7.\n>From the quoted line.\n"
    assert uidnext == 5


def test_mail_delivered_after_a_file_without_final_blank_line_is_kept(spool):
    """Delivery right after a last message with no separator line is parsed and kept."""
    spool.write(delivery(1) + delivery(2)[:-1])
    mailbox = spool.open()
    mta_append(spool.path, delivery(3))
    mailbox.commit(expunge=True)
    mailbox.close()
    assert [mid for _, mid, _ in spool.snapshot()[2]] == [
        b"<msg-%d@example.org>" % n for n in (1, 2, 3)]


def test_a_spool_that_shrank_is_refused_and_left_alone(spool):
    """If the file shrank since it was read, commit fails TEMPORARY and writes nothing."""
    spool.write(b"".join(delivery(n) for n in range(1, 4)))
    mailbox = spool.open()
    mailbox.messages[0].flags |= fmt.DELETED
    shrunk = delivery(1)
    spool.write(shrunk)
    try:
        with pytest.raises(StoreError) as caught:
            mailbox.commit(expunge=True)
        assert caught.value.kind == StoreError.TEMPORARY
    finally:
        mailbox.close()
    assert spool.read() == shrunk


def test_garbage_appended_during_a_session_is_refused(spool):
    """Bytes appended that do not start with a From_ line abort the write (UW:
    "Unexpected changes to mailbox") and the file is not rewritten."""
    spool.write(b"".join(delivery(n) for n in range(1, 3)))
    mailbox = spool.open()
    mailbox.messages[0].flags |= fmt.DELETED
    mta_append(spool.path, b"garbage that is not mail\n")
    expected = spool.read()
    try:
        with pytest.raises(StoreError) as caught:
            mailbox.commit(expunge=True)
        assert caught.value.kind == StoreError.TEMPORARY
    finally:
        mailbox.close()
    assert spool.read() == expected


def test_another_sessions_in_place_flag_change_and_ours_both_survive(spool):
    """Two sessions on one mailbox: flag changes patched in place by one do not stop
    the other's commit, and both changes are on disk afterwards."""
    spool.write(b"".join(delivery(n) for n in range(1, 4)))
    mailbox = spool.open()
    mailbox.commit()
    mailbox.close()
    first, second = spool.open(), spool.open()
    try:
        first.messages[0].flags |= fmt.FLAGGED
        first.messages[0].dirty = True
        first.commit()
        second.messages[2].flags |= fmt.ANSWERED
        second.messages[2].dirty = True
        second.commit()
    finally:
        first.close()
        second.close()
    mailbox = spool.open(readonly=True)
    try:
        assert [m.flags & (fmt.FLAGGED | fmt.ANSWERED) for m in mailbox.messages] == [
            fmt.FLAGGED, 0, fmt.ANSWERED]
    finally:
        mailbox.close()


def test_an_expunge_keeps_flags_another_session_set_after_we_parsed(spool):
    """A rewrite that moves messages copies the headers of messages we did not change
    as they are on disk, so another session's later flag changes survive it."""
    spool.write(b"".join(delivery(n) for n in range(1, 5)))
    mailbox = spool.open()
    mailbox.commit()
    mailbox.close()
    expunging, flagging = spool.open(), spool.open()
    try:
        flagging.messages[3].flags |= fmt.FLAGGED
        flagging.messages[3].dirty = True
        flagging.commit()
        expunging.messages[1].flags |= fmt.DELETED
        assert expunging.commit(expunge=True) == 1
    finally:
        expunging.close()
        flagging.close()
    mailbox = spool.open(readonly=True)
    try:
        assert [(m.uid, m.flags & fmt.FLAGGED) for m in mailbox.messages] == [
            (1, 0), (3, 0), (4, fmt.FLAGGED)]
    finally:
        mailbox.close()


def test_a_rewrite_by_another_session_is_refused_not_overwritten(spool):
    """If another session rewrote the file since we parsed it, and the file grew so that
    our old end happens to fall on one of its From_ lines, our commit fails TEMPORARY
    instead of writing at offsets that now hold other bytes."""
    first = delivery(1)
    spool.write(first)
    mailbox = spool.open()
    mailbox.commit()
    mailbox.close()
    growth = len(spool.read()) - len(first)  # what a first commit adds to message 1
    head = b"From b@example.org Wed Dec  2 05:53:22 1992\nMessage-ID: <msg-2@example.org>\n\n"
    second = head + b"x" * (growth - len(head) - 2) + b"\n\n"
    spool.write(first + second)
    late = spool.open()
    other = spool.open()
    other.commit()  # message 1 grows by exactly len(second): message 2 now starts at our end
    other.close()
    rewritten = spool.read()
    assert rewritten[len(first) + len(second):].startswith(b"From b@example.org")
    try:
        late.messages[1].flags |= fmt.DELETED
        with pytest.raises(StoreError) as caught:
            late.commit(expunge=True)
        assert caught.value.kind == StoreError.TEMPORARY
    finally:
        late.close()
    assert spool.read() == rewritten


def test_missing_inbox_is_an_empty_mailbox(spool):
    """A spool file that does not exist opens as an empty mailbox and is not created."""
    mailbox = spool.open()
    try:
        assert mailbox.messages == []
        assert mailbox.uidnext == 1
        assert mailbox.uidvalidity > 0
        mailbox.commit()
    finally:
        mailbox.close()
    assert not os.path.exists(spool.path)


def test_zero_byte_inbox_is_an_empty_mailbox(spool):
    """A 0-byte spool opens empty, and a commit leaves it 0 bytes."""
    spool.write(b"")
    mailbox = spool.open()
    try:
        assert (mailbox.messages, mailbox.uidnext) == ([], 1)
        mailbox.commit()
    finally:
        mailbox.close()
    assert spool.read() == b""


def test_delivery_into_a_zero_byte_inbox_during_a_session_is_seen(spool):
    """Mail delivered into an empty spool during a session is parsed at commit and kept."""
    spool.write(b"")
    mailbox = spool.open()
    mta_append(spool.path, delivery(1))
    mailbox.commit()
    mailbox.close()
    assert [(uid, mid) for uid, mid, _ in spool.snapshot()[2]] == [(1, b"<msg-1@example.org>")]


@pytest.mark.parametrize("readonly", [True, False], ids=["readonly", "readwrite"])
def test_non_mbox_file_is_corrupt_and_untouched(spool, readonly):
    """A spool that does not start with a From_ line is CORRUPT and not modified."""
    content = b"Subject: not an mbox\n\nhello\n"
    spool.write(content)
    digest = sha256_of(spool.path)
    with pytest.raises(StoreError) as caught:
        spool.open(readonly=readonly)
    assert caught.value.kind == StoreError.CORRUPT
    assert sha256_of(spool.path) == digest


def test_symlinked_spool_is_refused(spool, tmp_path):
    """A spool path that is a symbolic link is refused with NO_PERMISSION."""
    target = tmp_path / "elsewhere"
    target.write_bytes(delivery(1))
    os.symlink(target, spool.path)
    with pytest.raises(StoreError) as caught:
        spool.open()
    assert caught.value.kind == StoreError.NO_PERMISSION
    assert target.read_bytes() == delivery(1)


def test_rewrite_keeps_the_inode_and_mode(spool):
    """An expunge that moves data rewrites in place: same inode, same mode."""
    spool.write(b"".join(delivery(n) for n in range(1, 6)))
    os.chmod(spool.path, 0o660)
    before = os.stat(spool.path)
    mailbox = spool.open()
    mailbox.messages[1].flags |= fmt.DELETED
    assert mailbox.commit(expunge=True) == 1
    mailbox.close()
    after = os.stat(spool.path)
    assert (after.st_dev, after.st_ino, after.st_mode) == (before.st_dev, before.st_ino,
                                                            before.st_mode)
    assert after.st_size != before.st_size
    assert [uid for uid, _, _ in spool.snapshot()[2]] == [1, 3, 4, 5]


def test_survivors_are_byte_identical_after_an_expunge(spool):
    """Bodies and visible headers of messages not expunged are unchanged by the rewrite."""
    big = b"".join(b"line %05d of a long body\n" % i for i in range(4000))
    spool.write(b"".join(delivery(n, big if n % 2 else None) for n in range(1, 8)))
    mailbox = spool.open()
    keep = {m.uid: (mailbox.header_bytes(m), b"".join(mailbox.body_chunks(m)))
            for m in mailbox.messages if m.uid not in (1, 4)}
    for message in mailbox.messages:
        if message.uid in (1, 4):
            message.flags |= fmt.DELETED
    mailbox.commit(expunge=True)
    mailbox.close()
    mailbox = spool.open(readonly=True)
    try:
        assert {m.uid: (mailbox.header_bytes(m), b"".join(mailbox.body_chunks(m)))
                for m in mailbox.messages} == keep
    finally:
        mailbox.close()


def test_second_exclusive_session_is_in_use_until_the_first_closes(spool):
    """A second exclusive (POP3) session on the same spool gets IN_USE; after the
    first closes, a new one succeeds."""
    spool.write(delivery(1))
    first = spool.open(exclusive_session=True)
    try:
        with pytest.raises(StoreError) as caught:
            spool.open(exclusive_session=True)
        assert caught.value.kind == StoreError.IN_USE
    finally:
        first.close()
    again = spool.open(exclusive_session=True)
    again.close()


def test_non_exclusive_sessions_may_share_a_mailbox(spool):
    """Several IMAP sessions (not exclusive) may hold one mailbox at once (RFC 2180)."""
    spool.write(delivery(1))
    first = spool.open(exclusive_session=True)
    try:
        second = spool.open()
        second.close()
    finally:
        first.close()


def test_layout_kept_step_by_step_equals_a_fresh_reckoning(spool):
    """The layout (what a POP3 commit checks against foreign rewrites) is updated by
    parts: new mail adds, a rewritten tail replaces its share. After every kind of
    change it must equal the layout worked out from scratch over the file."""
    spool.write(b"".join(delivery(n) for n in range(1, 6)))
    mailbox = spool.open()
    try:
        steps = []

        def check(step):
            steps.append(step)
            assert mailbox.layout == mailbox._layout_digest(), steps

        mailbox.claim_recent()
        check("claim")
        mta_append(spool.path, delivery(6) + delivery(7))
        mailbox.refresh()
        check("delivery")
        mailbox.claim_recent()
        check("claim of the new mail (its header grows: the tail moves)")
        uids = [m.uid for m in mailbox.messages]
        mailbox.store_flags([uids[3]], "+", fmt.DELETED, ("$Label1", "$Label2", "$Label3"))
        check("keywords past the padding")
        mailbox.expunge()
        check("expunge")
        mailbox.append([(delivery(8), fmt.SEEN, (), (1700000000, 0))])
        check("append")
        assert [m.uid for m in mailbox.messages] == uids[:3] + uids[4:] + [uids[-1] + 1]
    finally:
        mailbox.close()
