"""Mailboxes written by real UW imapd and real Dovecot read back as UW reads them.

The fixtures (/work/shared/fixtures/compat, see its README) hold the files each
server left behind and what that server reported about them.  For UW's files
every reported value must match.  For Dovecot's files we follow UW where the
two servers disagree (README "Where the two servers disagree"); each such
difference is an explicit, named expectation below, and everything else must
match Dovecot exactly.
"""

import datetime
import hashlib
import json
import os
import re
import shutil
import time
from pathlib import Path

import pytest

from auth import Principal
from mailstore import mboxformat as fmt
from mailstore import open_store
from mailstore.fromline import format_internaldate, parse_from_line
from server.config import Config

FIXTURES = Path("/work/shared/fixtures/compat")
MAILBOXES = ("INBOX", "Saved")

# Messages in Dovecot's files that carry the Content-Length header Dovecot
# writes (README "What each server wrote"): pub-02 and pub-07, the two
# appended messages (UIDs 13, 14), and every copy in Saved.
DOVECOT_CONTENT_LENGTH_UIDS = {"INBOX": {2, 7, 13, 14}, "Saved": {1, 2, 3, 4, 5}}
# pub-12 (UID 12 of Dovecot's INBOX) ends right before the next From_ line.
DOVECOT_UNSEPARATED_UID = 12
# From_ lines in Dovecot's files that carry a numeric zone UW keeps in
# INTERNALDATE: only pub-04's delivery line (`... 2024 +0200`); Dovecot's own
# From_ lines have no zone, so UW shows them in the server zone, UTC here.
DOVECOT_FROM_LINE_ZONES = {("INBOX", 4): 120}


@pytest.fixture(autouse=True)
def utc(monkeypatch):
    """The fixtures were recorded on servers running in UTC."""
    monkeypatch.setenv("TZ", "UTC")
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


def expected_for(case):
    """The fixture's expected.json, as {mailbox name: entry}."""
    data = json.loads((FIXTURES / case / "expected.json").read_text())
    return {entry["name"]: entry for entry in data["mailboxes"]}


def file_state(path):
    """What must not change when a mailbox is only read: bytes and mtime."""
    st = os.stat(path)
    return hashlib.sha256(Path(path).read_bytes()).hexdigest(), st.st_size, st.st_mtime_ns


def install_copy(case, name, tmp_path):
    """Install a copy of a fixture mailbox as a user's INBOX; return (path, store)."""
    home = tmp_path / "home"
    home.mkdir(exist_ok=True)
    inbox = tmp_path / ("%s-%s.mbox" % (case, name))
    shutil.copyfile(FIXTURES / case / ("%s.mbox" % name), inbox)
    config = Config({"mail_location": "mbox:%s:INBOX=%s" % (home, inbox),
                     "index_dir": str(tmp_path / "index"), "mbox_lock_timeout": 5})
    return inbox, open_store(Principal("u", os.getuid(), os.getgid(), str(home)), config)


def on_the_wire(chunks):
    """Bytes as an IMAP server sends them: stored CRs dropped, every LF as CRLF."""
    return b"".join(bytes(chunk) for chunk in chunks).replace(b"\r", b"").replace(b"\n", b"\r\n")


def subject_fetch(header):
    """The BODY.PEEK[HEADER.FIELDS (SUBJECT)] literal for a wire-form header."""
    fields = re.findall(rb"^Subject:[^\r]*\r\n(?:[ \t][^\r]*\r\n)*", header, re.M | re.I)
    return b"".join(fields) + b"\r\n"


def subject_value(header):
    """The unfolded Subject value (CRLF removed, whitespace kept), or None."""
    match = re.search(rb"^Subject:([^\r]*\r\n(?:[ \t][^\r]*\r\n)*)", header, re.M | re.I)
    if match is None:
        return None
    return match.group(1).replace(b"\r\n", b"").lstrip(b" ").decode("utf-8")


def flag_names(message):
    """The message's flags as IMAP names, sorted as in expected.json."""
    names = [name for bit, name in fmt.FLAG_NAMES if message.flags & bit]
    return sorted(names + list(message.keywords))


def internaldate(mailbox, message):
    """INTERNALDATE from the message's From_ line, as UW prints it."""
    line = bytes(mailbox.map[message.start:fmt.line_end(mailbox.map, message.start)])
    _, timestamp, offset = parse_from_line(line.rstrip(b"\n"))
    return format_internaldate(timestamp, offset)


