"""mailstore.mboxformat: searches and sizes over a mapped file done a piece at a time
(so a huge body is never copied or kept resident) answer exactly as one pass would."""

import mmap
import random

from mailstore import mboxformat as fmt


def random_mail_bytes(rng, length):
    alphabet = [b"\n", b"\r", b"From ", b"\n\n", b"\n\r\n", b"x", b"y z"]
    parts, size = [], 0
    while size < length:
        part = rng.choice(alphabet)
        parts.append(part)
        size += len(part)
    return b"".join(parts)


def test_pieces_answer_as_one_pass_at_every_boundary(mapped, monkeypatch):
    monkeypatch.setattr(fmt, "SIZE_PIECE", 7)  # every pattern straddles some boundary
    rng = random.Random(3)
    for _ in range(30):
        data = random_mail_bytes(rng, 400)
        buf = mapped(data)
        for _ in range(40):
            start = rng.randrange(0, len(data))
            end = rng.randrange(start, len(data) + 1)
            for pattern in (b"\nFrom ", b"\n\n", b"\n\r\n"):
                assert fmt.find_in_pieces(buf, pattern, start, end) == data.find(pattern, start, end)
            expected = len(data[start:end]) - data[start:end].count(b"\r") \
                + data[start:end].count(b"\n")
            assert fmt.crlf_size(buf, start, end) == expected
        assert fmt.next_boundary(buf, 0) == fmt.next_boundary(data, 0)
        assert fmt.header_end(buf, 0, len(data)) == fmt.header_end(data, 0, len(data))


def test_a_search_through_a_large_body_keeps_few_pages(mapped):
    body = (b"a line of a very long body, with no message start in it\n" * 40000)
    buf = mapped(b"From a@b Thu Nov 26 10:00:00 2026\nSubject: x\n\n" + body * 4 +
                 b"\nFrom a@b Thu Nov 26 10:00:01 2026\n\nshort\n")

    def resident_kb():
        for line in open("/proc/self/status"):
            if line.startswith("RssFile"):
                return int(line.split()[1])

    before = resident_kb()
    assert fmt.next_boundary(buf, 1) == len(buf) - len(b"From a@b Thu Nov 26 10:00:01 2026\n\nshort\n")
    assert fmt.crlf_size(buf, 0, len(buf)) > len(body) * 4
    # The body is 9 MB; what stays mapped is about a piece.
    assert resident_kb() - before < 4096


def test_pages_of_a_freshly_written_file_are_let_go_from_any_offset(tmp_path):
    """A file just written in 1 MB writes (as a journal is applied) sits in
    large page-cache folios, and a fault maps a whole folio: releasing only
    the searched range, from an offset inside one, left half of every folio
    resident (50 MB for a 100 MB message parsed right after a COPY wrote it)."""
    body = b"no message starts anywhere in this long body line, only text\n" * 700000
    data = b"From a@b Thu Nov 26 10:00:00 2026\n\n" + body
    with open(tmp_path / "fresh", "w+b", buffering=0) as handle:
        for at in range(0, len(data), 1 << 20):
            handle.write(data[at:at + (1 << 20)])
        buf = mmap.mmap(handle.fileno(), 0, prot=mmap.PROT_READ)
    start = 1000003  # inside a folio, as a message's header is

    before = _resident_kb()
    assert fmt.find_in_pieces(buf, b"\nFrom ", start, len(buf)) == -1
    assert fmt.crlf_size(buf, start, len(buf)) == len(data) - start + data.count(b"\n", start)
    assert len(data) > 40 << 20
    assert _resident_kb() - before < 4096
    buf.close()


def _resident_kb():
    for line in open("/proc/self/status"):
        if line.startswith("RssFile"):
            return int(line.split()[1])
