"""`kill -9` of a real imapd or ipop3d in the middle of a command loses nothing.

Each trial starts the server as inetd does (a socket pair on fd 0/1), logs in
a virtual user, sends one command that writes the mailbox (UID STORE, EXPUNGE,
CLOSE, APPEND, UID COPY, UID MOVE, or POP3 DELE then QUIT) and kills the
server with SIGKILL after a random delay within that command's usual
duration.  The next session (a new imapd doing SELECT, as the user's next
login would) must open both mailboxes at once although the dead server may
have left its dotlock; then the files are read back and every message is
checked as in the other crash tests.  Each driver (mbox, Maildir) gets its
own trials.

PYIMAPD_SERVER_CRASH_TRIALS sets the number of trials per driver (default 30).
"""

import os
import random
import shutil
import time
from pathlib import Path

from auth import Principal
from faultdrivers import Snapshot, taken_at_once
from faultlib import Tally, by_message_id, generated_message, journals, read_entries
from faultroom import hang_up, terminate
from mailstore import open_store
from server.config import Config

DEFAULT_TRIALS = 30
# How long the next session waits for a lock: one left by the dead server must go at once.
LOCK_TIMEOUT = 5
MESSAGES = 30
FOLDER = "Archive"
USER = "alice"
APPENDED_ID = b"<appended-by-imap@example.org>"
APPENDED = (b"From: Client <client@example.org>\r\nSubject: appended\r\nMessage-ID: "
            + APPENDED_ID + b"\r\n\r\nappended while the server was killed\r\n")


def trials_wanted():
    return int(os.environ.get("PYIMAPD_SERVER_CRASH_TRIALS", str(DEFAULT_TRIALS)))


# What each command does: the IMAP lines sent after SELECT INBOX (and "setup"
# lines before them, answered before the kill window), and how the outcome is
# judged: "expunged" UIDs vanish all together or not at all,
# "copied" UIDs appear in the folder all together or not at all, "appended"
# is absent or intact, "moved" UIDs are in INBOX or in the folder (or both,
# if the kill came between MOVE's copy and its expunge), never in neither.
COMMANDS = {
    "store": {"lines": [b"UID STORE 1:* +FLAGS (\\Flagged $Label1)"]},
    "expunge": {"setup": [b"UID STORE 3,7,20:25 +FLAGS (\\Deleted)"], "lines": [b"EXPUNGE"],
                "expunged": [3, 7, 20, 21, 22, 23, 24, 25]},
    "close": {"setup": [b"UID STORE 1,2,30 +FLAGS (\\Deleted)"], "lines": [b"CLOSE"],
              "expunged": [1, 2, 30]},
    "append": {"append": True},
    "copy": {"lines": [b"UID COPY 2,4,6:9 " + FOLDER.encode()], "copied": [2, 4, 6, 7, 8, 9]},
    "move": {"lines": [b"UID MOVE 5,10:12 " + FOLDER.encode()], "moved": [5, 10, 11, 12]},
    "pop3-quit": {"pop3": True, "expunged": [2, 3, 29]},  # RETR 1, DELE each, QUIT
}


class Template:
    """The users' starting mailboxes: INBOX with UIDs and flags set by a first session."""

    def __init__(self, room):
        rng = random.Random(MESSAGES)
        room.write_inbox(USER, [generated_message(i, rng, b"inbox")
                                for i in range(1, MESSAGES + 1)])
        client = login(room)
        client.create(FOLDER)
        client.select("INBOX")
        client.uid("STORE", "1:10", "+FLAGS", "(\\Seen)")
        client.uid("STORE", "5", "+FLAGS", "(Junk)")
        client.logout()
        client.server.wait()
        self.snapshot = Snapshot(room.driver, room.driver.roots(room.inbox(USER),
                                                                room.folder(USER, FOLDER)))
        self.entries = read_mailbox(room, b"INBOX")
        assert [e.uid for e in self.entries] == list(range(1, MESSAGES + 1))

    def install(self, room):
        """Put the starting files back (an mbox in place, same inode), and no index or journal."""
        self.snapshot.restore(owner=(room.uid, room.gid))
        shutil.rmtree(room.home(USER) / ".pyimapd", ignore_errors=True)


def login(room):
    client = room.imap_session()
    client.login(USER, room.users[USER])
    return client


