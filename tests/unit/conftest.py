"""Fixtures shared by the unit tests."""

import mmap

import pytest


@pytest.fixture
def mapped(tmp_path):
    """make(data): data written to a file and mapped read-only (data must not be
    empty: an empty file cannot be mapped). The maps are closed afterwards."""
    maps = []

    def make(data):
        path = tmp_path / ("f%d" % len(maps))
        path.write_bytes(data)
        with open(path, "rb") as handle:
            maps.append(mmap.mmap(handle.fileno(), 0, prot=mmap.PROT_READ))
        return maps[-1]

    yield make
    for m in maps:
        m.close()
