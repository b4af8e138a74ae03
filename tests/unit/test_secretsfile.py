"""The UW /etc/cram-md5.pwd secrets file: parsing, lookup, presence and the permission rule."""

import os
import pwd
import shutil
import stat
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from auth import secretsfile

REPO = Path(__file__).resolve().parents[2]
NOBODY = pwd.getpwnam("nobody")
needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="chown and uid switching need root")


@pytest.mark.parametrize(
    "text, expected",
    [
        ("alice\tsecret\n", {"alice": "secret"}),
        ("alice\tpass with  spaces \n", {"alice": "pass with  spaces "}),
        ("alice\tone\ttwo\n", {"alice": "one\ttwo"}),
        ("alice\tcr\rbob\tlf\ncarol\tcrlf\r\n", {"alice": "cr", "bob": "lf", "carol": "crlf"}),
        ("# alice\tcommented\n", {}),
        ("\n\r\n\n", {}),
        ("alice\t\n", {}),
        ("alice secret\n", {}),
        ("alice\tfirst\nalice\tsecond\n", {"alice": "first"}),
        (" alice\tlead\n", {" alice": "lead"}),
        ("\tnouser\n", {"": "nouser"}),
        ("alice\tlast line without newline", {"alice": "last line without newline"}),
        ("", {}),
    ],
)
def test_parse_secrets(text, expected):
    """Lines split on CR/LF; '#', empty and TAB-less lines skipped; secret is all after the first TAB."""
    assert secretsfile.parse_secrets(text) == expected


@pytest.mark.parametrize(
    "asked, found",
    [
        ("alice", "lower"),
        ("Alice", "exact"),
        ("ALICE", "lower"),
        ("bob", None),
        ("BOB", "bob-upper"),
        ("Bob", None),
    ],
)
def test_secret_lookup_exact_then_lower_case(asked, found):
    """An exact match wins; otherwise a name with upper case matches its lower-case line."""
    secrets = secretsfile.SecretsFile(
        "/x", {"alice": "lower", "Alice": "exact", "BOB": "bob-upper"}, usable=True
    )
    assert secrets.secret_for(asked) == found


def _status(mode, uid):
    return os.stat_result((mode, 0, 0, 1, uid, 0, 0, 0, 0, 0))


@pytest.mark.parametrize(
    "mode, owner, euid, refused",
    [
        (stat.S_IFREG | 0o600, 0, 0, False),
        (stat.S_IFREG | 0o400, 0, 0, False),
        (stat.S_IFREG | 0o000, 0, 0, False),
        (stat.S_IFREG | 0o640, 0, 0, True),
        (stat.S_IFREG | 0o604, 0, 0, True),
        (stat.S_IFREG | 0o610, 0, 0, True),
        (stat.S_IFREG | 0o602, 0, 0, True),
        (stat.S_IFREG | 0o600, 1000, 0, True),
        (stat.S_IFDIR | 0o700, 0, 0, True),
        (stat.S_IFIFO | 0o600, 0, 0, True),
        (stat.S_IFCHR | 0o600, 0, 0, True),
        (stat.S_IFREG | 0o600, 1000, 1000, False),
        (stat.S_IFREG | 0o600, 0, 1000, False),
        (stat.S_IFREG | 0o640, 1000, 1000, True),
        (stat.S_IFREG | 0o600, 1001, 1000, True),
    ],
)
def test_refusal_rule(mode, owner, euid, refused):
    """Only regular files with no group/other bits, owned by root (or by a non-root server itself), are used."""
    assert (secretsfile.refusal_reason(_status(mode, owner), euid) is not None) == refused


def _write(path, text, mode=0o600):
    path.write_text(text)
    os.chmod(path, mode)
    return str(path)


def _load(path):
    messages = []
    secrets = secretsfile.load_secrets(path, lambda *entry: messages.append(entry))
    return secrets, messages


def test_missing_file_is_absent(tmp_path):
    """No file means no SecretsFile at all: PAM decides, challenge mechanisms stay off."""
    assert secretsfile.load_secrets(str(tmp_path / "absent")) is None
    assert not secretsfile.is_present(str(tmp_path / "absent"))


def test_empty_setting_is_absent():
    """An empty cram_md5_file setting switches the file off."""
    assert secretsfile.load_secrets("") is None


def test_empty_file_is_present_with_no_users(tmp_path):
    """An empty file counts as present (UW's stat test) and lists nobody."""
    secrets, messages = _load(_write(tmp_path / "cram-md5.pwd", ""))
    assert secrets.usable and secrets.secret_for("alice") is None and messages == []


