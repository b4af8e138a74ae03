"""`kill -9` during the mailbox operations of an IMAP session loses, duplicates and damages nothing.

Every test here runs on mbox and on Maildir (the `driver` fixture,
faultdrivers.py).  A child process (ops_child.py) runs one IMAP-style
operation on a generated 240-message INBOX and a folder: STORE of flags and
keywords, STORE +\\Deleted then EXPUNGE or UID EXPUNGE, APPEND of one
message or several (MULTIAPPEND) to INBOX or the folder, COPY from INBOX to
the folder; on mbox also a close() that writes the index sidecar and the
field cache; on Maildir also the open that numbers mail an MTA just
delivered (writing dovecot-uidlist) and POP3's UPDATE.  It is killed with
SIGKILL: by us after a random delay within the operation's duration, or by
itself at a random one of its hooked calls (mbox: write, pwrite, fsync,
ftruncate, posix_fallocate, unlink, replace; Maildir: write, fsync, open,
rename, link, unlink, utime of message, lock and uidlist files), before it,
after it, or half-way through a write.  In some trials procmail delivers to
INBOX all the while (into the Maildir when the driver is Maildir).

Then this process opens both mailboxes as the next session would (which
replays an interrupted rewrite and must clear the dead process's dotlock)
and checks: every message that was not expunged is present once, with its
UID, visible header, body and INTERNALDATE unchanged; flags are as before
or as after a STORE; an appended or copied message is absent or present
once and intact; every procmail delivery is present once and intact;
nothing else appeared; UIDVALIDITY is unchanged; on mbox the index and the
field cache agree with a fresh scan of the file, and an EXPUNGE, STORE,
MULTIAPPEND or COPY happened for all its messages or for none; on Maildir
dovecot-uidlist names every file with the UID the session shows, and a
crash in the middle of an operation on several messages may leave some done
(one rename or unlink per file, as in Dovecot: counted, each message whole).
No journal and no lock is left (Maildir: a dead child's uidlist or keywords
lock, which only a writer needs, is taken at once by the next writer).

PYIMAPD_CRASH_TRIALS (or `pytest tests/fault --trials N`) sets the number of
trials per driver (default 200), PYIMAPD_CRASH_SEED the random seed (printed
with the summary).
"""

import hashlib
import json
import os
import random
import shutil
import signal
import subprocess
import time

import pytest

from faultdrivers import Snapshot, atime_ahead, taken_at_once
from faultlib import (Deliveries, Tally, by_message_id, generated_message, journals,
                      procmail_available, procmail_deliver, procmail_message, python_child,
                      read_entries, trials_wanted, write_procmailrc)
from auth import Principal
from mailstore import StoreError
from mailstore import mboxformat as fmt
from mailstore import open_store
from server.config import Config

DEFAULT_TRIALS = 200
INBOX_MESSAGES = 240          # above mboxindex.MIN_MESSAGES: close() writes index and cache
FOLDER_MESSAGES = 12
FOLDER = "Archive"
KEYWORD_POOL = ["$Forwarded", "Junk", "NonJunk", "$Label1", "Work"]
SETTABLE = [fmt.SEEN, fmt.ANSWERED, fmt.FLAGGED, fmt.DRAFT, fmt.DELETED]
# The next session's lock wait after a crash: a lock the dead child left must be
# cleared at once, so a wait this long means it was not.
RECOVERY_LOCK_TIMEOUT = 3
PROCMAIL_SHARE = 0.15
PROCMAIL_DELIVERIES = 3


def seed_wanted():
    """The random seed: PYIMAPD_CRASH_SEED, else the current time."""
    return int(os.environ.get("PYIMAPD_CRASH_SEED", str(int(time.time()))))


class Room:
    """One trial's INBOX (mbox spool or ~/Maildir), folder and index directory."""

    def __init__(self, directory, driver):
        self.directory, self.driver = directory, driver
        self.home = directory / "home"
        self.home.mkdir(parents=True, exist_ok=True)
        self.inbox = driver.inbox(self.home, directory / "spool")
        self.folder = driver.folder(self.home, FOLDER)
        self.index_dir = str(directory / "index")

    def store(self, index_dir=None, lock_timeout=RECOVERY_LOCK_TIMEOUT):
        """A store in this process; another index_dir gives a view with no index or cache."""
        config = Config({"mail_location": self.driver.location(self.home, self.inbox),
                         "index_dir": index_dir or self.index_dir,
                         "mbox_lock_timeout": lock_timeout})
        return open_store(Principal("u", os.getuid(), os.getgid(), str(self.home)), config)

    def plan(self, **fields):
        return dict(fields, home=str(self.home), index_dir=self.index_dir,
                    location=self.driver.location(self.home, self.inbox))

    def locks(self):
        return self.driver.locks([self.inbox, self.folder])

    def leftovers(self):
        return self.driver.leftovers([self.inbox, self.folder])

    def procmailrc(self):
        return write_procmailrc(self.directory, self.driver.procmail_target(self.inbox))


