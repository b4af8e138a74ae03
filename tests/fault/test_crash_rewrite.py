"""`kill -9` during an mbox rewrite loses, duplicates and damages nothing.

A child process (crash_child.py) commits flag changes and an expunge on a
generated 300-message spool and is killed with SIGKILL: either by us after a
random delay within one commit's duration, or by itself at a random one of
its write/fsync/truncate calls (before it, after it, or half-way through a
write).  Some trials then deliver a message as an MTA would, and some kill a
second child while it replays the journal.  Then this process opens the
spool (which completes the interrupted rewrite) and checks every message.

PYIMAPD_CRASH_TRIALS (or `pytest tests/fault --trials N`) sets the number
of trials (default 150), and
PYIMAPD_CRASH_SEED the random seed (printed with the summary).
"""

import hashlib
import json
import os
import random
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from auth import Principal
from faultlib import Tally, generated_message, trials_wanted
from mailstore import mboxformat as fmt
from mailstore import open_store
from server.config import Config

REPO = Path(__file__).resolve().parents[2]
CHILD = Path(__file__).with_name("crash_child.py")
MESSAGES = 300
POST_CRASH_ID = b"<post-crash@example.org>"
DEFAULT_TRIALS = 150


def seed_wanted():
    """The random seed: PYIMAPD_CRASH_SEED, else the current time."""
    return int(os.environ.get("PYIMAPD_CRASH_SEED", str(int(time.time()))))


def post_crash_delivery():
    """The message an MTA delivers after the crash, before anyone recovers."""
    return (b"From late@example.org Thu Dec  3 06:00:00 1992\n"
            b"From: Late <late@example.org>\nSubject: delivered after the crash\n"
            b"Message-ID: " + POST_CRASH_ID + b"\n\nI arrived while nobody held the lock.\n\n")


class Spool:
    """A spool file, its index directory and a store to open it in this process."""

    def __init__(self, directory):
        directory.mkdir(parents=True, exist_ok=True)
        self.home = str(directory)
        self.path = str(directory / "spool")
        self.index_dir = str(directory / "index")
        config = Config({"mail_location": "mbox:%s:INBOX=%s" % (self.home, self.path),
                         "index_dir": self.index_dir, "mbox_lock_timeout": 5})
        self.store = open_store(Principal("u", os.getuid(), os.getgid(), self.home), config)

    def write(self, data):
        """Replace the spool file's content (creating it)."""
        with open(self.path, "wb") as handle:
            handle.write(data)

    def read(self):
        """The spool file's bytes."""
        with open(self.path, "rb") as handle:
            return handle.read()

    def contents(self):
        """(uidvalidity, [(Message-ID, uid, visible header, body sha256)]) after recovery."""
        mailbox = self.store.open_inbox()
        try:
            found = []
            for message in mailbox.messages:
                header = mailbox.header_bytes(message)
                match = re.search(rb"^Message-ID: (<[^>]*>)", header, re.M)
                body = hashlib.sha256()
                for chunk in mailbox.body_chunks(message):
                    body.update(chunk)
                found.append((match.group(1) if match else None, message.uid, header,
                              body.hexdigest()))
            return mailbox.uidvalidity, found
        finally:
            mailbox.close()

    def journals(self):
        """Journal files left in the index directory (the index and field caches may stay)."""
        if not os.path.isdir(self.index_dir):
            return []
        return [name for name in os.listdir(self.index_dir) if name.startswith("journal-")]

    def plan(self, **fields):
        """A child's plan: the given fields plus where this spool lives."""
        return dict(fields, home=self.home, spool=self.path, index_dir=self.index_dir)


