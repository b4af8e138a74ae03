"""Become the logged-in user for good, keeping at most the mail group in reserve.

UW drops root with setgid, initgroups and setuid and keeps nothing (servers.md
§1). Dovecot's `mail_privileged_group` keeps one group that dotlocking in a
group-writable spool (/var/mail is root:mail 2775 on Debian) needs. Here that
group is kept only as the saved gid: it is not effective, so files are not
created or opened with it, until the dotlock code asks for it with
`privileged_group_effective()`.
"""

import contextlib
import grp
import os
import pwd


class PrivilegeError(Exception):
    """The process could not become, or could not prove it became, the user."""


def _group_id(group_name):
    try:
        return grp.getgrnam(group_name).gr_gid
    except KeyError:
        raise PrivilegeError("no such group %r" % group_name) from None


def _is_system_account(principal):
    try:
        return pwd.getpwnam(principal.name).pw_uid == principal.uid
    except KeyError:
        return False


def _set_supplementary_groups(principal):
    # A virtual user (passwd_file) shares only its name with a system account
    # of that name, if any, so it must not inherit that account's groups.
    if _is_system_account(principal):
        os.initgroups(principal.name, principal.gid)
    else:
        os.setgroups([principal.gid])


def _root_can_be_regained():
    try:
        os.setuid(0)
    except PermissionError:
        return False
    return True


def _verify(principal, saved_gid):
    if os.getresuid() != (principal.uid, principal.uid, principal.uid):
        raise PrivilegeError(
            "uids are %r after the drop, not all %d" % (os.getresuid(), principal.uid)
        )
    expected_gids = (principal.gid, principal.gid, saved_gid)
    if os.getresgid() != expected_gids:
        raise PrivilegeError("gids are %r after the drop, not %r" % (os.getresgid(), expected_gids))
    if _root_can_be_regained():
        raise PrivilegeError("uid 0 could be regained after the drop")


def _drop_root(principal, privileged_group):
    saved_gid = _group_id(privileged_group) if privileged_group else principal.gid
    try:
        _set_supplementary_groups(principal)
        os.setresgid(principal.gid, principal.gid, saved_gid)
        os.setresuid(principal.uid, principal.uid, principal.uid)
    except OSError as error:
        raise PrivilegeError(
            "cannot switch to uid %d gid %d: %s" % (principal.uid, principal.gid, error)
        ) from None
    _verify(principal, saved_gid)


def drop_privileges(principal, privileged_group=None):
    """Make principal's uid and gid the process's only ones; PrivilegeError if not done.

    As root: the user's groups, then gid, then uid, all three of each (real,
    effective, saved), except that privileged_group (a group name) may stay as
    the saved gid. Without root, the process may serve only its own user, and
    privileged_group is not applied.
    """
    if principal.uid == 0:
        raise PrivilegeError("refusing to serve uid 0")
    if os.geteuid() == 0:
        _drop_root(principal, privileged_group)
    elif principal.uid != os.getuid() or principal.uid != os.geteuid():
        raise PrivilegeError(
            "running as uid %d, cannot serve uid %d" % (os.getuid(), principal.uid)
        )


def privileged_gid():
    """The group kept in reserve as the saved gid, or None if there is none."""
    real, _effective, saved = os.getresgid()
    return saved if saved != real else None


@contextlib.contextmanager
def privileged_group_effective():
    """Run the block with the reserved group effective; yields its gid, or None if none is kept."""
    gid = privileged_gid()
    if gid is None:
        yield None
        return
    previous = os.getegid()
    os.setegid(gid)
    try:
        yield gid
    finally:
        os.setegid(previous)
