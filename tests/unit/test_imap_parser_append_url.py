"""The grammar of CATENATE (RFC 4469), literal8 APPEND (RFC 3516), IMAP URLs (RFC 5092),
URLAUTH's commands (RFC 4467, RFC 5524) and COMPRESS (RFC 4978), table-driven."""

import datetime

import pytest

from imap.command import AppendMessage, Command, ParseError, Section
from imap.framing import CommandReady, Framer
from imap.parser import parse_command
from imap.parser_append import MAX_CATENATE_PARTS
from imap.parser_url import BadUrl, parse_url, pct_decode

VALID = [
    (b"a APPEND INBOX CATENATE (TEXT {3}\r\nabc)",
     Command("a", "APPEND", (b"INBOX", (AppendMessage((), None, None, parts=(
         ("TEXT", b"abc", False),)),)))),
    (b'a APPEND Drafts (\\Seen) CATENATE (URL ";UID=5/;SECTION=1" TEXT ~{2}\r\n\x00x'
     b' URL /INBOX/;UID=9)',
     Command("a", "APPEND", (b"Drafts", (AppendMessage(("\\Seen",), None, None, parts=(
         ("URL", b";UID=5/;SECTION=1"), ("TEXT", b"\x00x", True), ("URL", b"/INBOX/;UID=9"))),)))),
    (b'a APPEND x catenate (url {6}\r\n;UID=1) {1}\r\nz CATENATE (TEXT {1}\r\nq)',
     Command("a", "APPEND", (b"x", (
         AppendMessage((), None, None, parts=(("URL", b";UID=1"),)),
         AppendMessage((), None, b"z"),
         AppendMessage((), None, None, parts=(("TEXT", b"q", False),)))))),
    (b'a APPEND x "01-Jan-2000 00:00:00 +0000" ~{3}\r\na\x00b',
     Command("a", "APPEND", (b"x", (AppendMessage(
         (), datetime.datetime(2000, 1, 1, tzinfo=datetime.timezone.utc), b"a\x00b",
         binary=True),)))),
    (b"t COMPRESS deflate", Command("t", "COMPRESS", ("DEFLATE",))),
    (b'g GENURLAUTH "imap://a@h/INBOX/;UID=1;URLAUTH=anonymous" internal imap://a@h/X/;UID=2'
     b';URLAUTH=authuser INTERNAL',
     Command("g", "GENURLAUTH", (((b"imap://a@h/INBOX/;UID=1;URLAUTH=anonymous", "INTERNAL"),
                                  (b"imap://a@h/X/;UID=2;URLAUTH=authuser", "INTERNAL")),))),
    (b"u URLFETCH x (y BINARY bodypartstructure) (z)",
     Command("u", "URLFETCH", (((b"x", None), (b"y", ("BINARY", "BODYPARTSTRUCTURE")),
                                (b"z", ())),))),
    (b"r RESETKEY", Command("r", "RESETKEY", (None, ()))),
    (b"r RESETKEY inbox INTERNAL x", Command("r", "RESETKEY", (b"INBOX", ("INTERNAL", "X")))),
]


@pytest.mark.parametrize("data, expected", VALID, ids=[d[:30].decode(errors="replace")
                                                      for d, _ in VALID])
def test_commands(data, expected):
    """Each command parses to the arguments imap.command documents."""
    assert parse_command(data) == expected


def test_framed_byte_by_byte_then_parsed():
    """Every valid command, literals and literal8 included, survives framing one byte at a time."""
    for data, expected in VALID:
        framer = Framer(65536, 65536)
        ready = []
        for byte in data + b"\r\n":
            framer.feed(bytes([byte]))
            while (event := framer.next_event()) is not None:
                if isinstance(event, CommandReady):
                    ready.append(parse_command(event.data))
                else:
                    framer.accept_literal()
        assert ready == [expected], data


ERRORS = [
    (b"a APPEND x CATENATE ()", "Invalid CATENATE part"),
    (b"a APPEND x CATENATE (TEXT abc)", "Missing CATENATE text literal"),
    (b"a APPEND x CATENATE (URL)", "Invalid CATENATE part"),
    (b"a APPEND x CATENATE (URL x", "Invalid CATENATE parts"),
    (b"a APPEND x CATENATE URL x", "Invalid CATENATE parts"),
    (b"a APPEND x CATENATE (TEXT {1}\r\n\x00)", "NUL in literal"),
    (b"a COMPRESS", "Missing compression mechanism"),
    (b"a GENURLAUTH x", "Missing URLAUTH mechanism"),
    (b"a URLFETCH", "Missing URL"),
    (b"a URLFETCH (x", "Invalid URLFETCH parameters"),
    (b"a RESETKEY INBOX ", "Missing URLAUTH mechanism"),
]


@pytest.mark.parametrize("data, text", ERRORS, ids=[d.decode(errors="replace") for d, _ in ERRORS])
def test_errors(data, text):
    """Malformed commands are refused with a BAD text naming the problem."""
    with pytest.raises(ParseError) as raised:
        parse_command(data)
    assert raised.value.text == text


