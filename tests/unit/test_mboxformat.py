"""The mbox format functions: message boundaries, sizes, metadata headers, status blocks."""

import os

import pytest

from auth import Principal
from mailstore import mboxformat as fmt
from mailstore import open_store
from server.config import Config

FROM = b"From joe@example.org Wed Dec  2 05:53:22 1992\n"
FROM2 = b"From ann@example.org Thu Dec  3 06:00:00 1992\n"
HEAD = b"Subject: hi\n\n"
# A body with an unquoted, valid From_ line, as Dovecot stores it (mboxcl2).
CL_BODY = b"a\n" + FROM2 + b"b\n"
EXACT_CL = b"Content-Length: %d\n\n" % len(CL_BODY)


def bodies(buf):
    """The body text of every message scan() finds, in order."""
    return [bytes(buf[m.body:m.end]) for m in fmt.scan(buf)]


# The date forms of mbox-compat.md §2; each must open a second message.
FROM_LINE_FORMS = [
    b"From x Wed Dec  2 05:53 1992",
    b"From x Wed Dec  2 05:53:22 1992",
    b"From x Wed Dec 02 05:53:22 1992",
    b"From x Wed Dec  2 05:53 PST 1992",
    b"From x Wed Dec  2 05:53:22 PST 1992",
    b"From x Wed Dec  2 05:53 -0700 1992",
    b"From x Wed Dec  2 05:53:22 -0700 1992",
    b"From x Wed Dec  2 05:53 1992 PST",
    b"From x Wed Dec  2 05:53:22 1992 -0700",
    b"From x Wed Dec  2 05:53:22 1992 remote from uucp",
    b"From Joe User Wed Dec  2 05:53:22 1992",
    b"From compat2@vm  Thu Mar 14 08:26:53 2024",
]


@pytest.mark.parametrize("line", FROM_LINE_FORMS)
def test_every_from_line_form_starts_a_message(line):
    """Each From_ line form of §2 opens a new message after a separator line."""
    buf = FROM + HEAD + b"one\n\n" + line + b"\n" + HEAD + b"two\n"
    assert bodies(buf) == [b"one\n", b"two\n"]


# (id, mailbox, expected bodies)
BOUNDARY_CASES = [
    ("from-without-date", FROM + HEAD + b"a\nFrom the desk of Nora\nb\n", [b"a\nFrom the desk of Nora\nb\n"]),
    ("quoted-from-line", FROM + HEAD + b"a\n>From joe Wed Dec  2 05:53:22 1992\nb\n",
     [b"a\n>From joe Wed Dec  2 05:53:22 1992\nb\n"]),
    ("from-header-in-body", FROM + HEAD + b"a\nFrom: joe <joe@x>\n", [b"a\nFrom: joe <joe@x>\n"]),
    ("lowercase-from", FROM + HEAD + b"a\nfrom joe Wed Dec  2 05:53:22 1992\n",
     [b"a\nfrom joe Wed Dec  2 05:53:22 1992\n"]),
    ("valid-from-in-body-splits-uw-rule", FROM + HEAD + b"a\n" + FROM2 + b"b\n",
     [b"a\n", b""]),
    ("no-blank-line-needed-before-from", FROM + HEAD + b"a\n" + FROM2 + HEAD + b"b\n",
     [b"a\n", b"b\n"]),
    ("separator-line-not-in-message", FROM + HEAD + b"a\n\n" + FROM2 + HEAD + b"b\n\n",
     [b"a\n", b"b\n"]),
    ("exact-content-length-protects-body", FROM + EXACT_CL + CL_BODY + b"\n" + FROM2 + HEAD
     + b"c\n", [CL_BODY, b"c\n"]),
    ("exact-content-length-at-eof", FROM + EXACT_CL + CL_BODY, [CL_BODY]),
    ("exact-content-length-at-eof-with-separator", FROM + EXACT_CL + CL_BODY + b"\n", [CL_BODY]),
    ("exact-content-length-then-from-without-blank", FROM + EXACT_CL + CL_BODY + FROM2 + HEAD
     + b"c\n", [CL_BODY, b"c\n"]),
    ("short-content-length-falls-back-to-uw", FROM + b"Content-Length: %d\n\n" % (len(CL_BODY) - 3)
     + CL_BODY, [b"a\n", b""]),
    ("content-length-past-eof-ignored", FROM + b"Content-Length: 9999\n\n" + CL_BODY,
     [b"a\n", b""]),
    ("lowercase-content-length-is-honoured", FROM + EXACT_CL.lower() + CL_BODY, [CL_BODY]),
    ("last-message-without-final-lf", FROM + HEAD + b"a\nb", [b"a\nb"]),
    ("header-only-message", FROM + b"Subject: x\n", [b""]),
]


