"""IMAP4rev1 command parser (RFC 3501 §9 and the extensions we serve), sans I/O.

parse_command() takes the bytes of one whole command as imap.framing
delivers them (literals embedded as `{n}` CRLF octets, no final CRLF) and
returns an imap.command.Command, or raises ParseError with a short text fit
for a `BAD` reply. The grammar functions below carry the names of the RFC
rules they read; each takes a Cursor and leaves it after what it read.
The SEARCH, SORT and THREAD grammar lives in imap.parser_search.
"""

from imap.command import SAVED_RESULT, Command, FetchItem, ParseError, Section
from server.limits import IMAP_MAX_LITERALS

# Limits on what a client controls (ARCHITECTURE "Errors and bad input"); the
# literal count, shared with the session, is in server.limits.
# Tags longer than this are refused outright, as UW imapd does.
MAX_TAG_LENGTH = 50
# Nesting of search keys (parentheses, NOT, OR): bounds recursion.
MAX_NESTING = 100
# RFC 2971 §3.3: at most 30 pairs, field names of at most 30 octets and
# values of at most 1024 octets.
MAX_ID_PAIRS = 30
MAX_ID_FIELD = 30
MAX_ID_VALUE = 1024
# number and nz-number are unsigned 32-bit integers (RFC 3501 §9).
MAX_NUMBER = 4294967295

# RFC 3501 §9: atom-specials are ( ) { SP CTL % * " \ ] ; CHAR is 7-bit.
ATOM_CHARS = frozenset(range(0x21, 0x7F)) - frozenset(b'(){%*"\\]')
ASTRING_CHARS = ATOM_CHARS | frozenset(b"]")
TAG_CHARS = ASTRING_CHARS - frozenset(b"+")
LIST_CHARS = ASTRING_CHARS | frozenset(b"%*")
DIGITS = frozenset(b"0123456789")
BASE64_CHARS = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/")
_BASE64_TOKEN_CHARS = BASE64_CHARS | frozenset(b"=")
# The words of fetch-att and section-text: "RFC822.SIZE", "BODY.PEEK", "HEADER.FIELDS".
_WORD_CHARS = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789.")

_MONTHS = {name: number for number, name in enumerate(
    (b"JAN", b"FEB", b"MAR", b"APR", b"MAY", b"JUN",
     b"JUL", b"AUG", b"SEP", b"OCT", b"NOV", b"DEC"), start=1)}

# The flags RFC 3501 §2.3.2 defines, by their lower-case name, in their canonical spelling.
SYSTEM_FLAGS = {name.lower(): "\\" + name for name in (
    "Seen", "Answered", "Flagged", "Deleted", "Draft", "Recent")}


class Cursor:
    """A position in the bytes of one command, and what error replies need to know."""

    __slots__ = ("data", "pos", "tag", "nesting", "literals", "eight_bit", "rev2", "spilled")

    def __init__(self, data, spilled=None):
        self.data, self.pos, self.tag = data, 0, None
        # Literals the framer wrote to a spool, by the offset they would have had.
        self.spilled = spilled or {}
        self.nesting, self.literals = 0, 0
        # 8-bit octets in quoted strings: only in search criteria (UTF-8 text).
        self.eight_bit = False
        # The client enabled IMAP4rev2, whose grammar differs in places (RFC 9051 §9).
        self.rev2 = False

    def fail(self, text):
        """The ParseError to raise, carrying the tag when it has been read."""
        return ParseError(self.tag, text)

    def at_end(self):
        return self.pos >= len(self.data)

    def peek(self):
        """The next byte as a one-byte bytes object, b"" at the end."""
        return self.data[self.pos:self.pos + 1]

    def take(self, allowed):
        """The longest run of bytes from `allowed`, consumed."""
        start = end = self.pos
        data = self.data
        while end < len(data) and data[end] in allowed:
            end += 1
        self.pos = end
        return data[start:end]

    def skip(self, token):
        """Consume token (case-insensitively) when it comes next; say whether it did."""
        end = self.pos + len(token)
        if self.data[self.pos:end].upper() != token:
            return False
        self.pos = end
        return True

    def expect(self, token, text):
        if not self.skip(token):
            raise self.fail(text)

    def space(self, text):
        """Exactly one SP (RFC 3501 §9 note 2), else ParseError(text)."""
        self.expect(b" ", text)

    def word(self, allowed=ATOM_CHARS):
        """A run of `allowed` bytes as an upper-case str (keywords, names)."""
        return self.take(allowed).decode("ascii").upper()

    def enter(self):
        """One more level of nesting; refuse too many before recursing."""
        self.nesting += 1
        if self.nesting > MAX_NESTING:
            raise self.fail("Too deeply nested")

    def leave(self):
        self.nesting -= 1


