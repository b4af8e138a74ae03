"""Dropping root for the logged-in user, with the mail group kept only as the saved gid.

Each drop runs in a child process, since it cannot be undone.
"""

import grp
import json
import os
import pwd
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from auth import Principal
from server import privileges

REPO = Path(__file__).resolve().parents[2]
SETUP_SCRIPT = REPO / "tests" / "setup_system_user.sh"
TEST_USER = "pyimapd-test"
MAIL_GID = grp.getgrnam("mail").gr_gid
NOBODY = pwd.getpwnam("nobody")

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="dropping privileges needs root")

DROP_AND_REPORT = r"""
import json, os, sys
from auth import Principal
from server import privileges

args = json.loads(sys.argv[1])
if args.get("run_as") is not None:
    # Start as this non-root uid, as the no-root demo does.
    uid = args["run_as"]
    os.setgroups([])
    os.setresgid(uid, uid, uid)
    os.setresuid(uid, uid, uid)
try:
    privileges.drop_privileges(Principal(**args["principal"]), args.get("group"))
except privileges.PrivilegeError as error:
    print(json.dumps({"error": str(error)}))
    sys.exit(0)


def try_create(name):
    try:
        path = os.path.join(args["lock_dir"], name)
        os.close(os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600))
        return "created"
    except PermissionError:
        return "refused"


report = {
    "resuid": os.getresuid(),
    "resgid": os.getresgid(),
    "groups": sorted(os.getgroups()),
    "privileged_gid": privileges.privileged_gid(),
}
try:
    os.setuid(0)
    report["setuid0"] = "succeeded"
except PermissionError:
    report["setuid0"] = "refused"
with privileges.privileged_group_effective() as gid:
    report["context_gid"] = gid
    report["egid_inside"] = os.getegid()
    if args.get("lock_dir"):
        report["create_inside"] = try_create("inside.lock")
report["egid_after"] = os.getegid()
if args.get("lock_dir"):
    report["create_outside"] = try_create("outside.lock")
print(json.dumps(report))
"""


@pytest.fixture(scope="module")
def test_user():
    """The pyimapd-test system account, created by the setup script when missing."""
    try:
        entry = pwd.getpwnam(TEST_USER)
    except KeyError:
        subprocess.run(["sh", str(SETUP_SCRIPT)], check=True)
        entry = pwd.getpwnam(TEST_USER)
    return Principal(entry.pw_name, entry.pw_uid, entry.pw_gid, entry.pw_dir)


@pytest.fixture
def mail_spool():
    """A directory like Debian's /var/mail: root:mail, mode 2775, enterable by everyone."""
    path = tempfile.mkdtemp(prefix="pyimapd-spool-")
    os.chown(path, 0, MAIL_GID)
    os.chmod(path, 0o2775)
    yield path
    shutil.rmtree(path)


def _drop(principal, group=None, run_as=None, lock_dir=None):
    fields = {name: getattr(principal, name) for name in ("name", "uid", "gid", "home")}
    args = {"principal": fields, "group": group, "run_as": run_as, "lock_dir": lock_dir}
    result = subprocess.run(
        [sys.executable, "-c", DROP_AND_REPORT, json.dumps(args)],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(result.stdout)


def test_drop_with_mail_group_keeps_it_only_as_saved_gid(test_user, mail_spool):
    """All uids become the user's, gids are the user's with mail saved, and root cannot be regained."""
    report = _drop(test_user, "mail", lock_dir=mail_spool)
    assert report["resuid"] == [test_user.uid] * 3
    assert report["resgid"] == [test_user.gid, test_user.gid, MAIL_GID]
    assert report["setuid0"] == "refused"
    assert report["privileged_gid"] == MAIL_GID
    assert MAIL_GID not in report["groups"] and 0 not in report["groups"]


def test_privileged_group_effective_only_inside_the_block(test_user, mail_spool):
    """The mail group is effective (and can create a dotlock in the spool) only inside the block."""
    report = _drop(test_user, "mail", lock_dir=mail_spool)
    inside = (report["context_gid"], report["egid_inside"], report["create_inside"])
    assert inside == (MAIL_GID, MAIL_GID, "created")
    assert (report["egid_after"], report["create_outside"]) == (test_user.gid, "refused")


def test_drop_without_privileged_group_keeps_nothing(test_user, mail_spool):
    """Without a privileged group every gid is the user's and the block changes nothing (UW's drop)."""
    report = _drop(test_user, lock_dir=mail_spool)
    assert report["resgid"] == [test_user.gid] * 3
    assert report["privileged_gid"] is None and report["context_gid"] is None
    assert report["create_inside"] == "refused" and report["setuid0"] == "refused"


def test_virtual_user_gets_only_its_own_group(test_user):
    """A passwd_file principal gets just its gid, not the groups of a system account of the same name."""
    report = _drop(Principal("mail", 5002, 5002, "/srv/mail/mail"))
    assert report["groups"] == [5002] and report["resuid"] == [5002] * 3


def test_unknown_privileged_group_is_an_error(test_user):
    """A privileged group that does not exist stops the drop with PrivilegeError."""
    assert "no such group" in _drop(test_user, "no-such-group-pyimapd")["error"]


def test_non_root_process_serves_its_own_user():
    """Without root, dropping to the process's own uid succeeds and changes nothing."""
    principal = Principal("nobody", NOBODY.pw_uid, NOBODY.pw_gid, NOBODY.pw_dir)
    report = _drop(principal, "mail", run_as=NOBODY.pw_uid)
    assert report["resuid"] == [NOBODY.pw_uid] * 3 and report["privileged_gid"] is None


def test_non_root_process_refuses_another_user(test_user):
    """Without root, a principal with another uid is refused."""
    assert "cannot serve" in _drop(test_user, run_as=NOBODY.pw_uid)["error"]


def test_uid_zero_principal_refused():
    """A principal with uid 0 is never served, before anything changes."""
    with pytest.raises(privileges.PrivilegeError):
        privileges.drop_privileges(Principal("root", 0, 0, "/root"))
