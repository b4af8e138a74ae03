"""The login policy both servers share: when logins are allowed, how failures are
delayed, counted and logged, and how a session becomes the user."""

import os
import time

from server import limits
from server.transport import Timeout


def printable(text):
    """A client-supplied name made safe for one syslog line."""
    if isinstance(text, bytes):
        text = text.decode("utf-8", "replace")
    return "".join(c if c.isprintable() else "?" for c in text)[:limits.MAX_USER_NAME]


def nologin_file(config):
    """The path of the nologin file if it exists now, else None.

    UW imapd refuses service while /etc/nologin exists (servers.md §1); stat()
    as UW does, so a dangling symbolic link does not count.
    """
    path = config.nologin_file
    if path and os.path.exists(path):
        return path
    return None


def login_read_timeout(config, started):
    """Seconds the next read before login may wait: UW's per-command limit, within its autologout.

    Raises Timeout once the whole login phase, counted from `started`
    (time.monotonic() at connect), has used up login_autologout.
    """
    remaining = config.login_autologout - (time.monotonic() - started)
    if remaining <= 0:
        raise Timeout()
    return min(config.login_timeout, remaining)


class FailedLogins:
    """UW's server_login rules: each failure logged to auth and delayed; three end the session."""

    def __init__(self, config, log):
        self.config, self.log = config, log
        self.count = 0

    def record(self, user, host, error, started=None):
        """Log and delay one failure; True when the session may not try again.

        `error` is the AuthFailed that ended the attempt; `started` is when its
        credentials began to be checked (time.monotonic()), or None.
        """
        from auth import BreakInAttempt

        self.count += 1
        if isinstance(error, BreakInAttempt):
            # UW: logged at ALERT, and the session can never log in afterwards.
            self.count = limits.MAX_LOGIN_FAILURES
            name = printable(error.name)
            self.log.auth("alert", "Login SYSTEM BREAK-IN ATTEMPT user=%s auth=%s host=%s"
                          % (name, name, host))
        else:
            name = printable(user)
            self.log.auth("notice", "Login failed user=%s auth=%s host=%s" % (name, name, host))
            if self.count >= limits.MAX_LOGIN_FAILURES:
                self.log.auth("notice", "Login excessive login failures user=%s host=%s"
                              % (name, host))
        self.delay(started)
        return self.count >= limits.MAX_LOGIN_FAILURES

    def delay(self, started):
        """Answer every failure login_failure_delay after its check began, whatever the check cost.

        An unknown name goes through PAM (and PAM's own failure delay), a
        wrong passwd_file password through one hash: padding both to the same
        total hides from the client which of the two it was.
        """
        spent = time.monotonic() - started if started is not None else 0.0
        time.sleep(max(0.0, self.config.login_failure_delay - spent))


class LoginRefused(Exception):
    """A login attempt that did not succeed: `disabled` (nologin) or failed;
    `closing` when that failure was the session's last allowed."""

    def __init__(self, disabled=False, closing=False):
        super().__init__("logins disabled" if disabled else "login failed")
        self.disabled, self.closing = disabled, closing


class SessionCredentials:
    """Mixin for both sessions: the connection state they both keep, their TLS
    context and authenticator. The session gives `pam_service` (UW's service
    name for its protocol) and, through QueuedReplies, reset_output()."""

    def __init__(self, transport, config, log, hostname):
        self.transport = transport
        self.config = config
        self.log = log
        self.hostname = hostname
        self.started = time.monotonic()
        self.principal = None
        self.failed_logins = FailedLogins(config, log)
        self.bad_commands = 0
        self.tls_context = None
        self.reset_output()

    def make_tls_context(self):
        from server.tls import server_context

        return server_context(self.config)

    def authenticator(self):
        from auth.authenticator import Authenticator

        return Authenticator(self.config, self.log, service=self.pam_service)


def attempt_login(session, user, check, service):
    """One login under the policy both servers share; the Principal, or LoginRefused.

    `check(authenticator)` returns the Principal or raises AuthFailed; any
    other exception (a cancelled SASL exchange) passes through.  The
    session gives config, log, host and failed_logins.
    """
    from auth import AuthFailed
    from auth.authenticator import Authenticator

    if logins_disabled(session.config, session.log, user, session.host):
        raise LoginRefused(disabled=True)
    authenticator = Authenticator(session.config, session.log, service=service)
    try:
        principal = check(authenticator)
    except AuthFailed as error:
        session.log.reopen()  # PAM modules may have closed our syslog connection
        closing = session.failed_logins.record(user, session.host, error,
                                               authenticator.check_started)
        raise LoginRefused(closing=closing) from None
    session.log.reopen()
    return principal


def logins_disabled(config, log, user, host):
    """True (and the refusal logged) while the nologin file exists; the caller replies."""
    path = nologin_file(config)
    if path is None:
        return False
    name = printable(user)
    log.auth("notice", "Login disabled user=%s auth=%s host=%s (%s exists)" % (name, name, host, path))
    return True


def become_user(principal, config, log, host):
    """Drop root for the user and go to the home directory; False (logged) if that fails."""
    from server.privileges import PrivilegeError, drop_privileges

    try:
        drop_privileges(principal, config.mail_privileged_group or None)
    except PrivilegeError as error:
        log("err", "cannot become user=%s host=%s: %s" % (principal.name, host, error))
        return False
    try:
        os.chdir(principal.home)
    except OSError:
        pass  # UW serves users whose home is missing too; paths are absolute
    return True
