"""SEARCHRES, ESORT, CONTEXT and PARTIAL: their grammar, ESEARCH results and update contexts."""

import contextlib
from datetime import datetime, timedelta, timezone

import pytest

from imap import esearch
from imap.command import SAVED_RESULT, Command, ParseError, ReturnOptions
from imap.contexts import UpdateContexts, depends_on_position
from imap.parser import parse_command
from imap.sort import order_key, sort

START = datetime(2024, 1, 1, tzinfo=timezone.utc)


# --- grammar ------------------------------------------------------------------------

def returns(command):
    """The RETURN options of a parsed SEARCH or SORT, with the PARTIAL range."""
    options = command.args[-1]
    return tuple(options), options.partial


GRAMMAR = [
    (b"a SEARCH RETURN (SAVE) ALL", (("SAVE",), None)),
    (b"a SEARCH RETURN (save min Max) $", (("SAVE", "MIN", "MAX"), None)),
    (b"a SEARCH RETURN (CONTEXT UPDATE COUNT) DELETED", (("CONTEXT", "UPDATE", "COUNT"), None)),
    (b"a SEARCH RETURN (PARTIAL 1:100) ALL", (("PARTIAL",), (1, 100))),
    (b"a SEARCH RETURN (partial 500:400 COUNT) ALL", (("PARTIAL", "COUNT"), (500, 400))),
    (b"a SEARCH RETURN (PARTIAL -1:-50) ALL", (("PARTIAL",), (-1, -50))),
    (b"a SEARCH RETURN (MIN MIN) ALL", (("MIN",), None)),
    (b"a SORT RETURN () (DATE) UTF-8 ALL", (("ALL",), None)),
    (b"a UID SORT RETURN (UPDATE PARTIAL 1:10) (REVERSE SUBJECT) UTF-8 ALL",
     (("UPDATE", "PARTIAL"), (1, 10))),
]


@pytest.mark.parametrize("data, expected", GRAMMAR)
def test_return_options(data, expected):
    """RETURN options parse in order, each once, with the PARTIAL range as written."""
    assert returns(parse_command(data)) == expected


def test_sort_without_return_has_none():
    """A plain SORT carries None for its RETURN options (the RFC 5256 `* SORT` answer)."""
    assert parse_command(b"a SORT (DATE) UTF-8 ALL").args[3] is None


SAVED_PLACES = [
    (b"a FETCH $ FLAGS", 0),
    (b"a UID FETCH $ FLAGS", 0),
    (b"a STORE $ +FLAGS \\Seen", 0),
    (b"a UID STORE $ +FLAGS \\Seen", 0),
    (b"a COPY $ Trash", 0),
    (b"a UID MOVE $ Trash", 0),
    (b"a UID EXPUNGE $", 0),
]


@pytest.mark.parametrize("data, index", SAVED_PLACES)
def test_dollar_is_a_sequence_set_everywhere(data, index):
    """`$` stands for a whole sequence set in every command that takes one (RFC 5182 §2.1)."""
    assert parse_command(data).args[index] == SAVED_RESULT


def test_dollar_in_search_keys():
    """`$` is a search key by number and after UID, also inside parentheses and OR."""
    assert parse_command(b"a SEARCH $").args[1] == ("SEQ", SAVED_RESULT)
    assert parse_command(b"a UID SEARCH UID $ SEEN").args[1] == (
        "AND", (("UID", SAVED_RESULT), ("SEEN",)))
    assert parse_command(b"a SEARCH OR ($) DRAFT").args[1] == (
        "OR", ("SEQ", SAVED_RESULT), ("DRAFT",))


def test_cancelupdate_takes_quoted_tags():
    """CANCELUPDATE takes one or more quoted tags (RFC 5267 §4.3.5)."""
    assert parse_command(b'a CANCELUPDATE "b1" "c 2"') == Command(
        "a", "CANCELUPDATE", ((("b1", "c 2")),))


ERRORS = [
    (b"a FETCH $1 UID", "Invalid sequence set"),
    (b"a FETCH $,1 UID", "Invalid sequence set"),
    (b"a FETCH 1:$ UID", "Invalid sequence set"),
    (b"a SEARCH $$", "Invalid sequence set"),
    (b"a SEARCH RETURN (PARTIAL 1:5 ALL) ALL", "PARTIAL and ALL cannot be combined"),
    (b"a SEARCH RETURN (ALL PARTIAL 1:5) ALL", "PARTIAL and ALL cannot be combined"),
    (b"a SEARCH RETURN (PARTIAL 1:5 PARTIAL 6:9) ALL", "Only one PARTIAL is allowed"),
    (b"a SEARCH RETURN (PARTIAL) ALL", "Missing PARTIAL range"),
    (b"a SEARCH RETURN (PARTIAL 0:5) ALL", "Invalid PARTIAL range"),
    (b"a SEARCH RETURN (PARTIAL 5) ALL", "Invalid PARTIAL range"),
    (b"a SEARCH RETURN (PARTIAL 1:*) ALL", "Invalid PARTIAL range"),
    (b"a SEARCH RETURN (PARTIAL -1:5) ALL", "Invalid PARTIAL range"),
    (b"a SEARCH RETURN (PARTIAL 1:-5) ALL", "Invalid PARTIAL range"),
    (b"a SEARCH RETURN (NEWEST) ALL", "Unknown RETURN option"),
    (b"a SORT RETURN (SAVE) UTF-8 ALL", "Invalid sort criteria"),
    (b"a SORT RETURN (FOO) (DATE) UTF-8 ALL", "Unknown RETURN option"),
    (b"a CANCELUPDATE", "Missing quoted tag"),
    (b"a CANCELUPDATE b1", "Missing quoted tag"),
    (b'a CANCELUPDATE "b1"  "b2"', "Missing quoted tag"),
]


