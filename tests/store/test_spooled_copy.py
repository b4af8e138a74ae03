"""COPY and RENAME INBOX in bounded memory (issue 3, point 9): message texts go
through a mailstore.text.Spool, and each driver appends from its FileText
pieces exactly what it appends from the same text as bytes."""

import errno
import os

import pytest

from imap.view import wire_form
from mailstore import StoreError
from mailstore import mboxformat as fmt
from mailstore import text as spooling
from mailstore.text import FileText, Spool, spooled_items
from tests.store.test_store_contract import account  # noqa: F401 (fixture)


def awkward_message(piece):
    """A message whose every awkward spot falls on a PIECE boundary: CRLF parted
    from its LF, a body line `From `, a NUL, a bare CR, no final newline."""
    header = b"From: a@example.org\r\nSubject: spooled\r\nStatus: RO\r\n\r\n"
    line = b"body line of a large message\r\n"
    body = bytearray(line * (3 * piece // len(line)))
    from_line = 2 * piece - 2 * piece % len(line)
    for at, text in ((piece - len(header) - 1, b"\r\n"), (from_line, b"From x here\r\n"),
                     (2 * piece + 100, b"\0"), (2 * piece + 200, b"\r")):
        body[at:at + len(text)] = text
    return header + bytes(body) + b"From the end, unterminated"


def texts(mailbox):
    return [wire_form(mailbox.message_text(m)) for m in mailbox.messages]


def test_a_spooled_text_is_appended_as_the_same_bytes_would_be(account, tmp_path, monkeypatch):  # noqa: F811
    monkeypatch.setattr(spooling, "PIECE", 4096)
    data = awkward_message(4096)
    store = account.store()
    store.create(b"Bytes")
    store.create(b"Spooled")
    with Spool(str(tmp_path / "scratch"), limit=0) as spool:
        held = spool.add([data[:5000], data[5000:]], len(data))
        assert isinstance(held, FileText) and b"".join(held.chunks()) == data
        for name, text in ((b"Bytes", data), (b"Spooled", held)):
            target = store.open_mailbox(name)
            target.append([(text, fmt.FLAGGED, ["$Spooled"], (1700000000, 60))])
            target.close()
    by_bytes, spooled = store.open_mailbox(b"Bytes"), store.open_mailbox(b"Spooled")
    assert texts(spooled) == texts(by_bytes)
    assert (b"\r\n>From x here" if account.driver == "mbox" else b"\r\nFrom x here") \
        in texts(spooled)[0]
    assert [(m.size, m.flags, m.keywords) for m in spooled.messages] == \
        [(m.size, m.flags, m.keywords) for m in by_bytes.messages]
    assert spooled.internal_date(spooled.messages[0]) == by_bytes.internal_date(by_bytes.messages[0])


def test_copied_messages_past_the_limit_go_through_the_scratch_file(account, tmp_path):  # noqa: F811
    for number in range(1, 6):
        account.deliver(number)
    store = account.store()
    store.create(b"Copies")
    inbox = store.open_inbox()
    uids = [m.uid for m in inbox.messages]
    scratch = tmp_path / "scratch"
    with Spool(str(scratch), limit=300) as spool:
        items, found = spooled_items(inbox, uids + [999], spool)
        assert found == uids
        kinds = [type(text) for text, _, _, _ in items]
        assert kinds[0] is bytes and kinds[-1] is FileText
        assert os.listdir(scratch) == []  # unlinked from the start
        target = store.open_mailbox(b"Copies")
        target.append(items)
        target.close()
    copies = store.open_mailbox(b"Copies")
    assert texts(copies) == texts(inbox)


def test_rename_inbox_moves_every_message(account):  # noqa: F811
    for number in range(1, 4):
        account.deliver(number)
    store = account.store()
    before = texts(store.open_inbox())
    store.rename(b"INBOX", b"Old")
    assert texts(store.open_mailbox(b"Old")) == before
    assert store.open_inbox().messages == []


def unusable_directory(tmp_path):
    """A directory path that cannot be created: a file stands where its parent would."""
    blocker = tmp_path / "file"
    blocker.write_bytes(b"")
    return str(blocker / "scratch")


def failed_spooled_text(tmp_path, data):
    """(spool, FileText) of data written piece-wise to a spool that cannot make its file."""
    spool = Spool(unusable_directory(tmp_path), limit=0)
    spool.start()
    spool.write(data)
    return spool, spool.finish()


def test_a_scratch_file_that_cannot_be_made_is_a_temporary_failure(tmp_path):
    with Spool(unusable_directory(tmp_path), limit=0) as spool:
        with pytest.raises(StoreError) as caught:
            spool.add([b"text"], 4)
    assert caught.value.kind == StoreError.TEMPORARY


def test_a_file_system_without_o_tmpfile_gets_an_unlinked_file(tmp_path, monkeypatch):
    real_open = os.open

    def no_tmpfile(path, flags, *args):
        if flags & os.O_TMPFILE == os.O_TMPFILE:
            raise OSError(errno.EOPNOTSUPP, "Operation not supported")
        return real_open(path, flags, *args)

    monkeypatch.setattr(os, "open", no_tmpfile)
    with Spool(str(tmp_path / "scratch"), limit=0) as spool:
        held = spool.add([b"first ", b"text"], 10)
        assert b"".join(held.chunks()) == b"first text"
        assert os.listdir(tmp_path / "scratch") == []


def test_a_literal_that_cannot_be_spooled_fails_when_read(tmp_path):
    """The framer writes as octets arrive and must not raise: the failure waits in the
    FileText, and the APPEND that reads it gets a StoreError (a NO), nothing stored."""
    spool, text = failed_spooled_text(tmp_path, b"some octets")
    with pytest.raises(StoreError) as caught:
        list(text.chunks())
    assert caught.value.kind == StoreError.TEMPORARY
    spool.close()


def test_a_failed_spooled_append_stores_nothing(account, tmp_path):  # noqa: F811
    account.deliver(1)
    store = account.store()
    spool, text = failed_spooled_text(tmp_path, b"Subject: lost\r\n\r\nbody\r\n")
    inbox = store.open_inbox()
    with pytest.raises(StoreError):
        inbox.append([(text, 0, (), (1700000000, 0))])
    inbox.close()
    again = store.open_inbox()
    assert [m.uid for m in again.messages] == [1]
    assert again.last_uid == 1
    again.close()
