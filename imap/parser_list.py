"""The LIST command's grammar with its extensions, sans I/O.

RFC 5258 §6 (LIST-EXTENDED) adds selection options before the reference,
several patterns in parentheses, and return options after them; RFC 5819
adds the STATUS return option and RFC 6154 §6 the SPECIAL-USE options:

    list = "LIST" [SP list-select-opts] SP mailbox SP mbox-or-pat
           [SP list-return-opts]

LIST without any of these is the RFC 3501 command and keeps its meaning,
including `LIST "" ""` asking for the hierarchy delimiter.
"""

from imap import parser

# RFC 5258 §3.1 and RFC 6154 §6. RECURSIVEMATCH only modifies a base option
# (SUBSCRIBED); REMOTE and SPECIAL-USE stand on their own.
SELECTION_OPTIONS = frozenset(("SUBSCRIBED", "REMOTE", "RECURSIVEMATCH", "SPECIAL-USE"))
BASE_SELECTION_OPTIONS = frozenset(("SUBSCRIBED",))
# RFC 5258 §3.2, RFC 5819 §2, RFC 6154 §6.
RETURN_OPTIONS = frozenset(("SUBSCRIBED", "CHILDREN", "STATUS", "SPECIAL-USE"))
# Each pattern is matched against every mailbox name, so their number bounds
# the work of one LIST; real clients send a handful (RFC 5258 §5 uses three).
MAX_PATTERNS = 100


class ListOptions:
    """What an extended LIST asks for beyond RFC 3501.

    `selection` and `returns` are frozensets of upper-case option names;
    `status_items` the STATUS return option's items in order (RFC 5819);
    `extended` is True when any extended syntax was used, even `()`.
    """

    __slots__ = ("selection", "returns", "status_items", "extended")

    def __init__(self, selection=frozenset(), returns=frozenset(), status_items=(),
                 extended=False):
        self.selection, self.returns = frozenset(selection), frozenset(returns)
        self.status_items, self.extended = tuple(status_items), extended

    def returns_subscribed(self):
        """RFC 5258 §3.1: the SUBSCRIBED selection option implies the return option."""
        return "SUBSCRIBED" in self.selection | self.returns

    def returns_special_use(self):
        """RFC 6154 §6: the SPECIAL-USE selection option implies the return option."""
        return "SPECIAL-USE" in self.selection | self.returns

    def _key(self):
        return self.selection, self.returns, self.status_items, self.extended

    def __eq__(self, other):
        return isinstance(other, ListOptions) and self._key() == other._key()

    def __repr__(self):
        return "ListOptions(%r, %r, %r, extended=%r)" % (
            sorted(self.selection), sorted(self.returns), self.status_items, self.extended)


BASIC = ListOptions()


def list_arguments(cursor):
    """[SP list-select-opts] SP mailbox SP mbox-or-pat [SP list-return-opts].

    Returns (reference, patterns, ListOptions); the reference is read as a
    list-mailbox, as for RFC 3501 LIST (clients put wildcards in it too).
    """
    cursor.space("Missing reference name")
    selection, extended = frozenset(), False
    if cursor.peek() == b"(":
        selection, extended = list_select_opts(cursor), True
        cursor.space("Missing reference name")
    reference = parser.list_mailbox(cursor, "Missing reference name")
    cursor.space("Missing mailbox pattern")
    if cursor.peek() == b"(":
        patterns, extended = mailbox_patterns(cursor), True
    else:
        patterns = (parser.list_mailbox(cursor, "Missing mailbox pattern"),)
    returns, status_items = frozenset(), ()
    if cursor.data[cursor.pos:cursor.pos + 8].upper() == b" RETURN ":
        cursor.pos += 8
        returns, status_items = list_return_opts(cursor)
        extended = True
    return reference, patterns, ListOptions(selection, returns, status_items, extended)


def list_select_opts(cursor):
    """ "(" [option *(SP option)] ")"; unknown options are BAD (RFC 5258 §3)."""
    options = _option_names(cursor, SELECTION_OPTIONS, "selection")
    # RFC 5258 §3.1: RECURSIVEMATCH alone (or only with REMOTE) is an error.
    if "RECURSIVEMATCH" in options and not options & BASE_SELECTION_OPTIONS:
        raise cursor.fail("RECURSIVEMATCH needs the SUBSCRIBED selection option")
    return options


def _option_names(cursor, known, kind):
    """A parenthesised, possibly empty list of option names from `known`, as a frozenset."""
    invalid = "Invalid %s options" % kind
    cursor.expect(b"(", invalid)
    names = set()
    while not cursor.skip(b")"):
        if names:
            cursor.space(invalid)
        name = cursor.word()
        if name not in known:
            raise cursor.fail("Unknown %s option" % kind if name else invalid)
        names.add(name)  # RFC 5258 §3: an option given twice counts once
    return frozenset(names)


def mailbox_patterns(cursor):
    """patterns = "(" list-mailbox *(SP list-mailbox) ")" """
    def pattern(c):
        return parser.list_mailbox(c, "Invalid mailbox patterns")

    patterns = parser.parenthesised(cursor, pattern, "Invalid mailbox patterns")
    if len(patterns) > MAX_PATTERNS:
        raise cursor.fail("Too many mailbox patterns")
    return patterns


def list_return_opts(cursor):
    """ "(" [return-option *(SP return-option)] ")" after "RETURN" SP.

    return-option includes "STATUS" SP "(" status-att *(SP status-att) ")"
    (RFC 5819); a second STATUS adds its items to the first's.
    """
    invalid = "Invalid RETURN options"
    cursor.expect(b"(", invalid)
    names, items = set(), []
    while not cursor.skip(b")"):
        if names:
            cursor.space(invalid)
        name = cursor.word()
        if name not in RETURN_OPTIONS:
            raise cursor.fail("Unknown RETURN option" if name else invalid)
        names.add(name)
        if name == "STATUS":
            cursor.space("Missing STATUS items")
            asked = parser.parenthesised(cursor, parser.status_att, "Invalid STATUS items")
            items += [item for item in asked if item not in items]
    return frozenset(names), tuple(items)
