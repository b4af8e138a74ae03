"""IMAP URLs (RFC 5092) as CATENATE (RFC 4469) and URLAUTH (RFC 4467) use them, and the
arguments of GENURLAUTH, URLFETCH (with RFC 5524's parameters) and RESETKEY. Sans I/O.

Only URLs naming one message or message part are read (imessagepart): an
absolute `imap://user@host/INBOX;UIDVALIDITY=n/;UID=m/;SECTION=s/;PARTIAL=o.l`
with its optional `;EXPIRE=` and `;URLAUTH=access[:mech:token]`, an
absolute-path `/INBOX/;UID=m...`, and the relative-path forms resolved
against a base mailbox (RFC 4469 §3: the selected one): `;UID=m...` in the
base mailbox itself (RFC 5092 §9.1), `name/;UID=m` beside it (RFC 3986 §5.2.3).
Mailbox names are UTF-8 with %-escapes in URLs and become modified UTF-7.
"""

from imap.command import ParseError
from imap.parser import Cursor, astring, atom, mailbox, section, space_separated

# What a URL may hold at all (RFC 3986 characters); anything else is no URL.
_URL_CHARS = frozenset(range(0x21, 0x7F)) - frozenset(b'"<>\\^`{|}')
_HEX = b"0123456789abcdefABCDEF"
_ACCESS_PREFIXES = (b"submit+", b"user+")
_ACCESS_WORDS = (b"authuser", b"anonymous")


class BadUrl(ValueError):
    """The text is not an IMAP URL naming a message or message part."""


class ImapUrl:
    """One parsed message (part) URL.

    user, host: str or None (absent in relative forms); mailbox: IMAP name
    bytes; uidvalidity: int or None; uid: int; section: command.Section or
    None; partial: (origin, length or None) or None; expire: aware datetime
    or None; access: the access identifier bytes or None; mechanism (upper
    case str) and token (bytes) when the URL carries a verifier; rump: the
    bytes of the URL before ":mech:token" (RFC 4467 §6).
    """

    __slots__ = ("user", "host", "port", "mailbox", "uidvalidity", "uid", "section", "partial",
                 "expire", "access", "mechanism", "token", "rump")

    def __init__(self):
        for name in self.__slots__:
            setattr(self, name, None)


def parse_url(text, base_mailbox=None):
    """The ImapUrl that text names, relative forms resolved against base_mailbox."""
    if not text or any(octet not in _URL_CHARS for octet in text):
        raise BadUrl("not a URL")
    url = ImapUrl()
    lowered = text.lower()
    if lowered.startswith(b"imap://") or lowered.startswith(b"//"):
        rest = text[text.index(b"//") + 2:]
        slash = rest.find(b"/")
        if slash < 0:
            raise BadUrl("no message in the URL")
        _iserver(url, rest[:slash])
        path = rest[slash + 1:]
    elif text.startswith(b"/"):
        path = text[1:]
    else:
        path = _merged(text, base_mailbox)
    _icommand(url, text, path)
    return url


def _merged(reference, base_mailbox):
    """A relative-path reference as a path below the server (RFC 5092 §7, RFC 3986 §5.2.3)."""
    if base_mailbox is None:
        raise BadUrl("a relative URL needs a selected mailbox")
    base = pct_encode(_mailbox_text(base_mailbox))
    if reference[:1] == b";":
        if not reference.upper().startswith(b";UID="):
            raise BadUrl("a relative URL must name a message")
        return base + b"/" + reference
    parent = base.rsplit(b"/", 1)[0] + b"/" if b"/" in base else b""
    return parent + reference


def _iserver(url, authority):
    """iserver = [iuserinfo "@"] host [":" port]"""
    userinfo, at, hostport = authority.rpartition(b"@")
    if at:
        user = userinfo.split(b";", 1)[0]
        if user:
            url.user = pct_decode(user).decode("utf-8", "strict")
    host, colon, port = hostport.partition(b":")
    if not host or (colon and not port.isdigit()):
        raise BadUrl("bad server in the URL")
    url.host, url.port = host.decode("ascii").lower(), int(port) if colon else None


def _icommand(url, text, path):
    """imessagepart [iurlauth]: mailbox, UIDVALIDITY, UID, SECTION, PARTIAL, EXPIRE, URLAUTH."""
    cut = path.upper().find(b"/;UID=")
    if cut <= 0:
        raise BadUrl("no message in the URL")
    _imailbox_ref(url, path[:cut])
    parts = path[cut + 2:].split(b";")
    _uid(url, parts[0])
    for previous, part in zip(parts, parts[1:]):
        _component(url, text, part, previous.endswith(b"/"))
    if path.endswith(b"/"):
        raise BadUrl("the URL ends in a slash")


def _imailbox_ref(url, ref):
    """enc-mailbox [";UIDVALIDITY=" nz-number]"""
    name, _, validity = ref.partition(b";")
    if validity:
        if not validity.upper().startswith(b"UIDVALIDITY="):
            raise BadUrl("bad mailbox in the URL")
        url.uidvalidity = _nz_number(validity[12:])
    from imap import utf7

    try:
        decoded = pct_decode(name).decode("utf-8", "strict")
        encoded = utf7.encode(decoded)
    except ValueError:
        raise BadUrl("bad mailbox name in the URL") from None
    if not encoded or any(seg in (b".", b"..") for seg in encoded.split(b"/")):
        raise BadUrl("bad mailbox name in the URL")
    url.mailbox = b"INBOX" if encoded.upper() == b"INBOX" else encoded


