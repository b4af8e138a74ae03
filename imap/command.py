"""What the parser produces and the session consumes: parsed IMAP commands.

The parser (imap.parser) builds these from the bytes of one command; the
session never sees raw protocol text. Arguments are typed per command, as
listed on Command.
"""


class ParseError(Exception):
    """The command is malformed: the session answers `tag BAD text`.

    `tag` is the command's tag when one could be read (else None, answered
    with `* BAD`).
    """

    def __init__(self, tag, text):
        super().__init__(text)
        self.tag = tag
        self.text = text


class Command:
    """One parsed command.

    `name` is the upper-case command word; for `UID FETCH` it is "FETCH" with
    `uid` True. `args` is a tuple whose shape depends on name:

    - LOGIN (user: bytes, password: bytes)
    - AUTHENTICATE (mechanism: str upper-case, initial_response: bytes or None)
    - SELECT, EXAMINE (mailbox,) or (mailbox, imap.parser_condstore.SelectParameters)
    - CREATE, DELETE, SUBSCRIBE, UNSUBSCRIBE (mailbox,)
    - RENAME (old, new)                     LSUB (reference: bytes, pattern: bytes)
    - LIST (reference: bytes, patterns: tuple of bytes, options: imap.parser_list.ListOptions)
    - STATUS (mailbox, items: tuple of str upper-case)
    - APPEND (mailbox, messages: tuple of AppendMessage)   (MULTIAPPEND: several)
    - GENURLAUTH (pairs: tuple of (rump url: bytes, mechanism: str upper-case),)
    - URLFETCH (requests: tuple of (url: bytes, parameters: tuple of str or None),)
      (None for a bare URL; RFC 5524 lists: ("BINARY", "BODYPARTSTRUCTURE") ...)
    - RESETKEY (mailbox or None, mechanisms: tuple of str upper-case)
    - COMPRESS (mechanism: str upper-case,)
    - SEARCH (charset: str or None, key: search key, returns: ReturnOptions or None)
      (None without RETURN)
    - FETCH (sequence_set, items: tuple of FetchItem)       macros ALL/FAST/FULL expanded;
      with RFC 7162 modifiers a third item, imap.parser_condstore.FetchModifiers
    - STORE (sequence_set, mode: "+", "-" or "", silent: bool, flags: tuple of str), and
      UNCHANGEDSINCE's modseq (int) as a fifth item when given (RFC 7162)
    - COPY, MOVE (sequence_set, mailbox)    EXPUNGE with uid=True: (sequence_set,)
    - SORT (criteria: tuple of (reverse: bool, key: str), charset: str, key,
      returns: ReturnOptions or None)  (ESORT, RFC 5267 §3)
    - CANCELUPDATE (tags: tuple of str)     (RFC 5267 §4.3.5)
    - THREAD (algorithm: str upper-case, charset: str, key)
    - ENABLE (capabilities: tuple of str upper-case)
    - ID (parameters: tuple of (name: bytes, value: bytes or None), or None for NIL)
    - everything else: ()

    Mailbox names are bytes exactly as sent (modified UTF-7 is the session's
    concern), except that any case of INBOX becomes b"INBOX" (RFC 3501 §5.1).
    """

    __slots__ = ("tag", "name", "uid", "args")

    def __init__(self, tag, name, args=(), uid=False):
        self.tag, self.name, self.args, self.uid = tag, name, tuple(args), uid

    def __repr__(self):
        return "Command(%r, %r, %r, uid=%r)" % (self.tag, self.name, self.args, self.uid)

    def __eq__(self, other):
        return isinstance(other, Command) and (self.tag, self.name, self.args, self.uid) == (
            other.tag, other.name, other.args, other.uid)


class ReturnOptions(tuple):
    """The RETURN options of SEARCH or SORT: a tuple of upper-case str, each once.

    MIN MAX ALL COUNT (RFC 4731), SAVE (RFC 5182), CONTEXT UPDATE PARTIAL
    (RFC 5267); `RETURN ()` is ("ALL",). With PARTIAL, `partial` holds its
    range as written, (first, last): both positive, or both negative for
    the RFC 9394 count-from-the-end form (-1 is the last result).
    """

    def __new__(cls, options, partial=None):
        self = super().__new__(cls, options)
        self.partial = partial
        return self

    def __repr__(self):
        return "ReturnOptions(%s, partial=%r)" % (tuple.__repr__(self), self.partial)


