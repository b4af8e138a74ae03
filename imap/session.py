"""One IMAP conversation (RFC 3501, and RFC 9051 once the client enables
IMAP4rev2): the protocol state and nothing else.

The session reads framed commands (imap.framing), parses them (imap.parser),
checks the command table for the state, runs the handler and answers. Storage
is reached only through the Store and Mailbox interfaces; authentication only
through auth.Authenticator.
"""

import time

from imap.command import ParseError
from imap.framing import CommandReady, Framer, LineTooLong, LiteralAnnounced, Rejected
from server import limits
from server.login import SessionCredentials, login_read_timeout, nologin_file
from server.replies import QueuedReplies
from server.transport import Disconnected, Timeout

VERSION = "pyimapd 0.1"
# APPEND literals of this size and more go to a scratch file as they arrive
# (imap.framing, mailstore.text.Spool): a 50 MB APPEND held in memory took 218 MB.
SPILL_LITERALS_FROM = 1 << 20
NOT_AUTHENTICATED, AUTHENTICATED, SELECTED, LOGOUT = (
    "not authenticated", "authenticated", "selected", "logout")

# Advertised after login, each only because it works (servers.md §3.1).
AUTHENTICATED_CAPABILITIES = [
    b"IDLE", b"NAMESPACE", b"UIDPLUS", b"CHILDREN", b"UNSELECT", b"MULTIAPPEND",
    b"MOVE", b"WITHIN", b"ESEARCH", b"SEARCHRES", b"SORT", b"SORT=DISPLAY", b"ESORT",
    b"CONTEXT=SEARCH", b"CONTEXT=SORT", b"THREAD=REFERENCES", b"THREAD=ORDEREDSUBJECT",
    b"NOTIFY", b"UTF8=ACCEPT", b"LIST-EXTENDED", b"LIST-STATUS", b"SPECIAL-USE", b"STATUS=SIZE",
    b"COMPRESS=DEFLATE", b"BINARY", b"CATENATE", b"URLAUTH", b"URLAUTH=BINARY",
    b"CONDSTORE", b"QRESYNC",
]
# What ENABLE turns on (RFC 5161), by upper-case name: the name ENABLED answers with.
ENABLEABLE = {"IMAP4REV2": "IMAP4rev2", "UTF8=ACCEPT": "UTF8=ACCEPT",
              "CONDSTORE": "CONDSTORE", "QRESYNC": "QRESYNC"}

# StoreError kind -> (RFC 5530 response code, text): the one place kinds become replies.
STORE_REPLIES = {
    "not-found": ("NONEXISTENT", "Mailbox does not exist"),
    "exists": ("ALREADYEXISTS", "Mailbox already exists"),
    "in-use": ("INUSE", "Mailbox is in use, try again later"),
    "no-permission": ("NOPERM", "Permission denied"),
    "temporary": ("UNAVAILABLE", "Mailbox is temporarily unavailable, try again later"),
    "corrupt": ("CORRUPTION", "Mailbox is damaged or not in a format this server reads"),
    "has-children": ("HASCHILDREN", "Mailbox has inferior hierarchical names"),
    "not-selectable": ("CANNOT", "Mailbox only holds other mailboxes and cannot hold messages"),
    "expunged": ("EXPUNGEISSUED", "Some of the requested messages no longer exist"),
}


class No(Exception):
    """Answer the command `NO [code] text`."""

    def __init__(self, text, code=None):
        super().__init__(text)
        self.text, self.code = text, code


class Bad(Exception):
    """Answer the command `BAD text`."""


class CloseSession(Exception):
    """Leave the command loop after the replies already sent."""


