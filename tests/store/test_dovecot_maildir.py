"""Maildir both ways with real Dovecot: the same UIDs, UIDVALIDITY, flags, keywords, sizes, dates.

Dovecot's `imap` binary runs in preauth mode (as in test_dovecot_crossread)
with `mail_location = maildir:...:INDEX=MEMORY`, so everything it knows comes
from the files: dovecot-uidlist, dovecot-keywords and the file names.
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

DOVECOT_IMAP = "/usr/lib/dovecot/imap"
FLAG_NAMES = {fmt.SEEN: "\\Seen", fmt.ANSWERED: "\\Answered", fmt.FLAGGED: "\\Flagged",
              fmt.DELETED: "\\Deleted", fmt.DRAFT: "\\Draft"}
FETCH_LINE = re.compile(
    rb'\d+ \(UID (\d+) FLAGS \(([^)]*)\) RFC822\.SIZE (\d+) INTERNALDATE "([^"]+)"\)')

pytestmark = [
    pytest.mark.skipif(not os.path.exists(DOVECOT_IMAP), reason="dovecot-imapd is not installed"),
    pytest.mark.skipif(os.geteuid() != 0, reason="Dovecot refuses root; serving as nobody needs root"),
]


@pytest.fixture
def home():
    """A home directory whose parents Dovecot (as nobody) can reach."""
    root = Path(tempfile.mkdtemp(prefix="pyimapd-dovecot-maildir-"))
    root.chmod(0o755)
    (root / "home").mkdir()
    yield root / "home"
    shutil.rmtree(root)


def our_store(home):
    config = Config({"mail_location": "maildir:~/Maildir", "index_dir": str(home / ".pyimapd")})
    return open_store(Principal("u", os.getuid(), os.getgid(), str(home)), config)


def expected_state(mailbox):
    """(UIDVALIDITY, UIDNEXT, {uid: (flag names, size, unix date)}) as pyimapd sees it."""
    messages = {}
    for message in mailbox.messages:
        names = {name for bit, name in FLAG_NAMES.items() if message.flags & bit}
        messages[message.uid] = (names | set(message.keywords), message.size,
                                 mailbox.internal_date(message)[0])
    return mailbox.uidvalidity, mailbox.uidnext, messages


class Dovecot:
    """Dovecot's imap on the home's Maildir, as nobody, through imaplib."""

    def __init__(self, home):
        nobody = pwd.getpwnam("nobody")
        for path in [home] + [Path(d) / f for d, ds, fs in os.walk(home) for f in ds + fs]:
            os.chown(path, nobody.pw_uid, nobody.pw_gid)
        config = home.parent / "dovecot.conf"
        config.write_text(
            "mail_location = maildir:%s/Maildir:INDEX=MEMORY\n"
            "namespace inbox {\n  inbox = yes\n  separator = /\n}\n"
            "mail_uid = nobody\nmail_gid = %d\nssl = no\nlog_path = /dev/stderr\n"
            % (home, nobody.pw_gid))
        command = "env -i USER=nobody HOME=%s %s -c %s" % (
            shlex.quote(str(home)), DOVECOT_IMAP, shlex.quote(str(config)))
        self.client = imaplib.IMAP4_stream(command)

    def state(self, name):
        """(UIDVALIDITY, UIDNEXT, {uid: (flag names, size, unix date)}) of a mailbox, read-only."""
        client = self.client
        status, _ = client.select(name, readonly=True)
        assert status == "OK"
        uidvalidity = int(client.response("UIDVALIDITY")[1][0])
        uidnext = int(client.response("UIDNEXT")[1][0])
        status, lines = client.uid("FETCH", "1:*", "(UID FLAGS RFC822.SIZE INTERNALDATE)")
        assert status == "OK"
        messages = {}
        for line in lines:
            if line is None:
                continue
            match = FETCH_LINE.fullmatch(line)
            assert match, line
            names = set(match.group(2).decode().split()) - {"\\Recent"}
            messages[int(match.group(1))] = (names, int(match.group(3)), _unix(match.group(4)))
        client.close()
        return uidvalidity, uidnext, messages

    def command(self, *args):
        status, data = getattr(self.client, args[0])(*args[1:])
        assert status == "OK", (args, data)
        return data

    def close(self):
        try:
            self.client.logout()
        finally:
            self.client.shutdown()


def _unix(text):
    """Seconds since the epoch of an IMAP date-time."""
    import email.utils

    day, month, rest = text.decode().split("-", 2)
    year, clock, zone = rest.split(" ")
    return int(email.utils.mktime_tz(email.utils.parsedate_tz(
        "%s %s %s %s %s" % (day, month, year, clock, zone))))


def test_dovecot_reads_the_maildir_we_wrote(home):
    """Deliveries, APPEND, flags, keywords, EXPUNGE and a folder by pyimapd: Dovecot agrees."""
    store = our_store(home)
    inbox = store.open_inbox()
    try:
        inbox.append([(b"Subject: m%d\r\nMessage-ID: <m%d@x>\r\n\r\nbody %d\r\n" % (n, n, n),
                       0, (), (1700000000 + n, 60)) for n in range(1, 9)])
        inbox.claim_recent()
        inbox.store_flags([1, 3], "+", fmt.SEEN | fmt.ANSWERED, ())
        inbox.store_flags([2], "+", fmt.FLAGGED, ("$Label1", "Work"))
        inbox.store_flags([4, 5], "+", fmt.DELETED, ())
        inbox.append([(b"Subject: appended\r\n\r\nbody\r\n", fmt.DRAFT, ("Work",), (1700000000, 60))])
        inbox.expunge()
        inbox.store_flags([9], "-", 0, ("Work",))
        inbox.store_flags([6], "", fmt.FLAGGED, ("$Label1",))
        inbox.append([(b"Subject: still new\r\n\r\nunseen\r\n", 0, (), (1700000200, 0))])
        expected = expected_state(inbox)
    finally:
        inbox.close()
    store.create(b"lists/python")
    folder = store.open_mailbox(b"lists/python")
    folder.append([(b"Subject: p%d\r\n\r\n%s\r\n" % (n, b"x" * n), fmt.SEEN if n % 2 else 0,
                    ("Old",) if n == 3 else (), (1700000000 + n, 0)) for n in range(1, 6)])
    folder.store_flags([2], "+", fmt.DELETED, ())
    folder.expunge()
    expected_folder = expected_state(folder)
    folder.close()
    assert sorted(expected[2]) == [1, 2, 3, 6, 7, 8, 9, 10]
    dovecot = Dovecot(home)
    try:
        assert dovecot.state("INBOX") == expected
        assert dovecot.state("lists/python") == expected_folder
    finally:
        dovecot.close()


def test_we_read_the_maildir_dovecot_wrote(home):
    """APPEND, STORE, EXPUNGE, CREATE by Dovecot (and a file procmail-style in new/): pyimapd agrees."""
    store = our_store(home)
    store.open_inbox().close()  # the Maildir exists, as after a first delivery
    (home / "Maildir" / "new" / "1700000300.P1.mta").write_bytes(
        b"Subject: delivered\n\nby an MDA\n")
    dovecot = Dovecot(home)
    try:
        for n in range(1, 7):
            flags = "(\\Seen $Label1)" if n % 3 == 0 else "(\\Flagged)" if n % 2 else "()"
            dovecot.command("append", "INBOX", flags, imaplib.Time2Internaldate(1700000000 + n),
                            b"Subject: d%d\r\n\r\nbody %d\r\n" % (n, n))
        dovecot.command("select", "INBOX")
        dovecot.command("uid", "STORE", "2", "+FLAGS", "(\\Deleted Work)")
        dovecot.command("uid", "STORE", "3", "+FLAGS", "(\\Answered Work)")
        dovecot.command("expunge")
        dovecot.command("close")
        dovecot.command("create", "Archive/2024")
        dovecot.command("append", "Archive/2024", "(\\Seen Filed)",
                        imaplib.Time2Internaldate(1700000500), b"Subject: a\r\n\r\narchived\r\n")
        dovecot_inbox = dovecot.state("INBOX")
        dovecot_archive = dovecot.state("Archive/2024")
    finally:
        dovecot.close()
    store = our_store(home)
    for name, seen_by_dovecot in ((b"INBOX", dovecot_inbox), (b"Archive/2024", dovecot_archive)):
        mailbox = store.open_mailbox(name, readonly=True)
        try:
            assert expected_state(mailbox) == seen_by_dovecot
        finally:
            mailbox.close()
    assert len(dovecot_inbox[2]) == 6
