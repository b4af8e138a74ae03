"""Whose mail the tool works on, as whom, and how a mailbox argument names a mailbox.

A mailbox argument is either a folder name of the user (INBOX, `Sent`,
`lists/python`, as UTF-8 text; it is sent to the store in modified UTF-7 as
an IMAP client would) or a path: an argument starting with `/`, `./` or
`../` is a path, since folder names never do. A path names one mbox file,
served by an mbox store rooted at the file's directory, or one Maildir
folder (a directory with cur/ in it: `~/Maildir`, `~/Maildir/.Sent`),
served by a Maildir store whose INBOX it is.

Run as root the tool becomes the user before it opens anything, as the
servers do after login (server.privileges), so every file it creates is the
user's: the user named with --user, else the owner of the paths given.
"""

import copy
import os
import pwd

from mailstore import StoreError

# The name the INBOX of a path store gets: a dot file, which no folder name
# can reach (mailstore.folders refuses dotted levels), so no path is ever
# taken for INBOX.
_NO_INBOX = ".pyimapd-mailutil-no-inbox"


class ToolError(Exception):
    """A failure to report on stderr, with exit status 1."""


def is_path(argument):
    """True when a mailbox argument is a file path rather than a folder name."""
    return argument.startswith(("/", "./", "../")) or argument in (".", "..")


def load_config(path, location=None):
    """The server configuration (--config, else $PYIMAPD_CONFIG or /etc/pyimapd.conf)."""
    from server.config import ConfigError, load

    try:
        config = load(path)
    except ConfigError as error:
        raise ToolError(str(error)) from None
    if location:
        config = with_location(config, location)
    return config


def with_location(config, location):
    """A copy of config whose mail_location is location."""
    changed = copy.copy(config)
    changed.mail_location = location
    return changed


def find_principal(config, name):
    """The Principal of a user: the passwd_file's entry if it lists the name, else the system's."""
    from auth import AuthFailed
    from auth.passwd import find_system_entry

    if config.passwd_file:
        from auth.passwdfile import find_virtual_user, read_passwd_file

        try:
            entry = find_virtual_user(read_passwd_file(config.passwd_file), name)
        except OSError as error:
            raise ToolError("%s: cannot read: %s" % (config.passwd_file, error.strerror)) from None
        if entry is not None:
            return entry.principal
    try:
        entry = find_system_entry(name)
    except AuthFailed:
        entry = None
    if entry is None:
        raise ToolError("no such user: %s" % name)
    return _principal_of(entry)


def _principal_of(entry):
    from auth import Principal

    return Principal(entry.pw_name, entry.pw_uid, entry.pw_gid, entry.pw_dir)


def choose_principal(config, user, paths, needs_user):
    """Whose mail: --user, else the caller, else (as root) the owner of the paths."""
    if user:
        return find_principal(config, user)
    if os.geteuid() != 0:
        return _principal_of(pwd.getpwuid(os.getuid()))
    if needs_user or not paths:
        raise ToolError("running as root: name the user whose mail this is with --user")
    owners = {_owner(path) for path in paths}
    if len(owners) > 1:
        raise ToolError("the paths belong to different users; choose one with --user")
    try:
        return _principal_of(pwd.getpwuid(owners.pop()))
    except KeyError:
        raise ToolError("the owner of %s has no passwd entry; use --user" % paths[0]) from None


def _owner(path):
    """The uid owning path, or its nearest existing directory when it does not exist yet."""
    candidate = os.path.abspath(path)
    while True:
        try:
            return os.stat(candidate).st_uid
        except FileNotFoundError:
            candidate = os.path.dirname(candidate)
        except OSError as error:
            raise ToolError("%s: %s" % (candidate, error.strerror)) from None


def become(principal, config):
    """As root, become the user for good (unless the mail is root's own); then umask 077."""
    from server.privileges import PrivilegeError, drop_privileges

    if principal.uid != 0 or os.geteuid() != 0:
        try:
            drop_privileges(principal, config.mail_privileged_group or None)
        except PrivilegeError as error:
            raise ToolError("cannot work as user %s: %s" % (principal.name, error)) from None
    os.umask(0o077)


class Mailboxes:
    """Turns mailbox arguments into (store, name) for one user and configuration."""

    def __init__(self, config, principal):
        self.config = config
        self.principal = principal
        self._user_store = None

    def user_store(self):
        """The store of the user's mail_location, opened once."""
        if self._user_store is None:
            self._user_store = self.store_at(self.config.mail_location)
        return self._user_store

    def store_at(self, location):
        """The store for a mail_location (`mbox:~/mail:INBOX=...`, `maildir:~/Maildir`)."""
        from mailstore import open_store

        return open_store(self.principal, with_location(self.config, location))

    def resolve(self, argument):
        """(store, name) for a folder name or a path."""
        if is_path(argument):
            path = os.path.abspath(argument)
            if os.path.isdir(os.path.join(path, "cur")):
                return self.maildir_path_store(path), b"INBOX"
            name = os.fsencode(os.path.basename(path))
            if name.upper() == b"INBOX":  # the store would take it for its INBOX: make it so
                return self.path_store(os.path.dirname(path), inbox=path), b"INBOX"
            return self.path_store(os.path.dirname(path)), name
        return self.user_store(), folder_name(argument)

    def resolve_pair(self, old, new):
        """(store, old name, new name) for RENAME: two folder names, or two paths."""
        if is_path(old) != is_path(new):
            raise ToolError("rename takes two folder names or two paths, not one of each")
        if not is_path(old):
            return self.user_store(), folder_name(old), folder_name(new)
        old, new = os.path.abspath(old), os.path.abspath(new)
        root = os.path.commonpath([os.path.dirname(old), os.path.dirname(new)])
        return (self.path_store(root), os.fsencode(os.path.relpath(old, root)),
                os.fsencode(os.path.relpath(new, root)))

    def path_store(self, directory, inbox=None):
        """An mbox store whose folders are the files of one directory."""
        from mailstore.location import Location, expand
        from mailstore.mboxstore import MboxStore

        location = Location("mbox", directory, inbox or os.path.join(directory, _NO_INBOX),
                            expand(self.config.index_dir, self.principal))
        return MboxStore(location, self.config, user=self.principal.name)

    def maildir_path_store(self, directory):
        """A Maildir store whose INBOX is one Maildir folder directory (its tmp/, new/, cur/)."""
        from mailstore.location import Location, expand
        from mailstore.maildirstore import MaildirStore

        location = Location("maildir", directory, directory,
                            expand(self.config.index_dir, self.principal))
        return MaildirStore(location, self.config, user=self.principal.name)


def folder_name(text):
    """The IMAP name (modified UTF-7) of a folder given as text; INBOX in any case is INBOX."""
    from imap import utf7

    if text.upper() == "INBOX":
        return b"INBOX"
    try:
        return utf7.encode(text)
    except ValueError:
        raise ToolError("invalid folder name: %r" % text) from None


def display_name(name):
    """A mailbox name for messages: modified UTF-7 decoded when it is valid."""
    from imap import utf7

    try:
        return utf7.decode(name)
    except ValueError:
        return name.decode("ascii", "replace")


def describe(error):
    """The text of a StoreError or OSError for the user."""
    if isinstance(error, StoreError):
        return str(error)
    return error.strerror or str(error)
