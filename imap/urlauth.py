"""URLAUTH (RFC 4467) and URLAUTH=BINARY (RFC 5524): GENURLAUTH, URLFETCH and RESETKEY.

Mechanism INTERNAL only: the token is HMAC-SHA256 of the rump URL under the
mailbox access key, as 64 hex digits (RFC 4467 §2.4.1 leaves the algorithm
to the server). Keys are 32 random bytes per mailbox, kept in one file per
user, `urlauth-keys` in the index directory, mode 0600, replaced whole by
rename; they are never logged nor sent.

Every session runs as its user and can read only that user's mail, so a
URL is honoured only in a session of the user it names (RFC 4467 §7 runs
URLFETCH "with the access of the userid in the server component"). Within
that: `user+NAME` needs NAME to be the session's user, `authuser` and
`anonymous` any session that reached URLFETCH (both need a login here), and
`submit+NAME` a message submission entity, which this server has none of:
such URLs can be generated for a submit server elsewhere but never fetched.
"""

import hmac
import os

from imap import wire
from imap.parser_url import BadUrl, parse_url
from imap.session import Bad, No

KEY_FILE = "urlauth-keys"
KEY_BYTES = 32
MECHANISM = "INTERNAL"


# -- the mailbox access keys --------------------------------------------------


def _key_path(session):
    return os.path.join(session.store.location.index_dir, KEY_FILE)


def _read_keys(session):
    """{mailbox name: key} from the user's key file ({} when there is none)."""
    try:
        with open(_key_path(session), "rb") as handle:
            lines = handle.read().split(b"\n")
    except FileNotFoundError:
        return {}
    keys = {}
    for line in lines:
        name, _, key = line.partition(b" ")
        try:
            keys[bytes.fromhex(name.decode("ascii"))] = bytes.fromhex(key.decode("ascii"))
        except ValueError:
            continue
    return keys


def _write_keys(session, keys):
    """Replace the key file: a new 0600 file renamed over the old one."""
    path = _key_path(session)
    os.makedirs(os.path.dirname(path), mode=0o700, exist_ok=True)
    temporary = "%s.%d.tmp" % (path, os.getpid())
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o600)
    try:
        os.fchmod(fd, 0o600)
        text = b"".join(b"%s %s\n" % (name.hex().encode(), key.hex().encode())
                        for name, key in sorted(keys.items()))
        view = memoryview(text)
        while view:
            view = view[os.write(fd, view):]
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(temporary, path)


def _key_for(session, name, create):
    """The mailbox's access key; a new one is made and saved when create is True."""
    keys = _read_keys(session)
    if name not in keys and create:
        keys[name] = os.urandom(KEY_BYTES)
        _write_keys(session, keys)
    return keys.get(name)


def _token(key, rump):
    import hashlib

    return hmac.new(key, rump, hashlib.sha256).hexdigest().encode("ascii")


# -- the commands -------------------------------------------------------------


def genurlauth(session, command):
    """RFC 4467 §7 GENURLAUTH: each rump URL with its INTERNAL verifier appended."""
    from imap.urls import own_server

    (pairs,) = command.args
    authorized = []
    for rump, mechanism in pairs:
        if mechanism != MECHANISM:
            raise Bad("Unsupported URLAUTH mechanism")
        try:
            url = parse_url(rump)
        except BadUrl:
            raise Bad("Invalid URL") from None
        if url.host is None or url.user is None or not own_server(session, url):
            raise Bad("The URL must name this server and the logged-in user")
        if url.access is None or url.mechanism is not None:
            raise Bad("The URL must end with ;URLAUTH=access and no verifier")
        _existing_mailbox(session, url.mailbox, Bad)
        key = _key_for(session, url.mailbox, create=True)
        authorized.append(rump + b":" + MECHANISM.encode() + b":" + _token(key, rump))
    session.send_untagged(b"GENURLAUTH " + b" ".join(wire.astring(u) for u in authorized))
    return "GENURLAUTH completed"


