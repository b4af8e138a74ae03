"""Locks: a server killed while holding the dotlock does not lock the user out, and
servers and MTAs taking the mbox locks in any order never deadlock.

The dotlock (`USER.lock` in the spool directory) outlives a process killed
with SIGKILL.  pyimapd writes `pid:host` into the locks it makes, so the next
pyimapd process on the same host can tell that the owner is dead and remove
the lock at once, instead of waiting for it to go stale (5 minutes), during
which both the user's sessions and procmail's deliveries would wait.

On Maildir the lock is `dovecot-uidlist.lock`, held while new mail gets its
UIDs (and `dovecot-keywords.lock` while a keyword gets its letter); the
tests that kill a lock holder run on both drivers (the `driver` fixture).
"""

import fcntl
import itertools
import json
import os
import random
import signal
import socket
import subprocess
import threading
import time

import pytest

from faultlib import (GUARD_SECONDS, by_message_id, generated_message, procmail_available,
                      procmail_deliver, procmail_message, python_child, read_entries,
                      write_procmailrc)
from faultroom import hang_up, separated
from auth import Principal
from mailstore import open_store
from server.config import Config

USER = "alice"
# Big enough that expunging the first message keeps the lock for a while
# (journal and rewrite of the whole file), so that we can see the lock.
BIG_MESSAGES = 4000
# The next session's lock wait: a lock left by a dead pyimapd must be cleared
# at once, and one left by a live peer would be waited for this long.
LOCK_TIMEOUT = 5
CATCH_ATTEMPTS = 5


def big_room(mail_room, driver="mbox"):
    """A user with BIG_MESSAGES in INBOX, numbered by a first session (mbox; a Maildir's
    stay new and unnumbered: numbering them is what holds its lock)."""
    room = mail_room([USER], driver=driver, mbox_lock_timeout=LOCK_TIMEOUT)
    rng = random.Random(BIG_MESSAGES)
    room.write_inbox(USER, [generated_message(i, rng, b"big")
                            for i in range(1, BIG_MESSAGES + 1)])
    if room.driver.name == "mbox":
        client = room.imap_session()
        client.login(USER, room.users[USER])
        client.select("INBOX")
        client.logout()
        client.server.wait()
    return room


def lock_path(room):
    return room.driver.lock_of(str(room.inbox(USER)))


def send_locking_command(room, client):
    """Send, without waiting, a command that holds the INBOX lock for a while: EXPUNGE of
    message 1 (mbox: the whole file is rewritten), or SELECT numbering BIG_MESSAGES new
    files (Maildir; dovecot-uidlist is removed first, so that each attempt numbers all)."""
    if room.driver.name == "mbox":
        client.select("INBOX")
        client.uid("STORE", "1", "+FLAGS", "(\\Deleted)")
        client.send(b"A1 EXPUNGE\r\n")
    else:
        (room.inbox(USER) / "dovecot-uidlist").unlink(missing_ok=True)
        client.send(b"A1 SELECT INBOX\r\n")


def kill_while_locked(room, server, lock_owner=None):
    """SIGKILL `server` as soon as the spool's dotlock names it; True if caught holding it."""
    owner = b"%d:%s\n" % (lock_owner or server.pid, socket.gethostname().encode())
    while server.poll() is None:
        try:
            with open(lock_path(room), "rb") as handle:
                if handle.read() == owner:
                    server.send_signal(signal.SIGKILL)
                    server.wait(GUARD_SECONDS)
                    return True
        except FileNotFoundError:
            pass
        time.sleep(0.0005)
    return False


def next_imap_session_writes(room):
    """A new imapd: SELECT INBOX (which takes the write lock) and a flag change; the replies."""
    client = room.imap_session()
    try:
        client.login(USER, room.users[USER])
        status, data = client.select("INBOX")
        if status != "OK":
            return [status, data]
        replies = [status, client.uid("STORE", "5", "+FLAGS", "(\\Seen)")[0]]
        client.logout()
        return replies
    finally:
        hang_up(client)
        client.server.wait()


def deliver_with_procmail(room, tmp_path, mid):
    if not procmail_available():
        return 0
    target = room.driver.procmail_target(str(room.inbox(USER)))
    return procmail_deliver(write_procmailrc(tmp_path, target), procmail_message(mid))


