"""One POP3 conversation as UW ipop3d holds it (reference/servers.md §2).

The connection is fd 0/1 (server.transport). The session greets,
authenticates, drops root for the user, opens INBOX under the MTA's locks and
serves it. Only what the greeting needs is imported before it; the rest is
imported where it is first used.
"""


import os
import time
from array import array

from server import limits
from server.login import SessionCredentials, login_read_timeout, nologin_file
from server.replies import QueuedReplies
from server.transport import Disconnected, LineTooLong, Timeout

VERSION = "pyimapd 0.1"
AUTHORIZATION, TRANSACTION = "AUTHORIZATION", "TRANSACTION"

# StoreError kind -> POP3 reply (RFC 2449 and RFC 3206 response codes).
STORE_REPLIES = {
    "in-use": "-ERR [IN-USE] Mailbox is locked by another POP3 session",
    "temporary": "-ERR [SYS/TEMP] Unable to open mailbox, try again later",
    "corrupt": "-ERR [SYS/PERM] Mailbox is not in a format this server can read",
    "no-permission": "-ERR [SYS/PERM] Mailbox access denied",
    "not-found": "-ERR [SYS/PERM] No mailbox",
}

# A failed login's reply by method, in UW's words (servers.md §2.2), with RFC 3206's [AUTH].
LOGIN_FAILURE_REPLIES = {
    "user": "-ERR [AUTH] Bad login",
    "apop": "-ERR [AUTH] Bad APOP",
    "auth": "-ERR [AUTH] Bad authentication",
}


class AuthCancelled(Exception):
    """The client answered a SASL challenge with `*` (RFC 5034 §4): not a failed login."""


class CloseSession(Exception):
    """Leave the command loop after the reply that was already sent."""


# Lines of a LIST or UIDL listing made and sent together.
LISTING_PIECE = 4096


class NumberSet:
    """A set of message numbers 1..size, one byte each: 100 kB for 100,000 messages,
    where a set of that many ints takes 7 MB."""

    __slots__ = ("_marks", "_count")

    def __init__(self, size, numbers=()):
        marks = bytearray(size + 1)
        for number in numbers:
            marks[number] = 1
        self._marks, self._count = marks, marks.count(1)

    def add(self, number):
        if not self._marks[number]:
            self._marks[number] = 1
            self._count += 1

    def __contains__(self, number):
        return 0 < number < len(self._marks) and self._marks[number] == 1

    def __len__(self):
        return self._count

    def __iter__(self):
        number = self._marks.find(1)
        while number >= 0:
            yield number
            number = self._marks.find(1, number + 1)

    def highest(self):
        """The largest number in the set, or 0."""
        return max(self._marks.rfind(1), 0)

    def clear(self):
        self._marks = bytearray(len(self._marks))
        self._count = 0


class Maildrop:
    """The session's fixed view of INBOX: messages numbered 1..n, deletions pending."""

    def __init__(self, mailbox):
        from mailstore.mboxformat import DELETED, OLD, SEEN

        self.mailbox = mailbox
        self.messages = [m for m in mailbox.messages if not m.flags & DELETED]
        count = len(self.messages)
        self.deleted = NumberSet(count)
        self.retrieved = NumberSet(count)
        self.initially_seen = NumberSet(count, (i for i, m in enumerate(self.messages, 1)
                                                if m.flags & SEEN))
        self.recent = NumberSet(count, (i for i, m in enumerate(self.messages, 1)
                                        if not m.flags & OLD))
        self.first_last = self.initially_seen.highest()
        self.last = self.first_last
        self._sizes = None

    def size(self, number):
        """UW's POP3 size: the CRLF size plus its 12-byte synthesized Status: line."""
        return self.sizes()[number - 1]

    def sizes(self):
        """Every message's size, worked out once: STAT and LIST each need all of them."""
        if self._sizes is None:
            self._sizes = array("q", [m.size + 12 for m in self.messages])
        return self._sizes

    def total_size(self):
        return sum(self.sizes()) - sum(self.size(i) for i in self.deleted)

    def uidl(self, number):
        """UW's unique id: UIDVALIDITY and UID as 8 lowercase hex digits each."""
        return "%08x%08x" % (self.mailbox.uidvalidity, self.messages[number - 1].uid)

    def size_listing(self):
        """`n size` lines for every live message (LIST without an argument), in pieces."""
        sizes = self.sizes()
        return self._pieces(lambda number: "%d %d" % (number, sizes[number - 1]))

    def uidl_listing(self):
        """`n unique-id` lines for every live message (UIDL without an argument), in pieces."""
        prefix, messages = "%08x" % self.mailbox.uidvalidity, self.messages
        return self._pieces(lambda number: "%d %s%08x" % (number, prefix, messages[number - 1].uid))

    def _pieces(self, line):
        """CRLF lines for the live messages, a few thousand at a time: sent as they are
        made, 100,000 of them never sit in memory at once (a list of them took 10 MB)."""
        count, deleted = len(self.messages), self.deleted
        for first in range(1, count + 1, LISTING_PIECE):
            numbers = range(first, min(first + LISTING_PIECE, count + 1))
            lines = [line(number) for number in numbers if number not in deleted]
            if lines:
                yield ("\r\n".join(lines) + "\r\n").encode("ascii")

    def status_line(self, number):
        seen = "R" if number in self.initially_seen else " "
        old = " " if number in self.recent else "O"
        return ("Status: %s%s\r\n" % (seen, old)).encode("ascii")

    def reset(self):
        self.deleted.clear()
        self.retrieved.clear()
        self.last = self.first_last


