"""SEARCH (RFC 3501 §6.4.4, RFC 5032 WITHIN): which messages a search key selects.

A search key (shapes in imap.command) is compiled once per command into a tree
of tests; each test knows its cost, so an AND list runs the flag, size, date
and number tests before any test that must read the message from disk.

The messages searched are any objects with this interface:

    seq            int, the message sequence number
    uid            int
    flags          frozenset of str: `\\Seen` `\\Answered` `\\Flagged` `\\Deleted`
                   `\\Draft` `\\Recent` as spelled here, keywords as the client sent them
    internal_date  aware datetime (INTERNALDATE)
    size           int (RFC822.SIZE)
    modseq         int (MODSEQ, RFC 7162; only the MODSEQ key reads it)
    header()       bytes: the header with CRLF line ends, including the blank line
    message()      bytes: the whole message with CRLF line ends

header() and message() read the disk, so a search calls each at most once per
message and only when a key needs it.

The header helpers at the end (header_fields, field_values,
decode_encoded_words, header_date) serve imap.sort and imap.thread too.
"""

import binascii
import operator
import re
from datetime import datetime, timedelta, timezone

from imap.command import SAVED_RESULT

SUPPORTED_CHARSETS = ("US-ASCII", "UTF-8")

# Test costs: an AND list evaluates cheaper tests first.
_COST_CHEAP, _COST_HEADER, _COST_BODY = 0, 1, 2

_FLAG_KEYS = {
    "ANSWERED": ("\\Answered", True), "UNANSWERED": ("\\Answered", False),
    "DELETED": ("\\Deleted", True), "UNDELETED": ("\\Deleted", False),
    "DRAFT": ("\\Draft", True), "UNDRAFT": ("\\Draft", False),
    "FLAGGED": ("\\Flagged", True), "UNFLAGGED": ("\\Flagged", False),
    "SEEN": ("\\Seen", True), "UNSEEN": ("\\Seen", False),
    "RECENT": ("\\Recent", True), "OLD": ("\\Recent", False),
}
_DATE_COMPARISONS = {"BEFORE": operator.lt, "ON": operator.eq, "SINCE": operator.ge}
_SENT_KEYS = {"SENTBEFORE": "BEFORE", "SENTON": "ON", "SENTSINCE": "SINCE"}
_ADDRESS_AND_SUBJECT_KEYS = {"BCC": "bcc", "CC": "cc", "FROM": "from", "SUBJECT": "subject",
                             "TO": "to"}

# RFC 2047 §2: encoded-word = "=?" charset ["*" language] "?" encoding "?" encoded-text "?="
_ENCODED_WORD = re.compile(r"=\?([^?*\s]+)(?:\*[^?\s]*)?\?([bBqQ])\?([^?\s]*)\?=")


class BadCharset(Exception):
    """SEARCH named a charset this server does not search in: `NO [BADCHARSET (...)]`.

    `supported` lists the charsets for the response code (RFC 3501 §7.1).
    """

    supported = SUPPORTED_CHARSETS

    def __init__(self, name):
        super().__init__(name)
        self.name = name


def check_charset(name):
    """The canonical name of a SEARCH charset, or BadCharset.

    None (no CHARSET argument) means US-ASCII, the RFC 3501 §6.4.4 default.
    """
    if name is None:
        return "US-ASCII"
    for supported in SUPPORTED_CHARSETS:
        if name.upper() == supported:
            return supported
    raise BadCharset(name)


class SearchContext:
    """What a search needs beyond the messages themselves.

    `max_seq` and `max_uid` are what "*" means in sequence sets (the highest
    sequence number and UID in the mailbox); `now` is the server's time for
    OLDER/YOUNGER (RFC 5032), the current time if not given; `charset` is a
    name returned by check_charset; `saved` the UIDs that `$` names (RFC 5182).
    """

    __slots__ = ("max_seq", "max_uid", "now", "charset", "saved")

    def __init__(self, max_seq, max_uid, now=None, charset="US-ASCII", saved=frozenset()):
        self.max_seq, self.max_uid, self.charset = max_seq, max_uid, charset
        self.now = now if now is not None else datetime.now(timezone.utc)
        self.saved = saved


def matches(key, message, context):
    """True when `message` satisfies search key `key`."""
    return _compile(key, context)[1](_MessageView(message))


