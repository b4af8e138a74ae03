"""The connection: fd 0 and fd 1 as inetd hands them over, with TLS and bounded reads.

Reads are line-oriented with a size limit and a timeout; nothing is parsed
here. After a TLS handshake the read buffer starts empty, so bytes a client
pipelined before STARTTLS/STLS are never taken as commands.
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


class LineTooLong(Exception):
    """A line exceeded the limit; it was read to its end and discarded."""


class Transport:
    """Bytes in and out of the client, plain or TLS."""

    def __init__(self, rfd=0, wfd=1):
        self.rfd, self.wfd = rfd, wfd
        self.buffer = bytearray()
        self.tls = None
        self.sock = _socket_on(rfd)
        self.peer, self.local = _addresses(self.sock)

    # -- facts about the link ------------------------------------------

    @property
    def encrypted(self):
        return self.tls is not None

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
        """Handshake as the server; drop anything read before it."""
        if self.sock is None:
            raise TransportError("TLS needs a socket, not a pipe")
        import socket  # ssl wants socket.socket; imported here, not before the greeting

        self.buffer.clear()
        if not isinstance(self.sock, socket.socket):
            self.sock = socket.socket(fileno=self.sock.detach())
        self.sock.setblocking(True)
        try:
            self.tls = context.wrap_socket(self.sock, server_side=True)
        except (OSError, ValueError) as error:
            raise TransportError("TLS handshake failed: %s" % error) from None

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
        ready, _, _ = select.select([self.rfd], [], [], timeout)
        return bool(ready)

    def pending(self):
        """True when a complete line is already buffered (pipelined commands)."""
        return b"\n" in self.buffer

    def _fill(self, timeout):
        if not (self.tls and self.tls.pending()):
            ready, _, _ = select.select([self.rfd], [], [], timeout)
            if not ready:
                raise Timeout()
        try:
            data = self.tls.recv(65536) if self.tls else os.read(self.rfd, 65536)
        except (ConnectionError, OSError) as error:
            raise Disconnected(str(error)) from None
        if not data:
            raise Disconnected("end of input")
        self.buffer += data

    # -- writing --------------------------------------------------------

    def write(self, data):
        """Send all of data, or raise Disconnected."""
        try:
            if self.tls:
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


def _addresses(sock):
    if sock is None:
        return None, None
    try:
        return sock.getpeername(), sock.getsockname()
    except OSError:
        return None, None
