"""What a session has told its client of each message's flags (RFC 3501 §7.4.2).

A session compares this with the mailbox after another process changed it,
and sends an unsolicited FETCH FLAGS for each difference. It is taken for
every message at SELECT, so it is kept compactly: the UIDs and flag bits of
that moment in two arrays, keywords only where there are any, and what was
reported since in a dict on top. For 100,000 messages that is 1.6 MB built
in a few ms, where a dict was 5 MB and 30 ms.
"""

import bisect
from array import array

from mailstore.mboxformat import OLD


def reported_flags(stored):
    """What the client is told of a message's flags: the flag bits alone (a shared
    small int), or (bits, keywords) when it has keywords."""
    flags = stored.flags & ~OLD
    return (flags, stored.keywords) if stored.keywords else flags


class ReportedFlags:
    """UID -> reported_flags() as last told, for a mailbox's messages."""

    def __init__(self, messages=()):
        messages = list(messages)
        self._uids = array("q", [m.uid for m in messages])
        self._flags = array("q", [m.flags & ~OLD for m in messages])
        self._keywords = {m.uid: m.keywords for m in messages if m.keywords}
        self._since = {}

    def get(self, uid, default=None):
        told = self._since.get(uid)
        if told is not None:
            return told
        return self._taken(uid, default)

    def _taken(self, uid, default=None):
        """What the arrays hold for uid."""
        at = bisect.bisect_left(self._uids, uid)
        if at == len(self._uids) or self._uids[at] != uid:
            return default
        keywords = self._keywords.get(uid)
        return (self._flags[at], keywords) if keywords else self._flags[at]

    def __setitem__(self, uid, told):
        # A FETCH FLAGS of every message tells mostly what the arrays hold:
        # only differences go to the dict, or it would grow to 5 MB again.
        if told == self._taken(uid):
            self._since.pop(uid, None)
        else:
            self._since[uid] = told
