"""FETCH/STORE/COPY targets: (number, UID) pairs made lazily from spans, the same on every pass."""

from imap.sequence import number_spans, uid_position_spans
from imap.view import Targets

STAR = None
UIDS = [3, 5, 8, 13, 21, 34]


def test_targets_by_number_name_each_message_once_in_order():
    """`4,1:2,2` by number gives (1,3),(2,5),(4,13), and a second pass gives the same."""
    spans = [(low - 1, high - 1) for low, high in number_spans(((4, 4), (1, 2), (2, 2)), len(UIDS))]
    targets = Targets(UIDS, spans)
    assert list(targets) == [(1, 3), (2, 5), (4, 13)]
    assert list(targets) == [(1, 3), (2, 5), (4, 13)]
    assert len(targets) == 3 and targets


def test_targets_by_uid_carry_the_message_numbers():
    """UID `6:21,30:*` names UIDs 8, 13, 21 and 34 with their numbers 3, 4, 5 and 6."""
    targets = Targets(UIDS, uid_position_spans(((6, 21), (30, STAR)), UIDS))
    assert list(targets) == [(3, 8), (4, 13), (5, 21), (6, 34)]


def test_targets_that_name_nothing_are_empty_and_false():
    """A UID set beyond every message yields nothing, and `if targets` is false."""
    targets = Targets(UIDS, uid_position_spans(((100, 200),), UIDS))
    assert list(targets) == [] and len(targets) == 0 and not targets
