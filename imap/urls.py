"""What an IMAP URL names in this user's mailboxes: the octets CATENATE (RFC 4469) and
URLFETCH (RFC 4467, RFC 5524) put in place of the URL.

The URL is read by imap.parser_url; here it is looked up in the store. The
mailbox is opened afresh, read-only, so a message another session expunged
or copied in a moment ago is seen as it is now, whatever this session has
been told. Reading never sets \\Seen (RFC 4469 §3).
"""

from imap.parser_url import BadUrl, parse_url
from mailstore import StoreError


class Located:
    """The message a URL names: its wire-form text and the URL's section and partial."""

    __slots__ = ("text", "url")

    def __init__(self, text, url):
        self.text, self.url = text, url

    def body(self):
        """BODY[section]<partial> of the message (RFC 5092 §6), or BadUrl if there is none."""
        from imap.mime import section

        data = self.text if self.url.section is None else section(self.text, self.url.section)
        if data is None:
            raise BadUrl("no such section")
        return self._partial(data)

    def binary(self):
        """The decoded content of the section (RFC 5524), None for an unknown encoding."""
        from imap.mime import NotLeaf, UnknownEncoding, binary

        part = self._part_numbers()
        try:
            data = binary(self.text, part)
        except (NotLeaf, UnknownEncoding):
            return None
        if data is None:
            raise BadUrl("no such section")
        return self._partial(data)

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

    def _partial(self, data):
        if self.url.partial is None:
            return data
        origin, length = self.url.partial
        return data[origin:] if length is None else data[origin:origin + length]


def locate(session, url):
    """The Located message of a parsed URL in this user's store, or BadUrl."""
    from imap.view import wire_form

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
            try:
                text = wire_form(mailbox.message_text(stored))
            except StoreError as error:
                if error.kind == StoreError.EXPUNGED:
                    raise BadUrl("no such message") from None
                raise
    finally:
        mailbox.close()
    return Located(text, url)


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
        if part[0] == "TEXT":
            data = part[1]
        else:
            data = _url_part(session, part[1], base)
        size += len(data)
        if size > limit:
            raise No("The message would be too large", "TOOBIG")
        pieces.append(data)
    return b"".join(pieces)


def _url_part(session, text, base):
    from imap.session import No

    try:
        url = parse_url(text, base)
        if url.access is not None or not own_server(session, url):
            raise BadUrl("not a URL of this session")
        return locate(session, url).body()
    except BadUrl:
        raise No("Bad URL", "BADURL " + text.decode("ascii", "replace").replace("]", "%5D")) \
            from None
