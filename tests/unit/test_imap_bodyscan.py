"""imap.bodyscan: the raw-bytes verdict for SEARCH BODY never disagrees with the full `email` search."""

import base64
import sys
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from imap import bodyscan
from imap.search import _body_texts, _header_end

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))
import corpus  # noqa: E402  (bench/corpus.py: the benchmark's realistic messages)


def crlf(text):
    return text.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")


def reference(data, needle):
    """What imap.search decides with `email`: the needle in the raw or a decoded text part."""
    return any(needle in text.casefold() for text in _body_texts(data))


def verdict(data, needle):
    return bodyscan.body_verdict(data, _header_end(data), bodyscan.ascii_needle(needle))


def single(headers, body):
    return crlf(b"Subject: x\n" + headers + b"\n" + body)


def multipart(*parts):
    text = b"Subject: x\nMIME-Version: 1.0\nContent-Type: multipart/mixed; boundary=\"b\"\n\n"
    for headers, body in parts:
        text += b"--b\n" + headers + b"\n" + body + b"\n"
    return crlf(text + b"--b--\n")


# Messages whose text holds the needle only once decoded or case-folded: the
# fast path must not say "no match" for any of them.
HIDDEN = [
    ("qp soft break", single(b"Content-Transfer-Encoding: quoted-printable\n",
                             b"the quokka=\nfeather\n"), "quokkafeather"),
    ("qp escape", multipart((b"Content-Type: text/plain\nContent-Transfer-Encoding: quoted-printable\n",
                             b"=71uokkafeather\n")), "quokkafeather"),
    ("base64 text part", multipart((b"Content-Type: text/plain\nContent-Transfer-Encoding: base64\n",
                                    base64.b64encode(b"a quokkafeather here") + b"\n")),
     "quokkafeather"),
    ("base64 without type", single(b"Content-Transfer-Encoding: base64\n",
                                   base64.b64encode(b"quokkafeather") + b"\n"), "quokkafeather"),
    ("latin-1 sharp s", single(b"Content-Type: text/plain; charset=iso-8859-1\n", b"Stra\xdfe\n"),
     "strasse"),
    ("qp latin-1 sharp s", single(b"Content-Type: text/plain; charset=iso-8859-1\n"
                                  b"Content-Transfer-Encoding: quoted-printable\n", b"Stra=DFe\n"),
     "strasse"),
    ("utf-8 sharp s", single(b"Content-Type: text/plain; charset=utf-8\n", b"Stra\xc3\x9fe\n"),
     "strasse"),
    ("utf-8 kelvin sign", single(b"", b"\xe2\x84\xaaelvin\n"), "kelvin"),
    ("utf-8 ligature", single(b"Content-Type: text/plain; charset=utf-8\n"
                              b"Content-Transfer-Encoding: quoted-printable\n", b"=EF=AC=81le\n"),
     "file"),
    ("utf-7", single(b"Content-Type: text/plain; charset=utf-7\n", b"+AHE-uokka\n"), "quokka"),
    ("utf-7 quoted, rfc 2231", single(b"Content-Type: text/plain; charset*=us-ascii''utf-7\n",
                                      b"+AHE-uokka\n"), "quokka"),
    ("unicode escape", single(b"Content-Type: text/plain; charset=\"unicode_escape\"\n",
                              b"\\x71uokka\n"), "quokka"),
    ("uuencode", single(b"Content-Transfer-Encoding: x-uuencode\n",
                        b"begin 644 x\n-<75O:VMA9F5A=&AE<@``\n`\nend\n"), "quokkafeather"),
]


@pytest.mark.parametrize("name, data, needle", HIDDEN, ids=[case[0] for case in HIDDEN])
def test_text_that_only_decoding_reveals_is_never_ruled_out(name, data, needle):
    """Each case matches under `email`, and the fast path says match or undecided, never no."""
    assert reference(data, needle.casefold())
    assert verdict(data, needle.casefold()) in (True, None)


def test_plain_message_is_decided_without_email():
    """A plain ASCII message gets a definite answer both ways from the raw bytes."""
    data = single(b"Content-Type: text/plain; charset=us-ascii\n", b"Hello Quokka\n")
    assert verdict(data, "quokka") is True
    assert verdict(data, "wombat") is False


def test_needle_in_the_header_only_is_not_a_body_match():
    """BODY looks at the body: a word only in the header is no match."""
    data = single(b"X-Word: quokka\n", b"nothing here\n")
    assert verdict(data, "quokka") is False and not reference(data, "quokka")


def test_binary_attachment_is_not_decoded_but_text_beside_it_is_decided():
    """base64 in a non-text part cannot hide text, so the verdict stays definite."""
    data = multipart((b"Content-Type: text/plain\n", b"see attached\n"),
                     (b"Content-Type: application/octet-stream\nContent-Transfer-Encoding: base64\n",
                      base64.b64encode(b"quokka") + b"\n"))
    assert verdict(data, "quokka") is False and not reference(data, "quokka")


def corpus_messages(count=400):
    return [crlf(message) for _, _, _, message in corpus.messages(count, seed=3)]


NEEDLES = ["quokkafeather", "the", "und", "ss", "strasse", "k", "html", "=3d", "charset",
           "base64", "grüße", "caf", "from ", "zzzznotthere"]


def test_corpus_verdicts_agree_with_email_and_most_are_decided():
    """On the benchmark's realistic messages every definite verdict equals `email`'s answer."""
    decided = total = 0
    for data in corpus_messages():
        for needle in NEEDLES:
            needle = needle.casefold()
            if bodyscan.ascii_needle(needle) is None:
                continue
            total += 1
            fast = verdict(data, needle)
            if fast is not None:
                decided += 1
                assert fast == reference(data, needle), (needle, data[:400])
    assert decided > total * 0.8


TEXTS = st.sampled_from([b"quokka", b"QUOKKA", b"quo", b"kka", b"=\n", b"=71", b"=DF", b"\xdf",
                         b"\xc3\x9f", b"\xe2\x84\xaa", b"ss", b" ", b"\n", b"base64",
                         b"charset=utf-8", b"charset=iso-8859-1", b"+AHE-", b"\\x71"])
HEADERS = st.sampled_from([b"", b"Content-Type: text/plain; charset=utf-8\n",
                           b"Content-Type: text/plain; charset=iso-8859-1\n",
                           b"Content-Transfer-Encoding: quoted-printable\n",
                           b"Content-Type: text/plain; charset=iso-8859-1\n"
                           b"Content-Transfer-Encoding: quoted-printable\n",
                           b"Content-Type: application/pdf\nContent-Transfer-Encoding: base64\n"])


@settings(max_examples=400, deadline=None)
@given(st.lists(st.tuples(HEADERS, st.lists(TEXTS, max_size=12).map(b"".join)),
                min_size=1, max_size=3),
       st.sampled_from(["quokka", "ss", "k", "s", "uokka", "=", "strasse"]))
def test_random_mime_verdicts_agree_with_email(parts, needle):
    """Random parts mixing encodings, charsets and tricky octets: a definite verdict is right."""
    data = multipart(*parts) if len(parts) > 1 else single(*parts[0])
    fast = verdict(data, needle)
    assert fast is None or fast == reference(data, needle)
