"""imap.plaintext: a large message parsed where it lies (LF form, offsets mapped to
the wire by counting LFs; or CRLF form; or without its CRs when its line ends
are mixed) gives the very replies the whole CRLF text gives, for every
structure item and section, on both drivers."""

import pytest

from imap import fetch, view as view_module
from imap.command import Section
from imap.view import MessageView
from tests.store.test_imap_streamed import Item, mailbox_with, store_at

NESTED = (b"Subject: inner\nContent-Type: multipart/alternative; boundary=alt\n\n"
          b"--alt\nContent-Type: text/plain\n\ninner plain\n"
          b"--alt\nContent-Type: text/html\n\n<p>inner</p>\n--alt--\n")
MIXED = (b"From: a@example.org\nTo: b@example.org\nSubject: mixed\nMIME-Version: 1.0\n"
         b"Content-Type: multipart/mixed; boundary=\"b1\"\n\npreamble\n"
         b"--b1\nContent-Type: text/plain; charset=utf-8\n\nfirst part\nsecond line\n"
         b"--b1\nContent-Type: application/octet-stream\nContent-Transfer-Encoding: base64\n"
         b"Content-Disposition: attachment; filename=x.bin\n\nAAECAwQFBgcICQ==\n"
         b"--b1\nContent-Type: message/rfc822\n\n" + NESTED +
         b"--b1\nContent-Type: text/plain\nContent-Transfer-Encoding: quoted-printable\n\n"
         b"soft=\nbreak =3D\n--b1--\nepilogue\n")
TEXTS = [
    MIXED,
    MIXED.rstrip(b"\n"),  # no last newline: the wire form closes it
    b"Subject: boundary first\nContent-Type: multipart/mixed; boundary=z\n\n--z\n\nonly\n--z--\n",
    b"Subject: header only, no empty line\nX-Other: y",
    b"Subject: digest\nContent-Type: multipart/digest; boundary=d\n\n--d\n\n" + NESTED + b"--d--\n",
    b"Subject: empty body\n\n",
    MIXED.replace(b"second line\n", b"second\rline\n"),  # a stray CR: read without it
]
ITEMS = [
    [Item("BODYSTRUCTURE"), Item("BODY")],
    [Item("BODY[]", Section((1,)))],
    [Item("BODY[]", Section((2,))), Item("BODY[]", Section((2,), "MIME"))],
    [Item("BODY[]", Section((3, 1))), Item("BODY[]", Section((3, 2)))],
    [Item("BODY[]", Section((3,), "TEXT")), Item("BODY[]", Section((3,), "HEADER"))],
    [Item("BODY[]", Section((3,), "HEADER.FIELDS", (b"SUBJECT",)))],
    [Item("BODY[]", Section((), "HEADER")), Item("BODY[]", Section((), "TEXT"))],
    [Item("BODY[]", Section((), "HEADER.FIELDS.NOT", (b"TO", b"SUBJECT")))],
    [Item("BODY[]", Section((1,)), partial=(2, 5)), Item("BODY[]", Section((9,)))],
    [Item("BODY[]", Section((), "TEXT"), partial=(10 ** 6, 5))],
    [Item("RFC822.TEXT"), Item("RFC822.HEADER"), Item("RFC822.SIZE")],
    [Item("BINARY[]", Section((2,))), Item("BINARY.SIZE", Section((2,)))],
    [Item("BINARY[]", Section((4,))), Item("BINARY[]", Section(()), partial=(0, 40))],
]


def replies(mailbox, items, in_place_from, monkeypatch):
    monkeypatch.setattr(view_module, "PARSE_IN_PLACE_FROM", in_place_from)
    found = []
    with mailbox.reading():
        for number, stored in enumerate(mailbox.messages, 1):
            message = MessageView(mailbox, stored, number, False)
            sent = []
            try:
                fetch.send_pieces(sent.append, fetch.render_pieces(message, items, False))
            except ValueError as error:  # BINARY of a multipart: the session says NO
                sent = [repr(error).encode()]
            found.append((b"".join(sent), message.large_text() is not None))
    return found


@pytest.mark.parametrize("driver", ["mbox", "maildir"])
@pytest.mark.parametrize("items", ITEMS, ids=[" ".join(i.name for i in items) + str(n)
                                               for n, items in enumerate(ITEMS)])
def test_parsing_in_place_replies_as_the_whole_text(driver, items, tmp_path, monkeypatch):
    mailbox = mailbox_with(driver, tmp_path, TEXTS)
    assert read_in_place_as_whole(mailbox, items, monkeypatch) == [True] * len(TEXTS)


