"""A session's refresh re-reads only what another process changed, and ends where a full read would.

Another session's flag changes are same-size header patches and an MTA only
appends, so refresh() re-reads just the patched messages and the new mail
(MboxMailbox._reload_changed_parts); anything else falls back to a full
read.  Either way the result must equal a fresh open of the file: that is
what these tests compare, after random mixes of every kind of change.
"""

import os
import random
import time

import pytest

from auth import Principal
from mailstore import StoreError
from mailstore import mboxformat as fmt
from mailstore import open_store
from server.config import Config

from test_mbox_store import Spool, delivery, mta_append

KEYWORDS = ("$Work", "Junk", "$Label2")
FLAGS = (fmt.SEEN, fmt.ANSWERED, fmt.FLAGGED, fmt.DRAFT, fmt.DELETED)


def state(mailbox):
    """Everything a session reports about a mailbox, and where each message lies."""
    return (mailbox.uidvalidity, mailbox.uidnext, list(mailbox.keywords),
            [(m.uid, m.flags & ~fmt.OLD, m.keywords, m.size, m.start, m.header, m.body, m.end,
              m.hidden) for m in mailbox.messages])


def fresh_state(spool, tmp_path, round_number):
    """The state of a read-only open with its own empty index directory (a full read)."""
    config = Config({"mail_location": "mbox:%s:INBOX=%s" % (spool.home, spool.path),
                     "index_dir": str(tmp_path / ("check-%d" % round_number))})
    store = open_store(Principal("u", os.getuid(), os.getgid(), str(spool.home)), config)
    mailbox = store.open_inbox(readonly=True)
    try:
        return state(mailbox)
    finally:
        mailbox.close()


def change(rng, writer, spool, number):
    """One random change by another session or an MTA; the next delivery number."""
    uids = [m.uid for m in writer.messages]
    kind = rng.choice(["flags", "flags", "keyword", "deliver", "append", "expunge", "claim"])
    if kind == "flags" and uids:
        writer.store_flags(rng.sample(uids, min(len(uids), rng.randint(1, 3))),
                           rng.choice("+-"), rng.choice(FLAGS[:-1]), ())
    elif kind == "keyword" and uids:
        writer.store_flags([rng.choice(uids)], "+", 0, (rng.choice(KEYWORDS),))
    elif kind == "deliver":
        mta_append(spool.path, b"".join(delivery(n) for n in range(number, number + 2)))
        return number + 2
    elif kind == "append":
        writer.append([(delivery(number)[delivery(number).index(b"\n") + 1:], fmt.SEEN, (),
                        (1700000000 + number, 0))])
        return number + 1
    elif kind == "expunge" and uids:
        doomed = rng.choice(uids)
        writer.store_flags([doomed], "+", fmt.DELETED, ())
        writer.expunge({doomed})
    elif kind == "claim":
        writer.refresh()
        writer.claim_recent()
    return number


@pytest.mark.parametrize("seed", range(6))
def test_refresh_after_random_changes_equals_a_full_read(tmp_path, seed):
    rng = random.Random(seed)
    spool = Spool(tmp_path)
    spool.write(b"".join(delivery(n) for n in range(1, 31)))
    reader, writer = spool.open(), spool.open()
    try:
        reader.claim_recent()
        number = 31
        for round_number in range(40):
            writer.refresh()
            number = change(rng, writer, spool, number)
            reader.refresh()
            assert state(reader) == fresh_state(spool, tmp_path, round_number), round_number
    finally:
        reader.close()
        writer.close()


def test_a_flag_patch_and_new_mail_are_read_without_reading_the_rest(tmp_path, monkeypatch):
    """The cheap path is taken: a patched message and the new mail are re-read, nothing else."""
    spool = Spool(tmp_path)
    spool.write(b"".join(delivery(n) for n in range(1, 41)))
    reader, writer = spool.open(), spool.open()
    try:
        reader.claim_recent()
        writer.refresh()
        writer.store_flags([20], "+", fmt.FLAGGED, ())
        mta_append(spool.path, delivery(41))
        full_reads = []
        original = type(reader)._map_and_parse
        monkeypatch.setattr(type(reader), "_map_and_parse",
                            lambda self: full_reads.append(1) or original(self))
        assert reader.refresh() is True
        assert full_reads == []
        assert reader.by_uid(20).flags & fmt.FLAGGED
        assert [m.uid for m in reader.messages][-1] == 41
    finally:
        reader.close()
        writer.close()


def test_reads_counts_what_was_read_from_the_file_not_our_own_patches(tmp_path):
    """A session may skip its walk over the mailbox after its own STORE only because
    `reads` stays put for its own header patches and moves for anything read back."""
    spool = Spool(tmp_path)
    spool.write(b"".join(delivery(n) for n in range(1, 11)))
    reader, writer = spool.open(), spool.open()
    try:
        reader.claim_recent()
        writer.refresh()
        before = reader.reads
        reader.store_flags([3], "+", fmt.FLAGGED, ())
        assert reader.reads == before
        writer.store_flags([4], "+", fmt.SEEN, ())
        reader.refresh()
        after_flags = reader.reads
        assert after_flags > before
        mta_append(spool.path, delivery(11))
        reader.refresh()
        assert reader.reads > after_flags
    finally:
        reader.close()
        writer.close()


def test_uidvalidity_of_an_unwritten_base_stays_while_a_pop3_session_holds_the_file(tmp_path):
    """A new spool (no UW base yet) that a POP3 session holds cannot get its base
    written; an IMAP session must keep showing one UIDVALIDITY as mail arrives,
    across seconds, or its client is told the mailbox was renumbered."""
    spool = Spool(tmp_path)
    spool.write(b"".join(delivery(n) for n in range(1, 4)))
    pop3 = spool.open(exclusive_session=True)
    imap = spool.open()
    try:
        shown = imap.uidvalidity
        for number in range(4, 7):
            # Writing the base would move data under the POP3 session: refused, and
            # refused loudly, since the UIDVALIDITY is not in the file yet.
            with pytest.raises(StoreError) as refused:
                imap.claim_recent()
            assert refused.value.kind == StoreError.IN_USE
            assert imap.uidvalidity == shown
            time.sleep(1.05)
            mta_append(spool.path, delivery(number))
            imap.refresh()
            assert imap.uidvalidity == shown
            assert [m.uid for m in imap.messages] == list(range(1, number + 1))
    finally:
        imap.close()
        pop3.close()
