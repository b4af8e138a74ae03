"""LIST and LSUB patterns (RFC 3501 §6.3.8): the reference and mailbox name combined.

`*` matches any bytes, the hierarchy delimiter included; `%` matches any
bytes except the delimiter.  The combined pattern is compiled once into a
bit-parallel automaton (one bit per pattern position, Python ints as bit
sets) rather than a regular expression: a backtracking regex needs time
polynomial in the name with the number of wildcards as the exponent, so
`*a*a*a*a*a*b` against a long name could hang the process, while the
automaton reads each byte of a name once whatever the pattern.  The same
automaton tells whether any name below a directory can still match, which
prunes the folder walk.
"""

# Longest combined pattern accepted, after runs of wildcards are collapsed.
# It is far above any real mailbox name (UW's NETMAXMBX is 256 bytes) and
# bounds the automaton's size; the command line limit bounds the raw text.
MAX_PATTERN = 4096

STAR, PERCENT = b"*"[0], b"%"[0]

# A pattern starting with one of these ignores the reference, as in RFC 3501's
# examples (`~smith/Mail/` + `/usr/doc/foo` is `/usr/doc/foo`) and as UW does.
_BREAKOUTS = (b"~", b"#")


def combine(reference, pattern, delimiter=b"/"):
    """The canonical pattern for a LIST reference and mailbox name.

    The reference is prefixed as given: with no delimiter in between, as UW
    does, so `foo` + `bar` is `foobar` (RFC 3501 leaves this to the server
    and tells clients to end a reference with the delimiter).
    """
    if pattern.startswith(delimiter) or pattern.startswith(_BREAKOUTS):
        return pattern
    return reference + pattern


def collapse_wildcards(pattern):
    """Replace each run of wildcards by one: `*` if the run has a `*`, else `%`.

    `%*`, `*%` and `**` match exactly what `*` matches, `%%` what `%` does;
    afterwards no two wildcards are adjacent, which the automaton relies on.
    """
    out = bytearray()
    for byte in pattern:
        if byte in (STAR, PERCENT) and out and out[-1] in (STAR, PERCENT):
            if byte == STAR:
                out[-1] = STAR
            continue
        out.append(byte)
    return bytes(out)


class _Automaton:
    """Shift-And matching of one collapsed pattern.

    Bit i of a state means "the first i pattern tokens have matched the
    bytes read so far"; bit len(pattern) means the whole pattern has.
    """

    def __init__(self, pattern, delimiter):
        self.delimiter = delimiter[0]
        self.literal = {}
        self.star = self.percent = 0
        for position, byte in enumerate(pattern):
            bit = 1 << position
            if byte == STAR:
                self.star |= bit
            elif byte == PERCENT:
                self.percent |= bit
            else:
                self.literal[byte] = self.literal.get(byte, 0) | bit
        self.wild = self.star | self.percent
        self.accept = 1 << len(pattern)
        self.literals = len(pattern) - self.wild.bit_count()
        self.start = self._skip_empty(1)

    def _skip_empty(self, state):
        """A wildcard may match nothing; one shift suffices as none are adjacent."""
        return state | ((state & self.wild) << 1)

    def run(self, data, state=None):
        """The state after reading data (0 once no match is possible)."""
        state = self.start if state is None else state
        literal, star, wild, delimiter = self.literal, self.star, self.wild, self.delimiter
        for byte in data:
            stay = state & (star if byte == delimiter else wild)
            state = ((state & literal.get(byte, 0)) << 1) | stay
            state |= (state & wild) << 1
            if not state:
                return 0
        return state

    def matches(self, data):
        """True when the whole of data matches the pattern."""
        if len(data) < self.literals:
            return False
        return bool(self.run(data) & self.accept)


class ListPattern:
    """A LIST/LSUB pattern: `matches(name)`, `may_descend(prefix)`, `literal_prefix()`.

    Names are bytes as the client sends them (modified UTF-7).  `INBOX` is
    matched case-insensitively (RFC 3501 §5.1: the name INBOX is
    case-insensitive; UW matches `inbox`, `In%` etc. against it).  Raises
    ValueError for a pattern longer than MAX_PATTERN after collapsing.
    """

    def __init__(self, reference, pattern, delimiter=b"/"):
        self.delimiter = delimiter
        self.combined = combine(reference, pattern, delimiter)
        collapsed = collapse_wildcards(self.combined)
        if len(collapsed) > MAX_PATTERN:
            raise ValueError("LIST pattern longer than %d bytes" % MAX_PATTERN)
        self._collapsed = collapsed
        self._automaton = _Automaton(collapsed, delimiter)
        self._inbox = _Automaton(collapsed.upper(), delimiter).matches(b"INBOX")

    def matches(self, name):
        """True when the mailbox name matches; `INBOX` in any case."""
        if name.upper() == b"INBOX":
            return self._inbox
        return self._automaton.matches(name)

    def may_descend(self, prefix):
        """True when some name below `prefix` + delimiter could match.

        False means a directory walk can skip the directory `prefix`.
        """
        return bool(self._automaton.run(prefix + self.delimiter))

    def literal_prefix(self):
        """The hierarchy levels before the first wildcard, without the final delimiter.

        Every matching name other than INBOX starts with this prefix plus
        the delimiter (unless it is empty), so a walk can start there:
        `a/b/c%` gives `a/b`, `a/%/c` gives `a`, `*` and `foo` give ``.
        """
        wildcard = len(self._collapsed)
        for marker in (b"*", b"%"):
            found = self._collapsed.find(marker)
            if 0 <= found < wildcard:
                wildcard = found
        cut = self._collapsed.rfind(self.delimiter, 0, wildcard)
        return self._collapsed[:cut] if cut > 0 else b""


class AnyPattern:
    """Several ListPatterns as one, for RFC 5258's pattern lists: a name matches if any does.

    It offers what a folder walk asks of a ListPattern, so one walk serves
    all the patterns and lists each name once (RFC 5258 §3).
    """

    def __init__(self, patterns, delimiter=b"/"):
        self.patterns = tuple(patterns)
        self.delimiter = delimiter

    def matches(self, name):
        return any(pattern.matches(name) for pattern in self.patterns)

    def may_descend(self, prefix):
        return any(pattern.may_descend(prefix) for pattern in self.patterns)

    def literal_prefix(self):
        """The hierarchy levels every pattern's literal prefix starts with."""
        prefixes = [pattern.literal_prefix().split(self.delimiter) for pattern in self.patterns]
        common = []
        for levels in zip(*prefixes):
            if any(level != levels[0] for level in levels) or not levels[0]:
                break
            common.append(levels[0])
        return self.delimiter.join(common)
