"""The Authenticator against the host's real PAM stack and a real system user.

tests/setup_system_user.sh creates the user pyimapd-test (password Test-pass-1,
shell /bin/false) and the PAM services `pop` and `imap`; the fixture runs it
when the user is missing.
"""

import os
import pwd
import subprocess
from pathlib import Path

import pytest

from auth import AuthFailed
from auth.authenticator import Authenticator
from server.config import Config

REPO = Path(__file__).resolve().parents[2]
SETUP_SCRIPT = REPO / "tests" / "setup_system_user.sh"
TEST_USER = "pyimapd-test"
TEST_PASSWORD = "Test-pass-1"

# pam_unix checks another user's password only for root (unix_chkpwd serves the caller's own).
pytestmark = pytest.mark.skipif(
    os.geteuid() != 0, reason="real PAM checks of another user need root"
)


@pytest.fixture(scope="module")
def system_user():
    """The pwd entry of the test user, after making sure user and PAM services exist."""
    missing_service = not all(Path("/etc/pam.d", name).exists() for name in ("pop", "imap"))
    try:
        pwd.getpwnam(TEST_USER)
    except KeyError:
        missing_service = True
    if missing_service:
        subprocess.run(["sh", str(SETUP_SCRIPT)], check=True)
    return pwd.getpwnam(TEST_USER)


def _authenticator(service=None):
    # No secrets file and no passwd_file: PAM decides.
    return Authenticator(Config({"cram_md5_file": "", "passwd_file": ""}), service=service)


@pytest.mark.parametrize("service", ["pop", "imap"])
def test_right_password_gives_principal(system_user, service):
    """The right password through PAM service pop or imap gives the user's uid, gid and home."""
    principal = _authenticator(service).check_password(TEST_USER, TEST_PASSWORD, rhost="127.0.0.1")
    assert (principal.name, principal.uid, principal.gid, principal.home) == (
        system_user.pw_name,
        system_user.pw_uid,
        system_user.pw_gid,
        system_user.pw_dir,
    )


def test_shell_bin_false_still_authenticates(system_user):
    """A mail-only account whose shell is /bin/false logs in (PAM auth does not look at the shell)."""
    assert system_user.pw_shell == "/bin/false"
    assert _authenticator().check_password(TEST_USER, TEST_PASSWORD).uid == system_user.pw_uid


def test_default_service_is_pop(system_user):
    """Without an explicit service the Authenticator uses config.pam_service, UW's `pop`."""
    assert _authenticator().service == "pop"


def test_wrong_password_fails(system_user):
    """A wrong password is refused by PAM and raises AuthFailed."""
    with pytest.raises(AuthFailed):
        _authenticator().check_password(TEST_USER, "Wrong-pass-1")


def test_unknown_user_fails(system_user):
    """An unknown user raises the same AuthFailed as a wrong password."""
    with pytest.raises(AuthFailed):
        _authenticator().check_password("pyimapd-nosuchuser", TEST_PASSWORD)


def test_leading_space_password_retried_against_real_pam(system_user):
    """UW's retry without a leading space works with real PAM."""
    assert _authenticator().check_password(TEST_USER, " " + TEST_PASSWORD).uid == system_user.pw_uid


def test_upper_case_name_authenticates_as_lower_case_user(system_user):
    """An upper-case spelling of the name reaches PAM as the passwd entry's name (UW rule)."""
    assert _authenticator().check_password(TEST_USER.upper(), TEST_PASSWORD).name == TEST_USER


def test_root_never_authenticates(system_user):
    """Root is refused whatever the password, before PAM."""
    with pytest.raises(AuthFailed):
        _authenticator().check_password("root", TEST_PASSWORD)


# doveadm pw -s SHA512-CRYPT -p tanstaaftanstaaf (tests/unit/test_schemes.py)
MAIL_ONLY_HASH = ("$6$4.R6ps3cAb1BwyHL$no92ozAJN.EzlOXAPSFG1LZCelEqCLlXAZ19wuX.4pH2L5xKVs21D24abyK4GIM"
                  "o.jn56SJzaV7xrmHZWV.aW.")


def test_passwd_file_users_sit_beside_real_pam(system_user, tmp_path):
    """With a passwd_file, a mail-only user logs in by its SHA512-CRYPT hash and the system user still through PAM."""
    users = tmp_path / "passwd"
    users.write_text("mailonly:{SHA512-CRYPT}%s:5000:5000::/srv/mail/mailonly::\n" % MAIL_ONLY_HASH)
    auth = Authenticator(Config({"cram_md5_file": "", "passwd_file": str(users)}))
    assert auth.check_password("mailonly", "tanstaaftanstaaf").home == "/srv/mail/mailonly"
    assert auth.check_password(TEST_USER, TEST_PASSWORD).uid == system_user.pw_uid
    with pytest.raises(AuthFailed):
        auth.check_password("mailonly", TEST_PASSWORD)
    with pytest.raises(AuthFailed):
        auth.check_password(TEST_USER, "tanstaaftanstaaf")
