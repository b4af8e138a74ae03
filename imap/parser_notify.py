"""The NOTIFY command's grammar (RFC 5465 §8), sans I/O.

    notify           = "NOTIFY" SP (notify-set / notify-none)
    notify-set       = "SET" [SP "STATUS"] SP event-groups
    event-groups     = event-group *(SP event-group)
    event-group      = "(" filter-mailboxes SP events ")"
    filter-mailboxes = "SELECTED" / "SELECTED-DELAYED" / "INBOXES" / "PERSONAL"
                       / "SUBSCRIBED" / "SUBTREE" SP one-or-more-mailbox
                       / "MAILBOXES" SP one-or-more-mailbox
    events           = "(" event *(SP event) ")" / "NONE"
    event            = "MessageNew" [SP "(" fetch-att *(SP fetch-att) ")"] / atom

The rules of RFC 5465 §5 on which events go together are syntax here (a
tagged BAD); whether the server offers an event is the handler's concern
(NO [BADEVENT]).
"""

from imap import parser

# RFC 5465 §5, §6 and RFC 5464: every event name a client may send, in its spelling.
EVENT_NAMES = {name.upper(): name for name in (
    "MessageNew", "MessageExpunge", "FlagChange", "AnnotationChange", "MailboxName",
    "SubscriptionChange", "MailboxMetadataChange", "ServerMetadataChange")}
MESSAGE_EVENTS = frozenset(("MessageNew", "MessageExpunge", "FlagChange", "AnnotationChange"))
SELECTED_FILTERS = frozenset(("SELECTED", "SELECTED-DELAYED"))
FILTERS = SELECTED_FILTERS | frozenset(("INBOXES", "PERSONAL", "SUBSCRIBED", "SUBTREE",
                                        "MAILBOXES"))
# Each group is matched against every mailbox at each poll: a bound on the work.
MAX_EVENT_GROUPS = 20
MAX_FILTER_MAILBOXES = 100


class EventGroup:
    """One event group: a filter, its mailbox names, its events.

    `filter` is the upper-case filter name; `mailboxes` a tuple of names
    as sent (SUBTREE and MAILBOXES only); `events` a frozenset of event
    names in RFC spelling (empty for NONE); `fetch` the MessageNew
    fetch attributes, a tuple of FetchItem.
    """

    __slots__ = ("filter", "mailboxes", "events", "fetch")

    def __init__(self, filter_name, mailboxes=(), events=(), fetch=()):
        self.filter, self.mailboxes = filter_name, tuple(mailboxes)
        self.events, self.fetch = frozenset(events), tuple(fetch)

    def _key(self):
        return self.filter, self.mailboxes, self.events, self.fetch

    def __eq__(self, other):
        return isinstance(other, EventGroup) and self._key() == other._key()

    def __repr__(self):
        return "EventGroup(%r, %r, %r, %r)" % (self.filter, self.mailboxes,
                                               sorted(self.events), self.fetch)


def notify_arguments(cursor):
    """SP ("NONE" / "SET" [SP "STATUS"] SP event-groups): (None,) or (status, groups)."""
    cursor.space("Missing NOTIFY arguments")
    word = cursor.word()
    if word == "NONE":
        return (None,)
    if word != "SET":
        raise cursor.fail("Invalid NOTIFY arguments")
    cursor.space("Missing event groups")
    status = cursor.skip(b"STATUS ")
    groups = [event_group(cursor)]
    while not cursor.at_end():
        cursor.space("Invalid event groups")
        groups.append(event_group(cursor))
        if len(groups) > MAX_EVENT_GROUPS:
            raise cursor.fail("Too many event groups")
    return status, tuple(groups)


def event_group(cursor):
    """ "(" filter-mailboxes SP events ")" """
    cursor.expect(b"(", "Invalid event group")
    name = cursor.word()
    if name not in FILTERS:
        raise cursor.fail("Unknown mailbox filter")
    mailboxes = ()
    if name in ("SUBTREE", "MAILBOXES"):
        cursor.space("Missing mailboxes")
        mailboxes = one_or_more_mailbox(cursor)
    cursor.space("Missing events")
    events, fetch = event_list(cursor, selected=name in SELECTED_FILTERS)
    cursor.expect(b")", "Invalid event group")
    return EventGroup(name, mailboxes, events, fetch)


def one_or_more_mailbox(cursor):
    """mailbox / "(" mailbox *(SP mailbox) ")" """
    if cursor.peek() != b"(":
        return (parser.mailbox(cursor),)
    names = parser.parenthesised(cursor, parser.mailbox, "Invalid mailbox list")
    if len(names) > MAX_FILTER_MAILBOXES:
        raise cursor.fail("Too many mailboxes")
    return names


def event_list(cursor, selected):
    """ "NONE" or "(" event *(SP event) ")", checked against RFC 5465 §5's pairings."""
    if cursor.skip(b"NONE"):
        return frozenset(), ()
    cursor.expect(b"(", "Invalid events")
    events, fetch = [], ()
    while not cursor.skip(b")"):
        if events:
            cursor.space("Invalid events")
        name = parser.atom(cursor, "Invalid events").decode("ascii").upper()
        event = EVENT_NAMES.get(name, name)
        if event == "MessageNew" and cursor.data[cursor.pos:cursor.pos + 2] == b" (":
            cursor.pos += 1
            fetch = message_new_attributes(cursor)
        events.append(event)
    _check_events(cursor, frozenset(events), selected)
    return frozenset(events), fetch


def message_new_attributes(cursor):
    """ "(" fetch-att *(SP fetch-att) ")"; none may set \\Seen (RFC 5465 §5.1)."""
    from imap.fetch import sets_seen

    items = parser.parenthesised(cursor, parser.fetch_att, "Invalid fetch attributes")
    if sets_seen(items):
        raise cursor.fail("MessageNew fetch attributes must not set \\Seen")
    return items


def _check_events(cursor, events, selected):
    """RFC 5465 §5: MessageNew and MessageExpunge come together, and the flag
    events only with them; the selected mailbox has only message events."""
    if not events:
        raise cursor.fail("Empty event list")
    if ("MessageNew" in events) != ("MessageExpunge" in events):
        raise cursor.fail("MessageNew and MessageExpunge go together")
    if events & {"FlagChange", "AnnotationChange"} and "MessageNew" not in events:
        raise cursor.fail("FlagChange needs MessageNew and MessageExpunge")
    if selected and (events - MESSAGE_EVENTS) & set(EVENT_NAMES.values()):
        raise cursor.fail("Only message events apply to the selected mailbox")
