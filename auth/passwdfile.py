"""Virtual users from a Dovecot-style passwd-file (the `passwd_file` setting).

Each line is `user:{SCHEME}password:uid:gid:gecos:home:shell`, optionally
followed by Dovecot's extra fields, which are ignored. Blank lines, `#` comments
and lines that do not fit are skipped. Fields are split on every `:`, as Dovecot
does, so a password cannot contain one.

Only the `{PLAIN}` scheme can be checked here. A user listed with another scheme
(or none, which Dovecot reads as CRYPT) is still found, with no usable secret, so
that a login for that name fails rather than falling through to PAM.
"""

from dataclasses import dataclass
from typing import Optional

from auth import Principal

PLAIN_SCHEME = "PLAIN"
# user, password, uid, gid, gecos, home, shell
FIELD_COUNT = 7


@dataclass(frozen=True)
class VirtualUser:
    """One passwd-file entry: whose rights to take, and the secret if readable."""

    principal: Principal
    secret: Optional[str]


def _split_scheme(field):
    """Return (scheme upper-cased or None, rest) for a password field."""
    if field.startswith("{"):
        end = field.find("}")
        if end > 1:
            return field[1:end].upper(), field[end + 1 :]
    return None, field


def _plain_secret(field):
    scheme, rest = _split_scheme(field)
    return rest if scheme == PLAIN_SCHEME else None


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
    return VirtualUser(principal=principal, secret=_plain_secret(password))


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