def search(key, messages, context):
    """The messages that satisfy `key`, in the order given."""
    test = _compile(key, context)[1]
    return [message for message in messages if test(_MessageView(message))]


class _MessageView:
    """One message during one search: reads header and body at most once."""

    __slots__ = ("message", "_header", "_data", "_fields", "_header_texts", "_body_texts")

    def __init__(self, message):
        self.message = message
        self._header = self._data = self._fields = self._header_texts = self._body_texts = None

    def header(self):
        """The header bytes, cut from the whole message when that was read already."""
        if self._header is None:
            if self._data is not None:
                self._header = self._data[:_header_end(self._data)]
            else:
                self._header = self.message.header()
        return self._header

    def fields(self):
        """[(lower-case name, decoded value)] of the message header."""
        if self._fields is None:
            self._fields = [(name, decode_encoded_words(value))
                            for name, value in header_fields(self.header())]
        return self._fields

    def header_texts(self):
        """The header as decoded fields and as raw text, case-folded, for TEXT."""
        if self._header_texts is None:
            decoded = "\n".join("%s: %s" % field for field in self.fields())
            self._header_texts = (decoded.casefold(), _text(self.header()).casefold())
        return self._header_texts

    def large_text(self):
        """The message read in place (imap.plaintext) when it is large, else None."""
        large_text = getattr(self.message, "large_text", None)
        return large_text() if large_text else None

    def data(self):
        """The whole message (CRLF form), read once."""
        if self._data is None:
            self._data = self.message.message()
        return self._data

    def body_texts(self):
        """The body raw and decoded part by part, case-folded, for BODY and TEXT."""
        if self._body_texts is None:
            self._body_texts = [text.casefold() for text in _body_texts(self.data())]
        return self._body_texts


def _compile(key, context):
    """(cost, test) for one search key; test takes a _MessageView."""
    name = key[0]
    if name in ("AND", "OR", "NOT"):
        return _compile_logic(key, context)
    if name in _ADDRESS_AND_SUBJECT_KEYS:
        return _COST_HEADER, _header_test(_ADDRESS_AND_SUBJECT_KEYS[name],
                                          _needle(key[1], context))
    if name == "HEADER":
        return _COST_HEADER, _header_test(_text(key[1]).lower(), _needle(key[2], context))
    if name in ("BODY", "TEXT"):
        return _COST_BODY, _text_test(name == "TEXT", _needle(key[1], context))
    if name in _SENT_KEYS:
        return _COST_HEADER, _sent_date_test(_DATE_COMPARISONS[_SENT_KEYS[name]], key[1])
    return _COST_CHEAP, _compile_cheap(key, context)


def _compile_logic(key, context):
    """AND runs cheap tests first; OR tries the cheaper side first; NOT inverts."""
    name = key[0]
    if name == "NOT":
        cost, test = _compile(key[1], context)
        return cost, lambda view: not test(view)
    parts = sorted((_compile(part, context) for part in
                    (key[1:] if name == "OR" else key[1])), key=operator.itemgetter(0))
    tests = [test for _, test in parts]
    cost = max((part_cost for part_cost, _ in parts), default=_COST_CHEAP)
    if name == "OR":
        return cost, lambda view: any(test(view) for test in tests)
    return cost, lambda view: all(test(view) for test in tests)


def _compile_cheap(key, context):
    """Tests on flags, size, dates and numbers: nothing read from disk."""
    name = key[0]
    if name == "ALL":
        return lambda view: True
    if name in _FLAG_KEYS:
        flag, wanted = _FLAG_KEYS[name]
        return lambda view: (flag in view.message.flags) == wanted
    if name == "NEW":
        return lambda view: ("\\Recent" in view.message.flags
                             and "\\Seen" not in view.message.flags)
    if name in ("KEYWORD", "UNKEYWORD"):
        return _keyword_test(key[1], name == "KEYWORD")
    if name in _DATE_COMPARISONS:
        compare, day = _DATE_COMPARISONS[name], key[1]
        # RFC 3501 disregards time and zone; the date is the one in the
        # internal date's own zone, as UW imapd compares it.
        return lambda view: compare(view.message.internal_date.date(), day)
    if name in ("LARGER", "SMALLER", "OLDER", "YOUNGER"):
        return _number_test(name, key[1], context)
    if name in ("UID", "SEQ"):
        return _sequence_set_test(name, key[1], context)
    if name == "MODSEQ":
        # RFC 7162 §3.1.5: changed at or after the given modseq.
        return lambda view: view.message.modseq >= key[1]
    raise ValueError("unknown search key %r" % (name,))


