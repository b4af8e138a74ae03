"""COMPRESS=DEFLATE (RFC 4978): raw deflate between the session's bytes and TLS or the socket.

Loaded only when a client sends COMPRESS, so zlib costs nothing before the
greeting. The transport calls compress() on everything it writes and
decompress() on everything it reads; TLS, when active, sits below (RFC 4978
§3: compress first, then encrypt).
"""

import zlib

# RFC 4978 §4 and RFC 1951: a window of 2**15 without zlib's header ("raw" deflate).
WINDOW_BITS = -15
# Responses compress well at a middle level; the choice is the server's (RFC 4978 §3).
LEVEL = 6
# At most this many inflated bytes come out of one read, whatever arrived: the
# rest stays compressed in the inflater until the session asks for more, so the
# framer's line and literal limits bound memory exactly as on an uncompressed
# link, and a small deflate bomb cannot expand into memory.
INFLATE_CHUNK = 1 << 16


class CorruptStream(Exception):
    """The client's compressed data does not inflate (or it ended the stream)."""


class Deflate:
    """One connection's pair of deflate streams."""

    def __init__(self):
        self._inflater = zlib.decompressobj(WINDOW_BITS)
        self._deflater = zlib.compressobj(LEVEL, zlib.DEFLATED, WINDOW_BITS)
        # The last read filled its chunk: the inflater may hold more output.
        self._filled = False

    def compress(self, data):
        """data deflated and sync-flushed, so the client can read all of it now."""
        return self._deflater.compress(data) + self._deflater.flush(zlib.Z_SYNC_FLUSH)

    def decompress(self, data):
        """At most INFLATE_CHUNK bytes inflated from what is held back and data."""
        if self._inflater.eof:
            raise CorruptStream("the client ended its deflate stream")
        try:
            out = self._inflater.decompress(self._inflater.unconsumed_tail + data, INFLATE_CHUNK)
        except zlib.error:
            raise CorruptStream("bad deflate data") from None
        self._filled = len(out) == INFLATE_CHUNK
        return out

    def pending(self):
        """True when compressed input is held back that will inflate to more bytes."""
        return self._filled or bool(self._inflater.unconsumed_tail)
