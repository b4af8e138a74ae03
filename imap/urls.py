"""What an IMAP URL names in this user's mailboxes: the octets CATENATE (RFC 4469) and
URLFETCH (RFC 4467, RFC 5524) put in place of the URL.

The URL is read by imap.parser_url; here it is looked up in the store. The
mailbox is opened afresh, read-only, so a message another session expunged
or copied in a moment ago is seen as it is now, whatever this session has
been told. Reading never sets \\Seen (RFC 4469 §3).
"""

import contextlib

from imap.parser_url import BadUrl, parse_url
from mailstore import StoreError
from mailstore.text import chunks_of


class Located:
    """The message a URL names, read under its mailbox's read lock, and the URL.

    `text` is its wire-form text, or a large message read in place
    (imap.plaintext), whose sections are sent in pieces and never built.
    """

    __slots__ = ("text", "url")

    def __init__(self, text, url):
        self.text, self.url = text, url

    def body(self):
        """BODY[section]<partial> (RFC 5092 §6) as an imap.streamed.Streamed, or BadUrl."""
        from imap.mime import section, section_span
        from imap.streamed import Streamed

        wanted, text = self.url.section, self.text
        if isinstance(text, bytes):
            found = text if wanted is None else section(text, wanted)
        else:
            found = (0, len(text)) if wanted is None else section_span(text, wanted)
        if found is None:
            raise BadUrl("no such section")
        if isinstance(found, bytes):
            return Streamed(lambda: [found], len(found), self._window())
        start, end = found
        return Streamed(lambda: text.wire_chunks(start, end), text.wire_size(start, end),
                        self._window())

    def binary(self):
        """The decoded content of the section (RFC 5524): bytes, or a Streamed for a
        message read in place; None for an unknown encoding or a multipart."""
        from imap import streamed
        from imap.mime import NotLeaf, UnknownEncoding, binary

        part = self._part_numbers()
        try:
            if isinstance(self.text, bytes):
                data = binary(self.text, part)
            else:
                data = streamed.decoded(self.text, part, self._window())
        except (NotLeaf, UnknownEncoding):
            return None
        if data is None:
            raise BadUrl("no such section")
        if self.url.partial is None or not isinstance(data, bytes):
            return data
        origin, length = self._window()
        return data[origin:origin + length]

    def structure(self):
        """BODYPARTSTRUCTURE: the section's body structure (RFC 5524 §3.2)."""
        from imap.mime import part_structure

        structure = part_structure(self.text, self._part_numbers())
        if structure is None:
            raise BadUrl("no such section")
        return structure

    def _part_numbers(self):
        section = self.url.section
        if section is not None and section.text is not None:
            raise BadUrl("only part numbers have a decoded form")
        return section.part if section is not None else ()

    def _window(self):
        """The URL's partial as (origin, length), or None."""
        if self.url.partial is None:
            return None
        origin, length = self.url.partial
        return origin, (1 << 62) if length is None else length


@contextlib.contextmanager
def located(session, url):
    """The Located message of a parsed URL in this user's store, or BadUrl; its
    mailbox stays open and read-locked until the block ends."""
    try:
        mailbox = session.store.open_mailbox(url.mailbox, readonly=True)
    except StoreError as error:
        if error.kind in (StoreError.NOT_FOUND, StoreError.NOT_SELECTABLE,
                          StoreError.NO_PERMISSION):
            raise BadUrl("no such mailbox") from None
        raise
    try:
        if url.uidvalidity is not None and url.uidvalidity != mailbox.uidvalidity:
            raise BadUrl("UIDVALIDITY has changed")
        with mailbox.reading():
            stored = mailbox.by_uid(url.uid)
            if stored is None:
                raise BadUrl("no such message")
            yield Located(_text(mailbox, stored), url)
    finally:
        mailbox.close()


def _text(mailbox, stored):
    """A large message read in place when it can be, else its wire-form text."""
    from imap.plaintext import plain_text
    from imap.view import PARSE_IN_PLACE_FROM, wire_form

    try:
        text = plain_text(mailbox, stored) if stored.size >= PARSE_IN_PLACE_FROM else None
        return wire_form(mailbox.message_text(stored)) if text is None else text
    except StoreError as error:
        if error.kind == StoreError.EXPUNGED:
            raise BadUrl("no such message") from None
        raise


def own_server(session, url):
    """True when an absolute URL names this server and the logged-in user (or leaves them out)."""
    if url.host is not None and url.host not in _host_names(session):
        return False
    return url.user is None or url.user == session.principal.name


def _host_names(session):
    names = {session.hostname.lower(), "localhost"}
    names.add(session.hostname.lower().split(".")[0])
    return names


def catenated(session, parts, limit):
    """The message CATENATE builds from its parts (RFC 4469 §3), within limit octets.

    Raises imap.session.No with BADURL naming the first URL that fails, or
    TOOBIG as soon as the message would exceed limit.
    """
    from imap.session import No

    base = session.selected.name if session.selected else None
    pieces, size = [], 0
    for part in parts:
        if part[0] == "TEXT":  # bytes, or a spilled literal's FileText
            size += len(part[1])
            pieces.extend(chunks_of(part[1]))
        else:
            size += _url_part(session, part[1], base, pieces, limit - size)
        if size > limit:
            raise No("The message would be too large", "TOOBIG")
    return b"".join(pieces)


def _url_part(session, text, base, pieces, room):
    """Put the octets a CATENATE URL names into pieces, when they fit in room; their size."""
    from imap.session import No

    try:
        url = parse_url(text, base)
        if url.access is not None or not own_server(session, url):
            raise BadUrl("not a URL of this session")
        with located(session, url) as message:
            body = message.body()
            if body.size <= room:  # else TOOBIG, without reading it
                pieces.extend(body.chunks())
            return body.size
    except BadUrl:
        raise No("Bad URL", "BADURL " + text.decode("ascii", "replace").replace("]", "%5D")) \
            from None