def establish(store, name, keywords=None, flags=None):
    """Open a mailbox as a first IMAP session would and set some keywords and flags."""
    mailbox = store.open_mailbox(name)
    mailbox.claim_recent()
    for keyword, uids in (keywords or {}).items():
        mailbox.store_flags(uids, "+", 0, (keyword,))
    for bits, uids in (flags or {}).items():
        mailbox.store_flags(uids, "+", bits, ())
    mailbox.close()


def append_pool(rng):
    """Messages a client APPENDs: plain, CRLF, `From ` lines, NUL, smuggled metadata, 300 KB."""
    pool = []
    for number in range(12):
        body = b"".join(b"line %d of appended message %d\n" % (n, number)
                        for n in range(rng.randint(1, 40)))
        header = (b"From: Client <client@example.org>\nSubject: appended %d\n"
                  b"Message-ID: <append-%d@example.org>\n" % (number, number))
        if number == 1:
            header, body = header.replace(b"\n", b"\r\n"), body.replace(b"\n", b"\r\n")
        elif number == 2:
            body += b"From me to you\nFrom the start\n"
        elif number == 3:
            body += b"a NUL \0 byte\n"
        elif number == 4:
            header += b"Status: RO\nX-UID: 7\n"
        elif number == 5:
            body = b"".join(b"%06d %s\n" % (n, b"y" * 60) for n in range(4500))
        sep = b"\r\n" if number == 1 else b"\n"
        pool.append({"data": (header + sep + body).decode("latin-1"),
                     "date": [1700000000 + number * 3600, 60 * (number % 3)],
                     "mid": (b"<append-%d@example.org>" % number).decode()})
    return pool


class Templates:
    """The starting mailboxes, and what appended or copied messages must look like."""

    def __init__(self, directory, rng, driver):
        self.driver = driver
        room = Room(directory / "template", driver)
        uids = range(1, INBOX_MESSAGES + 1)
        driver.create(room.inbox, [generated_message(i, rng, b"inbox") for i in uids])
        driver.create(room.folder, [generated_message(i, rng, b"archive")
                                    for i in range(1, FOLDER_MESSAGES + 1)], folder=True)
        driver.after_restore([room.inbox, room.folder])
        establish(room.store(), b"INBOX",
                  keywords={"$Forwarded": [u for u in uids if u % 11 == 0],
                            "Junk": [u for u in uids if u % 13 == 0]},
                  flags={fmt.SEEN: [u for u in uids if u % 3 == 0],
                         fmt.ANSWERED: [u for u in uids if u % 5 == 0]})
        establish(room.store(), FOLDER.encode(), flags={fmt.FLAGGED: [1, 2]})
        self.template_dir = str(room.directory)
        self.snapshot = Snapshot(driver, driver.roots(room.inbox, room.folder))
        store = room.store()
        self.inbox_entries, inbox_dates, self.inbox_validity = read_with_dates(store, b"INBOX")
        self.folder_entries, folder_dates, self.folder_validity = read_with_dates(
            store, FOLDER.encode())
        # INTERNALDATE of every original message: a crash must not change it either.
        self.dates = {e.mid: date for e, date in zip(self.inbox_entries + self.folder_entries,
                                                      inbox_dates + folder_dates)}
        assert [e.uid for e in self.inbox_entries] == list(uids)
        self.pool = append_pool(rng)
        self.appended = self._reference_appends(directory / "reference")
        self.copied = self._reference_copies(directory / "reference-copy")

    def install(self, room):
        self.snapshot.restore(lambda path: path.replace(self.template_dir, str(room.directory)))

    def _reference_appends(self, directory):
        """Each pool message appended once, undisturbed: Message-ID -> (header, body digest)."""
        room = Room(directory, self.driver)
        self.install(room)
        mailbox = room.store().open_mailbox(FOLDER.encode())
        mailbox.append([(item["data"].encode("latin-1"), 0, (), tuple(item["date"]))
                        for item in self.pool])
        found = {e.mid: (e.header, e.digest) for e in read_entries(mailbox)}
        mailbox.close()
        return found

    def _reference_copies(self, directory):
        """Every INBOX message copied to the folder, undisturbed: Message-ID -> (header, digest)."""
        room = Room(directory, self.driver)
        self.install(room)
        store = room.store()
        source = store.open_inbox()
        with source.reading():
            items = [(source.message_text(m), 0, (), source.internal_date(m))
                     for m in source.messages]
        target = store.open_mailbox(FOLDER.encode())
        target.append(items)
        found = {e.mid: (e.header, e.digest) for e in read_entries(target)[FOLDER_MESSAGES:]}
        target.close()
        source.close()
        return found


