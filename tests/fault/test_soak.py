"""Soak: 50 concurrent IMAP and POP3 connections on loopback plus continuous deliveries.

imapd and ipop3d run behind the built-in listener, as inetd would run them.
Fifty client threads keep a connection each for the whole run:

- 13 + 12 IMAP sessions share the INBOXes of two users (`imap0`, `imap1`),
  doing FETCH (checking each body read against what was delivered), STORE,
  APPEND, STORE \\Deleted + EXPUNGE of their own appended messages, NOOP and
  IDLE, in random order;
- five users (`mixed0`..`mixed4`) each have two IMAP sessions and one POP3
  client, which logs in again and again, reads a random message (checked),
  sometimes DELEs it and QUITs;
- five users (`pop0`..`pop4`) each have two POP3 clients competing for the
  maildrop (the loser gets `-ERR [IN-USE]`, as RFC 1939 allows).

Some users (MAILDIR_USERS: one of the shared INBOXes, two mixed and two POP3
users) have ~/Maildir instead of a spool file, served by a second pair of
listeners with a Maildir configuration.

Meanwhile procmail and an in-process MTA (dotlock, fcntl, flock for mbox;
tmp/ then new/ for Maildir) deliver to every user.  Every Message-ID delivered, appended, marked \\Deleted or DELEd
is recorded, and at the end each message that was not deleted must be in its
INBOX exactly once with its body intact; nothing may be there twice.

Every tagged IMAP reply must be OK and every POP3 reply +OK, except these
expected refusals: a command that would move data in the file while a POP3
session holds the maildrop (`NO [INUSE]`: an EXPUNGE, or giving new mail its
UID headers at SELECT or STORE), a FETCH of a message another session or a
POP3 QUIT has just unlinked from a Maildir (`NO [EXPUNGEISSUED]`, RFC 2180
section 4.1.2), and
a second POP3 login on a maildrop (`-ERR [IN-USE]`).  No
server process may be left when the clients are done, and each long-lived
imapd's resident memory at the end must stay within MEMORY_GROWTH_LIMIT
times what it was after its first commands.

PYIMAPD_SOAK_SECONDS (or `pytest tests/fault --soak-seconds N`) sets how long
the load runs (default 30).
"""

import hashlib
import imaplib
import os
import poplib
import random
import re
import statistics
import threading
import time

from auth import Principal
from faultlib import (GUARD_SECONDS, by_message_id, procmail_available, procmail_deliver,
                      read_entries, write_procmailrc)
from faultroom import IMAPD, IPOP3D, hang_up, rss_kib
from mailstore import open_store
from server.config import Config

IMAP_SHARED = {"imap0": 13, "imap1": 12}
MIXED_USERS = ["mixed%d" % n for n in range(5)]
POP3_USERS = ["pop%d" % n for n in range(5)]
MAILDIR_USERS = ["imap1", "mixed3", "mixed4", "pop3", "pop4"]
INITIAL_MESSAGES = 40
MEMORY_GROWTH_LIMIT = 2.0
# Pacing between a client's commands, so that 50 clients and their servers
# share two cores without starving the deliveries (not a measurement).
CLIENT_PAUSE = (0.0, 0.3)
DELIVERY_PAUSE = (0.0, 0.1)


UID_ITEM = re.compile(rb"UID (\d+)")
# Refusals a session may get: sharing its INBOX with POP3, a change that would move data
# while POP3 holds the maildrop; on Maildir, a FETCH of a message another session or
# POP3's QUIT has just unlinked (RFC 2180 section 4.1.2 allows NO there, as Dovecot says).
INUSE, EXPUNGEISSUED = b"[INUSE]", b"[EXPUNGEISSUED]"


def soak_seconds():
    return float(os.environ.get("PYIMAPD_SOAK_SECONDS", "30"))


