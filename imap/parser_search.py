"""The grammar of SEARCH, SORT and THREAD, their RETURN options, and CANCELUPDATE.

RFC 3501 §6.4.4 search keys with RFC 5032 OLDER/YOUNGER and RFC 5182 `$`;
RETURN options from RFC 4731 (ESEARCH), RFC 5182 (SAVE), RFC 5267 (ESORT,
CONTEXT, UPDATE, PARTIAL) and RFC 9394 (PARTIAL counted from the end);
SORT criteria from RFC 5256 and RFC 5957. Split from imap.parser, whose
primitives (Cursor, astring, sequence_set, ...) these functions use.
"""

from imap.command import ReturnOptions
from imap.parser import (
    astring, atom, date, nz_number, number, parenthesised, quoted, sequence_set, space_separated)

_FLAG_KEYS = frozenset((
    "ALL", "ANSWERED", "DELETED", "DRAFT", "FLAGGED", "NEW", "OLD", "RECENT", "SEEN",
    "UNANSWERED", "UNDELETED", "UNDRAFT", "UNFLAGGED", "UNSEEN"))
_STRING_KEYS = frozenset(("BCC", "BODY", "CC", "FROM", "SUBJECT", "TEXT", "TO"))
_DATE_KEYS = frozenset(("BEFORE", "ON", "SINCE", "SENTBEFORE", "SENTON", "SENTSINCE"))

# Return options: RFC 4731, RFC 5182 SAVE, RFC 5267 CONTEXT/UPDATE/PARTIAL.
# SORT takes them all too (RFC 5267 §3.1, §4.1).
_RETURN_OPTIONS = frozenset(("MIN", "MAX", "ALL", "COUNT", "SAVE", "CONTEXT", "UPDATE"))

_SORT_KEYS = frozenset((
    "ARRIVAL", "CC", "DATE", "FROM", "SIZE", "SUBJECT", "TO", "DISPLAYFROM", "DISPLAYTO"))


# -- search keys -------------------------------------------------------------------


def search_key(cursor):
    """One search-key as the tuple imap.command describes."""
    cursor.enter()
    first = cursor.peek()
    if first == b"(":
        key = conjunction(parenthesised(cursor, search_key, "Invalid search key"))
    elif first in (b"*", b"$") or first.isdigit():
        key = ("SEQ", sequence_set(cursor))
    else:
        key = _search_word(cursor, cursor.word())
    cursor.leave()
    return key


def _search_word(cursor, name):
    if name in _FLAG_KEYS:
        return (name,)
    if not name:
        raise cursor.fail("Missing search key")
    argument = _SEARCH_ARGUMENTS.get(name)
    if argument is None:
        raise cursor.fail("Invalid search key")
    cursor.space("Missing search argument")
    return argument(cursor, name)


def _string_key(cursor, name):
    return (name, astring(cursor, "Missing search argument"))


def _date_key(cursor, name):
    return (name, date(cursor))


def _size_key(cursor, name):
    return (name, number(cursor, "Invalid number"))


def _interval_key(cursor, name):
    """OLDER / YOUNGER nz-number, seconds (RFC 5032 §3)."""
    return (name, nz_number(cursor, "Invalid interval"))


def _keyword_key(cursor, name):
    return (name, atom(cursor, "Invalid keyword").decode("ascii"))


def _header_key(cursor, name):
    field = astring(cursor, "Missing header field name").upper()
    cursor.space("Missing search argument")
    return (name, field, astring(cursor, "Missing search argument"))


def _uid_key(cursor, name):
    return (name, sequence_set(cursor))


def _not_key(cursor, name):
    return (name, search_key(cursor))


def _or_key(cursor, name):
    first = search_key(cursor)
    cursor.space("Missing second search key of OR")
    return (name, first, search_key(cursor))


_SEARCH_ARGUMENTS = {
    **{name: _string_key for name in _STRING_KEYS},
    **{name: _date_key for name in _DATE_KEYS},
    "LARGER": _size_key, "SMALLER": _size_key,
    "OLDER": _interval_key, "YOUNGER": _interval_key,
    "KEYWORD": _keyword_key, "UNKEYWORD": _keyword_key,
    "HEADER": _header_key, "UID": _uid_key, "NOT": _not_key, "OR": _or_key,
    "MODSEQ": lambda cursor, name: _modseq_key(cursor, name),
}


def _modseq_key(cursor, name):
    """MODSEQ (RFC 7162 §3.1.5): imap.parser_condstore keeps that grammar."""
    from imap import parser_condstore

    return parser_condstore.modseq_key(cursor, name)


def conjunction(keys):
    """Keys in a row mean all of them: one key as itself, several as ("AND", keys)."""
    return keys[0] if len(keys) == 1 else ("AND", tuple(keys))


