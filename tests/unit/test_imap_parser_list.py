"""imap.parser_list: LIST with RFC 5258 options and pattern lists, RFC 5819 STATUS, RFC 6154 SPECIAL-USE."""

import pytest

from imap.command import Command, ParseError
from imap.framing import CommandReady, Framer
from imap.parser import parse_command
from imap.parser_list import BASIC, MAX_PATTERNS, ListOptions


def listing(reference, patterns, selection=(), returns=(), status=(), extended=True):
    """The Command expected for `a LIST ...`."""
    options = ListOptions(frozenset(selection), frozenset(returns), status, extended)
    return Command("a", "LIST", (reference, tuple(patterns), options))


VALID = [
    (b'a LIST "" *', listing(b"", [b"*"], extended=False)),
    (b'a LIST () "" *', listing(b"", [b"*"])),
    (b'a LIST "" * RETURN ()', listing(b"", [b"*"])),
    (b'a LIST (SUBSCRIBED) "" *', listing(b"", [b"*"], ["SUBSCRIBED"])),
    (b'a list (subscribed recursivematch) "" %',
     listing(b"", [b"%"], ["SUBSCRIBED", "RECURSIVEMATCH"])),
    (b'a LIST (RECURSIVEMATCH REMOTE SUBSCRIBED) "" %',
     listing(b"", [b"%"], ["SUBSCRIBED", "RECURSIVEMATCH", "REMOTE"])),
    (b'a LIST (REMOTE) "" %', listing(b"", [b"%"], ["REMOTE"])),
    (b'a LIST (SPECIAL-USE) "" *', listing(b"", [b"*"], ["SPECIAL-USE"])),
    # RFC 5258 §3: an option given twice counts once.
    (b'a LIST (SUBSCRIBED SUBSCRIBED) "" *', listing(b"", [b"*"], ["SUBSCRIBED"])),
    (b'a LIST "" (INBOX "Sent Items" %/%)', listing(b"", [b"INBOX", b"Sent Items", b"%/%"])),
    (b'a LIST "" ({4}\r\nWork "")', listing(b"", [b"Work", b""])),
    (b'a LIST ~/Mail/ (*)', listing(b"~/Mail/", [b"*"])),
    (b'a LIST "" % RETURN (CHILDREN SUBSCRIBED)',
     listing(b"", [b"%"], returns=["CHILDREN", "SUBSCRIBED"])),
    (b'a LIST "" % return (special-use)', listing(b"", [b"%"], returns=["SPECIAL-USE"])),
    (b'a LIST "" % RETURN (STATUS (MESSAGES UNSEEN SIZE))',
     listing(b"", [b"%"], returns=["STATUS"], status=("MESSAGES", "UNSEEN", "SIZE"))),
    # A second STATUS adds its new items to the first's, in order.
    (b'a LIST "" % RETURN (STATUS (MESSAGES) CHILDREN STATUS (UIDNEXT MESSAGES))',
     listing(b"", [b"%"], returns=["STATUS", "CHILDREN"], status=("MESSAGES", "UIDNEXT"))),
    (b'a LIST (SUBSCRIBED) "" (% Work/*) RETURN (STATUS (RECENT) CHILDREN)',
     listing(b"", [b"%", b"Work/*"], ["SUBSCRIBED"], ["STATUS", "CHILDREN"], ("RECENT",))),
]


@pytest.mark.parametrize("data, expected", VALID, ids=[data.decode(errors="replace") for data, _ in VALID])
def test_extended_list_commands(data, expected):
    """Each extended LIST form parses to its reference, patterns and options."""
    assert parse_command(data) == expected


def test_framed_byte_by_byte_then_parsed():
    """Every valid extended LIST, literals included, survives framing one byte at a time."""
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


def test_selection_options_imply_return_options():
    """SUBSCRIBED and SPECIAL-USE selection imply the return options of the same name."""
    options = parse_command(b'a LIST (SUBSCRIBED SPECIAL-USE) "" *').args[2]
    assert options.returns_subscribed() and options.returns_special_use()
    assert not BASIC.returns_subscribed() and not BASIC.returns_special_use()
    remote = parse_command(b'a LIST (REMOTE) "" * RETURN (CHILDREN)').args[2]
    assert not remote.returns_subscribed() and not remote.returns_special_use()


ERRORS = [
    (b'a LIST (RECURSIVEMATCH) "" *', "RECURSIVEMATCH needs the SUBSCRIBED selection option"),
    (b'a LIST (REMOTE RECURSIVEMATCH) "" *', "RECURSIVEMATCH needs the SUBSCRIBED selection option"),
    (b'a LIST (SPECIAL-USE RECURSIVEMATCH) "" *',
     "RECURSIVEMATCH needs the SUBSCRIBED selection option"),
    (b'a LIST (FOO) "" *', "Unknown selection option"),
    (b'a LIST (SUBSCRIBED FOO (BAR)) "" *', "Unknown selection option"),
    (b'a LIST (SUBSCRIBED "" *', "Invalid selection options"),
    (b'a LIST ( SUBSCRIBED) "" *', "Invalid selection options"),
    (b'a LIST (SUBSCRIBED)"" *', "Missing reference name"),
    (b'a LIST ()', "Missing reference name"),
    (b'a LIST "" ()', "Invalid mailbox patterns"),
    (b'a LIST "" (a b', "Invalid mailbox patterns"),
    (b'a LIST "" (a  b)', "Invalid mailbox patterns"),
    (b'a LIST "" * RETURN (FAST)', "Unknown RETURN option"),
    (b'a LIST "" * RETURN CHILDREN', "Invalid RETURN options"),
    (b'a LIST "" * RETURN (CHILDREN', "Invalid RETURN options"),
    (b'a LIST "" * RETURN (STATUS)', "Missing STATUS items"),
    (b'a LIST "" * RETURN (STATUS ())', "Unknown status item"),
    (b'a LIST "" * RETURN (STATUS (DELETED))', "Unknown status item"),
    (b'a LIST "" * RETURN (STATUS MESSAGES)', "Invalid STATUS items"),
    (b'a LIST "" * RETURNS (CHILDREN)', "Unexpected extra arguments"),
    (b'a LIST "" * RETURN (CHILDREN) x', "Unexpected extra arguments"),
    (b'a LIST "" (' + b" ".join([b"x"] * (MAX_PATTERNS + 1)) + b")", "Too many mailbox patterns"),
    # LSUB has no extended syntax (RFC 5258 extends LIST only).
    (b'a LSUB (SUBSCRIBED) "" *', "Missing reference name"),
    (b'a LSUB "" (a b)', "Missing mailbox pattern"),
]


@pytest.mark.parametrize("data, text", ERRORS, ids=[data.decode()[:60] for data, _ in ERRORS])
def test_errors(data, text):
    """Malformed or unknown extended LIST syntax is a BAD with the tag and a short reason."""
    with pytest.raises(ParseError) as raised:
        parse_command(data)
    assert (raised.value.tag, raised.value.text) == ("a", text)


def test_patterns_up_to_the_limit_are_accepted():
    """MAX_PATTERNS patterns are one list, each kept as sent."""
    names = [b"p%d" % n for n in range(MAX_PATTERNS)]
    assert parse_command(b'a LIST "" (' + b" ".join(names) + b")").args[1] == tuple(names)
