"""System-account lookup (auth.passwd) and the virtual-user passwd-file (auth.passwdfile)."""

import pwd

import pytest

from auth import AuthFailed, Principal, passwd, passwdfile
from server import limits

NOBODY = pwd.getpwnam("nobody")


def test_known_user_gives_principal_from_passwd_database():
    """A system user's principal carries the uid, gid and home from getpwnam."""
    assert passwd.lookup_system_user("nobody") == Principal(
        "nobody", NOBODY.pw_uid, NOBODY.pw_gid, NOBODY.pw_dir
    )


def test_upper_case_name_falls_back_to_lower_case():
    """A name not found as given but with upper case is found in lower case (UW rule)."""
    assert passwd.lookup_system_user("NoBody").name == "nobody"


@pytest.mark.parametrize(
    "name",
    [
        "root",
        "ROOT",
        "no-such-user-pyimapd",
        "",
        "a" * (limits.MAX_USER_NAME + 1),
        "é" * (limits.MAX_USER_NAME // 2 + 1),
        "nobody\x00",
        "nob\rody",
        "nobody\n",
        "no\x7fbody",
        "../nobody",
        "nobody/",
    ],
)
def test_refused_names_fail_like_unknown_users(name):
    """Root, unknown, over-long and control/slash/NUL names all raise the same AuthFailed."""
    with pytest.raises(AuthFailed):
        passwd.lookup_system_user(name)


def test_name_at_the_length_limit_is_looked_up():
    """A name of exactly MAX_USER_NAME bytes passes validation (it is then just unknown)."""
    passwd.validate_user_name("a" * limits.MAX_USER_NAME)


def test_find_system_entry_reports_root_without_refusing():
    """find_system_entry returns root's entry so the caller can refuse it without a PAM call."""
    assert passwd.find_system_entry("root").pw_uid == 0


VIRTUAL_FILE = """\
# virtual users for the demo

alice:{PLAIN}secret one:5001:5001:Alice:/srv/mail/alice:/bin/false
bob:{plain}b:o:b:5002:5002::/srv/mail/bob:/bin/false
carol:{SHA512-CRYPT}$6$abc:5003:5003::/srv/mail/carol:/bin/false
dave:nopassscheme:5004:5004::/srv/mail/dave:
alice:{PLAIN}second:5009:5009::/srv/mail/alice2:/bin/false
frank:{plain}f:5012:5012::/srv/mail/frank:/bin/false
erin:{PLAIN}e:5005:5005::/srv/mail/erin::userdb_quota_rule=*:storage=1G
toor:{PLAIN}r:0:0::/root:/bin/sh
badui:{PLAIN}x:abc:5006::/srv/mail/x:/bin/false
badgid:{PLAIN}x:5007:-1::/srv/mail/x:/bin/false
relhome:{PLAIN}x:5008:5008::srv/mail/x:/bin/false
short:{PLAIN}x:5010:5010
:{PLAIN}noname:5011:5011::/srv/mail/n:/bin/false
"""


@pytest.mark.parametrize(
    "name, uid, home, scheme, value",
    [
        ("alice", 5001, "/srv/mail/alice", "PLAIN", "secret one"),
        ("erin", 5005, "/srv/mail/erin", "PLAIN", "e"),
        ("frank", 5012, "/srv/mail/frank", "PLAIN", "f"),
        ("toor", 0, "/root", "PLAIN", "r"),
        ("carol", 5003, "/srv/mail/carol", "SHA512-CRYPT", "$6$abc"),
        ("dave", 5004, "/srv/mail/dave", "CRYPT", "nopassscheme"),
    ],
)
def test_passwd_file_entries(name, uid, home, scheme, value):
    """Well-formed lines give the principal and the password's scheme (upper-cased; none means CRYPT) and value."""
    entry = passwdfile.parse_passwd_file(VIRTUAL_FILE)[name]
    assert (entry.principal.uid, entry.principal.gid, entry.principal.home) == (uid, uid, home)
    assert (entry.secret.scheme, entry.secret.value) == (scheme, value)


def test_passwd_file_skips_comments_blanks_and_malformed_lines():
    """Comments, blank lines, bad uid/gid, relative homes, short lines and empty names are ignored."""
    names = set(passwdfile.parse_passwd_file(VIRTUAL_FILE))
    assert names == {"alice", "carol", "dave", "erin", "frank", "toor"}


def test_passwd_file_password_with_colon_breaks_the_line():
    """A ':' in a password shifts the fields (Dovecot has no escape), so the line is not used as meant."""
    assert passwdfile.parse_passwd_file(VIRTUAL_FILE).get("bob") is None


def test_passwd_file_first_entry_wins():
    """A name listed twice resolves to its first line, as getpwnam does."""
    assert passwdfile.parse_passwd_file(VIRTUAL_FILE)["alice"].principal.uid == 5001


@pytest.mark.parametrize(
    "asked, found",
    [("alice", "alice"), ("ALICE", "alice"), ("Alice", "alice"), ("mallory", None)],
)
def test_passwd_file_lookup_case_rule(asked, found):
    """Lookup is exact first, then lower case for names with upper case."""
    users = passwdfile.parse_passwd_file(VIRTUAL_FILE)
    entry = passwdfile.find_virtual_user(users, asked)
    assert (entry.principal.name if entry else None) == found


def test_passwd_file_exact_name_beats_lower_case_match():
    """An entry spelled exactly as asked wins over the lower-case one."""
    users = passwdfile.parse_passwd_file(
        "Zed:{PLAIN}upper:6001:6001::/h/Z:\nzed:{PLAIN}lower:6002:6002::/h/z:\n"
    )
    assert passwdfile.find_virtual_user(users, "Zed").secret.value == "upper"
    assert passwdfile.find_virtual_user(users, "ZED").secret.value == "lower"


def test_read_passwd_file_reads_from_disk(tmp_path):
    """read_passwd_file parses the named file, keeping non-UTF-8 bytes in secrets."""
    path = tmp_path / "users"
    path.write_bytes(b"u:{PLAIN}caf\xe9:7000:7000::/h/u:/bin/false\n")
    secret = passwdfile.read_passwd_file(str(path))["u"].secret
    assert secret.plaintext() == b"caf\xe9"


def test_read_passwd_file_missing_raises_oserror(tmp_path):
    """A missing file is an OSError for the caller to handle, not an empty user list."""
    with pytest.raises(OSError):
        passwdfile.read_passwd_file(str(tmp_path / "absent"))
