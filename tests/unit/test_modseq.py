"""The shared modseq file (mailstore.modseq): records, sharing, rebuilds, compaction, kill -9."""

import os
import re
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

from mailstore import modseq
from mailstore.mboxformat import DELETED, OLD, SEEN

REPO = Path(__file__).resolve().parents[2]
UIDVALIDITY = 1234


class Msg:
    """What ModseqLog reads of a message: uid, flags, keywords."""

    def __init__(self, uid, flags=0, keywords=()):
        self.uid, self.flags, self.keywords = uid, flags, tuple(keywords)


def view(count, flags=0):
    return [Msg(uid, flags) for uid in range(1, count + 1)]


def synced(path, messages, uidvalidity=UIDVALIDITY):
    log = modseq.ModseqLog(str(path))
    log.sync(uidvalidity, messages)
    return log


def test_new_file_gives_every_message_one_modseq_above_the_clock(tmp_path):
    """A new file puts every message at the highest modseq, which is past the clock."""
    before = modseq.clock_modseq()
    log = synced(tmp_path / "m", view(5))
    assert log.highest > before
    assert {log.of(uid) for uid in range(1, 6)} == {log.highest}


def test_a_flag_change_gets_a_higher_modseq_and_recent_alone_does_not(tmp_path):
    """Only the changed message moves on; \\Recent (OLD) is not a tracked change."""
    messages = view(3)
    log = synced(tmp_path / "m", messages)
    first = log.highest
    messages[0].flags |= OLD
    log.sync(UIDVALIDITY, messages)
    assert log.highest == first
    messages[1].flags |= SEEN
    messages[2].keywords = ("$Label1",)
    log.sync(UIDVALIDITY, messages)
    assert log.of(1) == first
    assert log.of(2) == log.of(3) == log.highest > first
    assert log.changed_after({1, 2, 3, 99}, first) == {2, 3}


def test_two_processes_share_one_modseq_per_change(tmp_path):
    """A change recorded by one log is read, not recorded again, by another on the same file."""
    path = tmp_path / "m"
    messages = view(4)
    one, two = synced(path, messages), synced(path, messages)
    messages[3].flags |= DELETED
    one.sync(UIDVALIDITY, messages)
    size = path.stat().st_size
    two.sync(UIDVALIDITY, messages)
    assert path.stat().st_size == size
    assert two.of(4) == one.of(4) == two.highest


def test_expunges_raise_highest_and_are_remembered(tmp_path):
    """An expunged UID is recorded with a new modseq that QRESYNC can ask about."""
    messages = view(4)
    log = synced(tmp_path / "m", messages)
    first = log.highest
    log.sync(UIDVALIDITY, [m for m in messages if m.uid != 2])
    assert log.highest > first
    assert log.expunged_since(first) == ({2}, True)
    assert log.expunged_since(log.highest) == (set(), True)
    again = synced(tmp_path / "m", [m for m in messages if m.uid != 2])
    assert again.expunged_since(first) == ({2}, True)


def test_candidates_limit_the_comparison(tmp_path):
    """With candidates only those are compared, and nothing is taken as expunged."""
    messages = view(3)
    log = synced(tmp_path / "m", messages)
    messages[0].flags |= SEEN
    log.sync(UIDVALIDITY, messages[1:], candidates=[messages[0]])
    assert log.of(1) == log.highest
    assert log.expunged_since(0)[0] == set()


def test_lost_file_is_rebuilt_above_every_modseq_handed_out(tmp_path):
    """A deleted file comes back with every message past the old highest; old expunges unknown."""
    path = tmp_path / "m"
    messages = view(3)
    log = synced(path, messages)
    messages[0].flags |= SEEN
    log.sync(UIDVALIDITY, messages)
    old_highest = log.highest
    path.unlink()
    rebuilt = synced(path, messages)
    assert all(rebuilt.of(m.uid) > old_highest for m in messages)
    assert rebuilt.expunged_since(old_highest) == (set(), False)


def test_damaged_file_is_rebuilt(tmp_path):
    """Garbage in the file means a rebuild with higher modseqs, not an error."""
    path = tmp_path / "m"
    messages = view(2)
    old_highest = synced(path, messages).highest
    path.write_bytes(b"PYIMAPD-MODSEQ 1 1234 99\n\x00garbage")
    rebuilt = synced(path, messages)
    assert rebuilt.highest > old_highest
    assert path.read_bytes().startswith(b"PYIMAPD-MODSEQ 1 1234 ")


def test_new_uidvalidity_starts_the_file_again(tmp_path):
    """Renumbered messages share nothing with the old modseqs."""
    path = tmp_path / "m"
    log = synced(path, view(2))
    first = log.highest
    log.sync(UIDVALIDITY + 1, view(2))
    assert log.highest > first and log.uidvalidity == UIDVALIDITY + 1


