"""The index sidecar: reopening costs O(new mail), and the file always wins over the index."""

import os

import pytest

from mailstore import mboxformat as fmt
from mailstore import mboxindex

from test_mbox_store import Spool, delivery, mta_append

COUNT = mboxindex.MIN_MESSAGES + 20


@pytest.fixture
def spool(tmp_path):
    """A spool of COUNT messages, opened once so that UW metadata and the index exist."""
    spool = Spool(tmp_path)
    spool.write(b"".join(delivery(n) for n in range(1, COUNT + 1)))
    mailbox = spool.open()
    mailbox.claim_recent()
    mailbox.close()
    return spool


class ScanCounter:
    """Counts how many bytes mboxformat.scan was asked to parse."""

    def __init__(self, monkeypatch):
        self.bytes = 0
        real = fmt.scan

        def counting_scan(buf, start=0):
            self.bytes += len(buf) - start
            return real(buf, start)

        monkeypatch.setattr(fmt, "scan", counting_scan)


def state(mailbox):
    """Everything a client sees of a mailbox, for comparing two opens."""
    return (mailbox.uidvalidity, mailbox.uidnext, mailbox.keywords,
            [(m.uid, m.flags, m.keywords, m.size, mailbox.internal_date(m),
              mailbox.message_text(m)) for m in mailbox.messages])


def full_parse_state(spool):
    """The state as a fresh parse of the file gives it, with every index removed first."""
    for name in os.listdir(spool.store.location.index_dir):
        if name.startswith("index-"):
            os.unlink(os.path.join(spool.store.location.index_dir, name))
    mailbox = spool.open(readonly=True)
    try:
        return state(mailbox)
    finally:
        mailbox.close()


def test_reopen_reads_no_message_from_the_file(spool, monkeypatch):
    """A reopen of an unchanged mailbox takes everything from the index and scans nothing."""
    counter = ScanCounter(monkeypatch)
    mailbox = spool.open(readonly=True)
    try:
        assert len(mailbox.messages) == COUNT
        assert counter.bytes == 0
        indexed = state(mailbox)
    finally:
        mailbox.close()
    assert indexed == full_parse_state(spool)


def test_reopen_after_delivery_scans_only_the_new_mail(spool, monkeypatch):
    """Mail an MTA appended is parsed from the last indexed message on; the rest comes from the index."""
    new_mail = b"\n" + delivery(COUNT + 1) + b"\n" + delivery(COUNT + 2)
    mta_append(spool.path, new_mail)
    counter = ScanCounter(monkeypatch)
    mailbox = spool.open(readonly=True)
    try:
        assert [m.uid for m in mailbox.messages[-2:]] == [COUNT + 1, COUNT + 2]
        # The last indexed message is parsed again (its end moves); nothing before it.
        last_message = len(delivery(COUNT)) + 100  # plus the metadata the first open added
        assert len(new_mail) < counter.bytes <= len(new_mail) + last_message
        indexed = state(mailbox)
    finally:
        mailbox.close()
    assert indexed == full_parse_state(spool)


def test_foreign_flag_change_in_place_is_noticed(spool):
    """Another program patching a Status header in place (same size) invalidates the index."""
    data = open(spool.path, "rb").read()
    position = data.index(b"Status: O\n", data.index(b"Subject: message 100\n") - 400)
    patched = data[:position] + b"Status: R\n" + data[position + len(b"Status: O\n"):]
    with open(spool.path, "r+b") as handle:
        handle.write(patched)
    mailbox = spool.open(readonly=True)
    try:
        seen = [m.uid for m in mailbox.messages if m.flags & fmt.SEEN]
        indexed = state(mailbox)
    finally:
        mailbox.close()
    assert len(seen) == 1
    assert indexed == full_parse_state(spool)


def test_foreign_rewrite_that_moves_data_is_noticed(spool):
    """A rewrite by another program that removes a message is parsed afresh, not trusted."""
    data = open(spool.path, "rb").read()
    second = data.index(b"\nFrom ", 1) + 1
    third = data.index(b"\nFrom ", second) + 1
    with open(spool.path, "r+b") as handle:
        handle.write(data[:second] + data[third:])
        handle.truncate()
    mailbox = spool.open(readonly=True)
    try:
        assert len(mailbox.messages) == COUNT - 1
        assert 2 not in [m.uid for m in mailbox.messages]
        indexed = state(mailbox)
    finally:
        mailbox.close()
    assert indexed == full_parse_state(spool)


@pytest.mark.parametrize("damage", [b"", b"garbage", b"\xe3" * 100],
                         ids=["empty", "garbage", "bad-marshal"])
