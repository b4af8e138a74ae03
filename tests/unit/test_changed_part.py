"""mailstore.mbox._changed_part: a same-size header patch is cut down to the bytes that differ."""

import random

from mailstore.mbox import _changed_part


def test_the_cut_patch_rebuilds_the_new_header_and_starts_and_ends_on_a_difference():
    chooser = random.Random(3)
    for _ in range(5000):
        old = bytes(chooser.randrange(256) for _ in range(chooser.randint(1, 300)))
        new = bytearray(old)
        for _ in range(chooser.randint(1, 3)):
            new[chooser.randrange(len(new))] = chooser.randrange(256)
        new = bytes(new)
        if new == old:
            assert _changed_part(new, old) is None
            continue
        offset, data = _changed_part(new, old)
        assert old[:offset] + data + old[offset + len(data):] == new
        assert data[0] != old[offset] and data[-1] != old[offset + len(data) - 1]


def test_a_status_change_patches_only_its_line():
    old = b"Subject: x\nStatus: O \nX-UID: 7\n\n"
    new = b"Subject: x\nStatus: RO\nX-UID: 7\n\n"
    assert _changed_part(new, old) == (19, b"RO")