# -- plans: what the child does -------------------------------------------------

def plan_store(rng, templates):
    uids = rng.sample(range(1, INBOX_MESSAGES + 1), rng.randint(1, 60))
    bits = 0
    for bit in rng.sample(SETTABLE, rng.randint(0, 3)):
        bits |= bit
    keywords = rng.sample(KEYWORD_POOL, rng.randint(0, 2))
    return {"op": "store", "uids": sorted(uids), "mode": rng.choice(["+", "-", ""]),
            "bits": bits, "keywords": keywords}


def plan_expunge(rng, templates):
    all_uids = list(range(1, INBOX_MESSAGES + 1))
    shape = rng.random()
    if shape < 0.15:
        deleted = [1] + rng.sample(all_uids[1:], rng.randint(0, 4))   # the X-IMAPbase holder
    elif shape < 0.3:
        deleted = all_uids[-rng.randint(1, 8):]                      # only the tail shrinks
    else:
        deleted = rng.sample(all_uids, rng.randint(1, 80))
    uid_expunge = None
    if rng.random() < 0.4:
        uid_expunge = sorted(set(rng.sample(deleted, rng.randint(1, len(deleted))))
                             | set(rng.sample(all_uids, 3)))
    return {"op": "expunge", "deleted": sorted(deleted), "uid_expunge": uid_expunge}


def plan_append(rng, templates):
    count = 1 if rng.random() < 0.5 else rng.randint(2, 5)
    items = []
    for item in rng.sample(templates.pool, count):
        bits = 0
        for bit in rng.sample(SETTABLE[:4], rng.randint(0, 2)):
            bits |= bit
        items.append(dict(item, bits=bits, keywords=rng.sample(KEYWORD_POOL, rng.randint(0, 2))))
    return {"op": "append", "target": rng.choice(["INBOX", "INBOX", FOLDER]), "items": items}


def plan_copy(rng, templates):
    uids = rng.sample(range(1, INBOX_MESSAGES + 1), rng.randint(1, 25))
    return {"op": "copy", "uids": sorted(uids), "target": FOLDER}


def plan_index(rng, templates):
    return {"op": "index"}


def plan_scan(rng, templates):
    """Open INBOX after an MTA delivered some messages: the open numbers them."""
    return {"op": "scan", "pending": rng.randint(1, 8)}


def plan_commit(rng, templates):
    """POP3: RETR some messages (\\Seen at QUIT), DELE others, QUIT."""
    picked = rng.sample(range(1, INBOX_MESSAGES + 1), rng.randint(2, 60))
    split = rng.randint(0, len(picked))
    return {"op": "commit", "deleted": sorted(picked[:split]), "seen": sorted(picked[split:])}


PLANS = {"store": plan_store, "expunge": plan_expunge, "append": plan_append,
         "copy": plan_copy, "index": plan_index, "scan": plan_scan, "commit": plan_commit}


def pending_message(trial, number):
    """(Message-ID, mbox message) an MTA delivered before a "scan" plan's child starts."""
    mid = b"<pending-%s-%d@mta.example.org>" % (str(trial).encode(), number)
    return mid, (b"From mta@example.org Thu Dec  3 06:00:00 1992\n" + procmail_message(mid)
                 + b"\n")


def deliver_pending(room, plan, trial):
    """Deliver a plan's pending messages as an MTA; their Message-IDs."""
    delivered = []
    for number in range(plan.get("pending", 0)):
        mid, message = pending_message(trial, number)
        room.driver.deliver(room.inbox, message)
        delivered.append(mid)
    return delivered


# -- the child ------------------------------------------------------------------

