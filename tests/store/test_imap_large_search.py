"""imap.largesearch: SEARCH BODY/TEXT on a message read in place, a piece at a time,
selects what the whole-message search selects, for raw and decoded texts
(base64, quoted-printable, charsets, case folding that changes lengths)."""

import base64

import pytest

from imap import search as search_module, view as view_module
from imap.search import SearchContext
from imap.view import MessageView
from mailstore import mboxformat as fmt
from tests.store.test_imap_in_place import mailbox_delivered
from tests.store.test_imap_streamed import mailbox_with

LATIN = "Grüße aus Köln, STRASSE und Maße".encode("latin-1")
TEXTS = [
    b"Subject: plain\n\nThe quick brown fox\njumps over the lazy dog\n",
    b"Subject: base64 text\nContent-Type: text/plain; charset=utf-8\n"
    b"Content-Transfer-Encoding: base64\n\n"
    + base64.encodebytes("Geheimnis: Straße zum Glück, zebra crossing.".encode()) + b"\n",
    b"Subject: qp\nContent-Type: text/plain; charset=iso-8859-1\n"
    b"Content-Transfer-Encoding: quoted-printable\n\nsoft=\nbroken word, caf=E9 au lait=\n done\n",
    b"Subject: latin-1 8bit\nContent-Type: text/plain; charset=iso-8859-1\n\n" + LATIN + b"\n",
    b"Subject: mixed\nContent-Type: multipart/mixed; boundary=b\n\n--b\n"
    b"Content-Type: application/octet-stream\nContent-Transfer-Encoding: base64\n\n"
    + base64.encodebytes(b"hidden needle in an attachment") +
    b"--b\nContent-Type: text/html; charset=unknown-8bit\n\n<p>Ma\xdfe und Gewichte</p>\n--b--\n",
    "Subject: utf-8\n\nKelvin \u212a and \ufb01ne ligatures, gro\u00df\n".encode(),
    b"Subject: codecs that are not charsets\nContent-Type: multipart/mixed; boundary=c\n\n"
    b"--c\nContent-Type: text/plain; charset=zlib\n\nzlib text\n"
    b"--c\nContent-Type: text/plain; charset=rot13\n\nebg guvegrra\n"
    b"--c\nContent-Type: text/plain; charset=utf-16\n\nh\x00i\x00\n--c--\n",
    b"Subject: no last newline\n\nends without newline marker",
    b"Subject: mixed ends\r\n\r\nline one\r\nline two\nstray\rcr here\n",
]
NEEDLES = ["fox", "over the", "straße", "strasse", "glück", "zebra", "crossing.", "brokenword", "broken word",
           "café", "caf", "köln", "maße", "masse", "k and", "fine", "gross", "needle", "gewichte",
           "newline marker", "subject", "", "nowhere at all", "e", "zlib text", "rot thirteen",
           "ebg", "hi", "straycr", "two\nstray", "one"]


def selected(mailbox, key, in_place_from, monkeypatch):
    monkeypatch.setattr(view_module, "PARSE_IN_PLACE_FROM", in_place_from)
    with mailbox.reading():
        views = [MessageView(mailbox, m, n, False) for n, m in enumerate(mailbox.messages, 1)]
        found = search_module.search(key, views, SearchContext(len(views), 10 ** 6, charset="UTF-8"))
        in_place = [v.large_text() is not None for v in views]
    return [v.seq for v in found], in_place


@pytest.mark.parametrize("driver", ["mbox", "maildir"])
@pytest.mark.parametrize("line_ends", ["LF", "CRLF"])
def test_in_place_search_selects_as_the_whole_message_search(driver, line_ends, tmp_path,
                                                             monkeypatch):
    monkeypatch.setattr(fmt, "SIZE_PIECE", 7)  # needles straddle the pieces
    if line_ends == "LF":  # as appended: the store makes line ends LF
        mailbox = mailbox_with(driver, tmp_path, TEXTS)
    else:  # as another program may have stored them
        texts = [text.replace(b"\n", b"\r\n") + b"\r\n" for text in TEXTS]
        mailbox = mailbox_delivered(driver, tmp_path, texts)
    try:
        for needle in NEEDLES:
            for name in ("BODY", "TEXT"):
                key = (name, needle.encode())
                whole, was = selected(mailbox, key, 10 ** 12, monkeypatch)
                pieces, now = selected(mailbox, key, 0, monkeypatch)
                assert pieces == whole, (key, whole, pieces)
                assert not any(was) and all(now) and len(now) == len(TEXTS)
    finally:
        mailbox.close()


def test_the_searches_find_something(tmp_path, monkeypatch):
    """The comparison above is between searches that do select messages."""
    mailbox = mailbox_with("mbox", tmp_path, TEXTS)
    try:
        assert selected(mailbox, ("BODY", "strasse".encode()), 0, monkeypatch)[0] == [2, 4]
        assert selected(mailbox, ("BODY", b"gross"), 0, monkeypatch)[0] == [6]
        assert selected(mailbox, ("BODY", "café".encode()), 0, monkeypatch)[0] == [3]
        assert selected(mailbox, ("BODY", b"crossing."), 0, monkeypatch)[0] == [2]
        assert selected(mailbox, ("BODY", b"gewichte"), 0, monkeypatch)[0] == [5]
    finally:
        mailbox.close()