def report(mailbox):
    """What an EXAMINE plus per-message FETCHes would report, in expected.json's terms."""
    messages = []
    for seq, message in enumerate(mailbox.messages, 1):
        wire = on_the_wire(mailbox.visible_chunks(message))
        header = on_the_wire(mailbox.visible_chunks(message, header_only=True))
        messages.append({
            "seq": seq, "uid": message.uid, "flags": flag_names(message),
            "internaldate": internaldate(mailbox, message),
            "rfc822_size": message.size, "body_size": len(wire),
            "body_sha256": hashlib.sha256(wire).hexdigest(),
            "subject_header_sha256": hashlib.sha256(subject_fetch(header)).hexdigest(),
            "subject": subject_value(header), "wire": wire})
    system = [name for _, name in fmt.FLAG_NAMES]
    return {"uidvalidity": mailbox.uidvalidity, "uidnext": mailbox.uidnext,
            "exists": len(mailbox.messages), "flags": sorted(list(mailbox.keywords) + system),
            "messages": messages}


def read_report(case, name, tmp_path):
    """Open a fixture copy read-only, report it, and close it."""
    _, store = install_copy(case, name, tmp_path)
    mailbox = store.open_inbox(readonly=True)
    try:
        return report(mailbox)
    finally:
        mailbox.close()


COMPARED = ("seq", "uid", "flags", "internaldate", "rfc822_size", "body_size", "body_sha256",
            "subject_header_sha256", "subject")


@pytest.mark.parametrize("name", MAILBOXES)
def test_uw_fixture_reads_exactly_as_uw_reported(name, tmp_path):
    """Every value UW reported for its own file (except \\Recent) is what we report."""
    expected = expected_for("uw")[name]
    got = read_report("uw", name, tmp_path)
    for key in ("uidvalidity", "uidnext", "exists", "flags"):
        assert got[key] == expected[key], key
    assert len(got["messages"]) == len(expected["messages"])
    for mine, theirs in zip(got["messages"], expected["messages"]):
        assert {k: mine[k] for k in COMPARED} == {k: theirs[k] for k in COMPARED}


@pytest.mark.parametrize("name", MAILBOXES)
def test_dovecot_fixture_mailbox_state_matches(name, tmp_path):
    """UIDVALIDITY, UIDNEXT, EXISTS and the FLAGS list of Dovecot's file match Dovecot's."""
    expected = expected_for("dovecot")[name]
    got = read_report("dovecot", name, tmp_path)
    for key in ("uidvalidity", "uidnext", "exists", "flags"):
        assert got[key] == expected[key], key


@pytest.mark.parametrize("name", MAILBOXES)
def test_dovecot_fixture_messages_match_where_servers_agree(name, tmp_path):
    """UIDs, flags, keywords and Subjects match Dovecot; so do sizes and bodies of
    every message that is neither Content-Length-bearing nor pub-12."""
    expected = expected_for("dovecot")[name]
    got = read_report("dovecot", name, tmp_path)
    assert len(got["messages"]) == len(expected["messages"])
    differing = DOVECOT_CONTENT_LENGTH_UIDS[name] | (
        {DOVECOT_UNSEPARATED_UID} if name == "INBOX" else set())
    for mine, theirs in zip(got["messages"], expected["messages"]):
        keys = ["seq", "uid", "flags", "subject_header_sha256", "subject"]
        if mine["uid"] not in differing:
            keys += ["rfc822_size", "body_size", "body_sha256"]
        assert {k: mine[k] for k in keys} == {k: theirs[k] for k in keys}


def content_length_line(wire):
    """The Content-Length header line (with its CRLF) in a wire-form message, or None."""
    header = wire[:wire.find(b"\r\n\r\n") + 2]
    match = re.search(rb"^Content-Length:[^\r]*\r\n", header, re.M | re.I)
    return match.group(0) if match else None


@pytest.mark.parametrize("name", MAILBOXES)
def test_dovecot_content_length_is_shown_and_counted_as_uw_does(name, tmp_path):
    """UW shows Dovecot's Content-Length header: our size is Dovecot's plus that
    line in CRLF form, and our BODY[] without that line is Dovecot's BODY[]."""
    expected = {m["uid"]: m for m in expected_for("dovecot")[name]["messages"]}
    got = read_report("dovecot", name, tmp_path)
    carrying = {m["uid"] for m in got["messages"] if content_length_line(m["wire"])}
    assert carrying == DOVECOT_CONTENT_LENGTH_UIDS[name]
    for mine in got["messages"]:
        if mine["uid"] not in carrying:
            continue
        theirs = expected[mine["uid"]]
        line = content_length_line(mine["wire"])
        assert 20 <= len(line) <= 22  # the README's range for these files
        assert mine["rfc822_size"] == theirs["rfc822_size"] + len(line)
        assert mine["body_size"] == mine["rfc822_size"]
        without = mine["wire"].replace(line, b"", 1)
        assert hashlib.sha256(without).hexdigest() == theirs["body_sha256"]


