"""A full disk and a read-only spool: refused with a clear NO or -ERR, nothing lost, still readable.

The users' spools, homes and index directories live on a small tmpfs mounted
by the test (root only; skipped otherwise).  Real imapd and ipop3d processes
(on a socket pair, as inetd starts them) are in the middle of a session when
the fault arrives: the file system fills up (a filler file takes every free
block), or the spool and index directories lose their write permission (a
mailbox made read-only under a running session).  Between sessions the whole
file system is also remounted read-only.  Every refusal must be a tagged NO
or -ERR with a response code and no exception text, the refused change must
leave no trace (in the file, and in what the session shows), and once the
fault is gone every message is there, intact, with its UID.

Every test runs on mbox and on Maildir (the `driver` fixture).  On Maildir
"read-only spool" makes ~/Maildir and its cur/, new/ and tmp/ read-only,
and "read-only index" only ~/Maildir itself, where dovecot-uidlist, its lock
and dovecot-keywords live.  An expunge on Maildir is an unlink in cur/, which
needs neither free space nor a writable ~/Maildir: there it succeeds (see
EXPECTED_OK), and the test checks that it did all it said.
"""

import os
import poplib
import random
import re
import subprocess
import tempfile

import pytest

from auth import Principal
from faultlib import by_message_id, generated_message, read_entries
from faultroom import hang_up
from mailstore import open_store
from server.config import Config

USER = "alice"
MESSAGES = 20
INDEXED_MESSAGES = 220   # above mboxindex.MIN_MESSAGES: close() writes index and cache
FS_SIZE = "2m"
PAGE = 4096
# A refusal names its reason in a response code (RFC 5530, RFC 2449) and
# carries no exception text, errno or path.
IMAP_REFUSAL = re.compile(rb"^\[[A-Z-]+\] [^\[\]/]+$")
POP3_REFUSAL = re.compile(rb"^-ERR \[(SYS/TEMP|SYS/PERM|IN-USE)\] [^\[\]/]+$")
LEAKS = (b"Traceback", b"Errno", b"Error:", b"Exception")


@pytest.fixture
def small_fs():
    """A FS_SIZE tmpfs mounted for this test alone; unmounted afterwards."""
    if os.geteuid() != 0:
        pytest.skip("mounting a small file system needs root")
    mountpoint = tempfile.mkdtemp(prefix="pyimapd-tmpfs-")
    result = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=%s,mode=0755" % FS_SIZE,
                             "tmpfs", mountpoint], capture_output=True)
    if result.returncode != 0:
        os.rmdir(mountpoint)
        pytest.skip("cannot mount a tmpfs here: %s" % result.stderr.decode().strip())
    try:
        yield mountpoint
    finally:
        subprocess.run(["umount", "-l", mountpoint], check=True)
        os.rmdir(mountpoint)


class DiskFull:
    """A filler file that leaves `leave` bytes free (tmpfs counts whole pages)."""

    def __init__(self, room, leave=0):
        self.room, self.leave = room, leave
        self.filler = room.root / "filler"

    def apply(self):
        self.clear()
        st = os.statvfs(self.room.root)
        free = st.f_bavail * st.f_frsize
        with open(self.filler, "wb") as handle:
            handle.write(bytes(max(0, free - self.leave)))

    def clear(self):
        self.filler.unlink(missing_ok=True)


class ReadOnlySpool:
    """The spool file, its directory and the user's index directory lose write permission
    (Maildir: ~/Maildir and its cur/, new/, tmp/)."""

    def __init__(self, room):
        if room.driver.name == "maildir":
            maildir = room.inbox(USER)
            self.paths = [(path, 0o500, 0o700) for path in
                          (maildir, maildir / "cur", maildir / "new", maildir / "tmp")]
            return
        self.paths = [(room.spool_dir, 0o555, 0o1777),
                      (room.home(USER) / ".pyimapd", 0o500, 0o700),
                      (room.spool(USER), 0o400, 0o600)]

    def apply(self):
        for path, mode, _ in self.paths:
            os.chmod(path, mode)

    def clear(self):
        for path, _, mode in self.paths:
            os.chmod(path, mode)


class ReadOnlyIndex(ReadOnlySpool):
    """Only the index directory is read-only: a full or read-only home (~/.pyimapd) while
    the spool in /var/mail is fine (Maildir: ~/Maildir, holding dovecot-uidlist, while
    cur/, new/ and tmp/ are fine)."""

    def __init__(self, room):
        if room.driver.name == "maildir":
            self.paths = [(room.inbox(USER), 0o500, 0o700)]
        else:
            self.paths = [(room.home(USER) / ".pyimapd", 0o500, 0o700)]


