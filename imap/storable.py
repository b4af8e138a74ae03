"""Binary APPEND (RFC 3516 §4.4): store a message so that FETCH BINARY gives its parts back.

The stores keep mail as text: mbox turns NUL into 0x80 (as UW does) and
quotes body lines that start "From "; both drivers hand text out with CRLF
line ends, so a bare CR is lost, a bare LF gains a CR, and a last line
without its CRLF gets one. RFC 3516 lets the server store a part in another
transfer encoding, so a leaf part whose content would not survive that is
stored base64-encoded, its Content-Transfer-Encoding field replaced: FETCH
BINARY of the part then returns exactly the octets that were appended (BODY
and RFC822.SIZE describe the stored form). Parts that survive, and messages
sent as ordinary literals, are stored as sent.
"""

import base64
import re

from imap import mime

_BARE_LINE_END = re.compile(rb"\r(?!\n)|(?<!\r)\n")
_FROM_LINE = re.compile(rb"(?:\A|\n)From ")
_ENCODING_FIELD = re.compile(rb"^content-transfer-encoding[ \t]*:[^\n]*\n(?:[ \t][^\n]*\n)*",
                             re.I | re.M)
_MIME_VERSION = re.compile(rb"^mime-version[ \t]*:", re.I | re.M)


class Unstorable(ValueError):
    """The message cannot be stored faithfully: NUL outside a part's content, or a
    part that must be re-encoded but whose transfer encoding cannot be decoded."""


def survives(content, at_end):
    """True when the stores give content back unchanged."""
    return not (b"\0" in content or _BARE_LINE_END.search(content)
                or _FROM_LINE.search(content)
                or (at_end and content and not content.endswith(b"\r\n")))


def storable(message):
    """message with every leaf part that would not survive storage re-encoded as base64."""
    if survives(message, True):
        return message
    pieces, pos = [], 0
    for start, body, end, encoding in mime.leaves(message):
        at_end = end == len(message)
        if survives(message[body:end], at_end):
            continue
        if start == body and start != 0:
            raise Unstorable("a part without a MIME header cannot be re-encoded")
        try:
            content = mime.decode(message[body:end], encoding)
        except mime.UnknownEncoding:
            raise Unstorable("unknown transfer encoding") from None
        pieces += [message[pos:start], _base64_header(message[start:body], start == 0),
                   _base64_body(content, at_end)]
        pos = end
    pieces.append(message[pos:])
    result = b"".join(pieces)
    if b"\0" in result:
        raise Unstorable("NUL in a header or between parts")
    return result


def _base64_header(header, top_level):
    """The part's MIME header declaring base64 (and MIME-Version for a whole message)."""
    fields = header[:-2] if header.endswith(b"\r\n") else header
    fields = _ENCODING_FIELD.sub(b"", fields)
    if top_level and not _MIME_VERSION.search(fields):
        fields += b"MIME-Version: 1.0\r\n"
    return fields + b"Content-Transfer-Encoding: base64\r\n\r\n"


def _base64_body(content, at_end):
    """base64 in CRLF lines; inside a multipart the CRLF before the boundary is already there."""
    text = base64.encodebytes(content).replace(b"\n", b"\r\n")
    return text if at_end else text[:-2]
