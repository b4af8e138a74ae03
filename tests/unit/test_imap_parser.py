"""imap.parser: every command, search key and fetch item, the errors, and framing then parsing."""

import datetime

import pytest

from imap.command import AppendMessage, Command, FetchItem, ParseError, Section
from imap.framing import CommandReady, Framer, LiteralAnnounced
from imap.parser import MAX_ID_PAIRS, MAX_NESTING, parse_command
from imap.parser_list import BASIC
from server.limits import IMAP_MAX_LITERALS

UTC = datetime.timezone.utc


def command(name, *args, uid=False, tag="a"):
    """The Command expected for tag `a` unless told otherwise."""
    return Command(tag, name, args, uid)


def zone(minutes):
    """A fixed time zone `minutes` east of UTC."""
    return datetime.timezone(datetime.timedelta(minutes=minutes))


ALL_SEQ = ((1, None),)

VALID = [
    # Any state.
    (b"a CAPABILITY", command("CAPABILITY")),
    (b"a noop", command("NOOP")),
    (b"A001 LoGoUt", command("LOGOUT", tag="A001")),
    (b"x]1 NOOP", command("NOOP", tag="x]1")),
    (b"a" * 50 + b" NOOP", command("NOOP", tag="a" * 50)),
    (b"a STARTTLS", command("STARTTLS")),
    (b"a ID NIL", command("ID", None)),
    (b"a ID nil", command("ID", None)),
    (b"a ID ()", command("ID", ())),
    (b'a ID ("name" "mutt" "version" NIL)',
     command("ID", ((b"name", b"mutt"), (b"version", None)))),
    (b'a ID ({4}\r\nname {4}\r\nmutt)', command("ID", ((b"name", b"mutt"),))),
    # Not authenticated.
    (b"a AUTHENTICATE PLAIN", command("AUTHENTICATE", "PLAIN", None)),
    (b"a authenticate cram-md5", command("AUTHENTICATE", "CRAM-MD5", None)),
    (b"a AUTHENTICATE PLAIN =", command("AUTHENTICATE", "PLAIN", b"=")),
    (b"a AUTHENTICATE PLAIN AGZyZWQAc2VjcmV0",
     command("AUTHENTICATE", "PLAIN", b"AGZyZWQAc2VjcmV0")),
    (b"a AUTHENTICATE PLAIN AGZyZWQAcw==", command("AUTHENTICATE", "PLAIN", b"AGZyZWQAcw==")),
    (b"a LOGIN fred secret", command("LOGIN", b"fred", b"secret")),
    (b'a LOGIN "fred smith" "se\\"cr\\\\et"', command("LOGIN", b"fred smith", b'se"cr\\et')),
    (b'a LOGIN "" ""', command("LOGIN", b"", b"")),
    (b"a LOGIN {4}\r\nfred {6}\r\nse cr\n", command("LOGIN", b"fred", b"se cr\n")),
    (b"a LOGIN f]red x~!#$&'+,-./:;<=>?@^_`|",
     command("LOGIN", b"f]red", b"x~!#$&'+,-./:;<=>?@^_`|")),
    # Authenticated.
    (b"a SELECT inbox", command("SELECT", b"INBOX")),
    (b'a SELECT "InBoX"', command("SELECT", b"INBOX")),
    (b"a SELECT {5}\r\niNbOx", command("SELECT", b"INBOX")),
    (b"a SELECT INBOX.Sent", command("SELECT", b"INBOX.Sent")),
    (b"a SELECT Mail/&ZeVnLIqe-", command("SELECT", b"Mail/&ZeVnLIqe-")),
    (b"a EXAMINE Archive", command("EXAMINE", b"Archive")),
    (b"a CREATE foo]bar", command("CREATE", b"foo]bar")),
    (b'a DELETE "with space"', command("DELETE", b"with space")),
    (b"a SUBSCRIBE news", command("SUBSCRIBE", b"news")),
    (b"a UNSUBSCRIBE {4}\r\nn\xc3\xa9w", command("UNSUBSCRIBE", b"n\xc3\xa9w")),
    (b"a RENAME old new", command("RENAME", b"old", b"new")),
    (b"a RENAME Inbox Old-In", command("RENAME", b"INBOX", b"Old-In")),
    (b'a LIST "" *', command("LIST", b"", (b"*",), BASIC)),
    (b"a LIST ~/Mail/ %/a*]", command("LIST", b"~/Mail/", (b"%/a*]",), BASIC)),
    (b'a LIST inbox "%"', command("LIST", b"inbox", (b"%",), BASIC)),
    (b'a LSUB "#news." comp.%', command("LSUB", b"#news.", b"comp.%")),
    (b"a LIST ~/Mail/% *", command("LIST", b"~/Mail/%", (b"*",), BASIC)),
    (b"a LIST {1}\r\n% {1}\r\n*", command("LIST", b"%", (b"*",), BASIC)),
    (b"a STATUS inbox (MESSAGES RECENT UIDNEXT UIDVALIDITY UNSEEN)",
     command("STATUS", b"INBOX", ("MESSAGES", "RECENT", "UIDNEXT", "UIDVALIDITY", "UNSEEN"))),
    (b"a status x (unseen)", command("STATUS", b"x", ("UNSEEN",))),
    (b"a STATUS x (SIZE messages)", command("STATUS", b"x", ("SIZE", "MESSAGES"))),
    (b"a APPEND saved {3}\r\nabc",
     command("APPEND", b"saved", (AppendMessage((), None, b"abc"),))),
    (b"a APPEND saved () {0}\r\n", command("APPEND", b"saved", (AppendMessage((), None, b""),))),
    (b"a APPEND saved (\\seen $Label1) {3}\r\nabc",
     command("APPEND", b"saved", (AppendMessage(("\\Seen", "$Label1"), None, b"abc"),))),
    (b'a APPEND saved " 7-Feb-1994 21:52:25 -0800" {3}\r\nabc',
     command("APPEND", b"saved", (AppendMessage(
         (), datetime.datetime(1994, 2, 7, 21, 52, 25, tzinfo=zone(-480)), b"abc"),))),
    (b'a APPEND saved (\\Draft) "17-jul-1996 02:44:25 +0530" {3}\r\nabc',
     command("APPEND", b"saved", (AppendMessage(
         ("\\Draft",), datetime.datetime(1996, 7, 17, 2, 44, 25, tzinfo=zone(330)), b"abc"),))),
    (b"a APPEND saved ~{3}\r\na\x00c",
     command("APPEND", b"saved", (AppendMessage((), None, b"a\x00c", binary=True),))),
    (b'a APPEND inbox (\\Seen) {1}\r\nx "01-Jan-2000 00:00:00 +0000" {1}\r\ny ~{1}\r\nz',
     command("APPEND", b"INBOX", (
         AppendMessage(("\\Seen",), None, b"x"),
         AppendMessage((), datetime.datetime(2000, 1, 1, tzinfo=UTC), b"y"),
         AppendMessage((), None, b"z", binary=True)))),
    (b"a ENABLE CONDSTORE", command("ENABLE", ("CONDSTORE",))),
    (b"a ENABLE qresync utf8=accept", command("ENABLE", ("QRESYNC", "UTF8=ACCEPT"))),
    (b"a NAMESPACE", command("NAMESPACE")),
    (b"a IDLE", command("IDLE")),
    # Selected.
    (b"a CHECK", command("CHECK")),
    (b"a CLOSE", command("CLOSE")),
    (b"a EXPUNGE", command("EXPUNGE")),
    (b"a UNSELECT", command("UNSELECT")),
    (b"a SEARCH ALL", command("SEARCH", None, ("ALL",), None)),
    (b"a SEARCH RETURN (MIN COUNT) ALL", command("SEARCH", None, ("ALL",), ("MIN", "COUNT"))),
    (b"a SEARCH RETURN () CHARSET UTF-8 SEEN", command("SEARCH", "UTF-8", ("SEEN",), ("ALL",))),
    (b"a SEARCH CHARSET utf-8 SUBJECT caf", command("SEARCH", "UTF-8", ("SUBJECT", b"caf"), None)),
    (b'a SEARCH charset "US-ASCII" ALL', command("SEARCH", "US-ASCII", ("ALL",), None)),
    (b"a FETCH 1:* FLAGS", command("FETCH", ALL_SEQ, (FetchItem("FLAGS"),))),
    (b"a FETCH 2,4:7,9,12:* (UID)",
     command("FETCH", ((2, 2), (4, 7), (9, 9), (12, None)), (FetchItem("UID"),))),
    (b"a FETCH *:4,7:5 UID", command("FETCH", ((None, 4), (7, 5)), (FetchItem("UID"),))),
    (b"a FETCH 4294967295 UID", command("FETCH", ((4294967295, 4294967295),),
                                        (FetchItem("UID"),))),
    (b"a STORE 1 FLAGS (\\Seen)", command("STORE", ((1, 1),), "", False, ("\\Seen",))),
    (b"a STORE 1:3 +FLAGS.SILENT (\\DELETED \\flagged)",
     command("STORE", ((1, 3),), "+", True, ("\\Deleted", "\\Flagged"))),
    (b"a STORE * -flags \\Answered $Junk",
     command("STORE", ((None, None),), "-", False, ("\\Answered", "$Junk"))),
    (b"a STORE 1 FLAGS ()", command("STORE", ((1, 1),), "", False, ())),
    (b"a STORE 1 -FLAGS.silent (\\Draft)", command("STORE", ((1, 1),), "-", True, ("\\Draft",))),
    (b"a STORE 1 +FLAGS (\\Recent)", command("STORE", ((1, 1),), "+", False, ("\\Recent",))),
    (b"a COPY 1:2 Trash", command("COPY", ((1, 2),), b"Trash")),
    (b"a MOVE 3 inbox", command("MOVE", ((3, 3),), b"INBOX")),
    (b"a SORT (DATE) UTF-8 ALL", command("SORT", ((False, "DATE"),), "UTF-8", ("ALL",), None)),
    (b"a SORT (reverse arrival SUBJECT DISPLAYFROM Displayto cc from size to) us-ascii "
     b"UNSEEN SMALLER 10",
     command("SORT", ((True, "ARRIVAL"), (False, "SUBJECT"), (False, "DISPLAYFROM"),
                      (False, "DISPLAYTO"), (False, "CC"), (False, "FROM"), (False, "SIZE"),
                      (False, "TO")),
             "US-ASCII", ("AND", (("UNSEEN",), ("SMALLER", 10))), None)),
    (b'a THREAD REFERENCES "UTF-8" SINCE 5-MAR-2000',
     command("THREAD", "REFERENCES", "UTF-8", ("SINCE", datetime.date(2000, 3, 5)))),
    (b"a THREAD orderedsubject utf-8 ALL", command("THREAD", "ORDEREDSUBJECT", "UTF-8", ("ALL",))),
    # UID forms.
    (b"a UID FETCH 1:* (FLAGS)", command("FETCH", ALL_SEQ, (FetchItem("FLAGS"),), uid=True)),
    (b"a uid search UID 5:*", command("SEARCH", None, ("UID", ((5, None),)), None, uid=True)),
    (b"a UID STORE 7 +FLAGS \\Seen", command("STORE", ((7, 7),), "+", False, ("\\Seen",),
                                             uid=True)),
    (b"a UID COPY 1,3 x", command("COPY", ((1, 1), (3, 3)), b"x", uid=True)),
    (b"a UID MOVE 1 x", command("MOVE", ((1, 1),), b"x", uid=True)),
    (b"a UID EXPUNGE 3:5", command("EXPUNGE", ((3, 5),), uid=True)),
    (b"a UID SORT (SIZE) UTF-8 ALL", command("SORT", ((False, "SIZE"),), "UTF-8", ("ALL",), None,
                                             uid=True)),
    (b"a UID THREAD REFERENCES UTF-8 ALL", command("THREAD", "REFERENCES", "UTF-8", ("ALL",),
                                                   uid=True)),
]


