"""imap.mime: ENVELOPE, BODY/BODYSTRUCTURE, BODY[section] and BINARY against hand-worked answers.

Every expected structure below was worked out from RFC 3501 §7.4.2 and the
message text by hand: sizes count CRLF line ends, line counts count CRLFs,
and the CRLF before a boundary line belongs to the boundary (RFC 2046 §5.1.1).
"""

import random

import pytest

from imap import mime
from imap.command import Section


def lines(*text):
    """A message from lines, each ended by CRLF."""
    return b"".join(line + b"\r\n" for line in text)


SIMPLE = lines(
    b"From: Joe Q. Public <john.q.public@example.com>",
    b"To: Mary Smith <mary@x.test>, jdoe@example.org, Who? <one@y.test>",
    b'Cc: <boss@nil.test>, "Giant; \\"Big\\" Box" <sysservices@example.net>',
    b"Date: Tue, 1 Jul 2003 10:52:37 +0200",
    b"Subject: Saying Hello",
    b"Message-ID: <5678.21-Nov-1997@example.com>",
    b"",
    b"Hi everyone.",
)

NESTED = lines(
    b"From: a@example.com",
    b"Subject: nested",
    b"MIME-Version: 1.0",
    b'Content-Type: multipart/mixed; boundary="outer"',
    b"",
    b"This is the preamble.",
    b"--outer",
    b"Content-Type: multipart/alternative; boundary=inner",
    b"",
    b"--inner",
    b"Content-Type: text/plain; charset=UTF-8",
    b"",
    b"plain",
    b"--inner",
    b'Content-Type: text/html; charset="utf-8"',
    b"Content-Transfer-Encoding: quoted-printable",
    b"",
    b"<b>html</b>=21",
    b"",
    b"--inner--",
    b"inner epilogue",
    b"--outer",
    b'Content-Type: application/pdf; name="doc.pdf"',
    b"Content-Transfer-Encoding: base64",
    b'Content-Disposition: attachment; filename="doc.pdf"; size=6',
    b"Content-ID: <pdf@example.com>",
    b"Content-Description: The document",
    b"Content-MD5: Q2hlY2sgSW50ZWdyaXR5IQ==",
    b"Content-Language: en-GB, de",
    b"Content-Location: http://example.com/doc.pdf",
    b"",
    b"UERGLTEu",
    b"--outer--",
    b"epilogue",
)

ENCAPSULATED = lines(
    b"From: Inner Sender <inner@example.org>",
    b"Subject: inner",
    b"Date: Wed, 2 Jul 2003 11:00:00 +0000",
    b'Content-Type: multipart/alternative; boundary="b2"',
    b"",
    b"--b2",
    b"Content-Type: text/plain",
    b"",
    b"one",
    b"--b2",
    b"Content-Type: text/enriched",
    b"",
    b"two",
) + b"--b2--"

FORWARD = lines(
    b"From: outer@example.com",
    b"To: inner-list: a@example.com, b@example.com;",
    b"Subject: fwd",
    b"Content-Type: multipart/mixed; boundary=b1",
    b"",
    b"--b1",
    b"",
    b"See attached.",
    b"",
    b"--b1",
    b"Content-Type: message/rfc822",
    b"",
) + ENCAPSULATED + lines(b"", b"--b1--")

WRAPPED = lines(
    b"Subject: wrapper",
    b"Content-Type: message/rfc822",
    b"",
    b"Subject: wrapped",
    b"",
    b"inner body",
)

DIGEST = lines(
    b"Content-Type: multipart/digest; boundary=d",
    b"",
    b"--d",
    b"",
    b"Subject: first",
    b"",
    b"one",
    b"--d--",
)

UNCLOSED = lines(
    b"Content-Type: multipart/mixed; boundary=x",
    b"",
    b"--x",
    b"Content-Type: text/plain; charset=us-ascii",
    b"",
    b"first",
    b"--x",
    b"",
    b"second, never closed",
)

PARAMS = lines(
    b"Content-Type: text/plain; format=flowed; title*0*=us-ascii'en'Part%20one;",
    b' title*1="and two"',
    b"Content-Disposition: inline; filename*=utf-8''%E2%82%AC%20rates.txt (euro)",
    b"Content-Language: en (English), fr-CA",
    b"Content-Location: rates.txt",
    b"",
    b"rates",
)

FIELDS = lines(
    b"Received: from a",
    b"Subject: first",
    b"X-Long: one",
    b"\ttwo",
    b"subject: second",
    b"To: x@example.com",
    b"",
    b"body",
)

SIMPLE_ENVELOPE = (
    b'("Tue, 1 Jul 2003 10:52:37 +0200" "Saying Hello"'
    b' (("Joe Q. Public" NIL "john.q.public" "example.com"))'
    b' (("Joe Q. Public" NIL "john.q.public" "example.com"))'
    b' (("Joe Q. Public" NIL "john.q.public" "example.com"))'
    b' (("Mary Smith" NIL "mary" "x.test")(NIL NIL "jdoe" "example.org")'
    b'("Who?" NIL "one" "y.test"))'
    b' ((NIL NIL "boss" "nil.test")("Giant; \\"Big\\" Box" NIL "sysservices" "example.net"))'
    b' NIL NIL "<5678.21-Nov-1997@example.com>")')

