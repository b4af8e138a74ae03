"""pyimapd-mailutil run as a real command: repairs keep every intact message, copies keep UIDs.

Every test runs `python -m admin` as a subprocess on a user's mail in a
temporary directory. As root the tool works as the system user
pyimapd-test (so it must drop privileges to reach the files); otherwise as
the caller. Results are read back with the mbox store, and for copies also
through imapd with imaplib.
"""

import imaplib
import os
import pty
import pwd
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from auth import Principal
from mailstore import StoreError, mboxindex
from mailstore import mboxformat as fmt
from mailstore import open_store
from mailstore.mboxrestore import append_with_uids
from server.config import Config

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "tests"))

import mailgen  # noqa: E402  (needs the path above)

TEST_USER = "pyimapd-test"
# A guard against a hung process, never a measurement.
GUARD_SECONDS = 120
KEYWORDS = ["work", "urgent", "$Label1"]


def _system_test_user():
    try:
        return pwd.getpwnam(TEST_USER)
    except KeyError:
        return None


class Account:
    """A user's spool INBOX and folder root in a temporary directory, and the tool run for them."""

    def __init__(self):
        self.dir = Path(tempfile.mkdtemp(prefix="pyimapd-mailutil-"))
        self.dir.chmod(0o755)
        entry = _system_test_user() if os.geteuid() == 0 else pwd.getpwuid(os.getuid())
        if entry is None:
            pytest.skip("running as root needs the system user %s" % TEST_USER)
        self.user, self.uid, self.gid = entry.pw_name, entry.pw_uid, entry.pw_gid
        self.home = self.dir / "home"
        self.spool = self.dir / "spool"
        for directory in (self.home, self.spool, self.dir / "home2"):
            directory.mkdir()
        self.inbox = self.spool / "inbox"
        self.location = "mbox:%s:INBOX=%s" % (self.home, self.inbox)
        self.config = self.dir / "pyimapd.conf"
        self.config.write_text("mail_location = %s\nindex_dir = %s\nmbox_lock_timeout = 5\n"
                               "cram_md5_file = %s\npasswd_file = %s\n"
                               "disable_plaintext_auth = no\n"
                               % (self.location, self.home / ".pyimapd", self.dir / "none",
                                  self.dir / "passwd"))
        (self.dir / "passwd").write_text("u:{PLAIN}secret:%d:%d::%s::\n"
                                         % (self.uid, self.gid, self.home))
        self.give_to_user()

    def give_to_user(self):
        """Make every file the user's, as if the user's own programs had written them."""
        for path in [self.home, self.spool, self.dir / "home2"]:
            for directory, names, files in os.walk(path):
                for name in [directory] + [os.path.join(directory, f) for f in names + files]:
                    os.chown(name, self.uid, self.gid)

    def run(self, *args, user=True):
        """Run the tool: CompletedProcess with text stdout and stderr."""
        command = [sys.executable, "-m", "admin", *args] + (["--user", self.user] if user else [])
        return subprocess.run(command, env=tool_environment(self.config), capture_output=True,
                              text=True, timeout=GUARD_SECONDS)

    def store(self, location=None):
        """The store as the servers open it, with its own index directory (root-owned files
        there would lock the user out of the real one)."""
        config = Config({"mail_location": location or self.location, "mbox_lock_timeout": 5,
                         "index_dir": str(self.dir / "test-index")})
        return open_store(Principal(self.user, self.uid, self.gid, str(self.home)), config)

    def remove(self):
        shutil.rmtree(self.dir, ignore_errors=True)


def tool_environment(config):
    return dict(os.environ, PYTHONPATH=str(REPO), PYIMAPD_CONFIG=str(config))


@pytest.fixture
def account():
    """A fresh Account, removed afterwards."""
    made = Account()
    yield made
    made.remove()


def entries(count, seed=11, first=1):
    """[(mbox entry as an MTA appends it, the message as clients see it)]."""
    return [(mailgen.mbox_entry(message, sender, when), message)
            for message, sender, when in mailgen.generate(count, seed, first)]


def write_file(path, data, account):
    Path(path).write_bytes(data)
    os.chown(path, account.uid, account.gid)


