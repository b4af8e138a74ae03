"""Protocol limits and timeouts, each with the rule or UW behaviour it comes from.

Every size a client controls is bounded here before memory is spent on it.
"""

# POP3 (RFC 1939 section 3 allows 255 octets per command; UW ipop3d accepts 1024).
POP3_MAX_LINE = 1024
# Timeouts: the defaults of the settings in server/config.py, and the floors the
# RFCs set. UW ipop3d and imapd wait 180 s per command before login, and end the
# whole login phase 180 s after connect ("Autologout"); no RFC sets a minimum.
LOGIN_TIMEOUT = 180
LOGIN_AUTOLOGOUT = 180
# RFC 1939 §3: the inactivity autologout timer after login is at least 10 minutes (UW: 10).
POP3_IDLE_TIMEOUT = 600
POP3_MIN_IDLE_TIMEOUT = 600
# RFC 2449 LOGIN-DELAY as UW advertises it (advisory only).
POP3_LOGIN_DELAY = 180
# SASL responses are base64 lines; RFC 5034 section 4 allows 255 octets per
# line but PLAIN with long passwords needs more, so take UW's line limit x4.
SASL_MAX_LINE = 4096

# Unknown or malformed commands tolerated before the server hangs up.
MAX_BAD_COMMANDS = 20
# UW server_login: three attempts per session, each failure followed by a 3 s delay.
MAX_LOGIN_FAILURES = 3
LOGIN_FAILURE_DELAY = 3.0
# UW server_login logs names of 65 bytes or more as a break-in attempt.
MAX_USER_NAME = 64

# How long a mailbox lock is waited for before the client is told "in use":
# UW overrides a dotlock after 5 minutes, Dovecot's mbox_lock_timeout is 5 min.
MBOX_LOCK_TIMEOUT = 300
# A dotlock whose ctime is older than this is stale (UW: 5 minutes).
DOTLOCK_STALE_AGE = 300

# IMAP (reference/servers.md §3.2).
# UW imapd's command buffer is 64 KiB; longer lines get "BAD Command line too long".
IMAP_MAX_LINE = 65536
# Literals outside APPEND are small in every real command (UW: 10000 bytes).
IMAP_MAX_LITERAL = 10000
# UW: at most 20 literals in one command.
IMAP_MAX_LITERALS = 20
# RFC 3501 §5.4: the inactivity autologout timer after login is at least 30 minutes (UW: 30).
IMAP_INACTIVITY_TIMEOUT = 1800
IMAP_MIN_IDLE_TIMEOUT = 1800
# RFC 2177 §3: clients re-issue IDLE every 29 minutes, so one IDLE may last at least 30.
IMAP_IDLE_COMMAND_TIMEOUT = 1800
# UW: 5 minutes to send literal data after the continuation.
IMAP_LITERAL_TIMEOUT = 300
# How often IDLE looks at the mailbox (the issue asks for new mail "within a few
# seconds"; UW polls every 60 s) and how often it reassures NAT boxes (UW: 2 min).
IDLE_POLL_INTERVAL = 2
IDLE_KEEPALIVE = 120
# RFC 5267 §4.3.1: at least one updating search context per client; each one is
# searched again on every change to the mailbox, so a session keeps a handful.
IMAP_MAX_UPDATE_CONTEXTS = 8
# NOTIFY (RFC 5465) holds each watched mailbox open read-only and stats it at
# every poll; past this many the client gets NOTIFICATIONOVERFLOW (§5.8).
IMAP_MAX_NOTIFY_MAILBOXES = 50

# Wait mode (xinetd `wait = yes`, systemd `Accept=no`): sessions running at once,
# as the shipped systemd sockets' MaxConnections; further clients wait in the
# listen backlog. The process exits after this many seconds without a session,
# and xinetd or systemd starts it again for the next connection.
WAIT_MODE_MAX_CONNECTIONS = 256
WAIT_MODE_IDLE_EXIT = 300