@pytest.mark.parametrize("data, expected", VALID)
def test_commands(data, expected):
    """Each command parses into the Command shape imap.command documents."""
    assert parse_command(data) == expected


SEARCH_KEYS = [
    *[(name.encode(), (name,)) for name in (
        "ALL", "ANSWERED", "DELETED", "DRAFT", "FLAGGED", "NEW", "OLD", "RECENT", "SEEN",
        "UNANSWERED", "UNDELETED", "UNDRAFT", "UNFLAGGED", "UNSEEN")],
    (b"unseen", ("UNSEEN",)),
    *[(name.encode() + b" x", (name, b"x")) for name in (
        "BCC", "BODY", "CC", "FROM", "SUBJECT", "TEXT", "TO")],
    (b'BODY "hello world"', ("BODY", b"hello world")),
    (b"CC {3}\r\nabc", ("CC", b"abc")),
    (b'SUBJECT "caf\xc3\xa9"', ("SUBJECT", b"caf\xc3\xa9")),
    (b'FROM ""', ("FROM", b"")),
    (b"BEFORE 1-Feb-1994", ("BEFORE", datetime.date(1994, 2, 1))),
    (b'ON "01-feb-1994"', ("ON", datetime.date(1994, 2, 1))),
    (b"SINCE 31-DEC-1999", ("SINCE", datetime.date(1999, 12, 31))),
    (b"SENTBEFORE 29-Feb-2000", ("SENTBEFORE", datetime.date(2000, 2, 29))),
    (b"SENTON 9-Sep-2009", ("SENTON", datetime.date(2009, 9, 9))),
    (b"SENTSINCE 10-Oct-2010", ("SENTSINCE", datetime.date(2010, 10, 10))),
    (b"LARGER 0", ("LARGER", 0)),
    (b"SMALLER 4294967295", ("SMALLER", 4294967295)),
    (b"OLDER 1", ("OLDER", 1)),
    (b"younger 259200", ("YOUNGER", 259200)),
    (b"KEYWORD $Forwarded", ("KEYWORD", "$Forwarded")),
    (b"UNKEYWORD Junk", ("UNKEYWORD", "Junk")),
    (b'HEADER Message-ID "<x@y>"', ("HEADER", b"MESSAGE-ID", b"<x@y>")),
    (b'HEADER "List-Id" ""', ("HEADER", b"LIST-ID", b"")),
    (b"UID 1:*", ("UID", ALL_SEQ)),
    (b"UID 5,7:9", ("UID", ((5, 5), (7, 9)))),
    (b"1,3:5", ("SEQ", ((1, 1), (3, 5)))),
    (b"*", ("SEQ", ((None, None),))),
    (b"NOT SEEN", ("NOT", ("SEEN",))),
    (b"NOT NOT 1", ("NOT", ("NOT", ("SEQ", ((1, 1),))))),
    (b"OR SEEN FLAGGED", ("OR", ("SEEN",), ("FLAGGED",))),
    (b"OR (SEEN FROM x) NOT DELETED",
     ("OR", ("AND", (("SEEN",), ("FROM", b"x"))), ("NOT", ("DELETED",)))),
    (b"(ALL)", ("ALL",)),
    (b"((ALL))", ("ALL",)),
    (b"(1:2 UID 3)", ("AND", (("SEQ", ((1, 2),)), ("UID", ((3, 3),))))),
    (b"SEEN FROM x", ("AND", (("SEEN",), ("FROM", b"x")))),
    (b"(SEEN) (FROM x TO y)", ("AND", (("SEEN",), ("AND", (("FROM", b"x"), ("TO", b"y")))))),
]


