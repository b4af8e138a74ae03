"""Crash-safe in-place rewrites of a spool file.

The spool file is never replaced by rename (that would change its inode,
owner and mode, and race with MTAs). Instead every rewrite is first written
in full to a journal: the list of (offset, bytes) writes and the final size.
Only then is the mailbox touched. A `kill -9` at any instant leaves either an
untouched mailbox and an incomplete journal (discarded), or a complete
journal that the next open replays. Mail that an MTA appended after a crash
(once our locks died with the process) is found past the size we left the
file at, and kept.

A rewrite that only moves mail down (an expunge) may instead use the
second form in mailstore.journal_moves, whose journal holds a plan of moves
and only the new bytes; this module publishes, stages and recovers both.

Journal layout: MAGIC, padding, a pointer sector, then the payload of every
write and the JSON header, back to back.  Same-size header patches (a POP3
QUIT that marks 100,000 messages seen makes 100,000) are not JSON writes:
their bytes lie end to end in the payload, followed by a table of packed
(offset, length, position) triples, so neither writing nor replaying them
holds one Python object per patch.  The pointer sector names both the
current header and the stage reached, so that one sector write moves the
journal from one consistent state to the next (also when recovery publishes
a new header that carries mail appended after a crash).
"""

import hashlib
import json
import os
from array import array

MAGIC = b"PYIMAPD-JOURNAL 3\n"
# Version 2 had no patch table; its journals are still replayed.
READABLE = (MAGIC, b"PYIMAPD-JOURNAL 2\n")
# The pointer to the header, with the stage, lives in its own 512-byte
# sector, so that updating it is a single sector write.
POINTER_OFFSET, POINTER_SIZE = 512, 512
PAYLOAD_OFFSET = POINTER_OFFSET + POINTER_SIZE
# Stages: journal complete, mailbox untouched (maybe being extended);
# mailbox extended to its working size, writes in progress; writes done and
# a NUL mark put at the final end, the file maybe truncated there (the mark
# tells, see _foreign_start); truncated to its final size.
JOURNALED, WRITING, SHRINKING, TRUNCATED = "J", "W", "S", "T"
# How many NUL bytes mark the final end before a shrinking truncate.
END_MARK = 512
CHUNK = 1 << 20


class JournalError(Exception):
    """The journal exists but cannot be used; the mailbox was not touched."""


class PatchList:
    """Same-size patches [(offset, bytes)], packed: offsets and ends in arrays, the
    bytes in one buffer (a tuple and a bytes object per patch took about 150 bytes)."""

    def __init__(self):
        self.offsets, self.ends, self.data = array("q"), array("q"), bytearray()

    def append(self, patch):
        offset, data = patch
        self.data += data
        self.offsets.append(offset)
        self.ends.append(len(self.data))

    def __len__(self):
        return len(self.offsets)

    def __iter__(self):
        start = 0
        for offset, end in zip(self.offsets, self.ends):
            yield offset, bytes(self.data[start:end])
            start = end


