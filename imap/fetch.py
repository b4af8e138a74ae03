"""FETCH data items for one message (RFC 3501 §6.4.5, §7.4.2; BINARY: RFC 3516)."""

from imap import wire
from imap.view import flags_item
from mailstore.fromline import format_internaldate

# Items whose non-PEEK form sets \Seen (RFC 3501 §6.4.5).
_SEEN_ITEMS = {"RFC822", "RFC822.TEXT", "BODY[]", "BINARY[]"}


def sets_seen(items):
    """True when fetching these items marks the message \\Seen."""
    return any(item.name in _SEEN_ITEMS and not item.peek for item in items)


def wants_text(items):
    """True when an item needs the message text (so the read lock must be held)."""
    return any(item.name not in ("FLAGS", "UID", "INTERNALDATE", "RFC822.SIZE", "MODSEQ")
               for item in items)


def render(message, items, by_uid):
    """`n FETCH (...)` for one MessageView, without the leading `* `."""
    return b"".join(_joined(render_pieces(message, items, by_uid)))


def render_pieces(message, items, by_uid):
    """The same reply as bytes and Streamed pieces: a large message's text
    is not built whole (see imap.streamed); `send_pieces` sends them."""
    parts = []
    names = {item.name for item in items}
    if by_uid and "UID" not in names:
        parts.append(b"UID %d" % message.uid)
    for item in items:
        parts.append(_RENDERERS[item.name](message, item))
    pieces = [b"%d FETCH (" % message.seq]
    for number, part in enumerate(parts):
        if number:
            pieces.append(b" ")
        pieces.extend(part if isinstance(part, list) else [part])
    pieces.append(b")")
    return pieces


def send_pieces(send, pieces):
    """Send rendered pieces through `send`, a streamed text as a literal in pieces."""
    for data in _joined(pieces):
        send(data)


def _joined(pieces):
    """The bytes of rendered pieces in order, a streamed text as `{size}` CRLF and its pieces."""
    for piece in pieces:
        if isinstance(piece, bytes):
            yield piece
        else:
            yield b"{%d}\r\n" % piece.size
            yield from piece.chunks()


def _flags(message, item):
    stored = message.stored
    return flags_item(stored.flags, stored.keywords, message.recent)


def _uid(message, item):
    return b"UID %d" % message.uid


def _modseq(message, item):
    """MODSEQ (RFC 7162 §3.1.4.2)."""
    return b"MODSEQ (%d)" % message.modseq


def _internaldate(message, item):
    seconds, offset = message.mailbox.internal_date(message.stored)
    return b'INTERNALDATE "' + format_internaldate(seconds, offset).encode() + b'"'


def _size(message, item):
    return b"RFC822.SIZE %d" % message.size


def _envelope(message, item):
    from imap.mime import envelope

    return b"ENVELOPE " + message.cached("envelope", lambda: envelope(message.header()))


def _bodystructure(message, item):
    from imap.mime import bodystructure

    return b"BODYSTRUCTURE " + message.cached(
        "bodystructure", lambda: bodystructure(message.parsed_text(), True))


def _body(message, item):
    from imap.mime import bodystructure

    return b"BODY " + message.cached("body", lambda: bodystructure(message.parsed_text(), False))


def _rfc822(message, item):
    text = message.large_text()
    if text is not None:
        return _streamed_span(b"RFC822", text, (0, len(text)), None)
    return b"RFC822 " + wire.literal(message.message())


def _rfc822_header(message, item):
    return b"RFC822.HEADER " + wire.literal(message.header())


def _rfc822_text(message, item):
    from imap.mime import body_start, split_message

    text = message.large_text()
    if text is not None:
        return _streamed_span(b"RFC822.TEXT", text, (body_start(text), len(text)), None)
    return b"RFC822.TEXT " + wire.literal(split_message(message.message())[1])


def _body_section(message, item):
    from imap.mime import section

    label = b"BODY[" + item.section.spec() + b"]"
    text = message.large_text()
    if text is not None:
        return _large_section(label, text, item)
    data = section(message.message(), item.section)
    return _partial(label, b"" if data is None else data, item.partial)


def _large_section(label, text, item):
    """BODY[section] of a message read in place: a span of it is streamed."""
    from imap.mime import section_span

    found = section_span(text, item.section)
    if isinstance(found, tuple):
        return _streamed_span(label, text, found, item.partial)
    return _partial(label, b"" if found is None else found, item.partial)


def _streamed_span(label, text, span, partial):
    """[label, Streamed] for the wire form of text[start:end]."""
    from imap.streamed import Streamed

    start, end = span
    if partial is not None:
        label += b"<%d>" % partial[0]
    return [label + b" ", Streamed(lambda: text.wire_chunks(start, end),
                                   text.wire_size(start, end), partial)]


def _binary(message, item):
    from imap import streamed
    from imap.mime import binary

    label = b"BINARY[" + ".".join(str(n) for n in item.section.part).encode() + b"]"
    text = message.large_text()
    if text is not None:
        decoded = streamed.decoded(text, item.section.part, item.partial)
        if decoded is not None:
            if item.partial is not None:
                label += b"<%d>" % item.partial[0]
            has_nul = any(b"\0" in chunk for chunk in decoded.chunks())
            return [label + (b" ~" if has_nul else b" "), decoded]
        return _partial(label, b"", item.partial, binary=True)
    data = binary(message.parsed_text(), item.section.part) or b""
    return _partial(label, data, item.partial, binary=True)


def _binary_size(message, item):
    from imap import streamed
    from imap.mime import binary

    text = message.large_text()
    if text is not None:
        decoded = streamed.decoded(text, item.section.part, None)
        size = 0 if decoded is None else decoded.size
    else:
        size = len(binary(message.parsed_text(), item.section.part) or b"")
    return b"BINARY.SIZE[" + ".".join(str(n) for n in item.section.part).encode() + b"] %d" % size


def _partial(label, data, partial, binary=False):
    """`label<origin> literal` for a partial fetch, else `label literal` (§6.4.5)."""
    if partial is not None:
        origin, length = partial
        data = data[origin:origin + length]
        label += b"<%d>" % origin
    if binary and b"\0" in data:
        return label + b" ~" + wire.literal(data)
    return label + b" " + wire.literal(data)


_RENDERERS = {
    "FLAGS": _flags, "UID": _uid, "MODSEQ": _modseq, "INTERNALDATE": _internaldate,
    "RFC822.SIZE": _size,
    "ENVELOPE": _envelope, "BODYSTRUCTURE": _bodystructure, "BODY": _body,
    "RFC822": _rfc822, "RFC822.HEADER": _rfc822_header, "RFC822.TEXT": _rfc822_text,
    "BODY[]": _body_section, "BINARY[]": _binary, "BINARY.SIZE": _binary_size,
}
