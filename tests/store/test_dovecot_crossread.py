"""Mailboxes this project wrote, read back by real Dovecot: the same UIDs, flags and keywords.

Dovecot's `imap` binary runs in preauth mode (started with USER and HOME in
its environment, as `doveadm exec imap` would) over Python's IMAP4_stream, on
a copy of the mbox files that pyimapd's mailstore wrote.
"""

import imaplib
import os
import pwd
import re
import shlex
import shutil
import tempfile
from pathlib import Path

import pytest

from auth import Principal
from mailstore import mboxformat as fmt
from mailstore import open_store
from server.config import Config

from test_mbox_store import delivery

DOVECOT_IMAP = "/usr/lib/dovecot/imap"
FLAG_NAMES = {fmt.SEEN: "\\Seen", fmt.ANSWERED: "\\Answered", fmt.FLAGGED: "\\Flagged",
              fmt.DELETED: "\\Deleted", fmt.DRAFT: "\\Draft"}
FETCH_LINE = re.compile(rb"\d+ \(UID (\d+) FLAGS \(([^)]*)\) RFC822\.SIZE (\d+)\)")

pytestmark = [
    pytest.mark.skipif(not os.path.exists(DOVECOT_IMAP), reason="dovecot-imapd is not installed"),
    pytest.mark.skipif(os.geteuid() != 0, reason="Dovecot refuses root; serving as nobody needs root"),
]


@pytest.fixture
def user_dirs():
    """A spool and a folder root, world-readable parents, owned by nobody for Dovecot."""
    root = Path(tempfile.mkdtemp(prefix="pyimapd-dovecot-"))
    root.chmod(0o755)
    (root / "home" / "mail").mkdir(parents=True)
    yield root
    shutil.rmtree(root)


def our_store(root):
    config = Config({"mail_location": "mbox:%s/home/mail:INBOX=%s/inbox" % (root, root),
                     "index_dir": str(root / "index"), "mbox_lock_timeout": 5})
    return open_store(Principal("u", os.getuid(), os.getgid(), str(root / "home")), config)


def expected_state(mailbox):
    """(UIDVALIDITY, UIDNEXT, {uid: (flag names, size)}) as pyimapd sees the mailbox."""
    messages = {}
    for message in mailbox.messages:
        names = {name for bit, name in FLAG_NAMES.items() if message.flags & bit}
        messages[message.uid] = (names | set(message.keywords), message.size)
    return mailbox.uidvalidity, mailbox.uidnext, messages


def dovecot_state(root, mailbox_name):
    """(UIDVALIDITY, UIDNEXT, {uid: (flag names, size)}) as Dovecot reports it (read-only)."""
    nobody = pwd.getpwnam("nobody")
    for path in [root] + [Path(d) / f for d, _, fs in os.walk(root) for f in fs + [""]]:
        os.chown(path, nobody.pw_uid, nobody.pw_gid)
    config = root / "dovecot.conf"
    config.write_text(
        "mail_location = mbox:%s/home/mail:INBOX=%s/inbox:INDEX=MEMORY\n"
        "mail_uid = nobody\nmail_gid = %d\nssl = no\nlog_path = /dev/stderr\n"
        "mbox_read_locks = fcntl\nmbox_write_locks = fcntl\n" % (root, root, nobody.pw_gid))
    command = "env -i USER=nobody HOME=%s %s -c %s" % (
        shlex.quote(str(root / "home")), DOVECOT_IMAP, shlex.quote(str(config)))
    client = imaplib.IMAP4_stream(command)
    try:
        status, _ = client.select(mailbox_name, readonly=True)
        assert status == "OK"
        uidvalidity = int(client.response("UIDVALIDITY")[1][0])
        uidnext = int(client.response("UIDNEXT")[1][0])
        status, lines = client.uid("FETCH", "1:*", "(UID FLAGS RFC822.SIZE)")
        assert status == "OK"
        messages = {}
        for line in lines:
            if line is None:
                continue
            match = FETCH_LINE.fullmatch(line)
            assert match, line
            names = set(match.group(2).decode().split()) - {"\\Recent"}
            messages[int(match.group(1))] = (names, int(match.group(3)))
        client.logout()
    finally:
        client.shutdown()
    return uidvalidity, uidnext, messages


def test_dovecot_reads_inbox_flags_keywords_and_uids_we_wrote(user_dirs):
    """After deliveries, flag and keyword changes, APPEND and EXPUNGE by pyimapd, Dovecot agrees."""
    (user_dirs / "inbox").write_bytes(b"".join(delivery(n) for n in range(1, 9)))
    store = our_store(user_dirs)
    mailbox = store.open_inbox()
    try:
        mailbox.claim_recent()
        mailbox.store_flags([1, 3], "+", fmt.SEEN | fmt.ANSWERED, ())
        mailbox.store_flags([2], "+", fmt.FLAGGED, ("$Label1", "Work"))
        mailbox.store_flags([4, 5], "+", fmt.DELETED, ())
        mailbox.append([(b"Subject: appended\r\n\r\nbody\r\n", fmt.DRAFT, ("Work",),
                         (1700000000, 60))])
        mailbox.expunge()
        mailbox.store_flags([9], "-", 0, ("Work",))
        mailbox.store_flags([6], "", fmt.FLAGGED, ("$Label1",))
        expected = expected_state(mailbox)
    finally:
        mailbox.close()
    assert sorted(expected[2]) == [1, 2, 3, 6, 7, 8, 9]
    assert dovecot_state(user_dirs, "INBOX") == expected


def test_dovecot_reads_a_folder_we_created_and_filled(user_dirs):
    """A folder made by CREATE (UW pseudo-message) and filled by APPEND keeps its UIDs in Dovecot."""
    store = our_store(user_dirs)
    store.create(b"Archive")
    folder = store.open_mailbox(b"Archive")
    try:
        folder.append([(b"Subject: a%d\r\n\r\nbody %d\r\n" % (n, n), fmt.SEEN if n % 2 else 0,
                        ("Old",) if n == 3 else (), (1700000000 + n, 0)) for n in range(1, 6)])
        folder.store_flags([2], "+", fmt.DELETED, ())
        folder.expunge()
        expected = expected_state(folder)
    finally:
        folder.close()
    assert sorted(expected[2]) == [1, 3, 4, 5]
    assert dovecot_state(user_dirs, "Archive") == expected
