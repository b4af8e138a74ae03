"""The login policy both servers share: failures delayed and counted, then becoming the user."""

import os
import time

from server import limits


def printable(text):
    """A client-supplied name made safe for one syslog line."""
    if isinstance(text, bytes):
        text = text.decode("utf-8", "replace")
    return "".join(c if c.isprintable() else "?" for c in text)[:limits.MAX_USER_NAME]


class FailedLogins:
    """UW's server_login rules: each failure logged to auth and delayed; three end the session."""

    def __init__(self, config, log):
        self.config, self.log = config, log
        self.count = 0

    def record(self, user, host):
        """Log and delay one failure; True when it was the last one allowed."""
        self.count += 1
        name = printable(user)
        self.log.auth("notice", "Login failed user=%s auth=%s host=%s" % (name, name, host))
        time.sleep(self.config.login_failure_delay)
        if self.count < limits.MAX_LOGIN_FAILURES:
            return False
        self.log.auth("notice", "Login excessive login failures user=%s host=%s" % (name, host))
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
