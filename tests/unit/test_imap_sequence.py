"""imap.sequence: sequence sets and UID sets resolved against a mailbox; UID sets written back."""

import pytest

from imap.sequence import SequenceError, format_uid_set, resolve_numbers, resolve_uids

STAR = None
NUMBERS = [
    pytest.param(((1, 1),), 5, [1], id="one"),
    pytest.param(((2, 2), (4, 7), (9, 9), (12, STAR)), 15, [2, 4, 5, 6, 7, 9, 12, 13, 14, 15],
                 id="rfc3501-example"),
    pytest.param(((STAR, 4), (5, 7)), 10, [4, 5, 6, 7, 8, 9, 10], id="rfc3501-star-first"),
    pytest.param(((7, 4),), 10, [4, 5, 6, 7], id="reversed-range"),
    pytest.param(((STAR, STAR),), 3, [3], id="star"),
    pytest.param(((1, STAR),), 1, [1], id="all-of-one"),
    pytest.param(((1, 3), (2, 4)), 5, [1, 2, 3, 4], id="overlap"),
    pytest.param(((1, 2), (3, 3)), 5, [1, 2, 3], id="adjacent"),
    pytest.param(((5, 5), (1, 1), (5, 5)), 5, [1, 5], id="duplicates-unordered"),
]


@pytest.mark.parametrize("seqset, count, expected", NUMBERS)
def test_resolve_numbers(seqset, count, expected):
    """Message sequence sets become sorted, distinct numbers with "*" as the message count."""
    assert resolve_numbers(seqset, count) == expected


OUT_OF_RANGE = [
    pytest.param(((6, 6),), 5, id="beyond-count"),
    pytest.param(((1, 6),), 5, id="range-beyond-count"),
    pytest.param(((4294967295, 1),), 5, id="huge-reversed"),
    pytest.param(((STAR, STAR),), 0, id="star-in-empty-mailbox"),
    pytest.param(((1, STAR),), 0, id="one-in-empty-mailbox"),
]


@pytest.mark.parametrize("seqset, count", OUT_OF_RANGE)
def test_numbers_beyond_the_mailbox_are_errors(seqset, count):
    """A sequence number above the message count (or "*" when empty) raises SequenceError."""
    with pytest.raises(SequenceError):
        resolve_numbers(seqset, count)


LENIENT = [
    pytest.param(((3, 10),), 5, [3, 4, 5], id="clipped"),
    pytest.param(((6, 9),), 5, [], id="entirely-beyond"),
    pytest.param(((STAR, STAR),), 0, [], id="star-in-empty-mailbox"),
    pytest.param(((1, STAR), (7, 7)), 2, [1, 2], id="mixed"),
]


@pytest.mark.parametrize("seqset, count, expected", LENIENT)
def test_lenient_numbers_ignore_what_does_not_exist(seqset, count, expected):
    """With strict=False (SEARCH) numbers beyond the mailbox simply match nothing."""
    assert resolve_numbers(seqset, count, strict=False) == expected


def test_huge_number_range_costs_the_mailbox_size():
    """`1:4294967295` against 100,000 messages resolves without expanding the range."""
    assert resolve_numbers(((1, 4294967295),), 100000, strict=False) == list(range(1, 100001))


UIDS = [2, 4, 6, 8, 10]
UID_SETS = [
    pytest.param(((1, STAR),), [2, 4, 6, 8, 10], id="all"),
    pytest.param(((5, STAR),), [6, 8, 10], id="from-five"),
    pytest.param(((100, STAR),), [10], id="beyond-highest-still-names-highest"),
    pytest.param(((STAR, STAR),), [10], id="star"),
    pytest.param(((STAR, 7),), [8, 10], id="star-first"),
    pytest.param(((3, 3),), [], id="missing-uid"),
    pytest.param(((4, 4), (2, 2)), [2, 4], id="unordered"),
    pytest.param(((9, 3),), [4, 6, 8], id="reversed"),
    pytest.param(((1, 4294967295),), [2, 4, 6, 8, 10], id="everything"),
    pytest.param(((11, 20),), [], id="above-all"),
    pytest.param(((2, 6), (4, 10)), [2, 4, 6, 8, 10], id="overlap"),
    pytest.param(((2, 2), (3, 4)), [2, 4], id="adjacent-indexes"),
]


@pytest.mark.parametrize("seqset, expected", UID_SETS)
def test_resolve_uids(seqset, expected):
    """UID sets name the existing UIDs in their ranges, "*" being the highest UID."""
    assert resolve_uids(seqset, UIDS) == expected


def test_uid_set_in_empty_mailbox_names_nothing():
    """In an empty mailbox every UID set, "*" included, resolves to nothing."""
    assert resolve_uids(((1, STAR), (STAR, STAR)), []) == []


def test_huge_uid_ranges_against_a_large_mailbox():
    """Wide ranges against 100,000 UIDs are found by bisection, once each."""
    uids = list(range(10, 1000010, 10))
    seqset = ((1, 4294967295), (5, STAR), (STAR, STAR), (500000, 1))
    assert resolve_uids(seqset, uids) == uids
    assert resolve_uids(((999995, STAR), (15, 35)), uids) == [20, 30, 1000000]


FORMATS = [
    ([], b""),
    ([5], b"5"),
    ([1, 2, 3, 7, 9, 10, 11, 12], b"1:3,7,9:12"),
    ([1, 3, 5], b"1,3,5"),
    ([1, 1, 2], b"1:2"),
    ([4294967294, 4294967295], b"4294967294:4294967295"),
]


@pytest.mark.parametrize("uids, expected", FORMATS)
def test_format_uid_set(uids, expected):
    """Sorted UIDs are written as the shortest list of ranges (COPYUID, APPENDUID)."""
    assert format_uid_set(uids) == expected