INNER_ENVELOPE = (
    b'("Wed, 2 Jul 2003 11:00:00 +0000" "inner"'
    b' (("Inner Sender" NIL "inner" "example.org"))'
    b' (("Inner Sender" NIL "inner" "example.org"))'
    b' (("Inner Sender" NIL "inner" "example.org")) NIL NIL NIL NIL NIL)')

US_ASCII = b'("CHARSET" "US-ASCII")'

# (id, message, BODYSTRUCTURE, BODY)
STRUCTURES = [
    ("simple-text", SIMPLE,
     b'("TEXT" "PLAIN" ("CHARSET" "US-ASCII") NIL NIL "7BIT" 14 1 NIL NIL NIL NIL)',
     b'("TEXT" "PLAIN" ("CHARSET" "US-ASCII") NIL NIL "7BIT" 14 1)'),
    ("no-content-type", lines(b"X-Foo: bar", b"", b"body"),
     b'("TEXT" "PLAIN" ("CHARSET" "US-ASCII") NIL NIL "7BIT" 6 1 NIL NIL NIL NIL)',
     b'("TEXT" "PLAIN" ("CHARSET" "US-ASCII") NIL NIL "7BIT" 6 1)'),
    ("mixed-with-nested-alternative", NESTED,
     b'((("TEXT" "PLAIN" ("CHARSET" "UTF-8") NIL NIL "7BIT" 5 0 NIL NIL NIL NIL)'
     b'("TEXT" "HTML" ("CHARSET" "utf-8") NIL NIL "QUOTED-PRINTABLE" 16 1 NIL NIL NIL NIL)'
     b' "ALTERNATIVE" ("BOUNDARY" "inner") NIL NIL NIL)'
     b'("APPLICATION" "PDF" ("NAME" "doc.pdf") "<pdf@example.com>" "The document" "BASE64" 8'
     b' "Q2hlY2sgSW50ZWdyaXR5IQ==" ("ATTACHMENT" ("FILENAME" "doc.pdf" "SIZE" "6"))'
     b' ("en-GB" "de") "http://example.com/doc.pdf")'
     b' "MIXED" ("BOUNDARY" "outer") NIL NIL NIL)',
     b'((("TEXT" "PLAIN" ("CHARSET" "UTF-8") NIL NIL "7BIT" 5 0)'
     b'("TEXT" "HTML" ("CHARSET" "utf-8") NIL NIL "QUOTED-PRINTABLE" 16 1) "ALTERNATIVE")'
     b'("APPLICATION" "PDF" ("NAME" "doc.pdf") "<pdf@example.com>" "The document" "BASE64" 8)'
     b' "MIXED")'),
    ("message-rfc822-attachment", FORWARD,
     b'(("TEXT" "PLAIN" ("CHARSET" "US-ASCII") NIL NIL "7BIT" 15 1 NIL NIL NIL NIL)'
     b'("MESSAGE" "RFC822" NIL NIL NIL "7BIT" 235 ' + INNER_ENVELOPE +
     b' (("TEXT" "PLAIN" ("CHARSET" "US-ASCII") NIL NIL "7BIT" 3 0 NIL NIL NIL NIL)'
     b'("TEXT" "ENRICHED" ("CHARSET" "US-ASCII") NIL NIL "7BIT" 3 0 NIL NIL NIL NIL)'
     b' "ALTERNATIVE" ("BOUNDARY" "b2") NIL NIL NIL) 13 NIL NIL NIL NIL)'
     b' "MIXED" ("BOUNDARY" "b1") NIL NIL NIL)',
     b'(("TEXT" "PLAIN" ("CHARSET" "US-ASCII") NIL NIL "7BIT" 15 1)'
     b'("MESSAGE" "RFC822" NIL NIL NIL "7BIT" 235 ' + INNER_ENVELOPE +
     b' (("TEXT" "PLAIN" ("CHARSET" "US-ASCII") NIL NIL "7BIT" 3 0)'
     b'("TEXT" "ENRICHED" ("CHARSET" "US-ASCII") NIL NIL "7BIT" 3 0) "ALTERNATIVE") 13)'
     b' "MIXED")'),
    ("top-level-message-rfc822", WRAPPED,
     b'("MESSAGE" "RFC822" NIL NIL NIL "7BIT" 32 (NIL "wrapped" NIL NIL NIL NIL NIL NIL NIL NIL)'
     b' ("TEXT" "PLAIN" ("CHARSET" "US-ASCII") NIL NIL "7BIT" 12 1 NIL NIL NIL NIL) 3'
     b' NIL NIL NIL NIL)',
     b'("MESSAGE" "RFC822" NIL NIL NIL "7BIT" 32 (NIL "wrapped" NIL NIL NIL NIL NIL NIL NIL NIL)'
     b' ("TEXT" "PLAIN" ("CHARSET" "US-ASCII") NIL NIL "7BIT" 12 1) 3)'),
    ("digest-parts-default-to-message", DIGEST,
     b'(("MESSAGE" "RFC822" NIL NIL NIL "7BIT" 21 (NIL "first" NIL NIL NIL NIL NIL NIL NIL NIL)'
     b' ("TEXT" "PLAIN" ("CHARSET" "US-ASCII") NIL NIL "7BIT" 3 0 NIL NIL NIL NIL) 2'
     b' NIL NIL NIL NIL) "DIGEST" ("BOUNDARY" "d") NIL NIL NIL)',
     b'(("MESSAGE" "RFC822" NIL NIL NIL "7BIT" 21 (NIL "first" NIL NIL NIL NIL NIL NIL NIL NIL)'
     b' ("TEXT" "PLAIN" ("CHARSET" "US-ASCII") NIL NIL "7BIT" 3 0) 2) "DIGEST")'),
    ("missing-final-boundary", UNCLOSED,
     b'(("TEXT" "PLAIN" ("CHARSET" "us-ascii") NIL NIL "7BIT" 5 0 NIL NIL NIL NIL)'
     b'("TEXT" "PLAIN" ("CHARSET" "US-ASCII") NIL NIL "7BIT" 22 1 NIL NIL NIL NIL)'
     b' "MIXED" ("BOUNDARY" "x") NIL NIL NIL)',
     b'(("TEXT" "PLAIN" ("CHARSET" "us-ascii") NIL NIL "7BIT" 5 0)'
     b'("TEXT" "PLAIN" ("CHARSET" "US-ASCII") NIL NIL "7BIT" 22 1) "MIXED")'),
    ("boundary-padding-and-longer-lookalike",
     lines(b"Content-Type: multipart/mixed; boundary=x", b"", b"--x \t", b"", b"--xy is text",
           b"--x--  ", b""),
     b'(("TEXT" "PLAIN" ("CHARSET" "US-ASCII") NIL NIL "7BIT" 12 0 NIL NIL NIL NIL)'
     b' "MIXED" ("BOUNDARY" "x") NIL NIL NIL)',
     b'(("TEXT" "PLAIN" ("CHARSET" "US-ASCII") NIL NIL "7BIT" 12 0) "MIXED")'),
    ("empty-part-between-boundaries",
     lines(b"Content-Type: multipart/mixed; boundary=x", b"", b"--x", b"--x", b"", b"b", b"--x--"),
     b'(("TEXT" "PLAIN" ("CHARSET" "US-ASCII") NIL NIL "7BIT" 0 0 NIL NIL NIL NIL)'
     b'("TEXT" "PLAIN" ("CHARSET" "US-ASCII") NIL NIL "7BIT" 1 0 NIL NIL NIL NIL)'
     b' "MIXED" ("BOUNDARY" "x") NIL NIL NIL)',
     b'(("TEXT" "PLAIN" ("CHARSET" "US-ASCII") NIL NIL "7BIT" 0 0)'
     b'("TEXT" "PLAIN" ("CHARSET" "US-ASCII") NIL NIL "7BIT" 1 0) "MIXED")'),
    ("multipart-without-boundary-parameter",
     lines(b"Content-Type: multipart/mixed", b"", b"just text"),
     b'(("TEXT" "PLAIN" ("CHARSET" "US-ASCII") NIL NIL "7BIT" 11 1 NIL NIL NIL NIL)'
     b' "MIXED" NIL NIL NIL NIL)',
     b'(("TEXT" "PLAIN" ("CHARSET" "US-ASCII") NIL NIL "7BIT" 11 1) "MIXED")'),
    ("multipart-whose-boundary-never-occurs",
     lines(b"Content-Type: multipart/mixed; boundary=zz", b"", b"--zzz", b"not a part"),
     b'(("TEXT" "PLAIN" ("CHARSET" "US-ASCII") NIL NIL "7BIT" 19 2 NIL NIL NIL NIL)'
     b' "MIXED" ("BOUNDARY" "zz") NIL NIL NIL)',
     b'(("TEXT" "PLAIN" ("CHARSET" "US-ASCII") NIL NIL "7BIT" 19 2) "MIXED")'),
    ("rfc2231-disposition-language-location", PARAMS,
     b'("TEXT" "PLAIN" ("CHARSET" "US-ASCII" "FORMAT" "flowed"'
     b' "TITLE*0*" "us-ascii\'en\'Part%20one" "TITLE*1" "and two") NIL NIL "7BIT" 7 1'
     b' NIL ("INLINE" ("FILENAME*" "utf-8\'\'%E2%82%AC%20rates.txt")) ("en" "fr-CA") "rates.txt")',
     b'("TEXT" "PLAIN" ("CHARSET" "US-ASCII" "FORMAT" "flowed"'
     b' "TITLE*0*" "us-ascii\'en\'Part%20one" "TITLE*1" "and two") NIL NIL "7BIT" 7 1)'),
    ("unquoted-boundary-with-tspecials",
     lines(b'Content-Type: multipart/related; boundary=----=_Part_1; type="text/html"', b"",
           b"------=_Part_1", b"Content-Type: text/html", b"", b"<p>x</p>", b"------=_Part_1--"),
     b'(("TEXT" "HTML" ("CHARSET" "US-ASCII") NIL NIL "7BIT" 8 0 NIL NIL NIL NIL)'
     b' "RELATED" ("BOUNDARY" "----=_Part_1" "TYPE" "text/html") NIL NIL NIL)',
     b'(("TEXT" "HTML" ("CHARSET" "US-ASCII") NIL NIL "7BIT" 8 0) "RELATED")'),
    ("invalid-content-type-and-cte-comment",
     lines(b"Content-Type: text", b"Content-Transfer-Encoding: Base64 (encoded)", b"", b"aGk="),
     b'("TEXT" "PLAIN" ("CHARSET" "US-ASCII") NIL NIL "BASE64" 6 1 NIL NIL NIL NIL)',
     b'("TEXT" "PLAIN" ("CHARSET" "US-ASCII") NIL NIL "BASE64" 6 1)'),
    ("non-text-without-parameters",
     lines(b"Content-Type: image/GIF", b"Content-Transfer-Encoding: binary", b"", b"GIF89a"),
     b'("IMAGE" "GIF" NIL NIL NIL "BINARY" 8 NIL NIL NIL NIL)',
     b'("IMAGE" "GIF" NIL NIL NIL "BINARY" 8)'),
    ("missing-blank-line", lines(b"Subject: s", b"body without separator"),
     b'("TEXT" "PLAIN" ("CHARSET" "US-ASCII") NIL NIL "7BIT" 0 0 NIL NIL NIL NIL)',
     b'("TEXT" "PLAIN" ("CHARSET" "US-ASCII") NIL NIL "7BIT" 0 0)'),
    ("header-only", b"Subject: only\r\n",
     b'("TEXT" "PLAIN" ("CHARSET" "US-ASCII") NIL NIL "7BIT" 0 0 NIL NIL NIL NIL)',
     b'("TEXT" "PLAIN" ("CHARSET" "US-ASCII") NIL NIL "7BIT" 0 0)'),
    ("empty-header", b"\r\nbody\r\n",
     b'("TEXT" "PLAIN" ("CHARSET" "US-ASCII") NIL NIL "7BIT" 6 1 NIL NIL NIL NIL)',
     b'("TEXT" "PLAIN" ("CHARSET" "US-ASCII") NIL NIL "7BIT" 6 1)'),
    ("bare-lf", b"Subject: lf\nContent-Type: text/plain\n\nline1\nline2\n",
     b'("TEXT" "PLAIN" ("CHARSET" "US-ASCII") NIL NIL "7BIT" 14 2 NIL NIL NIL NIL)',
     b'("TEXT" "PLAIN" ("CHARSET" "US-ASCII") NIL NIL "7BIT" 14 2)'),
]