@pytest.mark.parametrize("buf, expected", [pytest.param(b, e, id=i) for i, b, e in BOUNDARY_CASES])
def test_message_boundaries(buf, expected):
    """Only valid From_ lines split messages, unless an exact Content-Length covers them."""
    assert bodies(buf) == expected


@pytest.mark.parametrize("lead", [b"\n", b"\n\n", b"\r\n", b" \t\n", b"\n \r\n\t"])
def test_leading_blank_lines_are_tolerated(lead):
    """UW skips CR, LF, SP and TAB before the first From_ line ("broken MTAs")."""
    buf = lead + FROM + HEAD + b"a\n"
    messages = fmt.scan(buf)
    assert len(messages) == 1
    assert messages[0].start == len(lead)
    assert bytes(buf[messages[0].body:messages[0].end]) == b"a\n"


@pytest.mark.parametrize("buf", [
    pytest.param(b"Subject: hi\n\nbody\n", id="rfc822-message"),
    pytest.param(b"From: joe@example.org\n\nbody\n", id="from-header-first"),
    pytest.param(b"From joe@example.org\n\nbody\n", id="from-without-date"),
    pytest.param(b">From joe Wed Dec  2 05:53:22 1992\n\nbody\n", id="quoted-from-first"),
    pytest.param(b"\n\nhello\n" + FROM + HEAD, id="text-before-first-from"),
    pytest.param(b"\x00\x00\x00\x00", id="binary"),
])
def test_non_mbox_file_raises_not_mbox(buf):
    """A file whose first non-blank line is not a From_ line is not an mbox."""
    with pytest.raises(fmt.NotMbox):
        fmt.scan(buf)


@pytest.mark.parametrize("buf", [b"", b"\n", b" \r\n\t\n"])
def test_empty_or_blank_file_has_no_messages(buf):
    """A 0-byte (or whitespace-only) file is a valid, empty mailbox."""
    assert fmt.scan(buf) == []


def test_scan_from_an_offset_parses_only_appended_messages():
    """scan(buf, start) parses from a known boundary on, as for newly delivered mail."""
    old = FROM + HEAD + b"a\n\n"
    buf = old + FROM2 + HEAD + b"b\n"
    messages = fmt.scan(buf, len(old))
    assert [m.start for m in messages] == [len(old)]


def test_offsets_of_a_message():
    """start, header, body and end point at the From_ line, header, body and text end."""
    buf = FROM + b"Subject: hi\nTo: x\n\nbody line\n\n" + FROM2 + HEAD
    first = fmt.scan(buf)[0]
    assert (first.start, first.header) == (0, len(FROM))
    assert bytes(buf[first.header:first.body]) == b"Subject: hi\nTo: x\n\n"
    assert bytes(buf[first.body:first.end]) == b"body line\n"


META_BLOCK = (b"X-IMAPbase: 1700000000 0000000007 Junk\nStatus: RO\nX-Status: F\n"
              b"X-Keywords: Junk                     \nX-UID: 7\n")


def test_size_excludes_metadata_headers_and_separator():
    """RFC822.SIZE counts the visible header and body in CRLF form, nothing else."""
    visible_header = b"Subject: hi\nTo: x\n\n"
    body = b"line one\nline two\n"
    buf = FROM + b"Subject: hi\n" + META_BLOCK + b"To: x\n\n" + body + b"\n" + FROM2 + HEAD
    message = fmt.scan(buf)[0]
    expected = len((visible_header + body).replace(b"\n", b"\r\n"))
    assert fmt.compute_size(buf, message) == expected
    assert b"".join(bytes(buf[s:e]) for s, e in fmt.visible_spans(message)) == visible_header + body


