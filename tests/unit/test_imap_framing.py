"""imap.framing: lines, literals, LITERAL+, refusals, over-long lines; whole and byte by byte."""

import pytest

from imap.framing import (CommandReady, Framer, LineTooLong, LiteralAnnounced, Rejected,
                          literal_marker)

MAX_LINE = 64
MAX_LITERAL = 100


def run(data, chunk=None, decide=None, framer=None):
    """Feed data (in chunks of `chunk` bytes, or whole) and return every event in order.

    decide(event) -> bool says whether to accept an announced literal (default: accept
    those up to MAX_LITERAL octets).
    """
    framer = framer or Framer(MAX_LINE, MAX_LITERAL)
    decide = decide or (lambda event: event.size <= MAX_LITERAL)
    chunk = chunk or max(len(data), 1)
    events = []
    for start in range(0, len(data), chunk):
        framer.feed(data[start:start + chunk])
        while True:
            event = framer.next_event()
            if event is None:
                break
            events.append(event)
            if isinstance(event, LiteralAnnounced):
                framer.accept_literal() if decide(event) else framer.reject_literal()
    return events


def both_ways(data, **options):
    """Events for data fed whole, after checking that byte-by-byte feeding gives the same."""
    whole = run(data, **options)
    assert run(data, chunk=1, **options) == whole
    return whole


SIMPLE_FRAMES = [
    pytest.param(b"a NOOP\r\n", [CommandReady(b"a NOOP")], id="crlf"),
    pytest.param(b"a NOOP\n", [CommandReady(b"a NOOP")], id="bare-lf"),
    pytest.param(b"a NOOP\r\nb LOGOUT\nc CHECK\r\n",
                 [CommandReady(b"a NOOP"), CommandReady(b"b LOGOUT"), CommandReady(b"c CHECK")],
                 id="pipelined"),
    pytest.param(b"\r\n", [CommandReady(b"")], id="empty-line"),
    pytest.param(b"a NOOP", [], id="unfinished-line"),
    pytest.param(b"a X\rY\r\n", [CommandReady(b"a X\rY")], id="inner-cr-kept"),
    pytest.param(b"a LOGIN {3}x\r\n", [CommandReady(b"a LOGIN {3}x")], id="brace-not-at-end"),
    pytest.param(b"a LOGIN {x}\r\n", [CommandReady(b"a LOGIN {x}")], id="brace-not-a-number"),
    pytest.param(b"a X {123456789012345678901}\r\n",
                 [CommandReady(b"a X {123456789012345678901}")], id="count-too-long-for-marker"),
]


@pytest.mark.parametrize("data, expected", SIMPLE_FRAMES)
def test_lines_become_commands(data, expected):
    """Lines without literals are delivered as commands without their line end."""
    assert both_ways(data) == expected


MARKERS = [
    (b"a {5}", (2, 5, True)),
    (b"a {5+}", (2, 5, False)),
    (b"a ~{0}", (3, 0, True)),
    (b"{12}", (0, 12, True)),
    (b"a {}", None),
    (b"a {+}", None),
    (b"a {5", None),
    (b"a 5}", None),
    (b"a {-5}", None),
    (b"a {5 }", None),
]


@pytest.mark.parametrize("line, expected", MARKERS)
def test_literal_marker(line, expected):
    """Only `{digits}` or `{digits+}` at the very end of a line announces a literal."""
    assert literal_marker(line) == expected


def test_synchronizing_and_non_synchronizing_literals_are_embedded():
    """Accepted literals join the command as `{n}` CRLF octets, `{n+}` and LF normalised."""
    data = b"a LOGIN {3}\r\nfoo {3+}\nbar\r\n"
    assert both_ways(data) == [
        LiteralAnnounced(3, True),
        LiteralAnnounced(3, False),
        CommandReady(b"a LOGIN {3}\r\nfoo {3}\r\nbar"),
    ]


