"""LIST and LSUB (RFC 3501 §6.3.8, §6.3.9) with LIST-EXTENDED (RFC 5258),
LIST-STATUS (RFC 5819) and special-use attributes (RFC 6154).

The store lists the mailboxes that exist (with \\Noselect, \\Noinferiors,
\\HasChildren or \\HasNoChildren, \\Marked or \\Unmarked); this module
chooses the names an extended LIST selects, adds \\Subscribed,
\\NonExistent, the special-use attributes and CHILDINFO, and follows each
selected mailbox with its STATUS when asked.
"""

from imap import wire
from imap.session import Bad

DELIMITER = b"/"
NONEXISTENT = "\\NonExistent"
SUBSCRIBED = "\\Subscribed"
NOSELECT = "\\Noselect"
HAS_NO_CHILDREN = "\\HasNoChildren"
CHILDINFO = b' ("CHILDINFO" ("SUBSCRIBED"))'


def list_mailboxes(session, command):
    """RFC 3501 §6.3.8; any extended syntax makes it RFC 5258's LIST."""
    reference, patterns, options = command.args
    if options.extended:
        return _extended_list(session, reference, patterns, options)
    (pattern,) = patterns
    if not pattern:
        # RFC 3501 §6.3.8: the delimiter and the root of the reference's hierarchy.
        root = reference.split(DELIMITER, 1)[0] + DELIMITER if DELIMITER in reference else b""
        session.send_untagged(b'LIST (\\Noselect) "/" ' + wire.astring(root, session.utf8))
        return "LIST completed"
    special = special_use(session.config)
    for name, attributes in session.store.list(_pattern(session, reference, pattern)):
        _send_list(session, b"LIST", name, attributes | special.get(name, set()))
    return "LIST completed"


def lsub(session, command):
    """RFC 3501 §6.3.9: subscribed names that match, existing or not."""
    reference, pattern = command.args
    matcher = _pattern(session, reference, pattern)
    subscribed = session.store.subscriptions()
    shown = set()
    for name in subscribed:
        if matcher.matches(name):
            _send_list(session, b"LSUB", name, ())
            continue
        # A "%" that stops at a level above a subscribed name shows that level
        # as \Noselect, unless it is itself subscribed (RFC 3501 §6.3.9).
        for parent in _parents(name):
            if parent not in shown and parent not in subscribed and matcher.matches(parent):
                shown.add(parent)
                _send_list(session, b"LSUB", parent, (NOSELECT,))
    return "LSUB completed"


def special_use(config):
    """{mailbox name as IMAP sends it: set of RFC 6154 attributes} from `special_use`."""
    from imap import utf7
    from server.config import special_use_pairs

    mapping = {}
    for name, attribute in special_use_pairs(config.special_use):
        wire_name = b"INBOX" if name.upper() == "INBOX" else utf7.encode(name)
        mapping.setdefault(wire_name, set()).add(attribute)
    return mapping


# -- RFC 5258 ------------------------------------------------------------------


def _extended_list(session, reference, patterns, options):
    """Select names, then answer each with its attributes, CHILDINFO and STATUS."""
    matcher = _any_pattern(session, reference, patterns)
    if matcher is None:
        return "LIST completed"
    if options.status_items and session.selected:
        # Tell of the selected mailbox's changes first, so that its STATUS
        # below agrees with the EXISTS and EXPUNGE the client has been sent.
        session.selected.report_changes(allow_expunge=True)
    choice = _Choice(session, matcher, options)
    selected = choice.selected(matcher)
    parents = choice.childinfo_parents(matcher, selected)
    for name in sorted(set(selected) | parents, key=_hierarchy_order):
        attributes = choice.attributes(name)
        _send_list(session, b"LIST", name, attributes, CHILDINFO if name in parents else b"")
        if options.status_items and name in selected and not attributes & {NOSELECT, NONEXISTENT}:
            _send_status(session, name, options.status_items)
    return "LIST completed"


def _any_pattern(session, reference, patterns):
    """One matcher for all patterns, or None when no pattern can match anything.

    RFC 5258 §3: in an extended LIST an empty pattern is no request for the
    delimiter but is ignored, as is a pattern the server does not accept.
    """
    from imap.listpattern import AnyPattern, ListPattern

    accepted = []
    for pattern in patterns:
        try:
            accepted += [ListPattern(reference, pattern)] if pattern else []
        except ValueError:
            continue
    return _in_store_form(session, AnyPattern(accepted)) if accepted else None