def read_mailbox(room, name, index_dir=None):
    """Entries of a user's mailbox, read here with a fresh index directory (as root)."""
    home = str(room.home(USER))
    config = Config({"mail_location": room.settings["mail_location"],
                     "index_dir": index_dir or str(room.root / "scan-index")})
    shutil.rmtree(config.index_dir, ignore_errors=True)
    store = open_store(Principal(USER, os.getuid(), os.getgid(), home), config)
    mailbox = store.open_mailbox(name)
    try:
        return read_entries(mailbox)
    finally:
        mailbox.close()
        shutil.rmtree(config.index_dir, ignore_errors=True)


def start_command(room, kind):
    """Log in, prepare, and send the command without waiting; (client, server process)."""
    spec = COMMANDS[kind]
    if "pop3" in spec:
        client = room.pop3_session()
        client.user(USER)
        client.pass_(room.users[USER])
        client.retr(1)
        for number in spec["expunged"]:
            client.dele(number)
        client.sock.sendall(b"QUIT\r\n")
        return client, client.server
    client = login(room)
    client.select("INBOX")
    for line in spec.get("setup", []):
        tag = client._new_tag()
        client.send(tag + b" " + line + b"\r\n")
        client._command_complete(line.split()[1].decode(), tag)
    if spec.get("append"):
        client.send(b"A1 APPEND INBOX (\\Flagged) {%d+}\r\n" % len(APPENDED) + APPENDED
                    + b"\r\n")
    for line in spec.get("lines", []):
        client.send(b"A1 " + line + b"\r\n")
    return client, client.server


class Reference:
    """Each command once, undisturbed: how long it takes (to pick kill delays from), and
    what an appended or copied message looks like when all went well."""

    def __init__(self, room, template):
        self.durations, self.arrivals = {}, {}
        for kind in sorted(COMMANDS):
            template.install(room)
            client, server = start_command(room, kind)
            started = time.monotonic()
            reply = b""
            while not (b"A1 OK" in reply or reply.startswith(b"+OK")):
                more = client.sock.recv(65536)
                assert more, (kind, reply)
                reply += more
            self.durations[kind] = time.monotonic() - started
            hang_up(client)
            server.wait()
            for name in (b"INBOX", FOLDER.encode()):
                for entry in read_mailbox(room, name):
                    if name == b"INBOX" and entry.mid != APPENDED_ID:
                        continue
                    self.arrivals[name, entry.mid] = (entry.header, entry.digest)


def replied(client):
    """True when the server's final answer to the command arrived before it died."""
    data = b""
    while True:
        chunk = client.sock.recv(65536)
        if not chunk:
            return b"A1 OK" in data or data.startswith(b"+OK") or b"\r\n+OK" in data
        data += chunk


def next_session_opens(tally, room, trial):
    """A new imapd SELECTs INBOX and the folder: the next login must not wait for a lock."""
    client = login(room)
    try:
        for name in ("INBOX", FOLDER):
            status, data = client.select(name)
            if status != "OK":
                lock = Path(room.driver.lock_of(str(mailbox_path(room, name.encode()))))
                tally.fail("stuck locks", trial, "SELECT %s: %s %r; %s holds %r" % (
                    name, status, data, lock.name, lock.read_bytes() if lock.exists() else None))
                lock.unlink(missing_ok=True)
        client.logout()
    finally:
        hang_up(client)
        client.server.wait()
    left = room.driver.locks([str(mailbox_path(room, name)) for name in MAILBOXES])
    for lock in left if room.driver.lazy_locks else []:
        # Maildir's uidlist lock is only taken for new mail: the next one to need it.
        if taken_at_once(lock, LOCK_TIMEOUT):
            tally.count("dead server's lock left, taken at once")
        else:
            tally.fail("stuck locks", trial, "%s stays" % lock)


MAILBOXES = (b"INBOX", FOLDER.encode())


def mailbox_path(room, name):
    return room.inbox(USER) if name == b"INBOX" else room.folder(USER, name.decode())


