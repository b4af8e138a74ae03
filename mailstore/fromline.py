"""The Berkeley mbox From_ line as UW c-client reads and writes it (mbox-compat.md §2).

`is_from_line` decides message boundaries, so it must agree with UW on which
lines start a message; `parse_from_line` turns the line's date into the IMAP
internal date; `format_from_line` and `format_internaldate` print what UW prints.
"""

import re
import time

# UW checks where the spaces and colons fall, reading backwards from the end of
# the line because the sender may contain unquoted spaces: a greedy sender
# followed by a date anchored at the end finds the same split.  Weekday and
# month are not checked here (UW leaves that to the date parser); zone names
# have exactly three letters because UW only looks for them in 3-byte slots.
_ZONE = rb"(?:[A-Za-z]{3}|[+-][0-9]{4})"
_FROM_LINE = re.compile(
    rb"From (?P<sender>.*) "
    rb"[^ ]{3} (?P<month>[^ ]{3}) (?P<day>[ 0-9][0-9]) "
    rb"(?P<hour>[0-9]{2}):(?P<minute>[0-9]{2})(?::(?P<second>[0-9]{2}))?"
    rb"(?: (?P<zone_before>" + _ZONE + rb") (?P<year_after_zone>[0-9]{4})"
    rb"| (?P<year>[0-9]{4})(?: (?P<zone_after>" + _ZONE + rb"))?)"
    rb"(?: remote from [^ ]+)?")

# "From " + empty sender + " " + "Www Mmm dd hh:mm yyyy" is UW's 27-byte minimum.
_MIN_LENGTH = 27

_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun",
           "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
_MONTH_NUMBERS = {name.encode("ascii"): number for number, name in enumerate(_MONTHS, 1)}
# Years before the epoch count as unparsable, so the caller's fallback date
# applies (c-client's BASEYEAR is 1970; IMAP clients rarely expect earlier).
_FIRST_YEAR = 1970
_WEEKDAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")

# The zone names UW's date parser knows with a fixed offset, in minutes east
# of UTC.  RFC 822's "UT" cannot occur: the line has only 3-letter zone slots.
_NAMED_ZONES = {
    b"UTC": 0, b"GMT": 0,
    b"EST": -300, b"EDT": -240, b"CST": -360, b"CDT": -300,
    b"MST": -420, b"MDT": -360, b"PST": -480, b"PDT": -420,
}


def _match_from_line(line):
    """The regex match of a From_ line (trailing CR tolerated), or None."""
    # Cheap rejections first: this runs on every "\nFrom " in a mailbox.
    if not line.startswith(b"From ") or len(line) < _MIN_LENGTH:
        return None
    if line.endswith(b"\r"):
        line = line[:-1]
    if b":" not in line:
        return None
    return _FROM_LINE.fullmatch(line)


def is_from_line(line):
    """True when `line` (one line without its LF) is a From_ line that starts a message."""
    return _match_from_line(line) is not None


def parse_from_line(line):
    """(sender, unix time, zone offset in minutes) of a From_ line, or None.

    None means either not a From_ line or a date that does not parse (such as
    an unknown month); UW still accepts the message and the caller picks a
    fallback date.
    """
    match = _match_from_line(line)
    if match is None:
        return None
    fields = _date_fields(match)
    if fields is None:
        return None
    zone = match.group("zone_before") or match.group("zone_after")
    timestamp, offset = _resolve_zone(fields, zone)
    sender = match.group("sender").rstrip(b" ").decode("utf-8", "surrogateescape")
    return sender, timestamp, offset


def _date_fields(match):
    """(year, month, day, hour, minute, second) from the match, or None if impossible."""
    month = _MONTH_NUMBERS.get(match.group("month").capitalize())
    if month is None:
        return None
    year = int(match.group("year") or match.group("year_after_zone"))
    day = int(match.group("day"))
    hour, minute = int(match.group("hour")), int(match.group("minute"))
    second = int(match.group("second") or 0)
    if year < _FIRST_YEAR or not 1 <= day <= _days_in_month(year, month):
        return None
    # Second 60 is a leap second (RFC 5322 allows it); the arithmetic carries it.
    if hour > 23 or minute > 59 or second > 60:
        return None
    return year, month, day, hour, minute, second


