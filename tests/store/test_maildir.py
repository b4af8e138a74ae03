"""The Maildir driver: Dovecot's file formats, layouts, procmail deliveries and kill -9.

PYIMAPD_MAILDIR_KILL_TRIALS sets the number of kill -9 trials (default 25).
"""

import os
import random
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from auth import Principal
from imap.listpattern import ListPattern
from mailstore import StoreError
from mailstore import maildir as maildir_module
from mailstore import mboxformat as fmt
from mailstore import open_store
from mailstore.location import parse_location
from mailstore.maildiruidlist import parse_uidlist
from server.config import Config

REPO = Path(__file__).resolve().parents[2]
WRITER = Path(__file__).with_name("maildir_writer.py")
PROCMAIL = "/usr/bin/procmail"


class Account:
    """A home with a Maildir and a store on it."""

    def __init__(self, tmp_path, location="maildir:~/Maildir"):
        self.home = tmp_path / "home"
        self.home.mkdir(exist_ok=True)
        self.maildir = self.home / "Maildir"
        self.principal = Principal("u", os.getuid(), os.getgid(), str(self.home))
        self.config = Config({"mail_location": location, "index_dir": str(tmp_path / "index")})

    def store(self):
        return open_store(self.principal, self.config)

    def files(self, folder=""):
        """{subdir/name: bytes} of every message file of a folder."""
        root = self.maildir / folder
        return {"%s/%s" % (sub, name): (root / sub / name).read_bytes()
                for sub in ("new", "cur") for name in os.listdir(root / sub)}

    def deliver(self, data, name):
        for part in ("tmp", "new", "cur"):
            (self.maildir / part).mkdir(parents=True, exist_ok=True)
        (self.maildir / "tmp" / name).write_bytes(data)
        os.rename(self.maildir / "tmp" / name, self.maildir / "new" / name)


@pytest.fixture
def account(tmp_path):
    return Account(tmp_path)


def message(number, marker=b"mail"):
    return (b"From: sender@example.org\nSubject: %s %d\nMessage-ID: <%s-%d@example.org>\n\n"
            b"body %d\nEND\n" % (marker, number, marker, number, number))


def message_ids(mailbox):
    """{Message-ID: uid} of every message, failing on duplicates."""
    found = {}
    for stored in mailbox.messages:
        match = re.search(rb"^Message-ID: (<[^>]*>)", mailbox.header_bytes(stored), re.M)
        assert match.group(1) not in found, "message %r appears twice" % match.group(1)
        found[match.group(1)] = stored.uid
    return found


# -- file formats ----------------------------------------------------------------


def test_flags_and_keywords_are_file_name_letters_in_order(account):
    """\\Answered R, \\Deleted T, \\Draft D, \\Flagged F, \\Seen S and keywords a-z, sorted."""
    account.deliver(message(1), "1000.P1.host")
    mailbox = account.store().open_inbox()
    try:
        mailbox.claim_recent()
        assert account.files() == {"cur/1000.P1.host:2,": message(1)}
        mailbox.store_flags([1], "+", fmt.SEEN | fmt.ANSWERED | fmt.DELETED | fmt.DRAFT
                            | fmt.FLAGGED, ("Zeta", "$Label1"))
        assert list(account.files()) == ["cur/1000.P1.host:2,DFRSTab"]
        assert (account.maildir / "dovecot-keywords").read_text() == "0 Zeta\n1 $Label1\n"
        mailbox.store_flags([1], "-", fmt.DELETED | fmt.DRAFT, ("Zeta",))
        assert list(account.files()) == ["cur/1000.P1.host:2,FRSb"]
    finally:
        mailbox.close()


def test_unknown_letters_survive_flag_changes(account):
    """P (passed) and a keyword letter without a name in dovecot-keywords are kept as they are."""
    account.deliver(message(1), "1000.P1.host")
    os.rename(account.maildir / "new" / "1000.P1.host", account.maildir / "cur" / "1000.P1.host:2,PSc")
    mailbox = account.store().open_inbox()
    try:
        assert (mailbox.messages[0].flags & ~fmt.OLD, mailbox.messages[0].keywords) == (fmt.SEEN, ())
        mailbox.store_flags([1], "+", fmt.FLAGGED, ("New",))
        assert list(account.files()) == ["cur/1000.P1.host:2,FPSac"]
    finally:
        mailbox.close()