def run_child(room, plan, kill_after=None, on_go=None):
    """Run ops_child.py; kill it kill_after seconds after "go" if given. (returncode, output).

    on_go() is called as the operation starts (to start deliveries alongside it).
    """
    plan_path = room.directory / "plan.json"
    plan_path.write_text(json.dumps(plan))
    child = python_child("ops_child.py", plan_path, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE)
    first = child.stdout.readline()
    if on_go is not None:
        on_go()
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


def calibration_plans(templates):
    """A typical plan of each operation that writes something (a STORE adding a keyword
    the mailbox does not know yet rewrites the file from its first message)."""
    uids = list(range(1, INBOX_MESSAGES + 1))
    items = [dict(item, bits=fmt.SEEN, keywords=["Work"]) for item in templates.pool[:3]]
    return {"store": {"op": "store", "uids": uids[::4], "mode": "+", "bits": fmt.FLAGGED,
                      "keywords": ["$Label1"]},
            "expunge": {"op": "expunge", "deleted": uids[::5], "uid_expunge": None},
            "append": {"op": "append", "target": "INBOX", "items": items},
            "copy": {"op": "copy", "uids": uids[::24], "target": FOLDER},
            "index": {"op": "index"},
            "scan": {"op": "scan", "pending": 5},
            "commit": {"op": "commit", "deleted": uids[::7], "seen": uids[1::7]}}


class Calibration:
    """Per operation, one undisturbed run: its duration and its hooked call counts."""

    def __init__(self, templates, directory):
        self.duration, self.calls, self.non_write_calls = {}, {}, {}
        driver = templates.driver
        for op in driver.ops:
            plan = calibration_plans(templates)[op]
            for hooked in (driver.hooked, driver.non_write):
                room = Room(directory / ("%s-%d" % (op, len(hooked))), driver)
                templates.install(room)
                deliver_pending(room, plan, "calibration")
                code, out = run_child(room, room.plan(hooked=hooked, **plan))
                # Nothing here kills it: a SIGKILL came from outside (an OOM kill).
                assert code == 0, "calibration child of %s was killed (%s)" % (op, code)
                _, seconds, calls = out.split(b"\n")[1].split()
                if hooked is driver.hooked:
                    self.duration[op], self.calls[op] = float(seconds), int(calls)
                else:
                    self.non_write_calls[op] = int(calls)


def kill_child(room, plan, rng, calibration, on_go=None):
    """Run the child and kill it: after a random delay, or at a random hooked call."""
    op = plan["op"]
    how = rng.random()
    if how < 1 / 3:
        delay = rng.uniform(0, calibration.duration[op])
        return (run_child(room, plan, kill_after=delay, on_go=on_go),
                "killed after %.4f s" % delay)
    phase = rng.choice(["before", "after", "torn"])
    driver = room.driver
    if how < 2 / 3:
        kill_at = rng.randint(1, int(calibration.calls[op] * 1.2) + 1)
        return (run_child(room, dict(plan, kill_at=kill_at, phase=phase, hooked=driver.hooked),
                          on_go=on_go), "died %s call %d" % (phase, kill_at))
    kill_at = rng.randint(1, int(calibration.non_write_calls[op] * 1.2) + 1)
    return (run_child(room, dict(plan, kill_at=kill_at, phase=phase, hooked=driver.non_write),
                      on_go=on_go), "died %s non-write call %d" % (phase, kill_at))


# -- after the crash ---------------------------------------------------------------

def recover(tally, room, trial):
    """Open both mailboxes as the next IMAP SELECT would (claiming \\Recent takes the write
    lock, Maildir's numbering of new mail its uidlist lock); a lock the dead child left
    must not make that wait."""
    store = room.store()
    for name, path in ((b"INBOX", room.inbox), (FOLDER.encode(), room.folder)):
        lock = room.driver.lock_of(path)
        try:
            mailbox = store.open_mailbox(name)
            try:
                mailbox.claim_recent()
            finally:
                mailbox.close()
        except StoreError as error:
            if error.kind != StoreError.IN_USE:
                tally.fail("damaged", trial, "%s does not open after the crash: %s"
                           % (name, error))
                continue
            tally.fail("stuck locks", trial, "%s: %s (lock content %r)"
                       % (name, error, _lock_content(lock)))
            os.unlink(lock)
            store.open_mailbox(name).close()


def _lock_content(path):
    try:
        with open(path, "rb") as handle:
            return handle.read()
    except OSError as error:
        return error.strerror