class Ledger:
    """Every message that should exist, its body digest, and those allowed to vanish."""

    def __init__(self):
        self.lock = threading.Lock()
        self.bodies = {}        # Message-ID -> (user, sha256 of the LF body)
        self.doomed = set()     # marked \\Deleted or DELEd: may be gone at the end
        self.refused = set()    # APPENDs answered NO: must not be there
        self.counts = {}        # name -> number, for the summary
        self.errors = []        # protocol errors and bad reads

    def add(self, user, mid, body):
        with self.lock:
            self.bodies[mid] = (user, hashlib.sha256(body).hexdigest())

    def doom(self, mid):
        with self.lock:
            self.doomed.add(mid)

    def refuse(self, mid):
        """An APPEND answered NO: the message must not be there."""
        with self.lock:
            self.refused.add(mid)

    def count(self, name, amount=1):
        with self.lock:
            self.counts[name] = self.counts.get(name, 0) + amount

    def error(self, text):
        with self.lock:
            self.errors.append(text)

    def digest(self, mid):
        with self.lock:
            return self.bodies.get(mid, (None, None))[1]


def soak_message(mid, rng, line_end=b"\n"):
    """(header, body) of a message with a unique Message-ID; bodies of varied length."""
    body = b"".join(b"%s line %d %s\n" % (mid, n, b"z" * rng.randint(0, 60))
                    for n in range(rng.randint(1, 60)))
    header = (b"From: Soak <soak@example.org>\nSubject: soak\nMessage-ID: " + mid + b"\n")
    return header.replace(b"\n", line_end), body.replace(b"\n", line_end)


def mbox_message(header, body):
    """The mbox form an MTA appends: From_ line, header, body, separator."""
    return b"From soak@example.org Thu Dec  3 06:00:00 1992\n" + header + b"\n" + body + b"\n"


# -- IMAP clients -----------------------------------------------------------------

