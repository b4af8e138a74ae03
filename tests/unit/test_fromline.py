"""The From_ line: which lines start a message, their dates, and what we write."""

import json
import time
from pathlib import Path

import pytest

from mailstore.fromline import (format_from_line, format_internaldate, is_from_line,
                                parse_from_line)

FIXTURES = Path("/work/shared/fixtures/compat")

# 2 Dec 1992 05:53:22 UTC, the date of the examples in mbox-compat.md §2.
DEC2_UTC = 723275602
DEC2_NO_SECONDS_UTC = DEC2_UTC - 22

# (date part, expected UTC timestamp or None for "local zone", expected offset).
DATE_FORMS = [
    pytest.param(b"Wed Dec  2 05:53 1992", DEC2_NO_SECONDS_UTC, None, id="plain-no-seconds"),
    pytest.param(b"Wed Dec  2 05:53:22 1992", DEC2_UTC, None, id="ctime"),
    pytest.param(b"Wed Dec 02 05:53:22 1992", DEC2_UTC, None, id="ctime-zero-day"),
    pytest.param(b"Wed Dec  2 05:53 PST 1992", DEC2_NO_SECONDS_UTC + 8 * 3600, -480,
                 id="sysv-zone-before-year"),
    pytest.param(b"Wed Dec  2 05:53:22 PST 1992", DEC2_UTC + 8 * 3600, -480,
                 id="sysv-zone-before-year-seconds"),
    pytest.param(b"Wed Dec  2 05:53 -0700 1992", DEC2_NO_SECONDS_UTC + 7 * 3600, -420,
                 id="numeric-zone-before-year"),
    pytest.param(b"Wed Dec  2 05:53:22 -0700 1992", DEC2_UTC + 7 * 3600, -420,
                 id="numeric-zone-before-year-seconds"),
    pytest.param(b"Wed Dec  2 05:53 1992 PST", DEC2_NO_SECONDS_UTC + 8 * 3600, -480,
                 id="zone-name-after-year"),
    pytest.param(b"Wed Dec  2 05:53:22 1992 -0700", DEC2_UTC + 7 * 3600, -420,
                 id="solaris-numeric-after-year"),
    pytest.param(b"Wed Dec 02 05:53:22 1992 +0530", DEC2_UTC - 330 * 60, 330,
                 id="positive-half-hour-zone"),
    pytest.param(b"Wed Dec  2 05:53:22 1992 GMT", DEC2_UTC, 0, id="gmt-after-year"),
    pytest.param(b"Wed Dec  2 05:53:22 UTC 1992", DEC2_UTC, 0, id="utc-before-year"),
    pytest.param(b"Wed Dec  2 05:53:22 1992 EDT", DEC2_UTC + 4 * 3600, -240, id="edt"),
    pytest.param(b"Wed Dec  2 05:53:22 1992 CST", DEC2_UTC + 6 * 3600, -360, id="cst"),
    pytest.param(b"Wed Dec  2 05:53:22 1992 CET", DEC2_UTC, None, id="unknown-zone-name"),
]

SENDERS = [
    pytest.param(b"joe@example.org", "joe@example.org", id="address"),
    pytest.param(b"MAILER-DAEMON", "MAILER-DAEMON", id="mailer-daemon"),
    pytest.param(b"Joe User", "Joe User", id="unquoted-spaces"),
    pytest.param(b'"joe user"@example.org', '"joe user"@example.org', id="quoted"),
    pytest.param(b"compat2@vm ", "compat2@vm", id="dovecot-two-spaces"),
]

NOT_FROM_LINES = [
    pytest.param(b"From: Joe <joe@example.org>", id="from-header"),
    pytest.param(b"From joe@example.org", id="no-date"),
    pytest.param(b"From the desk of Nora: this body line starts with \"From \".",
                 id="body-from-the-desk"),
    pytest.param(b">From joe Wed Dec  2 05:53:22 1992", id="quoted-from"),
    pytest.param(b"from joe Wed Dec  2 05:53:22 1992", id="lower-case-from"),
    pytest.param(b"From  Wed Dec 2 05:53:22 1992", id="day-single-space-one-digit"),
    pytest.param(b"From joe Wed Dec  2 05:53:22 92", id="two-digit-year"),
    pytest.param(b"From joe Wed Dec  2 5:53:22 1992", id="one-digit-hour"),
    pytest.param(b"From joe Wed Dec  2 05:53:22 1992 CEST", id="four-letter-zone"),
    pytest.param(b"From joe Wed Dec  2 05:53:22 PST 1992 -0700", id="two-zones"),
    pytest.param(b"From joe Wed Dec  2 05:53:22 1992 remote from", id="remote-without-host"),
    pytest.param(b"From joe Wed Dec  2 05:53:22 1992 trailing words", id="trailing-text"),
    pytest.param(b"From joe Wed Dec  2 05:53:22 1992\n", id="trailing-lf"),
    pytest.param(b"", id="empty"),
    pytest.param(b"From ", id="bare-from"),
]


@pytest.fixture
def utc_zone(monkeypatch):
    """Run with the server's zone set to UTC, as when the fixtures were recorded."""
    monkeypatch.setenv("TZ", "UTC")
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


