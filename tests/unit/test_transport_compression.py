"""The transport's COMPRESS=DEFLATE layer (RFC 4978) on a real socket pair: raw deflate
both ways, a sync flush per write, bounded inflation and the rejection of bad streams."""

import socket
import threading
import zlib

import pytest

from server.compression import INFLATE_CHUNK
from server.transport import Disconnected, Transport


@pytest.fixture
def link():
    """(server Transport over one end of a socket pair, the client's socket)."""
    ours, theirs = socket.socketpair()
    transport = Transport(ours.fileno(), ours.fileno())
    yield transport, theirs
    ours.close()
    theirs.close()


def deflated(data):
    compressor = zlib.compressobj(9, zlib.DEFLATED, -15)
    return compressor.compress(data) + compressor.flush(zlib.Z_SYNC_FLUSH)


def test_writes_are_raw_deflate_flushed_at_once(link):
    """Each write reaches the client as raw deflate it can inflate completely right away."""
    transport, client = link
    transport.start_compression()
    transport.write(b"* OK first\r\n")
    transport.write(b"* OK second\r\n")
    inflater = zlib.decompressobj(-15)
    received = b""
    while not received.endswith(b"second\r\n"):
        received += inflater.decompress(client.recv(65536))
    assert received == b"* OK first\r\n* OK second\r\n"


def test_reads_inflate_including_bytes_received_before_the_switch(link):
    """Bytes framed after COMPRESS but not yet parsed are inflated with what follows."""
    transport, client = link
    data = deflated(b"a1 NOOP\r\na2 LOGOUT\r\n")
    transport.start_compression(already_read=data[:5])
    client.sendall(data[5:])
    received = b""
    while b"LOGOUT" not in received:
        received += transport.read(5)
    assert received == b"a1 NOOP\r\na2 LOGOUT\r\n"


def test_a_deflate_bomb_inflates_one_bounded_chunk_per_read(link):
    """64 MiB of zeros sent as about 64 KiB of deflate never comes out more than
    INFLATE_CHUNK bytes at a time: the line and literal limits still bound memory."""
    transport, client = link
    transport.start_compression()
    bomb = deflated(b"\0" * (64 << 20))
    sender = threading.Thread(target=client.sendall, args=(bomb,))
    sender.start()
    total, largest = 0, 0
    while total < 64 << 20:
        assert transport.readable(5)
        chunk = transport.read(5)
        largest = max(largest, len(chunk))
        total += len(chunk)
    sender.join()
    assert total == 64 << 20
    assert largest <= INFLATE_CHUNK


def test_corrupt_input_ends_the_connection(link):
    """Bytes that are not deflate data end the connection as a hang-up, not a crash."""
    transport, client = link
    transport.start_compression()
    client.sendall(b"\xff\xff\xff\xff not deflate")
    with pytest.raises(Disconnected):
        transport.read(5)