def test_imapd_killed_holding_the_dotlock_does_not_lock_the_user_out(mail_room, tmp_path,
                                                                      driver):
    """An imapd killed by SIGKILL during EXPUNGE (mbox) or while numbering new mail (Maildir),
    while its dotlock names it, leaves that lock behind; the next imapd clears it at once
    (SELECT and STORE succeed, no IN-USE wait), procmail then delivers, and the expunge
    happened entirely or not at all."""
    room = big_room(mail_room, driver)
    caught = 0
    for _ in range(CATCH_ATTEMPTS):
        client = room.imap_session()
        client.login(USER, room.users[USER])
        send_locking_command(room, client)
        caught = kill_while_locked(room, client.server)
        hang_up(client)
        if caught:
            break
    assert caught, "the EXPUNGE never held the dotlock long enough to be seen"
    assert os.path.exists(lock_path(room))
    assert next_imap_session_writes(room) == ["OK", "OK"]
    assert not os.path.exists(lock_path(room))
    assert deliver_with_procmail(room, tmp_path, b"<after-kill@example.org>") == 0
    mids = [e.mid for e in read_spool(room)]
    assert len(set(mids)) == len(mids)
    everything = {b"<big-%d@example.org>" % i for i in range(1, BIG_MESSAGES + 1)}
    expunged = everything - {b"<big-1@example.org>"}
    assert set(mids) - {b"<after-kill@example.org>"} in (
        (everything, expunged) if driver.name == "mbox" else (everything,))


def test_ipop3d_killed_holding_the_dotlock_does_not_lock_the_user_out(mail_room):
    """An ipop3d killed during QUIT while its dotlock names it leaves that lock behind; the
    next POP3 session logs in and its own QUIT deletes what it was asked to."""
    room = big_room(mail_room)
    caught = 0
    for _ in range(CATCH_ATTEMPTS):
        pop = room.pop3_session()
        pop.user(USER)
        pop.pass_(room.users[USER])
        pop.dele(1)
        pop.sock.sendall(b"QUIT\r\n")
        caught = kill_while_locked(room, pop.server)
        hang_up(pop)
        if caught:
            break
    assert caught, "the QUIT never held the dotlock long enough to be seen"
    assert os.path.exists(lock_path(room))
    pop = room.pop3_session()
    pop.user(USER)
    pop.pass_(room.users[USER])
    count = pop.stat()[0]
    pop.dele(count)
    assert pop.quit().startswith(b"+OK")
    pop.server.wait()
    assert not os.path.exists(lock_path(room))
    assert len(read_spool(room)) == count - 1


@pytest.mark.parametrize("phase", ["before", "torn"])
def test_a_dotlock_killed_before_its_owner_was_written_does_not_lock_the_user_out(
        mail_room, tmp_path, phase, driver):
    """A pyimapd process killed while writing `pid:host` into its dotlock (before the write,
    or half-way through it) must not lock the user out: the lock is written unnamed and
    linked into place only when complete, so the kill leaves no lock at all, and the
    next imapd's SELECT and STORE succeed without an IN-USE wait.  (Maildir: the lock of
    dovecot-uidlist, taken to number a new message.)"""
    room = mail_room([USER], driver=driver, mbox_lock_timeout=LOCK_TIMEOUT)
    rng = random.Random(7)
    room.write_inbox(USER, [generated_message(i, rng, b"small") for i in range(1, 11)])
    # mbox: a STORE takes the dotlock; Maildir: opening INBOX numbers its new files.
    plan = {"op": "store", "uids": [1, 2], "mode": "+", "bits": 4, "keywords": []} \
        if driver.name == "mbox" else {"op": "scan"}
    plan.update({"home": str(room.home(USER)), "location": room.location_of(USER),
                 "index_dir": str(room.home(USER) / ".pyimapd"),
                 # os.write call 1 is the dotlock's content.
                 "kill_at": 1, "phase": phase, "hooked": ["write"]})
    plan_path = tmp_path / "plan.json"
    plan_path.write_text(json.dumps(plan))
    child = python_child("ops_child.py", plan_path, stdout=subprocess.DEVNULL)
    assert child.wait(GUARD_SECONDS) == -signal.SIGKILL
    assert not os.path.lexists(lock_path(room)), "a half-written dotlock was left"
    # The child ran as root (for its kill hooks) and made the index directory;
    # the servers run as the user, who must own it.
    give_to_user(room, room.home(USER))
    assert next_imap_session_writes(room) == ["OK", "OK"]


def give_to_user(room, top):
    for directory, _, files in os.walk(top):
        for path in [directory] + [os.path.join(directory, name) for name in files]:
            os.chown(path, room.uid, room.gid)


def read_spool(room):
    """The user's INBOX read here (as root) with a throw-away index directory."""
    index_dir = str(room.root / ("check-%d" % time.monotonic_ns()))
    config = Config({"mail_location": room.location_of(USER), "index_dir": index_dir})
    store = open_store(Principal(USER, os.getuid(), os.getgid(), str(room.home(USER))), config)
    mailbox = store.open_inbox(readonly=True)
    try:
        return read_entries(mailbox)
    finally:
        mailbox.close()


# -- no deadlock ---------------------------------------------------------------

