"""pyimapd-mailutil across formats: mbox <-> Maildir transfer, copy and move, check on a Maildir.

The tool runs as a real command (`python -m admin`, as the user
pyimapd-test when the tests run as root). What it wrote is read back three
ways: through the store, through imapd with imaplib (UID, FLAGS,
INTERNALDATE, RFC822.SIZE, BODY.PEEK[]), and, for Maildir, through
Dovecot's own imap binary.
"""

import imaplib
import os
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
from test_dovecot_maildir import DOVECOT_IMAP, Dovecot, _unix, expected_state
from test_mailutil import (GUARD_SECONDS, KEYWORDS, Account, entries, seed_folder,
                           tool_environment, write_file)

from mailstore import StoreError
from mailstore import mboxformat as fmt

REPO = Path(__file__).resolve().parents[2]
FOLDERS = [b"INBOX", b"Sent", b"lists/python", b"&AMQ-rger"]
FAKETIME = shutil.which("faketime")


@pytest.fixture
def account():
    """A fresh Account (mbox INBOX in a spool, folders in the home), removed afterwards."""
    made = Account()
    yield made
    made.remove()


def maildir_location(account, name="Maildir"):
    return "maildir:%s" % (account.dir / "home2" / name)


def mbox_location(account):
    """A second mbox account of the user: folders in home2/mail, INBOX in the spool."""
    return "mbox:%s:INBOX=%s" % (account.dir / "home2" / "mail", account.spool / "inbox2")


def state(store, name):
    """(UIDVALIDITY, UIDNEXT, [(uid, flags, sorted keywords, internal date, text)]) read-only.

    Keywords are compared as a set: mbox keeps them in X-Keywords order,
    Maildir in dovecot-keywords letter order; IMAP gives no order either.
    """
    mailbox = store.open_mailbox(name, readonly=True)
    try:
        return (mailbox.uidvalidity, mailbox.uidnext,
                [(m.uid, m.flags, tuple(sorted(m.keywords)), mailbox.internal_date(m),
                  mailbox.message_text(m)) for m in mailbox.messages])
    finally:
        mailbox.close()


def served(account, location, names):
    """{name: (UIDVALIDITY, UIDNEXT, {uid: (flags, INTERNALDATE, RFC822.SIZE, BODY[])})}
    as imapd serves the location, every mailbox EXAMINEd so nothing changes."""
    config = account.dir / "imapd.conf"
    text = re.sub(r"(?m)^mail_location = .*$", lambda _: "mail_location = %s" % location,
                  account.config.read_text())
    config.write_text(text)
    command = "cd %s && PYTHONPATH=%s %s imapd.py --config %s" % (
        shlex.quote(str(REPO)), shlex.quote(str(REPO)), shlex.quote(sys.executable),
        shlex.quote(str(config)))
    client = imaplib.IMAP4_stream(command)
    views = {}
    try:
        client.login("u", "secret")
        for name in names:
            views[name] = _examine(client, name)
        client.logout()
    finally:
        client.shutdown()
    return views


def _examine(client, name):
    status, _ = client.select('"%s"' % name.decode(), readonly=True)
    assert status == "OK", name
    uidvalidity = int(client.response("UIDVALIDITY")[1][0])
    uidnext = int(client.response("UIDNEXT")[1][0])
    status, data = client.uid("FETCH", "1:*", "(FLAGS INTERNALDATE RFC822.SIZE BODY.PEEK[])")
    assert status == "OK"
    messages = {}
    for item in data:
        if isinstance(item, tuple):
            head = item[0]
            uid = int(re.search(rb"UID (\d+)", head).group(1))
            flags = set(re.search(rb"FLAGS \(([^)]*)\)", head).group(1).split())
            date = re.search(rb'INTERNALDATE "([^"]+)"', head).group(1)
            size = int(re.search(rb"RFC822\.SIZE (\d+)", head).group(1))
            assert size == len(item[1])
            messages[uid] = (flags, date, size, item[1])
    client.close()
    return uidvalidity, uidnext, messages