class ImapClient:
    """One long IMAP session on a user's INBOX, until the deadline."""

    def __init__(self, connect, room, user, number, ledger, deadline, ready, finishing,
                 expected_no):
        self.connect, self.room, self.user, self.number = connect, room, user, number
        self.ledger = ledger
        self.deadline, self.ready, self.finishing = deadline, ready, finishing
        self.expected_no = expected_no
        self.rng = random.Random("%s-%d" % (user, number))
        self.own = []           # UIDs of messages this session appended
        self.appended = 0

    def run(self):
        client = None
        try:
            client = self.connect()
            self.check(client.login(self.user, self.room.users[self.user]), "LOGIN")
            while self.check(client.select("INBOX"), "SELECT") is None:
                # Claiming new mail moves data, which waits while POP3 holds the maildrop.
                time.sleep(self.rng.uniform(*CLIENT_PAUSE))
            for step in self.WARM_UP:  # memory is sampled after these first commands
                step(self, client)
            self.ready.wait(GUARD_SECONDS)
            while time.monotonic() < self.deadline:
                time.sleep(self.rng.uniform(*CLIENT_PAUSE))
                self.rng.choice(self.STEPS)(self, client)
            self.finishing.wait(GUARD_SECONDS)
            self.check(client.logout(), "LOGOUT", "BYE")
        except Exception as error:  # a protocol error ends this client, and is counted
            self.ledger.error("%s/%d: %s: %s" % (self.user, self.number, type(error).__name__,
                                                 error))
            self.ready.abort()
            self.finishing.abort()
        finally:
            if client is not None:
                hang_up(client)

    def check(self, reply, what, want="OK"):
        status, data = reply
        self.ledger.count("imap commands")
        if status == want:
            return data
        for code in self.expected_no:
            if status == "NO" and data and code in data[-1]:
                self.ledger.count("expected NO %s" % code.decode())
                return None
        raise AssertionError("%s answered %s %r" % (what, status, data))

    def noop(self, client):
        self.check(client.noop(), "NOOP")

    def fetch(self, client):
        """FETCH flags of all, then one random body checked against the ledger."""
        data = self.check(client.uid("FETCH", "1:*", "(FLAGS RFC822.SIZE)"), "FETCH")
        uids = [int(match.group(1)) for match in
                (UID_ITEM.search(item) for item in data or [] if isinstance(item, bytes))
                if match]
        if not uids:
            return
        uid = self.rng.choice(uids)
        data = self.check(client.uid("FETCH", str(uid), "(BODY.PEEK[HEADER.FIELDS (MESSAGE-ID)] "
                                     "BODY.PEEK[TEXT])"), "FETCH BODY")
        parts = [item[1] for item in data or [] if isinstance(item, tuple)]
        if len(parts) == 2:
            self.verify(parts[0], parts[1].replace(b"\r\n", b"\n"))

    def verify(self, header, body):
        mid = header.split(b":", 1)[1].strip() if b":" in header else None
        want = self.ledger.digest(mid)
        self.ledger.count("bodies checked")
        if want is None or hashlib.sha256(body).hexdigest() != want:
            self.ledger.error("%s: body of %r read back wrong" % (self.user, mid))

    def store(self, client):
        flag = self.rng.choice(["\\Flagged", "\\Seen", "\\Answered"])
        self.check(client.uid("STORE", "1:*", self.rng.choice(["+FLAGS", "-FLAGS"]),
                              "(%s)" % flag), "STORE")

    def append(self, client):
        self.appended += 1
        mid = b"<append-%s-%d-%d@example.org>" % (self.user.encode(), self.number, self.appended)
        header, body = soak_message(mid, self.rng, b"\r\n")
        self.ledger.add(self.user, mid, body.replace(b"\r\n", b"\n"))
        data = self.check(client.append("INBOX", None, None, header + b"\r\n" + body), "APPEND")
        if data is None:
            self.ledger.refuse(mid)
            return
        uid = data[-1].split(b"APPENDUID ")[1].split()[1].rstrip(b"]")
        self.own.append((int(uid), mid))
        self.ledger.count("appended")

    def expunge_own(self, client):
        """STORE \\Deleted on one of this session's own messages, then UID EXPUNGE it."""
        if not self.own:
            return
        uid, mid = self.own.pop(self.rng.randrange(len(self.own)))
        self.ledger.doom(mid)
        self.check(client.uid("STORE", str(uid), "+FLAGS.SILENT", "(\\Deleted)"), "STORE")
        if self.check(client.uid("EXPUNGE", str(uid)), "UID EXPUNGE") is not None:
            self.ledger.count("expunged")

    def idle(self, client):
        """IDLE (RFC 2177) for up to a second, then DONE."""
        tag = client._new_tag()
        client.send(tag + b" IDLE\r\n")
        line = client.readline()
        if not line.startswith(b"+"):
            raise AssertionError("IDLE answered %r" % line)
        time.sleep(self.rng.uniform(0, 1))
        client.send(b"DONE\r\n")
        client.tagged_commands[tag] = None
        self.check(client._command_complete("IDLE", tag), "IDLE")
        self.ledger.count("idles")

    STEPS = [noop, fetch, fetch, store, append, append, expunge_own, idle]
    WARM_UP = [fetch, store, append, noop]


# -- POP3 clients ------------------------------------------------------------------