FAULTS = {"full-disk": DiskFull, "read-only-spool": ReadOnlySpool,
          "read-only-index": ReadOnlyIndex}
# (driver, fault): commands that need neither space nor the faulty directory there, and so
# must succeed: Maildir's EXPUNGE and POP3 UPDATE only unlink (and rename) in cur/.
EXPECTED_OK = {("maildir", "full-disk"): {"expunge", "pop3-quit"},
               ("maildir", "read-only-index"): {"expunge", "pop3-quit"}}


def expected_ok(room, fault, command):
    return command in EXPECTED_OK.get((room.driver.name, fault), ())


def make_room(mail_room, small_fs, driver, messages=MESSAGES):
    """A user on the small file system whose INBOX a first session has already opened."""
    room = mail_room([USER], parent=small_fs, driver=driver)
    rng = random.Random(messages)
    room.write_inbox(USER, [generated_message(i, rng, b"inbox")
                            for i in range(1, messages + 1)])
    client = login(room)
    client.select("INBOX")
    client.logout()
    client.server.wait()
    return room


def login(room):
    client = room.imap_session()
    client.login(USER, room.users[USER])
    return client


def read_back(room):
    """INBOX as the files hold it now, read here with an index directory off the small disk
    (a Maildir's files are handed back to the user: reading may number new mail)."""
    with tempfile.TemporaryDirectory() as index_dir:
        config = Config({"mail_location": room.settings["mail_location"],
                         "index_dir": index_dir})
        store = open_store(Principal(USER, os.getuid(), os.getgid(), str(room.home(USER))),
                           config)
        mailbox = store.open_inbox(readonly=True)
        try:
            return read_entries(mailbox)
        finally:
            mailbox.close()
            if room.driver.name == "maildir":
                room.own_tree(room.inbox(USER))


def assert_refused(status, data):
    """A tagged NO with a response code and a plain text."""
    text = data[0] if data else b""
    assert status == "NO", (status, data)
    assert IMAP_REFUSAL.match(text) and not any(leak in text for leak in LEAKS), text


def assert_unchanged(before, after):
    """Every message still there once, with UID, header, body and flags as before."""
    assert [(e.mid, e.uid, e.header, e.digest, e.flags, e.keywords) for e in after] == \
        [(e.mid, e.uid, e.header, e.digest, e.flags, e.keywords) for e in before]


def fetch_flags(client, uids):
    status, data = client.uid("FETCH", uids, "FLAGS")
    assert status == "OK", data
    return sorted(item for item in data if item)


@pytest.mark.parametrize("fault", sorted(FAULTS))
def test_append_refused_by_the_fault_stores_nothing(mail_room, small_fs, fault, driver):
    """APPEND on a full disk or a read-only spool gets NO, and the message is not stored."""
    room = make_room(mail_room, small_fs, driver)
    client = login(room)
    client.select("INBOX")
    before = read_back(room)
    trouble = FAULTS[fault](room)
    trouble.apply()
    try:
        message = (b"From: Client <c@example.org>\r\nSubject: refused\r\n"
                   b"Message-ID: <refused@example.org>\r\n\r\nnot stored\r\n")
        assert_refused(*client.append("INBOX", None, None, message))
        assert client.noop()[0] == "OK"
        after_refusal = read_back(room)
    finally:
        trouble.clear()
        hang_up(client)
        client.server.wait()
    assert_unchanged(before, after_refusal)
    assert_unchanged(before, read_back(room))


def test_append_at_every_free_space_is_stored_exactly_when_acknowledged(mail_room, small_fs,
                                                                       capsys, driver):
    """With 0 to 4 pages free, each APPEND that gets OK is stored once and intact, and each
    that gets NO is not stored at all (a NO after the text was written would make the
    client's retry a duplicate)."""
    room = make_room(mail_room, small_fs, driver)
    client = login(room)
    client.select("INBOX")
    disk = DiskFull(room)
    outcomes = []
    try:
        for pages in range(5):
            disk.leave = pages * PAGE
            disk.apply()
            mid = b"<space-%d@example.org>" % pages
            message = (b"From: Client <c@example.org>\r\nSubject: %d pages free\r\n"
                       b"Message-ID: %s\r\n\r\n" % (pages, mid) + b"text\r\n" * 300)
            status, data = client.append("INBOX", None, None, message)
            if status == "NO":
                assert_refused(status, data)
            outcomes.append((pages, mid, status))
    finally:
        disk.clear()
        hang_up(client)
        client.server.wait()
    stored = by_message_id(read_back(room))
    with capsys.disabled():
        print("\n%s APPEND with 0..4 pages free (pages: reply/copies stored): %s" % (
            driver.name, ", ".join("%d: %s/%d" % (pages, status, len(stored.get(mid, [])))
                                   for pages, mid, status in outcomes)))
    assert [len(stored.get(mid, [])) for _, mid, status in outcomes] == \
        [1 if status == "OK" else 0 for _, _, status in outcomes]
    assert {status for _, _, status in outcomes} == {"OK", "NO"}