def test_uidlist_is_dovecot_version_3_and_keeps_dovecot_fields(account):
    """A Dovecot uidlist (extension fields, appended records, stale N) is read and written back."""
    for name in ("100.A.host,S=50", "200.B.host", "300.C.host"):
        account.deliver(message(len(name)), name)
    (account.maildir / "dovecot-uidlist").write_text(
        "3 V1234 N3 G0123456789abcdef0123456789abcdef X9\n"
        "1 W99 :100.A.host,S=50\n7 :200.B.host\n")
    mailbox = account.store().open_inbox()
    try:
        assert (mailbox.uidvalidity, [m.uid for m in mailbox.messages], mailbox.uidnext) == (
            1234, [1, 7, 8], 9)
    finally:
        mailbox.close()
    written = (account.maildir / "dovecot-uidlist").read_text()
    assert written == ("3 V1234 N9 G0123456789abcdef0123456789abcdef X9\n"
                       "1 W99 :100.A.host,S=50\n7 :200.B.host\n8 :300.C.host\n")


def test_courier_version_1_uidlist_is_read(account):
    """A version 1 file (Courier's courierimapuiddb layout) keeps its UIDs and UIDVALIDITY."""
    account.deliver(message(1), "100.A.host")
    (account.maildir / "dovecot-uidlist").write_text("1 555 10\n4 100.A.host\n")
    mailbox = account.store().open_inbox()
    try:
        assert (mailbox.uidvalidity, [m.uid for m in mailbox.messages], mailbox.uidnext) == (
            555, [4], 10)
    finally:
        mailbox.close()


def test_half_written_last_record_is_not_trusted():
    """A record still being appended (no newline yet) is left out, so its file waits for the lock."""
    parsed = parse_uidlist(b"3 V1 N5 Gab\n1 :a\n2 :b")
    assert (parsed.uidvalidity, parsed.next_uid, dict(parsed.records)) == (1, 5, {"a": (1, "")})
    assert parse_uidlist(b"3 V0 N5\n") is None and parse_uidlist(b"garbage\n") is None


def test_appended_files_are_written_as_dovecot_does(account):
    """APPEND: LF line ends, S= and W= in the name, mtime = INTERNALDATE, new/ with flag letters."""
    mailbox = account.store().open_inbox()
    try:
        mailbox.append([(b"Subject: a\r\n\r\nbody\r\n", 0, (), (1700000000, 0)),
                        (b"Subject: b\r\n\r\nbody", fmt.SEEN, (), (1700000001, 0))])
    finally:
        mailbox.close()
    files = account.files()
    (new, first), (flagged, second) = sorted(files.items(), key=lambda item: ":" in item[0])
    assert (first, second) == (b"Subject: a\n\nbody\n", b"Subject: b\n\nbody\n")
    assert new.startswith("new/") and new.endswith(",S=17,W=20")
    assert flagged.startswith("new/") and flagged.endswith(",S=17,W=20:2,S")
    assert os.stat(account.maildir / new).st_mtime == 1700000000
    assert (account.maildir / "tmp").exists() and not os.listdir(account.maildir / "tmp")


def test_message_renamed_by_another_program_is_still_read(account):
    """A flag change by a mail reader renames the file; reading follows it."""
    account.deliver(message(1), "1000.P1.host")
    mailbox = account.store().open_inbox()
    try:
        os.rename(account.maildir / "new" / "1000.P1.host", account.maildir / "cur" / "1000.P1.host:2,S")
        assert mailbox.message_text(mailbox.messages[0]) == message(1)
        assert mailbox.messages[0].flags & fmt.SEEN
    finally:
        mailbox.close()


def test_message_removed_by_another_program_is_expunged_kind(account):
    """A file unlinked behind our back: reading it is StoreError EXPUNGED, refresh drops it."""
    account.deliver(message(1), "1000.P1.host")
    mailbox = account.store().open_inbox()
    try:
        stored = mailbox.messages[0]
        os.unlink(account.maildir / "new" / "1000.P1.host")
        with pytest.raises(StoreError) as refused:
            mailbox.message_text(stored)
        assert refused.value.kind == StoreError.EXPUNGED
        mailbox.refresh()
        assert mailbox.messages == []
    finally:
        mailbox.close()


