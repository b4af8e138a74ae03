"""A fast, exact verdict for SEARCH BODY/TEXT on most messages, without parsing MIME.

imap.search decides BODY with `email`: the body as raw text, plus every
text/* part decoded (transfer encoding, charset), all case-folded. That
costs about 2 ms a message. For an ASCII needle most messages can be decided
on their raw bytes with `bytes.lower` and `bytes.find`:

- the needle in the lower-cased raw body: a match (the raw text is one of
  the texts searched, and ASCII bytes stay the same characters in UTF-8 and
  ISO-8859-1 decoding and case-fold to their lower case);
- otherwise no match, when nothing a decoder does could make it appear:
  every transfer encoding that changes bytes (quoted-printable decoded over
  the whole body, base64 only in non-text parts, no uuencode), and every
  charset declared one under which ASCII stays ASCII; with 8-bit text, only
  UTF-8 and US-ASCII, and the body valid UTF-8, so that each part's decoded
  text is a piece of the whole body's.

Anything else gives None: the caller then does the full `email` search.
"""

import re

# Charsets that decode ASCII bytes to the same characters, and (first set) any
# byte string as _text() would (UTF-8, with US-ASCII falling back to it).
_SAFE_FOR_8BIT = frozenset({"us-ascii", "ascii", "utf-8", "utf8"})
_SAFE_FOR_ASCII = _SAFE_FOR_8BIT | {"iso-8859-%d" % n for n in range(1, 17)} | {
    "windows-125%d" % n for n in range(9)} | {"koi8-r", "koi8-u"}
_CHARSET = re.compile(rb'charset[ \t]*=[ \t]*"?([a-z0-9_.:-]+)"?[ \t]*(?:[;"\r]|$)')
_MAINTYPE = re.compile(rb"[ \t\r\n]*([a-z0-9!#$%&'*+.^_`|~-]+)/")


# A header field's value after its colon, with any continuation lines.
_FIELD_VALUE = re.compile(rb"[^\r\n]*(?:\r\n[ \t][^\r\n]*)*")


def _fields(lowered, name):
    """(offset, value) of every header field `name` (lower case) in lower-cased text.

    These are the fields `email` reads (the name at a line start, then a
    colon), and perhaps lines in bodies too, which only makes the verdict
    more careful. bytes.find, not a multi-line regex: this runs on every
    message and find is many times faster.
    """
    label = name + b":"
    position = lowered.find(label)
    while position >= 0:
        if position == 0 or lowered[position - 1] == 10:  # at a line start
            value = _FIELD_VALUE.match(lowered, position + len(label)).group()
            yield position, value
        position = lowered.find(label, position + 1)


def ascii_needle(needle):
    """The needle as bytes when the fast path applies (printable ASCII), else None."""
    if needle and needle.isascii() and needle.isprintable():
        return needle.encode("ascii")
    return None


def body_verdict(data, body_start, needle):
    """True (matches), False (cannot match) or None (undecided) for BODY `needle` in data.

    `data` is the whole message in CRLF form, `body_start` where its body
    begins, `needle` lower-case ASCII bytes.
    """
    lowered = data.lower()
    if lowered.find(needle, body_start) >= 0:
        return True
    encodings = list(_fields(lowered, b"content-transfer-encoding"))
    if any(b"uu" in value for _, value in encodings):
        return None  # uuencode
    if not _charsets_safe(lowered, data.isascii()):
        return None
    if any(b"base64" in value and _may_be_text(lowered, position)
           for position, value in encodings):
        return None
    if not data.isascii():
        body = data[body_start:]
        try:
            text = body.decode("utf-8")
        except UnicodeDecodeError:
            return None
        if needle.decode("ascii") in text.casefold():
            return True
    if any(b"quoted-printable" in value for _, value in encodings) and \
            _quoted_printable_may_match(
            data[body_start:], lowered, needle):
        return None
    return False


def _charsets_safe(lowered, ascii_only):
    """Every charset parameter of every Content-Type field names a charset known to be safe."""
    safe = _SAFE_FOR_ASCII if ascii_only else _SAFE_FOR_8BIT
    for _, value in _fields(lowered, b"content-type"):
        names = _CHARSET.findall(value)
        if len(names) != value.count(b"charset"):
            return False  # RFC 2231 charset*=, a comment, odd syntax: undecided
        if any(name.decode("ascii") not in safe for name in names):
            return False
    return True


def _may_be_text(lowered, position):
    """True unless the header block around position has only non-text content types.

    A part's block runs from the blank line before it to the blank line
    after; a block without a Content-Type could be text/plain (the default),
    and so could one whose type `email` would not accept.
    """
    start = lowered.rfind(b"\r\n\r\n", 0, position)
    end = lowered.find(b"\r\n\r\n", position)
    block = lowered[start + 2 if start >= 0 else 0:end if end >= 0 else len(lowered)]
    types = [_MAINTYPE.match(value) for _, value in _fields(block, b"content-type")]
    return not types or any(found is None or found.group(1) == b"text" for found in types)


def _quoted_printable_may_match(body, lowered, needle):
    """True when quoted-printable decoding of the body could show the needle.

    Decoding the whole body decodes every quoted-printable part as `email`
    does (decoding works line by line and parts start at line starts). 8-bit
    octets that come out are read as UTF-8, so only UTF-8 and US-ASCII parts
    are decided here (ISO-8859-1's ß would case-fold to "ss").
    """
    import binascii

    decoded = binascii.a2b_qp(body)
    if decoded.isascii():
        return needle in decoded.lower()
    if not _charsets_safe(lowered, False):
        return True
    try:
        return needle.decode("ascii") in decoded.decode("utf-8").casefold()
    except UnicodeDecodeError:
        return True
