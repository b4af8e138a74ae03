"""imap.parser_notify (RFC 5465 NOTIFY) and the IMAP4rev2 / UTF8=ACCEPT grammar in imap.parser."""

import pytest

from imap.command import AppendMessage, Command, FetchItem, ParseError
from imap.parser import parse_command
from imap.parser_notify import MAX_EVENT_GROUPS, MAX_FILTER_MAILBOXES, EventGroup

NEW_PAIR = ("MessageNew", "MessageExpunge")


def notify_set(*groups, status=False):
    return Command("a", "NOTIFY", (status, tuple(groups)))


VALID = [
    (b"a NOTIFY NONE", Command("a", "NOTIFY", (None,))),
    (b"a notify none", Command("a", "NOTIFY", (None,))),
    (b"a NOTIFY SET (SELECTED (MessageNew MessageExpunge))",
     notify_set(EventGroup("SELECTED", (), NEW_PAIR))),
    (b"a notify set (selected-delayed (messagenew messageexpunge flagchange))",
     notify_set(EventGroup("SELECTED-DELAYED", (), NEW_PAIR + ("FlagChange",)))),
    (b"a NOTIFY SET STATUS (PERSONAL NONE)", notify_set(EventGroup("PERSONAL"), status=True)),
    (b"a NOTIFY SET (INBOXES (MessageExpunge MessageNew)) (SUBSCRIBED (SubscriptionChange))",
     notify_set(EventGroup("INBOXES", (), NEW_PAIR),
                EventGroup("SUBSCRIBED", (), ("SubscriptionChange",)))),
    (b"a NOTIFY SET (SUBTREE inbox (MailboxName))",
     notify_set(EventGroup("SUBTREE", (b"INBOX",), ("MailboxName",)))),
    (b'a NOTIFY SET (MAILBOXES (INBOX "Foo Bar" {3}\r\nBaz) (MessageNew MessageExpunge))',
     notify_set(EventGroup("MAILBOXES", (b"INBOX", b"Foo Bar", b"Baz"), NEW_PAIR))),
    (b"a NOTIFY SET (SELECTED (MessageNew (UID BODY.PEEK[HEADER.FIELDS (FROM)]) MessageExpunge))",
     notify_set(EventGroup("SELECTED", (), NEW_PAIR, (
         FetchItem("UID"), parse_command(
             b"x FETCH 1 BODY.PEEK[HEADER.FIELDS (FROM)]").args[1][0])))),
    # Unknown events parse; the handler answers NO [BADEVENT].
    (b"a NOTIFY SET (PERSONAL (ServerMetadataChange Whatever))",
     notify_set(EventGroup("PERSONAL", (), ("ServerMetadataChange", "WHATEVER")))),
]


@pytest.mark.parametrize("data, expected", VALID, ids=[data.decode()[:60] for data, _ in VALID])
def test_valid(data, expected):
    """Each NOTIFY form parses into its filters, events (RFC spelling) and fetch attributes."""
    assert parse_command(data) == expected


ERRORS = [
    (b"a NOTIFY", "Missing NOTIFY arguments"),
    (b"a NOTIFY SET", "Missing event groups"),
    (b"a NOTIFY GET (PERSONAL NONE)", "Invalid NOTIFY arguments"),
    (b"a NOTIFY SET PERSONAL NONE", "Invalid event group"),
    (b"a NOTIFY SET (EVERYWHERE NONE)", "Unknown mailbox filter"),
    (b"a NOTIFY SET (SUBTREE (MailboxName))", "Missing events"),
    (b"a NOTIFY SET (SUBTREE)", "Missing mailboxes"),
    (b"a NOTIFY SET (MAILBOXES () (MailboxName))", "Missing mailbox name"),
    (b"a NOTIFY SET (PERSONAL ())", "Empty event list"),
    (b"a NOTIFY SET (PERSONAL (MailboxName)", "Invalid event group"),
    (b"a NOTIFY SET (PERSONAL (MailboxName))  (INBOXES NONE)", "Invalid event group"),
    # RFC 5465 §5: the pairings.
    (b"a NOTIFY SET (SELECTED (MessageNew))", "MessageNew and MessageExpunge go together"),
    (b"a NOTIFY SET (PERSONAL (MessageExpunge))", "MessageNew and MessageExpunge go together"),
    (b"a NOTIFY SET (PERSONAL (FlagChange MailboxName))",
     "FlagChange needs MessageNew and MessageExpunge"),
    (b"a NOTIFY SET (SELECTED (MessageNew MessageExpunge MailboxName))",
     "Only message events apply to the selected mailbox"),
    (b"a NOTIFY SET (SELECTED (MessageNew (RFC822.TEXT) MessageExpunge))",
     "MessageNew fetch attributes must not set \\Seen"),
    (b"a NOTIFY SET (SELECTED (MessageNew (BODY[1]) MessageExpunge))",
     "MessageNew fetch attributes must not set \\Seen"),
    (b"a NOTIFY SET (SELECTED (MessageNew () MessageExpunge))", "Invalid fetch item"),
    (b"a NOTIFY SET " + b" ".join([b"(PERSONAL NONE)"] * (MAX_EVENT_GROUPS + 1)),
     "Too many event groups"),
    (b"a NOTIFY SET (MAILBOXES (" + b" ".join([b"x"] * (MAX_FILTER_MAILBOXES + 1))
     + b") NONE)", "Too many mailboxes"),
]


@pytest.mark.parametrize("data, text", ERRORS, ids=[data.decode()[:60] for data, _ in ERRORS])
def test_errors(data, text):
    """Malformed NOTIFY, or events that RFC 5465 §5 forbids together, is a BAD with the tag."""
    with pytest.raises(ParseError) as raised:
        parse_command(data)
    assert (raised.value.tag, raised.value.text) == ("a", text)


def test_quoted_utf8_only_when_enabled():
    """UTF-8 in a quoted mailbox name is an IMAP4rev2 / UTF8=ACCEPT form (RFC 9051 §9)."""
    data = 'a SELECT "Entwürfe"'.encode()
    with pytest.raises(ParseError):
        parse_command(data)
    assert parse_command(data, utf8=True).args == ("Entwürfe".encode(),)


@pytest.mark.parametrize("item, rev1, rev2", [
    ("RECENT", True, False), ("DELETED", False, True), ("SIZE", True, True)])
def test_status_items_follow_the_revision(item, rev1, rev2):
    """STATUS RECENT is rev1 grammar only and DELETED rev2 only (RFC 9051 §6.3.11)."""
    data = b"a STATUS INBOX (MESSAGES %s)" % item.encode()
    for rev2_on, accepted in ((False, rev1), (True, rev2)):
        if accepted:
            assert parse_command(data, rev2=rev2_on).args == (b"INBOX", ("MESSAGES", item))
        else:
            with pytest.raises(ParseError):
                parse_command(data, rev2=rev2_on)


def test_append_utf8_literal():
    """APPEND's UTF8 (literal8) form carries the message as a literal8 (RFC 6855 §4)."""
    command = parse_command(b"a APPEND INBOX (\\Seen) UTF8 (~{2}\r\nhi)")
    assert command.args == (b"INBOX", (AppendMessage(("\\Seen",), None, b"hi", True),))
    for bad in (b"a APPEND INBOX UTF8 ({2}\r\nhi)", b"a APPEND INBOX UTF8 (~{2}\r\nhi"):
        with pytest.raises(ParseError):
            parse_command(bad)
