"""SEARCH keys (RFC 3501 §6.4.4, RFC 5032): imap.search on in-memory messages."""

import base64
from datetime import date, datetime, timedelta, timezone

import pytest

from imap.search import (BadCharset, SearchContext, check_charset, decode_encoded_words,
                         header_fields, matches, search)

UTC = timezone.utc
PST = timezone(timedelta(hours=-8))
NOW = datetime(2024, 3, 10, 12, 0, 0, tzinfo=UTC)


class Message:
    """The message interface imap.search expects, in memory, counting header/message reads."""

    def __init__(self, seq, text=b"Subject: test\n\nbody\n", uid=None, flags=(),
                 internal_date=NOW):
        self.seq, self.uid = seq, uid if uid is not None else 100 + seq
        self.flags, self.internal_date = frozenset(flags), internal_date
        self._data = text.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")
        self.size = len(self._data)
        self.reads = 0

    def header(self):
        self.reads += 1
        end = self._data.find(b"\r\n\r\n")
        return self._data if end < 0 else self._data[:end + 4]

    def message(self):
        self.reads += 1
        return self._data


def context(max_seq=10, max_uid=110, charset="US-ASCII"):
    return SearchContext(max_seq, max_uid, now=NOW, charset=charset)


def found(key, messages, ctx=None):
    """Sequence numbers of the messages that `key` selects."""
    return [message.seq for message in search(key, messages, ctx or context())]


def one(key, text=b"Subject: test\n\nbody\n", charset="US-ASCII", **fields):
    """Whether a single message built from `text` and `fields` matches `key`."""
    return matches(key, Message(1, text, **fields), context(charset=charset))


# --- flags -------------------------------------------------------------------------

FLAG_CASES = [
    ("ANSWERED", {"\\Answered"}, True), ("ANSWERED", set(), False),
    ("UNANSWERED", set(), True), ("UNANSWERED", {"\\Answered"}, False),
    ("DELETED", {"\\Deleted"}, True), ("UNDELETED", {"\\Deleted"}, False),
    ("DRAFT", {"\\Draft"}, True), ("UNDRAFT", {"\\Draft"}, False),
    ("FLAGGED", {"\\Flagged"}, True), ("UNFLAGGED", {"\\Flagged"}, False),
    ("SEEN", {"\\Seen"}, True), ("UNSEEN", {"\\Seen"}, False), ("UNSEEN", set(), True),
    ("RECENT", {"\\Recent"}, True), ("RECENT", set(), False),
    ("OLD", set(), True), ("OLD", {"\\Recent"}, False),
    ("NEW", {"\\Recent"}, True), ("NEW", {"\\Recent", "\\Seen"}, False), ("NEW", set(), False),
]


@pytest.mark.parametrize("name, flags, expected", FLAG_CASES)
def test_flag_keys(name, flags, expected):
    """Each flag key tests its system flag; NEW is RECENT and not SEEN, OLD is not RECENT."""
    assert one((name,), flags=flags) is expected


def test_all_matches_every_message():
    """ALL selects every message, in the order given."""
    messages = [Message(3), Message(1), Message(2)]
    assert found(("ALL",), messages) == [3, 1, 2]


def test_keyword_matches_case_insensitively():
    """KEYWORD compares keywords without regard to case (RFC 3501 §2.3.2)."""
    assert one(("KEYWORD", "$label1"), flags={"$Label1"})
    assert not one(("KEYWORD", "$Label2"), flags={"$Label1"})


def test_unkeyword_selects_messages_without_the_keyword():
    """UNKEYWORD selects messages lacking the keyword in any case."""
    assert one(("UNKEYWORD", "Junk"), flags={"NonJunk"})
    assert not one(("UNKEYWORD", "junk"), flags={"JUNK"})


# --- internal date, sizes, WITHIN -------------------------------------------------

# 23:30 on 1 March in -08:00 is already 2 March in UTC.
LATE_PST = datetime(2024, 3, 1, 23, 30, tzinfo=PST)

INTERNAL_DATE_CASES = [
    ("ON", date(2024, 3, 1), True), ("ON", date(2024, 3, 2), False),
    ("BEFORE", date(2024, 3, 2), True), ("BEFORE", date(2024, 3, 1), False),
    ("SINCE", date(2024, 3, 1), True), ("SINCE", date(2024, 3, 2), False),
]


@pytest.mark.parametrize("name, day, expected", INTERNAL_DATE_CASES)
def test_internal_date_keys_use_the_internal_dates_own_zone(name, day, expected):
    """BEFORE/ON/SINCE compare the calendar date of INTERNALDATE in its own zone, not UTC."""
    assert one((name, day), internal_date=LATE_PST) is expected