def _keyword_test(keyword, wanted):
    """KEYWORD/UNKEYWORD: keywords compare case-insensitively (RFC 3501 §2.3.2)."""
    folded = keyword.casefold()
    return lambda view: any(flag.casefold() == folded for flag in view.message.flags) == wanted


def _number_test(name, number, context):
    """LARGER/SMALLER on RFC822.SIZE; OLDER/YOUNGER (RFC 5032 §2) on INTERNALDATE."""
    if name == "LARGER":
        return lambda view: view.message.size > number
    if name == "SMALLER":
        return lambda view: view.message.size < number
    # RFC 5032 §2: both bounds include the target time itself.
    target = context.now - timedelta(seconds=number)
    if name == "OLDER":
        return lambda view: view.message.internal_date <= target
    return lambda view: view.message.internal_date >= target


def _sequence_set_test(name, ranges, context):
    """UID and message-number sets; "*" is the highest in the mailbox (RFC 3501 §9).

    `$` names the same messages as a number set and as a UID set (RFC 5182 §2.1).
    """
    if ranges == SAVED_RESULT:
        saved = context.saved
        return lambda view: view.message.uid in saved
    if name == "UID":
        return lambda view: _in_sequence_set(view.message.uid, ranges, context.max_uid)
    return lambda view: _in_sequence_set(view.message.seq, ranges, context.max_seq)


def _in_sequence_set(number, ranges, highest):
    """True when `number` lies in one of the (low, high) ranges, written in either order."""
    for low, high in ranges:
        low = highest if low is None else low
        high = highest if high is None else high
        if min(low, high) <= number <= max(low, high):
            return True
    return False


def _header_test(field, needle):
    """A named field whose decoded value contains the string.

    An empty string is a substring of every value, so HEADER field "" selects
    exactly the messages that have the field (RFC 3501 §6.4.4).
    """
    return lambda view: any(name == field and needle in value.casefold()
                            for name, value in view.fields())


def _text_test(include_header, needle):
    """BODY (body only) or TEXT (header and body), decoded and raw.

    The body goes first: it reads the whole message, from which the header is
    then cut without a second read. An ASCII needle is first tried on the raw
    bytes (imap.bodyscan), which decides most messages without `email`.
    """
    from imap import bodyscan

    raw_needle = bodyscan.ascii_needle(needle)

    def test(view):
        large = view.large_text()
        if large is not None:
            from imap.largesearch import body_contains

            found = body_contains(large, needle)
        else:
            found = _small_body_contains(view, raw_needle, needle)
        if found:
            return True
        return include_header and any(needle in text for text in view.header_texts())
    return test


def _small_body_contains(view, raw_needle, needle):
    """BODY on the whole message: the raw verdict when it decides, else `email`'s text parts."""
    from imap import bodyscan

    found = None
    if raw_needle is not None:
        data = view.data()
        found = bodyscan.body_verdict(data, _header_end(data), raw_needle)
    if found is None:
        found = any(needle in text for text in view.body_texts())
    return found


def _sent_date_test(compare, day):
    """SENT*: the Date: header's own calendar date, time and zone disregarded.

    RFC 3501 §6.4.4 says nothing of a missing or unparsable Date: header; such
    a message matches no SENT* key, neither SENTBEFORE nor SENTSINCE, rather
    than pretending to a date it does not have.
    """
    def test(view):
        sent = header_date(next(field_values(view.fields(), "date"), ""))
        return sent is not None and compare(sent.date(), day)
    return test


def _needle(value, context):
    """A search string as case-folded text, decoded in the SEARCH charset.

    RFC 3501 is silent on bytes that are invalid in the charset named. Clients
    send 8-bit UTF-8 without a CHARSET argument often enough that such bytes
    are read as UTF-8, and bytes that are not UTF-8 either as ISO-8859-1,
    rather than refused.
    """
    try:
        text = value.decode(context.charset)
    except UnicodeDecodeError:
        text = _text(value)
    return text.casefold()


def _text(data):
    """Bytes as text: UTF-8 when they are UTF-8, else ISO-8859-1 byte for byte."""
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return data.decode("latin-1")