@pytest.mark.parametrize("message, expected",
                         [pytest.param(m, s, id=i) for i, m, s, _ in STRUCTURES])
def test_bodystructure(message, expected):
    """BODYSTRUCTURE matches the structure worked out by hand from RFC 3501 §7.4.2."""
    assert mime.bodystructure(message, True) == expected


@pytest.mark.parametrize("message, expected",
                         [pytest.param(m, b, id=i) for i, m, _, b in STRUCTURES])
def test_body(message, expected):
    """BODY is BODYSTRUCTURE without extension data, at every nesting level."""
    assert mime.bodystructure(message, False) == expected


def test_envelope_of_simple_message():
    """ENVELOPE has all ten fields in order, with Sender and Reply-To copied from From."""
    assert mime.envelope(SIMPLE) == SIMPLE_ENVELOPE


def test_envelope_ignores_the_body():
    """Given a whole message, envelope() reads only the header, not look-alike lines in the body."""
    message = lines(b"From: a@example.com", b"", b"Subject: not a header")
    assert mime.envelope(message) == (
        b'(NIL NIL ((NIL NIL "a" "example.com")) ((NIL NIL "a" "example.com"))'
        b' ((NIL NIL "a" "example.com")) NIL NIL NIL NIL NIL)')


def test_envelope_of_header_without_fields():
    """A header with none of the envelope fields gives ten NILs."""
    assert mime.envelope(lines(b"X-Foo: bar", b"")) == b"(NIL NIL NIL NIL NIL NIL NIL NIL NIL NIL)"


