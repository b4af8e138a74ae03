"""The transcripts' mailboxes as Maildirs: the same messages, UIDs, flags, keywords and dates.

A transcript's mailbox is written as an mbox file (mailboxes/*.mbox or the
UW fixture); for a run against the Maildir driver it is converted here,
read through pyimapd's own mbox driver from a private copy, into the files
Dovecot's format has: one file per message (new/ for \\Recent mail, cur/
with `:2,` flag letters otherwise), dovecot-uidlist and dovecot-keywords.
"""

import os
import shutil
import tempfile
import time
from pathlib import Path

from auth import Principal
from mailstore import mboxformat as fmt
from mailstore import open_store
from server.config import Config

LETTERS = ((fmt.DRAFT, "D"), (fmt.FLAGGED, "F"), (fmt.ANSWERED, "R"), (fmt.SEEN, "S"),
           (fmt.DELETED, "T"))


def read_mbox(source):
    """(uidvalidity, last uid, keywords, [(uid, flags, keywords, (date, zone), text)]) of an mbox."""
    work = Path(tempfile.mkdtemp(prefix="pyimapd-convert-"))
    try:
        spool = work / "spool"
        shutil.copyfile(source, spool)
        config = Config({"mail_location": "mbox:%s:INBOX=%s" % (work, spool),
                         "index_dir": str(work / "index")})
        store = open_store(Principal("u", os.getuid(), os.getgid(), str(work)), config)
        mailbox = store.open_inbox(readonly=True)
        try:
            messages = [(m.uid, m.flags, m.keywords, mailbox.internal_date(m),
                         mailbox.message_text(m)) for m in mailbox.messages]
            return mailbox.uidvalidity, mailbox.last_uid, list(mailbox.keywords), messages
        finally:
            mailbox.close()
    finally:
        shutil.rmtree(work)


def write_maildir(source, maildir):
    """Make maildir (cur/, new/, tmp/ and Dovecot's files) hold the mbox file source."""
    uidvalidity, last_uid, keywords, messages = read_mbox(source)
    for part in ("cur", "new", "tmp"):
        (maildir / part).mkdir(parents=True, exist_ok=True)
    records = []
    for index, (uid, flags, names, (date, zone), text) in enumerate(messages):
        base = "%d.M%dP1.fixture" % (date, index)
        letters = "".join(letter for bit, letter in LETTERS if flags & bit) + "".join(
            chr(ord("a") + keywords.index(k)) for k in names if k in keywords)
        subdir = "cur" if flags & fmt.OLD else "new"
        name = base + ":2," + "".join(sorted(letters)) if subdir == "cur" or letters else base
        path = maildir / subdir / name
        path.write_bytes(text)
        os.utime(path, (date, date))
        records.append("%d Z%+d :%s\n" % (uid, zone, base))  # the zone, as APPEND records it
    (maildir / "dovecot-uidlist").write_text(
        "3 V%d N%d G%s\n" % (uidvalidity, last_uid + 1, "0" * 32) + "".join(records))
    if keywords:
        (maildir / "dovecot-keywords").write_text(
            "".join("%d %s\n" % item for item in enumerate(keywords)))


def deliver(source, maildir):
    """Deliver every message of an mbox file as an MDA does: tmp/, then new/."""
    for index, (_, _, _, _, text) in enumerate(read_mbox(source)[3]):
        name = "%d.M%dP%dQ%d.mda" % (time.time(), time.time() % 1 * 1e6, os.getpid(), index)
        (maildir / "tmp" / name).write_bytes(text)
        os.rename(maildir / "tmp" / name, maildir / "new" / name)


def snapshot(maildir):
    """{path: bytes} of every file in the Maildir, tmp/ aside (the =MAILBOX-UNCHANGED check)."""
    files = {}
    for directory, _, names in os.walk(maildir):
        relative = os.path.relpath(directory, maildir)
        if relative.split(os.sep)[-1] == "tmp":
            continue
        for name in names:
            files[os.path.join(relative, name)] = Path(directory, name).read_bytes()
    return files


def count_messages(maildir):
    """Messages in INBOX: the files in new/ and cur/."""
    return sum(len(os.listdir(maildir / part)) for part in ("new", "cur"))