class Pop3Client:
    """Logs in, reads a random message (checked), maybe DELEs it, QUITs; again until time is up."""

    def __init__(self, connect, room, user, number, ledger, deadline):
        self.connect, self.room, self.user, self.number = connect, room, user, number
        self.ledger, self.deadline = ledger, deadline
        self.rng = random.Random("pop-%s-%d" % (user, number))

    def run(self):
        while time.monotonic() < self.deadline:
            time.sleep(self.rng.uniform(*CLIENT_PAUSE))
            try:
                self.session()
            except Exception as error:
                self.ledger.error("%s/pop%d: %s: %s" % (self.user, self.number,
                                                         type(error).__name__, error))
                return

    def session(self):
        pop = self.connect()
        try:
            pop.user(self.user)
            try:
                pop.pass_(self.room.users[self.user])
            except poplib.error_proto as refusal:
                if not refusal.args[0].startswith(b"-ERR [IN-USE]"):
                    raise
                self.ledger.count("expected -ERR [IN-USE]")
                return
            self.ledger.count("pop3 logins")
            count = pop.stat()[0]
            if count:
                self.read_one(pop, self.rng.randint(1, count))
            pop.quit()
        finally:
            hang_up(pop)

    def read_one(self, pop, number):
        lines = pop.retr(number)[1]
        blank = lines.index(b"")
        header, body = lines[:blank], b"".join(line + b"\n" for line in lines[blank + 1:])
        mid = next((line.split(b":", 1)[1].strip() for line in header
                    if line.lower().startswith(b"message-id:")), None)
        want = self.ledger.digest(mid)
        self.ledger.count("bodies checked")
        if want is None or hashlib.sha256(body).hexdigest() != want:
            self.ledger.error("%s: POP3 RETR of %r read back wrong" % (self.user, mid))
        if self.rng.random() < 0.3:
            self.ledger.doom(mid)
            pop.dele(number)
            self.ledger.count("pop3 deletions")


# -- deliveries ---------------------------------------------------------------------

def deliverer(room, ledger, users, stop, rcfiles, seed):
    """Deliver to random users until stopped: procmail when there, else a locked append."""
    rng = random.Random(seed)
    number = 0
    while not stop.is_set():
        time.sleep(rng.uniform(*DELIVERY_PAUSE))
        number += 1
        user = rng.choice(users)
        mid = b"<delivery-%d-%d@example.org>" % (seed, number)
        header, body = soak_message(mid, rng)
        ledger.add(user, mid, body)
        if user in rcfiles and rng.random() < 0.5:
            status = procmail_deliver(rcfiles[user], header + b"\n" + body)
            if status != 0:
                ledger.error("procmail exited %d for %s" % (status, user))
            ledger.count("procmail deliveries")
        else:
            room.deliver(user, mbox_message(header, body))
            ledger.count("locked deliveries" if room.driver_of(user).name == "mbox"
                         else "Maildir deliveries")


# -- the test --------------------------------------------------------------------------

def initial_spools(room, ledger, users):
    for user in users:
        rng = random.Random(user)
        parts = []
        for number in range(1, INITIAL_MESSAGES + 1):
            mid = b"<initial-%s-%d@example.org>" % (user.encode(), number)
            header, body = soak_message(mid, rng)
            ledger.add(user, mid, body)
            parts.append(mbox_message(header, body))
        room.write_inbox(user, parts)


def read_inbox(room, user, index_dir):
    """(entries, problems of the driver's own metadata) of a user's INBOX."""
    config = Config({"mail_location": room.location_of(user), "index_dir": index_dir})
    store = open_store(Principal(user, os.getuid(), os.getgid(), str(room.home(user))), config)
    mailbox = store.open_inbox(readonly=True)
    try:
        entries = read_entries(mailbox)
    finally:
        mailbox.close()
    return entries, room.driver_of(user).consistency(str(room.inbox(user)), entries)


def check_inboxes(room, ledger, users, index_dir):
    """(checked, lost, duplicated, damaged) over every user's INBOX, with details."""
    checked = lost = duplicated = damaged = 0
    details = []
    for user in users:
        entries, problems = read_inbox(room, user, index_dir)
        found = by_message_id(entries)
        damaged += len(problems)
        details += ["%s: %s" % (user, problem) for problem in problems]
        for mid, (owner, digest) in ledger.bodies.items():
            if owner != user:
                continue
            copies = found.pop(mid, [])
            checked += 1
            if mid in ledger.refused and copies:
                duplicated += 1  # the client, told NO, appends it again
                details.append("APPEND answered NO, yet stored: %s" % mid)
            elif mid in ledger.refused:
                continue
            elif len(copies) > 1:
                duplicated += 1
                details.append("duplicated %s" % mid)
            elif not copies and mid not in ledger.doomed:
                lost += 1
                details.append("lost %s" % mid)
            elif copies and copies[0].digest != digest:
                damaged += 1
                details.append("damaged %s" % mid)
        if found:
            damaged += len(found)
            details.append("unexpected in %s: %r" % (user, list(found)[:3]))
    return (checked, lost, duplicated, damaged), details