def read_back(tally, room, name, trial):
    """The mailbox read with its index and cache, checked against a fresh scan of the file;
    on Maildir, dovecot-uidlist checked against the files."""
    scan_dir = str(room.directory / ("scan-%s" % name.decode()))
    shutil.rmtree(scan_dir, ignore_errors=True)
    entries, dates, validity = read_with_dates(room.store(), name)
    fresh, fresh_dates, _ = read_with_dates(room.store(scan_dir), name)
    if [_full(e) for e in entries] != [_full(e) for e in fresh]:
        tally.fail("damaged", trial, "%s: the index disagrees with a scan of the file" % name)
    elif dates != fresh_dates:
        tally.fail("damaged", trial, "%s: the field cache disagrees with the file" % name)
    uids = [e.uid for e in fresh]
    if uids != sorted(set(uids)):
        tally.fail("damaged", trial, "%s: UIDs not strictly ascending" % name)
    path = room.inbox if name == b"INBOX" else room.folder
    for problem in room.driver.consistency(path, fresh):
        tally.fail("damaged", trial, "%s: %s" % (name.decode(), problem))
    return fresh, dict(zip((e.mid for e in fresh), fresh_dates)), validity


def read_with_dates(store, name):
    """(entries, internal dates, UIDVALIDITY) of a mailbox; dates come from the cache if any."""
    mailbox = store.open_mailbox(name)
    try:
        entries = read_entries(mailbox)
        with mailbox.reading():
            dates = [mailbox.internal_date(m) for m in mailbox.messages]
        return entries, dates, mailbox.uidvalidity
    finally:
        mailbox.close()


def _full(entry):
    return (entry.mid, entry.uid, entry.flags, entry.keywords, entry.header, entry.digest)


class Expected:
    """What a mailbox must hold after the trial, message by message."""

    def __init__(self, originals, atomic):
        # Message-ID -> (original Entry, acceptable flag states)
        self.originals = {e.mid: e for e in originals}
        # An operation on several messages is all-or-nothing (mbox), or each message on its
        # own is before or after (Maildir: one rename or unlink per file).
        self.atomic = atomic
        self.flag_states = {e.mid: [(e.flags & ~fmt.OLD, e.keywords)] for e in originals}
        self.expunged = set()
        self.optional = {}      # Message-ID -> (header, digest, flags, keywords) if present
        self.group = []         # Message-IDs that must be present all together or not at all
        self.group_kind = None
        self.delivered = {}     # Message-ID -> body digest (procmail)


def after_store(entry, plan):
    """An Entry's (flags without OLD, keywords) after the plan's STORE."""
    flags, keywords = entry.flags & ~fmt.OLD, set(entry.keywords)
    if plan["mode"] == "+":
        flags, keywords = flags | plan["bits"], keywords | set(plan["keywords"])
    elif plan["mode"] == "-":
        flags, keywords = flags & ~plan["bits"], keywords - set(plan["keywords"])
    else:
        flags, keywords = plan["bits"], set(plan["keywords"])
    return flags, tuple(sorted(keywords))


def expectations(templates, plan):
    """(INBOX Expected, folder Expected) for a plan."""
    atomic = templates.driver.atomic_groups
    inbox = Expected(templates.inbox_entries, atomic)
    folder = Expected(templates.folder_entries, atomic)
    inbox.dates = folder.dates = templates.dates
    by_uid = {e.uid: e for e in templates.inbox_entries}
    if plan["op"] == "store":
        changed = [by_uid[uid] for uid in plan["uids"]]
        for entry in changed:
            inbox.flag_states[entry.mid].append(after_store(entry, plan))
        inbox.group = [e.mid for e in changed]
        inbox.group_kind = "store"
    elif plan["op"] == "expunge":
        doomed = set(plan["deleted"])
        if plan["uid_expunge"] is not None:
            doomed &= set(plan["uid_expunge"])
        for uid in plan["deleted"]:
            entry = by_uid[uid]
            inbox.flag_states[entry.mid].append(((entry.flags & ~fmt.OLD) | fmt.DELETED,
                                                 entry.keywords))
        inbox.expunged = {by_uid[uid].mid for uid in doomed}
    elif plan["op"] == "append":
        target = inbox if plan["target"] == "INBOX" else folder
        for item in plan["items"]:
            mid = item["mid"].encode()
            header, digest = templates.appended[mid]
            target.optional[mid] = (header, digest, item["bits"],
                                    tuple(sorted(set(item["keywords"]))))
        target.group = [item["mid"].encode() for item in plan["items"]]
        target.group_kind = "append"
    elif plan["op"] == "copy":
        for uid in plan["uids"]:
            entry = by_uid[uid]
            header, digest = templates.copied[entry.mid]
            folder.optional[entry.mid] = (header, digest, entry.flags & ~fmt.OLD, entry.keywords)
        folder.group = [by_uid[uid].mid for uid in plan["uids"]]
        folder.group_kind = "copy"
    elif plan["op"] == "commit":
        for uid in plan["seen"]:
            entry = by_uid[uid]
            inbox.flag_states[entry.mid].append(((entry.flags & ~fmt.OLD) | fmt.SEEN,
                                                 entry.keywords))
        inbox.expunged = {by_uid[uid].mid for uid in plan["deleted"]}
    return inbox, folder