def seed_account(account):
    """An mbox account: INBOX with UIDs, three folders, an empty directory, subscriptions.

    Messages carry every system flag, keywords, dates in several zones,
    some not yet seen by any session (no Status: O, so \\Recent), a
    gap in the UIDs and a UIDNEXT above the last message.
    """
    seed_folder(account, b"Sent", 8, seed=1)
    seed_folder(account, b"lists/python", 6, seed=2)
    seed_folder(account, b"&AMQ-rger", 3, seed=3)
    account.store().create(b"empty/")
    write_file(account.inbox, b"".join(e for e, _ in entries(5)), account)
    inbox = account.store().open_mailbox(b"INBOX")
    inbox.claim_recent()
    inbox.store_flags([2], "+", fmt.SEEN, ("urgent",))
    inbox.close()
    (account.home / ".mailboxlist").write_bytes(b"Sent\nlists/python\nINBOX\n")
    for number, path in enumerate([account.inbox, account.home / "Sent",
                                   account.home / "lists" / "python", account.home / "&AMQ-rger"]):
        set_uidvalidity(path, 1500000000 + 1111 * number)
    account.give_to_user()
    seeded = {name: state(account.store(), name) for name in FOLDERS}
    assert [seeded[name][0] for name in FOLDERS] == [1500000000, 1500001111, 1500002222,
                                                     1500003333]
    return seeded


def set_uidvalidity(path, uidvalidity):
    """Give an mbox file its own UIDVALIDITY (seeded folders made in one second share one)."""
    data = path.read_bytes()
    changed = re.sub(rb"(?m)^(X-IMAP(?:base)?: )\d{10} ", b"\\g<1>%d " % uidvalidity, data, count=1)
    assert changed != data and len(changed) == len(data)
    path.write_bytes(changed)


def assert_owned_by_user(account, top):
    for directory, names, files in os.walk(top):
        for name in [directory] + [os.path.join(directory, f) for f in names + files]:
            assert os.stat(name).st_uid == account.uid, name


# -- transfer --------------------------------------------------------------------------

def test_round_trip_mbox_maildir_mbox_keeps_everything(account):
    """mbox -> Maildir -> mbox: the store and imapd see the same UIDs, UIDVALIDITY, UIDNEXT,
    flags, keywords, internal dates, sizes and bytes at every step.

    The one documented loss: Maildir++ has no empty directory, so mbox's
    `empty/` is reported and left out.
    """
    before = seed_account(account)
    served_before = served(account, account.location, FOLDERS)
    maildir = maildir_location(account)
    result = account.run("transfer", account.location, maildir)
    assert result.returncode == 0, result.stderr
    assert "empty/: an empty directory" in result.stdout
    store = account.store(maildir)
    for name in FOLDERS:
        assert state(store, name) == before[name], name
    assert store.subscriptions() == [b"Sent", b"lists/python", b"INBOX"]
    assert served(account, maildir, FOLDERS) == served_before
    assert (account.dir / "home2" / "Maildir" / ".lists.python" / "cur").is_dir()
    assert_owned_by_user(account, account.dir / "home2")

    back = mbox_location(account)
    result = account.run("transfer", maildir, back)
    assert result.returncode == 0, result.stderr
    store = account.store(back)
    for name in FOLDERS:
        assert state(store, name) == before[name], name
    assert store.subscriptions() == [b"Sent", b"lists/python", b"INBOX"]
    assert served(account, back, FOLDERS) == served_before
    assert (account.dir / "home2" / "mail" / "lists" / "python").is_file()
    assert not (account.dir / "home2" / "mail" / "empty").exists()


def test_maildir_keeps_unseen_mail_in_new_and_seen_mail_in_cur(account):
    """A message no session has seen (no Status: O) goes to new/, so it stays \\Recent."""
    seed_account(account)
    maildir = maildir_location(account)
    assert account.run("transfer", account.location, maildir).returncode == 0
    mailbox = account.store(maildir).open_mailbox(b"Sent", readonly=True)
    try:
        placed = {m.uid: m.subdir for m in mailbox.messages}
        expected = {m.uid: "cur" if m.flags & fmt.OLD else "new" for m in mailbox.messages}
    finally:
        mailbox.close()
    assert placed == expected and set(placed.values()) == {"new", "cur"}


