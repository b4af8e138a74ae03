"""The IMAP command table and the commands valid in any state (RFC 3501 §6.1, §6.2).

Each entry names its handler, the states where it is legal, and whether
mailbox changes may be reported after it: no EXPUNGE after FETCH, STORE
and SEARCH (RFC 3501 §7.4.1), though their UID forms allow it.
"""

from imap.session import AUTHENTICATED, LOGOUT, NOT_AUTHENTICATED, SELECTED, Bad, No

ANY = (NOT_AUTHENTICATED, AUTHENTICATED, SELECTED)
LOGGED_IN = (AUTHENTICATED, SELECTED)


def _later(module, name):
    """A handler imported on first use: the greeting must not load the mailbox code."""
    def handler(session, command):
        from importlib import import_module

        return getattr(import_module("imap." + module), name)(session, command)

    handler.__qualname__ = "%s.%s" % (module, name)
    return handler


class Entry:
    """One row of the command table."""

    __slots__ = ("handler", "states", "reports_changes", "allows_expunge")

    def __init__(self, handler, states, reports_changes=True, allows_expunge=True):
        self.handler, self.states = handler, states
        self.reports_changes, self.allows_expunge = reports_changes, allows_expunge


def capability(session, command):
    """RFC 3501 §6.1.1."""
    session.send_untagged(b"CAPABILITY " + session.capability_text())
    return "CAPABILITY completed"


def noop(session, command):
    """RFC 3501 §6.1.2: changes are reported by the table's reports_changes."""
    return "NOOP completed"


def logout(session, command):
    """RFC 3501 §6.1.3."""
    session.send_untagged(b"BYE %s IMAP4rev1 server terminating connection"
                          % session.hostname.encode())
    if session.selected:
        session.selected.close()
        session.selected = None
    if session.principal:
        session.log("info", "Logout user=%s host=%s" % (session.principal.name, session.host))
    session.state = LOGOUT
    return "LOGOUT completed"


def starttls(session, command):
    """RFC 3501 §6.2.1; the tagged OK is sent by start_tls before the handshake."""
    if not session.starttls_offered():
        raise Bad("STARTTLS not available")
    session.start_tls(command.tag.encode() if isinstance(command.tag, str) else command.tag)
    return None


def compress(session, command):
    """RFC 4978; the tagged OK is sent by start_compression before deflating starts."""
    (mechanism,) = command.args
    if mechanism != "DEFLATE":
        raise Bad("Unknown compression mechanism")
    if session.transport.compressing:
        raise No("DEFLATE is active already", "COMPRESSIONACTIVE")
    session.start_compression(command.tag.encode() if isinstance(command.tag, str)
                              else command.tag)
    return None


def login(session, command):
    """RFC 3501 §6.2.3; refused without TLS on non-local links (LOGINDISABLED)."""
    if not session.plaintext_allowed():
        raise No("Plaintext authentication disallowed on non-secure connections",
                 "PRIVACYREQUIRED")
    user, password = (arg.decode("utf-8", "surrogateescape") for arg in command.args)
    return session.login(user, "login",
                         lambda auth: auth.check_password(user, password, session.host))


def authenticate(session, command):
    """RFC 3501 §6.2.2 with SASL-IR (RFC 4959)."""
    from auth import sasl

    name, initial = command.args
    if name not in session.sasl_mechanisms():
        raise No("Unsupported authentication mechanism", "CANNOT")
    mechanism = sasl.start(name, session.authenticator(), session.hostname, session.host)
    data = None if initial is None else (b"" if initial == b"=" else _decoded(initial))
    return session.login("*", name, lambda auth: _exchange(session, mechanism, data))


def _exchange(session, mechanism, data):
    """Challenges and responses until the mechanism yields a principal (RFC 3501 §6.2.2)."""
    import base64  # here, not at the top: base64 brings `re`, which LOGIN never needs

    from auth import sasl

    def ask(challenge):
        session.send_line(b"+ " + base64.b64encode(challenge))
        session.flush()
        line = session.next_command()
        if line == b"*":
            raise Bad("AUTHENTICATE cancelled")  # RFC 3501 §6.2.2: a tagged BAD
        return _decoded(line)

    return sasl.run_exchange(mechanism, data, ask)


def _decoded(text):
    """A client's base64 SASL message; anything else is a syntax error (BAD), not a failed login."""
    from auth import sasl

    data = sasl.decode_response(text)
    if data is sasl.INVALID:
        raise Bad("Invalid base64 in authentication response")
    return data


def id_command(session, command):
    """RFC 2971: the server's identity; the client's is logged, not trusted."""
    (parameters,) = command.args
    if parameters:
        text = " ".join("%s=%s" % (k.decode("utf-8", "replace"),
                                   (v or b"NIL").decode("utf-8", "replace"))
                        for k, v in parameters)
        session.log("info", "ID %s host=%s" % (text[:200], session.host))
    session.send_untagged(b'ID ("name" "pyimapd" "version" "0.1")')
    return "ID completed"