@pytest.fixture
def new_york_zone(monkeypatch):
    """Run with a server zone that has daylight saving time."""
    monkeypatch.setenv("TZ", "America/New_York")
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


def from_lines(path):
    """Every line of an mbox file that starts with "From " (without its LF)."""
    return [line for line in path.read_bytes().split(b"\n") if line.startswith(b"From ")]


def expected_internaldates(case, file_name):
    """The INTERNALDATE strings the real server sent for one fixture mailbox."""
    record = json.loads((FIXTURES / case / "expected.json").read_text())
    mailbox = next(m for m in record["mailboxes"] if m["file"] == file_name)
    return [message["internaldate"] for message in mailbox["messages"]]


@pytest.mark.parametrize("date, utc_time, offset", DATE_FORMS)
@pytest.mark.parametrize("remote", [b"", b" remote from uucphost"], ids=["local", "remote"])
def test_every_uw_date_form_is_a_from_line(date, utc_time, offset, remote):
    """Each date form of mbox-compat.md §2, with or without `remote from`, is recognised."""
    assert is_from_line(b"From joe@example.org " + date + remote)


@pytest.mark.parametrize("date, utc_time, offset", DATE_FORMS)
@pytest.mark.parametrize("remote", [b"", b" remote from uucphost"], ids=["local", "remote"])
def test_every_uw_date_form_parses_to_its_instant(utc_zone, date, utc_time, offset, remote):
    """Each date form gives its instant; the offset is the zone's when UW knows it, else local."""
    parsed = parse_from_line(b"From joe@example.org " + date + remote)
    assert parsed == ("joe@example.org", utc_time, 0 if offset is None else offset)


@pytest.mark.parametrize("raw, sender", SENDERS)
def test_sender_forms_are_accepted_and_returned(utc_zone, raw, sender):
    """Senders with spaces, quotes or Dovecot's double space are parsed from the end of the line."""
    line = b"From " + raw + b" Wed Dec  2 05:53:22 1992"
    assert is_from_line(line)
    assert parse_from_line(line) == (sender, DEC2_UTC, 0)


def test_empty_sender_is_accepted_like_uw():
    """The 27-byte minimum line, with an empty sender, is still a From_ line."""
    assert is_from_line(b"From  Wed Dec  2 05:53 1992")


def test_trailing_cr_is_tolerated(utc_zone):
    """A CRLF mailbox's From_ line (CR left on by the line split) is still recognised."""
    line = b"From joe Wed Dec  2 05:53:22 1992\r"
    assert is_from_line(line)
    assert parse_from_line(line) == ("joe", DEC2_UTC, 0)


@pytest.mark.parametrize("line", NOT_FROM_LINES)
def test_lines_that_must_not_start_a_message(line):
    """Headers, quoted lines, dateless or malformed lines are body text, not boundaries."""
    assert not is_from_line(line)
    assert parse_from_line(line) is None


@pytest.mark.parametrize("line", [
    pytest.param(b"From joe Wed Foo  2 05:53:22 1992", id="unknown-month"),
    pytest.param(b"From joe Wed Feb 30 05:53:22 1992", id="february-30"),
    pytest.param(b"From joe Wed Dec 00 05:53:22 1992", id="day-zero"),
    pytest.param(b"From joe Wed Dec  2 25:53:22 1992", id="hour-25"),
    pytest.param(b"From joe Wed Dec  2 05:61:22 1992", id="minute-61"),
    pytest.param(b"From joe Wed Dec  2 05:53:22 1969", id="before-1970"),
])
def test_structural_from_line_with_bad_date_parses_to_none(line):
    """A structurally valid From_ line still splits, but a bad date parses to None."""
    assert is_from_line(line)
    assert parse_from_line(line) is None


def test_weekday_name_is_not_checked(utc_zone):
    """UW ignores the weekday: a wrong or odd weekday changes neither recognition nor date."""
    assert parse_from_line(b"From joe XYZ Dec  2 05:53:22 1992") == ("joe", DEC2_UTC, 0)


def test_missing_zone_uses_the_local_zone_of_that_date(new_york_zone):
    """Without a zone the local offset of that date applies (EST in winter, EDT in summer)."""
    winter = parse_from_line(b"From joe Wed Dec  2 05:53:22 1992")
    summer = parse_from_line(b"From joe Thu Jul  2 05:53:22 1992")
    assert winter == ("joe", DEC2_UTC + 5 * 3600, -300)
    assert summer[2] == -240
    assert format_internaldate(summer[1], summer[2]) == " 2-Jul-1992 05:53:22 -0400"


