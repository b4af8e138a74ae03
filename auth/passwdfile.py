"""Virtual users from a Dovecot-style passwd-file (the `passwd_file` setting).

Each line is `user:{SCHEME}password:uid:gid:gecos:home:shell`, optionally
followed by Dovecot's extra fields, which are ignored. Blank lines, `#` comments
and lines that do not fit are skipped. Fields are split on every `:`, as Dovecot
does, so a password cannot contain one.

The password field is `{SCHEME}value`; without a `{SCHEME}` Dovecot reads it
as CRYPT. auth.schemes says which schemes can be checked and by which
mechanisms. A user listed with a scheme this server cannot check is still
found, so that a login for that name fails rather than falling through to PAM.
"""

from collections import namedtuple

from auth import Principal
from auth.schemes import StoredSecret

# Dovecot's default_pass_scheme for a passwd-file without a {SCHEME} prefix.
DEFAULT_SCHEME = "CRYPT"
# user, password, uid, gid, gecos, home, shell
FIELD_COUNT = 7


class VirtualUser(namedtuple("VirtualUser", "principal secret")):
    """One passwd-file entry: whose rights to take (a Principal), and the StoredSecret."""

    __slots__ = ()


def split_scheme(field):
    """Return (scheme upper-cased, value) for a password field; no prefix means CRYPT."""
    if field.startswith("{"):
        end = field.find("}")
        if end > 1:
            return field[1:end].upper(), field[end + 1 :]
    return DEFAULT_SCHEME, field


def parse_entry(line):
    """Return the VirtualUser a line describes, or None if it describes none."""
    if not line.strip() or line.lstrip().startswith("#"):
        return None
    fields = line.split(":")
    if len(fields) < FIELD_COUNT:
        return None
    name, password, uid, gid, _gecos, home, _shell = fields[:FIELD_COUNT]
    if not name or not uid.isdigit() or not gid.isdigit() or not home.startswith("/"):
        return None
    principal = Principal(name=name, uid=int(uid), gid=int(gid), home=home)
    return VirtualUser(principal=principal, secret=StoredSecret(*split_scheme(password)))


def parse_passwd_file(text):
    """Return {user name: VirtualUser}; the first entry for a name wins, as getpwnam's does."""
    users = {}
    for line in text.splitlines():
        entry = parse_entry(line)
        if entry is not None:
            users.setdefault(entry.principal.name, entry)
    return users


def read_passwd_file(path):
    """Parse the file at path; OSError if it cannot be read."""
    with open(path, encoding="utf-8", errors="surrogateescape") as handle:
        return parse_passwd_file(handle.read())


def find_virtual_user(users, name):
    """Look a name up exactly, then in lower case if it has upper case (UW's rule)."""
    entry = users.get(name)
    if entry is None and name != name.lower():
        entry = users.get(name.lower())
    return entry
