"""The IDLE command (RFC 2177), with its time limit from the configuration.

Its own module so that the command loads nothing of FETCH or SEARCH, and so
that the one command allowed to wait for half an hour keeps its timers in
one place: the mailbox poll and the keep-alive (server.limits) and the
IDLE limit itself (imap_idle_timeout, at least RFC 2177's 30 minutes).
"""

import time

from imap.session import Bad, CloseSession
from server import limits


def idle(session, command):
    """RFC 2177: report changes as they happen until the client says DONE."""
    session.send_line(b"+ idling")
    session.flush()
    started = last_word = time.monotonic()
    while not session.framer.pending():
        if session.transport.readable(limits.IDLE_POLL_INTERVAL):
            session.framer.feed(session.transport.read(session.config.imap_idle_timeout))
            continue
        now = time.monotonic()
        if now - started > session.config.imap_idle_timeout:
            session.autologout()
            raise CloseSession()
        if session.selected:
            session.selected.report_changes(allow_expunge=True)
        if session.notifier:
            # RFC 9051 §6.3.13 / RFC 5465: IDLE also tells of other mailboxes.
            session.notifier.poll_others()
        if now - last_word > limits.IDLE_KEEPALIVE:
            session.send_line(b"* OK Still here")
            last_word = now
        session.flush()
    line = session.next_command()
    if line.upper() != b"DONE":
        raise Bad("Bogus IDLE continuation")
    return "IDLE terminated"