class ImapSession(SessionCredentials, QueuedReplies):
    """The state of one connection: login, selected mailbox, output buffer."""

    def __init__(self, transport, config, log, hostname):
        super().__init__(transport, config, log, hostname)
        self.state = NOT_AUTHENTICATED
        self.framer = Framer(limits.IMAP_MAX_LINE, limits.IMAP_MAX_LITERAL)
        self.store = None
        self.selected = None
        self.enabled = set()
        # NOTIFY (RFC 5465): an imap.notify.Notifier while events are wanted.
        self.notifier = None
        # A large APPEND literal is written to a spool as it arrives, not held.
        self.literal_spool, self.spilled = None, {}

    # -- the loop ---------------------------------------------------------

    def run(self):
        if nologin_file(self.config):
            self.refuse_service()
            return
        self.send_untagged(b"OK [CAPABILITY " + self.capability_text() + b"] " + self.banner())
        try:
            while self.state != LOGOUT:
                self.flush()
                self.serve_one(self.next_command())
            self.flush()
        except CloseSession:
            self.flush_quietly()
        except Timeout:
            self.autologout()
        except Disconnected:
            if self.principal:
                self.log("info", "Hangup user=%s host=%s" % (self.principal.name, self.host))
        finally:
            if self.selected:
                self.selected.close()
            if self.notifier:
                self.notifier.close()

    def banner(self):
        return ("%s IMAP4rev1 %s at %s" % (self.hostname, VERSION, _now_text())).encode()

    def refuse_service(self):
        """UW imapd while /etc/nologin exists: `* BYE Service not available` and the banner, then close."""
        self.log("notice", "Service not available (%s exists) host=%s"
                 % (self.config.nologin_file, self.host))
        self.send_untagged(b"BYE Service not available " + self.banner())
        self.flush_quietly()

    def next_command(self):
        """The next complete command's bytes, answering literal announcements on the way."""
        while True:
            event = self.framer.next_event()
            if event is None:
                self.flush()  # every answer is out before we wait for the client
                if self.notifier and not self.framer.partial():
                    # No command in progress: NOTIFY's events may go out (RFC 5465 §3).
                    self.notifier.wait_for_client(self.read_timeout())
                self.framer.feed(self.transport.read(self.read_timeout()))
            elif isinstance(event, CommandReady):
                self.spilled = event.spilled
                return event.data
            elif isinstance(event, LiteralAnnounced):
                self.answer_literal(event)
            elif isinstance(event, LineTooLong):
                self.bad_command(b"* BAD Command line too long")
            elif isinstance(event, Rejected):
                continue

    def answer_literal(self, event):
        """Check a literal's size before the client sends it (RFC 3501 §7.5, RFC 7888)."""
        head = self.framer.partial()
        tag = head.split(b" ", 1)[0] or b"*"
        appending = _is_append(head) and self.state != NOT_AUTHENTICATED
        limit = self.config.imap_max_append_size if appending else limits.IMAP_MAX_LITERAL
        if event.size > limit or self.framer.literal_count() >= limits.IMAP_MAX_LITERALS:
            self.framer.reject_literal()
            self.log("notice", "Absurdly long client literal (%d bytes) host=%s"
                     % (event.size, self.host))
            if appending:
                self.send(tag + b" NO [TOOBIG] Message is larger than this server accepts\r\n")
            else:
                self.bad_command(tag + b" BAD Literal is too long")
            return
        self.framer.accept_literal(self._literal_spool() if appending
                                   and event.size >= SPILL_LITERALS_FROM else None)
        if event.synchronizing:
            self.send(b"+ Ready for argument\r\n")
            self.flush()

    def _literal_spool(self):
        """Where a large APPEND literal goes as it arrives: a scratch file in the
        user's index directory, closed when its command is done (serve_one)."""
        if self.literal_spool is None:
            from mailstore.text import Spool

            self.literal_spool = Spool(self.store.location.index_dir, limit=0)
        return self.literal_spool

    def serve_one(self, data):
        spilled, self.spilled = self.spilled, {}
        try:
            self._serve(data, spilled)
        finally:
            if self.literal_spool is not None:
                self.literal_spool.close()
                self.literal_spool = None

    def _serve(self, data, spilled):
        from imap.commands import COMMANDS
        from imap.parser import parse_command

        try:
            command = parse_command(data, utf8=self.utf8, rev2=self.rev2, spilled=spilled)
        except ParseError as error:
            tag = error.tag.encode() if isinstance(error.tag, str) else (error.tag or b"*")
            self.bad_command(tag + b" BAD " + error.text.encode("ascii", "replace"))
            return
        entry = COMMANDS.get(command.name)
        tag = _tag_bytes(command.tag)
        if entry is None:
            self.bad_command(tag + b" BAD Command unrecognized")
            return
        if self.state not in entry.states:
            self.send_line(tag + b" BAD Command not valid in %s state"
                           % self.state.encode())
            return
        self.run_handler(entry, command, tag)

    def run_handler(self, entry, command, tag):
        from mailstore import StoreError

        try:
            text = entry.handler(self, command)
            status = b"OK"
        except No as refusal:
            status, text = b"NO", ("[%s] %s" % (refusal.code, refusal.text)
                                   if refusal.code else refusal.text)
        except Bad as error:
            status, text = b"BAD", str(error)
        except StoreError as error:
            status, text = b"NO", self.store_error_text(error)
        if text is None:
            return  # the handler sent its own tagged reply (STARTTLS)
        if self.selected and entry.reports_changes:
            self.selected.report_changes(allow_expunge=entry.allows_expunge or command.uid
                                         or bool(self.notifier and self.notifier.expunge_any_time))
        if self.notifier and entry.reports_changes:
            self.notifier.after_command(command.name)
        self.send_line(tag + b" " + status + b" " + text.encode("utf-8", "replace"))

    def store_error_text(self, error):
        code, text = STORE_REPLIES.get(error.kind, STORE_REPLIES["temporary"])
        if error.kind in ("temporary", "corrupt"):
            self.log("err", "mailbox error user=%s: %s" % (self.user_name, error))
        return "[%s] %s" % (code, text)

    def read_timeout(self):
        if self.state != NOT_AUTHENTICATED:
            return self.config.imap_inactivity_timeout
        return login_read_timeout(self.config, self.started)

    def autologout(self):
        text = b"* BYE Autologout; idle for too long\r\n"
        if self.principal:
            self.log("info", "Autologout user=%s host=%s" % (self.principal.name, self.host))
        else:
            text = b"* BYE Autologout\r\n"
            self.log("info", "Autologout host=%s" % self.host)
        self.send(text)
        self.flush_quietly()

    def bad_command(self, line):
        """A BAD reply that counts toward the budget; then BYE (servers.md §3.2)."""
        self.bad_commands += 1
        self.send_line(line)
        if self.bad_commands >= limits.MAX_BAD_COMMANDS:
            self.send_line(b"* BYE Too many bad commands")
            raise CloseSession()

    # -- output -----------------------------------------------------------

    def send_line(self, data):
        self.send(data + b"\r\n")

    def send_untagged(self, data):
        self.send(b"* " + data + b"\r\n")

    @property
    def user_name(self):
        return self.principal.name if self.principal else "?"

    # -- IMAP4rev2 and UTF-8 names ---------------------------------------------

    @property
    def rev2(self):
        """True once the client enabled IMAP4rev2 (RFC 9051): no \\Recent, ESEARCH answers."""
        return "IMAP4REV2" in self.enabled

    @property
    def condstore(self):
        """True once a CONDSTORE enabling command ran (RFC 7162 §3.1); QRESYNC implies it."""
        return bool(self.enabled & {"CONDSTORE", "QRESYNC"})

    @property
    def qresync(self):
        """True after ENABLE QRESYNC: VANISHED instead of EXPUNGE (RFC 7162 §3.2.10)."""
        return "QRESYNC" in self.enabled

    def enable_condstore(self):
        """A command that uses CONDSTORE enables it implicitly (RFC 7162 §3.1)."""
        from imap import condstore

        self.enabled.add("CONDSTORE")
        if self.selected:
            condstore.start_modseqs(self.selected)

    @property
    def utf8(self):
        """True when mailbox names and quoted strings are UTF-8 (RFC 9051 §5.1, RFC 6855 §3)."""
        return bool(self.enabled & {"IMAP4REV2", "UTF8=ACCEPT"})

    def mailbox_name(self, name):
        """The store's name for a mailbox name as the client sent it."""
        from imap.names import BadName, to_store

        try:
            return to_store(name, self.utf8)
        except BadName:
            raise Bad("Mailbox name is not valid UTF-8") from None

    def wire_name(self, name):
        """A store name as the mailbox of a response, in the client's form."""
        from imap.names import astring

        return astring(name, self.utf8)

    # -- capabilities -----------------------------------------------------

    def plaintext_allowed(self):
        return (not self.config.disable_plaintext_auth or self.transport.encrypted
                or self.transport.is_loopback())

    def starttls_offered(self):
        return (not self.transport.encrypted and bool(self.config.ssl_cert_file)
                and self.transport.sock is not None)

    def sasl_mechanisms(self):
        from auth import challenge_mechanisms_enabled

        names = ["PLAIN", "LOGIN"] if self.plaintext_allowed() else []
        if challenge_mechanisms_enabled(self.config):
            names.append("CRAM-MD5")
        return names

    def capability_text(self):
        words = [b"IMAP4rev1", b"IMAP4rev2", b"LITERAL+", b"ID", b"ENABLE"]
        if self.state == NOT_AUTHENTICATED:
            words.append(b"SASL-IR")
            if self.starttls_offered():
                words.append(b"STARTTLS")
            if not self.plaintext_allowed():
                words.append(b"LOGINDISABLED")
            words += [b"AUTH=" + name.encode() for name in self.sasl_mechanisms()]
        else:
            words += AUTHENTICATED_CAPABILITIES
        return b" ".join(words)

    # -- login --------------------------------------------------------------

    @property
    def pam_service(self):
        return self.config.imap_pam_service

    def login(self, user, method, check):
        """Check credentials, become the user, open the store; the tagged OK text."""
        from server.login import LoginRefused, attempt_login

        try:
            principal = attempt_login(self, user, check, self.pam_service)
        except LoginRefused as refusal:
            if refusal.disabled:
                raise No("Logins are disabled, try again later", "UNAVAILABLE") from None
            if refusal.closing:
                self.send_line(b"* BYE Too many login failures")
                raise CloseSession() from None
            raise No("Invalid login credentials" if method == "login"
                     else "Invalid authentication credentials", "AUTHENTICATIONFAILED") from None
        self.become(principal)
        if method == "login":
            self.log("info", "Login user=%s host=%s" % (principal.name, self.host))
        else:
            self.log("info", "Authenticated user=%s host=%s mech=%s"
                     % (principal.name, self.host, method))
        return "[CAPABILITY %s] User %s authenticated" % (
            self.capability_text().decode(), principal.name)

    def become(self, principal):
        """Drop root for the user and open the user's store (RFC 3501 §6.2 then §3)."""
        from mailstore import open_store
        from server.login import become_user

        if not become_user(principal, self.config, self.log, self.host):
            self.send_line(b"* BYE Unable to serve this user")
            raise CloseSession()
        self.principal = principal
        self.store = open_store(principal, self.config, self.log)
        self.state = AUTHENTICATED

    # -- STARTTLS -------------------------------------------------------------

    def start_tls(self, tag):
        """Answer OK, then handshake; nothing the client sent before it is kept."""
        if self.tls_context is None:
            try:
                self.tls_context = self.make_tls_context()
            except (OSError, ValueError) as error:  # a missing certificate must not end the session
                self.log("err", "STARTTLS failed: cannot load certificate: %s" % error)
                raise No("STARTTLS failed: server certificate unavailable", "UNAVAILABLE") from None
        self.send_line(tag + b" OK Begin TLS negotiation now")
        self.flush()
        self.framer.reset()
        self.transport.start_tls(self.tls_context)

    # -- COMPRESS ---------------------------------------------------------------

    def start_compression(self, tag):
        """Answer OK, then deflate both ways (RFC 4978 §3).

        The client may not send anything before it has seen the OK, so bytes
        already received after the command are compressed input too.
        """
        self.send_line(tag + b" OK DEFLATE active")
        self.flush()
        self.transport.start_compression(self.framer.take_unread())


def _is_append(head):
    """True when the command so far is APPEND (its literals get the larger limit)."""
    words = head.split(b" ", 2)
    return len(words) >= 2 and words[1].upper() == b"APPEND"


def _tag_bytes(tag):
    return tag.encode("ascii", "replace") if isinstance(tag, str) else tag


def _now_text():
    """The greeting's date in RFC 822 form with a zone comment, as UW prints it."""
    now = time.localtime()
    return time.strftime("%a, %d %b %Y %H:%M:%S %z", now) + " (%s)" % time.strftime("%Z", now)