# -- locations and layouts ----------------------------------------------------------


def test_location_syntax_as_dovecot():
    """maildir:~/Maildir has INBOX at the root; INBOX=, INDEX= and LAYOUT= are taken."""
    user = Principal("u", 1, 1, "/home/u")
    default = parse_location("maildir:~/Maildir", user)
    assert (default.driver, default.root, default.inbox, default.layout) == (
        "maildir", "/home/u/Maildir", "/home/u/Maildir", "maildir++")
    full = parse_location("maildir:~/Mail:INBOX=/var/mail/%u:LAYOUT=fs:INDEX=/var/idx/%u", user)
    assert (full.root, full.inbox, full.index_dir, full.layout) == (
        "/home/u/Mail", "/var/mail/u", "/var/idx/u", "fs")


def test_maildirpp_folders_and_dots(account):
    """Maildir++: `lists/python` is `.lists.python` with a maildirfolder file; `.` is refused."""
    store = account.store()
    store.create(b"lists/python")
    assert (account.maildir / ".lists.python" / "maildirfolder").exists()
    assert sorted(os.listdir(account.maildir / ".lists.python")) == [
        "cur", "dovecot-uidlist", "maildirfolder", "new", "tmp"]
    with pytest.raises(StoreError) as refused:
        store.create(b"v1.2")
    assert refused.value.kind == StoreError.NO_PERMISSION
    listed = dict(store.list(ListPattern(b"", b"*")))
    assert listed[b"lists"] == {"\\Noselect", "\\HasChildren"}
    store.rename(b"lists", b"groups")
    assert (account.maildir / ".groups.python").is_dir()


def test_fs_layout_folders(tmp_path):
    """LAYOUT=fs: `a/b` is the directory a/b; `a` holds folders only and is \\Noselect."""
    account = Account(tmp_path, "maildir:~/Maildir:LAYOUT=fs")
    store = account.store()
    store.create(b"a/b")
    assert (account.maildir / "a" / "b" / "cur").is_dir()
    assert not (account.maildir / "a" / "b" / "maildirfolder").exists()
    listed = dict(store.list(ListPattern(b"", b"*")))
    assert listed[b"a"] == {"\\Noselect", "\\HasChildren"} and b"a/b" in listed
    with pytest.raises(StoreError) as refused:
        store.open_mailbox(b"a")
    assert refused.value.kind == StoreError.NOT_SELECTABLE
    folder = store.open_mailbox(b"a/b")
    assert folder.append([(b"Subject: x\n\nx\n", 0, (), (1700000000, 0))]) == [1]
    folder.close()


# -- concurrency ---------------------------------------------------------------------


def procmail_deliver(rcfile, data):
    subprocess.run([PROCMAIL, "-m", str(rcfile)], input=data, check=True, timeout=60)


@pytest.mark.skipif(not os.path.exists(PROCMAIL), reason="procmail is not installed")
def test_concurrent_procmail_deliveries_while_sessions_work(account, tmp_path):
    """Four procmail processes deliver 100 messages while two sessions number, flag and
    expunge: every delivered message appears once, UIDs never change, nothing else is lost."""
    rcfile = tmp_path / "procmailrc"
    rcfile.write_text("LOGFILE=/dev/null\n:0\n%s/\n" % account.maildir)
    store = account.store()
    mailbox = store.open_inbox()
    other = store.open_inbox()
    mailbox.append([(message(n, b"kept"), 0, (), (1700000000, 0)) for n in range(10)])
    seen_uids = {}

    def deliver(worker):
        for number in range(25):
            procmail_deliver(rcfile, message(worker * 100 + number, b"procmail"))

    workers = [threading.Thread(target=deliver, args=(n,)) for n in range(4)]
    for worker in workers:
        worker.start()
    try:
        rounds = 0
        while any(w.is_alive() for w in workers) or rounds < 5:
            rounds += 1
            for session in (mailbox, other):
                session.refresh()
                session.claim_recent()
                for message_id, uid in message_ids(session).items():
                    assert seen_uids.setdefault(message_id, uid) == uid
            kept = [m.uid for m in mailbox.messages][:10]
            mailbox.store_flags(kept, "+" if rounds % 2 else "-", fmt.FLAGGED, ("Work",))
            other.append([(message(rounds, b"appended"), fmt.DELETED, (), (1700000000, 0))])
            other.expunge()
    finally:
        for worker in workers:
            worker.join()
        mailbox.close()
        other.close()
    final = store.open_inbox(readonly=True)
    try:
        ids = message_ids(final)
    finally:
        final.close()
    procmail_ids = {b"<procmail-%d@example.org>" % (w * 100 + n) for w in range(4) for n in range(25)}
    kept_ids = {b"<kept-%d@example.org>" % n for n in range(10)}
    assert set(ids) == procmail_ids | kept_ids
    assert all(seen_uids[i] == uid for i, uid in ids.items() if i in seen_uids)
    assert len(set(ids.values())) == len(ids)