class WireWriter:
    """Turns stored LF text into dot-stuffed CRLF lines for a multi-line reply."""

    def __init__(self, write):
        self.write = write
        self.at_line_start = True

    def send(self, chunk):
        chunk = bytes(chunk).replace(b"\r", b"").replace(b"\n", b"\r\n")
        if not chunk:
            return
        chunk = chunk.replace(b"\r\n.", b"\r\n..")
        if self.at_line_start and chunk.startswith(b"."):
            chunk = b"." + chunk
        self.at_line_start = chunk.endswith(b"\n")
        self.write(chunk)

    def finish(self):
        self.write(b".\r\n" if self.at_line_start else b"\r\n.\r\n")


class Pop3Session(SessionCredentials, QueuedReplies):
    """One POP3 conversation: the protocol state and nothing else."""

    def __init__(self, transport, config, log, hostname):
        super().__init__(transport, config, log, hostname)
        self.state = AUTHORIZATION
        self.user = None
        self.maildrop = None
        self.apop_stamp = None

    # -- the loop ---------------------------------------------------------

    def run(self):
        if nologin_file(self.config):
            self.refuse_service()
            self.flush_quietly()
            return
        self.reply(self.greeting())
        try:
            while True:
                self.serve_one()
        except CloseSession:
            pass
        except Timeout:
            self.autologout()
        except Disconnected:
            if self.principal:
                self.log("info", "Hangup user=%s host=%s" % (self.principal.name, self.host))
        finally:
            self.flush_quietly()
            if self.maildrop:
                self.maildrop.mailbox.close()

    def serve_one(self):
        if not self.transport.pending():
            self.flush()  # the client waits for these before it sends more
        try:
            line = self.transport.readline(limits.POP3_MAX_LINE, self.read_timeout())
        except LineTooLong:
            self.bad_command("-ERR Command line too long")
            return
        word, _, argument = line.partition(b" ")
        entry = COMMANDS.get(word.upper())
        if not line:
            self.bad_command("-ERR Null command")
        elif entry is None or self.state not in entry[1]:
            self.bad_command("-ERR Unknown %s state command" % self.state)
        else:
            entry[0](self, argument)

    def refuse_service(self):
        """Logins are disabled (UW imapd's /etc/nologin rule, which ipop3d lacks): say so and leave."""
        self.log("notice", "Service not available (%s exists) host=%s"
                 % (self.config.nologin_file, self.host))
        self.reply("-ERR [SYS/TEMP] Service not available, logins are disabled")

    def read_timeout(self):
        if self.state == TRANSACTION:
            return self.config.pop3_inactivity_timeout
        return login_read_timeout(self.config, self.started)

    def autologout(self):
        """A timeout: say so and leave; in TRANSACTION no deletion is applied (UW)."""
        if self.state == TRANSACTION:
            self.reply("-ERR Autologout; idle for too long")
            self.log("info", "Autologout user=%s host=%s" % (self.principal.name, self.host))
        else:
            self.reply("-ERR Autologout")
            self.log("info", "Autologout host=%s" % self.host)

    def bad_command(self, text):
        self.bad_commands += 1
        if self.bad_commands >= limits.MAX_BAD_COMMANDS:
            self.reply("-ERR Too many bad commands, closing connection")
            raise CloseSession()
        self.reply(text)

    def reply(self, text):
        self.send(text.encode("utf-8", "replace") + b"\r\n")

    # -- output: batched, so pipelined replies leave in one write --------

    # -- greeting and capabilities ---------------------------------------

    def greeting(self):
        text = self.config.login_greeting or "POP3 %s %s server ready" % (self.hostname, VERSION)
        if self.challenge_mechanisms():
            self.apop_stamp = "<%x.%x@%s>" % (os.getpid(), int(time.time()), self.hostname)
            if not self.config.login_greeting:
                text = "POP3 %s server ready" % VERSION  # nothing between +OK and POP3 (UW)
            return "+OK %s %s" % (text, self.apop_stamp)
        return "+OK %s" % text

    def challenge_mechanisms(self):
        """APOP and CRAM-MD5 exist only where plaintext secrets do (servers.md §4.2)."""
        from auth import challenge_mechanisms_enabled

        return challenge_mechanisms_enabled(self.config)

    def plaintext_allowed(self):
        return (not self.config.disable_plaintext_auth or self.transport.encrypted
                or self.transport.is_loopback())

    def stls_offered(self):
        return (self.state == AUTHORIZATION and not self.transport.encrypted
                and bool(self.config.ssl_cert_file) and self.transport.sock is not None)

    def sasl_mechanisms(self):
        names = []
        if self.plaintext_allowed():
            names += ["PLAIN", "LOGIN"]
        if self.challenge_mechanisms():
            names.append("CRAM-MD5")
        return names

    def capabilities(self):
        caps = ["TOP", "UIDL", "RESP-CODES", "AUTH-RESP-CODE", "PIPELINING",
                "EXPIRE NEVER", "LOGIN-DELAY %d" % limits.POP3_LOGIN_DELAY]
        if self.state == AUTHORIZATION:
            if self.plaintext_allowed():
                caps.append("USER")
            mechanisms = self.sasl_mechanisms()
            if mechanisms:
                caps.append("SASL " + " ".join(mechanisms))
            if self.stls_offered():
                caps.append("STLS")
        caps.append("IMPLEMENTATION %s" % VERSION.replace(" ", "-"))
        return caps

    def multiline(self, first, lines):
        self.send(("\r\n".join([first, *lines, "."]) + "\r\n").encode("ascii"))

    def cmd_capa(self, argument):
        self.multiline("+OK Capability list follows:", self.capabilities())

    def cmd_noop(self, argument):
        self.reply("+OK No-op to you too!")

    # -- AUTHORIZATION ----------------------------------------------------

    def cmd_user(self, argument):
        if not self.plaintext_allowed():
            self.reply("-ERR [AUTH] Plaintext authentication disallowed on non-secure connections")
            return
        name = argument.lstrip(b" ").decode("utf-8", "surrogateescape")
        if not name:
            self.reply("-ERR Missing username argument")
            return
        self.user = name
        self.reply("+OK User name accepted, password please")

    def cmd_pass(self, argument):
        if not self.plaintext_allowed():
            self.reply("-ERR [AUTH] Plaintext authentication disallowed on non-secure connections")
            return
        if self.user is None:
            self.reply("-ERR No USER command given")
            return
        user, self.user = self.user, None
        password = argument.decode("utf-8", "surrogateescape")
        self.login(user, "user", lambda auth: auth.check_password(user, password,
                                                                    self.transport.peer_text()))

    def cmd_apop(self, argument):
        if not self.apop_stamp:
            self.reply("-ERR Not supported")
            return
        user, _, digest = argument.decode("utf-8", "surrogateescape").rpartition(" ")
        if not user or not digest:
            self.reply("-ERR Missing APOP argument")
            return
        self.login(user, "apop", lambda auth: auth.check_apop(user, self.apop_stamp, digest))

    def cmd_auth(self, argument):
        """RFC 5034 AUTH; bare AUTH gives the old listing that Outlook asks for."""
        if not argument:
            self.multiline("+OK Supported authentication mechanisms:", self.sasl_mechanisms())
            return
        name, _, initial = argument.partition(b" ")
        name = name.decode("ascii", "replace").upper()
        if name not in self.sasl_mechanisms():
            self.reply("-ERR [AUTH] Unsupported authentication mechanism")
            return
        from auth import sasl

        mechanism = sasl.start(name, self.authenticator(), self.hostname, self.host)
        data = None
        if initial:
            data = b"" if initial == b"=" else sasl.decode_response(initial)
        self.login("*", "auth", lambda auth: self.sasl_exchange(mechanism, data))

    def sasl_exchange(self, mechanism, data):
        """Challenges and responses until the mechanism yields a principal."""
        from auth import sasl

        return sasl.run_exchange(mechanism, data, self.sasl_challenge)

    def sasl_challenge(self, challenge):
        """Send one challenge; the client's decoded answer (RFC 5034 §4)."""
        import base64

        from auth import AuthFailed, sasl

        self.send(b"+ " + base64.b64encode(challenge) + b"\r\n")
        self.flush()
        try:
            line = self.transport.readline(limits.SASL_MAX_LINE, self.read_timeout())
        except LineTooLong:
            raise AuthFailed("SASL response too long") from None
        if line == b"*":
            raise AuthCancelled()
        return sasl.decode_response(line)

    def cmd_rpop(self, argument):
        self.reply("-ERR Nice try, bunkie")

    def cmd_stls(self, argument):
        if not self.stls_offered():
            self.reply("-ERR STLS not available")
            return
        try:
            context = self.make_tls_context()
        except Exception as error:  # a missing or bad certificate must not kill the session
            self.log("err", "STLS failed: cannot load certificate: %s" % error)
            self.reply("-ERR [SYS/TEMP] STLS failed: server certificate unavailable")
            return
        self.reply("+OK Begin TLS negotiation")
        self.flush()
        self.transport.start_tls(context)

    @property
    def pam_service(self):
        return self.config.pam_service

    def login(self, user, method, check):
        """Check credentials, then become the user and open the maildrop."""
        from server.login import LoginRefused, attempt_login

        try:
            principal = attempt_login(self, user, check, self.pam_service)
        except AuthCancelled:
            self.reply("-ERR [AUTH] Authentication cancelled")
            return
        except LoginRefused as refusal:
            if refusal.disabled:
                self.reply("-ERR [SYS/TEMP] Logins are disabled, try again later")
            elif refusal.closing:
                self.reply("-ERR [AUTH] Bad login, too many failures; closing connection")
                raise CloseSession() from None
            else:
                self.reply(LOGIN_FAILURE_REPLIES[method])
            return
        self.enter_transaction(principal, method)

    def enter_transaction(self, principal, method):
        from mailstore import StoreError, open_store
        from server.login import become_user

        if not become_user(principal, self.config, self.log, self.host):
            self.reply("-ERR [SYS/PERM] Unable to serve this user")
            raise CloseSession()
        try:
            mailbox = open_store(principal, self.config, self.log).open_inbox(exclusive_session=True)
        except StoreError as error:
            self.log("info", "Login user=%s host=%s no mailbox (%s)" % (principal.name, self.host, error))
            self.reply(STORE_REPLIES.get(error.kind, STORE_REPLIES["temporary"]))
            raise CloseSession() from None
        self.principal, self.maildrop, self.state = principal, Maildrop(mailbox), TRANSACTION
        self.log("info", "%sLogin user=%s host=%s nmsgs=%d/%d"
                 % ("APOP " if method == "apop" else "", principal.name, self.host,
                    len(self.maildrop.messages), len(mailbox.messages)))
        self.reply("+OK Mailbox open, %d messages" % len(self.maildrop.messages))

    # -- TRANSACTION --------------------------------------------------------

    def message_number(self, text):
        """The live message with this number, or None after replying -ERR."""
        text = text.strip()
        if not text:
            self.reply("-ERR Missing message number argument")
            return None
        if not text.isdigit() or len(text) > 10:
            self.reply("-ERR Bad message number argument")
            return None
        number = int(text)
        if not 1 <= number <= len(self.maildrop.messages) or number in self.maildrop.deleted:
            self.reply("-ERR No such message")
            return None
        return number

    def cmd_stat(self, argument):
        drop = self.maildrop
        self.reply("+OK %d %d" % (len(drop.messages) - len(drop.deleted), drop.total_size()))

    def cmd_list(self, argument):
        self.scan_listing(argument, "Mailbox scan listing follows", self.maildrop.size,
                          self.maildrop.size_listing)

    def cmd_uidl(self, argument):
        self.scan_listing(argument, "Unique-ID listing follows", self.maildrop.uidl,
                          self.maildrop.uidl_listing)

    def scan_listing(self, argument, title, value, listing):
        if argument.strip():
            number = self.message_number(argument)
            if number:
                self.reply("+OK %d %s" % (number, value(number)))
            return
        self.reply("+OK " + title)
        for piece in listing():
            self.send(piece)
        self.send(b".\r\n")

    def cmd_retr(self, argument):
        number = self.message_number(argument)
        if number:
            self.reply("+OK %d octets" % self.maildrop.size(number))
            self.send_message(number, None)
            self.maildrop.retrieved.add(number)
            self.maildrop.last = max(self.maildrop.last, number)

    def cmd_top(self, argument):
        number_text, _, lines_text = argument.strip().partition(b" ")
        number = self.message_number(number_text)
        if not number:
            return
        lines_text = lines_text.strip()
        if not lines_text.isdigit() or len(lines_text) > 10:
            self.reply("-ERR Bad line count argument")
            return
        self.reply("+OK Top of message follows")
        self.send_message(number, int(lines_text))
        self.maildrop.last = max(self.maildrop.last, number)

    def send_message(self, number, body_lines):
        """Header, the synthesized Status: line, the body (or its first lines), the dot."""
        mailbox, message = self.maildrop.mailbox, self.maildrop.messages[number - 1]
        wire = WireWriter(self.send)
        header = mailbox.header_bytes(message)
        if header.endswith(b"\r\n\r\n"):
            header = header[:-2]
        elif header.endswith(b"\n\n"):
            header = header[:-1]
        elif header and not header.endswith(b"\n"):
            header += b"\n"
        wire.send(header)
        wire.send(self.maildrop.status_line(number) + b"\r\n")
        for chunk in mailbox.body_chunks(message):
            if body_lines is not None:
                chunk, body_lines = _first_lines(chunk, body_lines)
            wire.send(chunk)
            if body_lines == 0:
                break
        wire.finish()

    def cmd_dele(self, argument):
        number = self.message_number(argument)
        if number:
            self.maildrop.deleted.add(number)
            self.maildrop.last = max(self.maildrop.last, number)
            self.reply("+OK Message deleted")

    def cmd_rset(self, argument):
        self.maildrop.reset()
        self.reply("+OK Reset state")

    def cmd_last(self, argument):
        self.reply("+OK %d" % self.maildrop.last)

    def cmd_quit(self, argument):
        if self.state == TRANSACTION:
            self.update_and_quit()
        else:
            self.reply("+OK Sayonara")
        raise CloseSession()

    def update_and_quit(self):
        """The UPDATE state (RFC 1939 §6): seen and deleted marks are written at QUIT."""
        from mailstore import StoreError
        from mailstore.mboxformat import DELETED

        drop, user = self.maildrop, self.principal.name
        for number in drop.deleted:
            drop.messages[number - 1].flags |= DELETED
        seen = {drop.messages[n - 1].uid for n in drop.retrieved}
        kept = len(drop.messages) - len(drop.deleted)
        # The session is over: a commit that moves data parses the file again, and the
        # old Messages must not stay alive beside the new ones meanwhile.
        drop.messages = []
        try:
            removed = drop.mailbox.commit(seen_uids=seen, expunge=True)
        except StoreError as error:
            self.log("err", "Update failed user=%s host=%s: %s" % (user, self.host, error))
            self.reply("-ERR [SYS/TEMP] Unable to update mailbox; no messages were deleted")
            return
        self.log("info", "Logout user=%s host=%s nmsgs=%d ndele=%d"
                 % (user, self.host, kept, removed))
        self.reply("+OK Sayonara")