# -- the command line ----------------------------------------------------------


def parse_command(data, utf8=False, rev2=False, spilled=None):
    """The Command in data (one whole command without its final CRLF), or ParseError.

    utf8: the client enabled IMAP4rev2 or UTF8=ACCEPT, whose quoted strings
    may hold UTF-8 (RFC 9051 §9 QUOTED-CHAR, RFC 6855 §3); rev2: it enabled
    IMAP4rev2; spilled: imap.framing.CommandReady.spilled.
    """
    if not data:
        raise ParseError(None, "Empty command line")
    cursor = Cursor(data, spilled)
    cursor.eight_bit, cursor.rev2 = utf8, rev2
    tag(cursor)
    if cursor.at_end():
        raise cursor.fail("Missing command")
    if cursor.peek() != b" ":
        raise ParseError(None, "Invalid tag")
    cursor.pos += 1
    name = command_name(cursor)
    table, uid = _COMMANDS, False
    if name == "UID":
        cursor.space("Missing command after UID")
        name, table, uid = command_name(cursor), _UID_COMMANDS, True
    arguments = table.get(name)
    if arguments is None:
        raise cursor.fail("Unknown UID command" if uid else "Unknown command")
    args = arguments(cursor)
    if not cursor.at_end():
        raise cursor.fail("Unexpected extra arguments")
    return Command(cursor.tag, name, args, uid)


def tag(cursor):
    """tag = 1*<any ASTRING-CHAR except "+">; stored on the cursor for error replies."""
    value = cursor.take(TAG_CHARS)
    if not value:
        raise ParseError(None, "Missing or invalid tag")
    if len(value) > MAX_TAG_LENGTH:
        raise ParseError(None, "Excessively long tag")
    cursor.tag = value.decode("ascii")
    return cursor.tag


def command_name(cursor):
    name = cursor.word()
    if not name:
        raise cursor.fail("Missing command")
    return name


# -- lists, strings, atoms and numbers -------------------------------------------


def parenthesised(cursor, item, invalid):
    """ "(" item *(SP item) ")" as a tuple of what item(cursor) returns."""
    cursor.expect(b"(", invalid)
    items = [item(cursor)]
    while not cursor.skip(b")"):
        cursor.space(invalid)
        items.append(item(cursor))
    return tuple(items)


def space_separated(cursor, item, invalid):
    """1*(SP item) to the end of the command, as a tuple."""
    items = []
    while not items or not cursor.at_end():
        cursor.space(invalid)
        items.append(item(cursor))
    return tuple(items)


def atom(cursor, missing):
    value = cursor.take(ATOM_CHARS)
    if not value:
        raise cursor.fail(missing)
    return value


def astring(cursor, missing):
    """astring = 1*ASTRING-CHAR / string"""
    if cursor.peek() in (b'"', b"{"):
        return string(cursor, missing)
    value = cursor.take(ASTRING_CHARS)
    if not value:
        raise cursor.fail(missing)
    return value


