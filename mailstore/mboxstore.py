"""The mbox driver's store: a user's INBOX in the spool and folders under the root.

Folder files themselves are handled by mailstore.folders; each open mailbox
is a mailstore.mbox.MboxMailbox.
"""

import os

try:  # the builtin SHA-256: hashlib would load OpenSSL at every session's first open
    from _sha256 import sha256
except ImportError:  # Python 3.12 and later name it _sha2
    from hashlib import sha256

from mailstore import StoreError
from mailstore.text import move_all
from mailstore.mbox import MboxMailbox


class MboxStore:
    """A user's mbox mail: INBOX in the spool, other folders under the root."""

    def __init__(self, location, config, log=None, user="MAILER-DAEMON"):
        self.location = location
        self.user = user
        self.config = config
        self.log = log or (lambda priority, message: None)

    def open_inbox(self, readonly=False, exclusive_session=False):
        """Open INBOX, recovering an interrupted rewrite first.

        With exclusive_session (POP3, RFC 1939 §8) a second such session on
        the same mailbox fails with StoreError IN_USE.
        """
        mailbox = MboxMailbox(self.location.inbox, self, readonly)
        mailbox.open(exclusive_session)
        return mailbox

    def open_mailbox(self, name, readonly=False):
        """Open INBOX or a folder by its IMAP name; a missing folder is NOT_FOUND."""
        from mailstore import folders

        path = folders.resolve(self.location, name)
        mailbox = MboxMailbox(path, self, readonly, must_exist=name != b"INBOX")
        mailbox.open()
        return mailbox

    # -- mailboxes by name (the IMAP session's view of folders) -------------

    def create(self, name):
        """CREATE; the folder root itself is made on first use (mode 0700)."""
        from mailstore import folders

        try:
            os.makedirs(self.location.root, mode=0o700, exist_ok=True)
        except OSError as error:
            raise StoreError(StoreError.NO_PERMISSION, "cannot create the mail folder root: %s"
                             % error.strerror) from None
        folders.create(self.location, name, os.uname().nodename)

    def delete(self, name):
        from mailstore import folders

        folders.delete(self.location, name)

    def rename(self, old, new):
        """Rename a folder; INBOX's messages move and INBOX stays, empty (RFC 3501 §6.3.5)."""
        from mailstore import folders

        if old != b"INBOX":
            folders.rename(self.location, old, new)
            return
        self.create(new)
        inbox = self.open_mailbox(b"INBOX")
        try:
            move_all(inbox, self.open_mailbox(new), self.location.index_dir)
        finally:
            inbox.close()

    def subscribe(self, name):
        from mailstore import folders

        folders.subscribe(self.location, name)

    def unsubscribe(self, name):
        from mailstore import folders

        folders.unsubscribe(self.location, name)

    def subscriptions(self):
        from mailstore import folders

        return folders.subscribed(self.location)

    def list(self, pattern):
        """(name, attributes) of every mailbox the LIST pattern matches."""
        from mailstore import folders

        return folders.list_folders(self.location, pattern)

    def index_path(self, path, identity):
        """The index sidecar of a mailbox, in the user's index directory."""
        return self._sidecar_path("index", path, identity)

    def cache_path(self, path, identity):
        """The ENVELOPE/BODYSTRUCTURE cache of a mailbox, in the user's index directory."""
        return self._sidecar_path("cache", path, identity)

    def journal_path(self, path, identity):
        """The journal file for a mailbox, in the user's index directory."""
        return self._sidecar_path("journal", path, identity)

    def modseq_log(self, path, identity):
        """The shared modseq file of a mailbox (mailstore.modseq), in the user's index directory."""
        from mailstore import modseq

        path = self._sidecar_path("modseq", path, identity)
        try:
            self.ensure_index_dir()
        except StoreError:
            return modseq.unavailable(path, self.log)
        return modseq.ModseqLog(path, self.log)

    def _sidecar_path(self, kind, path, identity):
        """A per-mailbox file named by its path's hash and inode, so a new file gets a new one."""
        name = sha256(os.fsencode(path)).hexdigest()[:24]
        return os.path.join(self.location.index_dir, "%s-%s-%x" % (kind, name, identity[1]))

    def ensure_index_dir(self):
        """Create the index directory (mode 0700) if needed."""
        try:
            os.makedirs(self.location.index_dir, mode=0o700, exist_ok=True)
        except OSError as error:
            raise StoreError(StoreError.TEMPORARY, "cannot create index directory %s: %s"
                             % (self.location.index_dir, error.strerror)) from None
