"""The connection: fd 0 and fd 1 as inetd hands them over, with TLS and bounded reads.

Reads are line-oriented with a size limit and a timeout; nothing is parsed
here. After a TLS handshake the read buffer starts empty, so bytes a client
pipelined before STARTTLS/STLS are never taken as commands. IMAP's COMPRESS
(RFC 4978) adds a deflate layer above TLS (server.compression).
"""

import _socket
import os
import select


class TransportError(Exception):
    """The connection cannot go on."""


class Disconnected(TransportError):
    """The client closed the connection."""


class Timeout(TransportError):
    """The client sent nothing within the allowed time."""


class HandshakeFailed(TransportError):
    """The TLS handshake did not complete: a refused protocol or cipher, garbage, or silence."""


class LineTooLong(Exception):
    """A line exceeded the limit; it was read to its end and discarded."""


class Transport:
    """Bytes in and out of the client, plain or TLS."""

    def __init__(self, rfd=0, wfd=1):
        self.rfd, self.wfd = rfd, wfd
        self.buffer = bytearray()
        self.tls = None
        # Seconds a TLS handshake may take; the entry point sets it from the
        # pre-login timeout, since a client that never finishes must not hold
        # the process forever.
        self.handshake_timeout = None
        self.compression = None
        self.sock = _socket_on(rfd)
        self.peer, self.local = _addresses(self.sock)

    # -- facts about the link ------------------------------------------

    @property
    def encrypted(self):
        return self.tls is not None

    @property
    def compressing(self):
        return self.compression is not None

    @property
    def local_port(self):
        return self.local[1] if self.local else None

    def is_loopback(self):
        """True for a loopback peer, or for pipes and Unix sockets (local processes)."""
        if self.sock is None or self.sock.family == _socket.AF_UNIX:
            return True
        import ipaddress

        try:
            address = ipaddress.ip_address(self.peer[0].split("%")[0])
        except (ValueError, TypeError, IndexError):
            return False
        # xinetd's `flags = IPv6` shows an IPv4 client as ::ffff:a.b.c.d, which
        # Python before 3.13 never counts as loopback.
        mapped = getattr(address, "ipv4_mapped", None)
        return (mapped or address).is_loopback

    def peer_text(self):
        """The client as UW writes it in syslog: `[1.2.3.4]`."""
        if self.sock is None or not self.peer:
            return "[local]"
        return "[%s]" % self.peer[0]

    # -- TLS ------------------------------------------------------------

    def start_tls(self, context):
        """Handshake as the server; drop anything read before it. HandshakeFailed if it fails."""
        if self.sock is None:
            raise TransportError("TLS needs a socket, not a pipe")
        import socket  # ssl wants socket.socket; imported here, not before the greeting

        self.buffer.clear()
        if not isinstance(self.sock, socket.socket):
            self.sock = socket.socket(fileno=self.sock.detach())
        self.sock.settimeout(self.handshake_timeout)
        try:
            self.tls = context.wrap_socket(self.sock, server_side=True)
        except (OSError, ValueError) as error:
            raise HandshakeFailed(_handshake_reason(error)) from None

    # -- COMPRESS ---------------------------------------------------------

    def start_compression(self, already_read=b""):
        """Deflate from now on, both ways (RFC 4978 §3).

        already_read: bytes the caller received after the COMPRESS command and
        had not parsed yet; they are compressed input like what follows.
        """
        from server.compression import Deflate

        self.compression = Deflate()
        if already_read or self.buffer:
            self.buffer = bytearray(self._inflate(bytes(self.buffer) + already_read))

    def _inflate(self, data):
        from server.compression import CorruptStream

        try:
            return self.compression.decompress(data)
        except CorruptStream as error:
            raise Disconnected(str(error)) from None

    # -- reading --------------------------------------------------------

    def readline(self, limit, timeout):
        """One line without its CRLF or LF; LineTooLong after discarding an over-long one."""
        too_long = False
        while True:
            newline = self.buffer.find(b"\n")
            if newline >= 0:
                line = bytes(self.buffer[:newline])
                del self.buffer[:newline + 1]
                if too_long or len(line) > limit:
                    raise LineTooLong()
                return line[:-1] if line.endswith(b"\r") else line
            if len(self.buffer) > limit:
                too_long = True
                self.buffer.clear()
            self._fill(timeout)

    def read(self, timeout):
        """The bytes available now (at least one), for callers that frame input themselves."""
        if not self.buffer:
            self._fill(timeout)
        data = bytes(self.buffer)
        self.buffer.clear()
        return data

    def readable(self, timeout):
        """True when input is buffered or arrives within timeout (IDLE's wait)."""
        if self.buffer or (self.tls and self.tls.pending()):
            return True
        if self.compression and self.compression.pending():
            return True
        ready, _, _ = select.select([self.rfd], [], [], timeout)
        return bool(ready)

    def pending(self):
        """True when a complete line is already buffered (pipelined commands)."""
        return b"\n" in self.buffer

    def _fill(self, timeout):
        """Add at least one byte to the buffer (inflated ones when compressing)."""
        while True:
            if self.compression is None:
                self.buffer += self._receive(timeout)
                return
            held_back = self.compression.pending()
            data = self._inflate(b"" if held_back else self._receive(timeout))
            if data:
                self.buffer += data
                return
            # A deflate block can carry no output (an empty sync flush): read on.

    def _receive(self, timeout):
        """The next bytes from the socket or TLS, waiting at most timeout seconds."""
        try:
            data = self._receive_tls(timeout) if self.tls else self._receive_plain(timeout)
        except OSError as error:
            raise Disconnected(str(error)) from None
        if not data:
            raise Disconnected("end of input")
        return data

    def _receive_plain(self, timeout):
        ready, _, _ = select.select([self.rfd], [], [], timeout)
        if not ready:
            raise Timeout()
        return os.read(self.rfd, 65536)

    def _receive_tls(self, timeout):
        # The timeout is on the socket, not a select() before recv(): a client
        # that sends part of a TLS record would otherwise block recv() for good.
        self.tls.settimeout(timeout)
        try:
            return self.tls.recv(65536)
        except TimeoutError:
            raise Timeout() from None

    # -- writing --------------------------------------------------------

    def write(self, data):
        """Send all of data, or raise Disconnected."""
        if self.compression:
            data = self.compression.compress(data)
        try:
            if self.tls:
                self.tls.settimeout(None)  # writes wait as plain os.write() does
                self.tls.sendall(data)
                return
            view = memoryview(data)
            while view:
                view = view[os.write(self.wfd, view):]
        except OSError as error:
            raise Disconnected("client went away: %s" % error) from None


def _socket_on(fd):
    """A socket object for fd when it is one (inetd), else None (pipes).

    The C module's socket: `socket` itself imports enum and selectors, a few
    milliseconds of every connection's start-up before the greeting.
    """
    try:
        sock = _socket.socket(fileno=os.dup(fd))
    except OSError:
        return None
    try:
        sock.getsockname()
    except OSError:
        sock.close()
        return None
    return sock


def _handshake_reason(error):
    """Why a handshake failed, in words for syslog: OpenSSL's reason code, or the OS error."""
    if isinstance(error, TimeoutError):
        return "timed out"
    return getattr(error, "reason", None) or getattr(error, "strerror", None) or str(error)


def _addresses(sock):
    if sock is None:
        return None, None
    try:
        return sock.getpeername(), sock.getsockname()
    except OSError:
        return None, None
