"""UW's /etc/cram-md5.pwd: shared secrets for APOP and CRAM-MD5 (servers.md §4.2).

The file's presence alone (a successful stat, even of an empty file) switches
APOP and CRAM-MD5 on and moves every plaintext login from PAM to this file.

UW reads the file whatever its mode. This project is stricter: the file must be
a regular file owned by root with no group or other permission bits, or, when
the server itself runs without root (the demo), owned by the server's own uid
under the same mode rule. A file that fails the check still counts as present,
but yields no secrets, so every login fails (fail closed) and the reason is
logged.
"""

import os
import stat

UNUSABLE_CONSEQUENCE = "every password, APOP and CRAM-MD5 login fails until this is fixed"


def is_present(path):
    """True if path names something stat can see (UW's test; a dangling link is absent)."""
    if not path:
        return False
    try:
        os.stat(path)
    except (OSError, ValueError):
        return False
    return True


def refusal_reason(status, euid):
    """Why a file with this stat result may not hold secrets for a process of euid, or None."""
    if not stat.S_ISREG(status.st_mode):
        return "not a regular file"
    if status.st_mode & 0o077:
        return "group or other permission bits set (mode %04o)" % stat.S_IMODE(status.st_mode)
    if status.st_uid == 0:
        return None
    # Only a server that is not root itself (the demo) may use its own file.
    if euid != 0 and status.st_uid == euid:
        return None
    return "owned by uid %d, not root" % status.st_uid


def parse_secrets(text):
    """Return {user: secret} from the file's text; the first line for a user wins.

    Lines are split on CR and LF. A line is used only if it does not start with
    '#' and has a TAB followed by at least one character; the secret is
    everything after the first TAB, spaces included.
    """
    secrets = {}
    for line in text.replace("\r", "\n").split("\n"):
        if not line or line.startswith("#"):
            continue
        user, tab, secret = line.partition("\t")
        if tab and secret:
            secrets.setdefault(user, secret)
    return secrets


class SecretsFile:
    """A present secrets file: its secrets, or none at all if it was refused."""

    def __init__(self, path, secrets, usable):
        self.path = path
        self.usable = usable
        self._secrets = secrets

    def secret_for(self, name):
        """The secret for name (exact match, else lower case if name has upper case), or None."""
        secret = self._secrets.get(name)
        if secret is None and name != name.lower():
            secret = self._secrets.get(name.lower())
        return secret


def _report(log, path, reason):
    if log is not None:
        log("err", "%s: refused: %s; %s" % (path, reason, UNUSABLE_CONSEQUENCE))


def _read_checked(path):
    """Return (text, None) or (None, reason) after checking the opened file itself."""
    # Check the descriptor that is read, not the name, so that a swap between
    # check and read is not possible; O_NONBLOCK keeps a FIFO from hanging us.
    flags = os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC
    try:
        descriptor = os.open(path, flags)
    except OSError as error:
        return None, "cannot open: %s" % error.strerror
    try:
        reason = refusal_reason(os.fstat(descriptor), os.geteuid())
        if reason is not None:
            return None, reason
        with os.fdopen(descriptor, "rb", closefd=False) as handle:
            data = handle.read()
    except OSError as error:
        return None, "cannot read: %s" % error.strerror
    finally:
        os.close(descriptor)
    return data.decode("utf-8", "surrogateescape"), None


def load_secrets(path, log=None):
    """Return a SecretsFile if the file is present, else None.

    A present file that cannot be used gives a SecretsFile with no secrets, and
    the reason goes to log(priority_name, message) when log is given.
    """
    if not is_present(path):
        return None
    text, reason = _read_checked(path)
    if reason is not None:
        _report(log, path, reason)
        return SecretsFile(path, {}, usable=False)
    return SecretsFile(path, parse_secrets(text), usable=True)