@pytest.mark.skipif(not os.path.exists(DOVECOT_IMAP), reason="dovecot-imapd is not installed")
@pytest.mark.skipif(os.geteuid() != 0, reason="Dovecot refuses root; serving as nobody needs root")
def test_dovecot_reads_the_transferred_maildir(account):
    """Dovecot sees the UIDs, UIDVALIDITY, UIDNEXT, flags, keywords, sizes, dates and bytes
    that the mbox source had, in every folder of the transferred Maildir."""
    before = seed_account(account)
    served_before = served(account, account.location, FOLDERS)
    maildir = maildir_location(account)
    assert account.run("transfer", account.location, maildir).returncode == 0
    store = account.store(maildir)
    expected = {}
    for name in FOLDERS:
        mailbox = store.open_mailbox(name, readonly=True)
        expected[name] = expected_state(mailbox)
        mailbox.close()
    home = Path(tempfile.mkdtemp(prefix="pyimapd-dovecot-transfer-"))
    try:
        home.chmod(0o755)
        shutil.copytree(account.dir / "home2" / "Maildir", home / "home" / "Maildir")
        dovecot = Dovecot(home / "home")
        try:
            for name in FOLDERS:
                seen = dovecot.state(name.decode())
                assert seen == expected[name], name
                assert seen == dovecot_view(before[name], served_before[name]), name
                assert dovecot_bodies(dovecot, name) == {
                    uid: message[3] for uid, message in served_before[name][2].items()}
        finally:
            dovecot.close()
    finally:
        shutil.rmtree(home)


def dovecot_view(stored, imap):
    """What Dovecot's state() should give for a mailbox: UIDVALIDITY and UIDNEXT and dates
    from the store, flags (without \\Recent) and sizes as imapd served them."""
    messages = {}
    for uid, _, _, (seconds, _), _ in stored[2]:
        flags, _, size, _ = imap[2][uid]
        messages[uid] = ({f.decode() for f in flags} - {"\\Recent"}, size, seconds)
    return stored[0], stored[1], messages


def dovecot_bodies(dovecot, name):
    """{uid: BODY[]} as Dovecot serves the folder."""
    client = dovecot.client
    status, _ = client.select(name.decode(), readonly=True)
    assert status == "OK"
    status, data = client.uid("FETCH", "1:*", "(BODY.PEEK[])")
    assert status == "OK"
    bodies = {int(re.search(rb"UID (\d+)", item[0]).group(1)): item[1]
              for item in data if isinstance(item, tuple)}
    client.close()
    return bodies


@pytest.mark.skipif(not os.path.exists(DOVECOT_IMAP), reason="dovecot-imapd is not installed")
@pytest.mark.skipif(os.geteuid() != 0, reason="Dovecot refuses root; serving as nobody needs root")
def test_transfer_of_a_maildir_dovecot_wrote_into_mbox(account):
    """A Maildir written by Dovecot, moved to mbox: imapd serves the UIDs, UIDVALIDITY,
    UIDNEXT, flags, keywords and dates Dovecot served, and the same bytes except the one
    documented difference: a body line starting "From " is quoted as ">From " in mbox."""
    home = Path(tempfile.mkdtemp(prefix="pyimapd-dovecot-transfer-"))
    try:
        home.chmod(0o755)
        (home / "home").mkdir()
        dovecot = Dovecot(home / "home")
        try:
            seen = fill_with_dovecot(dovecot)
        finally:
            dovecot.close()
        shutil.copytree(home / "home" / "Maildir", account.dir / "home2" / "Maildir")
    finally:
        shutil.rmtree(home)
    account.give_to_user()
    back = mbox_location(account)
    result = account.run("transfer", maildir_location(account), back)
    assert result.returncode == 0, result.stderr
    views = served(account, back, [b"INBOX", b"Archive/2024"])
    for name, (uidvalidity, uidnext, messages, bodies) in seen.items():
        view = views[name.encode()]
        assert view[:2] == (uidvalidity, uidnext)
        assert {uid: ({f.decode() for f in flags} - {"\\Recent"}, _unix(date))
                for uid, (flags, date, _, _) in view[2].items()} == {
            uid: (flags, date) for uid, (flags, _, date) in messages.items()}
        assert {uid: body for uid, (_, _, _, body) in view[2].items()} == {
            uid: body.replace(b"\r\nFrom ", b"\r\n>From ") for uid, body in bodies.items()}
    assert b"\r\n>From the minutes" in views[b"INBOX"][2][3][3]


