"""mailstore.uidset: a session's recent UIDs as one sorted array."""

from mailstore.uidset import UidSet


def test_answers_as_a_set_of_the_same_uids_would():
    recent = UidSet(range(1, 100001))
    assert len(recent) == 100000 and 1 in recent and 100000 in recent
    assert 0 not in recent and 100001 not in recent
    recent -= {5, 7, 100000}
    assert len(recent) == 99997 and 5 not in recent and 6 in recent
    recent |= [100005, 5, 100002, 6]
    assert len(recent) == 100000 and 5 in recent and 100002 in recent
    assert list(recent)[-3:] == [99999, 100002, 100005]


def test_unordered_or_repeated_uids_are_sorted_once():
    assert list(UidSet([9, 3, 3, 7])) == [3, 7, 9]
    assert UidSet([9, 3, 7]) == {3, 7, 9} and UidSet() == set()
    assert UidSet([3, 9]) != {3} and UidSet([3]) != {4}
    copy = UidSet(UidSet([2, 4]))
    copy |= UidSet([1])
    assert list(copy) == [1, 2, 4]
