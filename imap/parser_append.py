"""The APPEND grammar: RFC 3501 §6.3.11, MULTIAPPEND (RFC 3502), literal8 (RFC 3516)
and CATENATE (RFC 4469), sans I/O like imap.parser, whose Cursor it reads.

    append          = "APPEND" SP mailbox 1*append-message
    append-message  = SP [flag-list SP] [date-time SP] append-data
    append-data     = literal / literal8 / "CATENATE" SP "(" cat-part *(SP cat-part) ")"
    cat-part        = "TEXT" SP (literal / literal8) / "URL" SP astring

RFC 4469 writes text-literal with `literal`; a literal8 is taken too, as
BINARY servers do, and makes the result a binary message.
"""

from imap.command import AppendMessage
from imap.parser import astring, date_time, flag_list, literal, mailbox_argument, space_separated

# CATENATE parts in one message: the literals among them are bounded by the
# session's literal count already; this bounds the URLs too.
MAX_CATENATE_PARTS = 100


def append_arguments(cursor):
    """mailbox 1*(SP append-message): (mailbox, (AppendMessage, ...))."""
    name = mailbox_argument(cursor)
    return name + (space_separated(cursor, append_message, "Missing message literal"),)


def append_message(cursor):
    """[flag-list SP] [date-time SP] append-data"""
    flags = ()
    if cursor.peek() == b"(":
        flags = flag_list(cursor)
        cursor.space("Missing message literal")
    internal_date = None
    if cursor.peek() == b'"':
        internal_date = date_time(cursor)
        cursor.space("Missing message literal")
    if cursor.skip(b"CATENATE"):
        cursor.space("Missing CATENATE parts")
        return AppendMessage(flags, internal_date, None, parts=catenate_parts(cursor))
    if cursor.skip(b"UTF8 ("):
        # RFC 6855 §4: UTF8 (literal8) carries a message with UTF-8 header fields.
        if cursor.peek() != b"~":
            raise cursor.fail("Missing message literal")
        binary, data = literal_or_literal8(cursor, "Missing message literal")
        cursor.expect(b")", "Missing message literal")
        return AppendMessage(flags, internal_date, data, binary)
    binary, data = literal_or_literal8(cursor, "Missing message literal")
    return AppendMessage(flags, internal_date, data, binary)


def literal_or_literal8(cursor, missing):
    """(is literal8, octets) of literal / literal8 ("~{n}", RFC 3516 §4.4)."""
    binary = cursor.skip(b"~")
    if cursor.peek() != b"{":
        raise cursor.fail(missing)
    return binary, literal(cursor, binary)


def catenate_parts(cursor):
    """ "(" cat-part *(SP cat-part) ")" as a tuple of parts."""
    cursor.expect(b"(", "Invalid CATENATE parts")
    parts = [cat_part(cursor)]
    while not cursor.skip(b")"):
        cursor.space("Invalid CATENATE parts")
        parts.append(cat_part(cursor))
        if len(parts) > MAX_CATENATE_PARTS:
            raise cursor.fail("Too many CATENATE parts")
    return tuple(parts)


def cat_part(cursor):
    """ "TEXT" SP literal -> ("TEXT", octets, binary); "URL" SP astring -> ("URL", url)."""
    if cursor.skip(b"TEXT "):
        binary, data = literal_or_literal8(cursor, "Missing CATENATE text literal")
        return ("TEXT", data, binary)
    if cursor.skip(b"URL "):
        return ("URL", astring(cursor, "Missing CATENATE URL"))
    raise cursor.fail("Invalid CATENATE part")
