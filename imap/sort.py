"""SORT (RFC 5256 §3, RFC 5957 DISPLAYFROM/DISPLAYTO) and the base subject (RFC 5256 §2.1).

Messages have the interface described in imap.search. Strings compare with
the i;ascii-casemap collation (RFC 4790 §9.2), the RFC 5256 default: only
a-z fold to A-Z. Python compares str by code point, which orders like the
UTF-8 octets that collation sees. A missing header sorts as the empty
string, which sorts before any other (RFC 5256 §3).
"""

import re
import string

from imap.search import decode_encoded_words, field_values, header_date, header_fields

_ASCII_CASEMAP = str.maketrans(string.ascii_lowercase, string.ascii_uppercase)

# RFC 5256 §5 grammar pieces for the base subject.
_BLOB = r"\[[^\[\]]*\][ \t]*"  # subj-blob
_LEADER = re.compile(r"(?:%s)*(?:re|fwd?)[ \t]*(?:%s)?:" % (_BLOB, _BLOB), re.IGNORECASE)
_BLOB_PREFIX = re.compile(_BLOB)
_FWD_TRAILER = "(fwd)"
_FWD_HEADER, _FWD_TRAILER_BRACKET = "[fwd:", "]"
_WHITESPACE_RUN = re.compile(r"[ \t\r\n]+")


def sort(criteria, messages):
    """The messages ordered by `criteria`, a tuple of (reverse, key name).

    Keys: ARRIVAL CC DATE FROM SIZE SUBJECT TO DISPLAYFROM DISPLAYTO. Messages
    equal under every criterion keep mailbox (sequence number) order, REVERSE
    or not (RFC 5256 §3).
    """
    needs_header = any(name not in ("ARRIVAL", "SIZE") for _, name in criteria)
    rows = [(message, header_fields(message.header()) if needs_header else [])
            for message in messages]
    rows.sort(key=lambda row: row[0].seq)
    # Stable sorts from the last criterion to the first give the lexicographic order;
    # reverse=True keeps equal rows in their existing order.
    for reverse, name in reversed(criteria):
        key = _SORT_KEYS[name]
        rows.sort(key=lambda row: key(*row), reverse=reverse)
    return [message for message, _ in rows]


def order_key(criteria, message):
    """A key that orders messages as sort(criteria) does, for inserting into a sorted result.

    Ties fall back to the UID, which runs in mailbox order; an update context
    (RFC 5267 §4.3) keeps these keys so a new message finds its place
    without the others being read again.
    """
    needs_header = any(name not in ("ARRIVAL", "SIZE") for _, name in criteria)
    fields = header_fields(message.header()) if needs_header else []
    parts = []
    for reverse, name in criteria:
        value = _SORT_KEYS[name](message, fields)
        parts.append(_Descending(value) if reverse else value)
    parts.append(message.uid)
    return tuple(parts)


class _Descending:
    """A sort key value that orders in reverse (REVERSE in a key tuple)."""

    __slots__ = ("value",)

    def __init__(self, value):
        self.value = value

    def __eq__(self, other):
        return self.value == other.value

    def __lt__(self, other):
        return other.value < self.value


def sent_time(message, fields):
    """RFC 5256 §2.2 sent date as a UTC timestamp: the Date: header, else INTERNALDATE."""
    sent = header_date(next(field_values(fields, "date"), ""))
    return (sent or message.internal_date).timestamp()


def ascii_casemap(text):
    """The i;ascii-casemap comparison form of `text` (RFC 4790 §9.2)."""
    return text.translate(_ASCII_CASEMAP)


def base_subject(text):
    """The RFC 5256 §2.1 base subject of a raw Subject: value."""
    return split_base_subject(text)[0]


