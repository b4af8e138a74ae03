"""imap.utf7: modified UTF-7 mailbox names (RFC 3501 §5.1.3), both ways, canonical forms only."""

import pytest

from imap import utf7

PAIRS = [
    ("", b""),
    ("INBOX", b"INBOX"),
    (" !\"#$%'()*+,-./09:;<=>?@AZ[\\]^_`az{|}~", b" !\"#$%'()*+,-./09:;<=>?@AZ[\\]^_`az{|}~"),
    ("&", b"&-"),
    ("a&b&", b"a&-b&-"),
    ("&&", b"&-&-"),
    ("é", b"&AOk-"),
    ("é&", b"&AOk-&-"),
    ("&é", b"&-&AOk-"),
    ("Entwürfe", b"Entw&APw-rfe"),
    ("日本", b"&ZeVnLA-"),
    ("台北日本語", b"&U,BTF2XlZyyKng-"),
    ("~peter/mail/台北/日本語", b"~peter/mail/&U,BTFw-/&ZeVnLIqe-"),
    ("é x é", b"&AOk- x &AOk-"),
    ("\U0001F600", b"&2D3eAA-"),
    ("\x00", b"&AAA-"),
    ("a\tb", b"a&AAk-b"),
    ("\x7f", b"&AH8-"),
    ("Ünïcödé", b"&ANw-n&AO8-c&APY-d&AOk-"),
]


@pytest.mark.parametrize("text, encoded", PAIRS)
def test_encode(text, encoded):
    """encode() gives the one canonical modified UTF-7 form of a name."""
    assert utf7.encode(text) == encoded


@pytest.mark.parametrize("text, encoded", PAIRS)
def test_decode(text, encoded):
    """decode() inverts encode() and accepts the canonical form as valid."""
    assert utf7.decode(encoded) == text
    assert utf7.is_valid(encoded)


INVALID = [
    pytest.param(b"&AGE-", id="printable-ascii-encoded"),
    pytest.param(b"&ACY-", id="ampersand-encoded"),
    pytest.param(b"&AOkAYQ-", id="printable-inside-run"),
    pytest.param(b"&Jjo!", id="no-shift-back"),
    pytest.param(b"&Jjo", id="unterminated-at-end"),
    pytest.param(b"&", id="lone-ampersand"),
    pytest.param(b"a&", id="trailing-ampersand"),
    pytest.param(b"&U,BTFw-&ZeVnLIqe-", id="superfluous-shift"),
    pytest.param(b"\xc3\xa9", id="raw-utf8"),
    pytest.param(b"caf\xe9", id="raw-latin1"),
    pytest.param(b"a\x00b", id="nul"),
    pytest.param(b"a\tb", id="control"),
    pytest.param(b"\x7f", id="delete"),
    pytest.param(b"&AOk=-", id="padding"),
    pytest.param(b"&AOl-", id="non-zero-padding-bits"),
    pytest.param(b"&A-", id="one-char-run"),
    pytest.param(b"&AO-", id="two-char-run"),
    pytest.param(b"&AOkA-", id="four-char-run"),
    pytest.param(b"&AOk/-", id="slash-instead-of-comma"),
    pytest.param(b"&AO k-", id="space-in-run"),
    pytest.param(b"&2D0-", id="lone-high-surrogate"),
    pytest.param(b"&3gA-", id="lone-low-surrogate"),
    pytest.param(b"&3gDYPQ-", id="surrogates-reversed"),
]


@pytest.mark.parametrize("data", INVALID)
def test_invalid_names(data):
    """Malformed or non-canonical modified UTF-7 raises ValueError and is not valid."""
    with pytest.raises(ValueError):
        utf7.decode(data)
    assert not utf7.is_valid(data)


def test_encode_refuses_lone_surrogates():
    """A str holding a lone surrogate cannot be encoded and raises ValueError."""
    with pytest.raises(ValueError):
        utf7.encode("a\ud800b")


def test_round_trip_of_every_bmp_block():
    """Names built from characters across the BMP and beyond decode back to themselves."""
    samples = [chr(code) for code in range(0x80, 0x10000, 251) if not 0xD800 <= code < 0xE000]
    samples += ["\U00010348", "\U0010FFFD"]
    for length in (1, 2, 3, 4, 5):
        text = "x" + "".join(samples[:length]) + "&/" + "".join(samples[-length:])
        assert utf7.decode(utf7.encode(text)) == text
    assert utf7.decode(utf7.encode("".join(samples))) == "".join(samples)