def test_catenate_part_count_is_bounded():
    """More than MAX_CATENATE_PARTS parts in one message are refused before any is used."""
    parts = b" ".join([b"URL x"] * (MAX_CATENATE_PARTS + 1))
    with pytest.raises(ParseError) as raised:
        parse_command(b"a APPEND x CATENATE (" + parts + b")")
    assert raised.value.text == "Too many CATENATE parts"


URLS = [
    # (url, base mailbox, mailbox, uidvalidity, uid, section, partial)
    (b"imap://joe@example.com/INBOX/;uid=20/;section=1.2", None,
     b"INBOX", None, 20, Section((1, 2)), None),
    (b"/Drafts;UIDVALIDITY=385759045/;UID=20/;section=1.MIME", None,
     b"Drafts", 385759045, 20, Section((1,), "MIME"), None),
    (b";UID=20", b"Sent", b"Sent", None, 20, None, None),
    (b";UID=7/;SECTION=HEADER.FIELDS%20(FROM%20TO)/;PARTIAL=5.10", b"a/b",
     b"a/b", None, 7, Section((), "HEADER.FIELDS", (b"FROM", b"TO")), (5, 10)),
    (b"c/;UID=1", b"a/b", b"a/c", None, 1, None, None),
    (b"c;UIDVALIDITY=3/;UID=1", b"top", b"c", 3, 1, None, None),
    (b"/inbox/;UID=1/;PARTIAL=4", None, b"INBOX", None, 1, None, (4, None)),
    (b"/caf%C3%A9/;UID=2", None, b"caf&AOk-", None, 2, None, None),
    (b"/a%2Fb%20c/;UID=2", None, b"a/b c", None, 2, None, None),
]


@pytest.mark.parametrize("text, base, name, validity, uid, section, partial", URLS,
                         ids=[u[0].decode() for u in URLS])
def test_urls(text, base, name, validity, uid, section, partial):
    """Absolute, absolute-path and relative URLs name a mailbox, UID, section and range."""
    url = parse_url(text, base)
    assert (url.mailbox, url.uidvalidity, url.uid, url.section, url.partial) == (
        name, validity, uid, section, partial)


def test_urlauth_parts_and_rump():
    """EXPIRE, the access identifier and the verifier are read; the rump is the URL before
    ":mech:token", byte for byte (RFC 4467 §6)."""
    text = (b"imap://Joe%40x@Mail.Example.com:143/INBOX/;UID=20/;SECTION=1.2;EXPIRE="
            b"2030-05-01T12:00:00+02:00;URLAUTH=submit+fred:internal:"
            b"91354A473744909DE610943775F92038")
    url = parse_url(text)
    assert (url.user, url.host, url.port) == ("Joe@x", "mail.example.com", 143)
    assert url.expire == datetime.datetime(2030, 5, 1, 10, 0, tzinfo=datetime.timezone.utc)
    assert (url.access, url.mechanism, url.token) == (
        b"submit+fred", "INTERNAL", b"91354a473744909de610943775f92038")
    assert url.rump == text[:text.index(b":internal:")]


BAD_URLS = [
    (b"", None), (b"imap://h", None), (b"imap://h/INBOX", None), (b"/INBOX", None),
    (b";UID=1", None), (b";SECTION=1", b"INBOX"), (b"/INBOX/;UID=0", None),
    (b"/INBOX/;UID=x", None), (b"/INBOX/;UID=1/;SECTION=1.", None),
    (b"/INBOX/;UID=1/;SECTION=BOGUS", None), (b"/INBOX/;UID=1/;PARTIAL=a", None),
    (b"/INBOX/;UID=1/", None), (b"/INBOX/;UID=1;FOO=1", None), (b"/IN%ZZ/;UID=1", None),
    (b"/%FF/;UID=1", None), (b"/a/../b/;UID=1", None), (b"/INBOX/;UID=1;URLAUTH=bob", None),
    (b"/INBOX/;UID=1;URLAUTH=anonymous:INTERNAL:abc", None),
    (b"/INBOX/;UID=1;URLAUTH=anonymous:INTERNAL:" + b"g" * 32, None),
    (b"/INBOX/;UID=1;EXPIRE=2030-01-01T00:00:00;URLAUTH=anonymous", None),
    (b"/IN BOX/;UID=1", None), (b"imap://h:x/INBOX/;UID=1", None),
    (b"/INBOX/;UID=1;SECTION=1", None), (b"/INBOX/;UID=1/;URLAUTH=anonymous", None),
    (b"/INBOX/;UID=1/;SECTION=1/;PARTIAL=1/", None),
]


@pytest.mark.parametrize("text, base", BAD_URLS, ids=[u[0].decode() or "empty" for u in BAD_URLS])
def test_bad_urls(text, base):
    """Anything but a well-formed URL of one message (part) is BadUrl."""
    with pytest.raises(BadUrl):
        parse_url(text, base)


def test_pct_decode():
    """%-escapes become the octets they name, in any case of hex digit."""
    assert pct_decode(b"a%20b%2fc%C3%a9") == b"a b/c\xc3\xa9"
