"""`kill -9` during an expunge carried by the journal's moves form loses nothing.

The moves form (mailstore.journal_moves) copies the surviving mail down in
place, step by step, recording each step done; these tests make sure a
commit takes that form, then kill it at every call that touches the mailbox
or the journal's pointer (and at random instants), deliver a message as an
MTA would, kill the recovery too, and check every message as
test_crash_rewrite does.  They also check that a rewrite the form cannot
carry safely (a tiny gap) takes the full form.
"""

import os
import random
import signal

from faultlib import Tally, trials_wanted
from mailstore import journal
from test_crash_rewrite import (MESSAGES, NON_WRITE_CALLS, Spool, Templates, check,
                                crash_recover_check, post_crash_delivery, remove_stale_dotlock,
                                run_child, seed_wanted)

UIDS = list(range(1, MESSAGES + 1))
# Message 1 and every third one after it: the gap grows fast, so a handful of steps.
MOVING = {"expunge": UIDS[::3], "seen": UIDS[1::7], "flag": [5, 299], "moves_min_tail": 0}
# Before the third pwrite: the journal is published (pointer JOURNALED, then
# WRITING), the mailbox untouched.
JOURNAL_ONLY = {"kill_at": 3, "phase": "before", "hooked": ["pwrite"]}


def journal_header(spool):
    """The published header of the journal a killed commit left."""
    names = spool.journals()
    assert len(names) == 1, names
    fd = os.open(os.path.join(spool.index_dir, names[0]), os.O_RDONLY)
    try:
        return journal._read_header(fd)
    finally:
        os.close(fd)


def left_journal(templates, spool, plan):
    """Commit `plan` on the established template, killed once the journal is published."""
    spool.write(templates.established)
    returncode, _ = run_child(spool, spool.plan(action="commit", **plan, **JOURNAL_ONLY))
    assert returncode == -signal.SIGKILL
    assert spool.read() == templates.established
    return journal_header(spool)


def tiny_gap(spool):
    """Expunge only the smallest of the first messages: a gap too small for the moves form."""
    mailbox = spool.store.open_inbox()
    try:
        smallest = min(mailbox.messages[1:20], key=lambda m: m.end - m.start)
        return {"expunge": [smallest.uid], "seen": [], "flag": [], "moves_min_tail": 0}
    finally:
        mailbox.close()


def test_an_expunge_takes_the_moves_form_and_a_tiny_gap_the_full_form(tmp_path):
    templates = Templates(tmp_path, random.Random(seed_wanted()))
    spool = Spool(tmp_path / "moving")
    pointer, header = left_journal(templates, spool, MOVING)
    assert header["form"] == "moves" and len(header["steps"]) > 3
    # The journal holds the rendered headers, not the moved mail.
    assert sum(length for _, length in header["segments"]) < len(templates.established) // 10
    remove_stale_dotlock(spool)
    tally = Tally()
    check(tally, templates, spool, MOVING, "moves form", True, False)
    assert tally.checked == MESSAGES and tally.problems() == (0, 0, 0), tally.failures

    spool = Spool(tmp_path / "tiny")
    spool.write(templates.established)
    tiny = tiny_gap(spool)
    pointer, header = left_journal(templates, spool, tiny)
    assert "form" not in header and header["new_end"] < header["old_end"]
    remove_stale_dotlock(spool)
    tally = Tally()
    check(tally, templates, spool, tiny, "full form", True, False)
    assert tally.checked == MESSAGES and tally.problems() == (0, 0, 0), tally.failures


def count_calls(templates, spool, plan, hooked):
    spool.write(templates.established)
    _, out = run_child(spool, spool.plan(action="commit", hooked=hooked, **plan))
    return int(out.split(b"\n")[1].split()[2])