def string(cursor, missing):
    """string = quoted / literal"""
    first = cursor.peek()
    if first == b'"':
        return quoted(cursor)
    if first == b"{":
        return literal(cursor)
    raise cursor.fail(missing)


def nstring(cursor, missing):
    """nstring = string / nil; None for NIL."""
    if cursor.peek() in (b'"', b"{"):
        return string(cursor, missing)
    if cursor.skip(b"NIL"):
        return None
    raise cursor.fail(missing)


def quoted(cursor):
    """quoted = DQUOTE *QUOTED-CHAR DQUOTE, with only \\\\ and \\" as escapes."""
    data, pos = cursor.data, cursor.pos + 1
    value = bytearray()
    while pos < len(data):
        octet = data[pos]
        if octet == 0x22:
            cursor.pos = pos + 1
            return bytes(value)
        if octet == 0x5C:
            pos += 1
            if pos >= len(data) or data[pos] not in (0x22, 0x5C):
                raise cursor.fail("Invalid escape in quoted string")
        elif octet in (0x00, 0x0A, 0x0D) or (octet > 0x7F and not cursor.eight_bit):
            raise cursor.fail("Invalid character in quoted string")
        value.append(data[pos])
        pos += 1
    raise cursor.fail("Unterminated quoted string")


def literal(cursor, binary=False):
    """literal = "{" number "}" CRLF *CHAR8; binary: the octets of literal8 (RFC 3516)."""
    cursor.expect(b"{", "Invalid literal")
    size = number(cursor, "Invalid literal")
    cursor.expect(b"}\r\n", "Invalid literal")
    cursor.literals += 1
    if cursor.literals > IMAP_MAX_LITERALS:
        raise cursor.fail("Too many literals")
    spilled = cursor.spilled.get(cursor.pos)
    if spilled is not None:
        return _spilled_literal(cursor, spilled, binary)
    end = cursor.pos + size
    if end > len(cursor.data):
        raise cursor.fail("Truncated literal")
    value = cursor.data[cursor.pos:end]
    # RFC 3501 §9 note 3: no NUL, except in literal8 (RFC 3516 §4.4).
    if not binary and b"\0" in value:
        raise cursor.fail("NUL in literal")
    cursor.pos = end
    return value


def _spilled_literal(cursor, text, binary):
    """A literal the framer wrote to a spool (a large APPEND message): its FileText.
    One that cannot be read back is returned as it is: the command that stores it
    gets the StoreError, and a NO."""
    from mailstore import StoreError

    try:
        has_nul = not binary and any(b"\0" in chunk for chunk in text.chunks())
    except StoreError:
        return text
    if has_nul:
        raise cursor.fail("NUL in literal")
    return text


def number(cursor, invalid):
    """number = 1*DIGIT, an unsigned 32-bit integer."""
    digits = cursor.take(DIGITS)
    if not digits or len(digits) > 10 or int(digits) > MAX_NUMBER:
        raise cursor.fail(invalid)
    return int(digits)


def nz_number(cursor, invalid):
    """nz-number = digit-nz *DIGIT"""
    if cursor.peek() == b"0":
        raise cursor.fail(invalid)
    return number(cursor, invalid)


def is_base64(value):
    """base64 = *(4base64-char) [base64-terminal], non-empty."""
    body = value.rstrip(b"=")
    return (bool(value) and not len(value) % 4 and len(value) - len(body) <= 2
            and all(octet in BASE64_CHARS for octet in body))


# -- mailboxes and flags -------------------------------------------------------


def mailbox(cursor):
    """mailbox = "INBOX" / astring; any case of INBOX becomes b"INBOX" (RFC 3501 §5.1)."""
    name = astring(cursor, "Missing mailbox name")
    return b"INBOX" if name.upper() == b"INBOX" else name


def list_mailbox(cursor, missing):
    """list-mailbox = 1*list-char / string (atoms may hold the wildcards % and *)."""
    if cursor.peek() in (b'"', b"{"):
        return string(cursor, missing)
    value = cursor.take(LIST_CHARS)
    if not value:
        raise cursor.fail(missing)
    return value


