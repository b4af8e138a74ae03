"""Rendering IMAP data items on the wire (RFC 3501 §4): strings, NIL, lists.

Everything returns bytes ready to send. A string that cannot travel as a
quoted string (CR, LF, NUL, 8-bit, or very long) goes as a literal.
"""

_QUOTED_LIMIT = 1024
# Bytes a quoted string may carry (RFC 3501 §9 QUOTED-CHAR); translate() deleting
# them leaves exactly the ones that force a literal.
_QUOTABLE = bytes(b for b in range(1, 128) if b not in (10, 13))
# IMAP4rev2 and UTF8=ACCEPT also let UTF-8 travel in quoted strings (RFC 9051 §9 QUOTED-CHAR).
_QUOTABLE_UTF8 = _QUOTABLE + bytes(range(128, 256))
_ATOM_SPECIALS = frozenset(b'(){ %*"\\]')


def _as_bytes(value):
    return value.encode("utf-8") if isinstance(value, str) else bytes(value)


def literal(value):
    """A synchronizing literal as a server sends it: `{n}` CRLF then the bytes."""
    data = _as_bytes(value)
    return b"{%d}\r\n" % len(data) + data


def string(value, utf8=False):
    """A quoted string when the bytes allow it, else a literal.

    utf8: the client speaks IMAP4rev2 or enabled UTF8=ACCEPT, so valid UTF-8
    may be quoted.
    """
    data = _as_bytes(value)
    if len(data) > _QUOTED_LIMIT or data.translate(None, _QUOTABLE_UTF8 if utf8 else _QUOTABLE):
        return literal(data)
    if utf8 and not data.isascii() and not _is_utf8(data):
        return literal(data)
    return b'"' + data.replace(b"\\", b"\\\\").replace(b'"', b'\\"') + b'"'


def nstring(value):
    """NIL for None, else string()."""
    return b"NIL" if value is None else string(value)


def astring(value, utf8=False):
    """An atom when the bytes are a valid atom, else string()."""
    data = _as_bytes(value)
    if data and all(32 < b < 127 and b not in _ATOM_SPECIALS for b in data):
        return data
    return string(data, utf8)


def _is_utf8(data):
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def number(value):
    return b"%d" % value


def plist(items):
    """A parenthesised list of already-rendered items."""
    return b"(" + b" ".join(items) + b")"
