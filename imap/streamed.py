"""A large message's text, or a part of it, sent as a literal in pieces.

FETCH rendered a reply as one bytes object, and a message's text in its wire
form (CRs dropped, LF sent as CRLF) was built whole for it: FETCH BODY.PEEK[]
of a 100 MB message took 400 MB (the stored text, two conversions, the
literal, the reply line). A message read in place (imap.plaintext) is sent
instead as `{size}` CRLF and then its wire form a piece at a time: BODY[],
RFC822, any section, BINARY's decoded content and URLFETCH's answers.
"""


# The pieces come a megabyte or so at a time; they are sent in writes of this size,
# as the session's other replies are.
SEND_PIECE = 1 << 16


class Streamed:
    """A literal of `whole` octets that `pieces()` yields, or the part of it that a
    partial fetch (origin, length) names, as its size and pieces."""

    def __init__(self, pieces, whole, partial=None):
        self.pieces = pieces
        origin, length = partial if partial is not None else (0, whole)
        self.origin = min(origin, whole)
        self.size = max(0, min(length, whole - self.origin))

    def chunks(self):
        """The literal's bytes, in writes of at most SEND_PIECE."""
        skip, left = self.origin, self.size
        for chunk in self.pieces():
            if skip >= len(chunk):
                skip -= len(chunk)
                continue
            piece = chunk[skip:skip + left]
            skip, left = 0, left - len(piece)
            for at in range(0, len(piece), SEND_PIECE):
                yield piece[at:at + SEND_PIECE]
            if not left:
                return


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