def test_envelope_group_in_to():
    """A group becomes a start marker with the group name, its members, and an end marker."""
    assert mime.envelope(FORWARD) == (
        b'(NIL "fwd" ((NIL NIL "outer" "example.com")) ((NIL NIL "outer" "example.com"))'
        b' ((NIL NIL "outer" "example.com"))'
        b' ((NIL NIL "inner-list" NIL)(NIL NIL "a" "example.com")(NIL NIL "b" "example.com")'
        b'(NIL NIL NIL NIL)) NIL NIL NIL NIL)')


def test_envelope_text_fields():
    """Text fields: first occurrence, unfolded, encoded words kept, empty is "" and absent NIL."""
    header = lines(
        b"Date: Thu, 3 Jul 2003 12:00:00 +0000",
        b"Subject: =?UTF-8?B?Y2Fmw6k=?=",
        b" continued",
        b"Subject: second",
        b"In-Reply-To:",
        b"Message-ID: <id@example.com>",
        b"")
    assert mime.envelope(header) == (
        b'("Thu, 3 Jul 2003 12:00:00 +0000" "=?UTF-8?B?Y2Fmw6k=?= continued"'
        b' NIL NIL NIL NIL NIL NIL "" "<id@example.com>")')


def test_envelope_eight_bit_subject_is_a_literal():
    """A raw 8-bit Subject cannot be a quoted string and goes as a literal."""
    header = lines(b"Subject: caf\xc3\xa9", b"")
    assert mime.envelope(header) == b"(NIL {5}\r\ncaf\xc3\xa9 NIL NIL NIL NIL NIL NIL NIL NIL)"


