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


def _positive_integer(text):
    value = int(text)
    if value < 1:
        raise ValueError("must be at least 1")
    return value


def _timeout(text):
    # A timeout of 0 would end every session at its first read.
    value = float(text)
    if not value > 0:
        raise ValueError("must be a positive number of seconds")
    return value


# RFC 6154 §2: the special-use attributes a mailbox may carry.
SPECIAL_USE_ATTRIBUTES = ("\\All", "\\Archive", "\\Drafts", "\\Flagged", "\\Junk",
                          "\\Sent", "\\Trash")
# The names Thunderbird, Apple Mail and most phones create for these folders.
DEFAULT_SPECIAL_USE = "Sent=\\Sent, Drafts=\\Drafts, Trash=\\Trash, Junk=\\Junk"


def special_use_pairs(text):
    """`Name=\\Attribute, ...` as ((name, attribute), ...); ValueError naming the bad item.

    A name is the mailbox name in UTF-8, any case of INBOX meaning INBOX;
    the attribute's case is ignored. A name may appear more than once to
    carry several attributes, and several names may share one.
    """
    canonical = {attribute.lower(): attribute for attribute in SPECIAL_USE_ATTRIBUTES}
    pairs = []
    for item in text.split(","):
        if not item.strip():
            continue
        name, sep, attribute = item.rpartition("=")
        name, attribute = name.strip(), canonical.get(attribute.strip().lower())
        if not sep or not name or attribute is None:
            raise ValueError("expected Mailbox=\\Attribute (one of %s), not %r"
                             % (" ".join(SPECIAL_USE_ATTRIBUTES), item.strip()))
        pairs.append((name, attribute))
    return tuple(pairs)


def _special_use(text):
    """Checked, and kept as text in one spelling, so the generated file reads it back equal."""
    return ", ".join("%s=%s" % pair for pair in special_use_pairs(text))


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
    # UW: logins are refused while this file exists (shutdown(8) creates /etc/nologin).
    "nologin_file": (str, "/etc/nologin"),
    "login_timeout": (_timeout, limits.LOGIN_TIMEOUT),
    "login_autologout": (_timeout, limits.LOGIN_AUTOLOGOUT),
    "pop3_inactivity_timeout": (_timeout, limits.POP3_IDLE_TIMEOUT),
    "imap_inactivity_timeout": (_timeout, limits.IMAP_INACTIVITY_TIMEOUT),
    "imap_idle_timeout": (_timeout, limits.IMAP_IDLE_COMMAND_TIMEOUT),
    "special_use": (_special_use, DEFAULT_SPECIAL_USE),
    # Wait mode only (server.acceptloop): sessions at once, and idle seconds before the exit.
    "max_connections": (_positive_integer, limits.WAIT_MODE_MAX_CONNECTIONS),
    "wait_mode_idle_exit": (_timeout, limits.WAIT_MODE_IDLE_EXIT),
}

# name: (the least value a client may rely on, where that promise is made).
# A smaller configured value is raised to it and a warning is logged, so that
# no configuration can log out a client that follows the RFC.
MINIMUMS = {
    "pop3_inactivity_timeout": (limits.POP3_MIN_IDLE_TIMEOUT, "RFC 1939 section 3"),
    "imap_inactivity_timeout": (limits.IMAP_MIN_IDLE_TIMEOUT, "RFC 3501 section 5.4"),
    "imap_idle_timeout": (limits.IMAP_MIN_IDLE_TIMEOUT, "RFC 2177 section 3"),
}


class Config:
    """Settings as attributes; every name in SETTINGS exists, with its default.

    `warnings` lists what the file asked for but did not get (values raised
    to an RFC minimum); the entry point logs them.
    """

    def __init__(self, values=None, path=None, warnings=()):
        self.path = path
        self.warnings = list(warnings)
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
    return Config(values, path, _raise_to_minimums(values, path))


def _raise_to_minimums(values, path):
    """Raise values below their RFC minimum in place; return a warning for each."""
    warnings = []
    for name, (least, source) in MINIMUMS.items():
        if name in values and values[name] < least:
            warnings.append("%s: %s = %g is below the minimum of %s, %g s; using %g s"
                            % (path, name, values[name], source, least, least))
            values[name] = least
    return warnings


def resolve_path(path=None):
    """The file load(path) reads: path, else $PYIMAPD_CONFIG, else the default."""
    return path or os.environ.get("PYIMAPD_CONFIG") or DEFAULT_PATH


def load(path=None):
    """Read the configuration; a missing default file means all defaults."""
    explicit = path is not None
    path = resolve_path(path)
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


def load_or_error(path=None):
    """load(path), or the ConfigError it raised: each connection reports it to its client."""
    try:
        return load(path)
    except ConfigError as error:
        return error