def fill_with_dovecot(dovecot):
    """APPEND, STORE, EXPUNGE and CREATE through Dovecot; {name: (state, {uid: BODY[]})}."""
    for n in range(1, 7):
        flags = "(\\Seen $Label1)" if n % 3 == 0 else "(\\Flagged Work)" if n % 2 else "()"
        dovecot.command("append", "INBOX", flags, imaplib.Time2Internaldate(1700000000 + 3600 * n),
                        b"Subject: d%d\r\n\r\nbody %d\r\nFrom the minutes\r\n" % (n, n))
    dovecot.command("select", "INBOX")
    dovecot.command("uid", "STORE", "2", "+FLAGS", "(\\Deleted)")
    dovecot.command("uid", "STORE", "6", "+FLAGS", "(\\Deleted)")
    dovecot.command("expunge")
    dovecot.command("close")
    dovecot.command("create", "Archive/2024")
    dovecot.command("append", "Archive/2024", "(\\Answered Filed)",
                    imaplib.Time2Internaldate(1700000500), b"Subject: a\r\n\r\narchived\r\n")
    seen = {}
    for name in ("INBOX", "Archive/2024"):
        seen[name] = dovecot.state(name) + (dovecot_bodies(dovecot, name.encode()),)
    assert sorted(seen["INBOX"][2]) == [1, 3, 4, 5] and seen["INBOX"][1] == 7
    return seen


def test_transfer_refuses_what_the_destination_format_cannot_hold(account):
    """A "." in a name (Maildir++) and a folder with mail and subfolders (mbox) stop the
    transfer before anything is written, naming the folder."""
    seed_folder(account, b"Sent", 2)
    seed_folder(account, b"v1.0", 2)
    maildir = maildir_location(account)
    result = account.run("transfer", account.location, maildir)
    assert result.returncode == 1
    assert "v1.0" in result.stderr and "Traceback" not in result.stderr
    assert not (account.dir / "home2" / "Maildir" / ".Sent").exists()

    source = account.store(maildir)
    for name in (b"lists", b"lists/python"):
        source.create(name)
        mailbox = source.open_mailbox(name)
        mailbox.append([(b"Subject: x\n\nx\n", 0, (), (1700000000, 0))])
        mailbox.close()
    account.give_to_user()
    result = account.run("transfer", maildir, mbox_location(account))
    assert result.returncode == 1
    assert "lists holds both messages and folders" in result.stderr
    assert not (account.dir / "home2" / "mail").exists()