def partial(tally, expected, kind, trial, detail):
    """An operation on several messages that took effect on some: a failure where the
    driver promises all-or-nothing (mbox), else only counted (Maildir)."""
    if expected.atomic:
        tally.fail("partial %s" % kind, trial, detail)
    else:
        tally.count("partial %s, each message whole" % kind)


def check_mailbox(tally, expected, entries, dates, trial, name):
    """Count every lost, duplicated, damaged or unexpected message of one mailbox."""
    found = by_message_id(entries)
    present = {}
    for mid, original in expected.originals.items():
        copies = found.pop(mid, [])
        tally.checked += 1
        present[mid] = bool(copies)
        if not copies:
            if mid not in expected.expunged:
                tally.fail("lost", trial, "%s %s" % (name, mid.decode()))
            continue
        if len(copies) > 1:
            tally.fail("duplicated", trial, "%s %s" % (name, mid.decode()))
        elif copies[0].text_key() != original.text_key():
            tally.fail("damaged", trial, "%s %s: text or UID changed (uid %d, was %d)"
                       % (name, mid.decode(), copies[0].uid, original.uid))
        elif (copies[0].flags & ~fmt.OLD, copies[0].keywords) not in expected.flag_states[mid]:
            tally.fail("damaged", trial, "%s %s: flags %d %r not in %r" % (
                name, mid.decode(), copies[0].flags, copies[0].keywords,
                expected.flag_states[mid]))
        elif dates[mid] != expected.dates[mid]:
            tally.fail("damaged", trial, "%s %s: INTERNALDATE %r, was %r"
                       % (name, mid.decode(), dates[mid], expected.dates[mid]))
    gone = [mid for mid in expected.expunged if not present[mid]]
    if gone and len(gone) != len(expected.expunged):
        partial(tally, expected, "expunge", trial, "%s: expunge not atomic, %d of %d gone"
                % (name, len(gone), len(expected.expunged)))
    check_optional(tally, expected, found, trial, name)
    check_group(tally, expected, entries, trial, name)
    check_delivered(tally, expected, found, trial, name)
    if found:
        tally.fail("damaged", trial, "%s: unexpected messages %r"
                   % (name, [(mid, len(v)) for mid, v in found.items()][:3]))


def check_optional(tally, expected, found, trial, name):
    """Appended or copied messages: absent, or present once and intact, with their flags."""
    wrong_flags = []
    for mid, (header, digest, flags, keywords) in expected.optional.items():
        copies = found.pop(mid, [])
        tally.checked += 1
        if len(copies) > 1:
            tally.fail("duplicated", trial, "%s %s" % (name, mid.decode()))
        elif copies and (copies[0].header, copies[0].digest) != (header, digest):
            tally.fail("damaged", trial, "%s %s: appended text is not intact"
                       % (name, mid.decode()))
        elif copies and (copies[0].flags & ~fmt.OLD, copies[0].keywords) != (flags, keywords):
            wrong_flags.append("%s has %d %r, not %d %r" % (
                mid.decode(), copies[0].flags & ~fmt.OLD, copies[0].keywords, flags, keywords))
    if wrong_flags:
        tally.fail("partial %s" % expected.group_kind, trial, "%s: %d arrived without their "
                   "flags or keywords, e.g. %s" % (name, len(wrong_flags), wrong_flags[0]))


def check_group(tally, expected, entries, trial, name):
    """A STORE, MULTIAPPEND or COPY took effect on all its messages or on none."""
    if not expected.group:
        return
    if expected.group_kind == "store":
        states = {e.mid: (e.flags & ~fmt.OLD, e.keywords) for e in entries}
        done = [mid for mid in expected.group
                if states.get(mid) != expected.flag_states[mid][0]]
        undone = [mid for mid in expected.group
                  if states.get(mid) != expected.flag_states[mid][-1]]
        atomic = not done or not undone
    else:
        mids = {e.mid for e in entries}
        atomic = len({mid in mids for mid in expected.group}) == 1
    if not atomic:
        partial(tally, expected, expected.group_kind, trial,
                "%s: only part of the %s took effect" % (name, expected.group_kind))