def test_crlf_file_has_the_same_sizes_as_its_lf_version():
    """A mailbox stored with CRLF line ends gives the same RFC822.SIZEs as with LF."""
    lf = (FROM + b"Subject: hi\n" + META_BLOCK + b"\nbody\r\nwith a bare\rcr\n\n"
          + FROM2 + b"Status: O\nSubject: two\n\nsecond\n")
    lf = lf.replace(b"\r\n", b"\n").replace(b"\r", b"")
    crlf = lf.replace(b"\n", b"\r\n")
    sizes_lf = [fmt.compute_size(lf, m) for m in fmt.scan(lf)]
    sizes_crlf = [fmt.compute_size(crlf, m) for m in fmt.scan(crlf)]
    assert len(sizes_lf) == 2
    assert sizes_crlf == sizes_lf


def test_bare_cr_is_not_counted():
    """A stored bare CR is dropped on the wire, so it is not in the size."""
    buf = FROM + HEAD + b"a\rb\n"
    assert fmt.compute_size(buf, fmt.scan(buf)[0]) == len(b"Subject: hi\r\n\r\nab\r\n")


def test_unterminated_last_line_is_counted_with_crlf():
    """A last line without LF is sent with a CRLF, and the size says so."""
    buf = FROM + HEAD + b"end"
    assert fmt.compute_size(buf, fmt.scan(buf)[0]) == len(b"Subject: hi\r\n\r\nend\r\n")


def meta_of(header_lines):
    """read_meta() of a one-message mailbox with the given header lines."""
    buf = FROM + header_lines + b"Subject: s\n\nbody\n"
    return fmt.read_meta(buf, fmt.scan(buf)[0])


@pytest.mark.parametrize("header_lines, flags", [
    (b"Status: RO\n", fmt.SEEN | fmt.OLD),
    (b"Status: O\nX-Status: DFAT\n", fmt.OLD | fmt.DELETED | fmt.FLAGGED | fmt.ANSWERED | fmt.DRAFT),
    (b"X-Status: R\n", fmt.SEEN),
    (b"Status: D\n", fmt.DELETED),
    (b"Status: \nX-Status: \n", 0),
    (b"Status: RXZ?\n", fmt.SEEN),
    (b"X-Status: AF\nStatus: OR\n", fmt.ANSWERED | fmt.FLAGGED | fmt.OLD | fmt.SEEN),
])
def test_status_letters_are_read_from_either_header(header_lines, flags):
    """R O D F A T count in Status or X-Status alike; unknown letters are ignored."""
    assert fmt.flags_from_letters(meta_of(header_lines).status) == flags


@pytest.mark.parametrize("header_lines", [
    b"status: RO\n", b"STATUS: R\n", b"x-status: F\n", b"X-Uid: 5\n", b"x-keywords: Junk\n",
    b"X-Imapbase: 1700000000 3\n",
])
def test_wrongly_cased_metadata_is_bogus_and_ignored(header_lines):
    """UW matches metadata names case-sensitively: other spellings are dropped as bogus."""
    meta = meta_of(header_lines)
    assert meta.bogus
    assert (meta.status, meta.uid, meta.keywords, meta.imap, meta.imapbase) == (None,) * 5


def test_bogus_metadata_is_hidden_from_clients():
    """A wrongly-cased `status:` line is excluded from the visible header and the size."""
    buf = FROM + b"status: RO\nSubject: s\n\nbody\n"
    message = fmt.scan(buf)[0]
    visible = b"".join(bytes(buf[s:e]) for s, e in fmt.visible_spans(message))
    assert visible == b"Subject: s\n\nbody\n"


def test_metadata_continuation_lines_are_hidden_too():
    """Continuation lines of a metadata header belong to it and are not shown."""
    buf = FROM + b"X-Keywords: Junk\n  More\nSubject: s\n\nbody\n"
    message = fmt.scan(buf)[0]
    visible = b"".join(bytes(buf[s:e]) for s, e in fmt.visible_spans(message))
    assert visible == b"Subject: s\n\nbody\n"


def test_metadata_names_in_body_are_not_metadata():
    """A `Status:` line in the body is message text, shown and counted."""
    buf = FROM + b"Subject: s\n\nStatus: RO\n"
    message = fmt.scan(buf)[0]
    assert message.hidden == ()
    assert fmt.read_meta(buf, message).status is None