def test_larger_and_smaller_are_strict():
    """LARGER and SMALLER exclude a message of exactly the given size."""
    message = Message(1)
    assert found(("LARGER", message.size - 1), [message]) == [1]
    assert found(("LARGER", message.size), [message]) == []
    assert found(("SMALLER", message.size + 1), [message]) == [1]
    assert found(("SMALLER", message.size), [message]) == []


def test_older_and_younger_include_the_exact_target_second():
    """OLDER/YOUNGER (RFC 5032 §2) both match a message exactly `interval` seconds old."""
    messages = [Message(1, internal_date=NOW - timedelta(seconds=3600)),
                Message(2, internal_date=NOW - timedelta(seconds=3599)),
                Message(3, internal_date=NOW - timedelta(seconds=3601))]
    assert found(("OLDER", 3600), messages) == [1, 3]
    assert found(("YOUNGER", 3600), messages) == [1, 2]


def test_within_compares_instants_across_zones():
    """YOUNGER compares the instant, whatever zone the internal date was written in."""
    recent = Message(1, internal_date=(NOW - timedelta(minutes=5)).astimezone(PST))
    assert found(("YOUNGER", 600), [recent]) == [1]
    assert found(("OLDER", 600), [recent]) == []


def test_context_now_defaults_to_the_current_time():
    """A SearchContext without `now` uses the current time for OLDER/YOUNGER."""
    just_now = Message(1, internal_date=datetime.now(UTC))
    assert matches(("YOUNGER", 60), just_now, SearchContext(1, 101))


# --- sequence sets and UIDs --------------------------------------------------------

MAILBOX = [Message(seq, uid=uid) for seq, uid in ((1, 10), (2, 20), (3, 35), (4, 50))]
MAILBOX_CONTEXT = SearchContext(4, 50, now=NOW)

SEQUENCE_CASES = [
    (("SEQ", ((2, 2),)), [2]),
    (("SEQ", ((2, None),)), [2, 3, 4]),
    (("SEQ", ((None, None),)), [4]),
    (("SEQ", ((None, 3),)), [3, 4]),
    (("SEQ", ((3, 1),)), [1, 2, 3]),
    (("SEQ", ((1, 1), (4, 4))), [1, 4]),
    (("UID", ((20, 35),)), [2, 3]),
    (("UID", ((None, None),)), [4]),
    (("UID", ((36, None),)), [4]),
    (("UID", ((999, None),)), [4]),
    (("UID", ((21, 34),)), []),
    (("UID", ((50, 10),)), [1, 2, 3, 4]),
]


@pytest.mark.parametrize("key, expected", SEQUENCE_CASES)
def test_sequence_sets_and_uids(key, expected):
    """Message-number and UID sets: "*" is the highest in the mailbox, ranges go either way."""
    assert found(key, MAILBOX, MAILBOX_CONTEXT) == expected


# --- logic ---------------------------------------------------------------------------

LOGIC_MAILBOX = [
    Message(1, flags={"\\Seen"}), Message(2, flags={"\\Flagged"}),
    Message(3, flags={"\\Seen", "\\Flagged"}), Message(4),
]

LOGIC_CASES = [
    (("NOT", ("SEEN",)), [2, 4]),
    (("OR", ("SEEN",), ("FLAGGED",)), [1, 2, 3]),
    (("AND", (("SEEN",), ("FLAGGED",))), [3]),
    (("AND", (("SEEN",), ("NOT", ("FLAGGED",)))), [1]),
    (("NOT", ("OR", ("SEEN",), ("FLAGGED",))), [4]),
    (("OR", ("AND", (("SEEN",), ("FLAGGED",))), ("NOT", ("OR", ("SEEN",), ("FLAGGED",)))),
     [3, 4]),
    (("AND", ()), [1, 2, 3, 4]),
]


@pytest.mark.parametrize("key, expected", LOGIC_CASES)
def test_not_or_and_nest(key, expected):
    """NOT, OR and AND combine and nest to any depth."""
    assert found(key, LOGIC_MAILBOX) == expected


def test_and_skips_reading_the_message_when_a_cheap_key_fails():
    """An AND list runs flag tests before BODY, so an unflagged message is never read."""
    message = Message(1)
    assert found(("AND", (("BODY", b"body"), ("FLAGGED",))), [message]) == []
    assert message.reads == 0


def test_or_tries_the_cheap_side_first():
    """OR stops at a cheap key that matches without reading the header."""
    message = Message(1, flags={"\\Seen"})
    assert found(("OR", ("SUBJECT", b"nothing"), ("SEEN",)), [message]) == [1]
    assert message.reads == 0


