"""What the fault tests share: generated mail, the tally of problems, a mailbox read back.

Not a test module: crash_child.py, ops_child.py and the test_*.py files in
this directory import it (pytest puts this directory on sys.path).
"""

import hashlib
import os
import re
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
# A guard against a hung process, never a measurement.
GUARD_SECONDS = 120
# Failures described per kind of problem (all are counted).
FAILURES_SHOWN = 6


def trials_wanted(default):
    """How many random crash trials to run: PYIMAPD_CRASH_TRIALS (or --trials), else default."""
    return int(os.environ.get("PYIMAPD_CRASH_TRIALS", str(default)))


def generated_message(index, rng, tag=b"crash"):
    """One delivered message with a unique Message-ID; most short, some many KB."""
    kind = rng.random()
    lines = rng.randint(2, 20) if kind < 0.8 else rng.randint(60, 900)
    body = b"".join(b"%d/%d %s\n" % (index, n, b"x" * rng.randint(0, 70)) for n in range(lines))
    if index % 7 == 0:
        body += b">From quoted Wed Dec  2 05:53:22 1992\nFrom the desk of nobody\n"
    return (b"From sender%d@example.org Wed Dec  2 05:%02d:%02d 1992\n"
            % (index, index // 60 % 60, index % 60)
            + b"From: Sender %d <sender%d@example.org>\n" % (index, index)
            + b"Subject: %s test message %d\n" % (tag, index)
            + b"Message-ID: <%s-%d@example.org>\n\n" % (tag, index)
            + body + b"\n")


class Tally:
    """Counts over all trials, and the first few failures described.

    `lost`, `duplicated` and `damaged` are the three numbers every fault test
    must bring back as zero; `extra` holds further named counts for the
    summary line (they are asserted by the test that adds them).
    """

    def __init__(self, label="crash trials"):
        self.label = label
        self.trials = self.checked = self.lost = self.duplicated = self.damaged = 0
        self.killed = 0
        self.extra = {}
        self.failures = []

    def fail(self, kind, trial, detail):
        """Count one problem of `kind` ("lost", "duplicated", "damaged" or an extra) and
        describe it (the first few of each kind)."""
        if kind in ("lost", "duplicated", "damaged"):
            setattr(self, kind, getattr(self, kind) + 1)
        else:
            self.extra[kind] = self.extra.get(kind, 0) + 1
        if sum(line.startswith(kind + " in") for line in self.failures) < FAILURES_SHOWN:
            self.failures.append("%s in trial %s: %s" % (kind, trial, detail))

    def add(self, other):
        """Take in the counts and failures of another Tally (one trial of a series)."""
        self.trials += other.trials
        self.checked += other.checked
        self.killed += other.killed
        for kind in ("lost", "duplicated", "damaged"):
            setattr(self, kind, getattr(self, kind) + getattr(other, kind))
        for kind, amount in other.extra.items():
            self.count(kind, amount)
        self.failures += other.failures

    def count(self, kind, amount=1):
        """Add to a named figure that is not a failure (for the summary only)."""
        self.extra[kind] = self.extra.get(kind, 0) + amount

    def summary(self):
        """The one-line summary printed after the run."""
        extra = "".join(", %s: %d" % item for item in sorted(self.extra.items()))
        return ("%s: %d, messages checked: %d, lost: %d, duplicated: %d, damaged: %d%s"
                % (self.label, self.trials, self.checked, self.lost, self.duplicated,
                   self.damaged, extra))

    def problems(self):
        """lost, duplicated, damaged: all must be zero."""
        return (self.lost, self.duplicated, self.damaged)


MESSAGE_ID = re.compile(rb"^Message-ID: (<[^>]*>)", re.M | re.I)


class Entry:
    """One message as read back: Message-ID, UID, flags, keywords, visible header, body digest."""

    __slots__ = ("mid", "uid", "flags", "keywords", "header", "digest")

    def __init__(self, mid, uid, flags, keywords, header, digest):
        self.mid, self.uid, self.flags = mid, uid, flags
        self.keywords, self.header, self.digest = keywords, header, digest

    def text_key(self):
        """What must never change for a message: UID, visible header and body."""
        return (self.uid, self.header, self.digest)

    def __repr__(self):
        return "Entry(%r, uid=%d, flags=%d, keywords=%r)" % (self.mid, self.uid, self.flags,
                                                              self.keywords)


def read_entries(mailbox):
    """Every message of an open mailbox as an Entry, in mailbox order."""
    found = []
    with mailbox.reading():
        for message in mailbox.messages:
            header = mailbox.header_bytes(message)
            match = MESSAGE_ID.search(header)
            body = hashlib.sha256()
            for chunk in mailbox.body_chunks(message):
                body.update(chunk)
            found.append(Entry(match.group(1) if match else None, message.uid, message.flags,
                               tuple(sorted(message.keywords)), header, body.hexdigest()))
    return found


def by_message_id(entries):
    """{Message-ID: [Entry, ...]} keeping duplicates visible."""
    grouped = {}
    for entry in entries:
        grouped.setdefault(entry.mid, []).append(entry)
    return grouped


def journals(index_dir):
    """Journal files left in an index directory."""
    if not os.path.isdir(index_dir):
        return []
    return sorted(name for name in os.listdir(index_dir) if name.startswith("journal-"))


# -- procmail, the MTA's delivery agent in these tests ------------------------

def procmail_available():
    """True when procmail is installed (CI installs it)."""
    return shutil.which("procmail") is not None


def write_procmailrc(directory, spool):
    """A procmailrc delivering to `spool` with procmail's own locks (dotlock, then fcntl).

    A `spool` ending with "/" is a Maildir: procmail writes tmp/ then moves
    the file to new/, which needs no lock.  LOCKSLEEP=1: procmail tries a
    busy dotlock again after 1 s instead of 8 s, which keeps a test that
    waits for deliveries quick; the locking is unchanged.
    """
    rcfile = Path(directory) / "procmailrc"
    # UMASK=022 for a Maildir: procmail runs as root here, and the served user must be
    # able to read the files it creates (in an mbox it appends to the user's own file).
    recipe = "UMASK=022\n:0" if str(spool).endswith("/") else ":0:"
    rcfile.write_text("SHELL=/bin/sh\nLOCKSLEEP=1\nLOGFILE=%s/procmail.log\n%s\n%s\n"
                      % (directory, recipe, spool))
    return rcfile


def procmail_message(mid, text=b"delivered by procmail"):
    """A message for procmail to deliver (procmail writes the From_ line)."""
    return (b"From: MTA <mta@example.org>\nSubject: procmail delivery\nMessage-ID: " + mid
            + b"\n\n" + text + b"\n")


def procmail_deliver(rcfile, message, sender="mta@example.org"):
    """Deliver one message with procmail as an MTA runs it; its exit status."""
    result = subprocess.run(["procmail", "-f", sender, "-m", str(rcfile)], input=message,
                            capture_output=True, timeout=GUARD_SECONDS)
    return result.returncode


class Deliveries:
    """Procmail deliveries one after another in a thread, `pauses[i]` seconds before the i-th.

    The pauses only spread the deliveries over the time a test runs; no
    result depends on them.
    """

    def __init__(self, rcfile, prefix, pauses):
        self.rcfile, self.prefix, self.pauses = rcfile, prefix, list(pauses)
        self.delivered, self.failed = [], []
        self._thread = threading.Thread(target=self._run, daemon=True)

    def start(self):
        self._thread.start()
        return self

    def _run(self):
        for number, pause in enumerate(self.pauses, 1):
            time.sleep(pause)
            mid = b"<%s-%d@procmail.example.org>" % (self.prefix, number)
            status = procmail_deliver(self.rcfile, procmail_message(mid))
            (self.delivered if status == 0 else self.failed).append(mid)

    def wait(self):
        """Wait until all are done; return the Message-IDs delivered (procmail exit 0)."""
        self._thread.join(GUARD_SECONDS)
        assert not self._thread.is_alive(), "procmail did not finish"
        return self.delivered


def python_child(script, *args, **popen_args):
    """Start one of this directory's child scripts with the repository importable."""
    return subprocess.Popen([sys.executable, str(Path(__file__).with_name(script)), str(REPO),
                             *map(str, args)], **popen_args)
