"""The Store/Mailbox contract both sessions rely on, run against every driver (mbox, Maildir).

The interface is written down in mailstore/interface.py; each test drives a
real store on real files and checks what ipop3d and imapd read from it.
"""

import os
import time

import pytest

from auth import Principal
from imap.listpattern import ListPattern
from imap.view import wire_form
from mailstore import StoreError
from mailstore import mboxformat as fmt
from mailstore import open_store
from server.config import Config

DRIVERS = ["mbox", "maildir"]


def message(number):
    """One message as a delivery agent hands it over (LF line ends, no metadata)."""
    return (b"From: Sender <sender%d@example.org>\n" % number
            + b"Subject: message %d\n" % number
            + b"Message-ID: <msg-%d@example.org>\n\n" % number
            + b"Body of message %d.\nSecond line.\n" % number)


class Account:
    """One user's mail in the driver's format, a store on it, and an MTA delivering to it."""

    def __init__(self, driver, tmp_path):
        self.driver = driver
        self.home = tmp_path / "home"
        self.home.mkdir()
        if driver == "mbox":
            self.spool = tmp_path / "spool"
            (self.home / "mail").mkdir()
            location = "mbox:%s/mail:INBOX=%s" % (self.home, self.spool)
        else:
            location = "maildir:~/Maildir"
        self.config = Config({"mail_location": location, "index_dir": str(tmp_path / "index"),
                              "mbox_lock_timeout": 5})
        self.principal = Principal("u", os.getuid(), os.getgid(), str(self.home))
        self.deliveries = 0

    def store(self):
        return open_store(self.principal, self.config)

    def deliver(self, number):
        """Deliver message(number) to INBOX as an MDA would (append; or tmp/ then new/)."""
        self.deliveries += 1
        if self.driver == "mbox":
            with open(self.spool, "ab") as spool:
                spool.write(b"From sender@example.org Wed Dec  2 05:53:%02d 1992\n" % (number % 60)
                            + message(number) + b"\n")
            return
        maildir = self.home / "Maildir"
        for part in ("tmp", "new", "cur"):
            (maildir / part).mkdir(parents=True, exist_ok=True)
        name = "%d.P%dQ%d.testhost" % (time.time(), os.getpid(), self.deliveries)
        (maildir / "tmp" / name).write_bytes(message(number))
        os.rename(maildir / "tmp" / name, maildir / "new" / name)


@pytest.fixture(params=DRIVERS)
def account(request, tmp_path):
    return Account(request.param, tmp_path)


def opened(account, **options):
    return account.store().open_inbox(**options)


def state(mailbox):
    """[(uid, flags without \\Recent state, keywords)] of every message."""
    return [(m.uid, m.flags & ~fmt.OLD, tuple(sorted(m.keywords))) for m in mailbox.messages]


# -- reading ------------------------------------------------------------------


def test_deliveries_get_ascending_uids_that_survive_reopen(account):
    """Delivered mail gets UIDs 1..n; a second open sees the same UIDs and UIDVALIDITY."""
    for number in range(1, 4):
        account.deliver(number)
    mailbox = opened(account)
    first = (mailbox.uidvalidity, mailbox.uidnext, [m.uid for m in mailbox.messages])
    mailbox.claim_recent()
    mailbox.close()
    mailbox = opened(account, readonly=True)
    try:
        assert first[1:] == (4, [1, 2, 3])
        assert (mailbox.uidvalidity, mailbox.uidnext, [m.uid for m in mailbox.messages]) == first
    finally:
        mailbox.close()