def test_literal_octets_are_not_framed():
    """Line ends and literal markers inside literal octets are data, not framing."""
    data = b"a APPEND box {14}\r\nx\r\n{5}\r\nb NO\r\n\r\nb NOOP\r\n"
    assert both_ways(data)[1:] == [CommandReady(b"a APPEND box {14}\r\nx\r\n{5}\r\nb NO\r\n"),
                                   CommandReady(b"b NOOP")]


def test_empty_literal():
    """A zero-length literal is announced and embedded like any other."""
    assert both_ways(b"a LOGIN {0}\r\n {0+}\r\n\r\n")[-1] == CommandReady(
        b"a LOGIN {0}\r\n {0}\r\n")


def test_literal8_marker_keeps_its_tilde():
    """`~{n}` (RFC 3516) is framed as a literal and the tilde stays for the parser."""
    events = both_ways(b"a APPEND x ~{2}\r\n\x00\x01\r\n")
    assert events[-1] == CommandReady(b"a APPEND x ~{2}\r\n\x00\x01")


def test_rejected_synchronizing_literal_ends_the_command():
    """After rejecting `{n}` the client sent nothing more of it: the next line is a new command."""
    events = both_ways(b"a APPEND box {500}\r\nb NOOP\r\n")
    assert events == [LiteralAnnounced(500, True), Rejected(), CommandReady(b"b NOOP")]


def test_rejected_non_synchronizing_literal_is_swallowed_with_the_rest_of_its_command():
    """After rejecting `{n+}` its octets, the rest of the line and further LITERAL+ are skipped."""
    literal = b"x" * 500
    data = (b"a APPEND box {500+}\r\n" + literal + b" (\\Seen) {4+}\r\nwxyz more\r\n"
            b"b NOOP\r\n")
    assert both_ways(data) == [LiteralAnnounced(500, False), Rejected(), CommandReady(b"b NOOP")]


def test_rejected_non_synchronizing_literal_stops_at_a_synchronizing_one():
    """A `{n}` after a refused `{n+}` awaits a "+" that never comes, so the command ends there."""
    data = b"a APPEND box {3+}\r\nabc {3}\r\nb NOOP\r\n"
    assert both_ways(data, decide=lambda event: False) == [
        LiteralAnnounced(3, False), Rejected(), CommandReady(b"b NOOP")]


def test_second_literal_can_be_rejected():
    """Refusing a later literal of a command ends that whole command."""
    events = both_ways(b"a LOGIN {3}\r\nfoo {4}\r\nb NOOP\r\n",
                       decide=lambda event: event.size == 3)
    assert events[-2:] == [Rejected(), CommandReady(b"b NOOP")]


def test_partial_and_literal_count_describe_the_command_so_far():
    """While a literal awaits a decision, partial() and literal_count() describe its command."""
    framer = Framer(MAX_LINE, MAX_LITERAL)
    framer.feed(b"a APPEND box {1+}\r\nx {2}\r\n")
    assert framer.next_event() == LiteralAnnounced(1, False)
    assert (framer.partial(), framer.literal_count()) == (b"a APPEND box {1}\r\n", 0)
    framer.accept_literal()
    assert framer.next_event() == LiteralAnnounced(2, True)
    assert (framer.partial(), framer.literal_count()) == (b"a APPEND box {1}\r\nx {2}\r\n", 1)
    framer.reject_literal()
    assert framer.next_event() == Rejected()
    assert (framer.partial(), framer.literal_count()) == (b"", 0)


def test_max_literal_is_kept_for_the_session():
    """The framer keeps max_literal for the session to compare with; it never refuses by itself."""
    framer = Framer(MAX_LINE, 10)
    assert framer.max_literal == 10
    framer.feed(b"a LOGIN {11}\r\n")
    assert framer.next_event() == LiteralAnnounced(11, True)