def test_envelope_sender_and_reply_to_defaults():
    """An empty Sender falls back to From, a present Reply-To is kept, a comment-only Cc is NIL."""
    header = lines(b"From: a@x.example", b"Sender:", b"Reply-To: r@x.example", b"Cc: (nobody)", b"")
    assert mime.envelope(header) == (
        b'(NIL NIL ((NIL NIL "a" "x.example")) ((NIL NIL "a" "x.example"))'
        b' ((NIL NIL "r" "x.example")) NIL NIL NIL NIL NIL)')


def test_envelope_without_from_leaves_sender_nil():
    """With no From, Sender and Reply-To have nothing to copy and stay NIL."""
    assert mime.envelope(lines(b"To: t@example.com", b"")) == (
        b'(NIL NIL NIL NIL NIL ((NIL NIL "t" "example.com")) NIL NIL NIL NIL)')


# (id, To: value, expected env-to)
ADDRESSES = [
    ("quoted-name-comma-escaped-quotes", b'"Doe, John \\"JD\\"" <jd@example.com>',
     b'(("Doe, John \\"JD\\"" NIL "jd" "example.com"))'),
    ("comment-as-name", b"jane@example.com (Jane Doe)",
     b'(("Jane Doe" NIL "jane" "example.com"))'),
    ("comment-inside-display-name", b"Jane (the boss) Doe <jane@example.com>",
     b'(("Jane Doe" NIL "jane" "example.com"))'),
    ("nested-comment", b"joe@example.com (Joe (the) Man)",
     b'(("Joe (the) Man" NIL "joe" "example.com"))'),
    ("source-route", b"<@relay1.example,@relay2.example:joe@example.com>",
     b'((NIL "@relay1.example,@relay2.example" "joe" "example.com"))'),
    ("source-route-with-name", b"Joe <@relay.example:joe@example.com>",
     b'(("Joe" "@relay.example" "joe" "example.com"))'),
    ("no-domain", b"joe", b'((NIL NIL "joe" ".MISSING-HOST-NAME."))'),
    ("null-address", b"Mailer <>", b'(("Mailer" NIL "" ".MISSING-HOST-NAME."))'),
    ("empty-group", b"undisclosed-recipients:;",
     b'((NIL NIL "undisclosed-recipients" NIL)(NIL NIL NIL NIL))'),
    ("unterminated-group", b"team: a@x.example, b@x.example",
     b'((NIL NIL "team" NIL)(NIL NIL "a" "x.example")(NIL NIL "b" "x.example")(NIL NIL NIL NIL))'),
    ("group-then-mailbox", b"g: a@x.example;, c@y.example",
     b'((NIL NIL "g" NIL)(NIL NIL "a" "x.example")(NIL NIL NIL NIL)(NIL NIL "c" "y.example"))'),
    ("encoded-word-name-kept", b"=?ISO-8859-1?Q?Andr=E9?= Pirard <PIRARD@vm1.ulg.ac.be>",
     b'(("=?ISO-8859-1?Q?Andr=E9?= Pirard" NIL "PIRARD" "vm1.ulg.ac.be"))'),
    ("quoted-local-part", b'"john doe"@example.com', b'((NIL NIL "john doe" "example.com"))'),
    ("domain-literal", b"joe@[192.0.2.1]", b'((NIL NIL "joe" "[192.0.2.1]"))'),
    ("empty-list-elements", b"a@x.example,, ,b@x.example",
     b'((NIL NIL "a" "x.example")(NIL NIL "b" "x.example"))'),
    ("phrase-whitespace-collapsed", b"John  Q.  Public <jqp@example.com>",
     b'(("John Q. Public" NIL "jqp" "example.com"))'),
    ("cfws-around-dots", b"john . doe @ example . com",
     b'((NIL NIL "john.doe" "example.com"))'),
    ("unterminated-angle", b"<unterminated@example.com",
     b'((NIL NIL "unterminated" "example.com"))'),
    ("empty-quoted-name", b'"" <a@b.example>', b'((NIL NIL "a" "b.example"))'),
    ("empty-value", b"", b"NIL"),
    ("whitespace-value", b"   ", b"NIL"),
]


@pytest.mark.parametrize("value, expected", [pytest.param(v, e, id=i) for i, v, e in ADDRESSES])
def test_envelope_addresses(value, expected):
    """Each address form becomes the address structures worked out from RFC 3501 §7.4.2."""
    header = b"From: f@example.com\r\nTo: " + value + b"\r\n\r\n"
    assert mime.envelope(header) == (
        b'(NIL NIL ((NIL NIL "f" "example.com")) ((NIL NIL "f" "example.com"))'
        b' ((NIL NIL "f" "example.com")) ' + expected + b" NIL NIL NIL NIL)")


@pytest.mark.parametrize("value", [
    b"Mary Smith <mary@x.test>, jdoe@example.org", b'"Doe, \\"J\\"" <j@d.example>', b"<a@b>",
    b"Jane Q. Doe <j@x>", b"  a@b ,  c@d  ", b"x  y <a@b>, \"\" <c@d>"])
