"""ipop3d's NumberSet: the per-message marks of a POP3 session, one byte per message."""

from pop3 import session as ipop3d


def test_number_set_behaves_as_a_set_of_message_numbers():
    """add, membership, size, ascending iteration, highest and clear agree with a set."""
    numbers = ipop3d.NumberSet(10, [7, 3, 7])
    numbers.add(10)
    assert len(numbers) == 3 and list(numbers) == [3, 7, 10] and numbers.highest() == 10
    assert 3 in numbers and 4 not in numbers
    assert 0 not in numbers and 11 not in numbers and -1 not in numbers  # outside 1..size
    numbers.clear()
    assert len(numbers) == 0 and list(numbers) == [] and numbers.highest() == 0
    numbers.add(1)
    assert list(numbers) == [1] and numbers.highest() == 1
