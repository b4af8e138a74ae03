"""Mail storage behind one interface, whatever the format on disk.

The protocol sessions see only `open_store(principal, config)`, the Store it
returns, and StoreError kinds; they never touch files themselves.
"""


class StoreError(Exception):
    """A storage failure a protocol can name to its client.

    `kind` is one of the constants below; each protocol maps kinds to replies
    in one place (for example IN_USE to POP3 `-ERR [IN-USE]`).
    """

    NOT_FOUND = "not-found"
    EXISTS = "exists"
    IN_USE = "in-use"
    NO_PERMISSION = "no-permission"
    TEMPORARY = "temporary"
    CORRUPT = "corrupt"
    HAS_CHILDREN = "has-children"
    NOT_SELECTABLE = "not-selectable"
    # A message's text is gone: another program expunged it after this
    # session last looked (Maildir; RFC 2180 §4.1 lets the server say NO).
    EXPUNGED = "expunged"

    def __init__(self, kind, message):
        super().__init__(message)
        self.kind = kind


def open_store(principal, config, log=None):
    """The Store for a logged-in principal, chosen by `mail_location` (mbox: or maildir:)."""
    from mailstore.location import parse_location

    location = parse_location(config.mail_location, principal, config.index_dir)
    if location.driver == "mbox":
        from mailstore.mboxstore import MboxStore

        return MboxStore(location, config, log, user=principal.name)
    if location.driver == "maildir":
        from mailstore.maildirstore import MaildirStore

        return MaildirStore(location, config, log, user=principal.name)
    raise StoreError(StoreError.NOT_FOUND, "mail storage %r is not supported" % location.driver)
