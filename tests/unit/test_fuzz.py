"""Property-based fuzzing of the IMAP framer and parser and of the mbox reader: no crash, ever.

Hypothesis feeds random and mutated input; the only acceptable outcomes are
a parsed command or ParseError, complete framing events, and parsed
messages (or NotMbox) whose offsets stay inside the buffer.
"""

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from imap.command import Command, ParseError
from imap.framing import CommandReady, Framer, LineTooLong, LiteralAnnounced, Rejected
from imap.parser import parse_command
from mailstore import mboxformat as fmt

SETTINGS = settings(max_examples=400, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow])

VALID_COMMANDS = [
    b"a1 FETCH 1:* (UID FLAGS BODY.PEEK[HEADER.FIELDS (FROM TO)]<0.100>)",
    b"a2 SEARCH CHARSET UTF-8 OR (FROM \"x\" SINCE 1-Feb-2020) NOT SUBJECT {3}\r\nabc",
    b"a3 STORE 2:4,7 +FLAGS.SILENT (\\Seen $Work)",
    b"a4 APPEND INBOX (\\Flagged) \" 1-Jan-2024 10:00:00 +0100\" {5}\r\nhello",
    b"a5 UID SORT (REVERSE DATE SUBJECT) UTF-8 ALL",
    b"a6 LIST \"\" \"%/*\"",
    b"a7 LOGIN \"us\\\"er\" pass",
    b"a8 UID COPY 1:5 \"Sent Items\"",
]

# Bytes that matter to the grammar, so random input hits its branches.
GRAMMAR_BYTES = st.sampled_from(list(b' ()[]<>{}"\\*%:,.+-~\r\n0123456789aAzZ') + [0, 0x80, 0xff])


@st.composite
def mutated_command(draw):
    """A valid command with a few bytes replaced, inserted or deleted."""
    data = bytearray(draw(st.sampled_from(VALID_COMMANDS)))
    for _ in range(draw(st.integers(1, 4))):
        position = draw(st.integers(0, len(data)))
        action = draw(st.sampled_from(["replace", "insert", "delete"]))
        byte = draw(GRAMMAR_BYTES)
        if action == "insert" or position == len(data):
            data.insert(position, byte)
        elif action == "replace":
            data[position] = byte
        else:
            del data[position]
    return bytes(data)


def parse_outcome(data):
    try:
        return parse_command(data)
    except ParseError as error:
        assert isinstance(error.text, str) and error.text
        return error


@SETTINGS
@given(st.binary(max_size=300))
def test_parser_survives_random_bytes(data):
    """Random bytes give a Command or ParseError, never another exception."""
    assert isinstance(parse_outcome(data), (Command, ParseError))


@SETTINGS
@given(mutated_command())
def test_parser_survives_mutated_commands(data):
    """Valid commands with random edits give a Command or ParseError, never another exception."""
    assert isinstance(parse_outcome(data), (Command, ParseError))


@SETTINGS
@given(st.lists(st.binary(max_size=60), max_size=20), st.booleans())
def test_framer_survives_random_chunks(chunks, accept):
    """Random input in random chunks only ever yields framing events, within the line limit."""
    framer = Framer(200, 100)
    for chunk in chunks:
        framer.feed(chunk)
        while True:
            event = framer.next_event()
            if event is None:
                break
            assert isinstance(event, (CommandReady, LiteralAnnounced, LineTooLong, Rejected))
            if isinstance(event, LiteralAnnounced):
                if accept and event.size <= 100:
                    framer.accept_literal()
                else:
                    framer.reject_literal()
            elif isinstance(event, CommandReady):
                assert len(event.data) <= 200 * 20 + 100 * 20


MBOX_PIECES = st.sampled_from([
    b"From a@b Wed Dec  2 05:53:22 1992\n", b"From x\n", b">From y\n", b"\n", b"\r\n",
    b"Status: RO\n", b"X-Status: F\n", b"X-UID: 7\n", b"X-IMAPbase: 1 9 kw\n",
    b"X-IMAP: 0000000001 0000000009\n", b"Content-Length: 5\n", b"Content-Length: 99999\n",
    b"Subject: s\n", b"body line\n", b"\x00\xff", b" continued\n", b"X-Keywords: a b\n",
])


@SETTINGS
@given(st.lists(MBOX_PIECES, max_size=40))
def test_mbox_scan_survives_random_files(pieces):
    """Any file either is refused as not an mbox or parses into in-bounds, ordered messages."""
    data = b"".join(pieces)
    try:
        messages = fmt.scan(data)
    except fmt.NotMbox:
        return
    previous_end = 0
    for message in messages:
        assert previous_end <= message.start <= message.header <= message.body <= len(data)
        assert message.body <= message.end <= len(data) or message.end == message.body
        for start, end in message.hidden:
            assert message.header <= start < end <= message.body
        fmt.read_meta(data, message)
        assert fmt.compute_size(data, message) >= 0
        previous_end = message.end