def _body_texts(data):
    """The body as raw text plus every text/* leaf decoded (transfer encoding and charset).

    The raw text keeps undecodable parts and the headers of attached
    messages searchable.
    """
    from email import message_from_bytes

    header_end = _header_end(data)
    texts = [_text(data[header_end:])]
    for part in message_from_bytes(data).walk():
        if part.is_multipart() or part.get_content_maintype() != "text":
            continue
        payload = part.get_payload(decode=True)
        if payload:
            texts.append(decode_charset(payload, part.get_content_charset()))
    return texts


def _header_end(data):
    """Offset of the body: just past the blank line that ends the header."""
    if data.startswith(b"\r\n"):
        return 2
    end = data.find(b"\r\n\r\n")
    return len(data) if end < 0 else end + 4


def decode_charset(payload, charset):
    """Text in the part's declared charset; unknown or wrong charsets fall back to _text."""
    try:
        return payload.decode(charset or "us-ascii")
    except (LookupError, UnicodeDecodeError):
        return _text(payload)


def header_fields(header):
    """[(lower-case name, unfolded raw value)] of a header block, in order.

    Unfolding removes the CRLF before continuation whitespace (RFC 5322
    §2.2.3); each field is decoded as UTF-8 or else ISO-8859-1 on its own, so
    one 8-bit field does not change how the others read.
    """
    fields = []
    for line in header.split(b"\n"):
        line = line.rstrip(b"\r")
        if not line:
            break
        if line[:1] in (b" ", b"\t"):
            if fields and fields[-1] is not None:
                fields[-1].append(line)
            continue
        fields.append([line] if b":" in line else None)  # None: not a field, skip its lines
    return [_split_field(_text(b"".join(lines))) for lines in fields if lines is not None]


def _split_field(text):
    name, _, value = text.partition(":")
    return name.strip().lower(), value.strip(" \t")


def field_values(fields, name):
    """The values of every field called `name` (lower case), in header order."""
    return (value for field_name, value in fields if field_name == name)


def decode_encoded_words(text):
    """Text with RFC 2047 encoded words (B and Q, any charset Python knows) decoded.

    Whitespace between adjacent encoded words is dropped (RFC 2047 §6.2), and
    adjacent words in one charset are decoded together, so a character split
    across two words survives. A word that cannot be decoded stays as written.
    """
    if "=?" not in text:
        return text
    pieces, run_charset, run_bytes, position = [], None, b"", 0
    for match in _ENCODED_WORD.finditer(text):
        gap, decoded = text[position:match.start()], _encoded_word_bytes(match)
        position = match.end()
        if decoded is None:
            pieces.append(_decode_run(run_charset, run_bytes) + gap + match.group(0))
            run_charset, run_bytes = None, b""
            continue
        adjacent = run_charset is not None and not gap.strip(" \t\r\n")
        if adjacent and decoded[0] == run_charset:
            run_bytes += decoded[1]
            continue
        pieces.append(_decode_run(run_charset, run_bytes) + ("" if adjacent else gap))
        run_charset, run_bytes = decoded
    pieces.append(_decode_run(run_charset, run_bytes) + text[position:])
    return "".join(pieces)


def _encoded_word_bytes(match):
    """(lower-case charset, octets) of one encoded word, or None when it cannot be decoded."""
    charset, encoding, encoded = match.group(1).lower(), match.group(2).upper(), match.group(3)
    try:
        # LookupError for unknown charsets and non-text codecs (an empty input
        # would skip the codec lookup).
        b"a".decode(charset, "replace")
        data = encoded.encode("ascii")
        if encoding == "Q":
            return charset, binascii.a2b_qp(data, header=True)
        return charset, binascii.a2b_base64(data + b"=" * (-len(data) % 4))
    except (LookupError, UnicodeEncodeError, binascii.Error):
        return None


def _decode_run(charset, data):
    return data.decode(charset, "replace") if charset is not None else ""


def header_date(value):
    """The Date: header as an aware datetime in its own zone, or None when unparsable.

    A missing or impossible zone counts as UTC (RFC 5256 §2.2).
    """
    from email.utils import parsedate_tz

    parts = parsedate_tz(value) if value else None
    if parts is None:
        return None
    try:
        zone = timezone(timedelta(seconds=parts[9] or 0))
    except ValueError:
        zone = timezone.utc
    try:
        return datetime(*parts[:6], tzinfo=zone)
    except (ValueError, OverflowError):
        return None