def test_fast_address_path_agrees_with_parser(value):
    """The regex fast path for common address shapes gives exactly what the token parser gives."""
    assert mime._simple_address_list(value) == mime._parsed_address_list(value)


@pytest.mark.parametrize("value", [
    b"<", b">", b"@", b":", b";", b",", b'"', b"(", b")", b"[", b"\\", b"a@", b"@b", b"<@>",
    b"<@a:>", b"g:;;;", b"g: <a@b", b"((((", b"))))", b'"a\\', b"a@b@c", b":::a@b", b"<<a@b>>",
    b"=?x?q?a?=@", b"\x00\xff@\x80", b"a (b", b"[a@b"])
def test_malformed_addresses_never_raise(value):
    """Malformed address fields still give a well-formed envelope list, never an exception."""
    result = mime.envelope(b"To: " + value + b"\r\n\r\n")
    assert result.startswith(b"(NIL NIL NIL NIL NIL ") and result.endswith(b" NIL NIL NIL NIL)")


SECTION_CASES = [
    ("whole-message", SIMPLE, Section(), SIMPLE),
    ("header", SIMPLE, Section(text="HEADER"), SIMPLE[:-14]),
    ("text", SIMPLE, Section(text="TEXT"), b"Hi everyone.\r\n"),
    ("part-1-of-single-part", SIMPLE, Section((1,)), b"Hi everyone.\r\n"),
    ("mime-of-single-part-is-header", SIMPLE, Section((1,), "MIME"), SIMPLE[:-14]),
    ("header-of-non-message-part", SIMPLE, Section((1,), "HEADER"), None),
    ("part-2-of-single-part", SIMPLE, Section((2,)), None),
    ("part-zero", SIMPLE, Section((0,)), None),
    ("sub-part-of-leaf", SIMPLE, Section((1, 1)), None),
    ("mime-without-part", SIMPLE, Section(text="MIME"), None),
    ("multipart-text", NESTED, Section(text="TEXT"), NESTED[NESTED.index(b"This is the"):]),
    ("multipart-part", NESTED, Section((1,)), lines(
        b"--inner",
        b"Content-Type: text/plain; charset=UTF-8",
        b"",
        b"plain",
        b"--inner",
        b'Content-Type: text/html; charset="utf-8"',
        b"Content-Transfer-Encoding: quoted-printable",
        b"",
        b"<b>html</b>=21",
        b"",
        b"--inner--") + b"inner epilogue"),
    ("multipart-part-mime", NESTED, Section((1,), "MIME"),
     lines(b"Content-Type: multipart/alternative; boundary=inner", b"")),
    ("nested-leaf-without-final-crlf", NESTED, Section((1, 1)), b"plain"),
    ("nested-leaf", NESTED, Section((1, 2)), b"<b>html</b>=21\r\n"),
    ("nested-leaf-mime", NESTED, Section((1, 2), "MIME"), lines(
        b'Content-Type: text/html; charset="utf-8"',
        b"Content-Transfer-Encoding: quoted-printable",
        b"")),
    ("attachment", NESTED, Section((2,)), b"UERGLTEu"),
    ("past-last-part", NESTED, Section((3,)), None),
    ("past-last-nested-part", NESTED, Section((1, 3)), None),
    ("inside-a-leaf-part", NESTED, Section((2, 1)), None),
    ("empty-mime-header", FORWARD, Section((1,), "MIME"), b"\r\n"),
    ("text-part-after-empty-header", FORWARD, Section((1,)), b"See attached.\r\n"),
    ("message-part-is-whole-encapsulated-message", FORWARD, Section((2,)), ENCAPSULATED),
    ("message-part-mime", FORWARD, Section((2,), "MIME"),
     lines(b"Content-Type: message/rfc822", b"")),
    ("encapsulated-header", FORWARD, Section((2,), "HEADER"), lines(
        b"From: Inner Sender <inner@example.org>",
        b"Subject: inner",
        b"Date: Wed, 2 Jul 2003 11:00:00 +0000",
        b'Content-Type: multipart/alternative; boundary="b2"',
        b"")),
    ("encapsulated-text", FORWARD, Section((2,), "TEXT"), lines(
        b"--b2",
        b"Content-Type: text/plain",
        b"",
        b"one",
        b"--b2",
        b"Content-Type: text/enriched",
        b"",
        b"two") + b"--b2--"),
    ("encapsulated-header-fields", FORWARD, Section((2,), "HEADER.FIELDS", (b"DATE", b"SUBJECT")),
     lines(b"Subject: inner", b"Date: Wed, 2 Jul 2003 11:00:00 +0000", b"")),
    ("encapsulated-header-fields-not", FORWARD,
     Section((2,), "HEADER.FIELDS.NOT", (b"FROM", b"SUBJECT", b"DATE")),
     lines(b'Content-Type: multipart/alternative; boundary="b2"', b"")),
    ("encapsulated-part", FORWARD, Section((2, 1)), b"one"),
    ("encapsulated-part-2", FORWARD, Section((2, 2)), b"two"),
    ("encapsulated-part-mime", FORWARD, Section((2, 1), "MIME"),
     lines(b"Content-Type: text/plain", b"")),
    ("encapsulated-past-last-part", FORWARD, Section((2, 3)), None),
    ("header-of-text-part", FORWARD, Section((1,), "HEADER"), None),
    ("top-message-rfc822-part-1", WRAPPED, Section((1,)),
     lines(b"Subject: wrapped", b"", b"inner body")),
    ("top-message-rfc822-header", WRAPPED, Section((1,), "HEADER"),
     lines(b"Subject: wrapped", b"")),
    ("top-message-rfc822-text", WRAPPED, Section((1,), "TEXT"), b"inner body\r\n"),
    ("top-message-rfc822-mime", WRAPPED, Section((1,), "MIME"),
     lines(b"Subject: wrapper", b"Content-Type: message/rfc822", b"")),
    ("single-part-encapsulated-body", WRAPPED, Section((1, 1)), b"inner body\r\n"),
    ("single-part-encapsulated-mime", WRAPPED, Section((1, 1), "MIME"),
     lines(b"Subject: wrapped", b"")),
    ("single-part-encapsulated-past-end", WRAPPED, Section((1, 2)), None),
    ("header-fields-in-order-with-repeats", FIELDS,
     Section(text="HEADER.FIELDS", fields=(b"X-LONG", b"SUBJECT")),
     lines(b"Subject: first", b"X-Long: one", b"\ttwo", b"subject: second", b"")),
    ("header-fields-not", FIELDS,
     Section(text="HEADER.FIELDS.NOT", fields=(b"X-LONG", b"SUBJECT")),
     lines(b"Received: from a", b"To: x@example.com", b"")),
    ("header-fields-none-match", FIELDS, Section(text="HEADER.FIELDS", fields=(b"NOPE",)), b"\r\n"),
    ("no-blank-line-header", lines(b"Subject: s", b"body"), Section(text="HEADER"),
     lines(b"Subject: s", b"body")),
    ("no-blank-line-text", lines(b"Subject: s", b"body"), Section(text="TEXT"), b""),
    ("no-blank-line-fields-add-none", b"Subject: only\r\n",
     Section(text="HEADER.FIELDS", fields=(b"SUBJECT",)), b"Subject: only\r\n"),
    ("empty-header-fields-keep-blank-line", b"\r\nbody\r\n",
     Section(text="HEADER.FIELDS", fields=(b"SUBJECT",)), b"\r\n"),
    ("bare-lf-becomes-crlf", b"Subject: lf\n\nline\n", Section(), b"Subject: lf\r\n\r\nline\r\n"),
    ("no-boundary-part-has-empty-mime", lines(b"Content-Type: multipart/mixed", b"", b"just text"),
     Section((1,), "MIME"), b""),
    ("no-boundary-part-is-whole-body", lines(b"Content-Type: multipart/mixed", b"", b"just text"),
     Section((1,)), b"just text\r\n"),
    ("unclosed-last-part-runs-to-end", UNCLOSED, Section((2,)), b"second, never closed\r\n"),
    ("digest-part-header", DIGEST, Section((1,), "HEADER"), lines(b"Subject: first", b"")),
]