@pytest.mark.parametrize("text, expected", SEARCH_KEYS)
def test_search_keys(text, expected):
    """Every RFC 3501 search key (and OLDER/YOUNGER) parses into its key tuple."""
    assert parse_command(b"a SEARCH " + text) == command("SEARCH", None, expected, None)


def test_nesting_up_to_the_limit_is_accepted():
    """Search keys nested MAX_NESTING deep are still parsed."""
    depth = MAX_NESTING - 1
    assert parse_command(b"a SEARCH " + b"(" * depth + b"ALL" + b")" * depth).args[1] == ("ALL",)
    assert parse_command(b"a SEARCH " + b"NOT " * depth + b"ALL").name == "SEARCH"


def fetch(*items):
    """The items tuple of a FETCH command."""
    return tuple(items)


BODY = "BODY[]"
FETCH_ITEMS = [
    (b"ALL", fetch(FetchItem("FLAGS"), FetchItem("INTERNALDATE"), FetchItem("RFC822.SIZE"),
                   FetchItem("ENVELOPE"))),
    (b"fast", fetch(FetchItem("FLAGS"), FetchItem("INTERNALDATE"), FetchItem("RFC822.SIZE"))),
    (b"FULL", fetch(FetchItem("FLAGS"), FetchItem("INTERNALDATE"), FetchItem("RFC822.SIZE"),
                    FetchItem("ENVELOPE"), FetchItem("BODY"))),
    *[(name.encode(), fetch(FetchItem(name))) for name in (
        "ENVELOPE", "FLAGS", "INTERNALDATE", "RFC822", "RFC822.HEADER", "RFC822.SIZE",
        "RFC822.TEXT", "BODY", "BODYSTRUCTURE", "UID")],
    (b"rfc822.size", fetch(FetchItem("RFC822.SIZE"))),
    (b"BODY[]", fetch(FetchItem(BODY, Section()))),
    (b"BODY.PEEK[]", fetch(FetchItem(BODY, Section(), peek=True))),
    (b"body[text]<0.2048>", fetch(FetchItem(BODY, Section(text="TEXT"), (0, 2048)))),
    (b"BODY[HEADER]", fetch(FetchItem(BODY, Section(text="HEADER")))),
    (b"BODY.PEEK[HEADER.FIELDS (From to)]",
     fetch(FetchItem(BODY, Section(text="HEADER.FIELDS", fields=(b"FROM", b"TO")), peek=True))),
    (b'BODY[HEADER.FIELDS.NOT (X-Spam "Received")]',
     fetch(FetchItem(BODY, Section(text="HEADER.FIELDS.NOT", fields=(b"X-SPAM", b"RECEIVED"))))),
    (b"BODY[HEADER.FIELDS ({4}\r\nDate)]",
     fetch(FetchItem(BODY, Section(text="HEADER.FIELDS", fields=(b"DATE",))))),
    (b"BODY[1]", fetch(FetchItem(BODY, Section((1,))))),
    (b"BODY[1.2.3]", fetch(FetchItem(BODY, Section((1, 2, 3))))),
    (b"BODY[1.mime]", fetch(FetchItem(BODY, Section((1,), "MIME")))),
    (b"BODY[2.HEADER]", fetch(FetchItem(BODY, Section((2,), "HEADER")))),
    (b"BODY[3.TEXT]<5.1>", fetch(FetchItem(BODY, Section((3,), "TEXT"), (5, 1)))),
    (b"BODY[1.2.HEADER.FIELDS (Subject)]",
     fetch(FetchItem(BODY, Section((1, 2), "HEADER.FIELDS", (b"SUBJECT",))))),
    (b"BODY[10.4294967295]", fetch(FetchItem(BODY, Section((10, 4294967295))))),
    (b"BINARY[1]", fetch(FetchItem("BINARY[]", Section((1,))))),
    (b"BINARY.PEEK[1.2]<0.100>", fetch(FetchItem("BINARY[]", Section((1, 2)), (0, 100), True))),
    (b"BINARY[]", fetch(FetchItem("BINARY[]", Section()))),
    (b"BINARY.SIZE[3]", fetch(FetchItem("BINARY.SIZE", Section((3,))))),
    (b"binary.size[]", fetch(FetchItem("BINARY.SIZE", Section()))),
    (b"(FLAGS UID)", fetch(FetchItem("FLAGS"), FetchItem("UID"))),
    (b"(UID BODY.PEEK[HEADER.FIELDS (DATE)] RFC822.SIZE)",
     fetch(FetchItem("UID"), FetchItem(BODY, Section(text="HEADER.FIELDS", fields=(b"DATE",)),
                                       peek=True), FetchItem("RFC822.SIZE"))),
]