def flag(cursor):
    """A system flag (canonical spelling) or a keyword (as sent), as str."""
    if cursor.skip(b"\\"):
        name = cursor.take(ATOM_CHARS).decode("ascii").lower()
        if name not in SYSTEM_FLAGS:
            raise cursor.fail("Invalid flag")
        return SYSTEM_FLAGS[name]
    return flag_keyword(cursor)


def flag_keyword(cursor):
    return atom(cursor, "Invalid flag").decode("ascii")


def flag_list(cursor):
    """flag-list = "(" [flag *(SP flag)] ")" """
    if cursor.skip(b"()"):
        return ()
    return parenthesised(cursor, flag, "Invalid flag list")


# -- dates -----------------------------------------------------------------------


def _digits(cursor, count, invalid):
    value = cursor.data[cursor.pos:cursor.pos + count]
    if len(value) != count or not value.isdigit():
        raise cursor.fail(invalid)
    cursor.pos += count
    return int(value)


def date_month(cursor, invalid):
    month = _MONTHS.get(cursor.data[cursor.pos:cursor.pos + 3].upper())
    if month is None:
        raise cursor.fail(invalid)
    cursor.pos += 3
    return month


def date(cursor):
    """date = date-text / DQUOTE date-text DQUOTE, as a datetime.date."""
    import datetime  # only searches need it; keeps the pre-login import cost down

    invalid = "Invalid date"
    quoted_date = cursor.skip(b'"')
    day = cursor.take(DIGITS)
    if not 1 <= len(day) <= 2:
        raise cursor.fail(invalid)
    cursor.expect(b"-", invalid)
    month = date_month(cursor, invalid)
    cursor.expect(b"-", invalid)
    year = _digits(cursor, 4, invalid)
    if quoted_date:
        cursor.expect(b'"', invalid)
    try:
        return datetime.date(year, month, int(day))
    except ValueError:
        raise cursor.fail(invalid) from None


def date_time(cursor):
    """date-time = DQUOTE date-day-fixed "-" date-month "-" date-year SP time SP zone DQUOTE"""
    import datetime  # only APPEND needs it; keeps the pre-login import cost down

    invalid = "Invalid date-time"
    cursor.expect(b'"', invalid)
    day = _digits(cursor, 1, invalid) if cursor.skip(b" ") else _digits(cursor, 2, invalid)
    cursor.expect(b"-", invalid)
    month = date_month(cursor, invalid)
    cursor.expect(b"-", invalid)
    year = _digits(cursor, 4, invalid)
    cursor.expect(b" ", invalid)
    hour, minute, second = time(cursor, invalid)
    cursor.expect(b" ", invalid)
    offset = zone(cursor, invalid)
    cursor.expect(b'"', invalid)
    try:
        zone_info = datetime.timezone(datetime.timedelta(minutes=offset))
        return datetime.datetime(year, month, day, hour, minute, second, tzinfo=zone_info)
    except ValueError:
        raise cursor.fail(invalid) from None


def time(cursor, invalid):
    """time = 2DIGIT ":" 2DIGIT ":" 2DIGIT"""
    hour = _digits(cursor, 2, invalid)
    cursor.expect(b":", invalid)
    minute = _digits(cursor, 2, invalid)
    cursor.expect(b":", invalid)
    return hour, minute, _digits(cursor, 2, invalid)


def zone(cursor, invalid):
    """zone = ("+" / "-") 4DIGIT, as minutes east of UTC."""
    sign = cursor.peek()
    if sign not in (b"+", b"-"):
        raise cursor.fail(invalid)
    cursor.pos += 1
    hours, minutes = _digits(cursor, 2, invalid), _digits(cursor, 2, invalid)
    if minutes >= 60:
        raise cursor.fail(invalid)
    offset = hours * 60 + minutes
    return -offset if sign == b"-" else offset