def test_header_and_body_keys_read_the_message_once():
    """SUBJECT, BODY and TEXT together read the header and the message at most once each."""
    message = Message(1, b"Subject: hello\n\nworld\n")
    key = ("AND", (("TEXT", b"hello"), ("BODY", b"world"), ("SUBJECT", b"hello")))
    assert found(key, [message]) == [1]
    assert message.reads == 2


def test_text_alone_reads_the_disk_once():
    """TEXT cuts the header from the whole message instead of reading it again."""
    message = Message(1, b"Subject: hello\n\nworld\n")
    assert found(("TEXT", b"nothing"), [message]) == []
    assert message.reads == 1


# --- header keys -------------------------------------------------------------------

ADDRESS_HEADER = (b"From: =?ISO-8859-1?Q?Andr=E9?= Pirard <PIRARD@vm1.ulg.ac.be>\n"
                  b"To: Keith Moore <moore@cs.utk.edu>\n"
                  b"CC: =?utf-8?B?SsO2cmcgTcO8bGxlcg==?= <jm@example.de>\n"
                  b"Bcc: hidden@example.org\n"
                  b"Subject: plain\n\nbody\n")

ADDRESS_CASES = [
    ("FROM", b"andr\xc3\xa9", True),
    ("FROM", b"pirard@VM1", True),
    ("FROM", b"=?ISO", False),
    ("TO", b"keith moore", True),
    ("TO", b"pirard", False),
    ("CC", b"J\xc3\x96RG M\xc3\xbcller", True),
    ("BCC", b"hidden@", True),
    ("BCC", b"moore", False),
]


@pytest.mark.parametrize("name, needle, expected", ADDRESS_CASES)
def test_address_keys_match_the_decoded_field(name, needle, expected):
    """FROM/TO/CC/BCC match the address text with encoded words decoded, in any case."""
    assert one((name, needle), ADDRESS_HEADER, charset="UTF-8") is expected


SUBJECT_CASES = [
    (b"Subject: =?iso-8859-1?q?this=20is=20some=20text?=\n", b"is some", True),
    (b"Subject: =?UTF-8?B?w4RyZ2VyIG1pdCBkZW0gQ2hlZg==?=\n", b"\xc3\xa4rger", True),
    (b"Subject: =?koi8-r?b?8NLJ18XU?=\n", "\u043f\u0440\u0438\u0432\u0435\u0442".encode(), True),
    (b"Subject: =?utf-8?q?a?= =?utf-8?q?b?=\n", b"ab", True),
    (b"Subject: =?utf-8?b?ww==?= =?utf-8?b?pA==?=\n", b"\xc3\xa4", True),
    (b"Subject: =?x-unknown?q?raw?=\n", b"=?x-unknown?q?raw?=", True),
    (b"Subject: Hello\n World\n", b"hello world", True),
    (b"Subject: Hello\n", b"goodbye", False),
]


@pytest.mark.parametrize("header, needle, expected", SUBJECT_CASES)
def test_subject_is_decoded_and_unfolded(header, needle, expected):
    """SUBJECT sees RFC 2047 words decoded (B and Q, any known charset) and folds removed."""
    assert one(("SUBJECT", needle), header + b"\nbody\n", charset="UTF-8") is expected


def test_header_with_empty_string_selects_messages_having_the_field():
    """HEADER field "" selects exactly the messages that have that field, whatever its value."""
    messages = [Message(1, b"X-Spam: \n\nbody\n"), Message(2, b"Subject: x\n\nbody\n"),
                Message(3, b"x-spam: yes\n\nbody\n")]
    assert found(("HEADER", b"X-SPAM", b""), messages) == [1, 3]


def test_header_matches_any_field_of_that_name():
    """HEADER looks at every field of the name, not only the first."""
    text = b"Received: from a\nReceived: from relay.example\n\nbody\n"
    assert one(("HEADER", b"received", b"RELAY.example"), text)
    assert not one(("HEADER", b"received", b"elsewhere"), text)


def test_header_lines_in_the_body_are_not_header_fields():
    """A field-like line after the blank line is body, not header."""
    assert not one(("HEADER", b"X-Tag", b""), b"Subject: a\n\nX-Tag: body line\n")


# --- Date: header ------------------------------------------------------------------