def snapshot(store, name):
    """(UIDVALIDITY, UIDNEXT, [(uid, flags, keywords, internal date, text)]) read-only."""
    mailbox = store.open_mailbox(name, readonly=True)
    try:
        return (mailbox.uidvalidity, mailbox.uidnext,
                [(m.uid, m.flags, tuple(m.keywords), mailbox.internal_date(m),
                  mailbox.message_text(m)) for m in mailbox.messages])
    finally:
        mailbox.close()


def texts(store, name):
    return [item[4] for item in snapshot(store, name)[2]]


def seed_folder(account, name, count, seed=5):
    """A folder with count messages carrying assorted flags, keywords and dates."""
    store = account.store()
    store.create(name)
    mailbox = store.open_mailbox(name)
    try:
        items = []
        for number, (_, message) in enumerate(entries(count, seed), 1):
            bits = [fmt.SEEN, fmt.ANSWERED | fmt.SEEN, fmt.FLAGGED, fmt.DELETED, fmt.DRAFT,
                    0][number % 6] | (fmt.OLD if number % 2 else 0)
            keywords = tuple(KEYWORDS[:number % 4])
            items.append((message, bits, keywords, (1700000000 + number * 3600, 60 * (number % 3))))
        mailbox.append(items)
        if count > 3:  # a gap in the UIDs and a UIDNEXT above the last message
            mailbox.store_flags([2], "+", fmt.DELETED, ())
            mailbox.expunge({2})
        mailbox.append([(b"Subject: last\n\nlast\n", 0, (), (1700000000, 0))])
        mailbox.store_flags([count + 1], "+", fmt.DELETED, ())
        mailbox.expunge({count + 1})
    finally:
        mailbox.close()
    account.give_to_user()
    return snapshot(store, name)


# -- check and --repair -----------------------------------------------------------

def test_check_of_a_sound_mailbox_reports_nothing_and_exits_0(account):
    """A spool as an MTA writes it is not damaged: exit 0, "no problems found"."""
    write_file(account.inbox, b"".join(e for e, _ in entries(5)), account)
    result = account.run("check", "INBOX")
    assert result.returncode == 0, result.stderr
    assert "no problems found" in result.stdout
    assert "5 messages" in result.stdout


def test_check_without_repair_reports_damage_and_changes_nothing(account):
    """Damage is reported with exit status 3 and the file keeps every byte."""
    data = b"".join(e for e, _ in entries(4)) + b"\0" * 300
    write_file(account.inbox, data, account)
    result = account.run("check", "INBOX")
    assert result.returncode == 3
    assert "problem:" in result.stdout and "--repair" in result.stdout
    assert account.inbox.read_bytes() == data