@pytest.mark.parametrize("data, text", ERRORS)
def test_errors(data, text):
    """Malformed `$`, RETURN options and CANCELUPDATE are BAD with a precise reason."""
    with pytest.raises(ParseError) as caught:
        parse_command(data)
    assert caught.value.text == text


def test_grammar_byte_by_byte_prefixes_never_crash():
    """Every prefix of the new grammar is parsed or refused with ParseError, nothing else."""
    data = b'a UID SORT RETURN (SAVE MIN PARTIAL -1:-9 UPDATE) (REVERSE DISPLAYFROM) UTF-8 UID $'
    for end in range(len(data)):
        try:
            parse_command(data[:end])
        except ParseError:
            pass


# --- ESEARCH results -------------------------------------------------------------------

def options(*names, partial=None):
    return ReturnOptions(names, partial)


def test_sorted_all_keeps_order_and_uses_only_rising_ranges():
    """SORT results list numbers in sort order; ranges only where they run up (RFC 5267 §3.2)."""
    assert esearch.number_set([7, 8, 9, 3, 2, 1, 12], ordered=True) == b"7:9,3,2,1,12"
    assert esearch.number_set([7, 8, 9, 3, 2, 1, 12], ordered=False) == b"1:3,7:9,12"


@pytest.mark.parametrize("window, expected", [
    ((1, 3), [10, 20, 30]), ((3, 1), [10, 20, 30]), ((4, 9), [40, 50]), ((6, 9), []),
    ((-1, -2), [40, 50]), ((-2, -1), [40, 50]), ((-5, -9), [10]), ((-6, -9), []),
    ((-1, -1), [50]),
])
def test_partial_slice(window, expected):
    """PARTIAL picks 1-based positions, either way round, -1 being the last (RFC 9394)."""
    assert esearch.partial_slice(window, [10, 20, 30, 40, 50]) == expected


def test_response_items_follow_the_options():
    """The ESEARCH items come in the order asked, with UID after the correlator."""
    line = esearch.response("t1", True, options("COUNT", "PARTIAL", "MIN", partial=(2, 3)),
                            [5, 6, 9], ordered=False)
    assert line == b'ESEARCH (TAG "t1") UID COUNT 3 PARTIAL (2:3 6,9) MIN 5'


def test_empty_results_keep_count_and_partial():
    """No results: COUNT 0 and PARTIAL with NIL stay, MIN, MAX and ALL go (RFC 4731 §3.1)."""
    line = esearch.response("t", False, options("MIN", "COUNT", "PARTIAL", partial=(-1, -5)),
                            [], ordered=True)
    assert line == b'ESEARCH (TAG "t") COUNT 0 PARTIAL (-1:-5 NIL)'


@pytest.mark.parametrize("names, partial, expected", [
    (("SAVE",), None, [4, 2, 8, 6]),
    (("SAVE", "MIN"), None, [4]),
    (("SAVE", "MAX"), None, [6]),
    (("MAX", "SAVE", "MIN"), None, [4, 6]),
    (("SAVE", "MIN", "COUNT"), None, [4, 2, 8, 6]),
    (("SAVE", "MAX", "ALL"), None, [4, 2, 8, 6]),
    (("SAVE", "PARTIAL"), (2, 3), [2, 8]),
])
def test_what_save_keeps(names, partial, expected):
    """SAVE with MIN/MAX alone keeps only those; with ALL or COUNT everything (RFC 5182 §2.1)."""
    assert esearch.saved(options(*names, partial=partial), [4, 2, 8, 6]) == expected


def test_save_alone_asks_for_no_response():
    """RETURN (SAVE) and (SAVE CONTEXT) send no ESEARCH; any other option does."""
    assert not esearch.wants_response(options("SAVE"))
    assert not esearch.wants_response(options("SAVE", "CONTEXT"))
    assert esearch.wants_response(options("SAVE", "UPDATE"))


# --- order keys and update contexts ----------------------------------------------------