LOCK_KINDS = ("dotlock", "fcntl", "flock")
SESSION_COMMANDS = 15
# Rounds of deliveries (6 orders and procmail each) while the sessions run; a
# guard against a hang, far above what the sessions need.
MAX_ROUNDS = 500
# Pacing, not a measurement: real MTAs start a process per delivery, and
# procmail keeps its locks a whole second after each delivery to a mailbox
# read during that second (so that the new mail shows as unread).  Without
# gaps the mailbox would be locked nearly all the time and a session would
# wait out its lock timeout instead of deadlocking or not.
DELIVERY_GAP = 0.02
PROCMAIL_EVERY = 5


def deliver_in_order(spool, data, order):
    """An MTA that takes the locks in `order`, each by blocking (retrying the dotlock),
    while holding the ones it already has, and appends data."""
    held = []
    handle = open(spool, "r+b")
    try:
        for kind in order:
            if kind == "dotlock":
                while True:
                    try:
                        held.append(os.open(str(spool) + ".lock",
                                            os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644))
                        break
                    except FileExistsError:
                        time.sleep(0.001)
            elif kind == "fcntl":
                fcntl.lockf(handle, fcntl.LOCK_EX)
            else:
                fcntl.flock(handle, fcntl.LOCK_EX)
        handle.seek(0, os.SEEK_END)
        handle.write(separated(handle, data))
        handle.flush()
    finally:
        handle.close()
        if held:
            os.close(held[0])
            os.unlink(str(spool) + ".lock")


def imap_worker(room, number, results):
    """One IMAP session changing flags, appending and expunging its own messages."""
    client = room.imap_session()
    replies = []
    try:
        client.login(USER, room.users[USER])
        replies.append(client.select("INBOX")[0])
        if replies != ["OK"]:
            return
        for step in range(SESSION_COMMANDS):
            mid = b"<session-%d-%d@example.org>" % (number, step)
            replies.append(client.append("INBOX", "(\\Deleted)" if step % 2 else None, None,
                                         b"Subject: s\r\nMessage-ID: " + mid + b"\r\n\r\nx\r\n")[0])
            replies.append(client.uid("STORE", "1:10", "+FLAGS" if step % 2 else "-FLAGS",
                                      "(\\Flagged)")[0])
            if step % 3 == 2:
                replies.append(client.expunge()[0])
        client.logout()
    finally:
        hang_up(client)
        client.server.wait()
        results[number] = replies


def test_two_servers_and_an_mta_taking_locks_in_every_order_never_deadlock(mail_room,
                                                                          tmp_path, capsys):
    """Two imapd sessions writing one INBOX while an MTA delivers taking dotlock, fcntl and
    flock in each of the six orders (blocking on each while holding the others), and
    procmail delivers too: every command is answered OK, every delivery is there once,
    and everything finishes (a deadlock would hang until the guard)."""
    room = mail_room([USER], mbox_lock_timeout=20)
    rng = random.Random(11)
    room.write_spool(USER, b"".join(generated_message(i, rng, b"base") for i in range(1, 31)))
    results = {}
    sessions = [threading.Thread(target=imap_worker, args=(room, n, results), daemon=True)
                for n in range(2)]
    for thread in sessions:
        thread.start()
    delivered = []
    rcfile = write_procmailrc(tmp_path, room.spool(USER)) if procmail_available() else None
    round_number = 0
    while round_number < 2 or any(thread.is_alive() for thread in sessions):
        round_number += 1
        assert round_number < MAX_ROUNDS, "the sessions did not finish: deadlock"
        for order in itertools.permutations(LOCK_KINDS):
            mid = b"<order-%s-%d@example.org>" % ("-".join(order).encode(), round_number)
            time.sleep(DELIVERY_GAP)
            deliver_in_order(room.spool(USER), b"From mta@example.org Thu Dec  3 06:00:00 1992\n"
                             + procmail_message(mid) + b"\n", order)
            delivered.append(mid)
        if rcfile is not None and round_number % PROCMAIL_EVERY == 1:
            mid = b"<procmail-%d@example.org>" % round_number
            assert procmail_deliver(rcfile, procmail_message(mid)) == 0
            delivered.append(mid)
    for thread in sessions:
        thread.join(GUARD_SECONDS)
    assert not any(thread.is_alive() for thread in sessions), "a session hung: deadlock"
    with capsys.disabled():
        print("\nno deadlock: 2 imapd sessions, %d commands answered, %d deliveries in %d "
              "rounds of 6 lock orders%s" % (sum(len(r) for r in results.values()),
                                            len(delivered), round_number,
                                            " and procmail" if rcfile else ""))
    assert sorted(results) == [0, 1]
    assert all(reply == "OK" for replies in results.values() for reply in replies), results
    found = by_message_id(read_spool(room))
    assert [len(found.get(mid, [])) for mid in delivered] == [1] * len(delivered)
    assert not os.path.exists(lock_path(room))