def test_compaction_keeps_state_and_other_processes_follow(tmp_path, monkeypatch):
    """Past the record limit the file is rewritten; a log holding the old file reads the new one."""
    monkeypatch.setattr(modseq, "COMPACT_MIN_RECORDS", 10)
    path = tmp_path / "m"
    messages = view(3)
    writer, reader = synced(path, messages), synced(path, messages)
    inode = path.stat().st_ino
    for round_number in range(12):
        messages[round_number % 3].flags ^= SEEN
        writer.sync(UIDVALIDITY, messages)
    assert path.stat().st_ino != inode
    assert path.stat().st_size < 400
    reader.sync(UIDVALIDITY, messages)
    assert [reader.of(m.uid) for m in messages] == [writer.of(m.uid) for m in messages]
    assert reader.highest == writer.highest


def test_records_on_top_of_a_snapshot_answer_as_one_state(tmp_path):
    """A log that loads a snapshot plus later records (changes, an expunge, a re-used
    position, new mail) answers exactly as the log that made them, and compacts to that."""
    path = tmp_path / "m"
    messages = view(6)
    writer = synced(path, messages)
    snapshot = writer.highest
    messages[1].flags |= SEEN
    messages[4].keywords = ("$Junk",)
    writer.sync(UIDVALIDITY, messages)
    del messages[2]
    messages.append(Msg(7, SEEN))
    writer.sync(UIDVALIDITY, messages)
    reader = synced(path, messages)
    uids = [1, 2, 3, 4, 5, 6, 7, 8]
    assert [reader.of(u) for u in uids] == [writer.of(u) for u in uids]
    assert reader.changed_after(set(uids), snapshot) == {2, 5, 7}
    assert reader.expunged_since(snapshot) == ({3}, True)
    assert reader.state.known_uids() == [1, 2, 4, 5, 6, 7]
    assert reader.state.count == len(messages)
    reader.state.records = 10 ** 6  # force a compaction at the next update
    reader.sync(UIDVALIDITY, messages)
    compacted = synced(path, messages)
    assert compacted.state.changed == {} and compacted.state.removed == set()
    assert [compacted.of(u) for u in uids] == [writer.of(u) for u in uids]
    assert compacted.expunged_since(snapshot) == ({3}, True)


def test_a_large_change_set_folds_into_the_columns_and_answers_the_same(tmp_path, monkeypatch):
    """Past FOLD_MIN and a quarter of the messages, records made on top of the
    snapshot move into its columns (a dict entry per record took 11 MB at 100k);
    every answer stays what a log that only read the file gives."""
    monkeypatch.setattr(modseq, "FOLD_MIN", 8)
    monkeypatch.setattr(modseq, "WRITE_LINES", 7)
    path = tmp_path / "m"
    messages = view(40)
    writer = synced(path, messages)
    snapshot = writer.highest
    del messages[3]  # uid 4 expunged: `removed` before the fold
    for message in messages[::2]:
        message.flags |= SEEN
    messages[5].keywords = ("$Junk",)
    writer.sync(UIDVALIDITY, messages)
    # 21 flag records were made (before the expunge's, with 40 UIDs known): at
    # most a quarter of 40 may lie on top of the columns now.
    assert len(writer.state.changed) <= 10
    reader = modseq.ModseqLog(str(path))
    reader.sync(UIDVALIDITY, messages)
    uids = list(range(1, 42))
    assert [reader.of(u) for u in uids] == [writer.of(u) for u in uids]
    assert [writer.state.record(u) for u in uids] == [reader.state.record(u) for u in uids]
    assert writer.state.known_uids() == [m.uid for m in messages]
    assert writer.changed_after(set(uids), snapshot) == {m.uid for m in messages[::2]} | {7}
    assert writer.expunged_since(snapshot) == ({4}, True)
    assert writer.state.count == len(messages) == reader.state.count


def test_fold_keeps_records_and_empties_what_lies_on_top(tmp_path):
    path = tmp_path / "m"
    messages = view(10)
    log = synced(path, messages)
    state = log.state
    state.note_flags(state.highest + 1, 3, SEEN, ("$Label1",))
    state.note_expunge(state.highest + 1, 5)
    state.note_flags(state.highest + 1, 11, 0, ())
    before = [state.record(uid) for uid in range(1, 13)]
    state.fold()
    assert state.changed == {} and state.removed == set()
    assert [state.record(uid) for uid in range(1, 13)] == before
    assert state.known_uids() == [1, 2, 3, 4, 6, 7, 8, 9, 10, 11]