@pytest.mark.parametrize("fault", sorted(FAULTS))
def test_store_refused_by_the_fault_changes_no_flags(mail_room, small_fs, fault, driver):
    """STORE on a full disk or a read-only spool gets NO, and neither the file nor the
    session's own FETCH FLAGS shows the refused flags."""
    room = make_room(mail_room, small_fs, driver)
    client = login(room)
    client.select("INBOX")
    shown_before = fetch_flags(client, "1:5")
    before = read_back(room)
    trouble = FAULTS[fault](room)
    trouble.apply()
    try:
        assert_refused(*client.uid("STORE", "1:5", "+FLAGS", "(\\Flagged Urgent)"))
        shown_after = fetch_flags(client, "1:5")
    finally:
        trouble.clear()
    try:
        assert_unchanged(before, read_back(room))
        assert shown_after == shown_before
        assert client.uid("STORE", "1:5", "+FLAGS", "(\\Flagged Urgent)")[0] == "OK"
    finally:
        hang_up(client)
        client.server.wait()


@pytest.mark.parametrize("fault", sorted(FAULTS))
def test_expunge_under_the_fault_removes_all_or_nothing(mail_room, small_fs, fault, driver):
    """EXPUNGE on a full disk or a read-only spool gets NO and removes nothing (or, where it
    needs no space and no metadata, OK and removes exactly the \\Deleted message); once the
    fault is gone the same EXPUNGE removes exactly that message."""
    room = make_room(mail_room, small_fs, driver)
    client = login(room)
    client.select("INBOX")
    client.uid("STORE", "2", "+FLAGS", "(\\Deleted)")
    before = read_back(room)
    trouble = FAULTS[fault](room)
    trouble.apply()
    try:
        status, data = client.expunge()
        during = read_back(room)
    finally:
        trouble.clear()
    try:
        if expected_ok(room, fault, "expunge"):
            assert status == "OK" and data == [b"2"], (status, data)
        else:
            assert_refused(status, data)
            assert_unchanged(before, during)
            status, data = client.expunge()
            assert status == "OK" and data == [b"2"], data
    finally:
        hang_up(client)
        client.server.wait()
    assert [e.mid for e in read_back(room)] == [e.mid for e in before if e.uid != 2]


@pytest.mark.parametrize("fault", sorted(FAULTS))
def test_pop3_quit_under_the_fault_deletes_all_or_nothing(mail_room, small_fs, fault, driver):
    """POP3 QUIT after DELE on a full disk or a read-only spool answers -ERR [SYS/TEMP] and
    deletes nothing, and a later session can delete the same messages (or, where it needs
    no space and no metadata, +OK and exactly the DELEd messages are gone)."""
    room = make_room(mail_room, small_fs, driver)
    before = read_back(room)
    pop = room.pop3_session()
    pop.user(USER)
    pop.pass_(room.users[USER])
    pop.retr(1)
    pop.dele(3)
    pop.dele(4)
    trouble = FAULTS[fault](room)
    trouble.apply()
    try:
        if expected_ok(room, fault, "pop3-quit"):
            assert pop.quit().startswith(b"+OK")
        else:
            with pytest.raises(poplib.error_proto) as refusal:
                pop.quit()
            assert POP3_REFUSAL.match(refusal.value.args[0]), refusal.value
        pop.server.wait()
        during = read_back(room)
    finally:
        trouble.clear()
        hang_up(pop)
    if expected_ok(room, fault, "pop3-quit"):
        assert [e.uid for e in during] == [e.uid for e in before if e.uid not in (3, 4)]
        return
    assert_unchanged(before, during)
    pop = room.pop3_session()
    pop.user(USER)
    pop.pass_(room.users[USER])
    pop.dele(3)
    assert pop.quit().startswith(b"+OK")
    pop.server.wait()
    assert [e.uid for e in read_back(room)] == [e.uid for e in before if e.uid != 3]