@pytest.mark.parametrize("text, expected", FETCH_ITEMS)
def test_fetch_items(text, expected):
    """Fetch attributes, sections and partial ranges parse into FetchItems; macros expand."""
    assert parse_command(b"a FETCH 1 " + text) == command("FETCH", ((1, 1),), expected)


def test_section_spec_round_trips():
    """Section.spec() gives back the section text the client sent (upper-cased)."""
    item = parse_command(b"a FETCH 1 BODY[1.2.HEADER.FIELDS (from To)]").args[1][0]
    assert item.section.spec() == b"1.2.HEADER.FIELDS (FROM TO)"


def literals(count):
    """An APPEND tail of `count` one-octet messages, each a literal."""
    return b"".join(b" {1}\r\n%d" % (n % 10) for n in range(count))


ERRORS = [
    # The command line.
    (b"", None, "Empty command line"),
    (b" NOOP", None, "Missing or invalid tag"),
    (b"+ NOOP", None, "Missing or invalid tag"),
    (b"* NOOP", None, "Missing or invalid tag"),
    (b"a+b NOOP", None, "Invalid tag"),
    (b'a"b NOOP', None, "Invalid tag"),
    (b"a" * 51 + b" NOOP", None, "Excessively long tag"),
    (b"a", "a", "Missing command"),
    (b"a ", "a", "Missing command"),
    (b"a  NOOP", "a", "Missing command"),
    (b"a FROB", "a", "Unknown command"),
    (b"a XYZZY foo", "a", "Unknown command"),
    (b"a UID", "a", "Missing command after UID"),
    (b"a UID NOOP", "a", "Unknown UID command"),
    (b"a UID LOGIN x y", "a", "Unknown UID command"),
    (b"a NOOP extra", "a", "Unexpected extra arguments"),
    (b"a NOOP ", "a", "Unexpected extra arguments"),
    # Strings and literals.
    (b"a LOGIN", "a", "Missing user name"),
    (b"a LOGIN fred", "a", "Missing password"),
    (b"a LOGIN fred ", "a", "Missing password"),
    (b"a LOGIN fred (x)", "a", "Missing password"),
    (b"a LOGIN fred x y", "a", "Unexpected extra arguments"),
    (b'a LOGIN "fr\\ed" x', "a", "Invalid escape in quoted string"),
    (b'a LOGIN "fred\\', "a", "Invalid escape in quoted string"),
    (b'a LOGIN "fred x', "a", "Unterminated quoted string"),
    (b'a LOGIN "fr\x00ed" x', "a", "Invalid character in quoted string"),
    (b'a LOGIN "fr\red" x', "a", "Invalid character in quoted string"),
    (b'a LOGIN "caf\xc3\xa9" x', "a", "Invalid character in quoted string"),
    (b"a LOGIN {3}\r\nab", "a", "Truncated literal"),
    (b"a LOGIN {3}ab", "a", "Invalid literal"),
    (b"a LOGIN {3+}\r\nabc x", "a", "Invalid literal"),
    (b"a LOGIN {}\r\n x", "a", "Invalid literal"),
    (b"a LOGIN {99999999999}\r\n x", "a", "Invalid literal"),
    (b"a LOGIN {2}\r\na\x00 x", "a", "NUL in literal"),
    (b"a APPEND x" + literals(IMAP_MAX_LITERALS + 1), "a", "Too many literals"),
    # Mailbox commands.
    (b"a SELECT", "a", "Missing mailbox name"),
    (b"a SELECT ", "a", "Missing mailbox name"),
    (b"a SELECT inbox (NOSUCH)", "a", "Unknown SELECT parameter"),
    (b"a EXAMINE inbox ()", "a", "Unknown SELECT parameter"),
    (b"a SELECT inbox x", "a", "Unexpected extra arguments"),
    (b"a SELECT a%b", "a", "Unexpected extra arguments"),
    (b"a CREATE", "a", "Missing mailbox name"),
    (b"a RENAME a", "a", "Missing mailbox name"),
    (b"a LIST", "a", "Missing reference name"),
    (b'a LIST ""', "a", "Missing mailbox pattern"),
    (b'a LIST "" )', "a", "Missing mailbox pattern"),
    (b"a STATUS inbox", "a", "Missing status items"),
    (b"a STATUS inbox MESSAGES", "a", "Invalid status items"),
    (b"a STATUS inbox ()", "a", "Unknown status item"),
    (b"a STATUS inbox (MESSAGES FOO)", "a", "Unknown status item"),
    (b"a STATUS inbox (MESSAGES", "a", "Invalid status items"),
    (b"a APPEND box", "a", "Missing message literal"),
    (b"a APPEND box abc", "a", "Missing message literal"),
    (b"a APPEND box (\\Seen)", "a", "Missing message literal"),
    (b"a APPEND box (\\Seen) {1}\r\nx ", "a", "Missing message literal"),
    (b"a APPEND box (\\Foo) {1}\r\nx", "a", "Invalid flag"),
    (b"a APPEND box (\\*) {1}\r\nx", "a", "Invalid flag"),
    (b"a APPEND box (\\Seen {1}\r\nx", "a", "Invalid flag"),
    (b"a APPEND box (\\Seen", "a", "Invalid flag list"),
    (b"a APPEND box (\\Seen  x) {1}\r\nx", "a", "Invalid flag"),
    (b'a APPEND box "32-Jan-2020 10:00:00 +0000" {1}\r\nx', "a", "Invalid date-time"),
    (b'a APPEND box "1-Jan-2020 10:00:00 +0000" {1}\r\nx', "a", "Invalid date-time"),
    (b'a APPEND box "01-Foo-2020 10:00:00 +0000" {1}\r\nx', "a", "Invalid date-time"),
    (b'a APPEND box "01-Jan-2020 25:00:00 +0000" {1}\r\nx', "a", "Invalid date-time"),
    (b'a APPEND box "01-Jan-2020 10:00 +0000" {1}\r\nx', "a", "Invalid date-time"),
    (b'a APPEND box "01-Jan-2020 10:00:00 +0060" {1}\r\nx', "a", "Invalid date-time"),
    (b'a APPEND box "01-Jan-2020 10:00:00 0000" {1}\r\nx', "a", "Invalid date-time"),
    (b'a APPEND box "01-Jan-2020 10:00:00 +0000 {1}\r\nx', "a", "Invalid date-time"),
    (b'a APPEND box "01-Jan-20 10:00:00 +0000" {1}\r\nx', "a", "Invalid date-time"),
    # SEARCH.
    (b"a SEARCH", "a", "Missing search criteria"),
    (b"a SEARCH ", "a", "Missing search key"),
    (b"a SEARCH FOO", "a", "Invalid search key"),
    (b"a SEARCH RETURN (NEWEST) ALL", "a", "Unknown RETURN option"),
    (b"a SEARCH ALL  SEEN", "a", "Missing search key"),
    (b"a SEARCH CHARSET", "a", "Invalid search key"),
    (b"a SEARCH CHARSET  ALL", "a", "Missing charset"),
    (b'a SEARCH CHARSET "\xc3\xa9" ALL', "a", "Invalid charset"),
    (b"a SEARCH BEFORE 1-Foo-2000", "a", "Invalid date"),
    (b"a SEARCH BEFORE 30-Feb-2020", "a", "Invalid date"),
    (b"a SEARCH BEFORE 100-Feb-2020", "a", "Invalid date"),
    (b"a SEARCH BEFORE 1-Feb-20", "a", "Invalid date"),
    (b'a SEARCH BEFORE "1-Feb-2020', "a", "Invalid date"),
    (b"a SEARCH BEFORE", "a", "Missing search argument"),
    (b"a SEARCH LARGER x", "a", "Invalid number"),
    (b"a SEARCH LARGER 4294967296", "a", "Invalid number"),
    (b"a SEARCH LARGER 99999999999999999999999", "a", "Invalid number"),
    (b"a SEARCH OLDER 0", "a", "Invalid interval"),
    (b"a SEARCH YOUNGER -1", "a", "Invalid interval"),
    (b"a SEARCH KEYWORD \\Seen", "a", "Invalid keyword"),
    (b"a SEARCH HEADER x", "a", "Missing search argument"),
    (b"a SEARCH HEADER", "a", "Missing search argument"),
    (b"a SEARCH (ALL", "a", "Invalid search key"),
    (b"a SEARCH ()", "a", "Missing search key"),
    (b"a SEARCH ALL)", "a", "Invalid search key"),
    (b"a SEARCH OR ALL", "a", "Missing second search key of OR"),
    (b"a SEARCH NOT", "a", "Missing search argument"),
    (b"a SEARCH 1:x", "a", "Invalid sequence set"),
    (b"a SEARCH 0", "a", "Invalid sequence set"),
    (b"a SEARCH UID", "a", "Missing search argument"),
    (b"a SEARCH " + b"(" * (MAX_NESTING + 1) + b"ALL" + b")" * (MAX_NESTING + 1), "a",
     "Too deeply nested"),
    (b"a SEARCH " + b"NOT " * (MAX_NESTING + 1) + b"ALL", "a", "Too deeply nested"),
    (b"a SEARCH " + b"OR ALL " * (MAX_NESTING + 1) + b"ALL", "a", "Too deeply nested"),
    # FETCH.
    (b"a FETCH", "a", "Missing sequence set"),
    (b"a FETCH 1", "a", "Missing fetch items"),
    (b"a FETCH 1 ", "a", "Invalid fetch item"),
    (b"a FETCH 1 FOO", "a", "Invalid fetch item"),
    (b"a FETCH 1 (ALL)", "a", "Invalid fetch item"),
    (b"a FETCH 1 ()", "a", "Invalid fetch item"),
    (b"a FETCH 1 (FLAGS", "a", "Invalid fetch item"),
    (b"a FETCH 1 (FLAGS  UID)", "a", "Invalid fetch item"),
    (b"a FETCH 1 FLAGS[]", "a", "Invalid fetch item"),
    (b"a FETCH 1 BODY.PEEK", "a", "Invalid fetch item"),
    (b"a FETCH 1 BINARY", "a", "Invalid fetch item"),
    (b"a FETCH 1 BODY[HEADER.FIELDS]", "a", "Missing header list"),
    (b"a FETCH 1 BODY[HEADER.FIELDS ()]", "a", "Invalid header list"),
    (b"a FETCH 1 BODY[HEADER.FIELDS (From]", "a", "Invalid header list"),
    (b"a FETCH 1 BODY[0]", "a", "Invalid section part"),
    (b"a FETCH 1 BODY[1.0]", "a", "Invalid section part"),
    (b"a FETCH 1 BODY[01]", "a", "Invalid section part"),
    (b"a FETCH 1 BODY[MIME]", "a", "Invalid section"),
    (b"a FETCH 1 BODY[1.FOO]", "a", "Invalid section"),
    (b"a FETCH 1 BODY[1.]", "a", "Invalid section"),
    (b"a FETCH 1 BODY[TEXT", "a", "Invalid section"),
    (b"a FETCH 1 BODY[1 ]", "a", "Invalid section"),
    (b"a FETCH 1 BINARY[HEADER]", "a", "Invalid section"),
    (b"a FETCH 1 BINARY[1.MIME]", "a", "Invalid section"),
    (b"a FETCH 1 BODY[]<0>", "a", "Invalid partial range"),
    (b"a FETCH 1 BODY[]<0.0>", "a", "Invalid partial range"),
    (b"a FETCH 1 BODY[]<x.1>", "a", "Invalid partial range"),
    (b"a FETCH 1 BINARY.SIZE[1]<0.1>", "a", "Unexpected extra arguments"),
    (b"a FETCH 1,,2 UID", "a", "Invalid sequence set"),
    (b"a FETCH 1: UID", "a", "Invalid sequence set"),
    (b"a FETCH :1 UID", "a", "Invalid sequence set"),
    (b"a FETCH 01 UID", "a", "Invalid sequence set"),
    (b"a FETCH 1:2x UID", "a", "Invalid sequence set"),
    (b"a FETCH 4294967296 UID", "a", "Invalid sequence set"),
    (b"a FETCH $1 UID", "a", "Invalid sequence set"),
    # STORE, COPY, MOVE, UID EXPUNGE.
    (b"a STORE 1", "a", "Missing store item"),
    (b"a STORE 1 FLAG (\\Seen)", "a", "Invalid store item"),
    (b"a STORE 1 *FLAGS (\\Seen)", "a", "Invalid store item"),
    (b"a STORE 1 +FLAGS.LOUD (\\Seen)", "a", "Invalid store item"),
    (b"a STORE 1 +FLAGS", "a", "Missing flags"),
    (b"a STORE 1 FLAGS.SILENT", "a", "Missing flags"),
    (b"a STORE 1 FLAGS \\Foo", "a", "Invalid flag"),
    (b"a STORE 1 FLAGS (\\*)", "a", "Invalid flag"),
    (b"a STORE 1 FLAGS \\Seen  \\Draft", "a", "Invalid flag"),
    (b"a STORE 1 FLAGS (\\Seen", "a", "Invalid flag list"),
    (b"a STORE 1 FLAGS (\\Seen) x", "a", "Unexpected extra arguments"),
    (b"a STORE 1 (UNCHANGEDSINCE 5) FLAGS.LOUD (\\Seen)", "a", "Invalid store item"),
    (b"a COPY 1", "a", "Missing mailbox name"),
    (b"a COPY", "a", "Missing sequence set"),
    (b"a MOVE 1:* ", "a", "Missing mailbox name"),
    (b"a UID EXPUNGE", "a", "Missing sequence set"),
    (b"a EXPUNGE 1", "a", "Unexpected extra arguments"),
    # SORT and THREAD.
    (b"a SORT", "a", "Missing sort criteria"),
    (b"a SORT DATE UTF-8 ALL", "a", "Invalid sort criteria"),
    (b"a SORT (FOO) UTF-8 ALL", "a", "Invalid sort criteria"),
    (b"a SORT () UTF-8 ALL", "a", "Invalid sort criteria"),
    (b"a SORT (REVERSE) UTF-8 ALL", "a", "Invalid sort criteria"),
    (b"a SORT (REVERSE REVERSE DATE) UTF-8 ALL", "a", "Invalid sort criteria"),
    (b"a SORT (DATE", "a", "Invalid sort criteria"),
    (b"a SORT (DATE)", "a", "Missing charset"),
    (b"a SORT (DATE) UTF-8", "a", "Missing search criteria"),
    (b"a THREAD", "a", "Missing thread algorithm"),
    (b"a THREAD REFERENCES", "a", "Missing charset"),
    (b"a THREAD REFERENCES UTF-8", "a", "Missing search criteria"),
    # ENABLE, ID, AUTHENTICATE.
    (b"a ENABLE", "a", "Missing capability"),
    (b"a ENABLE ", "a", "Missing capability"),
    (b"a ID", "a", "Missing ID parameters"),
    (b"a ID foo", "a", "Invalid ID parameters"),
    (b'a ID ("name")', "a", "Invalid ID parameters"),
    (b"a ID (name mutt)", "a", "Invalid ID parameters"),
    (b'a ID ("name" "mutt"', "a", "Invalid ID parameters"),
    (b'a ID ("a" "b""c" "d")', "a", "Invalid ID parameters"),
    (b"a ID (" + b" ".join([b'"k%d" "v"' % n for n in range(MAX_ID_PAIRS + 1)]) + b")", "a",
     "Too many ID parameters"),
    (b'a ID ("' + b"n" * 31 + b'" "v")', "a", "ID parameter too long"),
    (b'a ID ("name" "' + b"v" * 1025 + b'")', "a", "ID parameter too long"),
    (b"a AUTHENTICATE", "a", "Missing authentication mechanism"),
    (b"a AUTHENTICATE PLAIN abc", "a", "Invalid initial response"),
    (b"a AUTHENTICATE PLAIN a=bc", "a", "Invalid initial response"),
    (b"a AUTHENTICATE PLAIN ab===", "a", "Invalid initial response"),
    (b"a AUTHENTICATE PLAIN ====", "a", "Invalid initial response"),
    (b"a AUTHENTICATE PLAIN  x", "a", "Invalid initial response"),
    (b"a AUTHENTICATE PLAIN = x", "a", "Unexpected extra arguments"),
]


