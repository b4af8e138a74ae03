"""imap.mime.decoded_pieces decodes a transfer encoding a piece at a time exactly as
the whole-body decoder does, wherever the pieces are cut."""

import base64
import binascii
import random

import pytest

from imap import mime


def cut(rng, data):
    points = sorted(rng.sample(range(len(data) + 1), min(len(data) + 1, rng.randrange(0, 8))))
    return [data[a:b] for a, b in zip([0] + points, points + [len(data)])]


def bodies(rng, encoding):
    raw = bytes(rng.randrange(256) for _ in range(rng.randrange(0, 120)))
    if encoding == b"BASE64":
        text = base64.encodebytes(raw).replace(b"\n", b"\r\n")
        junk = rng.choice([b"", b"!", b" \r\n", b"=", b"==junk", b"A"])  # odd endings
        return text[:rng.randrange(len(text) + 1)] + junk
    text = binascii.b2a_qp(raw, istext=False).replace(b"\n", b"\r\n")
    return text + rng.choice([b"", b"=", b"= \r\n", b"=\r\n", b" \t\r\nx", b"=4"])


@pytest.mark.parametrize("encoding", [b"BASE64", b"QUOTED-PRINTABLE", b"8BIT"])
def test_pieces_decode_as_the_whole_body(encoding):
    rng = random.Random(encoding)
    for _ in range(3000):
        body = bodies(rng, encoding)
        pieces = cut(rng, body)
        assert b"".join(mime.decoded_pieces(iter(pieces), encoding)) == \
            mime.decode(body, encoding), pieces
