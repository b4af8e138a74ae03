"""A large message read in place for BODYSTRUCTURE, BODY[section] and SEARCH.

imap.mime parses a message in its wire form, CRLF line ends, built as one
bytes object: for a 100 MB message that was 200 MB for a BODYSTRUCTURE.
Stored mail has LF line ends, and where it holds no CR at all its wire form
is exactly the stored text with a CR put before every LF (and a last line
closed). So the parser can run on the stored text itself, in LF form, with
every offset mapped to the wire by counting LFs: a PlainText is that text,
the visible header (metadata lines left out) followed by the body's range
of the mailbox's mapped file, searched and counted a piece at a time. A body
stored with CRLF line ends throughout is its own wire form, and is read in
place the same way; the header, small bytes, is put in the body's form.

A body with other CRs (mixed line ends, a stray CR) is read without its CRs
(WithoutCRs), which is what the wire form keeps of it.
"""

import bisect
import mmap
from array import array

from mailstore import mboxformat as fmt


def plain_text(mailbox, stored):
    """The message as a PlainText, or None when the driver cannot map it."""
    mapped = getattr(mailbox, "mapped_text", None)
    if mapped is None:
        return None
    head, buf, start, end = mapped(stored)
    eol = _line_ends(buf, start, end)
    if eol is None:  # mixed: read without its CRs, as the wire form drops them
        buf, eol = WithoutCRs(buf, start, end), b"\n"
        start, end = 0, len(buf)
    # The header is small bytes: put it in the body's form. The wire form drops every
    # CR, so the header without its CRs (and LF as CRLF, for a CRLF body) is exact.
    head = head.replace(b"\r", b"") if b"\r" in head else head
    head = head.replace(b"\n", b"\r\n") if eol == b"\r\n" else head
    segments = [(head, 0, len(head)), (buf, start, end)]
    last = bytes(buf[end - 1:end]) if end > start else head[-1:]
    if last and last != b"\n":
        segments.append((eol, 0, len(eol)))  # the wire form closes the last line
    return PlainText(segments, eol)


def _line_ends(buf, start, end):
    """LF when buf[start:end] holds no CR; CRLF when every CR is followed by an LF and
    every LF follows a CR (the wire form already: stored so by some Maildir writers);
    None for anything else (mixed line ends, stray CRs)."""
    if not any(b"\r" in piece for piece in fmt.mapped_pieces(buf, start, end)):
        return b"\n"  # most mail: one pass at memchr speed
    crs = lfs = pairs = 0
    previous = b""
    for piece in fmt.mapped_pieces(buf, start, end):
        pairs += previous == b"\r" and piece[:1] == b"\n"  # a pair across pieces
        crs += piece.count(b"\r")
        pairs += piece.count(b"\r\n")
        lfs += piece.count(b"\n")
        previous = piece[-1:]
    return b"\r\n" if crs == pairs == lfs else None


