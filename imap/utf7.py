"""Modified UTF-7 for mailbox names (RFC 3501 §5.1.3).

Printable US-ASCII stands for itself except "&", written "&-"; every other
character goes as UTF-16BE in base64 with "," for "/", no padding, between
"&" and "-". decode() accepts only the one canonical form of each name, so
that two spellings never name two mailboxes.
"""

import binascii

_PRINTABLE = range(0x20, 0x7F)
_BASE64_CHARS = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+,")


def encode(name):
    """The modified UTF-7 bytes of name (str); ValueError for lone surrogates."""
    out = bytearray()
    pending = []
    for char in name:
        if ord(char) in _PRINTABLE:
            if pending:
                out += _shifted("".join(pending))
                pending = []
            out += b"&-" if char == "&" else char.encode("ascii")
        else:
            pending.append(char)
    if pending:
        out += _shifted("".join(pending))
    return bytes(out)


def _shifted(text):
    """One base64 run: "&" modified-base64(UTF-16BE) "-"."""
    encoded = binascii.b2a_base64(text.encode("utf-16-be"), newline=False)
    return b"&" + encoded.rstrip(b"=").replace(b"/", b",") + b"-"


def decode(data):
    """The str a modified UTF-7 name stands for; ValueError unless data is canonical."""
    out = []
    pos = 0
    after_shift = False
    while pos < len(data):
        octet = data[pos]
        if octet not in _PRINTABLE:
            raise ValueError("octet %#x is not allowed in modified UTF-7" % octet)
        if octet != 0x26:
            out.append(chr(octet))
            pos, after_shift = pos + 1, False
            continue
        end = data.find(b"-", pos + 1)
        if end < 0:
            raise ValueError("unterminated base64 run")
        if end == pos + 1:
            out.append("&")
        elif after_shift:
            raise ValueError("superfluous shift between two base64 runs")
        else:
            out.append(_unshifted(bytes(data[pos + 1:end])))
        pos, after_shift = end + 1, end > pos + 1
    return "".join(out)


def _unshifted(run):
    """The characters of one base64 run, checked to be the shortest form."""
    if not all(octet in _BASE64_CHARS for octet in run):
        raise ValueError("invalid character in base64 run")
    bits = len(run) * 6
    # The run must hold whole UTF-16 units, with fewer than 6 zero bits over.
    if bits % 16 >= 6:
        raise ValueError("base64 run of impossible length")
    padded = run.replace(b",", b"/") + b"=" * (-len(run) % 4)
    raw = binascii.a2b_base64(padded)
    if binascii.b2a_base64(raw, newline=False).rstrip(b"=") != run.replace(b",", b"/"):
        raise ValueError("base64 run with non-zero padding bits")
    text = raw.decode("utf-16-be")
    if any(ord(char) in _PRINTABLE for char in text):
        raise ValueError("base64 run encodes printable US-ASCII")
    return text


def is_valid(data):
    """True when data is a canonical modified UTF-7 name."""
    try:
        decode(data)
    except ValueError:
        return False
    return True