# -- sequence sets -----------------------------------------------------------------


def sequence_set(cursor):
    """sequence-set as a tuple of (low, high) ranges, None for "*" (see imap.command).

    `$` alone is the saved search result, SAVED_RESULT (RFC 5182 §4: seq-last-command).
    """
    if cursor.skip(b"$"):
        if cursor.peek() not in (b"", b" ", b")"):
            raise cursor.fail("Invalid sequence set")
        return SAVED_RESULT
    ranges = [seq_range(cursor)]
    while cursor.skip(b","):
        ranges.append(seq_range(cursor))
    # A set runs to a space, a closing parenthesis (search) or the end.
    if cursor.peek() not in (b"", b" ", b")"):
        raise cursor.fail("Invalid sequence set")
    return tuple(ranges)


def seq_range(cursor):
    """seq-number [":" seq-number]; a lone number n is the range (n, n)."""
    low = seq_number(cursor)
    high = seq_number(cursor) if cursor.skip(b":") else low
    return low, high


def seq_number(cursor):
    """seq-number = nz-number / "*" """
    if cursor.skip(b"*"):
        return None
    return nz_number(cursor, "Invalid sequence set")


# -- FETCH (RFC 3501 §6.4.5, RFC 3516) -------------------------------------------------

_SIMPLE_FETCH_ATTS = frozenset((
    "ENVELOPE", "FLAGS", "INTERNALDATE", "RFC822", "RFC822.HEADER", "RFC822.SIZE",
    "RFC822.TEXT", "BODY", "BODYSTRUCTURE", "UID", "MODSEQ"))
_FAST = (FetchItem("FLAGS"), FetchItem("INTERNALDATE"), FetchItem("RFC822.SIZE"))
_ALL = _FAST + (FetchItem("ENVELOPE"),)
FETCH_MACROS = {"FAST": _FAST, "ALL": _ALL, "FULL": _ALL + (FetchItem("BODY"),)}
_SECTION_TEXTS = frozenset(("HEADER", "HEADER.FIELDS", "HEADER.FIELDS.NOT", "TEXT"))


def fetch_items(cursor):
    """A macro (only outside parentheses), one fetch-att, or a parenthesised list."""
    if cursor.peek() == b"(":
        return parenthesised(cursor, fetch_att, "Invalid fetch item")
    start = cursor.pos
    macro = FETCH_MACROS.get(cursor.word(_WORD_CHARS))
    if macro is not None:
        return macro
    cursor.pos = start
    return (fetch_att(cursor),)


def fetch_att(cursor):
    """One fetch-att as a FetchItem."""
    name = cursor.word(_WORD_CHARS)
    has_section = cursor.peek() == b"["
    if name in _SIMPLE_FETCH_ATTS and not has_section:
        return FetchItem(name)
    if not has_section:
        raise cursor.fail("Invalid fetch item")
    if name in ("BODY", "BODY.PEEK"):
        return FetchItem("BODY[]", section(cursor), partial(cursor), name == "BODY.PEEK")
    if name in ("BINARY", "BINARY.PEEK"):
        return FetchItem("BINARY[]", section_binary(cursor), partial(cursor),
                         name == "BINARY.PEEK")
    if name == "BINARY.SIZE":
        return FetchItem("BINARY.SIZE", section_binary(cursor))
    raise cursor.fail("Invalid fetch item")


def partial(cursor):
    """["<" number "." nz-number ">"] as (origin, length) or None."""
    if not cursor.skip(b"<"):
        return None
    invalid = "Invalid partial range"
    origin = number(cursor, invalid)
    cursor.expect(b".", invalid)
    length = nz_number(cursor, invalid)
    cursor.expect(b">", invalid)
    return origin, length


