"""imap.parser_condstore: the RFC 7162 grammar (SELECT parameters, FETCH and STORE modifiers,
the MODSEQ search key), byte for byte, and what it refuses."""

import pytest

from imap.command import Command, FetchItem, ParseError
from imap.parser import parse_command
from imap.parser_condstore import MAX_MODSEQ, FetchModifiers, SelectParameters

BIG = 1795756157374995

VALID = [
    (b"a SELECT INBOX (CONDSTORE)", ("SELECT", (b"INBOX", SelectParameters(True)))),
    (b"a EXAMINE x (condstore)", ("EXAMINE", (b"x", SelectParameters(True)))),
    (b"a SELECT INBOX (QRESYNC (67890007 %d))" % BIG,
     ("SELECT", (b"INBOX", SelectParameters(False, (67890007, BIG, None, None))))),
    (b"a SELECT INBOX (QRESYNC (1 2 41,43:211))",
     ("SELECT", (b"INBOX", SelectParameters(False, (1, 2, ((41, 41), (43, 211)), None))))),
    (b"a SELECT INBOX (QRESYNC (1 2 1:9 (1:3 4:6)) CONDSTORE)",
     ("SELECT", (b"INBOX", SelectParameters(True, (1, 2, ((1, 9),), (((1, 3),), ((4, 6),))))))),
    (b"a SELECT INBOX (QRESYNC (1 2 (1,5 4,9)))",
     ("SELECT", (b"INBOX", SelectParameters(False, (1, 2, None, (((1, 1), (5, 5)),
                                                                  ((4, 4), (9, 9)))))))),
    (b"a FETCH 1:* (FLAGS MODSEQ)", ("FETCH", (((1, None),), (FetchItem("FLAGS"),
                                                                FetchItem("MODSEQ"))))),
    (b"a FETCH 1 MODSEQ (CHANGEDSINCE 12345)",
     ("FETCH", (((1, 1),), (FetchItem("MODSEQ"),), FetchModifiers(12345)))),
    (b"a FETCH 1 UID (changedsince %d vanished)" % MAX_MODSEQ,
     ("FETCH", (((1, 1),), (FetchItem("UID"),), FetchModifiers(MAX_MODSEQ, True)))),
    (b"a STORE 1 (UNCHANGEDSINCE 0) +FLAGS.SILENT (\\Deleted)",
     ("STORE", (((1, 1),), "+", True, ("\\Deleted",), 0))),
    (b"a STORE 2:4 (unchangedsince 320162338) FLAGS \\Seen",
     ("STORE", (((2, 4),), "", False, ("\\Seen",), 320162338))),
    (b"a SEARCH MODSEQ 5", ("SEARCH", (None, ("MODSEQ", 5), None))),
    (b'a SEARCH MODSEQ "/flags/\\\\draft" all 620162338',
     ("SEARCH", (None, ("MODSEQ", 620162338), None))),
    (b"a STATUS INBOX (HIGHESTMODSEQ)", ("STATUS", (b"INBOX", ("HIGHESTMODSEQ",)))),
]


@pytest.mark.parametrize("data,expected", VALID)
def test_valid(data, expected):
    """Each RFC 7162 form parses to the documented arguments."""
    name, args = expected
    assert parse_command(data) == Command("a", name, args)


def test_uid_fetch_with_modifiers():
    """UID FETCH takes the same modifiers."""
    assert parse_command(b"a UID FETCH 1:* FLAGS (CHANGEDSINCE 7 VANISHED)") == Command(
        "a", "FETCH", (((1, None),), (FetchItem("FLAGS"),), FetchModifiers(7, True)), True)


INVALID = [
    (b"a SELECT INBOX (CONDSTORE CONDSTORE)", "Unknown SELECT parameter"),
    (b"a SELECT INBOX (FOO)", "Unknown SELECT parameter"),
    (b"a SELECT INBOX ()", "Unknown SELECT parameter"),
    (b"a SELECT INBOX (QRESYNC (0 5))", "Invalid QRESYNC parameter"),
    (b"a SELECT INBOX (QRESYNC (1 0))", "Invalid QRESYNC parameter"),
    (b"a SELECT INBOX (QRESYNC (1 5 1:*))", "Invalid QRESYNC parameter"),
    (b"a SELECT INBOX (QRESYNC (1 5 1:3 (1:3)))", "Invalid QRESYNC parameter"),
    (b"a SELECT INBOX (QRESYNC (1 %d))" % (MAX_MODSEQ + 1), "Invalid QRESYNC parameter"),
    (b"a FETCH 1 FLAGS (VANISHED)", "VANISHED requires CHANGEDSINCE"),
    (b"a FETCH 1 FLAGS (CHANGEDSINCE 0)", "Invalid CHANGEDSINCE"),
    (b"a FETCH 1 FLAGS (CHANGEDSINCE 1 CHANGEDSINCE 2)", "Repeated FETCH modifier"),
    (b"a FETCH 1 FLAGS (FOO 1)", "Unknown FETCH modifier"),
    (b"a FETCH 1 FLAGS(CHANGEDSINCE 1)", "Unexpected extra arguments"),
    (b"a STORE 1 (UNCHANGEDSINCE) +FLAGS x", "Invalid UNCHANGEDSINCE"),
    (b"a STORE 1 (UNCHANGEDSINCE 1 UNCHANGEDSINCE 2) +FLAGS x", "Unknown STORE modifier"),
    (b"a STORE 1 (UNCHANGEDSINCE 1)+FLAGS x", "Missing store item"),
    (b'a SEARCH MODSEQ "/flags/x" bogus 1', "Invalid MODSEQ entry type"),
    (b'a SEARCH MODSEQ "x" all 1', "Invalid MODSEQ entry name"),
    (b"a SEARCH MODSEQ x", "Invalid MODSEQ value"),
]


@pytest.mark.parametrize("data,text", INVALID)
def test_invalid(data, text):
    """Malformed RFC 7162 arguments are BAD with a text that says what is wrong."""
    with pytest.raises(ParseError) as caught:
        parse_command(data)
    assert caught.value.text == text