def check_delivered(tally, expected, found, trial, name):
    """Every procmail delivery (exit 0) is there once, with its body."""
    for mid, digest in expected.delivered.items():
        copies = found.pop(mid, [])
        tally.checked += 1
        if not copies:
            tally.fail("lost", trial, "%s procmail delivery %s" % (name, mid.decode()))
        elif len(copies) > 1:
            tally.fail("duplicated", trial, "%s procmail delivery %s" % (name, mid.decode()))
        elif copies[0].digest != digest:
            tally.fail("damaged", trial, "%s procmail delivery %s" % (name, mid.decode()))


PROCMAIL_BODY_DIGEST = hashlib.sha256(b"delivered by procmail\n").hexdigest()


def run_trial(tally, templates, rng, directory, trial, calibration, with_procmail):
    """Prepare, crash, recover, check."""
    room = Room(directory, templates.driver)
    templates.install(room)
    if rng.random() < 0.5:
        # An index and cache from an earlier session, for the child to start from.
        mailbox = room.store().open_inbox()
        for message in mailbox.messages:
            mailbox.internal_date(message)
        mailbox.close()
    plan = PLANS[rng.choice(templates.driver.ops)](rng, templates)
    pending = deliver_pending(room, plan, trial)
    deliveries = None
    if with_procmail:
        # Spread over about the operation's duration, from the moment it starts.
        spread = calibration.duration[plan["op"]] / PROCMAIL_DELIVERIES
        deliveries = Deliveries(room.procmailrc(), b"pm-%d" % trial,
                                [rng.uniform(0, spread) for _ in range(PROCMAIL_DELIVERIES)])
    (returncode, _), how = kill_child(room, room.plan(**plan), rng, calibration,
                                      on_go=deliveries.start if deliveries else None)
    label = "%d (%s %s%s)" % (trial, plan["op"], how, ", procmail" if deliveries else "")
    tally.killed += returncode == -signal.SIGKILL
    recover(tally, room, label)
    delivered = []
    if deliveries is not None:
        delivered = deliveries.wait()
        tally.count("procmail deliveries", len(delivered))
        if deliveries.failed:
            tally.fail("procmail failures", label, "%d deliveries failed"
                       % len(deliveries.failed))
    verify(tally, templates, room, plan, label, pending + delivered)
    shutil.rmtree(directory, ignore_errors=True)


def verify(tally, templates, room, plan, label, delivered):
    """Read both mailboxes back and count every problem, after recovery and deliveries."""
    inbox, folder = expectations(templates, plan)
    inbox.delivered = {mid: PROCMAIL_BODY_DIGEST for mid in delivered}
    tally.trials += 1
    for name, expected, validity in ((b"INBOX", inbox, templates.inbox_validity),
                                     (FOLDER.encode(), folder, templates.folder_validity)):
        entries, dates, found_validity = read_back(tally, room, name, label)
        if found_validity != validity:
            tally.fail("damaged", label, "%s: UIDVALIDITY changed" % name)
        check_mailbox(tally, expected, entries, dates, label, name.decode())
    check_left_locks(tally, room, label)
    if journals(room.index_dir) or room.locks():
        tally.fail("damaged", label, "left behind: %s %s" % (journals(room.index_dir),
                                                             room.locks()))
    if room.leftovers():
        tally.count("files left in tmp/", len(room.leftovers()))


def figures_only(tally):
    """The extra counts that are not failures: deliveries, tmp/ files, per-message partials."""
    return {kind for kind in tally.extra
            if kind in ("procmail deliveries", "files left in tmp/",
                        "dead child's lock left, taken at once")
            or kind.endswith("each message whole")}


def check_left_locks(tally, room, label):
    """Maildir: a lock the dead child left, which the next session did not need, goes at once
    when someone does need it (mbox: any lock left is a failure, below)."""
    if not room.driver.lazy_locks:
        return
    for lock in room.locks():
        if taken_at_once(lock, RECOVERY_LOCK_TIMEOUT):
            tally.count("dead child's lock left, taken at once")
        else:
            tally.fail("stuck locks", label, "%s: %r" % (lock, _lock_content(lock)))
            os.unlink(lock)


