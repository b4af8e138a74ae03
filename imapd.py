#!/usr/bin/python3
"""imapd: an IMAP4rev1 server (RFC 3501) started by inetd once per connection.

The connection is fd 0/1. The process greets, authenticates, drops root for
the user and serves the user's mailboxes (reference/servers.md §3). This
file is only the entry point; the protocol lives in the imap package.
"""

import sys

IMAPS_PORT = 993


def main(argv=None):
    from imap.session import ImapSession
    from server.entry import serve

    return serve("imapd", ImapSession, IMAPS_PORT,
                 b"* BYE Server configuration error\r\n",
                 b"* BYE Internal server error, closing connection\r\n", argv)


if __name__ == "__main__":
    sys.exit(main())