def test_every_mailbox_side_kill_point_of_a_moving_expunge(tmp_path, capsys):
    """Killed before, during or after each call that touches the mailbox or the journal's
    pointer (every step and every record of a step), then a delivery: recovery keeps
    every survivor with its UID, drops every expunged message, and keeps the delivery."""
    templates = Templates(tmp_path, random.Random(seed_wanted()))
    calls = count_calls(templates, Spool(tmp_path / "count"), MOVING, NON_WRITE_CALLS)
    total = Tally("mbox moving expunge kill points")
    for kill_at in range(1, calls + 1):
        for phase in ("before", "after", "torn"):
            spool = Spool(tmp_path / ("%d-%s" % (kill_at, phase)))
            kill = {"kill_at": kill_at, "phase": phase, "hooked": NON_WRITE_CALLS}
            total.add(crash_recover_check(templates, spool, True, MOVING, kill, deliver=True))
    with capsys.disabled():
        print("\n%s (%d hooked calls)" % (total.summary(), calls))
    assert total.killed == 3 * calls
    assert total.problems() == (0, 0, 0) and total.failures == [], "\n".join(total.failures)


def test_recovery_of_a_moving_expunge_killed_at_every_call(tmp_path, capsys):
    """A moving expunge dies half-way through its steps, mail arrives, and the recovery
    itself is killed at each of its calls: the next recovery still loses nothing."""
    templates = Templates(tmp_path, random.Random(seed_wanted()))
    # Every fsync: the journal's, then per step the mailbox's and the record's.
    fsyncs = count_calls(templates, Spool(tmp_path / "count-commit"), MOVING, ["fsync"])
    midway = {"kill_at": fsyncs // 2, "phase": "after", "hooked": ["fsync"]}
    count = Spool(tmp_path / "count")
    count.write(templates.established)
    run_child(count, count.plan(action="commit", **MOVING, **midway))
    pointer, header = journal_header(count)
    assert header["form"] == "moves" and 0 < pointer.get("done", 0) < len(header["steps"])
    with open(count.path, "ab") as handle:
        handle.write(post_crash_delivery())
    remove_stale_dotlock(count)
    _, out = run_child(count, count.plan(action="recover"))
    calls = int(out.split(b"\n")[1].split()[2])
    assert calls > 5
    total = Tally("mbox moving recovery kill points")
    for kill_at in range(1, calls + 1):
        for phase in ("before", "after", "torn"):
            spool = Spool(tmp_path / ("%d-%s" % (kill_at, phase)))
            total.add(crash_recover_check(templates, spool, True, MOVING, midway, deliver=True,
                                          recovery_kill={"kill_at": kill_at, "phase": phase}))
    with capsys.disabled():
        print("\n%s (%d hooked calls of the recovery)" % (total.summary(), calls))
    assert total.trials == 3 * calls
    assert total.problems() == (0, 0, 0) and total.failures == [], "\n".join(total.failures)


def test_moving_expunges_killed_at_random_points(tmp_path, capsys):
    """Moving expunges of varied shapes killed at a random call (any, or only those that
    touch the mailbox), with or without a delivery and a killed recovery after."""
    seed = seed_wanted()
    rng = random.Random(seed)
    templates = Templates(tmp_path, rng)
    total = Tally("mbox moving expunge random kills")
    trials = max(10, trials_wanted(150) // 3)
    for trial in range(trials):
        step = rng.randint(2, 6)
        plan = {"moves_min_tail": 0, "expunge": UIDS[rng.randint(0, step - 1)::step],
                "seen": sorted(rng.sample(UIDS, 20)), "flag": sorted(rng.sample(UIDS, 5))}
        hooked = rng.choice([NON_WRITE_CALLS, ["write"] + NON_WRITE_CALLS])
        kill = {"kill_at": rng.randint(1, 60), "phase": rng.choice(["before", "after", "torn"]),
                "hooked": hooked}
        recovery_kill = None
        if rng.random() < 0.3:
            recovery_kill = {"kill_at": rng.randint(1, 30),
                             "phase": rng.choice(["before", "after", "torn"])}
        spool = Spool(tmp_path / ("trial-%d" % trial))
        total.add(crash_recover_check(templates, spool, True, plan, kill,
                                      deliver=rng.random() < 0.5, recovery_kill=recovery_kill))
    with capsys.disabled():
        print("\n%s (seed %d, %d killed)" % (total.summary(), seed, total.killed))
    assert total.trials == trials and total.killed > 0
    assert total.problems() == (0, 0, 0) and total.failures == [], "\n".join(total.failures)
