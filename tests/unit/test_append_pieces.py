"""mboxformat.append_pieces renders a message handed over in pieces exactly as
the whole text would be rendered, wherever the pieces are cut."""

import random
import re

import pytest

from mailstore import mboxformat as fmt
from mailstore import text as spooling


def rendered_whole(data, from_line, message):
    """The rendering, written out for a whole text: the specification."""
    text = data.replace(b"\r\n", b"\n").replace(b"\0", b"\x80")
    split = text.find(b"\n\n")
    if text.startswith(b"\n"):
        header, body = b"", text[1:]
    elif split < 0:
        header, body = text + (b"" if text.endswith(b"\n") else b"\n"), b""
    else:
        header, body = text[:split + 1], text[split + 2:]
    header = re.sub(rb"(?im)^(status|x-status|x-keywords|x-uid|x-imapbase|x-imap):",
                    lambda m: b"X-Original-" + m.group(1) + b":", header)
    body = re.sub(rb"(?m)^From ", b">From ", body)
    if body and not body.endswith(b"\n"):
        body += b"\n"
    return from_line + b"\n" + header + fmt.status_block(message, message.keywords) + b"\n" + body + b"\n"


def flagged_message():
    message = fmt.Message(0, 0, 0, 0, ())
    message.uid, message.flags, message.keywords = 7, fmt.SEEN, ()
    return message


def cut(rng, data):
    points = sorted(rng.sample(range(len(data) + 1), min(len(data) + 1, rng.randrange(0, 6))))
    return [data[a:b] for a, b in zip([0] + points, points + [len(data)])]


@pytest.mark.parametrize("piece", [16, 23, 64])
def test_pieces_render_as_the_whole_text(monkeypatch, piece):
    # Long lines are cut inside, too; a piece holds at least a header name or "From ".
    monkeypatch.setattr(spooling, "PIECE", piece)
    alphabet = [b"\r", b"\n", b"\r\n", b"From ", b"Status: RO", b"X-UID: 3", b"a", b"\0", b" "]
    rng = random.Random(piece)
    message = flagged_message()
    for _ in range(4000):
        data = b"".join(rng.choice(alphabet) for _ in range(rng.randrange(0, 40)))
        chunks = cut(rng, data)
        got = b"".join(fmt.append_pieces(chunks, b"From u@h Thu Nov 26 10:00:00 2026", message))
        assert got == rendered_whole(data, b"From u@h Thu Nov 26 10:00:00 2026", message), chunks


def test_lf_pieces_end_at_line_ends_and_join_to_the_whole(monkeypatch):
    monkeypatch.setattr(spooling, "PIECE", 16)
    rng = random.Random(5)
    for _ in range(2000):
        data = b"".join(rng.choice([b"\r", b"\n", b"\r\n", b"abcdefgh"]) for _ in range(30))
        pieces = list(spooling.lf_pieces(cut(rng, data)))
        assert b"".join(pieces) == data.replace(b"\r\n", b"\n")
        for piece in pieces[:-1]:
            assert piece.endswith(b"\n") or len(piece) >= 15
