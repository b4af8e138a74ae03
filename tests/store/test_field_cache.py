"""The field cache's rewrites: merged runs of stored values and new ones, forgetting, the spill bound."""

import marshal

from hypothesis import given, settings
from hypothesis import strategies as st

from mailstore import fieldcache

KINDS = ("date", "envelope", "bodystructure")
UIDS = 12

# One step on a cache: compute a value, forget UIDs, keep only some UIDs, or save.
_steps = st.lists(st.one_of(
    st.tuples(st.just("get"), st.integers(1, UIDS), st.sampled_from(KINDS)),
    st.tuples(st.just("forget"), st.sets(st.integers(1, UIDS), max_size=3)),
    st.tuples(st.just("keep"), st.sets(st.integers(1, UIDS), min_size=UIDS - 4)),
    st.tuples(st.just("save"),)), max_size=60)


def _value(uid, kind, generation):
    return (kind, uid, b"v%d" % generation * (uid % 7))


@settings(max_examples=200, deadline=None)
@given(steps=_steps, spill=st.sampled_from([60, 400, 1 << 30]))
def test_cache_matches_a_dict_through_saves_and_spills(tmp_path_factory, steps, spill):
    """Whatever order values are computed, forgotten and saved in, a fresh cache reads back
    exactly the values a plain dict kept: the merged rewrite drops and places none wrongly."""
    path = str(tmp_path_factory.mktemp("cache") / "cache")
    original, fieldcache.SPILL_BYTES = fieldcache.SPILL_BYTES, spill
    try:
        cache, model = fieldcache.FieldCache(path, 7), {}
        for generation, step in enumerate(steps):
            if step[0] == "get":
                _, uid, kind = step
                value = cache.get(uid, kind, lambda: _value(uid, kind, generation))
                assert value == model.setdefault((uid, kind), _value(uid, kind, generation))
            elif step[0] == "forget":
                cache.forget(step[1])
                model = {key: value for key, value in model.items() if key[0] not in step[1]}
            elif step[0] == "keep":
                cache.keep_only(uid for uid in range(1, UIDS + 1) if uid in step[1])
                model = {key: value for key, value in model.items() if key[0] in step[1]}
            else:
                cache.save()
        cache.save()
    finally:
        fieldcache.SPILL_BYTES = original
    reread = fieldcache.FieldCache(path, 7)
    assert sorted(reread.keys()) == sorted(model)
    for (uid, kind), value in model.items():
        assert reread.get(uid, kind, lambda: None) == value


def test_unsaved_values_never_exceed_the_spill_bound(tmp_path, monkeypatch):
    """A first FETCH of many envelopes holds at most SPILL_BYTES of new values in memory."""
    monkeypatch.setattr(fieldcache, "SPILL_BYTES", 2000)
    cache = fieldcache.FieldCache(str(tmp_path / "cache"), 7)
    value_size = len(marshal.dumps(b"x" * 300))
    for uid in range(1, 201):
        cache.get(uid, "envelope", lambda: b"x" * 300)
        assert sum(len(cache._new[key]) for key in cache._new) < 2000
    assert sum(len(cache._new[key]) for key in cache._new) < 2000 + value_size
    assert len(cache._keys) > 150  # the rest is in the file, readable through the map
    assert cache.get(1, "envelope", lambda: b"computed again") == b"x" * 300


def test_keep_only_walks_an_ascending_iterator(tmp_path):
    """keep_only takes the mailbox's UIDs as a one-pass ascending iterator, stored and new alike."""
    path = str(tmp_path / "cache")
    cache = fieldcache.FieldCache(path, 7)
    for uid in (2, 4, 6, 8):
        cache.get(uid, "date", lambda uid=uid: uid)
    cache.save()
    cache.get(9, "date", lambda: 9)
    cache.get(10, "envelope", lambda: 10)
    cache.keep_only(iter([1, 4, 8, 10, 11]))
    cache.save()
    assert sorted(fieldcache.FieldCache(path, 7).keys()) == [(4, "date"), (8, "date"),
                                                            (10, "envelope")]


def test_a_value_computed_after_forget_goes_with_the_next_forget(tmp_path):
    """A UID forgotten, computed again, then left out of keep_only keeps no value in the file."""
    path = str(tmp_path / "cache")
    cache = fieldcache.FieldCache(path, 7)
    cache.forget([3])
    cache.get(3, "date", lambda: 3)
    cache.keep_only(iter([1, 2, 4]))
    cache.save()
    assert list(fieldcache.FieldCache(path, 7).keys()) == []


def test_a_cut_or_foreign_file_is_an_empty_cache(tmp_path):
    """Every prefix of a saved file, an old format and garbage: values are computed
    again (or read intact), never an exception or a wrong value."""
    path = tmp_path / "cache"
    cache = fieldcache.FieldCache(str(path), 7)
    for uid in range(1, 41):
        cache.get(uid, "envelope", lambda uid=uid: ("env", uid))
    cache.save()
    whole = path.read_bytes()
    for cut in list(range(0, 64)) + list(range(64, len(whole), 37)):
        path.write_bytes(whole[:cut])
        cut_cache = fieldcache.FieldCache(str(path), 7)
        assert cut_cache.get(40, "envelope", lambda: ("env", 40)) == ("env", 40)
        assert cut_cache.get(1, "envelope", lambda: ("env", 1)) == ("env", 1)
    path.write_bytes(marshal.dumps((2, 7, ["envelope"], b"", b"\0" * 8)))  # format 2
    assert fieldcache.FieldCache(str(path), 7).get(1, "envelope", lambda: "new") == "new"
    path.write_bytes(marshal.dumps((fieldcache.FORMAT, 7, ["envelope"], -5)) + b"x" * 99)
    assert fieldcache.FieldCache(str(path), 7).get(1, "envelope", lambda: "new") == "new"