def server_processes(room):
    """PIDs of imapd/ipop3d processes serving this room (their command line names its config)."""
    found = []
    markers = {str(room.config).encode(), str(room.maildir_config).encode()}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open("/proc/%s/cmdline" % entry, "rb") as handle:
                words = handle.read().split(b"\0")
        except OSError:
            continue
        if markers & set(words) and not any(w.endswith(b"server.listener") for w in words) and \
                b"-m" not in words:
            found.append(int(entry))
    return found


class SoakRun:
    """The two listeners, the 50 clients and the deliverers of one soak, and what they saw."""

    def __init__(self, room, ledger, users, seconds, tmp_path):
        self.room, self.ledger, self.users, self.seconds = room, ledger, users, seconds
        self.tmp_path = tmp_path
        self.imap_specs = [(user, n) for user, count in IMAP_SHARED.items()
                           for n in range(count)]
        self.imap_specs += [(user, n) for user in MIXED_USERS for n in range(2)]
        self.start_rss, self.end_rss, self.hung, self.left = {}, {}, [], []

    def run(self):
        """Start everything, sample the imapd RSS after warm-up and before LOGOUT, stop."""
        listeners = {(server, config): self.room.start_listener(server, config)
                     for server in (IMAPD, IPOP3D)
                     for config in (self.room.config, self.room.maildir_config)}
        deadline = time.monotonic() + self.seconds
        ready = threading.Barrier(len(self.imap_specs) + 1)
        # The end RSS is sampled by the barrier's action, while every client still waits
        # to send LOGOUT (sampled after the barrier, a session might already be gone).
        finishing = threading.Barrier(len(self.imap_specs) + 1, action=self.sample_end_rss)
        clients = self.clients(listeners, deadline, ready, finishing)
        stop = threading.Event()
        deliverers = [threading.Thread(target=deliverer, daemon=True, args=(
            self.room, self.ledger, self.users, stop, self.procmail_rcfiles(), n))
            for n in range(2)]
        for thread in clients + deliverers:
            thread.start()
        try:
            ready.wait(GUARD_SECONDS)
            self.start_rss = {pid: rss_kib(pid) for (server, _), listener in listeners.items()
                              if server == IMAPD for pid in listener.sessions()}
            finishing.wait(GUARD_SECONDS + self.seconds)
        except threading.BrokenBarrierError:
            pass  # a client failed; its error is in the ledger
        for thread in clients:
            thread.join(GUARD_SECONDS + self.seconds)
        stop.set()
        for thread in deliverers:
            thread.join(GUARD_SECONDS)
        self.hung = [thread.name for thread in clients + deliverers if thread.is_alive()]
        for listener in listeners.values():
            listener.stop()
        self.left = wait_for_exit(self.room)

    def sample_end_rss(self):
        self.end_rss = {pid: rss_kib(pid) for pid in self.start_rss}

    def clients(self, listeners, deadline, ready, finishing):
        """The 50 client threads, each connecting to the listener serving its user's driver."""
        def connector(client_class, server, user):
            port = listeners[server, self.room.config_of(user)].port
            return lambda: client_class("127.0.0.1", port, timeout=GUARD_SECONDS)

        threads = [threading.Thread(daemon=True, target=ImapClient(
            connector(imaplib.IMAP4, IMAPD, user), self.room, user, n, self.ledger, deadline,
            ready, finishing, self.expected_no(user)).run) for user, n in self.imap_specs]
        threads += [threading.Thread(daemon=True, target=Pop3Client(
            connector(poplib.POP3, IPOP3D, user), self.room, user, n, self.ledger,
            deadline).run)
            for user in MIXED_USERS + POP3_USERS for n in range(2 if user in POP3_USERS else 1)]
        assert len(threads) == 50
        return threads

    def expected_no(self, user):
        """The NO response codes a session of this user may get (see INUSE, EXPUNGEISSUED)."""
        return ((INUSE,) if user in MIXED_USERS else ()) + (
            (EXPUNGEISSUED,) if self.room.driver_of(user).name == "maildir" else ())

    def procmail_rcfiles(self):
        """Half the users get some of their mail through procmail (when installed)."""
        rcfiles = {}
        for user in self.users[::2] if procmail_available() else []:
            directory = self.tmp_path / ("procmail-%s" % user)
            directory.mkdir(exist_ok=True)
            rcfiles[user] = write_procmailrc(directory, self.room.driver_of(user).procmail_target(
                str(self.room.inbox(user))))
        return rcfiles

    def growth(self):
        """end/start RSS of each imapd sampled both times."""
        return [self.end_rss[pid] / self.start_rss[pid] for pid in self.start_rss
                if self.start_rss[pid] and self.end_rss.get(pid)]