def split_base_subject(text):
    """(base subject, is reply or forward) for a raw Subject: value.

    A message is a reply or forward when extraction removed a subj-refwd, a
    "(fwd)" trailer or a "[fwd: ... ]" wrapper (RFC 5256 §2.1); removing a
    bare subj-blob such as a list tag does not count.
    """
    # Step 1: decode, then every run of whitespace (tabs, folds) becomes one space.
    subject = _WHITESPACE_RUN.sub(" ", decode_encoded_words(text))
    is_reply = False
    while True:
        subject, removed_trailer = _strip_trailers(subject)         # step 2
        subject, removed_leader = _strip_leaders_and_blobs(subject)  # steps 3-5
        is_reply = is_reply or removed_trailer or removed_leader
        if not _is_fwd_wrapped(subject):                              # step 6
            return subject, is_reply
        subject, is_reply = subject[len(_FWD_HEADER):-len(_FWD_TRAILER_BRACKET)], True


def _strip_trailers(subject):
    """Step 2: remove trailing whitespace and "(fwd)" until none is left."""
    removed = False
    while True:
        subject = subject.rstrip(" \t")
        if subject[-len(_FWD_TRAILER):].lower() != _FWD_TRAILER:
            return subject, removed
        subject, removed = subject[:-len(_FWD_TRAILER)], True


def _strip_leaders_and_blobs(subject):
    """Steps 3 to 5: leaders (whitespace, [blob]s then Re/Fw/Fwd), then one [blob].

    A leading [blob] goes only when text remains after it, so "[blob]" alone
    is its own base subject.
    """
    removed_refwd = False
    while True:
        before = subject
        subject = subject.lstrip(" \t")
        leader = _LEADER.match(subject)
        while leader:
            subject, removed_refwd = subject[leader.end():].lstrip(" \t"), True
            leader = _LEADER.match(subject)
        blob = _BLOB_PREFIX.match(subject)
        if blob and subject[blob.end():].strip(" \t"):
            subject = subject[blob.end():]
        if subject == before:
            return subject, removed_refwd


def _is_fwd_wrapped(subject):
    return (subject[:len(_FWD_HEADER)].lower() == _FWD_HEADER
            and subject.endswith(_FWD_TRAILER_BRACKET))


def _first_address(fields, name):
    """(decoded display name, addr-spec) of the first mailbox in the first `name` field.

    Group syntax is looked through: the first mailbox inside a group counts.
    None when the field is missing or holds no mailbox.
    """
    from email.utils import getaddresses

    value = next(field_values(fields, name), None)
    if value is None:
        return None
    for display_name, address in getaddresses([value]):
        if address:
            return decode_encoded_words(display_name).strip(), address
    return None


def _mailbox_key(name):
    """FROM, TO, CC: the addr-mailbox (local part) of the first address (RFC 5256 §3)."""
    def key(message, fields):
        first = _first_address(fields, name)
        if first is None:
            return ""
        mailbox = first[1].rpartition("@")[0] if "@" in first[1] else first[1]
        if len(mailbox) > 1 and mailbox.startswith('"') and mailbox.endswith('"'):
            mailbox = mailbox[1:-1]  # ENVELOPE carries the quoted local part unquoted
        return ascii_casemap(mailbox)
    return key


def _display_key(name):
    """DISPLAYFROM, DISPLAYTO (RFC 5957): the display name, else the addr-spec."""
    def key(message, fields):
        first = _first_address(fields, name)
        if first is None:
            return ""
        return ascii_casemap(first[0] or first[1])
    return key


def _subject_key(message, fields):
    return ascii_casemap(base_subject(next(field_values(fields, "subject"), "")))


_SORT_KEYS = {
    "ARRIVAL": lambda message, fields: message.internal_date.timestamp(),
    "CC": _mailbox_key("cc"),
    "DATE": sent_time,
    "FROM": _mailbox_key("from"),
    "SIZE": lambda message, fields: message.size,
    "SUBJECT": _subject_key,
    "TO": _mailbox_key("to"),
    "DISPLAYFROM": _display_key("from"),
    "DISPLAYTO": _display_key("to"),
}