def search_criteria(cursor):
    """1*(SP search-key) to the end of the command, as one key."""
    if cursor.at_end():
        raise cursor.fail("Missing search criteria")
    return conjunction(space_separated(cursor, search_key, "Invalid search key"))


def charset(cursor):
    """A charset name (astring; atom / quoted in RFC 5256) as an upper-case str."""
    value = astring(cursor, "Missing charset")
    try:
        return value.decode("ascii").upper()
    except UnicodeDecodeError:
        raise cursor.fail("Invalid charset") from None


# -- RETURN options ----------------------------------------------------------------


def optional_return_opts(cursor):
    """[SP "RETURN" SP search-return-opts] (RFC 4466 §2.6): ReturnOptions, or None."""
    if cursor.data[cursor.pos:cursor.pos + 8].upper() != b" RETURN ":
        return None
    cursor.pos += 8
    return search_return_opts(cursor)


def search_return_opts(cursor):
    """ "(" [search-return-opt *(SP search-return-opt)] ")"; `()` means ALL (RFC 4731 §3.1)."""
    if cursor.skip(b"()"):
        return ReturnOptions(("ALL",))
    options, partial = [], None
    for option, value in parenthesised(cursor, search_return_opt, "Invalid RETURN options"):
        if option == "PARTIAL":
            if partial is not None:
                raise cursor.fail("Only one PARTIAL is allowed")
            partial = value
        if option not in options:
            options.append(option)
    # RFC 5267 §4.4: one PARTIAL, one ALL, or neither.
    if partial is not None and "ALL" in options:
        raise cursor.fail("PARTIAL and ALL cannot be combined")
    return ReturnOptions(options, partial)


def search_return_opt(cursor):
    """One option as (name, value): value is the range of PARTIAL, else None."""
    name = cursor.word()
    if name == "PARTIAL":
        cursor.space("Missing PARTIAL range")
        return name, partial_range(cursor)
    if name not in _RETURN_OPTIONS:
        raise cursor.fail("Unknown RETURN option")
    return name, None


def partial_range(cursor):
    """nz-number ":" nz-number (RFC 5267 §4.4), or "-" nz ":-" nz (RFC 9394 §3.1)."""
    invalid = "Invalid PARTIAL range"
    negative = cursor.skip(b"-")
    first = nz_number(cursor, invalid)
    cursor.expect(b":-" if negative else b":", invalid)
    last = nz_number(cursor, invalid)
    return (-first, -last) if negative else (first, last)


# -- the commands ------------------------------------------------------------------


def search_arguments(cursor):
    """[search-return-opts] [SP "CHARSET" SP astring] 1*(SP search-key): (charset, key, returns)."""
    cursor.eight_bit = True
    returns = optional_return_opts(cursor)
    found = None
    if cursor.data[cursor.pos:cursor.pos + 9].upper() == b" CHARSET ":
        cursor.pos += 9
        found = charset(cursor)
    return found, search_criteria(cursor), returns


def sort_arguments(cursor):
    """[SP "RETURN" SP opts] SP sort-criteria SP charset 1*(SP search-key) (RFC 5256, 5267 §3).

    Returns (criteria, charset, key, returns).
    """
    cursor.eight_bit = True
    returns = optional_return_opts(cursor)
    cursor.space("Missing sort criteria")
    criteria = parenthesised(cursor, sort_criterion, "Invalid sort criteria")
    cursor.space("Missing charset")
    return criteria, charset(cursor), search_criteria(cursor), returns


def sort_criterion(cursor):
    """["REVERSE" SP] sort-key"""
    key = cursor.word()
    reverse = key == "REVERSE"
    if reverse:
        cursor.space("Invalid sort criteria")
        key = cursor.word()
    if key not in _SORT_KEYS:
        raise cursor.fail("Invalid sort criteria")
    return reverse, key


def thread_arguments(cursor):
    """SP thread-alg SP charset 1*(SP search-key) (RFC 5256)."""
    cursor.eight_bit = True
    cursor.space("Missing thread algorithm")
    algorithm = atom(cursor, "Missing thread algorithm").decode("ascii").upper()
    cursor.space("Missing charset")
    return algorithm, charset(cursor), search_criteria(cursor)


def cancelupdate_arguments(cursor):
    """1*(SP quoted) (RFC 5267 §4.3.5): the tags of the searches to stop updating."""
    def tag(cursor):
        if cursor.peek() != b'"':
            raise cursor.fail("Missing quoted tag")
        return quoted(cursor).decode("ascii", "replace")

    return (space_separated(cursor, tag, "Missing quoted tag"),)