class Message:
    """What search and sort read of a message, in memory."""

    def __init__(self, uid, seq, subject, days, flags=()):
        self.uid, self.seq, self.size = uid, seq, 100 + uid
        self.flags = frozenset(flags)
        self.internal_date = START + timedelta(days=days)
        self._header = ("Subject: %s\r\n\r\n" % subject).encode()

    def header(self):
        return self._header

    def message(self):
        return self._header


CRITERIA = [
    ((False, "SUBJECT"),), ((True, "SUBJECT"),), ((True, "SUBJECT"), (False, "ARRIVAL")),
    ((False, "SIZE"),), ((True, "ARRIVAL"), (True, "SUBJECT")),
]


@pytest.mark.parametrize("criteria", CRITERIA)
def test_order_key_orders_as_sort_does(criteria):
    """order_key ranks messages exactly as sort(), ties included, REVERSE or not."""
    messages = [Message(uid, seq, subject, days) for seq, (uid, subject, days) in enumerate(
        [(3, "b", 2), (5, "a", 1), (6, "b", 1), (9, "c", 2), (11, "a", 2), (12, "b", 2)], 1)]
    assert ([m.uid for m in sorted(messages, key=lambda m: order_key(criteria, m))]
            == [m.uid for m in sort(criteria, messages)])


@pytest.mark.parametrize("key, expected", [
    (("SEEN",), False), (("UID", ((3, 9),)), False), (("UID", ((3, None),)), True),
    (("UID", SAVED_RESULT), True), (("SEQ", ((1, 3),)), True),
    (("AND", (("SEEN",), ("NOT", ("SEQ", ((1, 1),))))), True),
    (("OR", ("SEEN",), ("DELETED",)), False),
])
def test_depends_on_position(key, expected):
    """Keys on message numbers, "*" or `$` are searched again over the whole mailbox."""
    assert depends_on_position(key) == expected


class FakeView:
    """The parts of SelectedMailbox that update contexts use, with messages in memory."""

    def __init__(self, messages):
        self.messages = {m.uid: m for m in messages}
        self.uids = sorted(self.messages)
        self.sent = []
        self.session = self

    def send_untagged(self, line):
        self.sent.append(line.decode())

    def number(self, uid):
        return self.uids.index(uid) + 1 if uid in self.uids else None

    def view_of(self, number, uid):
        message = self.messages.get(uid)
        if message is not None:
            message.seq = number
        return message

    @property
    def mailbox(self):
        return self

    @contextlib.contextmanager
    def reading(self):
        yield

    def search_context(self, charset):
        from imap.search import SearchContext

        return SearchContext(len(self.uids), self.uids[-1] if self.uids else 0, charset=charset)


def test_sort_context_positions_for_runs():
    """Removals go last run first at old positions; additions first run first at new ones."""
    view = FakeView([Message(uid, uid, subject, 0, ["\\Seen"]) for uid, subject in
                     [(1, "a"), (2, "c"), (3, "e"), (4, "g"), (5, "i")]])
    contexts = UpdateContexts(view)
    contexts.add("s", True, ((False, "SUBJECT"),), "US-ASCII", ("SEEN",),
                 list(view.messages.values()))
    for uid in (2, 4):
        view.messages[uid].flags = frozenset()
    contexts.touched((2, 4))
    contexts.refresh()
    assert view.sent == ['ESEARCH (TAG "s") UID REMOVEFROM (4 4 2 2)']
    view.sent.clear()
    for uid, subject in [(6, "b"), (7, "f"), (8, "z")]:
        view.messages[uid] = Message(uid, uid, subject, 0, ["\\Seen"])
        view.uids.append(uid)
    contexts.refresh()
    assert view.sent == ['ESEARCH (TAG "s") UID ADDTO (2 6 4 7 6 8)']
    assert [key[-1] for key in contexts.contexts["s"].keys] == [1, 6, 3, 7, 5, 8]


def test_search_context_by_number_and_expunge():
    """A SEARCH context by number: position 0, numbers valid when each response is sent."""
    view = FakeView([Message(uid, uid, "x", 0, ["\\Deleted"] if uid % 2 else [])
                     for uid in range(1, 7)])
    contexts = UpdateContexts(view)
    contexts.add("d", False, None, "US-ASCII", ("DELETED",),
                 [m for m in view.messages.values() if "\\Deleted" in m.flags])
    contexts.expunging({1, 2})
    assert view.sent == ['ESEARCH (TAG "d") REMOVEFROM (0 1)']
    view.uids = [3, 4, 5, 6]
    view.messages[6].flags = frozenset(["\\Deleted"])
    contexts.touched((6,))
    contexts.refresh()
    assert view.sent[1:] == ['ESEARCH (TAG "d") ADDTO (0 4)']


def test_nothing_changed_sends_nothing():
    """A refresh with no new, changed or expunged messages is silent."""
    view = FakeView([Message(1, 1, "x", 0)])
    contexts = UpdateContexts(view)
    contexts.add("a", True, None, "US-ASCII", ("SEQ", ((1, None),)), [view.messages[1]])
    contexts.refresh()
    assert view.sent == []
