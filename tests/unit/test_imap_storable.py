"""imap.storable: a literal8 APPEND is stored so that BINARY of each part gives back
exactly what was appended, whatever the store does to NUL, bare CR/LF and From_ lines."""

import pytest

from imap import mime
from imap.storable import Unstorable, storable, survives
from imap.view import wire_form

HEADER = b"Subject: t\r\nContent-Type: application/octet-stream\r\n"


CONTENTS = [
    ("nul", b"a\x00b\r\n"),
    ("bare-lf", b"line\nline\r\n"),
    ("bare-cr", b"x\ry\r\n"),
    ("from-line", b"ok\r\nFrom here\r\n"),
    ("no-final-crlf", b"\xff\xfe"),
    ("all-octets", bytes(range(256))),
]


@pytest.mark.parametrize("content", [c for _, c in CONTENTS], ids=[i for i, _ in CONTENTS])
def test_single_part_round_trip(content):
    """A single-part binary body is re-encoded and BINARY[1] of the stored form is the content."""
    message = HEADER + b"Content-Transfer-Encoding: binary\r\n\r\n" + content
    stored = storable(message)
    header = stored[:stored.index(b"\r\n\r\n")]
    assert header.lower().count(b"content-transfer-encoding") == 1
    assert b"Content-Transfer-Encoding: base64" in header
    assert survives(stored, True)
    # The stores keep LF line ends and hand out the wire form: BINARY sees the same octets.
    assert mime.binary(wire_form(stored.replace(b"\r\n", b"\n")), (1,)) == content


def test_multipart_only_the_unsafe_part_is_reencoded():
    """A text part that survives storage stays as sent; the binary one becomes base64."""
    message = (b"Content-Type: multipart/mixed; boundary=q\r\n\r\n--q\r\n\r\nkeep me\r\n"
               b"--q\r\nContent-Transfer-Encoding: 8bit\r\n\r\n\x00\x01\r\n--q--\r\n")
    stored = storable(message)
    assert b"\r\n\r\nkeep me\r\n--q\r\n" in stored
    assert mime.binary(stored, (2,)) == b"\x00\x01"
    assert mime.binary(stored, (1,)) == b"keep me"


def test_safe_messages_are_stored_as_sent():
    """A literal8 without anything the store would change is kept byte for byte."""
    message = HEADER + b"Content-Transfer-Encoding: binary\r\n\r\n\xc3\xa9t\xc3\xa9\r\n"
    assert storable(message) is message


def test_an_encoded_part_that_would_not_survive_is_decoded_and_reencoded():
    """A quoted-printable part with a NUL in its text is stored as base64 of its decoded content."""
    message = HEADER + b"Content-Transfer-Encoding: quoted-printable\r\n\r\na=3Db\x00\r\n"
    assert mime.binary(storable(message), (1,)) == b"a=b\x00\r\n"


@pytest.mark.parametrize("message", [
    b"Subject: \x00\r\n\r\nbody\r\n",
    HEADER + b"Content-Transfer-Encoding: x-unknown\r\n\r\n\x00",
], ids=["nul-in-header", "unknown-encoding"])
def test_unstorable(message):
    """NUL outside part content, or an undecodable part that must change, is refused."""
    with pytest.raises(Unstorable):
        storable(message)
