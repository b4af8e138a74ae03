"""mailstore.mboxrepair: what counts as damage, and what must never be taken for it."""

import pytest

from mailstore import mboxformat as fmt
from mailstore import mboxrepair

FROM = b"From a@example.org Wed Dec  2 05:53:22 1992\n"


def message(number, body=None, header=b""):
    body = body if body is not None else b"Body %d.\n" % number
    return FROM + b"Subject: %d\n" % number + header + b"\n" + body + b"\n"


def examine(data):
    return mboxrepair.examine(data, now=1700000000)


def test_sound_spool_has_no_findings():
    """An MTA-written spool without metadata is sound and numbered 1..n."""
    exam = examine(message(1) + message(2) + message(3))
    assert exam.findings == []
    assert [p.uid for p in exam.pieces] == [1, 2, 3]


@pytest.mark.parametrize("body", [
    b">From a@example.org Wed Dec  2 05:53:22 1992\nSubject: quoted\n",
    b"He wrote From a@example.org Wed Dec  2 05:53:22 1992\nSubject: inline\n",
    b"\tFrom a@example.org Wed Dec  2 05:53:22 1992\nX: y\n",
])
def test_from_lines_after_quoting_or_space_do_not_split(body):
    """A From_ line after ">", a space or a tab inside a line is text, not a hidden message."""
    exam = examine(message(1, body) + message(2))
    assert len(exam.pieces) == 2 and exam.findings == []


def test_content_length_protects_an_unquoted_from_line():
    """An exact Content-Length keeps a body From_ line inside its message, as the driver does."""
    body = b"line\n" + FROM + b"Subject: not a message\n"
    data = message(1, body, b"Content-Length: %d\n" % len(body)) + message(2)
    assert len(examine(data).pieces) == 2


def test_from_line_glued_after_nul_bytes_starts_a_message():
    """Mail delivered after a zero-filled block is found, and the block is dropped unsaved."""
    exam = examine(message(1) + b"\0" * 64 + message(2))
    assert len(exam.pieces) == 2 and exam.rescued == []
    assert any("debris" in finding for finding in exam.findings)


def test_control_bytes_inside_a_body_are_not_cut_when_text_follows():
    """Only trailing debris is moved out: a control byte followed by text stays in the message."""
    body = b"odd \x01 byte\nmore text\n"
    exam = examine(message(1, body) + message(2))
    assert exam.findings == [] and exam.rescued == []


def test_a_file_without_from_lines_is_not_an_mbox():
    """Nothing to split on: refused rather than turned into rescue data."""
    with pytest.raises(mboxrepair.NoMessages):
        examine(b"some text\nno mail here\n")


def test_render_keeps_visible_text_and_writes_metadata():
    """The repaired message shows the same header and body, with UW's block before the blank line."""
    data = message(1, b"text\n", b"status: RO\n")
    exam = examine(data)
    out = b"".join(mboxrepair.render(data, exam, "host"))
    parsed = fmt.scan(out)
    assert len(parsed) == 1
    assert b"status: RO" not in out and b"X-UID: 1\n" in out
    spans = fmt.visible_spans(parsed[0])
    assert b"".join(out[s:e] for s, e in spans) == b"Subject: 1\n\ntext\n"