def test_kill_9_during_imap_operations_loses_nothing(tmp_path, capsys, driver):
    """Over many SIGKILLs at random points of STORE, EXPUNGE, APPEND, COPY, index writes
    (mbox), new-mail numbering and POP3 QUIT (Maildir), some with procmail delivering
    meanwhile, no message is lost, duplicated or damaged, UIDs and dates do not change,
    every operation is all-or-nothing (mbox) or so per message (Maildir), and the next
    session opens cleanly."""
    seed = seed_wanted()
    rng = random.Random(seed)
    templates = Templates(tmp_path, rng, driver)
    calibration = Calibration(templates, tmp_path / "calibration")
    tally = Tally("%s crash trials" % driver.name)
    procmail = procmail_available()
    trials = trials_wanted(DEFAULT_TRIALS)
    for trial in range(trials):
        with_procmail = procmail and rng.random() < PROCMAIL_SHARE
        run_trial(tally, templates, rng, tmp_path / ("trial-%d" % trial), trial, calibration,
                  with_procmail)
    with capsys.disabled():
        print("\nIMAP operations, %s (seed %d, %d killed; %s)" % (
            tally.summary(), seed, tally.killed, ", ".join(
                "%s %.3f s/%d calls" % (op, calibration.duration[op], calibration.calls[op])
                for op in driver.ops)))
    assert tally.trials == trials and tally.killed > 0
    assert procmail or os.environ.get("CI") != "true", "procmail is not installed"
    assert tally.problems() == (0, 0, 0) and not tally.extra.keys() - figures_only(tally), \
        "\n".join(tally.failures)


# Appends whose every mailbox-side call is a kill point below (no keywords, so
# that only data can go wrong): one large message, three at once, a COPY.
KILL_POINT_PLANS = {
    "append": lambda pool: {"op": "append", "target": "INBOX", "items": [pool[5]]},
    "multiappend": lambda pool: {"op": "append", "target": FOLDER, "items": pool[:3]},
    "copy": lambda pool: {"op": "copy", "uids": [3, 100, INBOX_MESSAGES], "target": FOLDER},
}


@pytest.mark.parametrize("name", sorted(KILL_POINT_PLANS))
def test_every_kill_point_of_an_append_then_a_delivery(tmp_path, capsys, name, driver):
    """An APPEND, a MULTIAPPEND or a COPY killed before, during or after each of its calls
    that touch the mailbox (mbox: posix_fallocate, pwrite, fsync, ftruncate, ...; Maildir:
    open, fsync, utime, link, rename, unlink of message, lock and uidlist files), then the
    next session, then a procmail delivery: what was there is intact, what was appended is
    absent or intact, and the delivery is there once."""
    templates = Templates(tmp_path, random.Random(seed_wanted()), driver)
    pool = [dict(item, bits=0, keywords=[]) for item in templates.pool]
    plan = KILL_POINT_PLANS[name](pool)
    count = Room(tmp_path / "count", driver)
    templates.install(count)
    _, out = run_child(count, count.plan(hooked=driver.non_write, **plan))
    calls = int(out.split(b"\n")[1].split()[2])
    tally = Tally("%s %s kill points" % (driver.name, name))
    for kill_at in range(1, calls + 1):
        for phase in driver.kill_phases:
            room = Room(tmp_path / ("%d-%s" % (kill_at, phase)), driver)
            templates.install(room)
            returncode, _ = run_child(room, room.plan(kill_at=kill_at, phase=phase,
                                                      hooked=driver.non_write, **plan))
            tally.killed += returncode == -signal.SIGKILL
            label = "%s died %s call %d" % (name, phase, kill_at)
            recover(tally, room, label)
            atime_ahead(room.inbox)
            delivered = []
            if procmail_available():
                mid = b"<after-%d-%s@procmail.example.org>" % (kill_at, phase.encode())
                if procmail_deliver(room.procmailrc(), procmail_message(mid)) == 0:
                    delivered.append(mid)
            verify(tally, templates, room, plan, label, delivered)
            shutil.rmtree(room.directory, ignore_errors=True)
    with capsys.disabled():
        print("\n%s (%d hooked calls)" % (tally.summary(), calls))
    assert tally.killed == len(driver.kill_phases) * calls
    assert tally.problems() == (0, 0, 0) and not tally.extra.keys() - figures_only(tally), \
        "\n".join(tally.failures)