class AppendMessage:
    """One message of APPEND: flags (tuple of str), internal date (aware datetime or None), bytes.

    `binary` is True when the message came as a literal8 (RFC 3516 §4.4).
    With CATENATE (RFC 4469) `data` is None and `parts` is a tuple of
    ("TEXT", bytes, binary) and ("URL", bytes) items, in order.
    """

    __slots__ = ("flags", "date", "data", "binary", "parts")

    def __init__(self, flags, date, data, binary=False, parts=None):
        self.flags, self.date, self.data = tuple(flags), date, data
        self.binary, self.parts = binary, parts

    def _values(self):
        return self.flags, self.date, self.data, self.binary, self.parts

    def __eq__(self, other):
        return isinstance(other, AppendMessage) and self._values() == other._values()

    def __repr__(self):
        if self.parts is not None:
            return "AppendMessage(%r, %r, CATENATE %r)" % (self.flags, self.date, self.parts)
        return "AppendMessage(%r, %r, %d bytes%s)" % (self.flags, self.date, len(self.data),
                                                     ", binary" if self.binary else "")


class Section:
    """A BODY[...] section (RFC 3501 §6.4.5).

    `part` is a tuple of part numbers (empty for the whole message); `text`
    is None, "HEADER", "HEADER.FIELDS", "HEADER.FIELDS.NOT", "TEXT" or "MIME";
    `fields` a tuple of upper-case header names (bytes) for the FIELDS forms.
    """

    __slots__ = ("part", "text", "fields")

    def __init__(self, part=(), text=None, fields=()):
        self.part, self.text, self.fields = tuple(part), text, tuple(fields)

    def spec(self):
        """The section as the server echoes it inside the brackets."""
        words = [".".join(str(n) for n in self.part)] if self.part else []
        if self.text:
            words.append(self.text)
        text = ".".join(words).encode("ascii")
        if self.fields:
            text += b" (" + b" ".join(self.fields) + b")"
        return text

    def __eq__(self, other):
        return isinstance(other, Section) and (self.part, self.text, self.fields) == (
            other.part, other.text, other.fields)

    def __repr__(self):
        return "Section(%r)" % self.spec()


class FetchItem:
    """One FETCH data item.

    `name` is one of FLAGS UID INTERNALDATE RFC822.SIZE ENVELOPE BODYSTRUCTURE
    BODY (structure without extensions) RFC822 RFC822.HEADER RFC822.TEXT,
    "BODY[]" for any BODY[section] / BODY.PEEK[section] (then `section` is a
    Section), "BINARY[]" and "BINARY.SIZE" (RFC 3516; `section` holds only
    part numbers). `partial` is (origin, length) or None; `peek` is True for
    BODY.PEEK / BINARY.PEEK.
    """

    __slots__ = ("name", "section", "partial", "peek")

    def __init__(self, name, section=None, partial=None, peek=False):
        self.name, self.section, self.partial, self.peek = name, section, partial, peek

    def __eq__(self, other):
        return isinstance(other, FetchItem) and (
            self.name, self.section, self.partial, self.peek) == (
            other.name, other.section, other.partial, other.peek)

    def __repr__(self):
        return "FetchItem(%r, %r, %r, peek=%r)" % (self.name, self.section, self.partial, self.peek)


# A sequence set is a tuple of (low, high) ranges; None stands for "*".
# `2,4:7,9:*` -> ((2, 2), (4, 7), (9, None)); ranges are kept as written
# (`7:4` stays (7, 4)); imap.sequence resolves them against a mailbox.
# `$` (RFC 5182), the messages the last SEARCH RETURN (SAVE) kept, is SAVED_RESULT.
#
# A search key is a tuple whose first item is the upper-case key name:
#   ("ALL",) ("ANSWERED",) ... every flag key without arguments
#   ("KEYWORD", str) ("UNKEYWORD", str)
#   ("BCC"|"BODY"|"CC"|"FROM"|"SUBJECT"|"TEXT"|"TO", bytes)
#   ("HEADER", field: bytes, value: bytes)
#   ("BEFORE"|"ON"|"SINCE"|"SENTBEFORE"|"SENTON"|"SENTSINCE", datetime.date)
#   ("LARGER"|"SMALLER"|"OLDER"|"YOUNGER", int)      (OLDER/YOUNGER: RFC 5032)
#   ("UID", sequence_set) ("SEQ", sequence_set) ("MODSEQ", int)   (MODSEQ: RFC 7162)
#   ("NOT", key) ("OR", key, key) ("AND", (key, ...))
# Several keys in a row (at top level or in parentheses) become one "AND".

# The sequence set `$`: the session's saved search result (RFC 5182 §2.1).
SAVED_RESULT = "$"
