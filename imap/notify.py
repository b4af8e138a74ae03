"""NOTIFY (RFC 5465): events from the selected mailbox and the personal namespace.

One synchronous process cannot be woken by another session, so NOTIFY polls:
between commands (the session's wait for the client), during IDLE, and
after commands. The selected mailbox is looked at as IDLE does
(imap.view.SelectedMailbox.report_changes). Other mailboxes are each held
open read-only, so that a poll costs one stat per mailbox (Mailbox.changed);
only a changed mailbox is read again, and then told as an unsolicited
STATUS (RFC 5465 §5.1-§5.3). A listing of the folders and the subscription
list, compared with the previous ones, gives MailboxName and
SubscriptionChange as LIST responses (§5.4, §5.5).

At most server.limits.IMAP_MAX_NOTIFY_MAILBOXES mailboxes are watched at
once; beyond that the client is told NOTIFICATIONOVERFLOW and notifications
stop, as if it had sent NOTIFY NONE (RFC 5465 §5.8). Changes this session
makes to the folder list itself (CREATE, DELETE, RENAME, SUBSCRIBE,
UNSUBSCRIBE) are not echoed back: the client knows them. A flag change in
another mailbox is told only when it changes that mailbox's UNSEEN count,
the one flag figure STATUS carries.
"""

import time

from imap.parser_notify import SELECTED_FILTERS
from imap.session import No
from mailstore import StoreError
from mailstore import mboxformat as fmt
from server import limits

# RFC 5465 §5: the events this server reports; the metadata events
# (RFC 5464) and AnnotationChange need storage this server does not have.
SUPPORTED_EVENTS = ("MessageNew", "MessageExpunge", "FlagChange", "MailboxName",
                    "SubscriptionChange")
_MESSAGE_EVENTS = frozenset(("MessageNew", "MessageExpunge", "FlagChange"))
# After these commands the folder list is re-read without telling the client.
_OWN_FOLDER_CHANGES = frozenset(("CREATE", "DELETE", "RENAME", "SUBSCRIBE", "UNSUBSCRIBE"))
# Commands a client sends to hear news: they always get a full poll.
_POLLING_COMMANDS = frozenset(("NOOP", "CHECK", "IDLE", "NOTIFY"))


def notify(session, command):
    """RFC 5465 §3: NOTIFY NONE, or NOTIFY SET replacing what was asked before."""
    if command.args == (None,):
        stop(session)
        return "NOTIFY completed"
    status, groups = command.args
    unsupported = {event for group in groups for event in group.events} - set(SUPPORTED_EVENTS)
    if unsupported:
        # RFC 5465 §3.1: the code lists the events the server does support.
        raise No("Unsupported notification event", "BADEVENT (%s)" % " ".join(SUPPORTED_EVENTS))
    groups = [_in_store_names(session, group) for group in groups]
    stop(session)
    session.notifier = Notifier(session, groups)
    try:
        session.notifier.start(announce=status)
    except StoreError:
        stop(session)
        raise
    return "NOTIFY completed"


def stop(session):
    if session.notifier:
        session.notifier.close()
        session.notifier = None


def _in_store_names(session, group):
    from imap.parser_notify import EventGroup

    names = tuple(session.mailbox_name(name) for name in group.mailboxes)
    return EventGroup(group.filter, names, group.events, group.fetch)


class _Watch:
    """One other mailbox held open read-only, and what was last told of it."""

    __slots__ = ("mailbox", "told", "events")

    def __init__(self, mailbox, told, events):
        self.mailbox, self.told, self.events = mailbox, told, events