def run_child(spool, plan, kill_after=None):
    """Run crash_child.py; kill it kill_after seconds after "go" if given. Returns its output."""
    plan_path = os.path.join(spool.home, "plan.json")
    with open(plan_path, "w") as handle:
        json.dump(plan, handle)
    child = subprocess.Popen([sys.executable, str(CHILD), str(REPO), plan_path],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    first = child.stdout.readline()
    if kill_after is not None and first == b"go\n":
        time.sleep(kill_after)
        try:
            child.send_signal(signal.SIGKILL)
        except ProcessLookupError:
            pass
    out, err = child.communicate()
    if child.returncode not in (0, -signal.SIGKILL):
        raise AssertionError("child failed (%s): %s" % (child.returncode, err.decode()))
    return child.returncode, first + out


def remove_stale_dotlock(spool):
    """The killed child's dotlock would only go stale after DOTLOCK_STALE_AGE; expire it now."""
    try:
        os.unlink(spool.path + ".lock")
    except FileNotFoundError:
        pass


class Templates:
    """Two starting points: a raw MTA spool, and the same spool after a first commit."""

    def __init__(self, directory, rng):
        messages = [generated_message(index, rng) for index in range(1, MESSAGES + 1)]
        self.raw = b"".join(messages)
        spool = Spool(directory / "template")
        spool.write(self.raw)
        mailbox = spool.store.open_inbox()
        for message in mailbox.messages:
            if message.uid % 5 == 0:
                message.flags |= fmt.ANSWERED
                message.dirty = True
        mailbox.commit(seen_uids={uid for uid in range(1, MESSAGES + 1) if uid % 3 == 0})
        mailbox.close()
        self.established = spool.read()
        self.uidvalidity, found = spool.contents()
        # What must survive: uid, visible header and body of every message, by Message-ID.
        self.originals = {mid: (uid, header, digest) for mid, uid, header, digest in found}
        assert len(self.originals) == MESSAGES
        assert [uid for _, uid, _, _ in found] == list(range(1, MESSAGES + 1))


def random_plan(rng):
    """Which UIDs to expunge, mark \\Seen and flag: varied shapes of rewrite."""
    uids = list(range(1, MESSAGES + 1))
    shape = rng.random()
    if shape < 0.1:
        expunge = []                       # flag changes only: in-place header patches
    elif shape < 0.15:
        expunge = uids                     # everything: the pseudo-message is written
    elif shape < 0.3:
        expunge = [1] + rng.sample(uids[1:], rng.randint(0, 5))  # X-IMAPbase must move
    elif shape < 0.45:
        expunge = uids[-rng.randint(1, 10):]                      # only the tail shrinks
    else:
        expunge = rng.sample(uids, rng.randint(1, MESSAGES // 3))
    seen = rng.sample(uids, rng.randint(0, MESSAGES // 2))
    flag = rng.sample(uids, rng.randint(0, 20))
    return {"expunge": sorted(expunge), "seen": sorted(seen), "flag": sorted(flag)}


def check(tally, templates, spool, plan, trial, established, delivered):
    """Compare the recovered spool with what must be there; count every problem."""
    uidvalidity, found = spool.contents()
    if spool.journals():
        tally.fail("damaged", trial, "journal left after recovery: %s" % spool.journals())
    if established and uidvalidity != templates.uidvalidity:
        tally.fail("damaged", trial, "UIDVALIDITY changed")
    by_id = {}
    for mid, uid, header, digest in found:
        by_id.setdefault(mid, []).append((uid, header, digest))
    expunged = {b"<crash-%d@example.org>" % uid for uid in plan["expunge"]}
    present_expunged = 0
    for mid, (uid, header, digest) in templates.originals.items():
        copies = by_id.pop(mid, [])
        tally.checked += 1
        if mid in expunged:
            present_expunged += bool(copies)
            if not copies:
                continue
        if not copies:
            tally.fail("lost", trial, mid.decode())
        elif len(copies) > 1:
            tally.fail("duplicated", trial, mid.decode())
        elif copies[0] != (uid, header, digest):
            tally.fail("damaged", trial, "%s differs (uid %d, was %d)" % (mid.decode(),
                                                                       copies[0][0], uid))
    if present_expunged not in (0, len(expunged)):
        tally.fail("damaged", trial, "expunge not atomic: %d of %d expunged messages present"
                   % (present_expunged, len(expunged)))
    late = by_id.pop(POST_CRASH_ID, [])
    if delivered:
        tally.checked += 1
        body = hashlib.sha256(b"I arrived while nobody held the lock.\n").hexdigest()
        if not late:
            tally.fail("lost", trial, "the post-crash delivery")
        elif len(late) > 1:
            tally.fail("duplicated", trial, "the post-crash delivery")
        elif late[0][0] != MESSAGES + 1 or late[0][2] != body:
            tally.fail("damaged", trial, "the post-crash delivery (uid %d)" % late[0][0])
    if by_id:
        tally.fail("damaged", trial, "unexpected messages: %r" % sorted(by_id, key=repr)[:3])


# The calls that touch the mailbox or publish the journal; os.write only ever
# fills the journal, and dominates the count of a commit's calls.
NON_WRITE_CALLS = ["pwrite", "fsync", "ftruncate", "posix_fallocate", "unlink"]


class Calibration:
    """One undisturbed commit of a typical plan: its duration and hooked call counts."""

    def __init__(self, templates, directory):
        uids = list(range(1, MESSAGES + 1))
        fields = {"action": "commit", "expunge": uids[::4], "seen": uids[::2],
                  "flag": uids[::10]}
        runs = []
        for name, hooked in (("all", None), ("non-write", NON_WRITE_CALLS)):
            spool = Spool(directory / name)
            spool.write(templates.established)
            plan = spool.plan(**fields) if hooked is None else spool.plan(hooked=hooked, **fields)
            _, out = run_child(spool, plan)
            _, seconds, calls = out.split(b"\n")[1].split()
            runs.append((float(seconds), int(calls)))
        (self.duration, self.calls), (_, self.non_write_calls) = runs


def kill_child(spool, child_plan, rng, calibration):
    """Run the committing child and kill it: from outside after a random delay, or
    from inside at a random hooked call (any call, or only the non-journal ones)."""
    how = rng.random()
    if how < 1 / 3:
        delay = rng.uniform(0, calibration.duration)
        return run_child(spool, child_plan, kill_after=delay), "killed after %.4f s" % delay
    phase = rng.choice(["before", "after", "torn"])
    if how < 2 / 3:
        kill_at = rng.randint(1, int(calibration.calls * 1.2))
        return (run_child(spool, dict(child_plan, kill_at=kill_at, phase=phase)),
                "died %s call %d" % (phase, kill_at))
    kill_at = rng.randint(1, int(calibration.non_write_calls * 1.2))
    return (run_child(spool, dict(child_plan, kill_at=kill_at, phase=phase,
                                  hooked=NON_WRITE_CALLS)),
            "died %s non-write call %d" % (phase, kill_at))


def run_trial(tally, templates, rng, directory, trial, calibration):
    """One crash, an optional delivery and a second crash, then recovery and the checks."""
    spool = Spool(directory)
    established = rng.random() < 0.7
    spool.write(templates.established if established else templates.raw)
    plan = random_plan(rng)
    (returncode, _), how = kill_child(spool, spool.plan(action="commit", **plan), rng, calibration)
    tally.killed += returncode == -signal.SIGKILL
    remove_stale_dotlock(spool)
    delivered = rng.random() < 0.5
    if delivered:
        with open(spool.path, "ab") as handle:
            handle.write(post_crash_delivery())
    how += ", then a delivery" if delivered else ""
    if spool.journals() and rng.random() < 0.3:
        recover_plan = spool.plan(action="recover", kill_at=rng.randint(1, 12),
                                  phase=rng.choice(["before", "after", "torn"]))
        run_child(spool, recover_plan)
        remove_stale_dotlock(spool)
        how += ", then recovery died %s call %d" % (recover_plan["phase"], recover_plan["kill_at"])
    tally.trials += 1
    check(tally, templates, spool, plan, "%d (%s)" % (trial, how), established, delivered)


def test_kill_9_during_rewrite_loses_nothing(tmp_path, capsys):
    """Over many SIGKILLs at random points of a rewrite (and of its recovery), with mail
    delivered after the crash, no message is lost, duplicated or damaged."""
    seed = seed_wanted()
    rng = random.Random(seed)
    templates = Templates(tmp_path, rng)
    calibration = Calibration(templates, tmp_path / "calibration")
    tally = Tally("mbox rewrite crash trials")
    for trial in range(trials_wanted(DEFAULT_TRIALS)):
        run_trial(tally, templates, rng, tmp_path / ("trial-%d" % trial), trial, calibration)
    with capsys.disabled():
        print("\n%s (seed %d, %d killed; a commit takes %.3f s and %d hooked calls, "
              "%d not journal writes)" % (tally.summary(), seed, tally.killed,
                                          calibration.duration, calibration.calls,
                                          calibration.non_write_calls))
    assert tally.trials == trials_wanted(DEFAULT_TRIALS) and tally.killed > 0
    assert (tally.lost, tally.duplicated, tally.damaged) == (0, 0, 0), "\n".join(tally.failures)


KILL_POINTS_IN_JOURNAL = 40


@pytest.mark.parametrize("phase", ["before", "after", "torn"])
def test_kill_during_the_journal_write_leaves_the_mailbox_byte_identical(tmp_path, capsys,
                                                                          phase):
    """A commit killed while it is still writing its journal (before the journal is
    published) leaves the spool byte-for-byte as it was, after recovery too."""
    rng = random.Random(seed_wanted())
    templates = Templates(tmp_path, rng)
    uids = list(range(1, MESSAGES + 1))
    plan_fields = {"action": "commit", "expunge": uids[1::3], "seen": uids, "flag": [],
                   "hooked": ["write"]}
    # Every os.write of a commit (the dotlock's content, then the journal) comes
    # before the journal is published with pwrite; count them once, undisturbed.
    spool = Spool(tmp_path / "count")
    spool.write(templates.established)
    _, out = run_child(spool, spool.plan(**plan_fields))
    writes = int(out.split(b"\n")[1].split()[2])
    # The dotlock's content, the journal payload (batched into 1 MiB writes)
    # and its header: every one of them is a kill point below.
    assert writes >= 3
    tally = Tally("mbox journal-write kill points (%s)" % phase)
    for kill_at in sorted({1 + i * (writes - 1) // (KILL_POINTS_IN_JOURNAL - 1)
                           for i in range(KILL_POINTS_IN_JOURNAL)}):
        spool = Spool(tmp_path / ("%s-%d" % (phase, kill_at)))
        spool.write(templates.established)
        returncode, _ = run_child(spool, spool.plan(kill_at=kill_at, phase=phase, **plan_fields))
        assert returncode == -signal.SIGKILL
        assert spool.read() == templates.established
        remove_stale_dotlock(spool)
        _, found = spool.contents()
        assert spool.read() == templates.established
        assert len(found) == MESSAGES and not spool.journals()
        tally.trials += 1
        tally.killed += 1
        tally.checked += len(found)  # byte-identical file: none lost, duplicated or damaged
    with capsys.disabled():
        print("\n%s (%d writes before the journal is published)" % (tally.summary(), writes))


def crash_recover_check(templates, spool, established, plan, kill, deliver, recovery_kill=None):
    """Start from a template, let a commit die as `kill` says, maybe deliver, maybe let a
    recovery die as `recovery_kill` says, then recover here; return the Tally."""
    spool.write(templates.established if established else templates.raw)
    returncode, _ = run_child(spool, spool.plan(action="commit", **plan, **kill))
    remove_stale_dotlock(spool)
    if deliver:
        with open(spool.path, "ab") as handle:
            handle.write(post_crash_delivery())
    if recovery_kill is not None:
        run_child(spool, spool.plan(action="recover", **recovery_kill))
        remove_stale_dotlock(spool)
    tally = Tally()
    tally.trials, tally.killed = 1, returncode == -signal.SIGKILL
    check(tally, templates, spool, plan, "%s/%s/%s" % (kill, deliver, recovery_kill),
          established, deliver)
    return tally


# Shapes of rewrite: the first commit of an MTA spool makes the file grow (the
# journal extends it first); an expunge on a committed one makes it shrink.
REWRITES = {
    "growing": (False, {"expunge": [2, 150], "seen": [1, 3, 299], "flag": [5]}),
    "shrinking": (True, {"expunge": [1, 7, 150, 151, 300], "seen": [2, 3, 299], "flag": [5]}),
}


@pytest.mark.parametrize("rewrite", sorted(REWRITES))
def test_every_mailbox_side_kill_point_with_a_delivery_after_it(tmp_path, capsys, rewrite):
    """A commit killed before, during or after each call that touches the mailbox or the
    journal's pointer, then a delivery: recovery keeps every survivor and the delivery."""
    established, plan = REWRITES[rewrite]
    templates = Templates(tmp_path, random.Random(seed_wanted()))
    count = Spool(tmp_path / "count")
    count.write(templates.established if established else templates.raw)
    _, out = run_child(count, count.plan(action="commit", hooked=NON_WRITE_CALLS, **plan))
    calls = int(out.split(b"\n")[1].split()[2])
    total = Tally("mbox %s rewrite kill points" % rewrite)
    for kill_at in range(1, calls + 1):
        for phase in ("before", "after", "torn"):
            spool = Spool(tmp_path / ("%d-%s" % (kill_at, phase)))
            kill = {"kill_at": kill_at, "phase": phase, "hooked": NON_WRITE_CALLS}
            total.add(crash_recover_check(templates, spool, established, plan, kill,
                                          deliver=True))
    with capsys.disabled():
        print("\n%s (%d hooked calls)" % (total.summary(), calls))
    assert total.killed == 3 * calls
    assert total.problems() == (0, 0, 0) and total.failures == [], "\n".join(total.failures)


def test_recovery_killed_at_every_call_after_a_crash_past_the_truncate(tmp_path, capsys):
    """A commit dies right after truncating the file, mail arrives, and then the recovery
    itself is killed at each of its calls: the next recovery still loses nothing."""
    established, plan = REWRITES["shrinking"]
    templates = Templates(tmp_path, random.Random(seed_wanted()))
    after_truncate = {"kill_at": 1, "phase": "after", "hooked": ["ftruncate"]}
    count = Spool(tmp_path / "count")
    count.write(templates.established)
    run_child(count, count.plan(action="commit", **plan, **after_truncate))
    with open(count.path, "ab") as handle:
        handle.write(post_crash_delivery())
    remove_stale_dotlock(count)
    _, out = run_child(count, count.plan(action="recover"))
    calls = int(out.split(b"\n")[1].split()[2])
    assert calls > 5, (out, os.listdir(count.index_dir))
    total = Tally("mbox recovery kill points")
    for kill_at in range(1, calls + 1):
        for phase in ("before", "after", "torn"):
            spool = Spool(tmp_path / ("%d-%s" % (kill_at, phase)))
            total.add(crash_recover_check(templates, spool, established, plan, after_truncate,
                                          deliver=True,
                                          recovery_kill={"kill_at": kill_at, "phase": phase}))
    with capsys.disabled():
        print("\n%s (%d hooked calls of the recovery)" % (total.summary(), calls))
    assert total.trials == 3 * calls
    assert total.problems() == (0, 0, 0) and total.failures == [], "\n".join(total.failures)