def enable(session, command):
    """RFC 5161: IMAP4rev2 (RFC 9051), UTF8=ACCEPT (RFC 6855), CONDSTORE and
    QRESYNC (RFC 7162, QRESYNC implies CONDSTORE); ENABLED names what this
    command turned on, and nothing else is enabled."""
    from imap.session import ENABLEABLE

    (names,) = command.args
    fresh = []
    for name in names:
        if name in ENABLEABLE and name not in session.enabled:
            session.enabled.add(name)
            fresh.append(ENABLEABLE[name])
    if "IMAP4rev2" in fresh and session.selected:
        # Clients enable before SELECT (RFC 5161 §3.1); one that did not
        # stops seeing \Recent from here on.
        session.selected.forget_recent()
    if session.condstore and session.selected:
        from imap import condstore

        condstore.start_modseqs(session.selected)
    session.send_untagged(b" ".join([b"ENABLED"] + [name.encode() for name in fresh]))
    return "ENABLE completed"


def namespace(session, command):
    """RFC 2342: one personal namespace, the user's mail root, delimiter "/"."""
    session.send_untagged(b'NAMESPACE (("" "/")) NIL NIL')
    return "NAMESPACE completed"


COMMANDS = {
    "CAPABILITY": Entry(capability, ANY),
    "NOOP": Entry(noop, ANY),
    "LOGOUT": Entry(logout, ANY, reports_changes=False),
    "STARTTLS": Entry(starttls, (NOT_AUTHENTICATED,), reports_changes=False),
    "AUTHENTICATE": Entry(authenticate, (NOT_AUTHENTICATED,)),
    "COMPRESS": Entry(compress, LOGGED_IN, reports_changes=False),
    "LOGIN": Entry(login, (NOT_AUTHENTICATED,)),
    "ID": Entry(id_command, ANY),
    "ENABLE": Entry(enable, LOGGED_IN),
    "NAMESPACE": Entry(namespace, LOGGED_IN),
    "SELECT": Entry(_later("mailboxes", "select"), LOGGED_IN, reports_changes=False),
    "EXAMINE": Entry(_later("mailboxes", "examine"), LOGGED_IN, reports_changes=False),
    "CREATE": Entry(_later("mailboxes", "create"), LOGGED_IN),
    "DELETE": Entry(_later("mailboxes", "delete"), LOGGED_IN),
    "RENAME": Entry(_later("mailboxes", "rename"), LOGGED_IN),
    "SUBSCRIBE": Entry(_later("mailboxes", "subscribe"), LOGGED_IN),
    "UNSUBSCRIBE": Entry(_later("mailboxes", "unsubscribe"), LOGGED_IN),
    "LIST": Entry(_later("listing", "list_mailboxes"), LOGGED_IN),
    "LSUB": Entry(_later("listing", "lsub"), LOGGED_IN),
    "STATUS": Entry(_later("mailboxes", "status"), LOGGED_IN),
    "APPEND": Entry(_later("mailboxes", "append"), LOGGED_IN),
    "CHECK": Entry(_later("selected", "check"), (SELECTED,)),
    "CLOSE": Entry(_later("selected", "close"), (SELECTED,), reports_changes=False),
    "UNSELECT": Entry(_later("selected", "unselect"), (SELECTED,), reports_changes=False),
    "EXPUNGE": Entry(_later("selected", "expunge"), (SELECTED,)),
    "SEARCH": Entry(_later("selected", "search"), (SELECTED,), allows_expunge=False),
    "SORT": Entry(_later("selected", "sort"), (SELECTED,), allows_expunge=False),
    "CANCELUPDATE": Entry(_later("selected", "cancelupdate"), (SELECTED,)),
    "THREAD": Entry(_later("selected", "thread"), (SELECTED,), allows_expunge=False),
    "FETCH": Entry(_later("selected", "fetch"), (SELECTED,), allows_expunge=False),
    "STORE": Entry(_later("selected", "store"), (SELECTED,), allows_expunge=False),
    "COPY": Entry(_later("selected", "copy"), (SELECTED,)),
    "MOVE": Entry(_later("selected", "move"), (SELECTED,)),
    "IDLE": Entry(_later("idle", "idle"), (SELECTED, AUTHENTICATED)),
    "GENURLAUTH": Entry(_later("urlauth", "genurlauth"), LOGGED_IN),
    "URLFETCH": Entry(_later("urlauth", "urlfetch"), LOGGED_IN),
    "RESETKEY": Entry(_later("urlauth", "resetkey"), LOGGED_IN),
    "NOTIFY": Entry(_later("notify", "notify"), LOGGED_IN),
}