def section(cursor):
    """section = "[" [section-spec] "]" as a Section."""
    cursor.expect(b"[", "Invalid section")
    if cursor.skip(b"]"):
        return Section()
    part = section_part(cursor) if cursor.peek().isdigit() else ()
    text, fields = None, ()
    if not part or cursor.skip(b"."):
        text, fields = section_text(cursor, mime_allowed=bool(part))
    cursor.expect(b"]", "Invalid section")
    return Section(part, text, fields)


def section_part(cursor):
    """section-part = nz-number *("." nz-number)"""
    parts = [nz_number(cursor, "Invalid section part")]
    while cursor.peek() == b"." and cursor.data[cursor.pos + 1:cursor.pos + 2].isdigit():
        cursor.pos += 1
        parts.append(nz_number(cursor, "Invalid section part"))
    return tuple(parts)


def section_text(cursor, mime_allowed):
    """section-msgtext, or "MIME" after part numbers: (text, header field names)."""
    text = cursor.word(_WORD_CHARS)
    if text == "MIME" and mime_allowed:
        return text, ()
    if text not in _SECTION_TEXTS:
        raise cursor.fail("Invalid section")
    if text.startswith("HEADER.FIELDS"):
        cursor.space("Missing header list")
        return text, header_list(cursor)
    return text, ()


def header_list(cursor):
    """header-list = "(" header-fld-name *(SP header-fld-name) ")", upper-cased."""
    return parenthesised(cursor, header_fld_name, "Invalid header list")


def header_fld_name(cursor):
    return astring(cursor, "Invalid header list").upper()


def section_binary(cursor):
    """section-binary = "[" [section-part] "]" (RFC 3516) as a Section of part numbers."""
    cursor.expect(b"[", "Invalid section")
    part = section_part(cursor) if cursor.peek().isdigit() else ()
    cursor.expect(b"]", "Invalid section")
    return Section(part)


# -- command arguments, one function per command -------------------------------------


def no_arguments(cursor):
    return ()


def authenticate_arguments(cursor):
    """auth-type [SP (base64 / "=")] (RFC 4959 initial response, raw bytes)."""
    cursor.space("Missing authentication mechanism")
    mechanism = atom(cursor, "Missing authentication mechanism").decode("ascii").upper()
    if cursor.at_end():
        return mechanism, None
    cursor.space("Invalid initial response")
    response = cursor.take(_BASE64_TOKEN_CHARS)
    # RFC 4959 §3: a lone "=" is an empty initial response.
    if response != b"=" and not is_base64(response):
        raise cursor.fail("Invalid initial response")
    return mechanism, response


def login_arguments(cursor):
    cursor.space("Missing user name")
    user = astring(cursor, "Missing user name")
    cursor.space("Missing password")
    return user, astring(cursor, "Missing password")


def mailbox_argument(cursor):
    cursor.space("Missing mailbox name")
    return (mailbox(cursor),)


def select_arguments(cursor):
    """SELECT / EXAMINE mailbox [select-params]: (mailbox,) or, with CONDSTORE or
    QRESYNC parameters (RFC 7162), (mailbox, imap.parser_condstore.SelectParameters)."""
    arguments = mailbox_argument(cursor)
    if cursor.data[cursor.pos:cursor.pos + 2] != b" (":
        return arguments
    from imap import parser_condstore

    return arguments + (parser_condstore.select_parameters(cursor),)


def rename_arguments(cursor):
    old = mailbox_argument(cursor)
    return old + mailbox_argument(cursor)


def extended_list_arguments(cursor):
    """LIST with RFC 5258 options and pattern lists: imap.parser_list keeps that grammar."""
    from imap.parser_list import list_arguments as extended

    return extended(cursor)


def list_arguments(cursor):
    """LSUB: reference SP list-mailbox, both as sent (LIST patterns interpret them).

    RFC 3501 makes the reference a mailbox, but clients put wildcards in it
    too, so it is read as a list-mailbox; INBOX is left to the LIST matching.
    """
    cursor.space("Missing reference name")
    reference = list_mailbox(cursor, "Missing reference name")
    cursor.space("Missing mailbox pattern")
    return reference, list_mailbox(cursor, "Missing mailbox pattern")