def test_lock_of_a_killed_writer_is_taken_at_once(account):
    """A dovecot-uidlist.lock left by a dead process of this host does not hold up new mail."""
    account.deliver(message(1), "1000.P1.host")
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    lock = account.maildir / "dovecot-uidlist.lock"
    lock.write_text("%d:%s\n" % (child.pid, os.uname().nodename))
    mailbox = account.store().open_inbox()
    try:
        assert [m.uid for m in mailbox.messages] == [1]
        assert not lock.exists()
    finally:
        mailbox.close()


def test_live_uidlist_lock_is_waited_for(account, monkeypatch):
    """While another program holds dovecot-uidlist.lock, new files get no UID: IN_USE at timeout."""
    monkeypatch.setattr(maildir_module, "UIDLIST_LOCK_TIMEOUT", 0.5)
    account.deliver(message(1), "1000.P1.host")
    lock = account.maildir / "dovecot-uidlist.lock"
    lock.write_text("%d:%s\n" % (os.getpid(), os.uname().nodename))
    with pytest.raises(StoreError) as refused:
        account.store().open_inbox()
    assert refused.value.kind == StoreError.IN_USE
    assert lock.exists() and not (account.maildir / "dovecot-uidlist").exists()


def kill_trials():
    return int(os.environ.get("PYIMAPD_MAILDIR_KILL_TRIALS", "25"))


def test_kill_9_of_a_writer_loses_nothing(account):
    """A writer (append, flags, expunge, \\Recent) killed by SIGKILL at random moments, with
    procmail delivering meanwhile: every kept and delivered message survives whole, with its UID."""
    seed = int(os.environ.get("PYIMAPD_CRASH_SEED", str(int(time.time()))))
    rng = random.Random(seed)
    store = account.store()
    mailbox = store.open_inbox()
    mailbox.append([(message(n, b"keep"), 0, (), (1700000000, 0)) for n in range(20)])
    expected = message_ids(mailbox)
    mailbox.close()
    for trial in range(kill_trials()):
        writer = subprocess.Popen([sys.executable, str(WRITER), str(REPO), str(account.home),
                                   str(seed + trial)], stdout=subprocess.PIPE)
        assert writer.stdout.readline() == b"go\n"
        account.deliver(message(trial, b"delivered"), "%d.P%d.trial" % (time.time(), trial))
        time.sleep(rng.uniform(0, 0.3))
        writer.send_signal(signal.SIGKILL)
        writer.wait()
        writer.stdout.close()
        expected[b"<delivered-%d@example.org>" % trial] = None
        mailbox = store.open_inbox()
        try:
            found = message_ids(mailbox)
            for stored in mailbox.messages:
                assert mailbox.message_text(stored).endswith(b"\nEND\n"), "seed %d" % seed
        finally:
            mailbox.close()
        for message_id, uid in expected.items():
            assert message_id in found, "seed %d trial %d: %r lost" % (seed, trial, message_id)
            assert uid in (None, found[message_id]), "seed %d: UID of %r changed" % (seed, message_id)
            expected[message_id] = found[message_id]
    assert not (account.maildir / "dovecot-uidlist.lock").exists()
