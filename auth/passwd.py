"""System accounts: who a user name is, by the rules of UW's server_login.

A name that is not in the passwd database but has upper-case letters is tried
again in lower case (servers.md §4.3). Root never logs in (servers.md §1).
"""

import pwd

from auth import AuthFailed, BreakInAttempt, Principal
from server import limits


def validate_user_name(name):
    """Raise AuthFailed unless name could be a user name at all.

    The checks come before any database or PAM call, so that a name built to
    confuse a lookup (a NUL, a path, a terminal escape) never reaches one.
    """
    if not isinstance(name, str) or not name:
        raise AuthFailed("empty user name")
    # Bytes, not characters: UW's limit is on the octets the client sent.
    if len(name.encode("utf-8", "surrogateescape")) > limits.MAX_USER_NAME:
        raise BreakInAttempt("user name longer than %d bytes" % limits.MAX_USER_NAME, name)
    if any(ord(char) < 0x20 or ord(char) == 0x7F for char in name):
        raise BreakInAttempt("user name contains a control character", name)
    if "/" in name:
        raise AuthFailed("user name contains '/'")


def _getpwnam(name):
    try:
        return pwd.getpwnam(name)
    except KeyError:
        return None


def find_system_entry(name):
    """The passwd entry for name, or for its lower-case form if name has upper case; else None."""
    validate_user_name(name)
    entry = _getpwnam(name)
    if entry is None and name != name.lower():
        entry = _getpwnam(name.lower())
    return entry


def principal_from_entry(entry):
    """The Principal for a passwd entry; AuthFailed for uid 0."""
    if entry.pw_uid == 0:
        raise AuthFailed("uid 0 may not log in")
    return Principal(name=entry.pw_name, uid=entry.pw_uid, gid=entry.pw_gid, home=entry.pw_dir)


def lookup_system_user(name):
    """Return the Principal for a system account, or raise AuthFailed.

    Unknown names and uid 0 fail alike, so the caller cannot tell them apart.
    """
    entry = find_system_entry(name)
    if entry is None:
        raise AuthFailed("no such system user")
    return principal_from_entry(entry)
