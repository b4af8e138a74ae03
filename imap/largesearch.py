"""SEARCH BODY and TEXT in a large message read in place (imap.plaintext).

imap.search reads a message whole and asks `email` for its text parts; for a
100 MB message that took 200 MB. A message read in place is searched in
pieces instead, with the same texts as imap.search: the raw body (UTF-8 if
it all is, else ISO-8859-1), then each text/* part as imap.mime finds the
parts, its transfer encoding and then its charset removed (the charset
falling back as imap.search's does). Decoders run a piece at a time, so
memory stays bounded whatever the message holds.
"""

import binascii
import codecs
import functools

from imap import mime

_BASE64_ALPHABET = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
_NOT_BASE64 = bytes(b for b in range(256) if b not in _BASE64_ALPHABET)
_IDENTITY = frozenset((b"7BIT", b"8BIT", b"BINARY"))
_ASCII = bytes(range(128))


def body_contains(text, needle):
    """Whether the case-folded `needle` is in the body of PlainText `text`, raw or decoded."""
    start = mime.body_start(text)

    def raw():
        return text.wire_chunks(start, len(text))

    ascii_body = all(piece.isascii() for piece in raw())
    if _contains(raw, "ascii" if ascii_body else _raw_codec(raw), needle):
        return True
    for body, end, encoding, charset in mime.text_leaves(text):
        def payload(body=body, end=end, encoding=encoding):
            return _decoded(text.wire_chunks(body, end), encoding)

        codec = _charset_codec(payload, charset)
        if ascii_body and encoding in _IDENTITY and _reads_ascii_as_ascii(codec):
            continue  # its text is a piece of the raw text, searched already
        if _contains(payload, codec, needle):
            return True
    return False


@functools.lru_cache(maxsize=None)
def _reads_ascii_as_ascii(codec):
    try:
        return codecs.decode(_ASCII, codec) == _ASCII.decode("ascii")
    except (UnicodeDecodeError, LookupError):
        return False


def _raw_codec(pieces):
    """imap.search's _text: UTF-8 when the bytes are UTF-8, else ISO-8859-1."""
    return "utf-8" if _decodes(pieces, "utf-8") else "latin-1"


def _charset_codec(pieces, charset):
    """imap.search's _decode_charset: the declared charset (US-ASCII when none)
    when it is known and decodes the bytes, else _raw_codec."""
    name = (charset or b"us-ascii").decode("ascii", "replace")
    try:
        codecs.lookup(name)
    except LookupError:
        return _raw_codec(pieces)
    return name if _decodes(pieces, name) else _raw_codec(pieces)


def _decodes(pieces, codec):
    decoder = codecs.getincrementaldecoder(codec)("strict")
    try:
        for piece in pieces():
            decoder.decode(piece)
        decoder.decode(b"", final=True)
    except UnicodeDecodeError:
        return False
    return True


def _contains(pieces, codec, needle):
    """Whether the case-folded text of the pieces in codec holds needle (valid in codec)."""
    if not needle:
        return True  # the empty string is in every text, the empty one too
    decoder = codecs.getincrementaldecoder(codec)("strict")
    carry = ""
    for piece in pieces():
        # Case folding maps one character at a time, so pieces fold apart.
        folded = carry + decoder.decode(piece).casefold()
        if needle in folded:
            return True
        carry = folded[-(len(needle) - 1):] if len(needle) > 1 else ""
    return needle in carry + decoder.decode(b"", final=True).casefold()


def _decoded(pieces, encoding):
    """The pieces with their transfer encoding removed (as imap.mime.decode would)."""
    if encoding == b"BASE64":
        return _base64_pieces(pieces)
    if encoding == b"QUOTED-PRINTABLE":
        return _quoted_printable_pieces(pieces)
    return pieces  # identity, or unknown: the raw bytes, as `email` leaves them


def _base64_pieces(pieces):
    """RFC 2045 §6.8 as imap.mime does it: other characters ignored, "=" ends the data,
    a final lone sextet dropped."""
    pending = b""
    for piece in pieces:
        end = piece.find(b"=")
        pending += (piece if end < 0 else piece[:end]).translate(None, _NOT_BASE64)
        whole = len(pending) - len(pending) % 4
        if whole:
            yield binascii.a2b_base64(pending[:whole])
            pending = pending[whole:]
        if end >= 0:
            break
    if len(pending) > 1:
        yield binascii.a2b_base64(pending + b"=" * (-len(pending) % 4))


def _quoted_printable_pieces(pieces):
    """RFC 2045 §6.7 as imap.mime does it, whole lines at a time."""
    pending = b""
    for piece in pieces:
        pending += piece
        cut = pending.rfind(b"\r\n") + 2
        if cut > 1:
            yield mime.decode(pending[:cut], b"QUOTED-PRINTABLE")
            pending = pending[cut:]
    if pending:
        yield mime.decode(pending, b"QUOTED-PRINTABLE")