@pytest.mark.parametrize("kill_after", [40, 160])
def test_a_transfer_killed_midway_leaves_only_whole_messages_with_their_uids(account, kill_after):
    """kill -9 while a transfer fills a Maildir: every file in new/ and cur/ is a whole
    message of the source, all but at most the last one placed have a uidlist record with
    the UID they had in the source, and check --repair numbers that one."""
    seed_folder(account, b"Big", 300)
    source = {m[4]: m[0] for m in state(account.store(), b"Big")[2]}
    maildir = maildir_location(account)
    command = [sys.executable, "-m", "admin", "transfer", account.location, maildir,
               "--user", account.user]
    process = subprocess.Popen(command, env=tool_environment(account.config),
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    folder = account.dir / "home2" / "Maildir" / ".Big"
    try:
        while process.poll() is None and placed_count(folder) < kill_after:
            pass
        process.kill()
    finally:
        process.wait(timeout=GUARD_SECONDS)
    files = {p.name.partition(":")[0]: p.read_bytes() for sub in ("new", "cur")
             for p in (folder / sub).glob("*")}
    assert kill_after <= len(files) <= len(source)
    assert all(data in source for data in files.values())
    records = {base: uid for base, uid in uidlist_records(folder).items() if base in files}
    assert len(records) >= len(files) - 1
    assert all(source[files[base]] == uid for base, uid in records.items())
    result = account.run("check", str(folder), "--repair")
    assert result.returncode == 0, result.stdout + result.stderr
    after = state(account.store(maildir), b"Big")
    assert sorted(m[4] for m in after[2]) == sorted(files.values())
    assert sum(source[m[4]] != m[0] for m in after[2]) <= 1


def placed_count(folder):
    try:
        return sum(len(os.listdir(folder / sub)) for sub in ("new", "cur"))
    except FileNotFoundError:
        return 0


def uidlist_records(folder):
    """{file base name: UID} from a dovecot-uidlist."""
    lines = (folder / "dovecot-uidlist").read_text().splitlines()[1:]
    return {line.split(" :", 1)[1]: int(line.split()[0]) for line in lines}


# -- copy and move across formats ---------------------------------------------------------

def test_copy_of_an_mbox_file_into_a_maildir_folder_keeps_uids(account):
    """copy MBOX-PATH FOLDER with a Maildir location: a clone, as the store and imapd see it."""
    seed_folder(account, b"Sent", 12)
    set_uidvalidity(account.home / "Sent", 1234567890)
    before = state(account.store(), b"Sent")
    assert before[0] == 1234567890
    maildir = maildir_location(account)
    result = account.run("copy", str(account.home / "Sent"), "Archive", "--location", maildir)
    assert result.returncode == 0, result.stderr
    assert "UIDs kept" in result.stdout
    assert state(account.store(maildir), b"Archive") == before
    assert served(account, maildir, [b"Archive"])[b"Archive"] == \
        served(account, account.location, [b"Sent"])[b"Sent"]
    assert_owned_by_user(account, account.dir / "home2")


def test_move_from_a_maildir_folder_path_into_an_mbox_folder(account):
    """move MAILDIR-PATH FOLDER --uids: the moved messages keep UIDs, flags, keywords, dates,
    bytes and the UIDVALIDITY; exactly they leave the Maildir."""
    seed_folder(account, b"Sent", 10)
    set_uidvalidity(account.home / "Sent", 1234567890)
    maildir = maildir_location(account)
    assert account.run("copy", str(account.home / "Sent"), "Sent",
                       "--location", maildir).returncode == 0
    before = state(account.store(maildir), b"Sent")
    folder = account.dir / "home2" / "Maildir" / ".Sent"
    same = account.run("copy", str(folder), "Sent", "--location", maildir)
    assert same.returncode == 1 and "same mailbox" in same.stderr
    result = account.run("move", str(folder), "Moved", "--uids", "3:6")
    assert result.returncode == 0, result.stderr
    assert "UIDs kept" in result.stdout
    moved = state(account.store(), b"Moved")
    assert moved[0] == before[0] == 1234567890
    assert moved[2] == [m for m in before[2] if 3 <= m[0] <= 6]
    left = state(account.store(maildir), b"Sent")
    assert left[2] == [m for m in before[2] if not 3 <= m[0] <= 6]
    assert any(m[1] & fmt.DELETED for m in left[2])


# -- check on a Maildir -------------------------------------------------------------------

def damaged_maildir(account):
    """A Maildir INBOX of 6 messages, then: an MDA's file with no UID, a lost file, a
    stale uidlist lock, two files in tmp/. Returns (state before, paths)."""
    seed_folder(account, b"Source", 6)
    set_uidvalidity(account.home / "Source", 1234567890)
    maildir = maildir_location(account)
    assert account.run("copy", str(account.home / "Source"), "INBOX",
                       "--location", maildir).returncode == 0
    root = account.dir / "home2" / "Maildir"
    before = state(account.store(maildir), b"INBOX")
    assert before[0] == 1234567890
    lost = next(p for p in sorted((root / "cur").iterdir()))
    lost_uid = next(m[0] for m in before[2] if m[4] == lost.read_bytes())
    lost.unlink()
    delivered = root / "new" / "1700000500.M1P1.mta"
    delivered.write_bytes(b"Subject: by an MDA\n\ndelivered\n")
    (root / "dovecot-uidlist.lock").write_bytes(b"")
    (root / "tmp" / "1700000600.M2P2.mta").write_bytes(b"Subject: half a deliv")
    (root / "tmp" / "1700000700.M3P3.mta").write_bytes(b"Subject: whole\n\nbut never moved\n")
    account.give_to_user()
    return before, lost_uid, root


def run_later(account, *args):
    """The tool as if run 37 hours from now (faketime), so tmp/ files and locks are old."""
    command = [FAKETIME, "-f", "+37h", sys.executable, "-m", "admin", *args,
               "--user", account.user]
    env = dict(tool_environment(account.config), NO_FAKE_STAT="1")
    return subprocess.run(command, env=env, capture_output=True, text=True,
                          timeout=GUARD_SECONDS)


def tree(root):
    """{relative path: bytes} of every file under root."""
    return {str(p.relative_to(root)): p.read_bytes() for p in root.rglob("*") if p.is_file()}


def test_check_reports_maildir_damage_and_changes_nothing(account):
    """Unnumbered files and records without files are damage (exit 3); nothing is touched."""
    _, lost_uid, root = damaged_maildir(account)
    files = tree(root)
    result = account.run("check", str(root))
    assert result.returncode == 3, result.stderr
    assert "1 message files in new/ or cur/ are not in dovecot-uidlist" in result.stdout
    assert "1 dovecot-uidlist records have no message file (UIDs %d)" % lost_uid in result.stdout
    assert "stale" not in result.stdout  # the lock is new: a live writer may hold it
    assert tree(root) == files


@pytest.mark.skipif(FAKETIME is None, reason="faketime is not installed")
def test_check_repair_mends_a_damaged_maildir_without_losing_a_message(account):
    """--repair: the MDA's file gets the next UID, the lost file's record goes, the stale
    lock goes, old tmp/ files are kept in the rescue directory; every other message keeps
    its UID, flags, keywords, date and bytes, and a second check finds nothing."""
    before, lost_uid, root = damaged_maildir(account)
    tmp_files = tree(root / "tmp")
    result = run_later(account, "check", str(root), "--location", maildir_location(account))
    assert result.returncode == 3
    assert "dovecot-uidlist.lock is stale" in result.stdout
    assert "2 files in tmp/ are older than 36 hours" in result.stdout
    result = run_later(account, "check", str(root), "--repair")
    assert result.returncode == 0, result.stderr
    assert "repaired" in result.stdout
    assert not (root / "dovecot-uidlist.lock").exists()
    assert not list((root / "tmp").iterdir())
    rescue = Path(re.search(r"moved 2 old tmp/ files to (\S+)", result.stdout).group(1))
    assert tree(rescue) == tmp_files
    assert os.stat(rescue).st_uid == account.uid
    after = state(account.store(maildir_location(account)), b"INBOX")
    kept = [m for m in before[2] if m[0] != lost_uid]
    assert after[:1] == before[:1] and after[2][:-1] == kept
    assert after[2][-1][0] == before[1] and after[2][-1][4] == b"Subject: by an MDA\n\ndelivered\n"
    for checker in (account.run, lambda *args: run_later(account, *args)):
        again = checker("check", str(root))
        assert again.returncode == 0 and "no problems found" in again.stdout, again.stdout


# -- the store side: delivering with given UIDs -----------------------------------------------

def maildir_store(account):
    return account.store(maildir_location(account))


def test_maildir_append_with_uids_refuses_uids_that_do_not_rise(account):
    """UIDs at or below the last one or out of order, or a new UIDVALIDITY for a folder that
    gave out UIDs: refused, and no file is left in new/, cur/ or tmp/."""
    store = maildir_store(account)
    store.create(b"F")
    mailbox = store.open_mailbox(b"F")
    try:
        mailbox.append_with_uids([(4, b"Subject: a\n\na\n", 0, (), (1700000000, 0))])
        folder = Path(mailbox.path)
        files = tree(folder)
        for uids in ((4, 9), (9, 8), (0,)):
            items = [(uid, b"Subject: x\n\nx\n", 0, (), (1700000000, 0)) for uid in uids]
            with pytest.raises(StoreError):
                mailbox.append_with_uids(items)
        with pytest.raises(StoreError):
            mailbox.append_with_uids([], uidvalidity=42)
        assert tree(folder) == files
        assert [m.uid for m in mailbox.messages] == [4]
    finally:
        mailbox.close()


def test_maildir_append_with_uids_takes_uidvalidity_uidnext_flags_and_dates(account):
    """A fresh folder adopts UIDVALIDITY; UIDNEXT rises to last_uid + 1; flags, keywords,
    the date (file mtime) and its zone come through; a file an MDA dropped in meanwhile is
    numbered first, so given UIDs must lie above it."""
    store = maildir_store(account)
    store.create(b"F")
    mailbox = store.open_mailbox(b"F")
    try:
        items = [(3, b"Subject: a\r\n\r\nA\r\n", fmt.SEEN | fmt.OLD, tuple(KEYWORDS),
                  (1600000000, 120)),
                 (7, b"Subject: b\n\nB\n", fmt.FLAGGED, (), (1600003600, -300))]
        assert mailbox.append_with_uids(items, uidvalidity=123456, last_uid=20) == [3, 7]
        assert (mailbox.uidvalidity, mailbox.uidnext) == (123456, 21)
        got = [(m.uid, m.flags, set(m.keywords), mailbox.internal_date(m),
                mailbox.message_text(m)) for m in mailbox.messages]
        assert got == [
            (3, fmt.SEEN | fmt.OLD, set(KEYWORDS), (1600000000, 120), b"Subject: a\n\nA\n"),
            (7, fmt.FLAGGED, set(), (1600003600, -300), b"Subject: b\n\nB\n")]
        (Path(mailbox.path) / "new" / "1700000000.M9P9.mda").write_bytes(b"Subject: c\n\nc\n")
        item = (b"Subject: d\n\nd\n", 0, (), (1700000000, 0))
        with pytest.raises(StoreError):
            mailbox.append_with_uids([(21,) + item])
        assert mailbox.append_with_uids([(22,) + item]) == [22]
        assert [m.uid for m in mailbox.messages] == [3, 7, 21, 22]
    finally:
        mailbox.close()