@pytest.mark.parametrize("value, parsed", [
    (b"1700000000 0000000042 $Label1 Junk", (1700000000, 42, ["$Label1", "Junk"])),
    (b"1795726702 14 $Label1 Junk NonJunk", (1795726702, 14, ["$Label1", "Junk", "NonJunk"])),
    (b"1700000000 0", (1700000000, 0, [])),
    (b"0 5", None),
    (b"4294967296 5", None),
    (b"1700000000", None),
    (b"abc 5", None),
    (b"", None),
])
def test_parse_base(value, parsed):
    """X-IMAP/X-IMAPbase need a non-zero 32-bit UIDVALIDITY and a last UID (§5)."""
    assert fmt.parse_base(value) == parsed


def open_mailbox(tmp_path, content):
    """A read-only MboxMailbox over a spool file holding `content`."""
    spool = tmp_path / "spool"
    spool.write_bytes(content)
    config = Config({"mail_location": "mbox:%s:INBOX=%s" % (tmp_path, spool),
                     "index_dir": str(tmp_path / "index"), "mbox_lock_timeout": 5})
    store = open_store(Principal("u", os.getuid(), os.getgid(), str(tmp_path)), config)
    return store.open_inbox(readonly=True)


PSEUDO = fmt.pseudo_message(1700000000, 42, ["Junk"], "host.example", now=1700000000)


def test_x_imap_pseudo_message_is_detected_and_hidden(tmp_path):
    """A first message with X-IMAP is the pseudo-message: its state is used, it is not shown."""
    mailbox = open_mailbox(tmp_path, PSEUDO + FROM + b"X-UID: 40\n" + HEAD + b"a\n")
    try:
        assert (mailbox.uidvalidity, mailbox.uidnext, mailbox.keywords) == (1700000000, 43, ["Junk"])
        assert [m.uid for m in mailbox.messages] == [40]
    finally:
        mailbox.close()


def test_pseudo_message_we_write_has_uw_layout():
    """Our pseudo-message has UW's From_ line, Subject and 10-digit X-IMAP numbers (§6)."""
    lines = PSEUDO.split(b"\n")
    assert lines[0].startswith(b"From MAILER-DAEMON ") and len(lines[0]) == 19 + 24
    assert b"Subject: " + fmt.PSEUDO_SUBJECT in lines
    assert b"X-IMAP: 1700000000 0000000042 Junk" in lines
    message = fmt.scan(PSEUDO)[0]
    assert fmt.read_meta(PSEUDO, message).imap == b"1700000000 0000000042 Junk"


def test_x_imap_in_a_later_message_is_not_a_pseudo_message(tmp_path):
    """X-IMAP outside message 1 is ignored: the mailbox keeps all its messages."""
    mailbox = open_mailbox(tmp_path, FROM + HEAD + b"a\n\n" + PSEUDO)
    try:
        assert len(mailbox.messages) == 2
        assert mailbox.uidvalidity != 1700000000
    finally:
        mailbox.close()


def test_x_imapbase_is_honoured_on_message_one(tmp_path):
    """X-IMAPbase in the first message gives UIDVALIDITY, last UID and keywords."""
    content = (FROM + b"X-IMAPbase: 1700000000 9 Junk\nX-UID: 3\n" + HEAD + b"a\n\n"
               + FROM2 + b"X-UID: 5\nX-Keywords: Junk\n" + HEAD + b"b\n")
    mailbox = open_mailbox(tmp_path, content)
    try:
        assert (mailbox.uidvalidity, mailbox.uidnext) == (1700000000, 10)
        assert [m.uid for m in mailbox.messages] == [3, 5]
        assert [m.keywords for m in mailbox.messages] == [(), ("Junk",)]
    finally:
        mailbox.close()


def test_x_imapbase_is_ignored_after_message_one(tmp_path):
    """X-IMAPbase in message 2 does not give the mailbox a UIDVALIDITY; X-UIDs are untrusted."""
    content = (FROM + b"X-UID: 3\n" + HEAD + b"a\n\n"
               + FROM2 + b"X-IMAPbase: 1700000000 9\nX-UID: 5\n" + HEAD + b"b\n")
    mailbox = open_mailbox(tmp_path, content)
    try:
        assert mailbox.uidvalidity != 1700000000
        assert [m.uid for m in mailbox.messages] == [1, 2]
        assert mailbox.messages[1].dirty
    finally:
        mailbox.close()


