"""Syslog the way UW does it: facility mail, the program name as ident, with the pid.

Login failures go to facility auth (UW's habit). Passwords never reach here.
"""

import syslog

_PRIORITIES = {
    "debug": syslog.LOG_DEBUG, "info": syslog.LOG_INFO, "notice": syslog.LOG_NOTICE,
    "warning": syslog.LOG_WARNING, "err": syslog.LOG_ERR, "error": syslog.LOG_ERR,
    "crit": syslog.LOG_CRIT, "alert": syslog.LOG_ALERT,
}
_FACILITIES = {"mail": syslog.LOG_MAIL, "auth": syslog.LOG_AUTH, "daemon": syslog.LOG_DAEMON,
               "local0": syslog.LOG_LOCAL0, "local1": syslog.LOG_LOCAL1}


class Log:
    """A callable log(priority, message) bound to one ident and facility."""

    def __init__(self, ident, facility="mail"):
        self.ident = ident
        self.facility = _FACILITIES.get(facility, syslog.LOG_MAIL)
        self.reopen()

    def reopen(self):
        """Open (again) with our ident: PAM modules may have changed it."""
        syslog.openlog(self.ident, syslog.LOG_PID, self.facility)

    def __call__(self, priority, message, facility=None):
        level = _PRIORITIES.get(priority, syslog.LOG_INFO)
        text = message.replace("\n", " ").replace("\r", " ").replace("\0", " ")
        syslog.syslog(level | (facility if facility is not None else self.facility), text)

    def auth(self, priority, message):
        """Log to facility auth, where UW puts login failures."""
        self(priority, message, syslog.LOG_AUTH)
