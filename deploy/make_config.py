#!/usr/bin/python3
"""Print /etc/pyimapd.conf: every setting of server.config.SETTINGS, commented out with its default.

Run with the interpreter pyimapd is installed in (deploy/install.sh runs
`PREFIX/bin/python -I deploy/make_config.py`), so the file lists exactly the
settings that installation knows. A setting without a line in DESCRIPTIONS, or
a description without a setting, is an error: the file must not drift from the code.
"""

import sys

# One line each: what the setting means. Keep in step with server/config.py.
DESCRIPTIONS = {
    "mail_location": "where mail lives, in Dovecot syntax (%u user, %h or ~ home); the default is UW's layout",
    "disable_plaintext_auth": "refuse plaintext logins (USER/PASS, PLAIN, LOGIN) except over TLS or from loopback",
    "ssl_cert_file": "PEM certificate for STLS/STARTTLS and implicit TLS (TLS 1.2+), read per connection; empty: no TLS",
    "ssl_key_file": "PEM private key of ssl_cert_file (read as root, before login)",
    "mbox_read_locks": "locks taken to read a mailbox: any of dotlock fcntl flock",
    "mbox_write_locks": "locks taken to write a mailbox; on Linux fcntl and flock do not see each other",
    "mbox_lock_timeout": "seconds to wait for mailbox locks before answering that the mailbox is in use",
    "mail_privileged_group": "group (e.g. mail) kept after login only to make dotlocks in a root:mail 775 spool",
    "login_greeting": "text after +OK in the POP3 greeting; empty: UW's greeting",
    "cram_md5_file": "UW secrets file (user<TAB>password); if it exists, APOP/CRAM-MD5 are on and all password logins use it",
    "passwd_file": "mail-only users, user:{SCHEME}password:uid:gid:gecos:home:shell; empty: none",
    "pam_service": "PAM service of POP3 logins (UW: pop, so /etc/pam.d/pop)",
    "imap_pam_service": "PAM service of IMAP logins (UW: imap, so /etc/pam.d/imap)",
    "login_failure_delay": "seconds to wait after each failed login",
    "index_dir": "per-user directory for the rewrite journal and mailbox indexes (~ is the user's home)",
    "syslog_facility": "syslog facility of the servers' messages; login failures always go to auth, as in UW",
    "imap_max_append_size": "largest message APPEND accepts, in bytes",
    "nologin_file": "while this file exists, new sessions are refused and no login succeeds (UW: /etc/nologin); empty: never",
    "login_timeout": "seconds a client may stay silent before it has logged in, and the longest TLS handshake",
    "login_autologout": "seconds from connect by which the client must have logged in",
    "pop3_inactivity_timeout": "seconds of silence after a POP3 login before autologout; at least 600 (RFC 1939)",
    "imap_inactivity_timeout": "seconds of silence after an IMAP login before autologout; at least 1800 (RFC 3501)",
    "imap_idle_timeout": "seconds one IMAP IDLE may last before autologout; at least 1800 (RFC 2177)",
    "max_connections": "wait mode only (xinetd wait = yes, systemd Accept=no): most sessions at once; more clients wait in the listen backlog",
    "wait_mode_idle_exit": "wait mode only: seconds without a session after which the server exits (xinetd or systemd start it again)",
    "special_use": "IMAP folders LIST marks for clients (RFC 6154): Name=\\Attribute, ... with \\Sent \\Drafts \\Trash \\Junk \\Archive \\All \\Flagged; empty: none",
}

HEADER = """\
# /etc/pyimapd.conf: configuration of pyimapd's imapd(8) and ipop3d(8).
#
# One "name = value" per line; "#" starts a comment. Every setting is shown
# below, commented out, with its default value: remove the "#" and change the
# value to override it. A missing file means all defaults. A file with an
# error makes the servers log it to syslog and refuse connections, so check
# with a test login after editing. Each connection reads this file afresh:
# there is no daemon to reload (in wait mode the running server reads it
# again when it changes).
"""


def config_value(value):
    """A default as the configuration file spells it: yes/no, space-separated lists, plain numbers."""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, (tuple, list)):
        return " ".join(config_value(item) for item in value)
    if isinstance(value, float) and value.is_integer():
        return "%d" % value
    return str(value)


def render(settings, descriptions=DESCRIPTIONS):
    """The whole file for `settings` (name -> (converter, default)); ValueError if they drift apart."""
    undescribed = sorted(set(settings) - set(descriptions))
    unknown = sorted(set(descriptions) - set(settings))
    if undescribed or unknown:
        raise ValueError("deploy/make_config.py DESCRIPTIONS is out of step with server/config.py: "
                         "missing %s, unknown %s" % (undescribed or "none", unknown or "none"))
    blocks = [HEADER]
    for name, (_, default) in settings.items():
        value = config_value(default)
        blocks.append("\n# %s\n#%s = %s\n" % (descriptions[name], name, value) if value
                      else "\n# %s\n#%s =\n" % (descriptions[name], name))
    return "".join(blocks)


def main():
    from server.config import SETTINGS

    try:
        sys.stdout.write(render(SETTINGS))
    except ValueError as error:
        sys.stderr.write("make_config.py: %s\n" % error)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