def test_keywords_not_in_the_base_list_are_ignored(tmp_path):
    """A message's X-Keywords counts only for names in the mailbox's keyword list (§7)."""
    content = FROM + b"X-IMAPbase: 1700000000 1 Junk\nX-UID: 1\nX-Keywords: Junk Forged\n" + HEAD
    mailbox = open_mailbox(tmp_path, content)
    try:
        assert mailbox.messages[0].keywords == ("Junk",)
    finally:
        mailbox.close()


def block_message(flags, uid=7):
    """A Message carrying only what status_block reads."""
    message = fmt.Message(0, 0, 0, 0, ())
    message.flags, message.uid = flags, uid
    return message


def padded_part(block):
    """The part of a status block that §5 pads: from its start to the X-Keywords value's end."""
    return block[:block.index(b"\nX-UID:")]


@pytest.mark.parametrize("flags, keywords, base, padded_length", [
    (fmt.SEEN | fmt.OLD, [], None, 50),
    (0, [], None, 50),
    (fmt.SEEN | fmt.OLD | fmt.DELETED | fmt.FLAGGED | fmt.ANSWERED | fmt.DRAFT, ["Junk"], None, 50),
    (fmt.OLD, [], b"X-IMAPbase: 1700000000 0000000007\n", 80),
    (fmt.OLD, ["Junk"], b"X-IMAPbase: 1700000000 0000000007 Junk\n", 80),
    (fmt.OLD, ["k%02d" % i for i in range(12)], None, len(b"Status: O\nX-Status: \nX-Keywords:")
     + 12 * 4),
    (fmt.OLD, ["k%02d" % i for i in range(12)], b"X-IMAPbase: 1 2\n",
     len(b"X-IMAPbase: 1 2\nStatus: O\nX-Status: \nX-Keywords:") + 12 * 4),
])
def test_status_block_padding(flags, keywords, base, padded_length):
    """The block up to the X-Keywords value's end is padded to 50 bytes (80 with
    X-IMAPbase) with trailing spaces, and never cut when longer (§5)."""
    block = fmt.status_block(block_message(flags), keywords, base)
    assert len(padded_part(block)) == padded_length
    assert block.endswith(b"\nX-UID: 7\n")


def test_status_block_matches_the_documented_example():
    """`Status: RO`, `X-Status: ` and `X-Keywords:` make 33 bytes, then 17 spaces (§5)."""
    block = fmt.status_block(block_message(fmt.SEEN | fmt.OLD, uid=12), [])
    assert block == b"Status: RO\nX-Status: \nX-Keywords:" + b" " * 17 + b"\nX-UID: 12\n"


@pytest.mark.parametrize("flags", [0, fmt.SEEN, fmt.OLD | fmt.DELETED, fmt.FLAGGED | fmt.DRAFT,
                                   fmt.SEEN | fmt.OLD | fmt.ANSWERED | fmt.FLAGGED | fmt.DELETED
                                   | fmt.DRAFT])
def test_status_block_reads_back_the_same(flags):
    """A block we write parses back to the same flags, keywords and UID."""
    block = fmt.status_block(block_message(flags, uid=99), ["Junk", "$Label1"])
    meta = meta_of(block)
    assert fmt.flags_from_letters(meta.status) == flags
    assert meta.keywords == [b"Junk", b"$Label1"]
    assert meta.uid == b"99"
    assert not meta.bogus


def test_status_block_writes_x_status_even_when_empty():
    """UW writes `X-Status: ` with a trailing space when no flag needs it."""
    assert b"\nX-Status: \n" in fmt.status_block(block_message(fmt.OLD), [])


@pytest.mark.parametrize("padded, line", [
    (False, b"X-IMAPbase: 1795726702 14 $Label1 Junk\n"),
    (True, b"X-IMAPbase: 1795726702 0000000014 $Label1 Junk\n"),
])
def test_base_line_forms(padded, line):
    """X-IMAPbase is written as UW (unpadded) or with a 10-digit last UID to grow in place."""
    assert fmt.base_line(1795726702, 14, ["$Label1", "Junk"], padded=padded) == line


def test_x_imap_line_pads_both_numbers():
    """The pseudo-message's X-IMAP pads UIDVALIDITY and last UID to 10 digits (§6)."""
    assert fmt.base_line(170000, 42, [], b"X-IMAP") == b"X-IMAP: 0000170000 0000000042\n"