@pytest.mark.parametrize("data, tag, text", ERRORS)
def test_errors(data, tag, text):
    """Malformed commands raise ParseError with the tag (when readable) and a short text."""
    with pytest.raises(ParseError) as caught:
        parse_command(data)
    assert (caught.value.tag, caught.value.text) == (tag, text)


def test_literals_up_to_the_limit_are_accepted():
    """A command may carry IMAP_MAX_LITERALS literals (MULTIAPPEND)."""
    parsed = parse_command(b"a APPEND x" + literals(IMAP_MAX_LITERALS))
    assert len(parsed.args[1]) == IMAP_MAX_LITERALS


def frame_byte_by_byte(data):
    """The commands a Framer delivers for data fed one byte at a time, all literals accepted."""
    framer = Framer(1000, 10000)
    ready = []
    for octet in data:
        framer.feed(bytes((octet,)))
        event = framer.next_event()
        while event is not None:
            if isinstance(event, LiteralAnnounced):
                framer.accept_literal()
            else:
                assert isinstance(event, CommandReady)
                ready.append(event.data)
            event = framer.next_event()
    return ready


def all_valid_commands():
    """Every valid command of this module with its expected Command."""
    yield from VALID
    for text, key in SEARCH_KEYS:
        yield b"a SEARCH " + text, command("SEARCH", None, key, None)
    for text, items in FETCH_ITEMS:
        yield b"a FETCH 1 " + text, command("FETCH", ((1, 1),), items)


@pytest.mark.parametrize("literal_plus", [False, True], ids=["synchronizing", "literal-plus"])
def test_framed_byte_by_byte_then_parsed(literal_plus):
    """Every valid command survives framing one byte at a time, with {n} or {n+} literals."""
    for data, expected in all_valid_commands():
        sent = data.replace(b"}\r\n", b"+}\r\n") if literal_plus else data
        assert [parse_command(ready) for ready in frame_byte_by_byte(sent + b"\r\n")] == [
            expected], data