def _uid(url, part):
    """ "UID=" nz-number, then "/" when a SECTION or PARTIAL follows."""
    if not part.upper().startswith(b"UID="):
        raise BadUrl("no message in the URL")
    url.uid = _nz_number(part[4:].rstrip(b"/"))


def _component(url, text, part, slashed):
    """One ";NAME=value": SECTION and PARTIAL come after a "/", EXPIRE and URLAUTH without."""
    name, _, value = part.partition(b"=")
    name = name.upper()
    if name == b"SECTION" and slashed and url.section is None and url.partial is None:
        url.section = _section(value.rstrip(b"/"))
    elif name == b"PARTIAL" and slashed and url.partial is None:
        url.partial = _partial(value)
    elif name == b"EXPIRE" and not slashed and url.expire is None and url.access is None:
        url.expire = _expire(value)
    elif name == b"URLAUTH" and not slashed and url.access is None:
        _urlauth(url, text, value)
    else:
        raise BadUrl("bad component in the URL")


def _section(value):
    """enc-section: a %-encoded section-spec (RFC 3501), read by the command grammar."""
    spec = pct_decode(value)
    cursor = Cursor(b"[" + spec + b"]")
    try:
        result = section(cursor)
    except ParseError:
        raise BadUrl("bad section in the URL") from None
    if not cursor.at_end():
        raise BadUrl("bad section in the URL")
    return result


def _partial(value):
    """partial-range = number ["." nz-number]"""
    origin, dot, length = value.partition(b".")
    if not origin.isdigit() or len(origin) > 10:
        raise BadUrl("bad partial range in the URL")
    return int(origin), (_nz_number(length) if dot else None)


def _expire(value):
    """An RFC 3339 date-time with a zone."""
    import datetime

    try:
        moment = datetime.datetime.fromisoformat(value.decode("ascii"))
    except ValueError:
        raise BadUrl("bad expiry in the URL") from None
    if moment.tzinfo is None:
        raise BadUrl("bad expiry in the URL")
    return moment


def _urlauth(url, text, value):
    """access [":" mechanism ":" enc-urlauth]; the rump ends with access (RFC 4467 §6)."""
    access, colon, verifier = value.partition(b":")
    if not (access in _ACCESS_WORDS or any(
            access.startswith(p) and len(access) > len(p) for p in _ACCESS_PREFIXES)):
        raise BadUrl("bad access identifier in the URL")
    url.access = access
    if colon:
        mechanism, _, token = verifier.partition(b":")
        if not mechanism or len(token) < 32 or token.strip(_HEX):
            raise BadUrl("bad URLAUTH verifier")
        url.mechanism, url.token = mechanism.decode("ascii").upper(), token.lower()
        url.rump = text[:len(text) - len(verifier) - 1]
    else:
        url.rump = text


def _nz_number(digits):
    if not digits.isdigit() or digits.startswith(b"0") or len(digits) > 10 \
            or int(digits) > 4294967295:
        raise BadUrl("bad number in the URL")
    return int(digits)


def pct_decode(value):
    """%XX escapes resolved (RFC 3986 §2.1)."""
    if b"%" not in value:
        return value
    pieces = value.split(b"%")
    out = bytearray(pieces[0])
    for piece in pieces[1:]:
        if len(piece) < 2 or piece[:2].strip(_HEX):
            raise BadUrl("bad %-escape in the URL")
        out.append(int(piece[:2], 16))
        out += piece[2:]
    return bytes(out)


_UNRESERVED = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~"
                        b"!$'()*+,&=:@/")


def pct_encode(value):
    """bchar text for a decoded mailbox name (UTF-8 bytes)."""
    return b"".join(bytes((o,)) if o in _UNRESERVED else b"%%%02X" % o for o in value)


def _mailbox_text(name):
    """The UTF-8 bytes of an IMAP (modified UTF-7) mailbox name."""
    from imap import utf7

    try:
        return utf7.decode(name).encode("utf-8")
    except ValueError:
        raise BadUrl("the base mailbox has no URL form") from None


# -- command arguments (RFC 4467 §9, RFC 5524 §5) ---------------------------------


def genurlauth_arguments(cursor):
    """1*(SP url-rump SP mechanism)"""
    return (space_separated(cursor, _rump_and_mechanism, "Missing URL"),)


def _rump_and_mechanism(cursor):
    rump = astring(cursor, "Missing URL")
    cursor.space("Missing URLAUTH mechanism")
    return rump, atom(cursor, "Missing URLAUTH mechanism").decode("ascii").upper()


def urlfetch_arguments(cursor):
    """1*(SP (url-full / "(" url-full *(SP fetch-param) ")"))"""
    return (space_separated(cursor, _fetch_request, "Missing URL"),)


def _fetch_request(cursor):
    if cursor.peek() != b"(":
        return astring(cursor, "Missing URL"), None
    cursor.expect(b"(", "Missing URL")
    url = astring(cursor, "Missing URL")
    parameters = []
    while not cursor.skip(b")"):
        cursor.space("Invalid URLFETCH parameters")
        parameters.append(atom(cursor, "Invalid URLFETCH parameters").decode("ascii").upper())
    return url, tuple(parameters)


def resetkey_arguments(cursor):
    """[SP mailbox *(SP mechanism)]"""
    if cursor.at_end():
        return None, ()
    cursor.space("Missing mailbox name")
    name = mailbox(cursor)
    mechanisms = []
    while not cursor.at_end():
        cursor.space("Missing URLAUTH mechanism")
        mechanisms.append(atom(cursor, "Missing URLAUTH mechanism").decode("ascii").upper())
    return name, tuple(mechanisms)

