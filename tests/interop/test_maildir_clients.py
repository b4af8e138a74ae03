"""Python's poplib and imaplib against the real ipop3d and imapd with mail_location = maildir.

The servers run per connection behind the built-in listener, as inetd
starts them, log the real system user in through PAM and drop root; the
user's mail is ~/Maildir, delivered by an MDA (tmp/, then new/) and by
procmail during a session.  Each test checks the files afterwards.
"""

import imaplib
import os
import poplib
import re
import subprocess

import pytest

import mailgen
from clienttools import GUARD_SECONDS

PROCMAIL = "/usr/bin/procmail"


def maildir_of(setup):
    return setup.home / "Maildir"


def own_tree(top, account):
    for directory, subdirs, names in os.walk(top):
        os.chown(directory, account.pw_uid, account.pw_gid)
        for name in names:
            os.chown(os.path.join(directory, name), account.pw_uid, account.pw_gid)


@pytest.fixture
def maildir_setup(mail_setup):
    """The test user's mail as ~/Maildir (the generated messages in new/), served by maildir:."""
    maildir = maildir_of(mail_setup)
    for part in ("tmp", "new", "cur"):
        (maildir / part).mkdir(parents=True, mode=0o700)
    for number, message in enumerate(mail_setup.messages, 1):
        name = "%d.M%dP1.mda" % (mailgen.BASE_TIME + number, number)
        (maildir / "tmp" / name).write_bytes(mailgen.to_lf(message))
        os.rename(maildir / "tmp" / name, maildir / "new" / name)
    own_tree(maildir, mail_setup.account)
    # Absolute: PAM gives the real home of the system user, not this test's home.
    mail_setup.write_config(mail_location="maildir:%s" % maildir)
    return mail_setup


def files(maildir, folder=""):
    """Sorted (subdir, name) of a folder's message files."""
    root = maildir / folder
    return sorted((part, name) for part in ("new", "cur") for name in os.listdir(root / part))


def test_poplib_on_maildir_lists_retrieves_deletes_and_keeps_uidls(maildir_setup, start_pop3):
    """STAT/LIST with UW sizes, RETR byte-identical, DELE removes exactly those files at QUIT,
    the next session keeps every UIDL and shows retrieved mail as read."""
    listener = start_pop3(maildir_setup.config_path)
    pop = poplib.POP3(listener.host, listener.port, timeout=GUARD_SECONDS)
    pop.user(maildir_setup.user)
    pop.pass_(maildir_setup.password)
    sizes = [len(message) + 12 for message in maildir_setup.messages]
    assert pop.stat() == (len(sizes), sum(sizes))
    uidls = pop.uidl()[1]
    for number, message in enumerate(maildir_setup.messages, 1):
        status, downloaded = mailgen.split_status(b"".join(l + b"\r\n" for l in pop.retr(number)[1]))
        assert (status, downloaded) == ("  ", message)  # unread, \\Recent
    pop.dele(2)
    pop.dele(5)
    pop.quit()
    maildir = maildir_of(maildir_setup)
    remaining = files(maildir)
    assert len(remaining) == len(sizes) - 2
    assert all(part == "cur" and name.endswith(":2,S") for part, name in remaining)
    pop = poplib.POP3(listener.host, listener.port, timeout=GUARD_SECONDS)
    pop.user(maildir_setup.user)
    pop.pass_(maildir_setup.password)
    try:
        again = [line.split(b" ")[1] for line in pop.uidl()[1]]
        assert again == [line.split(b" ")[1] for n, line in enumerate(uidls, 1) if n not in (2, 5)]
        status, _ = mailgen.split_status(b"".join(l + b"\r\n" for l in pop.retr(1)[1]))
        assert status == "RO"
    finally:
        pop.quit()


def fetch_flags(client, uid):
    data = client.uid("FETCH", str(uid), "(FLAGS)")[1][0]
    return set(re.search(rb"FLAGS \(([^)]*)\)", data).group(1).decode().split())


def test_imaplib_on_maildir_reads_flags_appends_copies_and_sees_procmail_mail(
        maildir_setup, start_imap, tmp_path):
    """SELECT claims \\Recent (new/ to cur/), FETCH is byte-identical, STORE renames with :2,
    letters, APPEND/COPY give UIDPLUS codes, a procmail delivery shows up on NOOP, EXPUNGE unlinks."""
    listener = start_imap(maildir_setup.config_path)
    client = imaplib.IMAP4(listener.host, listener.port, timeout=GUARD_SECONDS)
    maildir = maildir_of(maildir_setup)
    count = len(maildir_setup.messages)
    try:
        client.login(maildir_setup.user, maildir_setup.password)
        assert client.select("INBOX")[1] == [b"%d" % count]
        assert client.response("RECENT")[1] == [b"%d" % count]
        assert not os.listdir(maildir / "new")
        for number, message in enumerate(maildir_setup.messages, 1):
            assert client.fetch(str(number), "(BODY.PEEK[])")[1][0][1] == message
        client.uid("STORE", "3", "+FLAGS", "(\\Flagged \\Answered Project)")
        assert fetch_flags(client, 3) == {"\\Flagged", "\\Answered", "Project", "\\Recent"}
        assert [n for p, n in files(maildir) if n.endswith(":2,FRa")]
        assert open(maildir / "dovecot-keywords").read() == "0 Project\n"
        kind, data = client.append("INBOX", "(\\Seen)", None, b"Subject: appended\r\n\r\nhello\r\n")
        assert kind == "OK" and re.search(rb"\[APPENDUID \d+ %d\]" % (count + 1), data[0])
        assert client.create("Archive/2025")[0] == "OK"
        kind, data = client.copy("1:2", "Archive/2025")
        assert kind == "OK" and re.search(rb"\[COPYUID \d+ 1:2 1:2\]", data[-1])
        assert len(files(maildir, ".Archive.2025")) == 2
        if os.path.exists(PROCMAIL):
            rcfile = tmp_path / "procmailrc"
            rcfile.write_text("LOGFILE=/dev/null\n:0\n%s/\n" % maildir)
            subprocess.run([PROCMAIL, "-m", str(rcfile)], check=True, timeout=GUARD_SECONDS,
                           input=b"Subject: by procmail\nMessage-ID: <pm@example.org>\n\nhi\n")
            own_tree(maildir, maildir_setup.account)
            client.noop()
            assert client.response("EXISTS")[1][-1] == b"%d" % (count + 2)
        client.uid("STORE", "1,4", "+FLAGS", "(\\Deleted)")
        kind, data = client.expunge()
        assert kind == "OK" and data == [b"4", b"1"]
        client.close()
    finally:
        client.logout()
    expected = count + 1 - 2 + (1 if os.path.exists(PROCMAIL) else 0)
    assert len(files(maildir)) == expected