SENT_CASES = [
    (b"Fri, 1 Mar 2024 23:30:00 -0800", "SENTON", date(2024, 3, 1), True),
    (b"Fri, 1 Mar 2024 23:30:00 -0800", "SENTON", date(2024, 3, 2), False),
    (b"Sat, 2 Mar 2024 00:30:00 +1400", "SENTON", date(2024, 3, 2), True),
    (b"Sat, 2 Mar 2024 00:30:00 +1400", "SENTBEFORE", date(2024, 3, 2), False),
    (b"Sat, 2 Mar 2024 00:30:00 +1400", "SENTBEFORE", date(2024, 3, 3), True),
    (b"Sat, 2 Mar 2024 00:30:00 +1400", "SENTSINCE", date(2024, 3, 2), True),
    (b"Sat, 2 Mar 2024 00:30:00 +1400", "SENTSINCE", date(2024, 3, 3), False),
    (b"2 Mar 24 10:00 GMT", "SENTON", date(2024, 3, 2), True),
]


@pytest.mark.parametrize("value, name, day, expected", SENT_CASES)
def test_sent_keys_use_the_date_as_written(value, name, day, expected):
    """SENT* compare the Date: header's own calendar date, its time and zone disregarded."""
    assert one((name, day), b"Date: " + value + b"\n\nbody\n") is expected


@pytest.mark.parametrize("name", ["SENTBEFORE", "SENTON", "SENTSINCE"])
@pytest.mark.parametrize("header", [b"Subject: no date\n", b"Date: sometime soon\n",
                                    b"Date: Fri, 31 Feb 2024 10:00:00 +0000\n"])
def test_sent_keys_never_match_without_a_parsable_date(name, header):
    """A message with no usable Date: header matches no SENT* key at all."""
    assert not one((name, date(2024, 3, 1)), header + b"\nbody\n")
    assert one(("NOT", (name, date(2024, 3, 1))), header + b"\nbody\n")


# --- BODY and TEXT through MIME ----------------------------------------------------

def mime(*parts, boundary=b"XYZ"):
    """A multipart/mixed message from (headers, body) parts."""
    lines = [b"Subject: mime\nMIME-Version: 1.0\n"
             b"Content-Type: multipart/mixed; boundary=" + boundary + b"\n\npreamble\n"]
    for headers, body in parts:
        lines.append(b"--" + boundary + b"\n" + headers + b"\n\n" + body + b"\n")
    lines.append(b"--" + boundary + b"--\n")
    return b"".join(lines)


BASE64_UTF8 = (b"Content-Type: text/plain; charset=utf-8\nContent-Transfer-Encoding: base64",
               base64.encodebytes("Grüße aus Köln\n".encode()))
QP_LATIN1 = (b"Content-Type: text/plain; charset=iso-8859-1\n"
             b"Content-Transfer-Encoding: quoted-printable",
             b"Caf=E9 cr=E8me with a soft=\n break")
BINARY = (b"Content-Type: application/octet-stream\nContent-Transfer-Encoding: base64",
          base64.encodebytes(b"secret inside"))

BODY_CASES = [
    (mime(BASE64_UTF8), b"GR\xc3\x9cSSE", True),
    (mime(BASE64_UTF8), b"K\xc3\xb6ln", True),
    (mime(QP_LATIN1), b"caf\xc3\xa9 cr\xc3\xa8me", True),
    (mime(QP_LATIN1), b"soft break", True),
    (mime(QP_LATIN1), b"Caf=E9", True),
    (mime(BINARY), base64.encodebytes(b"secret inside").strip(), True),
    (mime(BINARY), b"secret", False),
    (mime(BASE64_UTF8, QP_LATIN1), b"cr\xc3\xa8me", True),
    (mime(BASE64_UTF8), b"preamble", True),
]


@pytest.mark.parametrize("text, needle, expected", BODY_CASES)
def test_body_decodes_text_parts_and_keeps_the_raw_text(text, needle, expected):
    """BODY decodes base64, quoted-printable and charsets of text parts, and also matches raw."""
    assert one(("BODY", needle), text, charset="UTF-8") is expected


def test_single_part_base64_body_is_decoded():
    """A non-multipart base64 text message is searched decoded."""
    text = (b"Subject: x\nContent-Type: text/plain; charset=utf-8\n"
            b"Content-Transfer-Encoding: base64\n\n" + base64.encodebytes("naïve\n".encode()))
    assert one(("BODY", "NAÏVE".encode()), text, charset="UTF-8")


def test_wrong_declared_charset_falls_back():
    """A text part whose bytes do not fit its declared charset is still decoded and searchable."""
    text = (b"Subject: x\nContent-Type: text/plain; charset=us-ascii\n\n"
            + "Smörgåsbord\n".encode())
    assert one(("BODY", "smörgåsbord".encode()), text, charset="UTF-8")
    bogus = b"Subject: x\nContent-Type: text/plain; charset=x-bogus\n\ntext here\n"
    assert one(("BODY", b"TEXT HERE"), bogus)