def test_soak_50_connections_with_deliveries(mail_room, tmp_path, capsys):
    """Fifty concurrent IMAP and POP3 connections and continuous deliveries for the soak time:
    no protocol error, no message lost or duplicated or damaged, no server process left,
    and no long-lived server's memory growing past MEMORY_GROWTH_LIMIT times its start."""
    seconds = soak_seconds()
    users = sorted(IMAP_SHARED) + MIXED_USERS + POP3_USERS
    room = mail_room(users, maildir_users=MAILDIR_USERS, mbox_lock_timeout=60)
    ledger = Ledger()
    initial_spools(room, ledger, users)
    soak = SoakRun(room, ledger, users, seconds, tmp_path)
    soak.run()
    totals, details = check_inboxes(room, ledger, users, str(tmp_path / "check-index"))
    growth = soak.growth()
    with capsys.disabled():
        print("\nsoak %.0f s, 50 connections (%d IMAP, %d POP3), %d users (%d on Maildir): %s; "
              "messages checked: %d, lost: %d, duplicated: %d, damaged: %d; protocol errors: %d;"
              " server processes left: %d; imapd RSS median %.1f -> %.1f MiB, max growth %.2fx "
              "over %d sessions" % (
                  seconds, len(soak.imap_specs), 50 - len(soak.imap_specs), len(users),
                  len(MAILDIR_USERS),
                  ", ".join("%s %d" % item for item in sorted(ledger.counts.items())),
                  *totals, len(ledger.errors), len(soak.left),
                  median_mib(soak.start_rss.values()), median_mib(soak.end_rss.values()),
                  max(growth, default=0), len(growth)))
    assert not soak.hung, soak.hung
    assert ledger.errors == [], ledger.errors[:10]
    assert totals[1:] == (0, 0, 0), details[:10]
    assert soak.left == []
    assert len(growth) == len(soak.imap_specs) and max(growth) < MEMORY_GROWTH_LIMIT, (
        len(soak.start_rss), {pid: (rss, soak.end_rss.get(pid))
                              for pid, rss in soak.start_rss.items()
                              if not rss or not soak.end_rss.get(pid)})
    assert ledger.counts.get("appended") and ledger.counts.get("pop3 logins")


def median_mib(kib_values):
    values = [v for v in kib_values if v]
    return statistics.median(values) / 1024 if values else 0.0


def wait_for_exit(room):
    """Server processes still there once every client is gone (after a grace period)."""
    for _ in range(int(GUARD_SECONDS / 0.1)):
        left = server_processes(room)
        if not left:
            return []
        time.sleep(0.1)
    return left