def test_damaged_index_is_rebuilt_silently(spool, damage):
    """An index file that cannot be read is ignored and rewritten on close."""
    directory = spool.store.location.index_dir
    (name,) = [n for n in os.listdir(directory) if n.startswith("index-")]
    with open(os.path.join(directory, name), "wb") as handle:
        handle.write(damage)
    mailbox = spool.open()
    try:
        assert len(mailbox.messages) == COUNT
    finally:
        mailbox.close()
    st = os.stat(spool.path)
    assert mboxindex.load(os.path.join(directory, name), (st.st_dev, st.st_ino)) is not None


def test_flag_change_keeps_the_index_usable(spool, monkeypatch):
    """After a session changes flags and closes, the next open still scans nothing."""
    mailbox = spool.open()
    try:
        mailbox.store_flags([7], "+", fmt.FLAGGED, ("$Work",))
    finally:
        mailbox.close()
    counter = ScanCounter(monkeypatch)
    reopened = spool.open(readonly=True)
    try:
        assert counter.bytes == 0
        assert reopened.by_uid(7).flags & fmt.FLAGGED and reopened.by_uid(7).keywords == ("$Work",)
        indexed = state(reopened)
    finally:
        reopened.close()
    assert indexed == full_parse_state(spool)


def test_computed_fields_are_kept_across_sessions(spool):
    """A value computed from a message (ENVELOPE) is computed once, then read back after reopening."""
    calls = []

    def compute():
        calls.append(1)
        return b"(envelope)"

    mailbox = spool.open()
    try:
        assert mailbox.cached(mailbox.messages[5], "envelope", compute) == b"(envelope)"
        assert mailbox.cached(mailbox.messages[5], "envelope", compute) == b"(envelope)"
    finally:
        mailbox.close()
    reopened = spool.open(readonly=True)
    try:
        assert reopened.cached(reopened.messages[5], "envelope", compute) == b"(envelope)"
        assert reopened.cached(reopened.messages[6], "envelope", compute) == b"(envelope)"
    finally:
        reopened.close()
    assert len(calls) == 2


def test_cached_fields_of_expunged_messages_are_dropped(spool):
    """After an expunge, the cache holds nothing for the removed UID (and UIDs are never reused)."""
    mailbox = spool.open()
    try:
        for message in mailbox.messages[:3]:
            mailbox.cached(message, "envelope", lambda: b"x")
        mailbox.store_flags([2], "+", fmt.DELETED, ())
        mailbox.expunge()
    finally:
        mailbox.close()
    reopened = spool.open(readonly=True)
    try:
        reopened.cached(reopened.messages[0], "envelope", lambda: b"x")
        assert sorted(uid for uid, _ in reopened.field_cache.keys()) == [1, 3]
    finally:
        reopened.close()


def test_field_cache_reads_values_back_after_two_save_cycles(tmp_path):
    """Values of several kinds survive save, reopen, more values, save again; a damaged file is empty."""
    from mailstore.fieldcache import FieldCache

    path = str(tmp_path / "cache")
    envelope = (b"date", [b"a", None, (1, 2)], {"nested": b"\x00\xff"})
    first = FieldCache(path, 7)
    assert first.get(10, "envelope", lambda: envelope) == envelope
    first.get(10, "date", lambda: (1700000000, 60))
    first.get(12, "envelope", lambda: b"twelve")
    first.save()
    second = FieldCache(path, 7)
    never = lambda: pytest.fail("a cached value was computed again")  # noqa: E731
    assert second.get(10, "envelope", never) == envelope
    second.get(11, "bodystructure", lambda: b"eleven")
    second.forget([12])
    second.save()
    third = FieldCache(path, 7)
    assert sorted(third.keys()) == [(10, "date"), (10, "envelope"), (11, "bodystructure")]
    assert third.get(10, "date", never) == (1700000000, 60)
    assert third.get(11, "bodystructure", never) == b"eleven"
    assert FieldCache(path, 8).get(10, "date", lambda: "fresh") == "fresh"  # other UIDVALIDITY
    with open(path, "r+b") as handle:
        handle.truncate(40)
    assert FieldCache(path, 7).get(10, "date", lambda: "fresh") == "fresh"