def test_text_header_body_and_size_agree(account):
    """header_bytes + body_chunks is message_text; RFC822.SIZE is the CRLF wire length."""
    account.deliver(1)
    mailbox = opened(account)
    try:
        stored = mailbox.messages[0]
        text = mailbox.message_text(stored)
        header = mailbox.header_bytes(stored)
        assert text == message(1)
        assert header == message(1).split(b"\n\n")[0] + b"\n\n"
        assert header + b"".join(mailbox.body_chunks(stored)) == text
        assert b"".join(mailbox.visible_chunks(stored)) == text
        assert b"".join(mailbox.visible_chunks(stored, header_only=True)) == header
        assert stored.size == len(wire_form(text))
        with mailbox.reading():
            assert mailbox.by_uid(stored.uid) is stored
        assert mailbox.by_uid(99) is None
    finally:
        mailbox.close()


def test_claim_recent_gives_new_mail_to_one_session(account):
    """The first writable session claims \\Recent; the next sees none, read-only claims nothing."""
    for number in range(1, 3):
        account.deliver(number)
    peek = opened(account, readonly=True)
    assert peek.claim_recent() == {1, 2}
    peek.close()
    first, second = opened(account), opened(account)
    try:
        assert first.claim_recent() == {1, 2}
        second.refresh()
        assert second.claim_recent() == set()
        assert all(m.flags & fmt.OLD for m in first.messages)
    finally:
        first.close()
        second.close()


def test_mail_delivered_during_a_session_appears_on_refresh(account):
    """A delivery while open is noticed (changed, refresh) and numbered after the rest."""
    account.deliver(1)
    mailbox = opened(account)
    try:
        mailbox.claim_recent()
        stamp = mailbox.stamp
        account.deliver(2)
        assert mailbox.changed()
        assert mailbox.refresh()
        assert [m.uid for m in mailbox.messages] == [1, 2]
        assert mailbox.stamp != stamp
        assert mailbox.claim_recent() == {2}
    finally:
        mailbox.close()


# -- flags --------------------------------------------------------------------


def test_store_flags_add_remove_set_and_keywords_persist(account):
    """+FLAGS, -FLAGS and FLAGS with keywords are on disk for the next session."""
    for number in range(1, 4):
        account.deliver(number)
    mailbox = opened(account)
    mailbox.claim_recent()
    mailbox.store_flags([1, 2], "+", fmt.SEEN | fmt.FLAGGED, ("Work",))
    mailbox.store_flags([2], "-", fmt.FLAGGED, ("Work",))
    mailbox.store_flags([3], "", fmt.ANSWERED | fmt.DRAFT, ("$Label1", "Work"))
    mine = state(mailbox)
    mailbox.close()
    mailbox = opened(account, readonly=True)
    try:
        assert state(mailbox) == mine == [
            (1, fmt.SEEN | fmt.FLAGGED, ("Work",)), (2, fmt.SEEN, ()),
            (3, fmt.ANSWERED | fmt.DRAFT, ("$Label1", "Work"))]
        assert set(mailbox.keywords) >= {"Work", "$Label1"}
    finally:
        mailbox.close()


def test_flag_change_in_one_session_is_seen_by_another(account):
    """RFC 2180: another session's refresh shows the change and a new stamp."""
    account.deliver(1)
    first, second = opened(account), opened(account)
    try:
        first.claim_recent()
        second.refresh()
        stamp = second.stamp
        first.store_flags([1], "+", fmt.FLAGGED, ("Todo",))
        second.refresh()
        assert second.stamp != stamp
        assert state(second) == [(1, fmt.FLAGGED, ("Todo",))]
        assert "Todo" in second.keywords
    finally:
        first.close()
        second.close()


def test_concurrent_flag_changes_are_both_kept(account):
    """Two sessions adding different flags from stale views both win."""
    account.deliver(1)
    first, second = opened(account), opened(account)
    try:
        first.claim_recent()
        second.refresh()
        first.store_flags([1], "+", fmt.SEEN, ())
        second.store_flags([1], "+", fmt.FLAGGED, ())
    finally:
        first.close()
        second.close()
    mailbox = opened(account, readonly=True)
    assert state(mailbox) == [(1, fmt.SEEN | fmt.FLAGGED, ())]
    mailbox.close()