LONG_LINES = [
    pytest.param(b"x" * MAX_LINE + b"\r\n", [CommandReady(b"x" * MAX_LINE)], id="at-limit-crlf"),
    pytest.param(b"x" * MAX_LINE + b"\n", [CommandReady(b"x" * MAX_LINE)], id="at-limit-lf"),
    pytest.param(b"x" * (MAX_LINE + 1) + b"\r\nb NOOP\r\n",
                 [LineTooLong(), CommandReady(b"b NOOP")], id="one-over"),
    pytest.param(b"a " + b"x" * 5000 + b"\nb NOOP\r\n",
                 [LineTooLong(), CommandReady(b"b NOOP")], id="far-over"),
    pytest.param(b"a " + b"x" * 100 + b" {3}\r\nb NOOP\r\n",
                 [LineTooLong(), CommandReady(b"b NOOP")],
                 id="over-with-synchronizing-literal"),
    pytest.param(b"a " + b"x" * 100 + b" {3+}\r\nabc\r\nb NOOP\r\n",
                 [LineTooLong(), CommandReady(b"b NOOP")],
                 id="over-with-literal-plus-swallowed"),
]


@pytest.mark.parametrize("data, expected", LONG_LINES)
def test_over_long_lines_are_discarded(data, expected):
    """A line over max_line is reported once, skipped to its end, and framing resumes."""
    assert both_ways(data) == expected


def test_over_long_continuation_line_loses_the_command():
    """An over-long line after a literal loses the whole command, and framing resumes after it."""
    data = b"a LOGIN {3}\r\nabc " + b"y" * 200 + b"\r\nb NOOP\r\n"
    assert both_ways(data)[1:] == [LineTooLong(), CommandReady(b"b NOOP")]


def test_unfinished_long_line_is_not_held():
    """Bytes of an over-long line without its end are dropped as they come (bounded memory)."""
    framer = Framer(MAX_LINE, MAX_LITERAL)
    for _ in range(1000):
        framer.feed(b"z" * 1000)
        assert framer.next_event() is None
        assert len(framer._buffer) <= MAX_LINE + 1  # private: memory is the behaviour here
    framer.feed(b"\r\na NOOP\r\n")
    assert [framer.next_event(), framer.next_event()] == [LineTooLong(), CommandReady(b"a NOOP")]


def test_announced_literal_is_not_read_before_acceptance():
    """Until accept_literal() the literal octets stay unread and next_event() refuses to go on."""
    framer = Framer(MAX_LINE, MAX_LITERAL)
    framer.feed(b"a LOGIN {3}\r\nabc\r\n")
    assert isinstance(framer.next_event(), LiteralAnnounced)
    assert framer.pending() is False
    with pytest.raises(RuntimeError):
        framer.next_event()
    framer.accept_literal()
    assert framer.next_event() == CommandReady(b"a LOGIN {3}\r\nabc")


def test_decisions_need_an_announced_literal():
    """accept_literal() and reject_literal() without a delivered announcement are errors."""
    framer = Framer(MAX_LINE, MAX_LITERAL)
    with pytest.raises(RuntimeError):
        framer.accept_literal()
    framer.feed(b"a LOGIN {3}\r\n")
    assert framer.pending()
    with pytest.raises(RuntimeError):
        framer.reject_literal()


PENDING = [
    pytest.param(b"", False, id="nothing"),
    pytest.param(b"a NOOP", False, id="partial-line"),
    pytest.param(b"a NOOP\r\n", True, id="whole-line"),
    pytest.param(b"a LOGIN {3}\r\n", True, id="announcement"),
    pytest.param(b"x" * (MAX_LINE + 10), False, id="long-line-unfinished"),
    pytest.param(b"x" * (MAX_LINE + 10) + b"\n", True, id="long-line-finished"),
]


@pytest.mark.parametrize("data, expected", PENDING)
def test_pending_says_whether_an_event_is_buffered(data, expected):
    """pending() is True exactly when next_event() would return an event without more input."""
    framer = Framer(MAX_LINE, MAX_LITERAL)
    framer.feed(data)
    assert framer.pending() is expected
    assert (framer.next_event() is not None) is expected


