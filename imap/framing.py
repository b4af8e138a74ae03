"""Cutting the client's byte stream into IMAP commands (RFC 3501 §2.2, §4.3), sans I/O.

A command is a line, or several lines joined by literals: a line that ends
with `{n}` (synchronizing: the client waits for our `+`) or `{n+}`
(LITERAL+, RFC 2088: the n octets follow at once) is continued by n octets
and the next line. The Framer finds those boundaries and nothing else; it
knows no command grammar.

The transport feeds what it read; the session pulls events:

- LiteralAnnounced: a line ended with a literal marker. The session checks
  the size (partial() shows the command so far, literal_count() how many
  literals it already has), then calls accept_literal() (and sends `+` for a
  synchronizing one) or reject_literal(); nothing moves until it decides.
- Rejected: the command whose literal was refused is over; answer it.
- CommandReady: one whole command, literals embedded as `{n}` CRLF octets,
  except those accepted with a spool: their octets went there, and
  `spilled` maps the place they would have had to what the spool made.
- LineTooLong: a line exceeded max_line; it was discarded to its end.

Memory stays bounded: of a line only max_line bytes (plus what the last
feed() brought) are held, a literal is held only once it is accepted (the
session bounds their size and number), and octets of refused or over-long
input are counted, not kept. Feed more bytes only after next_event() has
returned None.
"""

# A count longer than this is not read as a literal marker (it could never be
# a 32-bit number anyway); the parser then rejects the line.
_MARKER_DIGITS = 20
# How much of a discarded line's end is kept to see whether it announced a
# literal: the longest marker, "{" digits "+}".
_TAIL_BYTES = _MARKER_DIGITS + 3

_LINE = "line"            # reading a line of a command
_DECIDE = "decide"        # a literal was announced; waiting for accept or reject
_LITERAL = "literal"      # reading accepted literal octets into the command
_SKIP_LINE = "skip-line"  # discarding the rest of a line
_SKIP_LITERAL = "skip-literal"  # discarding the octets of a refused literal


class _Event:
    __slots__ = ()

    def _values(self):
        return tuple(getattr(self, name) for name in self.__slots__)

    def __eq__(self, other):
        return type(self) is type(other) and self._values() == other._values()

    def __repr__(self):
        return "%s%r" % (type(self).__name__, self._values())


class LiteralAnnounced(_Event):
    """A line ended with `{size}` or `{size+}`: accept_literal() or reject_literal() next."""

    __slots__ = ("size", "synchronizing")

    def __init__(self, size, synchronizing):
        self.size, self.synchronizing = size, synchronizing


class CommandReady(_Event):
    """A complete command: its lines and literals, without the final line end; `spilled`
    maps the offset of each literal written to a spool to its mailstore.text.FileText."""

    __slots__ = ("data", "spilled")

    def __init__(self, data, spilled=None):
        self.data, self.spilled = data, spilled or {}


class LineTooLong(_Event):
    """A line longer than max_line was discarded, and with it the command it belonged to."""

    __slots__ = ()


class Rejected(_Event):
    """The command whose literal the session rejected is over."""

    __slots__ = ()


def literal_marker(line):
    """(start, size, synchronizing) when line ends with `{n}` or `{n+}`, else None."""
    if not line.endswith(b"}"):
        return None
    start = line.rfind(b"{")
    if start < 0:
        return None
    count = line[start + 1:-1]
    synchronizing = not count.endswith(b"+")
    if not synchronizing:
        count = count[:-1]
    if not count.isdigit() or len(count) > _MARKER_DIGITS:
        return None
    return start, int(count), synchronizing