def _fsync_dir(path):
    fd = os.open(os.path.dirname(path) or ".", os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _write_all(fd, data):
    view = memoryview(data)
    while view:
        written = os.write(fd, view)
        view = view[written:]


def _pwrite_all(fd, data, offset):
    view = memoryview(data)
    while view:
        written = os.pwrite(fd, view, offset)
        view, offset = view[written:], offset + written


def _unlink_quietly(path):
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass


def _chunks_of(fd, position, length):
    """Read length bytes at position in bounded chunks."""
    done = 0
    while done < length:
        chunk = os.pread(fd, min(CHUNK, length - done), position + done)
        if not chunk:
            raise JournalError("journal payload is truncated")
        yield chunk
        done += len(chunk)


def _append_payload(jfd, chunks, digest):
    """Append chunks at the journal's end; return (position, length)."""
    position = os.lseek(jfd, 0, os.SEEK_END)
    length = 0
    for batch in _batched(chunks):
        _write_all(jfd, batch)
        digest.update(batch)
        length += len(batch)
    return position, length


def _batched(chunks):
    """Join small chunks (a message is four) into writes of about CHUNK bytes."""
    pending, size = [], 0
    for chunk in chunks:
        pending.append(chunk)
        size += len(chunk)
        if size >= CHUNK:
            yield b"".join(pending)
            pending, size = [], 0
    if pending:
        yield b"".join(pending)


def append_patches(append, patches):
    """Put the patches' bytes, then their table, into the payload through
    `append(data) -> position`; return the header's "patches" entry
    [data position, data length, table position, table length]."""
    data_at = append(patches.data)  # the buffer as it is: nothing appends to it any more
    table = array("q")
    start = 0
    for offset, end in zip(patches.offsets, patches.ends):
        table.extend((offset, end - start, data_at + start))
        start = end
    blob = table.tobytes()
    return [data_at, len(patches.data), append(blob), len(blob)]


def _patch_segments(header):
    """The (position, length) payloads of the patch table's entry, in the order hashed."""
    if "patches" not in header:
        return []
    data_at, data_len, table_at, table_len = header["patches"]
    return [(data_at, data_len), (table_at, table_len)]


def apply_patches(fd, jfd, header):
    """Write the patches of the header's table onto the mailbox, reading the
    journal in pieces of about CHUNK bytes (patches are a few bytes each)."""
    if "patches" not in header:
        return
    data_at, data_len, table_at, table_len = header["patches"]
    table = array("q")
    table.frombytes(b"".join(_chunks_of(jfd, table_at, table_len)))
    if len(table) % 3:
        raise JournalError("journal patch table is damaged")
    buffer, buffer_at = b"", data_at
    for index in range(0, len(table), 3):
        offset, length, position = table[index:index + 3]
        if position + length > buffer_at + len(buffer) or position < buffer_at:
            buffer, buffer_at = os.pread(jfd, max(CHUNK, length), position), position
            if len(buffer) < length:
                raise JournalError("journal payload is truncated")
        start = position - buffer_at
        _pwrite_all(fd, memoryview(buffer)[start:start + length], offset)


def _publish_header(jfd, header, stage, done=None):
    """Append the header, fsync, then point the pointer sector at it (with `stage`) and fsync.

    Returns the pointer, for _set_stage.  `done` carries the moves form's
    count of completed steps over to a new header (see journal_moves).
    """
    blob = json.dumps(header, separators=(",", ":")).encode("ascii")
    position = os.lseek(jfd, 0, os.SEEK_END)
    _write_all(jfd, blob)
    os.fsync(jfd)
    pointer = {"at": position, "len": len(blob)}
    if done:
        pointer["done"] = done
    _set_stage(jfd, pointer, stage)
    return pointer


def create_journal(path):
    """A new, empty journal file with its magic and room for the pointer sector."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o600)
    try:
        os.write(fd, MAGIC.ljust(PAYLOAD_OFFSET, b"\n"))
    except BaseException:
        close_and_discard(fd, path)
        raise
    return fd


def close_and_discard(fd, path):
    os.close(fd)
    _unlink_quietly(path)


def close_and_publish(fd, path):
    """Close a published journal and make its name durable."""
    os.close(fd)
    _fsync_dir(path)


def write_journal(path, identity, writes, old_end, tail=False, patches=None):
    """Write the complete journal for `writes` [(offset, iterable of chunks)] and
    `patches` (a PatchList, written first), and fsync it.

    With `tail`, the last write is the rest of the file and defines its new
    end; otherwise the size stays. `identity` is (st_dev, st_ino) of the
    mailbox, so a journal is never replayed onto another file.
    """
    digest = hashlib.sha256()
    fd = create_journal(path)
    try:
        header = {"dev": identity[0], "ino": identity[1], "old_end": old_end}
        if patches:
            header["patches"] = append_patches(
                lambda data: _append_payload(fd, [data], digest)[0], patches)
        layout = []
        for offset, chunks in writes:
            position, length = _append_payload(fd, chunks, digest)
            layout.append([offset, length, position])
        new_end = old_end
        if tail and layout:
            new_end = layout[-1][0] + layout[-1][1]
        header.update({"new_end": new_end, "writes": layout, "sha256": digest.hexdigest()})
        _publish_header(fd, header, JOURNALED)
    except BaseException:
        close_and_discard(fd, path)
        raise
    close_and_publish(fd, path)


def _set_stage(jfd, pointer, stage):
    """Record the stage reached, in the pointer sector, and fsync."""
    pointer["stage"] = stage
    blob = json.dumps(pointer).encode("ascii")
    os.pwrite(jfd, blob.ljust(POINTER_SIZE), POINTER_OFFSET)
    os.fsync(jfd)


def _read_header(jfd):
    """(pointer, header) of a published journal; JournalError if there is none."""
    head = os.pread(jfd, PAYLOAD_OFFSET, 0)
    if len(head) < PAYLOAD_OFFSET or not head.startswith(READABLE):
        raise JournalError("journal header is incomplete")
    try:
        pointer = head[POINTER_OFFSET:].strip()
        if not pointer:
            raise JournalError("journal was not completed")
        pointer = json.loads(pointer)
        if pointer["stage"] not in (JOURNALED, WRITING, SHRINKING, TRUNCATED):
            raise JournalError("journal stage is unknown")
        header = json.loads(os.pread(jfd, pointer["len"], pointer["at"]))
    except (ValueError, UnicodeDecodeError, KeyError, TypeError):
        raise JournalError("journal header is damaged") from None
    return pointer, header


def _is_moves(header):
    return header.get("form") == journal_moves.FORM


def _segments(header):
    """(position, length) of every payload the journal holds, in the order hashed."""
    if _is_moves(header):
        return header["segments"]
    return _patch_segments(header) + [(position, length)
                                      for _, length, position in header["writes"]]


def _payload_digest(jfd, header):
    digest = hashlib.sha256()
    for position, length in _segments(header):
        for chunk in _chunks_of(jfd, position, length):
            digest.update(chunk)
    return digest


def _verify(jfd, header):
    if _payload_digest(jfd, header).hexdigest() != header["sha256"]:
        raise JournalError("journal payload checksum mismatch")


def _apply_writes(fd, jfd, pointer, header):
    if _is_moves(header):
        journal_moves.apply_steps(fd, jfd, pointer, header)
        return
    apply_patches(fd, jfd, header)
    for offset, length, position in header["writes"]:
        done = 0
        for chunk in _chunks_of(jfd, position, length):
            _pwrite_all(fd, chunk, offset + done)
            done += len(chunk)


def apply(fd, journal_path):
    """Carry out a freshly written journal on the mailbox fd, then remove it.

    The file is first extended to its working size with posix_fallocate, so a
    full disk fails here, before any byte of mail is overwritten.
    """
    jfd = os.open(journal_path, os.O_RDWR | os.O_NOFOLLOW)
    try:
        pointer, header = _read_header(jfd)
        old_end = header["old_end"]
        working = max(old_end, header["new_end"])
        if working > old_end:
            try:
                os.posix_fallocate(fd, old_end, working - old_end)
                os.fsync(fd)
            except OSError:
                os.ftruncate(fd, old_end)
                _unlink_quietly(journal_path)
                raise
        _set_stage(jfd, pointer, WRITING)
        _finish(fd, jfd, pointer, header, journal_path)
    finally:
        os.close(jfd)


def _finish(fd, jfd, pointer, header, journal_path):
    """From stage WRITING: apply the writes, cut the file to its final size, drop the journal."""
    _apply_writes(fd, jfd, pointer, header)
    os.fsync(fd)
    new_end = header["new_end"]
    working = max(header["old_end"], new_end)
    if new_end < working:
        # Mark the final end with NULs first: after a crash, a NUL there means
        # the truncate has not happened (mail appended later begins past the
        # working size), anything else that it has (later mail begins at new_end).
        _pwrite_all(fd, bytes(min(END_MARK, working - new_end)), new_end)
        os.fsync(fd)
        _set_stage(jfd, pointer, SHRINKING)
    os.ftruncate(fd, new_end)
    os.fsync(fd)
    _set_stage(jfd, pointer, TRUNCATED)
    _unlink_quietly(journal_path)
    _fsync_dir(journal_path)


def _foreign_start(fd, stage, header):
    """Where data appended by others after a crash begins, judged by the stage."""
    old_end, new_end = header["old_end"], header["new_end"]
    working = max(old_end, new_end)
    if stage == WRITING:
        return working
    if stage == TRUNCATED:
        return new_end
    if stage == SHRINKING:
        size = os.fstat(fd).st_size
        untruncated = size > new_end and os.pread(fd, 1, new_end) == b"\0"
        return working if untruncated else new_end
    # JOURNALED: the extension may or may not have happened; it is NUL
    # bytes, and appended mail starts with "From ", so the bytes tell.
    if working > old_end and os.fstat(fd).st_size >= working:
        gap = os.pread(fd, working - old_end, old_end)
        if gap.count(0) == len(gap):
            return working
    return old_end


def recover(fd, journal_path, identity):
    """Replay an interrupted rewrite onto the mailbox; True when something was done.

    Must be called under the mailbox's write lock. An incomplete or foreign
    journal is discarded (the mailbox was not touched when it was written).
    """
    try:
        jfd = os.open(journal_path, os.O_RDWR | os.O_NOFOLLOW)
    except FileNotFoundError:
        return False
    try:
        try:
            pointer, header = _read_header(jfd)
            if [header["dev"], header["ino"]] != list(identity):
                raise JournalError("journal belongs to another file")
            _verify(jfd, header)
        except JournalError:
            _unlink_quietly(journal_path)
            return False
        if pointer["stage"] == TRUNCATED:
            _unlink_quietly(journal_path)
            return True
        _recover_with_foreign(fd, jfd, pointer, header, journal_path)
        return True
    finally:
        os.close(jfd)


def _recover_with_foreign(fd, jfd, pointer, header, journal_path):
    """Finish the rewrite, moving mail appended after the crash behind it.

    The move itself is journalled first, by appending the foreign bytes to
    the journal, so a crash during recovery is recovered the same way.  The
    new header is published together with stage WRITING: the file is then
    exactly its old_end long, so later mail is found past it.
    """
    start = _foreign_start(fd, pointer["stage"], header)
    size = os.fstat(fd).st_size
    if size > start:
        digest = _payload_digest(jfd, header)
        position, length = _append_payload(jfd, _chunks_of(fd, start, size - start), digest)
        if _is_moves(header):
            # A last literal, after every move: the steps done stay done.
            header = journal_moves.with_foreign(jfd, header, position, length, digest)
        else:
            header = dict(header, writes=header["writes"] + [[header["new_end"], length, position]])
        header = dict(header, new_end=header["new_end"] + length, old_end=size,
                      sha256=digest.hexdigest())
        pointer = _publish_header(jfd, header, WRITING, pointer.get("done"))
    working = max(header["old_end"], header["new_end"])
    if os.fstat(fd).st_size < working:
        # As in apply(): stage WRITING promises the file is exactly `working`
        # long, so anything found past it later is someone else's mail.
        os.posix_fallocate(fd, 0, working)
        os.fsync(fd)
    _set_stage(jfd, pointer, WRITING)
    _finish(fd, jfd, pointer, header, journal_path)


# The moves form uses this module's helpers; imported last, as it imports this module.
from mailstore import journal_moves  # noqa: E402