@pytest.mark.parametrize("sender, timestamp, offset, line", [
    ("alice@host", 1710404813, 60, b"From alice@host Thu Mar 14 09:26:53 2024 +0100"),
    ("compat1@vm", 1693724399, -420, b"From compat1@vm Sat Sep  2 23:59:59 2023 -0700"),
    ("bob", DEC2_UTC, 0, b"From bob Wed Dec  2 05:53:22 1992 +0000"),
    ("", DEC2_UTC, 0, b"From MAILER-DAEMON Wed Dec  2 05:53:22 1992 +0000"),
    ("Joe User", DEC2_UTC, 0, b"From Joe_User Wed Dec  2 05:53:22 1992 +0000"),
    ("a\tb\nc", DEC2_UTC, 0, b"From a_b_c Wed Dec  2 05:53:22 1992 +0000"),
    ("far@east", DEC2_UTC, 585, b"From far@east Wed Dec  2 15:38:22 1992 +0945"),
])
def test_format_from_line_writes_uw_append_form(sender, timestamp, offset, line):
    """We write UW APPEND's form: space-padded day, numeric zone after the year, one-word sender."""
    assert format_from_line(sender, timestamp, offset) == line


@pytest.mark.parametrize("sender", ["alice@host", "MAILER-DAEMON", "x"])
@pytest.mark.parametrize("timestamp", [86400, DEC2_UTC, 1710404813, 1693724399, 4102444799])
@pytest.mark.parametrize("offset", [0, 60, -420, 330, -720, 840])
def test_format_then_parse_round_trips(sender, timestamp, offset):
    """A line we write is a From_ line and parses back to the same sender, instant and zone."""
    line = format_from_line(sender, timestamp, offset)
    assert is_from_line(line)
    assert parse_from_line(line) == (sender, timestamp, offset)


@pytest.mark.parametrize("timestamp, offset, text", [
    (1704705302, 0, " 8-Jan-2024 09:15:02 +0000"),
    (1712811933, 120, "11-Apr-2024 07:05:33 +0200"),
    (1693724399, -420, " 2-Sep-2023 23:59:59 -0700"),
    (0, 0, " 1-Jan-1970 00:00:00 +0000"),
    (0, -60, "31-Dec-1969 23:00:00 -0100"),
])
def test_format_internaldate_pads_the_day_with_a_space(timestamp, offset, text):
    """INTERNALDATE is printed as UW does: space-padded day, numeric zone."""
    assert format_internaldate(timestamp, offset) == text


def test_pristine_fixture_from_lines_are_all_recognised():
    """All 12 From_ lines of the pristine mailbox, in every date form it uses, are boundaries."""
    lines = from_lines(FIXTURES / "uw" / "pristine.mbox")
    assert len(lines) == 12
    assert all(is_from_line(line) for line in lines)
    assert (FIXTURES / "dovecot" / "pristine.mbox").read_bytes() == \
        (FIXTURES / "uw" / "pristine.mbox").read_bytes()


@pytest.mark.parametrize("file_name, skip_pseudo", [("INBOX.mbox", 0), ("Saved.mbox", 1)])
def test_uw_fixture_internaldates_match_uw(utc_zone, file_name, skip_pseudo):
    """INTERNALDATEs computed from UW's files equal the strings real UW imapd sent (TZ=UTC)."""
    lines = [line for line in from_lines(FIXTURES / "uw" / file_name) if is_from_line(line)]
    dates = [format_internaldate(*parse_from_line(line)[1:]) for line in lines[skip_pseudo:]]
    assert dates == expected_internaldates("uw", file_name)


@pytest.mark.parametrize("file_name", ["INBOX.mbox", "Saved.mbox"])
def test_dovecot_fixture_from_lines_give_dovecots_instants(utc_zone, file_name):
    """Dovecot's From_ lines give the instants it reported; `From the desk` is rejected."""
    candidates = from_lines(FIXTURES / "dovecot" / file_name)
    lines = [line for line in candidates if is_from_line(line)]
    assert [line for line in candidates if line not in lines] == \
        [b'From the desk of Nora: this body line starts with "From ".']
    ours = [parse_from_line(line)[1] for line in lines]
    theirs = [_parse_internaldate(text) for text in expected_internaldates("dovecot", file_name)]
    assert ours == theirs


def _parse_internaldate(text):
    """Unix time of an IMAP INTERNALDATE string, for comparing instants."""
    import email.utils
    day, month, rest = text.strip().split("-", 2)
    return int(email.utils.parsedate_to_datetime("%s %s %s" % (day, month, rest)).timestamp())


@pytest.mark.parametrize("filler", [b" ", b"1", b":", b"a 1"])
def test_long_filler_lines_are_rejected(filler):
    """A 1 KB line (the scanner's cap) of spaces, digits or colons is body text."""
    assert not is_from_line((b"From " + filler * 1024)[:1024])


def test_own_calendar_arithmetic_matches_the_calendar_module():
    """fromline avoids importing calendar at start-up; its formulas must agree with it."""
    import calendar
    import random

    from mailstore import fromline

    for year in range(1900, 2401):
        for month in range(1, 13):
            assert fromline._days_in_month(year, month) == calendar.monthrange(year, month)[1]
    chooser = random.Random(8)
    for _ in range(20000):
        fields = (chooser.randint(1901, 2399), chooser.randint(1, 12), chooser.randint(1, 28),
                  chooser.randint(0, 23), chooser.randint(0, 59), chooser.randint(0, 60))
        assert fromline._timegm(fields) == calendar.timegm(fields), fields
