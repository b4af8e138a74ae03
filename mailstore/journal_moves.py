"""The journal's second form: a rewrite that moves mail down without copying it twice.

An expunge of every tenth message of a 1 GB mbox moves almost the whole
file down.  The full form (mailstore.journal) writes those bytes into the
journal first, then copies them back; this form writes only a plan.  The new
tail (from `tail_from`, the first byte that changes place) is a list of
pieces, laid end to end:

    COPY, src, length     `length` bytes of the old mailbox at `src`
    LITERAL, pos, length  bytes held in the journal at `pos` (rendered
                          headers, added newlines, the pseudo-message, new mail)

The plan is these triples packed as 64-bit integers (a 100,000-message
expunge that renders every header has 200,000 pieces: as JSON lists they
took tens of MB), stored in the journal's payload and so under its sha256.

A COPY moves data down (its destination is below its source), so pieces are
written in increasing destination order.  The tail is cut into steps, each a
range [a, b) of the new tail's offsets, such that the step's destination,
[tail_from + a, tail_from + b), ends at or below the source of every COPY byte
at or after a (sources rise along the tail, so the first such byte binds).
A step thus never overwrites its own sources nor any later one: only expunged
bytes, or bytes an earlier step already moved down.  After each step the
mailbox is fsynced and then the step count is recorded in the journal's
pointer sector; a crash at any instant leaves every source of the first
unrecorded step and all later ones intact, so recovery simply redoes the
steps from the recorded count (a redone step writes the same bytes again).

A step is at most as long as the gap between a byte's source and its
destination.  With every tenth message expunged the gap grows with each
expunged message, so the steps grow geometrically and are few; when a tiny
gap (one small message expunged near the start of a large file) would make
them many, or when data must move up (headers that grew), plan_steps says
None and the caller takes the full form, which has no such limit.

The sha256 covers what the journal holds (patches, literals and the plan);
the COPY sources are the mailbox's own bytes, which the steps keep intact.
Below MIN_TAIL the full form is used anyway.
"""

import bisect
from array import array
import hashlib
import itertools
import os

from mailstore import journal as base

# At most this many steps (each costs two fsyncs and a pointer update).  An
# expunge of every tenth message of 100,000 (1.2 GB) takes 80; past this the
# gaps are so small that the full form's two copies cost less than the steps.
MAX_STEPS = 256
# Below this size of new tail the full form is as quick (two copies of a few
# MB against a few fsyncs) and better proven.  The crash tests lower it to
# exercise this form on small spools.
MIN_TAIL = 4 << 20
FORM = "moves"
COPY, LITERAL = 0, 1


def plan_steps(tail_from, plan):
    """The step ends (offsets in the new tail) for the packed `plan`, or None if this form
    cannot carry it safely in at most MAX_STEPS steps (then the full form must)."""
    # Every COPY piece as (its offset in the new tail, its source, its length).
    copies, offset, last_src_end = [], 0, -1
    for index in range(0, len(plan), 3):
        kind, where, length = plan[index:index + 3]
        if kind == COPY:
            if where < last_src_end or tail_from + offset >= where:
                return None  # not a pure move down with rising sources
            copies.append((offset, where, length))
            last_src_end = where + length
        offset += length
    total = offset
    steps, a, index = [], 0, 0
    while a < total:
        # The first COPY byte at or after a binds the step's end.
        while index < len(copies) and copies[index][0] + copies[index][2] <= a:
            index += 1
        if index == len(copies):
            b = total
        else:
            piece_offset, src, _ = copies[index]
            b = min(total, src + max(0, a - piece_offset) - tail_from)
        if b <= a or len(steps) == MAX_STEPS:
            return None
        steps.append(b)
        a = b
    return steps


def write_journal(path, identity, patches, tail_from, pieces, old_end):
    """Write and fsync the journal of this form; False (nothing left behind) when the
    rewrite does not fit it, and the full form must carry it.

    `patches` (a journal.PatchList) are same-size header patches before tail_from;
    `pieces` yields ("c", src, length) and ("l", bytes, length), the new tail
    in order.  Literals go to the journal as they come, so a rewrite that
    renders many headers does not hold them all in memory.
    """
    if old_end - tail_from < MIN_TAIL:
        return False
    plan, offset = array("q"), 0
    fd = base.create_journal(path)
    payload = _Payload(fd)
    try:
        head = {"patches": base.append_patches(payload.add, patches)} if patches else {}
        for kind, where, length in pieces:
            if kind == "c":
                if tail_from + offset >= where:
                    base.close_and_discard(fd, path)  # data moves up: not this form
                    return False
                plan.extend((COPY, where, length))
            else:
                plan.extend((LITERAL, payload.add(where), length))
            offset += length
        steps = plan_steps(tail_from, plan)
        if steps is None:
            base.close_and_discard(fd, path)
            return False
        blob = plan.tobytes()
        plan_at = payload.add(blob)
        payload.flush()
        # Patches, literals and the plan lie end to end: one segment to hash.
        head.update({"form": FORM, "dev": identity[0], "ino": identity[1],
                     "old_end": old_end, "new_end": tail_from + offset, "tail_from": tail_from,
                     "plan": [plan_at, len(blob)], "steps": steps,
                     "segments": [[payload.start, payload.end - payload.start]],
                     "sha256": payload.digest.hexdigest()})
        base._publish_header(fd, head, base.JOURNALED)
    except BaseException:
        base.close_and_discard(fd, path)
        raise
    base.close_and_publish(fd, path)
    return True


