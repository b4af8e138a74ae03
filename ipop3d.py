#!/usr/bin/python3
"""ipop3d: a POP3 server (RFC 1939, 2449, 5034, 2595) started by inetd once per connection.

The connection is fd 0/1. The process greets, authenticates, drops root for
the user, opens INBOX under the MTA's locks and serves it as UW ipop3d does
(reference/servers.md §2). This file is only the entry point: the protocol
lives in the pop3 package, whose compiled form Python keeps (a script run by
path is compiled again at every start).
"""

import sys

POP3S_PORT = 995


def main(argv=None):
    from pop3.session import Pop3Session
    from server.entry import serve

    return serve("ipop3d", Pop3Session, POP3S_PORT,
                 b"-ERR [SYS/PERM] Server configuration error\r\n",
                 b"-ERR [SYS/TEMP] Internal server error, closing connection\r\n", argv)


if __name__ == "__main__":
    sys.exit(main())