class Framer:
    """Turns bytes from the client into framing events; see the module docstring."""

    def __init__(self, max_line, max_literal_default):
        self.max_line = max_line
        # Not enforced here: the session compares announced sizes with it (or
        # with a larger APPEND limit) before it accepts a literal.
        self.max_literal = max_literal_default
        self.reset()

    def reset(self):
        """Drop every buffered byte and any command in progress (after STARTTLS)."""
        self._buffer = bytearray()
        self._scanned = 0
        self._ready = None
        self._start_command()

    def take_unread(self):
        """The bytes received but not yet framed, removed (they follow a COMPRESS command)."""
        data = bytes(self._buffer)
        self._buffer.clear()
        self._scanned = 0
        return data

    def feed(self, data):
        """Add bytes read from the client."""
        self._buffer += data

    def next_event(self):
        """The next event, or None when more bytes are needed."""
        event = self._ready if self._ready is not None else self._advance()
        self._ready = None
        return event

    def pending(self):
        """True when the next event can be had from buffered bytes alone (pipelining)."""
        if self._state == _DECIDE and self._ready is None:
            return False
        if self._ready is None:
            self._ready = self._advance()
        return self._ready is not None

    def partial(self):
        """The command received so far, up to and including an announced literal's marker."""
        return bytes(self._command)

    def literal_count(self):
        """How many literals of the current command have been accepted."""
        return self._literals

    def accept_literal(self, spool=None):
        """Take the announced literal into the command; with a spool (mailstore.text.Spool,
        for a large APPEND message) its octets are written there as they come instead."""
        size, _ = self._decision()
        self._literals += 1
        self._state, self._remaining = _LITERAL, size
        self._spool = spool
        if spool is not None:
            spool.start()

    def reject_literal(self):
        """Refuse the announced literal: the next event is Rejected for its command."""
        size, synchronizing = self._decision()
        self._ready = Rejected()
        # After a synchronizing literal the client waits for "+", so nothing
        # more of this command comes; after LITERAL+ (RFC 2088) the octets and
        # the rest of the command are on their way and are skipped.
        self._start_command()
        if not synchronizing:
            self._state, self._remaining = _SKIP_LITERAL, size

    # -- the state machine ------------------------------------------------

    def _start_command(self):
        self._state = _LINE
        self._command = bytearray()
        self._spool, self._spilled = None, {}
        self._literals = 0
        self._remaining = 0
        self._announced = None
        self._tail = b""
        self._skip_event = None

    def _decision(self):
        if self._state != _DECIDE or self._ready is not None:
            raise RuntimeError("no announced literal awaits a decision")
        announced, self._announced = self._announced, None
        return announced

    def _advance(self):
        steps = {_LINE: self._read_line, _LITERAL: self._read_literal,
                 _SKIP_LINE: self._skip_line, _SKIP_LITERAL: self._skip_literal}
        while True:
            if self._state == _DECIDE:
                raise RuntimeError("accept_literal() or reject_literal() must come first")
            progressed, event = steps[self._state]()
            if event is not None or not progressed:
                return event

    def _take_line(self):
        """The next whole line without its line end, or None (buffer scanned so far noted)."""
        newline = self._buffer.find(b"\n", self._scanned)
        if newline < 0:
            self._scanned = len(self._buffer)
            return None
        line = bytes(self._buffer[:newline])
        del self._buffer[:newline + 1]
        self._scanned = 0
        return line[:-1] if line.endswith(b"\r") else line

    def _read_line(self):
        line = self._take_line()
        if line is None:
            # One more byte is allowed for the CR of a CRLF still to come.
            if len(self._buffer) > self.max_line + 1:
                self._begin_discarding(self._buffer)
                self._buffer.clear()
                self._scanned = 0
                return True, None
            return False, None
        if len(line) > self.max_line:
            self._begin_discarding(line)
            return True, self._end_discarded_line(line[-_TAIL_BYTES:])
        marker = literal_marker(line)
        if marker is None:
            self._command += line
            data, spilled = bytes(self._command), self._spilled
            self._start_command()
            return True, CommandReady(data, spilled)
        return True, self._announce(line, *marker)

    def _announce(self, line, start, size, synchronizing):
        # The command is kept with "{n}" CRLF whatever marker and line end came.
        self._command += line[:start] + b"{%d}\r\n" % size
        self._state, self._announced = _DECIDE, (size, synchronizing)
        return LiteralAnnounced(size, synchronizing)

    def _read_literal(self):
        count = min(self._remaining, len(self._buffer))
        if self._spool is None:
            self._command += self._buffer[:count]
        else:
            self._spool.write(self._buffer[:count])  # what one read brought, at most
        del self._buffer[:count]
        self._remaining -= count
        if self._remaining:
            return False, None
        if self._spool is not None:
            self._spilled[len(self._command)] = self._spool.finish()
            self._spool = None
        self._state = _LINE
        return True, None

    def _begin_discarding(self, start):
        """An over-long line: the command is lost; keep only the line's tail."""
        self._start_command()
        self._skip_event = LineTooLong()
        self._tail = bytes(start[-_TAIL_BYTES:])
        self._state = _SKIP_LINE

    def _skip_line(self):
        newline = self._buffer.find(b"\n")
        if newline < 0:
            self._tail = (self._tail + self._buffer[-_TAIL_BYTES:])[-_TAIL_BYTES:]
            self._buffer.clear()
            return False, None
        tail = self._tail + self._buffer[max(0, newline - _TAIL_BYTES):newline]
        del self._buffer[:newline + 1]
        if tail.endswith(b"\r"):
            tail = tail[:-1]
        return True, self._end_discarded_line(tail[-_TAIL_BYTES:])

    def _end_discarded_line(self, tail):
        """At the end of a discarded line: report it, and skip a LITERAL+ it announced."""
        event = self._skip_event
        marker = literal_marker(bytes(tail))
        if marker is not None and not marker[2]:
            self._skip_event = None
            self._state, self._remaining = _SKIP_LITERAL, marker[1]
        else:
            self._start_command()
        return event

    def _skip_literal(self):
        count = min(self._remaining, len(self._buffer))
        del self._buffer[:count]
        self._remaining -= count
        if self._remaining:
            return False, None
        self._tail = b""
        self._state = _SKIP_LINE
        return True, None