class _Payload:
    """The journal's payload, appended in writes of about CHUNK bytes (a literal is often
    a few bytes: a newline, one rendered header)."""

    def __init__(self, fd):
        self.fd, self.digest = fd, hashlib.sha256()
        self.start = self.end = os.lseek(fd, 0, os.SEEK_END)
        self.pending, self.size = [], 0

    def add(self, data):
        """Queue data; return the journal position it will have."""
        position = self.end
        self.pending.append(data)
        self.end += len(data)
        self.size += len(data)
        if self.size >= base.CHUNK:
            self.flush()
        return position

    def flush(self):
        if self.pending:
            blob = b"".join(self.pending)
            base._write_all(self.fd, blob)
            self.digest.update(blob)
            self.pending, self.size = [], 0


def apply_steps(fd, jfd, pointer, header):
    """Stage WRITING: the patches, then every step not yet recorded as done."""
    base.apply_patches(fd, jfd, header)
    for offset, length, position in header.get("writes", ()):  # version 2 journals
        _copy_from_journal(fd, jfd, position, length, offset)
    tail_from, steps = header["tail_from"], header["steps"]
    plan = _read_plan(jfd, header)
    starts = array("q", itertools.accumulate(plan[2::3], initial=0))
    done = pointer.get("done", 0)
    a = steps[done - 1] if done else 0
    for number in range(done, len(steps)):
        b = steps[number]
        _write_range(fd, jfd, tail_from, plan, starts, a, b)
        # The step's bytes are durable before the record that lets the next
        # step overwrite its sources.
        os.fsync(fd)
        pointer["done"] = number + 1
        base._set_stage(jfd, pointer, base.WRITING)
        a = b


def _read_plan(jfd, header):
    position, length = header["plan"]
    plan = array("q")
    plan.frombytes(b"".join(base._chunks_of(jfd, position, length)))
    return plan


def _write_range(fd, jfd, tail_from, plan, starts, a, b):
    """Write the new tail's bytes [a, b) at tail_from + a (`starts` holds each piece's
    offset in the new tail), gathered into writes of about CHUNK bytes."""
    pending, size, at = [], 0, tail_from + a
    for index in range(max(0, bisect.bisect_right(starts, a) - 1), len(plan) // 3):
        kind, where, length = plan[3 * index:3 * index + 3]
        offset = starts[index]
        if offset >= b:
            break
        lo, hi = max(a, offset), min(b, offset + length)
        source = fd if kind == COPY else jfd
        while lo < hi:
            chunk = os.pread(source, min(base.CHUNK, hi - lo), where + (lo - offset))
            if not chunk:
                raise base.JournalError("a source of the journal's plan is missing")
            pending.append(chunk)
            size += len(chunk)
            lo += len(chunk)
            if size >= base.CHUNK:
                base._pwrite_all(fd, b"".join(pending), at)
                pending, at, size = [], at + size, 0
    if pending:
        base._pwrite_all(fd, b"".join(pending), at)


def _copy_from_journal(fd, jfd, position, length, dst):
    done = 0
    for chunk in base._chunks_of(jfd, position, length):
        base._pwrite_all(fd, chunk, dst + done)
        done += len(chunk)


def with_foreign(jfd, header, position, length, digest):
    """The header once mail appended after a crash (now held in the journal at
    `position`) is added as a last literal, in a step of its own after all moves.

    The longer plan is appended to the journal (and to `digest`) as well."""
    plan = _read_plan(jfd, header)
    plan.extend((LITERAL, position, length))
    blob = plan.tobytes()
    plan_at, _ = base._append_payload(jfd, [blob], digest)
    steps = header["steps"] + [(header["steps"][-1] if header["steps"] else 0) + length]
    return dict(header, plan=[plan_at, len(blob)], steps=steps,
                segments=header["segments"] + [[position, length], [plan_at, len(blob)]])
