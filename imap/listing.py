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
        session.send_untagged(b'LIST (\\Noselect) "/" ' + wire.astring(root))
        return "LIST completed"
    special = special_use(session.config)
    for name, attributes in session.store.list(_pattern(reference, pattern)):
        _send_list(session, b"LIST", name, attributes | special.get(name, set()))
    return "LIST completed"


def lsub(session, command):
    """RFC 3501 §6.3.9: subscribed names that match, existing or not."""
    reference, pattern = command.args
    matcher = _pattern(reference, pattern)
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
    matcher = _any_pattern(reference, patterns)
    if matcher is None:
        return "LIST completed"
    if options.status_items and session.selected:
        # Tell of the selected mailbox's changes first, so that its STATUS
        # below agrees with the EXISTS and EXPUNGE the client has been sent.
        session.selected.report_changes(allow_expunge=True)
    special = special_use(session.config)
    existing = _existing(session.store, matcher, options.selection, special)
    subscribed = session.store.subscriptions() if options.returns_subscribed() else ()
    selected = _select(existing, subscribed, matcher, options.selection, special)
    parents = set()
    if "RECURSIVEMATCH" in options.selection:
        parents = _childinfo_parents(existing, subscribed, matcher, options.selection, selected,
                                     special)
    subscribed = set(subscribed)
    for name in sorted(set(selected) | parents, key=_hierarchy_order):
        attributes = _attributes(name, existing, subscribed, options, special)
        _send_list(session, b"LIST", name, attributes, CHILDINFO if name in parents else b"")
        if options.status_items and name in selected and not attributes & {NOSELECT, NONEXISTENT}:
            _send_status(session, name, options.status_items)
    return "LIST completed"


def _any_pattern(reference, patterns):
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
    return AnyPattern(accepted) if accepted else None


def _existing(store, matcher, selection, special):
    """{name: attributes} of the mailboxes the patterns match.

    With RECURSIVEMATCH and SPECIAL-USE a descendant outside the patterns
    counts too, so the special-use names are looked up as well.
    """
    from imap.listpattern import AnyPattern, ListPattern

    if {"RECURSIVEMATCH", "SPECIAL-USE"} <= selection and special:
        matcher = AnyPattern([matcher] + [ListPattern(b"", name) for name in special])
    return dict(store.list(matcher))


def _select(existing, subscribed, matcher, selection, special):
    """The names that satisfy every selection option (RFC 5258 §3), in listing order."""
    names = subscribed if "SUBSCRIBED" in selection else existing
    chosen = [name for name in names if matcher.matches(name)]
    if "SPECIAL-USE" in selection:
        chosen = [name for name in chosen if name in existing and name in special]
    return chosen


def _childinfo_parents(existing, subscribed, matcher, selection, selected, special):
    """RECURSIVEMATCH (RFC 5258 §3.5): matching names with a selected descendant not listed.

    A descendant is selected when it is subscribed (and special-use, if that
    is asked too). Only one that is not in this answer earns its ancestors a
    CHILDINFO, so a parent whose selected children all appear is left out.
    """
    every = _select(existing, subscribed, _ANY_NAME, selection, special)
    listed = set(selected)
    parents = set()
    for name in every:
        if name not in listed:
            parents.update(parent for parent in _parents(name) if matcher.matches(parent))
    return parents


class _AnyName:
    """A matcher that every name matches."""

    @staticmethod
    def matches(name):
        return True


_ANY_NAME = _AnyName()


def _attributes(name, existing, subscribed, options, special):
    """The name's attributes as this LIST asked for them."""
    if name in existing:
        attributes = set(existing[name]) | special.get(name, set())
    else:
        attributes = {NONEXISTENT}
        if "CHILDREN" in options.returns:
            # No directory: nothing can live below it in this store.
            attributes.add(HAS_NO_CHILDREN)
    if options.returns_subscribed() and name in subscribed:
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


def _pattern(reference, pattern):
    from imap.listpattern import ListPattern

    try:
        return ListPattern(reference, pattern)
    except ValueError:
        raise Bad("Mailbox pattern too long") from None


def _send_list(session, word, name, attributes, extended=b""):
    flags = " ".join(sorted(attributes)).encode()
    session.send_untagged(word + b" (" + flags + b') "/" ' + wire.astring(name) + extended)
