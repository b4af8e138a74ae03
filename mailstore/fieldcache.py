"""A per-mailbox cache of values computed from message text (ENVELOPE, BODYSTRUCTURE).

A message's text never changes under its UID (RFC 3501 §2.3.1.1), so a value
computed once can be kept for as long as the UIDVALIDITY is the same. The
cache is a marshal file in the user's index directory; anything wrong with it
(missing, damaged, another UIDVALIDITY) simply means an empty cache.
"""

import marshal

from mailstore import sidecarfile

FORMAT = 1


class FieldCache:
    """Values by (UID, kind); `save` writes them back only when something was added."""

    def __init__(self, path, uidvalidity):
        self.path, self.uidvalidity = path, uidvalidity
        self.values = self._load()
        self.added = False

    def _load(self):
        try:
            with open(self.path, "rb") as handle:
                version, uidvalidity, values = marshal.loads(handle.read())
        except (OSError, EOFError, ValueError, TypeError):
            return {}
        if version != FORMAT or uidvalidity != self.uidvalidity or not isinstance(values, dict):
            return {}
        return values

    def get(self, uid, kind, compute):
        """The cached value, or compute() stored for next time."""
        key = (uid, kind)
        value = self.values.get(key)
        if value is None:
            value = self.values[key] = compute()
            self.added = True
        return value

    def forget(self, uids):
        """Drop the values of expunged messages."""
        gone = set(uids)
        for key in [key for key in self.values if key[0] in gone]:
            del self.values[key]
            self.added = True

    def save(self):
        if not self.added:
            return
        if sidecarfile.write_replacing(self.path,
                                       marshal.dumps((FORMAT, self.uidvalidity, self.values))):
            self.added = False
