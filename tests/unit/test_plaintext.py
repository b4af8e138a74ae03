"""imap.plaintext.PlainText answers as the bytes it stands for would, across the
seams between its segments and the pieces its mapped segments are read in."""

import random

from imap.plaintext import PlainText
from mailstore import mboxformat as fmt


def random_text(rng, length):
    return b"".join(rng.choice([b"\n", b"-", b"--b", b"a", b"\n\n"]) for _ in range(length))


def test_plain_text_answers_as_its_bytes(mapped, monkeypatch):
    monkeypatch.setattr(fmt, "SIZE_PIECE", 5)  # patterns straddle pieces, too
    rng = random.Random(11)
    for _ in range(300):
        segments, whole = [], b""
        for _ in range(rng.randrange(1, 4)):
            data = random_text(rng, rng.randrange(0, 12))
            start = rng.randrange(0, len(data) + 1)
            end = rng.randrange(start, len(data) + 1)
            buf = mapped(data) if data and rng.random() < 0.5 else data
            segments.append((buf, start, end))
            whole += data[start:end]
        text = PlainText(segments)
        assert len(text) == len(whole)
        for a, b in windows(rng, whole):
            assert_reads_as(text, whole, a, b)
            for sub in SUBS:
                assert text.startswith(sub, a, b) == whole.startswith(sub, a, b)
            assert text.wire_size(a, b) == len(whole[a:b].replace(b"\n", b"\r\n"))
            assert b"".join(text.wire_chunks(a, b)) == whole[a:b].replace(b"\n", b"\r\n")


def test_without_crs_answers_as_the_bytes_without_their_crs(mapped, monkeypatch):
    from imap.plaintext import WithoutCRs

    monkeypatch.setattr(fmt, "SIZE_PIECE", 5)
    rng = random.Random(12)
    for _ in range(200):
        data = b"".join(rng.choice([b"\r", b"\r\n", b"\n", b"-", b"--b", b"a\r\r"])
                        for _ in range(rng.randrange(0, 25)))
        start = rng.randrange(0, len(data) + 1)
        end = rng.randrange(start, len(data) + 1)
        text = WithoutCRs(mapped(data), start, end) if data else WithoutCRs(data, 0, 0)
        whole = data[start:end].replace(b"\r", b"")
        assert len(text) == len(whole)
        for a, b in windows(rng, whole):
            assert_reads_as(text, whole, a, b)


SUBS = (b"\n", b"\n\n", b"--b", b"\n--b", b"a\n-")


def windows(rng, whole, count=20):
    """count random (start, end) ranges within whole."""
    for _ in range(count):
        a = rng.randrange(0, len(whole) + 1)
        yield a, rng.randrange(a, len(whole) + 1)


def assert_reads_as(text, whole, a, b):
    """text answers slices, find() and count() on [a, b) as the bytes whole does."""
    assert text[a:b] == whole[a:b]
    for sub in SUBS:
        assert text.find(sub, a, b) == whole.find(sub, a, b), (sub, a, b)
    assert text.count(b"\n", a, b) == whole.count(b"\n", a, b)