@pytest.mark.parametrize("message, spec, expected",
                         [pytest.param(m, s, e, id=i) for i, m, s, e in SECTION_CASES])
def test_section(message, spec, expected):
    """BODY[section] is the bytes RFC 3501 §6.4.5 assigns to the section, or None when absent."""
    assert mime.section(message, spec) == expected


BINARY_CASES = [
    ("qp-part", NESTED, (1, 2), b"<b>html</b>!\r\n"),
    ("base64-part", NESTED, (2,), b"PDF-1."),
    ("seven-bit-part", NESTED, (1, 1), b"plain"),
    ("message-part-is-identity", FORWARD, (2,), ENCAPSULATED),
    ("whole-message", SIMPLE, (), SIMPLE),
    ("single-part-base64-body", lines(b"Content-Transfer-Encoding: base64", b"", b"SGVs", b"bG8s",
                                      b"IHdv cmxk", b"IQ=="), (1,), b"Hello, world!"),
    ("base64-without-padding", lines(b"Content-Transfer-Encoding: BASE64", b"", b"SGVsbG8"),
     (1,), b"Hello"),
    ("base64-junk-and-data-after-padding",
     lines(b"Content-Transfer-Encoding: base64", b"", b"SG!Vs*bG8=", b"ignored"), (1,), b"Hello"),
    ("qp-soft-breaks-and-trailing-space",
     lines(b"Content-Transfer-Encoding: quoted-printable", b"", b"caf=C3=A9 =", b"soft break  ",
           b"x= ", b"y=3D"),
     (1,), b"caf\xc3\xa9 soft break\r\nxy=\r\n"),
    ("eight-bit-identity", lines(b"Content-Transfer-Encoding: 8bit", b"", b"caf\xc3\xa9"), (1,),
     b"caf\xc3\xa9\r\n"),
    ("missing-part", NESTED, (4,), None),
]


@pytest.mark.parametrize("message, part, expected",
                         [pytest.param(m, p, e, id=i) for i, m, p, e in BINARY_CASES])
def test_binary(message, part, expected):
    """BINARY[part] is the part's content with its transfer encoding removed (RFC 3516 §4.2)."""
    assert mime.binary(message, part) == expected