class Notifier:
    """What one NOTIFY SET asked for, and the state of the mailboxes it watches."""

    def __init__(self, session, groups):
        self.session = session
        self.selected_group = next((g for g in groups if g.filter in SELECTED_FILTERS), None)
        self.groups = [g for g in groups if g.filter not in SELECTED_FILTERS]
        self.watches = {}
        self.names = {}
        self.subscribed = set()
        self.last_poll = time.monotonic()

    # -- what the rest of the session asks ----------------------------------

    @property
    def expunge_any_time(self):
        """SELECTED with MessageExpunge: EXPUNGE may follow any command (RFC 5465 §5.3)."""
        group = self.selected_group
        return bool(group and group.filter == "SELECTED" and "MessageExpunge" in group.events)

    def new_mail_items(self):
        """The fetch attributes MessageNew asks for on the selected mailbox (RFC 5465 §5.1)."""
        group = self.selected_group
        return group.fetch if group and "MessageNew" in group.events else ()

    def start(self, announce):
        """Take the current state as known; with STATUS, tell it (RFC 5465 §3)."""
        self.names, self.subscribed = self._folders()
        self._rewatch(announce=announce)

    def close(self):
        for watch in self.watches.values():
            watch.mailbox.close()
        self.watches = {}

    def after_command(self, name):
        """Poll after a command: always after NOOP and IDLE, otherwise at most every interval."""
        if self.session.notifier is not self:
            return
        if name in _OWN_FOLDER_CHANGES:
            try:
                self.names, self.subscribed = self._folders()
            except StoreError as error:
                self._log(error)
        if not self._rewatch():
            return
        if name in _POLLING_COMMANDS or time.monotonic() - self.last_poll >= limits.IDLE_POLL_INTERVAL:
            self.poll_others()

    def wait_for_client(self, timeout):
        """Wait for the client's next command, telling events meanwhile (RFC 5465 §3).

        Raises server.transport.Timeout when the client stays silent for `timeout`.
        """
        from server.transport import Timeout

        session = self.session
        deadline = time.monotonic() + timeout
        while not session.transport.readable(limits.IDLE_POLL_INTERVAL):
            if time.monotonic() >= deadline:
                raise Timeout()
            self._poll_selected()
            if session.notifier is self:
                self.poll_others()
            session.flush()
            if session.notifier is not self:
                return

    # -- polling -----------------------------------------------------------------

    def _poll_selected(self):
        """The selected mailbox's news as EXISTS, EXPUNGE and FETCH, unless its events are NONE.

        SELECTED-DELAYED keeps expunges for a command that may report them (RFC 5465 §5.3).
        """
        group, view = self.selected_group, self.session.selected
        if group and group.events and view:
            view.report_changes(allow_expunge=group.filter == "SELECTED")

    def poll_others(self):
        """Folder, subscription and message changes of the other mailboxes."""
        self.last_poll = time.monotonic()
        try:
            names, subscribed = self._folders()
        except StoreError as error:
            self._log(error)
            return
        appeared = self._tell_folder_changes(names)
        self._tell_subscription_changes(names, subscribed)
        self.names, self.subscribed = names, subscribed
        if self._rewatch(appeared=appeared):
            self._tell_message_changes()

    def _folders(self):
        """({name: attributes} of every mailbox, set of subscribed names)."""
        from imap.listpattern import ListPattern

        store = self.session.store
        return dict(store.list(ListPattern(b"", b"*"))), set(store.subscriptions())

    def _tell_message_changes(self):
        for name, watch in list(self.watches.items()):
            try:
                if watch.mailbox.refresh():
                    self._tell_status(name, watch, _status(watch.mailbox))
            except StoreError as error:
                self._log(error)
                watch.mailbox.close()
                del self.watches[name]

    def _tell_status(self, name, watch, now):
        """An unsolicited STATUS when a figure the watch's events cover has changed."""
        if watch.told is not None and _told_part(now, watch.events) == _told_part(
                watch.told, watch.events):
            return
        watch.told = now
        self.session.send_untagged(self._status_line(name, now, watch.events))

    def _status_line(self, name, status, events):
        messages, uidnext, uidvalidity, unseen = status
        items = b"MESSAGES %d UIDNEXT %d UIDVALIDITY %d" % (messages, uidnext, uidvalidity)
        if "FlagChange" in events:
            items += b" UNSEEN %d" % unseen
        return b"STATUS " + self.session.wire_name(name) + b" (" + items + b")"

    # -- which mailboxes ---------------------------------------------------------

    def _events_for(self, name, subscribed=None):
        """The events of every group whose filter takes the mailbox (RFC 5465 §6)."""
        subscribed = self.subscribed if subscribed is None else subscribed
        events = set()
        for group in self.groups:
            if _takes(group, name, subscribed):
                events |= group.events
        return events
        if kind == "MAILBOXES":
            return name in group.mailboxes
    def _rewatch(self, announce=False, appeared=()):
        """Hold open exactly the mailboxes whose message events are wanted.

        The selected mailbox is told of as such, never by STATUS. A mailbox
        that appeared since the last poll is told of once it holds mail.
        Returns False when there were too many and notifications stopped.
        """
        selected = self.session.selected.name if self.session.selected else None
        wanted = {}
        for name, attributes in self.names.items():
            if name != selected and not {"\\Noselect", "\\NonExistent"} & set(attributes):
                events = self._events_for(name) & _MESSAGE_EVENTS
                if events:
                    wanted[name] = events
        if len(wanted) > limits.IMAP_MAX_NOTIFY_MAILBOXES:
            self._overflow()
            return False
        for name in set(self.watches) - set(wanted):
            self.watches.pop(name).mailbox.close()
        for name, events in wanted.items():
            if name in self.watches:
                self.watches[name].events = events
            else:
                self._watch(name, events, announce, name in appeared)
        return True

    def _watch(self, name, events, announce, appeared):
        """Open a mailbox to watch; tell its STATUS when NOTIFY SET STATUS asked
        for it, or when it appeared since the last poll with mail in it."""
        try:
            mailbox = self.session.store.open_mailbox(name, readonly=True)
        except StoreError as error:
            self._log(error)
            return
        watch = _Watch(mailbox, None, events)
        self.watches[name] = watch
        status = _status(mailbox)
        if announce or (appeared and status[0]):
            self._tell_status(name, watch, status)
        watch.told = status

    def _overflow(self):
        """RFC 5465 §5.8: say so, then behave as after NOTIFY NONE."""
        self.session.send_untagged(b"OK [NOTIFICATIONOVERFLOW] Too many mailboxes to watch, "
                                   b"notifications stopped")
        stop(self.session)

    # -- the folder list ---------------------------------------------------------

    def _tell_folder_changes(self, names):
        """MailboxName (RFC 5465 §5.4) as LIST: created, deleted (\\NonExistent) and renamed
        (OLDNAME). Returns the names that appeared, renamed ones excepted."""
        gone = [name for name in self.names if name not in names]
        new = [name for name in names if name not in self.names]
        renamed = _renames(gone, new)
        for old, fresh in renamed.items():
            if self._wants(old, "MailboxName") or self._wants(fresh, "MailboxName"):
                self._send_list(fresh, names[fresh], b' ("OLDNAME" (%s))'
                                % self.session.wire_name(old))
        for name in gone:
            if name not in renamed and self._wants(name, "MailboxName"):
                self._send_list(name, {"\\NonExistent"})
        moved_to = set(renamed.values())
        for name in new:
            if name not in moved_to and self._wants(name, "MailboxName"):
                self._send_list(name, names[name])
        return set(new) - moved_to

    def _tell_subscription_changes(self, names, subscribed):
        """SubscriptionChange (RFC 5465 §5.5) as LIST with or without \\Subscribed."""
        for name in sorted(subscribed ^ self.subscribed):
            if "SubscriptionChange" not in self._events_for(name, subscribed | self.subscribed):
                continue
            attributes = set(names.get(name, {"\\NonExistent"}))
            if name in subscribed:
                attributes.add("\\Subscribed")
            self._send_list(name, attributes)

    def _wants(self, name, event):
        return event in self._events_for(name)

    def _send_list(self, name, attributes, extended=b""):
        flags = " ".join(sorted(attributes)).encode()
        self.session.send_untagged(b"LIST (" + flags + b') "/" '
                                   + self.session.wire_name(name) + extended)

    def _log(self, error):
        self.session.log("info", "NOTIFY cannot look at a mailbox user=%s: %s"
                         % (self.session.user_name, error))