class PlainText:
    """Text made of (buffer, start, end) segments, read without joining them, whose
    line ends are all `eol`: LF (the wire form puts a CR before each) or CRLF.

    It offers what imap.mime's parser uses of bytes: len(), slices, find(),
    count() of one byte and startswith(); find and count go through mapped
    segments a piece at a time and let their pages go.
    """

    def __init__(self, segments, eol=b"\n"):
        self.eol = eol
        self.segments, self.offsets, at = segments, [], 0
        for _, start, end in segments:
            self.offsets.append(at)
            at += end - start
        self.length = at

    def __len__(self):
        return self.length

    def _overlapping(self, start, end):
        """(buffer, buffer start, buffer end, offset of buffer position 0) within [start, end)."""
        for (buf, first, last), offset in zip(self.segments, self.offsets):
            base = offset - first
            a, b = max(first, start - base), min(last, end - base)
            if a < b:
                yield buf, a, b, base

    def __getitem__(self, key):
        start, end, step = key.indices(self.length)
        assert step == 1, "only plain slices"
        return b"".join(bytes(buf[a:b]) for buf, a, b, _ in self._overlapping(start, end))

    def find(self, sub, start=0, end=None):
        end = self.length if end is None else min(end, self.length)
        previous = None
        for buf, a, b, base in self._overlapping(start, end):
            if previous is not None and len(sub) > 1:
                # A match across the seam starts within len(sub)-1 octets before it.
                window = max(start, base + a - len(sub) + 1)
                found = self[window:min(end, base + a + len(sub) - 1)].find(sub)
                if found >= 0:
                    return window + found
            found = fmt.find_in_pieces(buf, sub, a, b)
            if found >= 0:
                return base + found
            previous = buf
        return -1

    def count(self, sub, start=0, end=None):
        """How often one octet occurs in [start, end)."""
        assert len(sub) == 1
        end = self.length if end is None else min(end, self.length)
        return sum(_count(buf, sub, a, b) for buf, a, b, _ in self._overlapping(start, end))

    def startswith(self, prefix, start=0, end=None):
        end = self.length if end is None else min(end, self.length)
        return start + len(prefix) <= end and self[start:start + len(prefix)] == prefix

    def wire_size(self, start, end):
        """Octets of [start, end) on the wire, where each line ends in CRLF."""
        return end - start + (self.count(b"\n", start, end) if self.eol == b"\n" else 0)

    def wire_chunks(self, start, end):
        """The wire form of [start, end), in pieces of at most about two SIZE_PIECEs."""
        for buf, a, b, _ in self._overlapping(start, end):
            for piece in fmt.mapped_pieces(buf, a, b):
                yield self.to_wire(piece)

    def to_wire(self, data):
        """Bytes cut from this text, in the wire form."""
        return data.replace(b"\n", b"\r\n") if self.eol == b"\n" else data


class WithoutCRs:
    """buf[start:end] with every CR left out, read a SIZE_PIECE at a time: the LF form
    of a body with mixed line ends. Offsets count the octets without the CRs; all it
    keeps is where each piece of the file begins in them (a number per megabyte)."""

    def __init__(self, buf, start, end):
        self.buf = buf
        self.real = list(range(start, end, fmt.SIZE_PIECE)) + [end]
        self.virtual = array("q", [0])
        for piece in fmt.mapped_pieces(buf, start, end):
            self.virtual.append(self.virtual[-1] + len(piece) - piece.count(b"\r"))

    def __len__(self):
        return self.virtual[-1]

    def _pieces(self, start, end):
        """(offset, text without CRs) of each piece that overlaps [start, end)."""
        index = max(0, bisect.bisect_right(self.virtual, start) - 1)
        while index < len(self.real) - 1 and self.virtual[index] < end:
            a, b = self.real[index], self.real[index + 1]
            text = self.buf[a:b].replace(b"\r", b"")
            fmt.let_go(self.buf, a, b)
            yield self.virtual[index], text
            index += 1

    def __getitem__(self, key):
        start, end, _ = key.indices(len(self))
        return b"".join(text[max(0, start - at):max(0, end - at)]
                        for at, text in self._pieces(start, end))

    def find(self, sub, start, end):
        carry, carry_at = b"", start
        for at, text in self._pieces(start, end):
            lo, hi = max(0, start - at), max(0, min(len(text), end - at))
            window = carry + text[lo:hi]
            found = window.find(sub)
            if found >= 0:
                return carry_at + found
            carry = window[max(0, len(window) - len(sub) + 1):] if len(sub) > 1 else b""
            carry_at = at + hi - len(carry)
        return -1

    def count(self, sub, start, end):
        return sum(text.count(sub, max(0, start - at), max(0, end - at))
                   for at, text in self._pieces(start, end))


def _count(buf, byte, start, end):
    if not isinstance(buf, mmap.mmap):
        return buf.count(byte, start, end)
    # An mmap has no count().
    return sum(piece.count(byte) for piece in fmt.mapped_pieces(buf, start, end))
