"""Mailbox names between the wire and the store: modified UTF-7 or UTF-8.

The store names mailboxes in modified UTF-7 (RFC 3501 §5.1.3), as UW does
on disk. A client that enabled IMAP4rev2 (RFC 9051 §5.1) or UTF8=ACCEPT
(RFC 6855 §3) sends and receives UTF-8 names instead; this module converts
at the session's edge, so that both kinds of client see the same mailboxes.
A legacy client's names pass through unchanged.
"""

from imap import utf7, wire


class BadName(ValueError):
    """A UTF-8 client sent a name that is not valid UTF-8."""


def to_store(name, utf8):
    """The store's (modified UTF-7) name for a name as the client sent it."""
    if not utf8 or name == b"INBOX":
        return name
    try:
        text = name.decode("utf-8")
    except UnicodeDecodeError:
        raise BadName("mailbox name is not UTF-8") from None
    import unicodedata

    # RFC 9051 §5.1: names are compared in Unicode normalization form C.
    text = unicodedata.normalize("NFC", text)
    try:
        return utf7.encode(text)
    except (ValueError, UnicodeEncodeError):
        raise BadName("mailbox name is not UTF-8") from None


def to_wire(name, utf8):
    """The name as the client expects it; a store name that is not canonical
    modified UTF-7 (made by another program) goes as it is."""
    if not utf8 or name.isascii() and b"&" not in name:
        return name
    try:
        return utf7.decode(name).encode("utf-8")
    except ValueError:
        return name


def astring(name, utf8):
    """A store name rendered as the mailbox of a response (LIST, STATUS)."""
    return wire.astring(to_wire(name, utf8), utf8)


class Utf8Pattern:
    """A ListPattern (or AnyPattern) written in UTF-8, matched against store names.

    It offers what a folder walk asks of a pattern: matches(), may_descend()
    and literal_prefix(), each translating between the two forms.
    """

    def __init__(self, pattern):
        self.pattern = pattern
        self.delimiter = pattern.delimiter

    def matches(self, name):
        return self.pattern.matches(to_wire(name, True))

    def may_descend(self, prefix):
        return self.pattern.may_descend(to_wire(prefix, True))

    def literal_prefix(self):
        prefix = self.pattern.literal_prefix()
        try:
            return to_store(prefix, True) if prefix else prefix
        except BadName:
            return b""
