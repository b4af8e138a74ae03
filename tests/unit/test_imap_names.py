"""imap.names: mailbox names between UTF-8 clients (RFC 9051 §5.1) and the modified UTF-7 store."""

import pytest

from imap import wire
from imap.listpattern import ListPattern
from imap.names import BadName, Utf8Pattern, astring, to_store, to_wire

PAIRS = [
    (b"INBOX", b"INBOX"),
    (b"Sent", b"Sent"),
    ("Entwürfe".encode(), b"Entw&APw-rfe"),
    (b"R&D", b"R&-D"),
    ("日本語/メモ".encode(), b"&ZeVnLIqe-/&MOEw4g-"),
]


@pytest.mark.parametrize("utf8, stored", PAIRS)
def test_round_trip(utf8, stored):
    """A UTF-8 name maps to its modified UTF-7 store name and back."""
    assert to_store(utf8, True) == stored
    assert to_wire(stored, True) == utf8


@pytest.mark.parametrize("utf8, stored", PAIRS)
def test_legacy_clients_unchanged(utf8, stored):
    """Without IMAP4rev2 or UTF8=ACCEPT names pass through as sent."""
    assert to_store(stored, False) == stored
    assert to_wire(stored, False) == stored


def test_normalised_to_nfc():
    """A decomposed name names the same mailbox as the composed one (RFC 9051 §5.1)."""
    assert to_store("Entwu\u0308rfe".encode(), True) == b"Entw&APw-rfe"


def test_invalid_utf8_refused():
    """Bytes that are not UTF-8 are no name for a UTF-8 client."""
    with pytest.raises(BadName):
        to_store(b"Entw\xfcrfe", True)


def test_non_canonical_store_name_goes_as_it_is():
    """A folder another program named with a stray "&" is shown, not dropped."""
    assert to_wire(b"a&b", True) == b"a&b"


def test_response_form():
    """UTF-8 names are quoted for UTF-8 clients; legacy clients never get 8-bit names."""
    assert astring(b"Entw&APw-rfe", True) == '"Entwürfe"'.encode()
    assert astring(b"Entw&APw-rfe", False) == b"Entw&APw-rfe"
    assert wire.string(b"\xff\xfe", utf8=True).startswith(b"{2}")


@pytest.mark.parametrize("pattern, name, matches", [
    ("Entw*", b"Entw&APw-rfe", True),
    ("*ü*", b"Entw&APw-rfe", True),
    ("*üü*", b"Entw&APw-rfe", False),
    ("%", b"&ZeVnLIqe-/&MOEw4g-", False),
    ("日本語/%", b"&ZeVnLIqe-/&MOEw4g-", True),
    ("inbox", b"INBOX", True),
])
def test_utf8_patterns_match_decoded_names(pattern, name, matches):
    """A UTF-8 LIST pattern matches whole characters of the store's names."""
    assert Utf8Pattern(ListPattern(b"", pattern.encode())).matches(name) is matches


def test_utf8_pattern_prefix_and_descent_in_store_form():
    """The folder walk gets the literal prefix and directory tests in store form."""
    pattern = Utf8Pattern(ListPattern(b"", "日本語/%".encode()))
    assert pattern.literal_prefix() == b"&ZeVnLIqe-"
    assert pattern.may_descend(b"&ZeVnLIqe-")
    assert not pattern.may_descend(b"Other")
