"""Which clients the transport counts as local: loopback in every address family, nothing else."""

import socket

import pytest

from server.transport import Transport


def accepted_from(listen_family, listen_address, client_address):
    """(server end, client end) of a TCP connection from client_address to a listener."""
    listener = socket.socket(listen_family)
    if listen_family == socket.AF_INET6:
        listener.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
    with listener:
        listener.bind((listen_address, 0))
        listener.listen()
        client = socket.create_connection((client_address, listener.getsockname()[1]))
        server, _ = listener.accept()
    return server, client


def dual_stack_available():
    try:
        socket.socket(socket.AF_INET6).close()
    except OSError:
        return False
    return socket.has_ipv6


@pytest.mark.skipif(not dual_stack_available(), reason="no IPv6 sockets on this host")
def test_ipv4_client_on_a_dual_stack_socket_is_loopback():
    """An IPv4 loopback client seen as ::ffff:127.0.0.1 (xinetd's `flags = IPv6`) is local."""
    server, client = accepted_from(socket.AF_INET6, "::", "127.0.0.1")
    with server, client:
        transport = Transport(server.fileno(), server.fileno())
        assert transport.peer[0] == "::ffff:127.0.0.1"
        assert transport.is_loopback()
        transport.sock.close()


def test_ipv4_loopback_client_is_local_and_text_names_it():
    """A plain IPv4 loopback client is local, and syslog's host= text is its bracketed address."""
    server, client = accepted_from(socket.AF_INET, "127.0.0.1", "127.0.0.1")
    with server, client:
        transport = Transport(server.fileno(), server.fileno())
        assert transport.is_loopback() and transport.peer_text() == "[127.0.0.1]"
        transport.sock.close()


def test_socketpair_counts_as_local():
    """A Unix socket pair (a local process, as in the tests' inetd stand-in) is local."""
    ours, theirs = socket.socketpair()
    with ours, theirs:
        transport = Transport(theirs.fileno(), theirs.fileno())
        assert transport.is_loopback()
        transport.sock.close()
