"""IMAP4rev1 (RFC 3501): parser, session, command table, FETCH, SEARCH, MIME structure."""