def test_dovecot_pub12_counts_the_lf_before_the_next_from_line(tmp_path):
    """pub-12 runs straight into the next From_ line: UW counts its last LF (313, not
    Dovecot's 311), so our BODY[] is Dovecot's plus one CRLF."""
    theirs = {m["uid"]: m for m in expected_for("dovecot")["INBOX"]["messages"]}[12]
    mine = {m["uid"]: m for m in read_report("dovecot", "INBOX", tmp_path)["messages"]}[12]
    assert theirs["rfc822_size"] == 311
    assert mine["rfc822_size"] == mine["body_size"] == theirs["rfc822_size"] + 2 == 313
    assert mine["wire"].endswith(b"\r\n")
    assert hashlib.sha256(mine["wire"][:-2]).hexdigest() == theirs["body_sha256"]


def uw_form(dovecot_date, offset_minutes):
    """Dovecot's INTERNALDATE instant shown as UW would: in the given zone, day space-padded."""
    instant = datetime.datetime.strptime(dovecot_date, "%d-%b-%Y %H:%M:%S %z")
    zone = datetime.timezone(datetime.timedelta(minutes=offset_minutes))
    local = instant.astimezone(zone)
    sign = "-" if offset_minutes < 0 else "+"
    return "%2d-%s %s%02d%02d" % (local.day, local.strftime("%b-%Y %H:%M:%S"), sign,
                                  abs(offset_minutes) // 60, abs(offset_minutes) % 60)


@pytest.mark.parametrize("name", MAILBOXES)
def test_dovecot_internaldate_is_the_same_instant_in_uw_form(name, tmp_path):
    """INTERNALDATE names Dovecot's instant, but as UW prints it: day padded with a
    space and the From_ line's numeric zone kept (pub-04's +0200), else the server's UTC."""
    expected = expected_for("dovecot")[name]["messages"]
    got = read_report("dovecot", name, tmp_path)["messages"]
    for mine, theirs in zip(got, expected):
        offset = DOVECOT_FROM_LINE_ZONES.get((name, mine["uid"]), 0)
        assert mine["internaldate"] == uw_form(theirs["internaldate"], offset)
    differing = sum(m["internaldate"] != t["internaldate"] for m, t in zip(got, expected))
    assert differing > 0  # the fixture does exercise the difference


@pytest.mark.parametrize("case", ("uw", "dovecot"))
@pytest.mark.parametrize("name", MAILBOXES)
@pytest.mark.parametrize("readonly", (True, False), ids=("readonly", "readwrite"))
def test_reading_a_fixture_leaves_the_file_unchanged(case, name, readonly, tmp_path):
    """Opening a fixture (read-only or read-write), reading every message and closing
    it without a commit leaves its bytes and mtime as they were."""
    path, store = install_copy(case, name, tmp_path)
    before = file_state(path)
    assert before[0] == expected_for(case)[name]["file_sha256"]
    mailbox = store.open_inbox(readonly=readonly)
    try:
        for message in mailbox.messages:
            on_the_wire(mailbox.visible_chunks(message))
    finally:
        mailbox.close()
    assert file_state(path) == before


@pytest.mark.parametrize("case", ("uw", "dovecot"))
@pytest.mark.parametrize("name", MAILBOXES)
def test_our_commit_on_a_fixture_changes_only_what_was_asked(case, name, tmp_path):
    """After we flag one message and commit, a reread of the other server's file reports
    exactly what it did before, except that message's new \\Flagged."""
    path, store = install_copy(case, name, tmp_path)
    inode = os.stat(path).st_ino
    mailbox = store.open_inbox()
    try:
        before = report(mailbox)
        index = next(i for i, m in enumerate(mailbox.messages) if i and not m.flags & fmt.FLAGGED)
        mailbox.messages[index].flags |= fmt.FLAGGED
        mailbox.messages[index].dirty = True
        mailbox.commit()
    finally:
        mailbox.close()
    assert os.stat(path).st_ino == inode
    after = report_of(store)
    before["messages"][index]["flags"] = sorted(before["messages"][index]["flags"]
                                                + ["\\Flagged"])
    assert after == before


def report_of(store):
    """The report of a fresh read-only open of the store's INBOX."""
    mailbox = store.open_inbox(readonly=True)
    try:
        return report(mailbox)
    finally:
        mailbox.close()