def test_pending_after_accepted_literal():
    """After acceptance, pending() waits for the literal octets and the rest of the command."""
    framer = Framer(MAX_LINE, MAX_LITERAL)
    framer.feed(b"a LOGIN {3}\r\nab")
    framer.next_event()
    framer.accept_literal()
    assert not framer.pending()
    framer.feed(b"c x")
    assert not framer.pending()
    framer.feed(b"\r\n")
    assert framer.pending()
    assert framer.next_event() == CommandReady(b"a LOGIN {3}\r\nabc x")


def test_reset_drops_buffered_input():
    """reset() forgets pipelined bytes and a command in progress (STARTTLS)."""
    framer = Framer(MAX_LINE, MAX_LITERAL)
    framer.feed(b"a STARTTLS\r\nb LOGIN {3}\r\nabc")
    assert framer.next_event() == CommandReady(b"a STARTTLS")
    assert framer.pending()
    framer.reset()
    assert framer.next_event() is None
    framer.feed(b"c NOOP\r\n")
    assert framer.next_event() == CommandReady(b"c NOOP")


def test_reset_in_the_middle_of_a_literal():
    """reset() during an accepted literal starts afresh with the next bytes."""
    framer = Framer(MAX_LINE, MAX_LITERAL)
    framer.feed(b"a LOGIN {30}\r\nabc")
    framer.next_event()
    framer.accept_literal()
    assert framer.next_event() is None
    framer.reset()
    framer.feed(b"b NOOP\r\n")
    assert framer.next_event() == CommandReady(b"b NOOP")


def test_take_unread_hands_back_what_follows_a_complete_command():
    """Bytes after a complete command (compressed input after COMPRESS) are handed back
    untouched and the framer is left empty."""
    framer = Framer(100, 100)
    framer.feed(b"a COMPRESS DEFLATE\r\n\x78\x9c\x00\r\nrest")
    assert framer.next_event() == CommandReady(b"a COMPRESS DEFLATE")
    assert framer.take_unread() == b"\x78\x9c\x00\r\nrest"
    assert framer.next_event() is None
    assert framer.take_unread() == b""


@pytest.mark.parametrize("chunk", [1, 7, None])
def test_a_literal_accepted_with_a_spool_is_written_there(tmp_path, chunk):
    """The octets go to the spool as they come; the command keeps its `{n}` CRLF and
    `spilled` maps the place the octets would have had to their FileText."""
    from imap.parser import parse_command
    from mailstore.text import Spool

    spool = Spool(str(tmp_path / "spool"), limit=0)
    framer = Framer(MAX_LINE, MAX_LITERAL)
    message = b"Subject: x\r\n\r\nline {9}\r\nb NOOP\r\n" * 5
    data = b"a APPEND box {3}\r\nabc {%d+}\r\n%s (\\Seen) {2}\r\nxy\r\n" % (len(message), message)
    chunk = chunk or len(data)
    events = []
    for start in range(0, len(data), chunk):
        framer.feed(data[start:start + chunk])
        for event in iter(framer.next_event, None):
            events.append(event)
            if isinstance(event, LiteralAnnounced):
                framer.accept_literal(spool if event.size > 50 else None)
    ready = events[-1]
    assert ready.data == b"a APPEND box {3}\r\nabc {%d}\r\n (\\Seen) {2}\r\nxy" % len(message)
    offset = len(b"a APPEND box {3}\r\nabc {%d}\r\n" % len(message))
    assert list(ready.spilled) == [offset]
    assert b"".join(ready.spilled[offset].chunks()) == message
    # The parser takes the spilled literal in its place.
    command = parse_command(ready.data, spilled=ready.spilled)
    assert [m.data for m in command.args[1]] == [b"abc", ready.spilled[offset], b"xy"]
    spool.close()