def _first_lines(chunk, count):
    """The part of chunk holding its first `count` lines, and how many lines remain."""
    chunk = bytes(chunk)
    position = 0
    while count:
        newline = chunk.find(b"\n", position)
        if newline < 0:
            return chunk, count
        position, count = newline + 1, count - 1
    return chunk[:position], 0



ANY = (AUTHORIZATION, TRANSACTION)
# Command word -> (handler, states where it is legal).
COMMANDS = {
    b"CAPA": (Pop3Session.cmd_capa, ANY),
    b"QUIT": (Pop3Session.cmd_quit, ANY),
    b"USER": (Pop3Session.cmd_user, (AUTHORIZATION,)),
    b"PASS": (Pop3Session.cmd_pass, (AUTHORIZATION,)),
    b"APOP": (Pop3Session.cmd_apop, (AUTHORIZATION,)),
    b"AUTH": (Pop3Session.cmd_auth, (AUTHORIZATION,)),
    b"STLS": (Pop3Session.cmd_stls, (AUTHORIZATION,)),
    b"RPOP": (Pop3Session.cmd_rpop, (AUTHORIZATION,)),
    b"STAT": (Pop3Session.cmd_stat, (TRANSACTION,)),
    b"LIST": (Pop3Session.cmd_list, (TRANSACTION,)),
    b"UIDL": (Pop3Session.cmd_uidl, (TRANSACTION,)),
    b"RETR": (Pop3Session.cmd_retr, (TRANSACTION,)),
    b"TOP": (Pop3Session.cmd_top, (TRANSACTION,)),
    b"DELE": (Pop3Session.cmd_dele, (TRANSACTION,)),
    b"RSET": (Pop3Session.cmd_rset, (TRANSACTION,)),
    b"LAST": (Pop3Session.cmd_last, (TRANSACTION,)),
    b"NOOP": (Pop3Session.cmd_noop, (TRANSACTION,)),
}