def test_read_only_mailbox_refuses_changes(account):
    """EXAMINE: store_flags, expunge and append are NO_PERMISSION."""
    account.deliver(1)
    mailbox = opened(account, readonly=True)
    try:
        for attempt in (lambda: mailbox.store_flags([1], "+", fmt.SEEN, ()),
                        lambda: mailbox.expunge(),
                        lambda: mailbox.append([(b"Subject: x\n\nx\n", 0, (), (0, 0))])):
            with pytest.raises(StoreError) as refused:
                attempt()
            assert refused.value.kind == StoreError.NO_PERMISSION
    finally:
        mailbox.close()


# -- expunge, append, commit ---------------------------------------------------


def test_expunge_removes_only_deleted_and_named(account):
    """expunge(uids) takes only named \\Deleted mail; expunge() the rest; others see it."""
    for number in range(1, 5):
        account.deliver(number)
    mailbox, other = opened(account), opened(account)
    try:
        mailbox.claim_recent()
        mailbox.store_flags([1, 2, 3], "+", fmt.DELETED, ())
        assert mailbox.expunge({2, 4}) == [2]
        assert mailbox.expunge() == [1, 3]
        assert [m.uid for m in mailbox.messages] == [4]
        other.refresh()
        assert [m.uid for m in other.messages] == [4]
        assert other.by_uid(1) is None
    finally:
        mailbox.close()
        other.close()


def test_append_returns_uids_and_keeps_flags_keywords_dates(account):
    """APPEND: UIDs after the delivered ones, flags, keywords, INTERNALDATE, text kept."""
    account.deliver(1)
    mailbox = opened(account)
    mailbox.claim_recent()
    mailbox.close()
    target = opened(account)
    uids = target.append([(b"Subject: a\r\n\r\nfirst\r\n", fmt.SEEN, ("Work",), (1700000000, 0)),
                          (b"Subject: b\r\n\r\nsecond\r\n", 0, (), (1700000100, 60))])
    uidvalidity = target.uidvalidity
    target.close()
    assert uids == [2, 3]
    mailbox = opened(account, readonly=True)
    try:
        assert mailbox.uidvalidity == uidvalidity and mailbox.uidnext == 4
        assert state(mailbox)[1:] == [(2, fmt.SEEN, ("Work",)), (3, 0, ())]
        second = mailbox.by_uid(3)
        assert mailbox.message_text(second).replace(b"\r\n", b"\n") == b"Subject: b\n\nsecond\n"
        assert mailbox.internal_date(mailbox.by_uid(2))[0] == 1700000000
        assert mailbox.internal_date(second)[0] == 1700000100
        assert second.size == len(b"Subject: b\r\n\r\nsecond\r\n")
        assert not second.flags & fmt.OLD  # appended without flags: \Recent for the next session
    finally:
        mailbox.close()


def test_commit_marks_seen_and_expunges_deleted_keeping_new_deliveries(account):
    """POP3's UPDATE: retrieved are \\Seen, the rest old, DELE'd gone, later mail kept unseen."""
    for number in range(1, 4):
        account.deliver(number)
    mailbox = opened(account, exclusive_session=True)
    try:
        mailbox.messages[0].flags |= fmt.DELETED
        account.deliver(4)
        assert mailbox.commit(seen_uids={2}, expunge=True) == 1
    finally:
        mailbox.close()
    mailbox = opened(account, readonly=True)
    try:
        assert [(m.uid, m.flags & fmt.SEEN, bool(m.flags & fmt.OLD))
                for m in mailbox.messages[:2]] == [(2, fmt.SEEN, True), (3, 0, True)]
        assert [(m.uid, m.flags & fmt.SEEN) for m in mailbox.messages[2:]] == [(4, 0)]
    finally:
        mailbox.close()