def test_repair_keeps_a_truncated_last_message_and_every_intact_one(account):
    """The messages before a cut-off last one come back byte for byte; the cut one is kept."""
    mail = entries(6)
    cut = mail[5][0][:len(mail[5][0]) // 2]
    cut = cut[:cut.rfind(b"\n") + 8]  # stop in the middle of a line
    write_file(account.inbox, b"".join(e for e, _ in mail[:5]) + cut, account)
    result = account.run("check", "INBOX", "--repair")
    assert result.returncode == 0, result.stderr
    assert "truncated" in result.stdout
    recovered = texts(account.store(), b"INBOX")
    assert recovered[:5] == [message for _, message in mail[:5]]
    assert recovered[5] == cut[cut.index(b"\n") + 1:] + b"\n"
    assert account.run("check", "INBOX").returncode == 0


def test_repair_takes_garbage_out_from_between_messages(account):
    """NUL blocks, binary junk and a cut-off delivery between messages: every intact one survives.

    The junk that is not NUL bytes is saved in a rescue file, and the
    message hidden behind the cut-off line is found again.
    """
    mail = entries(7)
    junk = b"\x01\x02\xfe garbage \x1f\x7f\n\x00\x00\n"
    partial = mail[4][0][:mail[4][0].index(b"\n\n") + 30]  # no final newline
    data = (b"\x00\x00leading junk\n" + mail[0][0] + b"\0" * 4096 + mail[1][0] + junk
            + mail[2][0] + mail[3][0] + partial + mail[5][0] + mail[6][0])
    write_file(account.inbox, data, account)
    assert account.run("check", "INBOX").returncode == 3
    result = account.run("check", "INBOX", "--repair")
    assert result.returncode == 0, result.stderr
    recovered = texts(account.store(), b"INBOX")
    intact = [message for index, (_, message) in enumerate(mail) if index != 4]
    assert [t for i, t in enumerate(recovered) if i != 4] == intact
    assert recovered[4] == partial[partial.index(b"\n") + 1:] + b"\n"
    rescue = re.search(r"saved \d+ bytes of debris to (\S+)", result.stdout).group(1)
    saved = Path(rescue).read_bytes()
    assert b"leading junk" in saved and b"\x01\x02\xfe garbage \x1f\x7f" in saved
    assert os.stat(rescue).st_uid == account.uid
    assert account.run("check", "INBOX").returncode == 0


def metadata_mailbox(base=b"X-IMAPbase: 1700000000 0000000012 work urgent\n",
                     uids=(3, 5, 9, 12), pseudo=None, extra=None):
    """An mbox as UW writes it (flags, keywords, X-UIDs), and the messages' visible texts."""
    parts, visible = [pseudo] if pseudo else [], []
    states = [(b"RO", b"F", b"work"), (b"O", b"", b""), (b"RO", b"AD", b"urgent work"),
              (b"", b"T", b"")]
    for number, (uid, (status, xstatus, keywords)) in enumerate(zip(uids, states), 1):
        header = b"From: a%d@example.org\nSubject: message %d\n" % (number, number)
        body = b"Body %d.\n>From a quoted line.\n" % number
        meta = (base if number == 1 and base else b"") + (extra or {}).get(number, b"") + (
            b"Status: %s\nX-Status: %s\nX-Keywords: %s\nX-UID: %d\n"
            % (status, xstatus, keywords, uid))
        parts.append(b"From a%d@example.org Wed Dec  2 05:53:22 1992\n" % number
                     + header + meta + b"\n" + body + b"\n")
        visible.append(header + b"\n" + body)
    return b"".join(parts), visible


def flag_state(store):
    """[(uid, flags, keywords)] of INBOX."""
    return [(uid, flags, keywords) for uid, flags, keywords, _, _ in snapshot(store, b"INBOX")[2]]


SOUND_FLAGS = [(3, fmt.SEEN | fmt.OLD | fmt.FLAGGED, ("work",)), (5, fmt.OLD, ()),
               (9, fmt.SEEN | fmt.OLD | fmt.ANSWERED | fmt.DELETED, ("urgent", "work")),
               (12, fmt.DRAFT, ())]


def test_repair_of_an_unreadable_uidvalidity_keeps_uids_flags_and_keywords(account):
    """X-IMAPbase broken: a new UIDVALIDITY, but the rising X-UIDs, flags and keywords stay."""
    data, visible = metadata_mailbox(base=b"X-IMAPbase: 17oo garbage\n")
    write_file(account.inbox, data, account)
    result = account.run("check", "INBOX", "--repair")
    assert result.returncode == 0, result.stderr
    assert "X-IMAPbase" in result.stdout
    store = account.store()
    assert flag_state(store) == SOUND_FLAGS
    assert texts(store, b"INBOX") == visible
    assert snapshot(store, b"INBOX")[0] != 1700000000


def test_repair_of_repeated_uids_moves_only_the_offender(account):
    """A UID that repeats gets a new one at the end; UIDVALIDITY and the other UIDs stay."""
    data, visible = metadata_mailbox(uids=(3, 5, 5, 12))
    write_file(account.inbox, data, account)
    assert account.run("check", "INBOX", "--repair").returncode == 0
    store = account.store()
    uidvalidity, uidnext, messages = snapshot(store, b"INBOX")
    assert uidvalidity == 1700000000
    assert [(m[0], m[4]) for m in messages] == [
        (3, visible[0]), (5, visible[1]), (12, visible[3]), (13, visible[2])]
    assert uidnext == 14


def test_repair_of_a_damaged_pseudo_message_and_stray_metadata(account):
    """A pseudo-message with a broken X-IMAP is rebuilt; stray base and mis-cased headers go."""
    pseudo = (b"From MAILER-DAEMON Wed Dec  2 05:53:22 1992\nSubject: " + fmt.PSEUDO_SUBJECT
              + b"\nX-IMAP: 1700000000 garbage\nStatus: RO\n\nfolder data\n\n")
    data, visible = metadata_mailbox(base=None, pseudo=pseudo, extra={
        2: b"X-IMAPbase: 1 99\n", 3: b"status: RO\n"})
    write_file(account.inbox, data, account)
    result = account.run("check", "INBOX", "--repair")
    assert result.returncode == 0, result.stderr
    assert "pseudo-message" in result.stdout and "wrongly-cased" in result.stdout
    store = account.store()
    assert texts(store, b"INBOX") == visible
    assert [uid for uid, _, _ in flag_state(store)] == [3, 5, 9, 12]
    assert account.inbox.read_bytes().count(fmt.PSEUDO_SUBJECT) == 1
    assert account.run("check", "INBOX").returncode == 0


def test_repair_takes_a_lost_uidvalidity_from_the_index_sidecar(account):
    """With the index sidecar still there, a broken X-IMAP gets its old UIDVALIDITY back."""
    before = seed_folder(account, b"Big", 240)
    # Reading the folder through the tool leaves the servers' index sidecar behind.
    assert account.run("copy", "Big", "Other", "--uids", "1").returncode == 0
    path = account.home / "Big"
    data = path.read_bytes()
    broken = re.sub(rb"X-IMAP: \d{10} ", b"X-IMAP: xxxxxxxxxx ", data, count=1)
    write_file(path, broken, account)
    result = account.run("check", "Big", "--repair")
    assert result.returncode == 0, result.stderr
    assert "index sidecar" in result.stdout
    assert snapshot(account.store(), b"Big") == before


def test_check_compares_a_sound_index_sidecar_with_the_file(account):
    """An index that agrees with the file is no problem; one whose UIDs disagree is reported."""
    seed_folder(account, b"Big", 210)
    assert account.run("copy", "Big", "Other", "--uids", "1").returncode == 0
    result = account.run("check", "Big")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no problems found" in result.stdout
    path = account.home / "Big"
    index_path = next((account.home / ".pyimapd").glob("index-*"))
    identity = (path.stat().st_dev, path.stat().st_ino)
    index = mboxindex.load(str(index_path), identity)
    index.messages[5].uid += 1000  # the index now claims another UID for message 6

    import mmap
    from types import SimpleNamespace

    with open(path, "rb") as handle:
        saved = SimpleNamespace(
            map=mmap.mmap(handle.fileno(), 0, prot=mmap.PROT_READ), identity=identity,
            stamp=index.stamp, uidvalidity=index.uidvalidity, last_uid=index.last_uid,
            keywords=index.keywords, pseudo=index.pseudo,
            layout=index.layout,
            messages=index.messages)
        mboxindex.save(str(index_path), saved)
    os.chown(index_path, account.uid, account.gid)
    result = account.run("check", "Big")
    assert result.returncode == 3 and "contradicts" in result.stdout
    assert account.run("check", "Big", "--repair").returncode == 0
    assert account.run("check", "Big").returncode == 0


def test_damaged_index_sidecar_is_reported_and_removed(account):
    """An unreadable index is a problem (exit 3); --repair removes it and the mail is untouched."""
    before = seed_folder(account, b"Big", 230)
    assert account.run("copy", "Big", "Other", "--uids", "1").returncode == 0
    index_files = list((account.home / ".pyimapd").glob("index-*"))
    assert index_files
    for index in index_files:
        index.write_bytes(b"not an index")
    data = (account.home / "Big").read_bytes()
    result = account.run("check", "Big")
    assert result.returncode == 3 and "index sidecar" in result.stdout
    assert account.run("check", "Big", "--repair").returncode == 0
    assert not any(index.exists() for index in index_files)
    assert (account.home / "Big").read_bytes() == data
    assert account.run("check", "Big").returncode == 0
    assert snapshot(account.store(), b"Big") == before


# -- copy, move, transfer ---------------------------------------------------------------

def imap_view(account, name, location=None):
    """(UIDVALIDITY, UIDNEXT, {uid: (flags, INTERNALDATE, BODY[])}) as imapd serves it, read-only."""
    config = account.dir / "imapd.conf"
    text = account.config.read_text()
    if location:
        text = text.replace("mail_location = %s" % account.location, "mail_location = %s"
                            % location)
    config.write_text(text)
    command = "cd %s && PYTHONPATH=%s %s imapd.py --config %s" % (
        shlex.quote(str(REPO)), shlex.quote(str(REPO)), shlex.quote(sys.executable),
        shlex.quote(str(config)))
    client = imaplib.IMAP4_stream(command)
    try:
        client.login("u", "secret")
        status, _ = client.select('"%s"' % name, readonly=True)
        assert status == "OK"
        uidvalidity = int(client.response("UIDVALIDITY")[1][0])
        uidnext = int(client.response("UIDNEXT")[1][0])
        status, data = client.uid("FETCH", "1:*", "(FLAGS INTERNALDATE BODY.PEEK[])")
        assert status == "OK"
        messages = {}
        for item in data:
            if isinstance(item, tuple):
                head = item[0]
                uid = int(re.search(rb"UID (\d+)", head).group(1))
                flags = re.search(rb"FLAGS \(([^)]*)\)", head).group(1)
                date = re.search(rb'INTERNALDATE "([^"]+)"', head).group(1)
                messages[uid] = (set(flags.split()), date, item[1])
        client.logout()
    finally:
        client.shutdown()
    return uidvalidity, uidnext, messages


def test_copy_into_a_new_folder_keeps_uids_flags_keywords_dates_and_bytes(account):
    """A copied folder is a clone: the store and imapd see the same UIDs, flags, dates, bytes."""
    before = seed_folder(account, b"Source", 12)
    result = account.run("copy", "Source", "Copy")
    assert result.returncode == 0, result.stderr
    assert "UIDs kept" in result.stdout
    store = account.store()
    assert snapshot(store, b"Copy") == before
    assert snapshot(store, b"Source") == before
    served = imap_view(account, "Copy")
    assert len(served[2]) == len(before[2]) and served[:2] == before[:2]
    assert served == imap_view(account, "Source")
    assert os.stat(account.home / "Copy").st_uid == account.uid


def test_copy_of_a_uid_set_into_a_folder_with_mail(account):
    """UIDs above the target's last one are kept; otherwise the copies get new UIDs."""
    before = seed_folder(account, b"Source", 10)
    seed_folder(account, b"Target", 4, seed=9)
    result = account.run("copy", "Source", "Target", "--uids", "1,7:8")
    assert result.returncode == 0, result.stderr
    assert "new UIDs" in result.stdout
    target = snapshot(account.store(), b"Target")
    wanted = [m for m in before[2] if m[0] in (1, 7, 8)]
    assert [m[1:] for m in target[2][-3:]] == [m[1:] for m in wanted]
    assert [m[0] for m in target[2][-3:]] == [6, 7, 8]
    result = account.run("copy", "Source", "Target", "--uids", "9:*")
    assert "UIDs kept" in result.stdout
    assert [m[0] for m in snapshot(account.store(), b"Target")[2][-2:]] == [9, 10]


def test_move_removes_exactly_the_moved_messages(account):
    """move copies, then expunges only what it moved: other \\Deleted messages stay."""
    before = seed_folder(account, b"Source", 10)
    result = account.run("move", "Source", "Moved", "--uids", "3:6")
    assert result.returncode == 0, result.stderr
    store = account.store()
    assert [m[0] for m in snapshot(store, b"Source")[2]] == [1, 7, 8, 9, 10]
    moved = snapshot(store, b"Moved")
    assert moved[0] == before[0]
    assert moved[2] == [m for m in before[2] if 3 <= m[0] <= 6]
    assert any(m[1] & fmt.DELETED for m in snapshot(store, b"Source")[2])


def test_copy_between_an_mbox_path_and_a_folder(account):
    """A plain mbox path as source and a folder name as target; UIDs come with the messages."""
    data, visible = metadata_mailbox()
    path = account.dir / "spool" / "old.mbox"
    write_file(path, data, account)
    result = account.run("copy", str(path), "Imported")
    assert result.returncode == 0, result.stderr
    store = account.store()
    assert texts(store, b"Imported") == visible
    uidvalidity, uidnext, messages = snapshot(store, b"Imported")
    assert (uidvalidity, uidnext) == (1700000000, 13)
    assert [(m[0], m[1], m[2]) for m in messages] == SOUND_FLAGS


def test_transfer_of_an_account_keeps_everything(account):
    """Every folder, directory and subscription, with UIDs, UIDVALIDITY, flags, dates and bytes."""
    folders = {b"Sent": seed_folder(account, b"Sent", 8, seed=1),
               b"lists/python": seed_folder(account, b"lists/python", 6, seed=2),
               b"&AMQ-rger": seed_folder(account, b"&AMQ-rger", 3, seed=3)}
    account.store().create(b"empty/")
    write_file(account.inbox, b"".join(e for e, _ in entries(5)), account)
    inbox = account.store().open_mailbox(b"INBOX")
    inbox.claim_recent()  # an INBOX that got its UIDs written
    inbox.close()
    (account.home / ".mailboxlist").write_bytes(b"Sent\nlists/python\nINBOX\n")
    account.give_to_user()
    folders[b"INBOX"] = snapshot(account.store(), b"INBOX")
    target = "mbox:%s:INBOX=%s" % (account.dir / "home2", account.spool / "inbox2")
    result = account.run("transfer", account.location, target)
    assert result.returncode == 0, result.stderr
    store = account.store(target)
    for name, before in folders.items():
        assert snapshot(store, name) == before, name
    assert (account.dir / "home2" / "empty").is_dir()
    assert store.subscriptions() == [b"Sent", b"lists/python", b"INBOX"]
    served = imap_view(account, "lists/python", target)
    assert len(served[2]) == len(folders[b"lists/python"][2])
    assert served == imap_view(account, "lists/python")
    for directory, _, files in os.walk(account.dir / "home2"):
        for name in [directory] + [os.path.join(directory, f) for f in files]:
            assert os.stat(name).st_uid == account.uid, name


def test_transfer_refuses_a_destination_with_mail_and_writes_nothing(account):
    """A destination folder holding mail stops the transfer before anything is written."""
    seed_folder(account, b"Sent", 3)
    seed_folder(account, b"Zebra", 3)
    target = "mbox:%s:INBOX=%s" % (account.dir / "home2", account.spool / "inbox2")
    store = account.store(target)
    store.create(b"Zebra")
    mailbox = store.open_mailbox(b"Zebra")
    mailbox.append([(b"Subject: x\n\nx\n", 0, (), (1700000000, 0))])
    mailbox.close()
    account.give_to_user()
    result = account.run("transfer", account.location, target)
    assert result.returncode == 1
    assert "already has mail in Zebra" in result.stderr
    assert not (account.dir / "home2" / "Sent").exists()


# -- folders, errors, privileges, progress -----------------------------------------------

def test_create_rename_delete_folders(account):
    """create (also a directory with a trailing /), rename with children, delete; exit 0 each.

    A renamed folder keeps its messages with their UIDs and UIDVALIDITY.
    """
    assert account.run("create", "a/b/c").returncode == 0
    assert account.run("create", "dir/").returncode == 0
    assert (account.home / "dir").is_dir()
    before = seed_folder(account, b"a/full", 5)
    assert account.run("rename", "a", "z").returncode == 0
    assert (account.home / "z" / "b" / "c").is_file()
    assert snapshot(account.store(), b"z/full") == before
    result = account.run("delete", "z/b")
    assert result.returncode == 1 and "inferior" in result.stderr
    assert account.run("delete", "z/b/c").returncode == 0
    assert account.run("delete", "z/b").returncode == 0
    assert not (account.home / "z" / "b").exists()


def test_rename_of_inbox_moves_its_messages(account):
    """RENAME INBOX moves the messages to the new folder and leaves INBOX empty (RFC 3501)."""
    mail = entries(3)
    write_file(account.inbox, b"".join(e for e, _ in mail), account)
    assert account.run("rename", "INBOX", "Saved").returncode == 0
    store = account.store()
    assert texts(store, b"Saved") == [message for _, message in mail]
    assert texts(store, b"INBOX") == []


@pytest.mark.parametrize("args, status, text", [
    (["check", "/nonexistent/mbox"], 1, "No such file"),
    (["check", "Nosuch"], 1, "No such file"),
    (["create", "INBOX"], 1, "INBOX"),
    (["delete", "Nosuch"], 1, "does not exist"),
    (["copy", "INBOX", "inbox"], 1, "same mailbox"),
    (["copy", "INBOX", "X", "--uids", "1:x"], 1, "invalid UID set"),
    (["transfer", "mbox:~", "mbox:~"], 1, "same location"),
    (["frobnicate"], 2, "invalid choice"),
    ([], 2, "COMMAND"),
])
def test_errors_give_a_message_and_a_non_zero_status(account, args, status, text):
    """Failures name the problem on stderr, with no traceback, and exit non-zero."""
    result = account.run(*args, user=bool(args) and args[0] != "frobnicate")
    assert result.returncode == status
    assert text in result.stderr
    assert "Traceback" not in result.stderr


def test_check_refuses_a_file_that_is_not_an_mbox(account):
    """A file without any From_ line is left alone, with an error."""
    path = account.dir / "spool" / "notes.txt"
    write_file(path, b"just some text\n", account)
    result = account.run("check", str(path), "--repair")
    assert result.returncode == 1
    assert "not an mbox" in result.stderr
    assert path.read_bytes() == b"just some text\n"


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root")
def test_as_root_names_need_a_user_and_paths_take_their_owner(account):
    """Root must say whose folders; for a path the owner's rights are taken, so new files are the owner's."""
    result = account.run("create", "Nobody", user=False)
    assert result.returncode == 1 and "--user" in result.stderr
    data, _ = metadata_mailbox()
    source = account.dir / "spool" / "old.mbox"
    write_file(source, data, account)
    result = account.run("copy", str(source), str(account.dir / "spool" / "new.mbox"), user=False)
    assert result.returncode == 0, result.stderr
    assert os.stat(account.dir / "spool" / "new.mbox").st_uid == account.uid
    assert all(p.stat().st_uid == account.uid for p in (account.home / ".pyimapd").glob("**/*"))


def run_on_terminal(command, env):
    """Run command with stdout on a pseudo-terminal; (status, everything it wrote there)."""
    master, slave = pty.openpty()
    process = subprocess.Popen(command, stdout=slave, stderr=subprocess.PIPE, env=env)
    os.close(slave)
    output = b""
    while True:
        try:
            chunk = os.read(master, 65536)
        except OSError:
            break
        if not chunk:
            break
        output += chunk
    os.close(master)
    return process.wait(timeout=GUARD_SECONDS), output


def test_progress_bar_only_on_a_terminal(account):
    """A long copy draws a bar on a terminal; into a pipe it prints only the report."""
    seed_folder(account, b"Big", 220)
    command = [sys.executable, "-m", "admin", "copy", "Big", "Copy", "--user", account.user]
    status, output = run_on_terminal(command, tool_environment(account.config))
    assert status == 0
    assert b"\r[" in output and b"100%" in output
    piped = account.run("copy", "Big", "Copy2")
    assert piped.returncode == 0
    assert "\r" not in piped.stdout and "%" not in piped.stdout


# -- the store side: appending with given UIDs --------------------------------------------

def test_append_with_uids_refuses_uids_that_do_not_rise(account):
    """UIDs at or below the last one, or out of order, are refused and nothing is written."""
    seed_folder(account, b"F", 4)
    mailbox = account.store().open_mailbox(b"F")
    try:
        size = os.path.getsize(account.home / "F")
        for uids in ((4, 9), (9, 8)):
            items = [(uid, b"Subject: x\n\nx\n", 0, (), (1700000000, 0)) for uid in uids]
            with pytest.raises(StoreError):
                append_with_uids(mailbox, items)
        assert os.path.getsize(account.home / "F") == size
        with pytest.raises(StoreError):
            append_with_uids(mailbox, [], uidvalidity=42)
    finally:
        mailbox.close()