def _in_store_form(session, pattern):
    """A pattern a UTF-8 client wrote, matched against the store's names (imap.names)."""
    from imap.names import Utf8Pattern

    return Utf8Pattern(pattern) if session.utf8 else pattern


class _Choice:
    """The mailboxes, subscriptions and special-use names one extended LIST chooses from."""

    def __init__(self, session, matcher, options):
        self.options, self.selection = options, options.selection
        self.special = special_use(session.config)
        self.existing = self._existing(session.store, matcher)
        self.subscribed = session.store.subscriptions() if options.returns_subscribed() else []
        self.subscribed_set = set(self.subscribed)

    def _existing(self, store, matcher):
        """{name: attributes} of the mailboxes the patterns match.

        With RECURSIVEMATCH and SPECIAL-USE a descendant outside the
        patterns counts too, so the special-use names are looked up as well.
        """
        from imap.listpattern import AnyPattern, ListPattern

        if {"RECURSIVEMATCH", "SPECIAL-USE"} <= self.selection and self.special:
            matcher = AnyPattern([matcher] + [ListPattern(b"", name) for name in self.special])
        return dict(store.list(matcher))

    def satisfies(self, name):
        """True when the name meets every selection option (RFC 5258 §3)."""
        if "SUBSCRIBED" in self.selection and name not in self.subscribed_set:
            return False
        return "SPECIAL-USE" not in self.selection or (
            name in self.existing and name in self.special)

    def selected(self, matcher):
        """The matching names that satisfy the selection, in listing order."""
        names = self.subscribed if "SUBSCRIBED" in self.selection else self.existing
        return [name for name in names if matcher.matches(name) and self.satisfies(name)]

    def childinfo_parents(self, matcher, selected):
        """RECURSIVEMATCH (RFC 5258 §3.5): matching names with a selected descendant not listed.

        Only a descendant missing from this answer earns its ancestors a
        CHILDINFO, so a parent whose selected children all appear is left
        out. RECURSIVEMATCH comes with SUBSCRIBED: descendants are subscribed.
        """
        if "RECURSIVEMATCH" not in self.selection:
            return set()
        listed = set(selected)
        parents = set()
        for name in self.subscribed:
            if name not in listed and self.satisfies(name):
                parents.update(parent for parent in _parents(name) if matcher.matches(parent))
        return parents

    def attributes(self, name):
        """The name's attributes as this LIST asked for them."""
        if name in self.existing:
            attributes = set(self.existing[name]) | self.special.get(name, set())
        else:
            attributes = {NONEXISTENT}
            if "CHILDREN" in self.options.returns:
                attributes.add(HAS_NO_CHILDREN)  # no directory, so nothing below it
        if self.options.returns_subscribed() and name in self.subscribed_set:
            attributes.add(SUBSCRIBED)
        return attributes


def _send_status(session, name, items):
    """RFC 5819 §2: STATUS right after the mailbox's LIST; none if it cannot be opened."""
    from imap.mailboxes import status_response
    from mailstore import StoreError

    try:
        line = status_response(session, name, items)
    except StoreError as error:
        session.log("info", "LIST-STATUS skipped a mailbox user=%s: %s"
                    % (session.user_name, error))
        return
    session.send_untagged(line)


# -- shared ----------------------------------------------------------------------


def _hierarchy_order(name):
    """INBOX first, then level by level: the order of the store's folder walk."""
    return name != b"INBOX", name.split(DELIMITER)


def _parents(name):
    """`a/b/c` -> `a`, `a/b`."""
    levels = name.split(DELIMITER)
    return [DELIMITER.join(levels[:n]) for n in range(1, len(levels))]


def _pattern(session, reference, pattern):
    from imap.listpattern import ListPattern

    try:
        return _in_store_form(session, ListPattern(reference, pattern))
    except ValueError:
        raise Bad("Mailbox pattern too long") from None


def send_list_of(session, name):
    """The LIST response of one mailbox, as SELECT sends it in IMAP4rev2 (RFC 9051 §6.3.2)."""
    from imap.listpattern import ListPattern

    attributes = set()
    for listed, found in session.store.list(ListPattern(b"", name)):
        if listed == name:
            attributes = set(found)
    _send_list(session, b"LIST", name, attributes | special_use(session.config).get(name, set()))


def _send_list(session, word, name, attributes, extended=b""):
    flags = " ".join(sorted(attributes)).encode()
    session.send_untagged(word + b" (" + flags + b') "/" ' + session.wire_name(name) + extended)
