"""After an expunge carried by the journal's moves form, the session's view of the file
(offsets, sizes, metadata spans, fingerprints, flags) is what a fresh read finds.

The moved messages are shifted in memory, or re-read from their new header only,
instead of being parsed again (mailstore.mbox._place_tail); a mistake there would
make FETCH read the wrong bytes, so every field is compared with a new parse.
"""

import os
import random
import shutil

import pytest

from auth import Principal
from mailstore import journal_moves, open_store
from mailstore import mboxformat as fmt
from server.config import Config


def message_text(index, rng):
    """A message of varied form: LF or CRLF header, some with an exact Content-Length."""
    body = b"".join(b"%d/%d %s\n" % (index, n, b"x" * rng.randint(0, 70))
                    for n in range(rng.randint(1, 200 if rng.random() < 0.2 else 12)))
    header = [b"From: s%d@example.org" % index, b"Subject: moves %d" % index,
              b"Message-ID: <moves-%d@example.org>" % index]
    shape = rng.random()
    if shape < 0.2:
        return (b"From s@example.org Wed Dec  2 05:53:22 1992\n" + b"\r\n".join(header)
                + b"\r\n\r\n" + body + b"\n")
    if shape < 0.4:
        header.append(b"Content-Length: %d" % len(body))
    return b"From s@example.org Wed Dec  2 05:53:22 1992\n" + b"\n".join(header) + b"\n\n" + body + b"\n"


def view(mailbox):
    known = ([mailbox.pseudo] if mailbox.pseudo else []) + mailbox.messages
    return [(m.uid, m.start, m.header, m.body, m.end, m.size, m.hidden, m.check, m.flags,
             m.keywords) for m in known], (mailbox.uidvalidity, mailbox.last_uid)


@pytest.mark.parametrize("seed", range(8))
def test_moved_messages_are_where_a_fresh_read_finds_them(tmp_path, monkeypatch, seed):
    monkeypatch.setattr(journal_moves, "MIN_TAIL", 0)
    taken = []
    write_journal = journal_moves.write_journal
    monkeypatch.setattr(journal_moves, "write_journal",
                        lambda *args: taken.append(write_journal(*args)) or taken[-1])
    rng = random.Random(seed)
    spool = tmp_path / "spool"
    spool.write_bytes(b"".join(message_text(i, rng) for i in range(1, 251)))
    config = Config({"mail_location": "mbox:%s:INBOX=%s" % (tmp_path, spool),
                     "index_dir": str(tmp_path / "index")})
    store = open_store(Principal("u", os.getuid(), os.getgid(), str(tmp_path)), config)
    for round_ in range(4):
        mailbox = store.open_inbox()
        uids = [m.uid for m in mailbox.messages]
        doomed = set(uids[rng.randint(0, 3)::rng.randint(2, 6)])
        if round_ == 2 and seed % 3 == 0:
            doomed = set(uids)  # the pseudo-message is written, later moves keep it
        for message in mailbox.messages:
            if message.uid in doomed:
                message.flags |= fmt.DELETED
            if rng.random() < 0.3:  # a new header (as POP3's \Seen gives) on some
                message.flags ^= fmt.FLAGGED
                message.dirty = True
        mailbox.commit(expunge=True)
        after_commit = view(mailbox)
        # The layout a POP3 commit checks is kept by parts through the move.
        assert mailbox.layout == mailbox._layout_digest()
        mailbox.close()
        shutil.rmtree(tmp_path / "index", ignore_errors=True)  # no index: a real parse
        fresh = store.open_inbox()
        try:
            assert view(fresh) == after_commit
        finally:
            fresh.close()
        if round_ == 2:
            with open(spool, "ab") as handle:
                handle.write(b"".join(message_text(i, rng) for i in range(300, 340)))
    assert any(taken)