def test_old_expunges_are_forgotten_beyond_the_limit(tmp_path, monkeypatch):
    """Compaction keeps the newest expunges; asking about older ones is answered as incomplete."""
    monkeypatch.setattr(modseq, "MAX_EXPUNGED", 2)
    monkeypatch.setattr(modseq, "COMPACT_MIN_RECORDS", 1)
    messages = view(5)
    log = synced(tmp_path / "m", messages)
    start = log.highest
    steps = []
    for uid in (1, 2, 3, 4):
        messages = [m for m in messages if m.uid != uid]
        log.sync(UIDVALIDITY, messages)
        steps.append(log.highest)
    assert log.expunged_since(steps[1]) == ({3, 4}, True)
    assert log.expunged_since(start)[1] is False


def test_a_failed_write_is_logged_and_recorded_by_the_next_sync(tmp_path, monkeypatch):
    """A full disk while appending records loses no change: the next sync records it, higher."""
    messages = view(2)
    notes = []
    log = modseq.ModseqLog(str(tmp_path / "m"), lambda priority, text: notes.append(priority))
    log.sync(UIDVALIDITY, messages)
    first = log.highest
    real_pwrite = os.pwrite

    def disk_full(fd, data, offset):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "pwrite", disk_full)
    messages[0].flags |= SEEN
    log.sync(UIDVALIDITY, messages)
    assert notes == ["warning"]
    monkeypatch.setattr(os, "pwrite", real_pwrite)
    later = synced(tmp_path / "m", messages)
    assert later.of(1) > first and later.of(2) == first


def test_unwritable_place_means_no_modseqs(tmp_path):
    """A file that cannot be created leaves the log unavailable (NOMODSEQ), without raising."""
    log = modseq.ModseqLog(str(tmp_path / "missing-dir" / "m"))
    log.sync(UIDVALIDITY, view(2))
    assert not log.available


_CHILD = textwrap.dedent("""
    import os, sys, time
    sys.path.insert(0, sys.argv[1])
    from mailstore import modseq

    class Msg:
        def __init__(self, uid, flags):
            self.uid, self.flags, self.keywords = uid, flags, ("Keyword%d" % uid,)

    count = int(sys.argv[3])
    log = modseq.ModseqLog(sys.argv[2])
    log.sync(1234, [Msg(uid, 0) for uid in range(1, count + 1)])
    real_pwrite = os.pwrite

    def pwrite_then_wait(fd, data, offset):
        written = real_pwrite(fd, data, offset)
        if offset > 0 and len(data) == modseq.WRITE_CHUNK:
            sys.stdout.write("written\\n")
            sys.stdout.flush()
            time.sleep(60)
        return written

    os.pwrite = pwrite_then_wait
    log.sync(1234, [Msg(uid, 2) for uid in range(1, count + 1)])
""")


def test_kill_9_in_the_middle_of_a_record_write_loses_nothing(tmp_path):
    """A writer killed after part of its records leaves a file the next sync repairs: the torn
    line is dropped, every change has a modseq above the old ones, and nothing is recorded twice."""
    path = tmp_path / "m"
    count = 20000  # several WRITE_CHUNKs of records
    child = subprocess.Popen([sys.executable, "-c", _CHILD, str(REPO), str(path), str(count)],
                             stdout=subprocess.PIPE, text=True)
    try:
        assert child.stdout.readline() == "written\n"
    finally:
        os.kill(child.pid, signal.SIGKILL)
        child.wait()
        child.stdout.close()
    torn = path.read_bytes()
    messages = [Msg(uid, 2, ("Keyword%d" % uid,)) for uid in range(1, count + 1)]
    first = modseq.ModseqLog(str(path))
    with first.locked():
        first._catch_up(UIDVALIDITY, messages)  # read what the killed writer left, change nothing
    floor = min(first.of(uid) for uid in range(1, count + 1))
    recorded = sum(1 for uid in range(1, count + 1) if first.of(uid) > floor)
    first.close()
    assert 0 < recorded < count  # the kill landed inside the records
    log = synced(path, messages)
    data = path.read_bytes()
    assert data.startswith(torn[:torn.rfind(b"\n") + 1])
    assert all(RECORD.fullmatch(line) for line in _record_lines(data))
    assert all(log.of(uid) > floor for uid in range(1, count + 1))
    size = len(data)
    synced(path, messages)
    assert path.stat().st_size == size


RECORD = re.compile(rb"F \d+ \d+ \d+( \S+)*|X \d+ \d+")


def _record_lines(data):
    """The record lines after the header and snapshot."""
    header, _, rest = data.partition(b"\n")
    length = int(header.split(b" ")[3])
    return rest[length:].split(b"\n")[:-1]