def resetkey(session, command):
    """RFC 4467 §7 RESETKEY: a new key for one mailbox, or no keys at all."""
    name, mechanisms = command.args
    if name is None:
        _write_keys(session, {})
        return "All keys removed"
    if any(mechanism != MECHANISM for mechanism in mechanisms):
        raise No("Unsupported URLAUTH mechanism")
    _existing_mailbox(session, name, No)
    keys = _read_keys(session)
    keys[name] = os.urandom(KEY_BYTES)
    _write_keys(session, keys)
    if session.selected and session.selected.name == name:
        session.send_untagged(b"OK [URLMECH INTERNAL] Key reset for the selected mailbox")
    return "[URLMECH INTERNAL] RESETKEY completed"


def _existing_mailbox(session, name, refusal):
    from mailstore import StoreError

    try:
        session.store.open_mailbox(name, readonly=True).close()
    except StoreError as error:
        if error.kind in (StoreError.NOT_FOUND, StoreError.NOT_SELECTABLE):
            raise refusal("No such mailbox") from None
        raise


_FETCH_PARAMETERS = frozenset(("BODY", "BINARY", "BODYPARTSTRUCTURE"))


def urlfetch(session, command):
    """RFC 4467 §7 URLFETCH, with RFC 5524's parameter lists; NIL for any URL that fails."""
    (requests,) = command.args
    for _, parameters in requests:
        if parameters is not None and (not set(parameters) <= _FETCH_PARAMETERS
                                       or {"BODY", "BINARY"} <= set(parameters)):
            raise Bad("Invalid URLFETCH parameters")
    for text, parameters in requests:
        _send_fetched(session, b"* URLFETCH " + wire.astring(text) + b" ", text, parameters)
    return "URLFETCH completed"


def _send_fetched(session, head, text, parameters):
    """Send `head`, then the nstring (or RFC 5524 metadata list) answering one URL; a
    large section goes as a streamed literal, sent while its mailbox is still open."""
    from imap.fetch import send_pieces
    from imap.urls import located

    try:
        with located(session, _validated(session, text)) as message:
            pieces = _fetched(message, parameters)
            send_pieces(session.send, [head] + pieces + [b"\r\n"])
    except BadUrl:
        session.send(head + b"NIL\r\n")


def _fetched(message, parameters):
    """The reply pieces for one Located message (imap.fetch.send_pieces sends them)."""
    if parameters is None:
        return _literal(message.body())
    items = []
    if "BODYPARTSTRUCTURE" in parameters:
        items.append([b"BODYPARTSTRUCTURE " + message.structure()])
    if "BINARY" in parameters:
        data = message.binary()
        items.append([b"BINARY "] + ([b"NIL"] if data is None else _literal(data)))
    elif "BODY" in parameters or not items:
        items.append([b"BODY "] + _literal(message.body()))
    return [b"("] + [piece for item in _spaced(items) for piece in item] + [b")"]


def _spaced(items):
    for number, item in enumerate(items):
        yield [b" "] + item if number else item


def _literal(data):
    """[literal] of bytes, or [marker, Streamed]: a literal8 when the data holds NUL (RFC 3516 §4.3)."""
    if isinstance(data, bytes):
        return [(b"~" if b"\0" in data else b"") + wire.literal(data)]
    has_nul = any(b"\0" in chunk for chunk in data.chunks())
    return [b"~" if has_nul else b"", data]


def _validated(session, text):
    """The parsed URL when its verifier and access identifier let this session use it."""
    import datetime

    from imap.urls import own_server

    url = parse_url(text)
    if url.token is None or url.host is None or url.user is None:
        raise BadUrl("not an authorized URL")
    # RFC 4467 §6: compute a token even for a mailbox without a key, so that
    # the time taken does not tell which mailboxes exist.
    key = _key_for(session, url.mailbox, create=False) if own_server(session, url) else None
    expected = _token(key or os.urandom(KEY_BYTES), url.rump)
    if key is None or url.mechanism != MECHANISM or not hmac.compare_digest(expected, url.token):
        raise BadUrl("verification failed")
    if url.expire is not None and url.expire <= datetime.datetime.now(datetime.timezone.utc):
        raise BadUrl("expired")
    if not _access_allowed(session, url.access):
        raise BadUrl("access denied")
    return url


def _access_allowed(session, access):
    """RFC 4467 §3 access identifiers, for a session logged in as its user."""
    from imap.parser_url import pct_decode

    if access in (b"authuser", b"anonymous"):
        return True
    if access.startswith(b"user+"):
        return pct_decode(access[5:]) == session.principal.name.encode("utf-8")
    return False  # submit+: no session here is a message submission entity
