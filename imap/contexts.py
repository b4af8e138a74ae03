"""Search and sort results kept up to date: RETURN (UPDATE) of RFC 5267 §4.3.

A SEARCH or SORT with UPDATE leaves a context behind, named by the
command's tag. When messages arrive, are expunged or change flags, the
context's result changes and the client hears of it as untagged ESEARCH
responses with REMOVEFROM and ADDTO, until CANCELUPDATE or until the
mailbox is closed (the contexts live on the SelectedMailbox).

Each context holds its result as a sorted list of order keys: for SEARCH
the key is (UID,), mailbox order; for SORT it is imap.sort.order_key, whose
last element is the UID. Flags never change a sort order, so a new member
is placed by bisection without the other members being read again.

Only the messages that could have changed are searched again: new ones
and those whose flags changed. A search key that depends on message
numbers, on "*" or on `$` is evaluated again over the whole mailbox after
an expunge, new mail or a new `$`, because those move what it names.
OLDER/YOUNGER (RFC 5032) are evaluated only when a message changes, not
as the clock runs.
"""

from bisect import bisect_left, bisect_right, insort

from imap import esearch
from imap.command import SAVED_RESULT
from server import limits


class Context:
    """One updating search: what it searches for and what it has found."""

    __slots__ = ("tag", "by_uid", "criteria", "charset", "key", "keys", "seen_uid",
                 "positional")

    def __init__(self, tag, by_uid, criteria, charset, key, seen_uid):
        self.tag, self.by_uid, self.criteria = tag, by_uid, criteria
        self.charset, self.key = charset, key
        self.keys, self.seen_uid = [], seen_uid
        self.positional = depends_on_position(key)

    def order_key(self, message):
        if self.criteria is None:
            return (message.uid,)
        from imap.sort import order_key

        return order_key(self.criteria, message)

    def uids(self):
        return [key[-1] for key in self.keys]


def depends_on_position(key):
    """True when which messages the key names can change without them changing."""
    name = key[0]
    if name == "SEQ":
        return True
    if name == "UID":
        return key[1] == SAVED_RESULT or any(None in pair for pair in key[1])
    if name == "AND":
        return any(depends_on_position(part) for part in key[1])
    if name in ("OR", "NOT"):
        return any(depends_on_position(part) for part in key[1:])
    return False


class UpdateContexts:
    """The update contexts of one selected mailbox, and what changed since they last looked."""

    def __init__(self, view):
        self.view = view
        self.contexts = {}
        self.dirty = set()
        self.moved = False

    def __bool__(self):
        return bool(self.contexts)

    def __contains__(self, tag):
        return tag in self.contexts

    def full(self):
        return len(self.contexts) >= limits.IMAP_MAX_UPDATE_CONTEXTS

    def add(self, tag, by_uid, criteria, charset, key, messages, keys=None):
        """Start updating the result `messages` (the MessageViews the command found).

        `keys`, when the caller has them, are the messages' order keys in order.
        """
        seen_uid = self.view.uids[-1] if self.view.uids else 0
        context = Context(tag, by_uid, criteria, charset, key, seen_uid)
        if keys is None:
            keys = sorted(context.order_key(message) for message in messages)
        context.keys = list(keys)
        self.contexts[tag] = context

    def cancel(self, tag):
        """Stop updating the context of `tag` (RFC 5267 §4.3.5); False when there is none."""
        return self.contexts.pop(tag, None) is not None

    def touched(self, uids):
        """Flags of these messages changed, by this session or another."""
        if self.contexts:
            self.dirty.update(uids)

    def renumbered(self):
        """Something that number, "*" or `$` keys depend on changed (a new `$`)."""
        self.moved = True

    def expunging(self, gone):
        """REMOVEFROM for members about to be reported expunged: before the EXPUNGEs (§4.3.4)."""
        self.moved = True
        self.dirty -= gone
        for context in self.contexts.values():
            removed = [index for index, key in enumerate(context.keys) if key[-1] in gone]
            if removed:
                self._send(context, b"REMOVEFROM", self._removals(context, removed))

    def refresh(self):
        """ADDTO and REMOVEFROM for what new mail and flag changes did to each result.

        Runs after EXISTS (RFC 5267 §4.3.3: ADDTO numbers must be valid).
        """
        if self.contexts:
            # Under the read lock, so no rewrite moves message text being read.
            with self.view.mailbox.reading():
                for context in self.contexts.values():
                    self._refresh(context)
        self.dirty.clear()
        self.moved = False

    def _refresh(self, context):
        view = self.view
        new = view.uids[bisect_right(view.uids, context.seen_uid):]
        if context.positional and (new or self.moved):
            candidates = view.uids
        else:
            # Flags alone never move numbers or "*": only the changed messages can change.
            candidates = sorted(set(new).union(u for u in self.dirty if view.number(u)))
        if not candidates:
            return
        context.seen_uid = max(context.seen_uid, view.uids[-1])
        messages = [m for m in (view.view_of(view.number(u), u) for u in candidates) if m]
        matching = {m.uid for m in self._search(context, messages)}
        evaluated = {m.uid for m in messages}
        removed = [index for index, key in enumerate(context.keys)
                   if key[-1] in evaluated and key[-1] not in matching]
        if removed:
            self._send(context, b"REMOVEFROM", self._removals(context, removed))
        members = set(context.uids())
        added = [m for m in messages if m.uid in matching and m.uid not in members]
        if added:
            self._send(context, b"ADDTO", self._additions(context, added))

    def _search(self, context, messages):
        from imap import search as searching

        return searching.search(context.key, messages, self.view.search_context(context.charset))

    def _removals(self, context, indexes):
        """(position, numbers) pairs for removing keys at indexes; the keys are removed.

        SEARCH contexts use position 0 and mailbox order. SORT runs go last
        first, so each position is still right when the client applies it.
        """
        if context.criteria is None:
            uids = [context.keys[index][-1] for index in indexes]
            pairs = [(0, self._numbers(context, uids))]
        else:
            pairs = [(run[0] + 1, self._numbers(context, [context.keys[i][-1] for i in run]))
                     for run in reversed(_runs(indexes))]
        doomed = set(indexes)
        context.keys = [key for index, key in enumerate(context.keys) if index not in doomed]
        return pairs

    def _additions(self, context, messages):
        """(position, numbers) pairs for inserting messages; the keys are inserted.

        SORT runs go first to last with their final positions, so each
        insertion lands where the client expects after the ones before it.
        """
        new_keys = [context.order_key(message) for message in messages]
        for key in new_keys:
            insort(context.keys, key)
        if context.criteria is None:
            return [(0, self._numbers(context, [message.uid for message in messages]))]
        indexes = sorted(bisect_left(context.keys, key) for key in new_keys)
        return [(run[0] + 1, self._numbers(context, [context.keys[i][-1] for i in run]))
                for run in _runs(indexes)]

    def _numbers(self, context, uids):
        if context.by_uid:
            return uids
        return [self.view.number(uid) for uid in uids]

    def _send(self, context, name, pairs):
        ordered = context.criteria is not None
        payload = b" ".join(b"%d %s" % (position, esearch.number_set(numbers, ordered))
                            for position, numbers in pairs)
        self.view.session.send_untagged(esearch.correlator(context.tag, context.by_uid)
                                        + b" " + name + b" (" + payload + b")")


def _runs(indexes):
    """Sorted indexes cut into runs of consecutive ones: [1, 2, 5] -> [[1, 2], [5]]."""
    runs = []
    for index in indexes:
        if runs and index == runs[-1][-1] + 1:
            runs[-1].append(index)
        else:
            runs.append([index])
    return runs
