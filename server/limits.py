"""Protocol limits and timeouts, each with the rule or UW behaviour it comes from.

Every size a client controls is bounded here before memory is spent on it.
"""

# POP3 (RFC 1939 section 3 allows 255 octets per command; UW ipop3d accepts 1024).
POP3_MAX_LINE = 1024
# UW ipop3d: 180 s per command before login, 600 s after (RFC 1939: at least 10 min).
POP3_LOGIN_TIMEOUT = 180
POP3_IDLE_TIMEOUT = 600
# UW ipop3d: the whole AUTHORIZATION state may last at most 180 s after connect.
POP3_LOGIN_WINDOW = 180
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
# UW: 180 s per read before login; RFC 3501 §5.4: at least 30 min idle after login.
IMAP_LOGIN_TIMEOUT = 180
IMAP_IDLE_TIMEOUT = 1800
# UW: 5 minutes to send literal data after the continuation.
IMAP_LITERAL_TIMEOUT = 300
# How often IDLE looks at the mailbox (the issue asks for new mail "within a few
# seconds"; UW polls every 60 s) and how often it reassures NAT boxes (UW: 2 min).
IDLE_POLL_INTERVAL = 2
IDLE_KEEPALIVE = 120