def _takes(group, name, subscribed):
    """True when the group's filter covers the mailbox (RFC 5465 §6)."""
    kind = group.filter
    if kind == "PERSONAL":
        return True
    if kind == "INBOXES":
        return name == b"INBOX"  # the one mailbox mail is delivered to
    if kind == "SUBSCRIBED":
        return name in subscribed
    if kind == "MAILBOXES":
        return name in group.mailboxes
    return any(name == top or name.startswith(top + b"/") for top in group.mailboxes)


def _status(mailbox):
    """(MESSAGES, UIDNEXT, UIDVALIDITY, UNSEEN) of an open mailbox."""
    messages = mailbox.messages
    unseen = sum(1 for m in messages if not m.flags & fmt.SEEN)
    return len(messages), mailbox.uidnext, mailbox.uidvalidity, unseen


def _told_part(status, events):
    """The figures a watch reports: UNSEEN only with FlagChange."""
    return status if "FlagChange" in events else status[:3]


def _renames(gone, new):
    """{old: new} when the names that went and came are one subtree under a new name.

    A poll sees a RENAME (whose inferiors move too, RFC 3501 §6.3.5) as
    names vanishing and appearing; the same shape of tree under one new top
    name is read as a rename, anything else as deletions and creations.
    """
    old_tops = _tops(gone)
    new_tops = _tops(new)
    if len(old_tops) != 1 or len(new_tops) != 1:
        return {}
    old_top, new_top = old_tops[0], new_tops[0]
    old_rest = {name[len(old_top):] for name in gone}
    new_rest = {name[len(new_top):] for name in new}
    if old_rest != new_rest:
        return {}
    return {old_top + rest: new_top + rest for rest in old_rest}


def _tops(names):
    present = set(names)
    return [name for name in names
            if not any(name.startswith(other + b"/") for other in present if other != name)]