def test_binary_unknown_encoding():
    """An encoding the server cannot decode raises UnknownEncoding naming it (NO [UNKNOWN-CTE])."""
    message = lines(b"Content-Transfer-Encoding: x-uuencode", b"", b"begin 644 f")
    with pytest.raises(mime.UnknownEncoding) as raised:
        mime.binary(message, (1,))
    assert raised.value.encoding == b"X-UUENCODE"


def test_binary_of_multipart_is_not_a_leaf():
    """BINARY of a multipart part raises NotLeaf: it has no content of its own."""
    with pytest.raises(mime.NotLeaf):
        mime.binary(NESTED, (1,))


def test_nesting_is_bounded():
    """Multiparts nested past MAX_NESTING stop opening and the deepest becomes an opaque leaf."""
    depth = mime.MAX_NESTING + 50
    message = b"From: x@example.com\r\n"
    opening, closing = [], []
    for level in range(depth):
        opening.append(b"Content-Type: multipart/mixed; boundary=b%d\r\n\r\n" % level
                       + b"--b%d\r\n" % level)
        closing.append(b"\r\n--b%d--" % level)
    message += b"".join(opening) + b"\r\nleaf" + b"".join(reversed(closing)) + b"\r\n"
    structure = mime.bodystructure(message, True)
    assert structure.count(b'"MIXED"') == mime.MAX_NESTING
    assert structure.count(b'"APPLICATION" "OCTET-STREAM"') == 1
    assert mime.section(message, Section((1,) * mime.MAX_NESTING)) is not None
    assert mime.section(message, Section((1,) * (mime.MAX_NESTING + 1))) is None


def test_deep_message_nesting_does_not_recurse_without_bound():
    """Thousands of nested message/rfc822 layers are cut at MAX_NESTING without RecursionError."""
    message = b"Content-Type: message/rfc822\r\n\r\n" * 5000 + b"body\r\n"
    structure = mime.bodystructure(message, True)
    assert structure.count(b'"MESSAGE" "RFC822"') == mime.MAX_NESTING


def test_part_count_is_bounded(monkeypatch):
    """Past MAX_PARTS entities, the last part opened runs to the end of its multipart."""
    monkeypatch.setattr(mime, "MAX_PARTS", 5)
    message = lines(b"Content-Type: multipart/mixed; boundary=p", b"") + b"".join(
        b"--p\r\n\r\n%d\r\n" % n for n in range(1, 10)) + b"--p--\r\n"
    assert mime.bodystructure(message, False).count(b'("TEXT"') == 4
    assert mime.section(message, Section((4,))) == lines(
        b"4", b"--p", b"", b"5", b"--p", b"", b"6", b"--p", b"", b"7", b"--p", b"",
        b"8", b"--p", b"", b"9", b"--p--")


def test_random_input_never_raises():
    """Random bytes with MIME-ish fragments give results, never unexpected exceptions."""
    fragments = [b"\r\n", b"\n", b"--b", b"--b--", b"Content-Type: multipart/mixed; boundary=b",
                 b"Content-Type: message/rfc822", b"To: ", b"<", b">", b'"', b"(", b":", b";",
                 b"@", b",", b"Content-Transfer-Encoding: base64", b"=", b"\x00", b"\xff", b" "]
    rng = random.Random(3501)
    for _ in range(300):
        message = b"".join(rng.choice(fragments) for _ in range(rng.randrange(60)))
        mime.envelope(message)
        mime.bodystructure(message, True)
        mime.section(message, Section((1, 1), "HEADER"))
        try:
            mime.binary(message, (1,))
        except (mime.NotLeaf, mime.UnknownEncoding):
            pass


def test_header_value():
    """header_value finds the first field of a name in any case, unfolded, and None when absent."""
    header = lines(b"subject: one", b"\ttwo", b"Subject: later", b"X-Empty:", b"", b"X-Body: no")
    assert mime.header_value(header, b"SUBJECT") == b"one\ttwo"
    assert mime.header_value(header, b"x-empty") == b""
    assert mime.header_value(header, b"X-Body") is None
    assert mime.header_value(header, b"Missing") is None


def test_header_value_name_is_literal():
    """Regex characters in the asked-for name match only themselves."""
    header = lines(b"X-A.B: dotted", b"X-AzB: other", b"")
    assert mime.header_value(header, b"X-A.B") == b"dotted"
    assert mime.header_value(header, b"X-A+B") is None


@pytest.mark.parametrize("message, header, body", [
    pytest.param(SIMPLE, SIMPLE[:-14], b"Hi everyone.\r\n", id="normal"),
    pytest.param(b"Subject: s\r\nbody\r\n", b"Subject: s\r\nbody\r\n", b"", id="no-blank-line"),
    pytest.param(b"\r\nbody\r\n", b"\r\n", b"body\r\n", id="empty-header"),
    pytest.param(b"Subject: s\n\nbody\n", b"Subject: s\r\n\r\n", b"body\r\n", id="bare-lf"),
    pytest.param(b"", b"", b"", id="empty-message"),
])
def test_split_message(message, header, body):
    """split_message cuts after the first empty line, which stays with the header."""
    assert mime.split_message(message) == (header, body)
