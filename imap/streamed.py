"""A large message's text sent as a literal in pieces (BODY[], BODY.PEEK[], RFC822).

FETCH renders a reply as one bytes object, and a message's text in its wire
form (CRs dropped, LF sent as CRLF) was built whole for it: FETCH BODY.PEEK[]
of a 100 MB message took 400 MB (the stored text, two conversions, the
literal, the reply line).  From STREAM_FROM octets on, the literal is sent
as `{size}` CRLF and then the stored text converted 64 KB at a time, read
through the mailbox's bounded reads; its size is counted by a first pass
of the same kind, so it is exact whatever the text holds.
"""

from mailstore.mboxformat import wire_octets

# Messages of this RFC822.SIZE and more are streamed; smaller ones are rendered
# whole as before (their reply is no larger than the session's output buffer).
STREAM_FROM = 1 << 20


class Streamed:
    """A literal of `whole` octets that `pieces()` yields, or the part of it that a
    partial fetch (origin, length) names, as its size and pieces."""

    def __init__(self, pieces, whole, partial=None):
        self.pieces = pieces
        origin, length = partial if partial is not None else (0, whole)
        self.origin = min(origin, whole)
        self.size = max(0, min(length, whole - self.origin))

    def chunks(self):
        """The literal's bytes, in the pieces' sizes (64 KB to about 2 MB)."""
        skip, left = self.origin, self.size
        for chunk in self.pieces():
            if skip >= len(chunk):
                skip -= len(chunk)
                continue
            piece = chunk[skip:skip + left]
            skip, left = 0, left - len(piece)
            if piece:
                yield piece
            if not left:
                return


def streamed_text(mailbox, stored, partial=None):
    """The wire form of a message's visible text as a Streamed literal."""
    return Streamed(lambda: _wire_chunks(mailbox.visible_chunks(stored)),
                    _wire_size(mailbox.visible_chunks(stored)), partial)


def decoded(text, part, partial=None):
    """BINARY[part] of a message read in place (imap.plaintext): its decoded content
    as a Streamed literal, its size counted by a first decoding pass; None when
    there is no such part (imap.mime's NotLeaf and UnknownEncoding as binary())."""
    from imap.mime import binary_span, decoded_pieces

    found = binary_span(text, part)
    if found is None:
        return None
    start, end, encoding = found

    def pieces():
        return decoded_pieces(text.wire_chunks(start, end), encoding)
    return Streamed(pieces, sum(len(piece) for piece in pieces()), partial)


def _wire_chunks(raw_chunks):
    """Stored text to wire form piece by piece, as imap.view.wire_form does whole:
    CRs dropped, LF as CRLF, and a CRLF after a last line that has none."""
    last = b""
    for raw in raw_chunks:
        text = raw.replace(b"\r", b"")
        if text:
            last = text[-1:]
            yield text.replace(b"\n", b"\r\n")
    if last and last != b"\n":
        yield b"\r\n"


def _wire_size(raw_chunks):
    """len() of what _wire_chunks yields, counted without building it."""
    size, last = 0, b""
    for raw in raw_chunks:
        size += wire_octets(raw)
        last = raw.rstrip(b"\r")[-1:] or last
    return size + 2 if last and last != b"\n" else size
