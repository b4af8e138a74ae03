"""mailstore.journal: same-size patches travel as a packed table (format 3),
and a format 2 journal, which listed each patch in its JSON header, still replays."""

import hashlib
import os

from mailstore import journal

ORIGINAL = b"".join(b"From a@b Thu Nov 26 10:00:00 2026\nStatus: O \n\nbody %03d\n\n" % n
                    for n in range(300))


def mailbox(tmp_path):
    path = tmp_path / "inbox"
    path.write_bytes(ORIGINAL)
    fd = os.open(path, os.O_RDWR)
    st = os.fstat(fd)
    return path, fd, (st.st_dev, st.st_ino)


def status_patches():
    """Every "Status: O " line becomes "Status: RO": one patch per message."""
    patches, expected, position = journal.PatchList(), bytearray(ORIGINAL), 0
    while True:
        position = ORIGINAL.find(b"Status: O ", position)
        if position < 0:
            return patches, bytes(expected)
        patches.append((position + 8, b"RO"))
        expected[position + 8:position + 10] = b"RO"
        position += 1


def test_a_patch_list_gives_back_what_was_appended():
    patches = journal.PatchList()
    for patch in [(10, b"RO"), (500, b""), (7, b"X-Status: A")]:
        patches.append(patch)
    assert list(patches) == [(10, b"RO"), (500, b""), (7, b"X-Status: A")]
    assert len(patches) == 3 and not journal.PatchList()


def test_patches_are_journalled_as_one_table_and_applied(tmp_path):
    path, fd, identity = mailbox(tmp_path)
    patches, expected = status_patches()
    assert len(patches) == 300
    journal_path = str(tmp_path / "journal")
    journal.write_journal(journal_path, identity, [], len(ORIGINAL), patches=patches)
    jfd = os.open(journal_path, os.O_RDONLY)
    _, header = journal._read_header(jfd)
    os.close(jfd)
    assert header["writes"] == [] and len(header["patches"]) == 4
    assert header["patches"][3] == 300 * 3 * 8  # the table: three int64 per patch
    journal.apply(fd, journal_path)
    os.close(fd)
    assert path.read_bytes() == expected
    assert not os.path.exists(journal_path)


def test_patches_and_a_tail_write_in_one_journal_replay_after_a_crash(tmp_path):
    path, fd, identity = mailbox(tmp_path)
    patches, expected = status_patches()
    tail = b"From new@b Thu Nov 26 11:00:00 2026\n\nnew\n\n"
    journal_path = str(tmp_path / "journal")
    journal.write_journal(journal_path, identity, [(len(ORIGINAL), [tail])], len(ORIGINAL),
                          tail=True, patches=patches)
    # A kill -9 before apply: the next open finds the journal and replays it.
    assert journal.recover(fd, journal_path, identity)
    os.close(fd)
    assert path.read_bytes() == expected + tail


def test_a_damaged_patch_table_is_not_replayed(tmp_path):
    path, fd, identity = mailbox(tmp_path)
    patches, _ = status_patches()
    journal_path = str(tmp_path / "journal")
    journal.write_journal(journal_path, identity, [], len(ORIGINAL), patches=patches)
    jfd = os.open(journal_path, os.O_RDWR)
    _, header = journal._read_header(jfd)
    os.pwrite(jfd, b"\xff", header["patches"][2] + 5)  # one byte of the table
    os.close(jfd)
    assert not journal.recover(fd, journal_path, identity)
    os.close(fd)
    assert path.read_bytes() == ORIGINAL


def test_a_version_2_journal_still_replays(tmp_path):
    """Written as the previous release did: MAGIC 2, each write in the JSON header."""
    path, fd, identity = mailbox(tmp_path)
    patches, expected = status_patches()
    journal_path = str(tmp_path / "journal")
    jfd = journal.create_journal(journal_path)
    os.pwrite(jfd, b"PYIMAPD-JOURNAL 2\n", 0)
    digest, writes = hashlib.sha256(), []
    for offset, data in patches:
        position, length = journal._append_payload(jfd, [data], digest)
        writes.append([offset, length, position])
    journal._publish_header(jfd, {"dev": identity[0], "ino": identity[1],
                                  "old_end": len(ORIGINAL), "new_end": len(ORIGINAL),
                                  "writes": writes, "sha256": digest.hexdigest()},
                            journal.JOURNALED)
    journal.close_and_publish(jfd, journal_path)
    assert journal.recover(fd, journal_path, identity)
    os.close(fd)
    assert path.read_bytes() == expected