# RFC 3501 §6.3.10 and SIZE (RFC 8438); IMAP4rev2 drops RECENT and adds
# DELETED (RFC 9051 §6.3.11).
_STATUS_ITEMS = frozenset(("MESSAGES", "RECENT", "UIDNEXT", "UIDVALIDITY", "UNSEEN", "SIZE",
                           "HIGHESTMODSEQ"))
_REV2_STATUS_ITEMS = _STATUS_ITEMS - {"RECENT"} | {"DELETED"}


def status_arguments(cursor):
    """mailbox SP "(" status-att *(SP status-att) ")" """
    name = mailbox_argument(cursor)
    cursor.space("Missing status items")
    return name + (parenthesised(cursor, status_att, "Invalid status items"),)


def status_att(cursor):
    item = cursor.word()
    if item not in (_REV2_STATUS_ITEMS if cursor.rev2 else _STATUS_ITEMS):
        raise cursor.fail("Unknown status item")
    return item


def append_arguments(cursor):
    """APPEND, with MULTIAPPEND and CATENATE: imap.parser_append keeps that grammar."""
    from imap import parser_append

    return parser_append.append_arguments(cursor)


def sequence_set_argument(cursor):
    cursor.space("Missing sequence set")
    return sequence_set(cursor)


def fetch_arguments(cursor):
    """(set, items), or (set, items, FetchModifiers) with RFC 7162 modifiers."""
    numbers = sequence_set_argument(cursor)
    cursor.space("Missing fetch items")
    arguments = numbers, fetch_items(cursor)
    if cursor.data[cursor.pos:cursor.pos + 2] != b" (":
        return arguments
    from imap import parser_condstore

    return arguments + (parser_condstore.fetch_modifiers(cursor),)


def store_arguments(cursor):
    """sequence-set SP [store-modifiers SP] store-att-flags: (set, mode, silent, flags),
    and UNCHANGEDSINCE's modseq after them when given (RFC 7162 §3.1.3)."""
    numbers = sequence_set_argument(cursor)
    cursor.space("Missing store item")
    unchangedsince = ()
    if cursor.peek() == b"(":
        from imap import parser_condstore

        unchangedsince = (parser_condstore.store_modifiers(cursor),)
    mode = cursor.peek().decode("ascii") if cursor.peek() in (b"+", b"-") else ""
    cursor.pos += len(mode)
    item = cursor.word(_WORD_CHARS)
    if item not in ("FLAGS", "FLAGS.SILENT"):
        raise cursor.fail("Invalid store item")
    cursor.space("Missing flags")
    return (numbers, mode, item == "FLAGS.SILENT", store_flags(cursor)) + unchangedsince


def store_flags(cursor):
    """flag-list / (flag *(SP flag))"""
    if cursor.peek() == b"(":
        return flag_list(cursor)
    flags = [flag(cursor)]
    while not cursor.at_end():
        cursor.space("Invalid flag")
        flags.append(flag(cursor))
    return tuple(flags)


def copy_arguments(cursor):
    """COPY / MOVE: sequence-set SP mailbox."""
    return (sequence_set_argument(cursor),) + mailbox_argument(cursor)


def uid_expunge_arguments(cursor):
    """UID EXPUNGE sequence-set (RFC 4315 §2.1)."""
    return (sequence_set_argument(cursor),)


# SEARCH, SORT and THREAD have their own grammar module, loaded by the first of them.


def search_arguments(cursor):
    from imap import parser_search

    return parser_search.search_arguments(cursor)


def sort_arguments(cursor):
    from imap import parser_search

    return parser_search.sort_arguments(cursor)


def thread_arguments(cursor):
    from imap import parser_search

    return parser_search.thread_arguments(cursor)


def cancelupdate_arguments(cursor):
    from imap import parser_search

    return parser_search.cancelupdate_arguments(cursor)


