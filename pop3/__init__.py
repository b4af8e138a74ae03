"""The POP3 protocol (RFC 1939, 2449, 5034, 2595): the session that ipop3d.py serves."""