def check(tally, room, template, reference, kind, trial):
    """Count lost, duplicated and damaged messages after one kill."""
    spec = COMMANDS[kind]
    inbox_entries = read_mailbox(room, b"INBOX")
    folder_entries = read_mailbox(room, FOLDER.encode())
    for name, entries in zip(MAILBOXES, (inbox_entries, folder_entries)):
        for problem in room.driver.consistency(str(mailbox_path(room, name)), entries):
            tally.fail("damaged", trial, "%s: %s" % (name.decode(), problem))
    inbox, folder = by_message_id(inbox_entries), by_message_id(folder_entries)
    in_folder = set(folder)
    originals = {e.uid: e for e in template.entries}
    expunged = {originals[u].mid for u in spec.get("expunged", [])}
    moved = {originals[u].mid for u in spec.get("moved", [])}
    gone = set()
    for entry in template.entries:
        copies = inbox.pop(entry.mid, [])
        tally.checked += 1
        if len(copies) > 1:
            tally.fail("duplicated", trial, entry.mid.decode())
        elif copies and copies[0].text_key() != entry.text_key():
            tally.fail("damaged", trial, "%s (uid %d)" % (entry.mid.decode(), copies[0].uid))
        elif not copies and entry.mid in moved and entry.mid not in in_folder:
            tally.fail("lost", trial, "%s: moved to neither mailbox" % entry.mid.decode())
        elif not copies and entry.mid not in expunged | moved:
            tally.fail("lost", trial, entry.mid.decode())
        gone.update([entry.mid] if not copies else [])
    if gone & expunged and not expunged <= gone and room.driver.atomic_groups:
        tally.fail("damaged", trial, "expunge not atomic: %d of %d gone"
                   % (len(gone & expunged), len(expunged)))
    elif gone & expunged and not expunged <= gone:
        tally.count("partial expunge, each message whole")
    arrivals = [(b"INBOX", APPENDED_ID)] if spec.get("append") else []
    arrivals += [(FOLDER.encode(), originals[u].mid)
                 for u in spec.get("copied", []) + spec.get("moved", [])]
    check_arrivals(tally, reference, arrivals, {b"INBOX": inbox, FOLDER.encode(): folder},
                   trial, room.driver.atomic_groups)


def check_arrivals(tally, reference, arrivals, mailboxes, trial, atomic):
    """Appended or copied messages: absent or intact, all or none; nothing else appeared."""
    present = []
    for name, mid in arrivals:
        copies = mailboxes[name].pop(mid, [])
        tally.checked += 1
        present.append(bool(copies))
        if len(copies) > 1:
            tally.fail("duplicated", trial, "%s in %s" % (mid.decode(), name.decode()))
        elif copies and (copies[0].header, copies[0].digest) != reference.arrivals[name, mid]:
            tally.fail("damaged", trial, "%s in %s" % (mid.decode(), name.decode()))
    if len(set(present)) > 1 and atomic:
        tally.fail("partial copy", trial, "%d of %d messages arrived" % (sum(present),
                                                                       len(present)))
    elif len(set(present)) > 1:
        tally.count("partial copy, each message whole")
    for name, left in mailboxes.items():
        if left:
            tally.fail("damaged", trial, "unexpected messages in %s: %r"
                       % (name.decode(), list(left)[:3]))


def test_kill_9_of_a_real_server_mid_command_loses_nothing(mail_room, capsys, driver):
    """Real imapd and ipop3d processes killed at random moments of STORE, EXPUNGE, CLOSE,
    APPEND, COPY, MOVE and POP3 QUIT lose, duplicate and damage nothing, and the next
    session opens the mailboxes at once (on mbox and on Maildir)."""
    room = mail_room([USER], driver=driver, mbox_lock_timeout=LOCK_TIMEOUT)
    template = Template(room)
    reference = Reference(room, template)
    durations = reference.durations
    seed = int(os.environ.get("PYIMAPD_CRASH_SEED", str(int(time.time()))))
    rng = random.Random(seed)
    tally = Tally("%s server kill trials" % driver.name)
    for trial in range(trials_wanted()):
        kind = rng.choice(sorted(COMMANDS))
        template.install(room)
        client, server = start_command(room, kind)
        delay = rng.uniform(0, durations[kind] * 1.5)
        time.sleep(delay)
        terminate(server)
        answered = replied(client)
        tally.count("answered before the kill", answered)
        hang_up(client)
        label = "%d (%s killed after %.4f s)" % (trial, kind, delay)
        next_session_opens(tally, room, label)
        tally.trials += 1
        check(tally, room, template, reference, kind, label)
        if journals(str(room.home(USER) / ".pyimapd")):
            tally.fail("damaged", label, "journal left after the next session")
    with capsys.disabled():
        print("\n%s (seed %d; usual duration: %s)" % (
            tally.summary(), seed,
            ", ".join("%s %.3f s" % item for item in sorted(durations.items()))))
    assert tally.trials == trials_wanted()
    assert tally.problems() == (0, 0, 0), "\n".join(tally.failures)
    assert not {kind for kind in tally.extra if "each message whole" not in kind} - {
        "answered before the kill", "dead server's lock left, taken at once"}, \
        "\n".join(tally.failures)
