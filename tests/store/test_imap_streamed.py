"""imap.streamed: a large message's text sent as a literal in pieces gives the very
bytes the whole rendering gives, for every ending a stored text can have, for
partial fetches, and on both drivers."""

import os

import pytest

from auth import Principal
from imap import fetch, view as view_module
from imap.command import Section
from imap.view import MessageView
from mailstore import open_store
from server.config import Config

TEXTS = [
    b"Subject: plain\n\nbody line\n",
    b"Subject: no last newline\n\nbody without its end",
    b"Subject: crlf\r\n\r\nbody\r\nlast\r\n",
    b"Subject: cr at the very end\n\nbody\n\r",
    b"Subject: stray cr\n\nsome\rthing\r\r\nmore\n",
    b"Subject: empty body\n\n",
]


class Item:
    def __init__(self, name, section=None, partial=None, peak=True):
        self.name, self.section, self.partial, self.peek = name, section, partial, peak


def store_at(driver, tmp_path):
    """A store of the driver's kind in tmp_path (INBOX at tmp_path/spool or home/Maildir)."""
    home = tmp_path / "home"
    (home / "mail").mkdir(parents=True, exist_ok=True)
    location = ("mbox:%s/mail:INBOX=%s" % (home, tmp_path / "spool") if driver == "mbox"
                else "maildir:~/Maildir")
    config = Config({"mail_location": location, "index_dir": str(tmp_path / "index")})
    return open_store(Principal("u", os.getuid(), os.getgid(), str(home)), config)


def mailbox_with(driver, tmp_path, texts):
    store = store_at(driver, tmp_path)
    mailbox = store.open_inbox()
    mailbox.append([(text, 0, (), (1700000000, 0)) for text in texts])
    mailbox.close()
    return store.open_inbox()


def rendered(mailbox, items, stream_from, monkeypatch):
    monkeypatch.setattr(view_module, "PARSE_IN_PLACE_FROM", stream_from)
    replies = []
    with mailbox.reading():
        for number, stored in enumerate(mailbox.messages, 1):
            view = MessageView(mailbox, stored, number, False)
            pieces = fetch.render_pieces(view, items, True)
            sent = []
            fetch.send_pieces(sent.append, pieces)
            assert b"".join(sent) == fetch.render(MessageView(mailbox, stored, number, False),
                                                  items, True)
            replies.append((b"".join(sent), any(not isinstance(p, bytes) for p in pieces)))
    return replies


@pytest.mark.parametrize("driver", ["mbox", "maildir"])
@pytest.mark.parametrize("items", [
    [Item("BODY[]", Section((), None, ()))],
    [Item("BODY[]", Section((), None, ()), partial=(3, 10))],
    [Item("BODY[]", Section((), None, ()), partial=(0, 10 ** 9))],
    [Item("BODY[]", Section((), None, ()), partial=(10 ** 6, 5))],
    [Item("RFC822"), Item("UID")],
], ids=["whole", "partial", "partial-past-end", "origin-past-end", "rfc822"])
def test_streamed_replies_equal_whole_ones(driver, items, tmp_path, monkeypatch):
    mailbox = mailbox_with(driver, tmp_path, TEXTS)
    try:
        whole = rendered(mailbox, items, 10 ** 12, monkeypatch)
        pieces = rendered(mailbox, items, 0, monkeypatch)
    finally:
        mailbox.close()
    assert [reply for reply, _ in pieces] == [reply for reply, _ in whole]
    assert all(was_streamed for _, was_streamed in pieces)
    assert not any(was_streamed for _, was_streamed in whole)


def test_a_large_message_is_streamed_by_default(tmp_path, monkeypatch):
    big = b"Subject: big\n\n" + b"x" * 100 + b"\n" * 30000 + b"y" * (1 << 20) + b"\n"
    mailbox = mailbox_with("mbox", tmp_path, [big, TEXTS[0]])
    try:
        with mailbox.reading():
            views = [MessageView(mailbox, m, n, False) for n, m in enumerate(mailbox.messages, 1)]
            item = [Item("BODY[]", Section((), None, ()))]
            pieces = [fetch.render_pieces(view, item, False) for view in views]
            assert [any(not isinstance(p, bytes) for p in reply) for reply in pieces] == [True, False]
            sent = []
            fetch.send_pieces(sent.append, pieces[0])
            expected = big.replace(b"\n", b"\r\n")
            assert b"".join(sent) == b"1 FETCH (BODY[] {%d}\r\n" % len(expected) + expected + b")"
            assert max(len(chunk) for chunk in sent) < 200000  # sent in pieces
    finally:
        mailbox.close()