def notify_arguments(cursor):
    """NOTIFY (RFC 5465 §8): imap.parser_notify keeps that grammar."""
    from imap import parser_notify

    return parser_notify.notify_arguments(cursor)


def enable_arguments(cursor):
    """1*(SP capability) (RFC 5161), upper-cased."""
    return (space_separated(cursor, capability, "Missing capability"),)


def capability(cursor):
    return atom(cursor, "Missing capability").decode("ascii").upper()


def compress_arguments(cursor):
    """SP algorithm (RFC 4978 §5), upper-cased."""
    cursor.space("Missing compression mechanism")
    return (atom(cursor, "Missing compression mechanism").decode("ascii").upper(),)


def url_arguments(rule):
    """GENURLAUTH, URLFETCH, RESETKEY: imap.parser_url keeps the URL grammar."""
    def arguments(cursor):
        from imap import parser_url

        return getattr(parser_url, rule)(cursor)

    return arguments


def id_arguments(cursor):
    """SP id-params-list (RFC 2971): (((name, value), ...),) or (None,) for NIL."""
    cursor.space("Missing ID parameters")
    if cursor.skip(b"NIL"):
        return (None,)
    cursor.expect(b"(", "Invalid ID parameters")
    pairs = []
    while not cursor.skip(b")"):
        if pairs:
            cursor.space("Invalid ID parameters")
        pairs.append(id_pair(cursor))
        if len(pairs) > MAX_ID_PAIRS:
            raise cursor.fail("Too many ID parameters")
    return (tuple(pairs),)


def id_pair(cursor):
    """string SP nstring, within RFC 2971's size limits."""
    name = string(cursor, "Invalid ID parameters")
    cursor.space("Invalid ID parameters")
    value = nstring(cursor, "Invalid ID parameters")
    if len(name) > MAX_ID_FIELD or (value is not None and len(value) > MAX_ID_VALUE):
        raise cursor.fail("ID parameter too long")
    return name, value


_COMMANDS = {
    **{name: no_arguments for name in (
        "CAPABILITY", "NOOP", "LOGOUT", "STARTTLS", "CHECK", "CLOSE", "EXPUNGE",
        "UNSELECT", "IDLE", "NAMESPACE")},
    "NOTIFY": notify_arguments,
    **{name: mailbox_argument for name in ("CREATE", "DELETE", "SUBSCRIBE", "UNSUBSCRIBE")},
    "AUTHENTICATE": authenticate_arguments,
    "LOGIN": login_arguments,
    "SELECT": select_arguments,
    "EXAMINE": select_arguments,
    "RENAME": rename_arguments,
    "LIST": extended_list_arguments,
    "LSUB": list_arguments,
    "STATUS": status_arguments,
    "APPEND": append_arguments,
    "SEARCH": search_arguments,
    "FETCH": fetch_arguments,
    "STORE": store_arguments,
    "COPY": copy_arguments,
    "MOVE": copy_arguments,
    "SORT": sort_arguments,
    "THREAD": thread_arguments,
    "ENABLE": enable_arguments,
    "CANCELUPDATE": cancelupdate_arguments,
    "ID": id_arguments,
    "COMPRESS": compress_arguments,
    "GENURLAUTH": url_arguments("genurlauth_arguments"),
    "URLFETCH": url_arguments("urlfetch_arguments"),
    "RESETKEY": url_arguments("resetkey_arguments"),
}

# The commands UID may prefix (RFC 3501 §6.4.8, RFC 4315, RFC 6851, RFC 5256).
_UID_COMMANDS = {
    "COPY": copy_arguments,
    "MOVE": copy_arguments,
    "FETCH": fetch_arguments,
    "SEARCH": search_arguments,
    "STORE": store_arguments,
    "EXPUNGE": uid_expunge_arguments,
    "SORT": sort_arguments,
    "THREAD": thread_arguments,
}