def read_in_place_as_whole(mailbox, items, monkeypatch):
    """Check that every reply read in place equals the whole-text one (and that the
    whole-text run read nothing in place); close the mailbox; return, per message,
    whether it was read in place."""
    try:
        whole = replies(mailbox, items, 10 ** 12, monkeypatch)
        in_place = replies(mailbox, items, 0, monkeypatch)
    finally:
        mailbox.close()
    assert [reply for reply, _ in in_place] == [reply for reply, _ in whole]
    assert not any(was for _, was in whole)
    return [was for _, was in in_place]


URL_TAILS = [b"", b"/;SECTION=1", b"/;SECTION=2", b"/;SECTION=3.1/;PARTIAL=2.4",
             b"/;SECTION=3.HEADER.FIELDS%20(SUBJECT)", b"/;SECTION=TEXT/;PARTIAL=5",
             b"/;SECTION=2.MIME", b"/;SECTION=9", b"/;PARTIAL=1000000"]


def answer(function):
    from imap.parser_url import BadUrl

    try:
        return function()
    except BadUrl as error:
        return "BadUrl: %s" % error


@pytest.mark.parametrize("driver", ["mbox", "maildir"])
def test_urls_name_the_same_octets_in_place(driver, tmp_path):
    """URLFETCH and CATENATE (imap.urls.Located) read a large message in place."""
    from imap.parser_url import parse_url
    from imap.plaintext import plain_text
    from imap.urls import Located
    from imap.view import wire_form

    def octets(found):
        if found is None:
            return None
        if isinstance(found, bytes):
            return len(found), found
        return found.size, b"".join(found.chunks())

    def answers(form, url):
        return [answer(lambda: octets(Located(form, url).body())),
                answer(lambda: octets(Located(form, url).binary())),
                answer(Located(form, url).structure)]

    mailbox = mailbox_with(driver, tmp_path, TEXTS)
    compared = 0
    try:
        with mailbox.reading():
            for stored in mailbox.messages:
                text = plain_text(mailbox, stored)
                whole = wire_form(mailbox.message_text(stored))
                for tail in URL_TAILS:
                    url = parse_url(b"/INBOX/;UID=%d" % stored.uid + tail)
                    assert answers(text, url) == answers(whole, url), tail
                    if not tail:
                        assert answers(text, url)[0] == (len(whole), whole)
                        assert answers(whole, url)[1] == (len(whole), whole)
                    compared += 1
    finally:
        mailbox.close()
    assert compared == len(TEXTS) * len(URL_TAILS)


def mailbox_delivered(driver, tmp_path, texts):
    """A mailbox holding texts byte for byte, as an MTA or another server wrote them."""
    mailbox_with(driver, tmp_path, []).close()  # the folders, and the spool
    if driver == "mbox":
        with open(tmp_path / "spool", "ab") as spool:
            for text in texts:
                spool.write(b"From mta@example.org Thu Nov 26 10:00:00 2026\n" + text + b"\n")
    else:
        for number, text in enumerate(texts):
            (tmp_path / "home" / "Maildir" / "new" / ("1700000000.M%dP1.host" % number)) \
                .write_bytes(text)
    return store_at(driver, tmp_path).open_inbox()


CRLF_TEXTS = [text.replace(b"\n", b"\r\n") for text in TEXTS[:-1]] + [
    MIXED.replace(b"first part\n", b"first part\r\n").replace(b"\n", b"\r\n", 3)]
# A header in one form, a body in the other: the header is put in the body's.
HEADER_OTHER_TEXTS = [MIXED.replace(b"\n", b"\r\n", 5),
                      MIXED.split(b"\n\n", 1)[0] + b"\n\n" + MIXED.split(b"\n\n", 1)[1].replace(
                          b"\n", b"\r\n")]


@pytest.mark.parametrize("driver", ["mbox", "maildir"])
@pytest.mark.parametrize("items", ITEMS, ids=[" ".join(i.name for i in items) + str(n)
                                               for n, items in enumerate(ITEMS)])
def test_a_header_in_another_form_than_its_body(driver, items, tmp_path, monkeypatch):
    mailbox = mailbox_delivered(driver, tmp_path, HEADER_OTHER_TEXTS)
    assert read_in_place_as_whole(mailbox, items, monkeypatch) == [True, True]


@pytest.mark.parametrize("driver", ["mbox", "maildir"])
@pytest.mark.parametrize("items", ITEMS, ids=[" ".join(i.name for i in items) + str(n)
                                               for n, items in enumerate(ITEMS)])
def test_text_stored_with_crlf_is_read_in_place_too(driver, items, tmp_path, monkeypatch):
    mailbox = mailbox_delivered(driver, tmp_path, CRLF_TEXTS)
    # Whatever the line ends, in place: CRLF ones as they are, mixed ones (the last
    # text; in an mbox also a text without its last line end, which the separating
    # LF ends) without their CRs.
    assert read_in_place_as_whole(mailbox, items, monkeypatch) == [True] * len(CRLF_TEXTS)
