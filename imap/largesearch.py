"""SEARCH BODY and TEXT in a large message read in place (imap.plaintext).

imap.search reads a message whole and asks `email` for its text parts; for a
100 MB message that took 200 MB. A message read in place is searched in
pieces instead, with the same texts as imap.search: the raw body (UTF-8 if
it all is, else ISO-8859-1), then each text/* part as imap.mime finds the
parts, its transfer encoding and then its charset removed (the charset
falling back as imap.search's does). Decoders run a piece at a time, so
memory stays bounded whatever the message holds.
"""

import codecs
import functools

from imap import mime

_ASCII = bytes(range(128))


def body_contains(text, needle):
    """Whether the case-folded `needle` is in the body of PlainText `text`, raw or decoded."""
    start = mime.body_start(text)

    def raw():
        return text.wire_chunks(start, len(text))

    found, ascii_body = _ascii_scan(raw(), needle)
    if found:
        return True
    if not ascii_body and _contains(raw, _raw_codec(raw), needle):
        return True
    for body, end, encoding, charset in mime.text_leaves(text):
        def payload(body=body, end=end, encoding=encoding):
            return mime.decoded_pieces(text.wire_chunks(body, end), encoding)

        if ascii_body and encoding in mime.IDENTITY_ENCODINGS and _reads_ascii_as_ascii(charset):
            continue  # its text is a piece of the raw text, searched already
        if _part_contains(payload, charset, needle):
            return True
    return False


def _part_contains(payload, charset, needle):
    """Whether a text part's decoded, case-folded text holds needle."""
    try:
        return _contains(payload, _charset_codec(payload, charset), needle)
    except UnicodeError:
        # Not a decoding error: an incremental UTF-16/32 decoder refuses a stream
        # without a BOM, which bytes.decode reads in the machine's order. Such a
        # part (rare, and a text part) is decoded whole, as imap.search does.
        from imap.search import decode_charset

        text = decode_charset(b"".join(payload()), charset and charset.decode("ascii", "replace"))
        return needle in text.casefold()


@functools.lru_cache(maxsize=None)
def _reads_ascii_as_ascii(charset):
    """Whether ASCII bytes in a part of this charset decode to themselves: in the
    charset, or in _text when it is not a text encoding (_charset_codec)."""
    name = _text_codec(charset)
    try:
        return name is None or _ASCII.decode(name) == _ASCII.decode("ascii")
    except UnicodeDecodeError:
        return False


def _text_codec(charset):
    """The charset (US-ASCII when none) when Python has it as a text encoding, else None.

    bytes.decode, as imap.search uses, refuses codecs that are not text
    encodings ("zlib", "rot13"); codecs.lookup would accept them."""
    name = (charset or b"us-ascii").decode("ascii", "replace")
    try:
        b"\0".decode(name)  # not b"": that decodes without looking the codec up
    except LookupError:
        return None
    except UnicodeDecodeError:
        pass  # a text encoding that cannot end there (UTF-16)
    return name


def _ascii_scan(pieces, needle):
    """(needle found, every piece ASCII) in one pass of bytes.lower() and find().

    An ASCII needle found in the lower-cased bytes is in the raw text whatever
    its codec (ASCII bytes decode to themselves in UTF-8 and ISO-8859-1). In
    ASCII text case folding is lower-casing, so there the answer is exact;
    elsewhere a miss is not (the fold of "ß" is "ss"), and the caller decodes.
    """
    wanted = needle.encode("ascii") if needle.isascii() else None
    carry, ascii_only = b"", True
    for piece in pieces:
        ascii_only = ascii_only and piece.isascii()
        if wanted is None:
            if not ascii_only:
                return False, False
            continue
        lowered = carry + piece.lower()
        if wanted in lowered:
            return True, ascii_only
        carry = lowered[-(len(wanted) - 1):] if len(wanted) > 1 else b""
    return not needle, ascii_only


def _raw_codec(pieces):
    """imap.search's _text: UTF-8 when the bytes are UTF-8, else ISO-8859-1."""
    return "utf-8" if _decodes(pieces, "utf-8") else "latin-1"


def _charset_codec(pieces, charset):
    """imap.search's _decode_charset: the declared charset (US-ASCII when none)
    when it is a text encoding and decodes the bytes, else _raw_codec."""
    name = _text_codec(charset)
    return name if name is not None and _decodes(pieces, name) else _raw_codec(pieces)


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
