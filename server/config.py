"""The key = value configuration file, with Dovecot's setting names where Dovecot has one."""

import os

from server import limits

DEFAULT_PATH = "/etc/pyimapd.conf"


class ConfigError(Exception):
    """The configuration file cannot be used; the message says where and why."""


def _boolean(text):
    value = text.strip().lower()
    if value in ("yes", "true", "on", "1"):
        return True
    if value in ("no", "false", "off", "0"):
        return False
    raise ValueError("expected yes or no, not %r" % text)


def _lock_list(text):
    methods = text.split()
    for method in methods:
        if method not in ("dotlock", "fcntl", "flock"):
            raise ValueError("unknown lock method %r (dotlock, fcntl, flock)" % method)
    return tuple(methods)


def _seconds(text):
    value = float(text)
    if value < 0:
        raise ValueError("must not be negative")
    return value


# name: (converter, default). Defaults give UW's layout and policy.
SETTINGS = {
    "mail_location": (str, "mbox:~:INBOX=/var/spool/mail/%u"),
    "disable_plaintext_auth": (_boolean, True),
    "ssl_cert_file": (str, ""),
    "ssl_key_file": (str, ""),
    "mbox_read_locks": (_lock_list, ("fcntl",)),
    "mbox_write_locks": (_lock_list, ("dotlock", "fcntl", "flock")),
    "mbox_lock_timeout": (_seconds, limits.MBOX_LOCK_TIMEOUT),
    "mail_privileged_group": (str, ""),
    "login_greeting": (str, ""),
    "cram_md5_file": (str, "/etc/cram-md5.pwd"),
    "passwd_file": (str, ""),
    "pam_service": (str, "pop"),
    "imap_pam_service": (str, "imap"),
    "login_failure_delay": (_seconds, limits.LOGIN_FAILURE_DELAY),
    "index_dir": (str, "~/.pyimapd"),
    "syslog_facility": (str, "mail"),
    # The largest message APPEND accepts, in bytes (UW: 1 GiB; APPEND holds it in memory).
    "imap_max_append_size": (int, 64 << 20),
}


class Config:
    """Settings as attributes; every name in SETTINGS exists, with its default."""

    def __init__(self, values=None, path=None):
        self.path = path
        for name, (_, default) in SETTINGS.items():
            setattr(self, name, default)
        for name, value in (values or {}).items():
            setattr(self, name, value)


def parse(text, path="<config>"):
    """Parse configuration text into a Config; raise ConfigError naming the line."""
    values = {}
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        name, sep, value = line.partition("=")
        name, value = name.strip(), value.strip()
        where = "%s line %d" % (path, number)
        if not sep or not name:
            raise ConfigError("%s: expected 'name = value'" % where)
        if name not in SETTINGS:
            raise ConfigError("%s: unknown setting %r" % (where, name))
        convert = SETTINGS[name][0]
        try:
            values[name] = convert(value)
        except ValueError as error:
            raise ConfigError("%s: bad value for %s: %s" % (where, name, error)) from None
    return Config(values, path)


def load(path=None):
    """Read the configuration; a missing default file means all defaults."""
    explicit = path is not None
    path = path or os.environ.get("PYIMAPD_CONFIG") or DEFAULT_PATH
    try:
        with open(path, encoding="utf-8") as handle:
            text = handle.read()
    except FileNotFoundError:
        if explicit:
            raise ConfigError("%s: no such file" % path) from None
        return Config(path=None)
    except (OSError, UnicodeDecodeError) as error:
        raise ConfigError("%s: cannot read: %s" % (path, error)) from None
    return parse(text, path)