def test_attached_message_headers_are_body_text():
    """The header of an attached message/rfc822 is part of the outer body for BODY."""
    attached = (b"Content-Type: message/rfc822", b"Subject: inner subject\n\ninner body")
    assert one(("BODY", b"inner subject"), mime(attached))
    assert one(("BODY", b"inner body"), mime(attached))


def test_body_does_not_search_the_header_but_text_does():
    """BODY searches the body only; TEXT searches header and body."""
    text = b"Subject: apples\nX-Note: =?utf-8?q?pears?=\n\noranges\n"
    assert not one(("BODY", b"apples"), text)
    assert one(("BODY", b"oranges"), text)
    assert one(("TEXT", b"APPLES"), text)
    assert one(("TEXT", b"pears"), text)
    assert one(("TEXT", b"oranges"), text)


def test_empty_body_and_headerless_message():
    """A message without a body, or without a header, is searched without error."""
    assert not one(("BODY", b"x"), b"Subject: only a header\n")
    assert one(("TEXT", b"only"), b"Subject: only a header\n")
    assert one(("BODY", b"just body"), b"\njust body\n")


# --- charsets ----------------------------------------------------------------------

@pytest.mark.parametrize("name, canonical", [
    (None, "US-ASCII"), ("us-ascii", "US-ASCII"), ("US-ASCII", "US-ASCII"),
    ("utf-8", "UTF-8"), ("Utf-8", "UTF-8")])
def test_check_charset_accepts_ascii_and_utf8(name, canonical):
    """check_charset accepts US-ASCII and UTF-8 in any case, and None as US-ASCII."""
    assert check_charset(name) == canonical


@pytest.mark.parametrize("name", ["ISO-8859-1", "UTF8", "KOI8-R", ""])
def test_check_charset_rejects_others(name):
    """Any other charset raises BadCharset listing what is supported."""
    with pytest.raises(BadCharset) as raised:
        check_charset(name)
    assert raised.value.name == name
    assert raised.value.supported == ("US-ASCII", "UTF-8")


def test_utf8_search_string_matches_any_case():
    """A UTF-8 search string matches non-ASCII text regardless of case (str.casefold)."""
    text = "Subject: STRASSE und Ärger\n\nbody\n".encode()
    assert one(("SUBJECT", "straße und ärger".encode()), text, charset="UTF-8")


def test_eight_bit_string_under_us_ascii_is_read_as_utf8():
    """8-bit UTF-8 sent without CHARSET is read as UTF-8 rather than refused."""
    text = "Subject: Grüße\n\nbody\n".encode()
    assert one(("SUBJECT", "grüße".encode()), text, charset="US-ASCII")


def test_invalid_utf8_string_is_read_as_latin1():
    """A search string that is not valid UTF-8 is read as ISO-8859-1."""
    text = "Subject: Café\n\nbody\n".encode()
    assert one(("SUBJECT", b"caf\xe9"), text, charset="UTF-8")


def test_eight_bit_header_fields_are_decoded_one_by_one():
    """A raw ISO-8859-1 field does not spoil a raw UTF-8 field next to it."""
    text = b"Subject: caf\xe9\nX-Other: gr\xc3\xbc\xc3\x9fe\n\nbody\n"
    assert one(("SUBJECT", "café".encode()), text, charset="UTF-8")
    assert one(("HEADER", b"X-Other", "grüße".encode()), text, charset="UTF-8")


# --- the shared header helpers -----------------------------------------------------

def test_header_fields_unfold_and_skip_malformed_lines():
    """header_fields unfolds continuations, lower-cases names and skips lines without a colon."""
    header = b"Subject: one\r\n\ttwo\r\nnot a field\r\n continued\r\nTo : x\r\n\r\nBody: no\r\n"
    assert header_fields(header) == [("subject", "one\ttwo"), ("to", "x")]


def test_encoded_words_keep_whitespace_next_to_plain_text():
    """Whitespace between encoded words goes; whitespace next to plain text stays (RFC 2047 §6.2)."""
    assert decode_encoded_words("a =?utf-8?q?b?= \t =?iso-8859-1?q?c?= d") == "a bc d"
    assert decode_encoded_words("=?utf-8?q?x_y?=") == "x y"
    assert decode_encoded_words("=?utf-8*en?q?lang?=") == "lang"
    assert decode_encoded_words("=?hex?q?41?=") == "=?hex?q?41?="