def test_second_pop3_session_is_in_use_and_blocks_expunge(account):
    """RFC 1939 §8: one exclusive session; meanwhile another session's expunge is IN_USE."""
    account.deliver(1)
    imap = opened(account)
    imap.claim_recent()
    imap.store_flags([1], "+", fmt.DELETED, ())
    pop3 = opened(account, exclusive_session=True)
    try:
        with pytest.raises(StoreError) as refused:
            opened(account, exclusive_session=True)
        assert refused.value.kind == StoreError.IN_USE
        with pytest.raises(StoreError) as refused:
            imap.expunge()
        assert refused.value.kind == StoreError.IN_USE
        assert pop3.message_text(pop3.messages[0]).startswith(message(1).split(b"\n\n")[0])
    finally:
        pop3.close()
        imap.close()
    again = opened(account, exclusive_session=True)
    again.close()


# -- mailboxes by name ------------------------------------------------------------


def names(store, pattern=b"*"):
    return {name: attributes for name, attributes in store.list(ListPattern(b"", pattern))}


def test_create_list_open_delete(account):
    """CREATE makes an empty selectable folder LIST shows; DELETE removes it; errors by kind."""
    store = account.store()
    store.create(b"Sent")
    store.create(b"lists/python")
    listed = names(store)
    assert {b"INBOX", b"Sent", b"lists/python"} <= set(listed)
    assert "\\Noselect" not in listed[b"Sent"]
    folder = store.open_mailbox(b"Sent")
    uidvalidity = folder.uidvalidity
    assert (folder.messages, folder.uidnext) == ([], 1)
    assert folder.append([(b"Subject: s\n\nsent\n", fmt.SEEN, (), (1700000000, 0))]) == [1]
    folder.close()
    folder = store.open_mailbox(b"Sent", readonly=True)
    assert (folder.uidvalidity, [m.uid for m in folder.messages]) == (uidvalidity, [1])
    folder.close()
    for action, kind in ((lambda: store.create(b"Sent"), StoreError.EXISTS),
                         (lambda: store.open_mailbox(b"Nothing"), StoreError.NOT_FOUND),
                         (lambda: store.delete(b"Nothing"), StoreError.NOT_FOUND)):
        with pytest.raises(StoreError) as refused:
            action()
        assert refused.value.kind == kind
    store.delete(b"Sent")
    assert b"Sent" not in names(store)


def test_rename_folder_and_inbox(account):
    """RENAME moves a folder with its mail; RENAME INBOX moves the messages and leaves INBOX empty."""
    store = account.store()
    store.create(b"Old")
    folder = store.open_mailbox(b"Old")
    folder.append([(b"Subject: o\n\nold\n", fmt.FLAGGED, ("Keep",), (1700000000, 0))])
    folder.close()
    store.rename(b"Old", b"New")
    assert b"Old" not in names(store) and b"New" in names(store)
    folder = store.open_mailbox(b"New")
    assert state(folder) == [(1, fmt.FLAGGED, ("Keep",))]
    folder.close()
    account.deliver(1)
    store.rename(b"INBOX", b"Archive")
    inbox, archive = store.open_inbox(readonly=True), store.open_mailbox(b"Archive", readonly=True)
    try:
        assert inbox.messages == []
        assert [archive.message_text(m) for m in archive.messages] == [message(1)]
    finally:
        inbox.close()
        archive.close()


def test_subscriptions_round_trip(account):
    """SUBSCRIBE/UNSUBSCRIBE/LSUB: names kept in order; unsubscribing a stranger is NOT_FOUND."""
    store = account.store()
    store.subscribe(b"INBOX")
    store.subscribe(b"lists/python")
    store.subscribe(b"lists/python")
    assert account.store().subscriptions() == [b"INBOX", b"lists/python"]
    store.unsubscribe(b"INBOX")
    assert store.subscriptions() == [b"lists/python"]
    with pytest.raises(StoreError) as refused:
        store.unsubscribe(b"Nothing")
    assert refused.value.kind == StoreError.NOT_FOUND