def test_good_file_is_read(tmp_path):
    """A 0600 file owned by the server's own uid (root in CI) gives its secrets."""
    secrets, messages = _load(_write(tmp_path / "cram-md5.pwd", "alice\ttanstaaf\n"))
    assert secrets.usable and secrets.secret_for("alice") == "tanstaaf" and messages == []


@pytest.mark.parametrize("mode", [0o640, 0o644, 0o604, 0o660, 0o606])
def test_group_or_world_permissions_refuse_the_file(tmp_path, mode):
    """A file with any group/other bit is present but yields no secret, and the refusal is logged."""
    path = _write(tmp_path / "cram-md5.pwd", "alice\ttanstaaf\n", mode)
    secrets, messages = _load(path)
    assert not secrets.usable and secrets.secret_for("alice") is None
    assert [priority for priority, _ in messages] == ["err"]
    assert path in messages[0][1] and "tanstaaf" not in messages[0][1]


@needs_root
def test_file_owned_by_another_user_is_refused_when_root(tmp_path):
    """A root server refuses a secrets file owned by anyone but root."""
    path = _write(tmp_path / "cram-md5.pwd", "alice\ttanstaaf\n")
    os.chown(path, NOBODY.pw_uid, NOBODY.pw_gid)
    secrets, messages = _load(path)
    assert not secrets.usable and "owned by uid %d" % NOBODY.pw_uid in messages[0][1]


def test_directory_is_present_but_refused(tmp_path):
    """A directory at the path switches the mechanisms on but every login fails."""
    os.mkdir(tmp_path / "cram-md5.pwd", 0o700)
    secrets, messages = _load(str(tmp_path / "cram-md5.pwd"))
    assert not secrets.usable and "not a regular file" in messages[0][1]


def test_fifo_is_refused_without_blocking(tmp_path):
    """A FIFO is refused at once instead of hanging the login on open or read."""
    os.mkfifo(tmp_path / "cram-md5.pwd", 0o600)
    secrets, messages = _load(str(tmp_path / "cram-md5.pwd"))
    assert not secrets.usable and "not a regular file" in messages[0][1]


def test_symlink_to_good_file_is_followed(tmp_path):
    """The file reached through a symlink is what is checked and read."""
    target = _write(tmp_path / "real", "alice\ttanstaaf\n")
    os.symlink(target, tmp_path / "cram-md5.pwd")
    secrets, _ = _load(str(tmp_path / "cram-md5.pwd"))
    assert secrets.secret_for("alice") == "tanstaaf"


def test_dangling_symlink_is_absent(tmp_path):
    """A symlink to nothing fails stat, so the file counts as absent, as in UW."""
    os.symlink(tmp_path / "nothing", tmp_path / "cram-md5.pwd")
    assert secretsfile.load_secrets(str(tmp_path / "cram-md5.pwd")) is None


@pytest.fixture
def shared_dir():
    """A directory that a non-root subprocess can enter."""
    path = tempfile.mkdtemp(prefix="pyimapd-secrets-")
    os.chmod(path, 0o755)
    yield Path(path)
    shutil.rmtree(path)


LOAD_AS_NOBODY = """
import os, sys
os.setgroups([])
os.setresgid({gid}, {gid}, {gid})
os.setresuid({uid}, {uid}, {uid})
from auth import secretsfile
secrets = secretsfile.load_secrets(sys.argv[1], lambda p, m: print(p, m, file=sys.stderr))
print(secrets.usable, secrets.secret_for("alice"))
"""


def _load_as_nobody(path):
    code = LOAD_AS_NOBODY.format(uid=NOBODY.pw_uid, gid=NOBODY.pw_gid)
    result = subprocess.run(
        [sys.executable, "-c", code, str(path)],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=True,
    )
    return result.stdout.split()


@needs_root
@pytest.mark.parametrize(
    "owner, mode, expected",
    [
        ("nobody", 0o600, ["True", "tanstaaf"]),
        ("nobody", 0o400, ["True", "tanstaaf"]),
        ("nobody", 0o640, ["False", "None"]),
        ("root", 0o600, ["False", "None"]),
        ("daemon", 0o600, ["False", "None"]),
    ],
)
def test_non_root_server_accepts_only_its_own_private_file(shared_dir, owner, mode, expected):
    """A server without root (the demo) uses a 0600 file it owns, and fails closed on any other."""
    path = _write(shared_dir / "cram-md5.pwd", "alice\ttanstaaf\n", mode)
    account = pwd.getpwnam(owner)
    os.chown(path, account.pw_uid, account.pw_gid)
    assert _load_as_nobody(path) == expected