def test_field_cache_writes_out_new_values_as_they_pile_up(tmp_path, monkeypatch):
    """Past SPILL_BYTES of new values the file is rewritten mid-session; every value stays readable."""
    from mailstore import fieldcache

    monkeypatch.setattr(fieldcache, "SPILL_BYTES", 1000)
    path = str(tmp_path / "cache")
    cache = fieldcache.FieldCache(path, 7)
    for uid in range(1, 41):
        cache.get(uid, "envelope", lambda uid=uid: b"value %d " % uid * 10)
    assert os.path.exists(path) and len(cache._new) < 40  # some went to the file already
    never = lambda: pytest.fail("a cached value was computed again")  # noqa: E731
    assert all(cache.get(uid, "envelope", never) == b"value %d " % uid * 10 for uid in range(1, 41))
    cache.save()
    reread = fieldcache.FieldCache(path, 7)
    assert [uid for uid, _ in reread.keys()] == list(range(1, 41))


class DifferenceCounter:
    """Counts the messages ModseqState.differences compares (the O(mailbox) part of an open)."""

    def __init__(self, monkeypatch):
        from mailstore import modseq

        self.compared = 0
        real = modseq.ModseqState.differences

        def counting(state, messages, candidates=None):
            self.compared += len(messages if candidates is None else candidates)
            return real(state, messages, candidates)

        monkeypatch.setattr(modseq.ModseqState, "differences", counting)


def modseq_answers(mailbox):
    return mailbox.modseqs.highest, [mailbox.modseqs.of(m.uid) for m in mailbox.messages]


def test_reopen_of_an_untouched_mailbox_compares_no_flags_for_modseqs(spool, monkeypatch):
    """Neither the mailbox nor its modseq file changed since the index was written: the
    open takes the modseqs as they are, and they are the ones the last session had."""
    mailbox = spool.open()
    mailbox.store_flags([mailbox.messages[3].uid], "+", fmt.FLAGGED, ())
    before = modseq_answers(mailbox)
    mailbox.close()
    counter = DifferenceCounter(monkeypatch)
    mailbox = spool.open(readonly=True)
    try:
        assert counter.compared == 0
        assert modseq_answers(mailbox) == before
        assert before[1][3] == before[0] > before[1][2]
    finally:
        mailbox.close()


@pytest.mark.parametrize("change", ["lost", "recorded"])
def test_a_changed_modseq_file_means_a_full_comparison(spool, monkeypatch, change):
    """A modseq file that was lost, or got records after the index was written, is not
    trusted to match: every message is compared (a lost file is rebuilt higher)."""
    from mailstore import modseq

    mailbox = spool.open()
    path, highest = mailbox.modseqs.path, mailbox.modseqs.highest
    mailbox.close()
    if change == "lost":
        os.unlink(path)
    else:
        other = modseq.ModseqLog(path)
        with other.locked():
            other._catch_up(other_uidvalidity(path), [])
            other._append([], [COUNT + 50])  # an expunge record, as a late writer leaves one
        other.close()
    counter = DifferenceCounter(monkeypatch)
    mailbox = spool.open(readonly=True)
    try:
        assert counter.compared == COUNT
        assert mailbox.modseqs.highest > highest
    finally:
        mailbox.close()


def other_uidvalidity(path):
    with open(path, "rb") as handle:
        return int(handle.readline().split()[2])


def test_new_mail_is_compared_for_modseqs_alone(spool, monkeypatch):
    """A refresh after a delivery and the claim that numbers it compare only what
    changed with the modseq file; the new mail still gets a modseq above the rest."""
    mailbox = spool.open()
    try:
        before = mailbox.modseqs.highest
        counter = DifferenceCounter(monkeypatch)
        mta_append(spool.path, b"\n" + delivery(COUNT + 1))
        mailbox.refresh()
        mailbox.claim_recent()
        assert 0 < counter.compared <= 4
        newest = mailbox.messages[-1]
        assert mailbox.modseqs.of(newest.uid) == mailbox.modseqs.highest > before
        assert mailbox.modseqs.of(mailbox.messages[0].uid) <= before
    finally:
        mailbox.close()


def test_index_written_and_read_in_pieces_gives_the_same_mailbox(tmp_path, monkeypatch):
    """Packed records go to and come from the index a piece at a time; pieces that do
    not divide the message count must still give exactly what a full parse gives."""
    monkeypatch.setattr(mboxindex, "_PIECE", 7)
    spool = Spool(tmp_path)
    spool.write(b"".join(delivery(n) for n in range(1, COUNT + 1)))
    mailbox = spool.open()
    mailbox.claim_recent()
    mailbox.store_flags([5, 6], "+", fmt.FLAGGED, ("$Label1",))
    mailbox.close()
    counter = ScanCounter(monkeypatch)
    mailbox = spool.open(readonly=True)
    try:
        assert counter.bytes == 0
        indexed = state(mailbox)
    finally:
        mailbox.close()
    assert indexed == full_parse_state(spool)
    assert indexed[3][4][2] == ("$Label1",)