@pytest.mark.parametrize("fault", sorted(FAULTS))
def test_index_and_cache_writes_under_the_fault_are_harmless(mail_room, small_fs, fault):
    """A session on a 220-message mbox that cannot write its index and field cache
    still answers every FETCH and LOGOUT, and the next session sees the same messages,
    UIDs and ENVELOPEs."""
    room = make_room(mail_room, small_fs, "mbox", INDEXED_MESSAGES)
    index_dir = room.home(USER) / ".pyimapd"
    for name in os.listdir(index_dir):
        if not name.startswith("journal-"):
            os.unlink(index_dir / name)
    client = login(room)
    client.select("INBOX")
    trouble = FAULTS[fault](room)
    trouble.apply()
    try:
        status, during = client.uid("FETCH", "1:*", "(FLAGS ENVELOPE)")
        assert status == "OK"
        assert client.logout()[0] == "BYE"
        client.server.wait()
        assert client.server.returncode == 0
    finally:
        trouble.clear()
    assert not [name for name in os.listdir(index_dir) if name.endswith(".tmp")]
    client = login(room)
    client.select("INBOX")
    status, after = client.uid("FETCH", "1:*", "(FLAGS ENVELOPE)")
    client.logout()
    client.server.wait()
    assert status == "OK" and after == during and len(after) == INDEXED_MESSAGES


@pytest.mark.parametrize("fault", sorted(FAULTS))
def test_new_mail_under_the_fault_keeps_the_mailbox_readable(mail_room, small_fs, fault,
                                                              driver):
    """Mail an MTA delivered just before the fault, which the next session would number
    (mbox: UID headers and index; Maildir: dovecot-uidlist), does not make INBOX unreadable:
    EXAMINE and FETCH answer OK with every message numbered so far, and once the fault is
    gone the new mail gets UIDs above them, nothing lost or renumbered."""
    room = make_room(mail_room, small_fs, driver)
    before = read_back(room)
    rng = random.Random(7)
    for number in range(3):
        room.deliver(USER, generated_message(100 + number, rng, b"late"))
    trouble = FAULTS[fault](room)
    trouble.apply()
    try:
        client = login(room)
        status, data = client.select("INBOX", readonly=True)
        assert status == "OK", data
        status, fetched = client.uid("FETCH", "1:*", "(FLAGS BODY.PEEK[HEADER.FIELDS "
                                                      "(MESSAGE-ID)])")
        assert status == "OK", fetched
        shown = [item[1].split(b":", 1)[1].strip() for item in fetched
                 if isinstance(item, tuple)]
        client.logout()
        client.server.wait()
    finally:
        trouble.clear()
    assert shown[:len(before)] == [e.mid for e in before]
    after = read_back(room)
    assert [(e.mid, e.uid) for e in after[:len(before)]] == [(e.mid, e.uid) for e in before]
    assert sorted(e.mid for e in after[len(before):]) == \
        [b"<late-%d@example.org>" % (100 + n) for n in range(3)]
    assert min(e.uid for e in after[len(before):]) > before[-1].uid


def pop3_update_refusal(room):
    """Log in, DELE 1 and QUIT; the -ERR line that refused the login or the update."""
    pop = room.pop3_session()
    try:
        pop.user(USER)
        try:
            pop.pass_(room.users[USER])
        except poplib.error_proto as refusal:
            return refusal.args[0]  # the maildrop cannot be opened for update at all
        pop.dele(1)
        with pytest.raises(poplib.error_proto) as refusal:
            pop.quit()
        return refusal.value.args[0]
    finally:
        hang_up(pop)
        pop.server.wait()


def test_read_only_file_system_keeps_mail_readable(mail_room, small_fs, driver):
    """With the whole file system remounted read-only, EXAMINE and FETCH still read every
    message, SELECT, APPEND and a POP3 update are refused with a clear reply, and after
    the remount read-write nothing is lost."""
    room = make_room(mail_room, small_fs, driver)
    before = read_back(room)
    subprocess.run(["mount", "-o", "remount,ro", small_fs], check=True)
    try:
        client = login(room)
        status, data = client.select("INBOX", readonly=True)
        assert status == "OK", data
        status, bodies = client.uid("FETCH", "1:*", "BODY.PEEK[]")
        assert status == "OK" and len([b for b in bodies if isinstance(b, tuple)]) == len(before)
        status, data = client.select("INBOX")
        assert status == "OK" or IMAP_REFUSAL.match(data[0]), data
        assert_refused(*client.append("INBOX", None, None,
                                      b"Subject: x\r\nMessage-ID: <ro@example.org>\r\n\r\nx\r\n"))
        client.logout()
        client.server.wait()
        assert POP3_REFUSAL.match(pop3_update_refusal(room)), "POP3 on a read-only file system"
    finally:
        subprocess.run(["mount", "-o", "remount,rw", small_fs], check=True)
    assert_unchanged(before, read_back(room))