# The March-based day count of 1970-01-01 in _timegm's formula.
_EPOCH_DAYS = 365 * 1969 + 1969 // 4 - 1969 // 100 + 1969 // 400 + 306


def _is_leap(year):
    return year % 4 == 0 and (year % 100 != 0 or year % 400 == 0)


def _days_in_month(year, month):
    if month == 2:
        return 29 if _is_leap(year) else 28
    return 30 if month in (4, 6, 9, 11) else 31


def _timegm(fields):
    """Unix time of UTC wall-clock (year, month, day, hour, minute, second).

    What calendar.timegm computes; that module (with datetime and locale)
    costs milliseconds of every session's start, for one small formula.
    """
    year, month, day, hour, minute, second = fields[:6]
    # Days before this year since 1970, then before this month (March-based
    # years put the leap day last, so one formula serves every month).
    shifted = year - (month <= 2)
    era_days = 365 * shifted + shifted // 4 - shifted // 100 + shifted // 400
    month_days = (153 * ((month + 9) % 12) + 2) // 5
    days = era_days + month_days + day - 1 - _EPOCH_DAYS
    return ((days * 24 + hour) * 60 + minute) * 60 + second


def _resolve_zone(fields, zone):
    """(unix time, display offset in minutes) of wall-clock fields in `zone`."""
    if zone is not None and zone[:1] in b"+-":
        magnitude = int(zone[1:3]) * 60 + int(zone[3:5])
        offset = -magnitude if zone[:1] == b"-" else magnitude
        return _timegm(fields) - offset * 60, offset
    if zone is not None and zone.upper() in _NAMED_ZONES:
        offset = _NAMED_ZONES[zone.upper()]
        return _timegm(fields) - offset * 60, offset
    # No zone, or one UW cannot place: the server's local time on that date.
    timestamp = int(time.mktime(fields + (0, 0, -1)))
    return timestamp, time.localtime(timestamp).tm_gmtoff // 60


def _wall_clock(timestamp, tz_offset_minutes):
    """struct_time of `timestamp` as seen in the zone `tz_offset_minutes` east of UTC."""
    return time.gmtime(timestamp + tz_offset_minutes * 60)


def _zone_text(tz_offset_minutes):
    """The offset as RFC 5322 `+hhmm`/`-hhmm`."""
    sign = "-" if tz_offset_minutes < 0 else "+"
    hours, minutes = divmod(abs(tz_offset_minutes), 60)
    return "%s%02d%02d" % (sign, hours, minutes)


def _safe_sender(sender):
    """The sender as one word: whitespace and controls would break the line's structure."""
    if not sender:
        return "MAILER-DAEMON"
    return "".join("_" if ch <= " " or ch == "\x7f" else ch for ch in sender)


def format_from_line(sender, timestamp, tz_offset_minutes):
    """UW APPEND's From_ line, `From <sender> Www Mmm dd hh:mm:ss yyyy +zzzz`, no LF."""
    tm = _wall_clock(timestamp, tz_offset_minutes)
    date = "%s %s %2d %02d:%02d:%02d %04d %s" % (
        _WEEKDAYS[tm.tm_wday], _MONTHS[tm.tm_mon - 1], tm.tm_mday,
        tm.tm_hour, tm.tm_min, tm.tm_sec, tm.tm_year, _zone_text(tz_offset_minutes))
    return ("From %s %s" % (_safe_sender(sender), date)).encode("utf-8", "surrogateescape")


def format_internaldate(timestamp, tz_offset_minutes):
    """IMAP INTERNALDATE as UW prints it: `" 8-Jan-2024 09:15:02 +0000"` (day space-padded)."""
    tm = _wall_clock(timestamp, tz_offset_minutes)
    return "%2d-%s-%04d %02d:%02d:%02d %s" % (
        tm.tm_mday, _MONTHS[tm.tm_mon - 1], tm.tm_year,
        tm.tm_hour, tm.tm_min, tm.tm_sec, _zone_text(tz_offset_minutes))
