"""Where a user's mail lives: Dovecot's `mail_location` syntax, UW's default layout."""

import os
from collections import namedtuple


class Location(namedtuple("Location", "driver root inbox index_dir layout",
                          defaults=("maildir++",))):
    """A parsed mail_location for one user: driver, folder root, INBOX and index paths.

    `layout` is the Maildir folder layout (Dovecot's LAYOUT=): "maildir++"
    (.Sent, .a.b) or "fs" (Sent, a/b). A namedtuple, not a dataclass:
    dataclasses imports inspect, 20 ms at every login.
    """

    __slots__ = ()


def expand(template, principal):
    """Expand %u, %h, %% and a leading ~ for one user, as Dovecot does."""
    out, i = [], 0
    while i < len(template):
        char = template[i]
        if char == "%" and i + 1 < len(template):
            code = template[i + 1]
            out.append({"u": principal.name, "h": principal.home, "%": "%"}.get(code, "%" + code))
            i += 2
            continue
        out.append(char)
        i += 1
    text = "".join(out)
    if text == "~" or text.startswith("~/"):
        text = principal.home + text[1:]
    return text


def parse_location(spec, principal, index_dir="~/.pyimapd"):
    """Parse `driver:root[:KEY=value...]` (e.g. `mbox:~:INBOX=/var/spool/mail/%u`).

    For `maildir:~/Maildir` INBOX is the root Maildir itself, as in Dovecot;
    INBOX=, INDEX= and LAYOUT=fs|maildir++ are honoured, other keys ignored.
    """
    driver, _, rest = spec.partition(":")
    driver = driver.strip().lower()
    parts = rest.split(":") if rest else []
    default_root = os.path.join(principal.home, "Maildir") if driver == "maildir" else principal.home
    root = expand(parts[0], principal) if parts and parts[0] else default_root
    options = {}
    for part in parts[1:]:
        key, _, value = part.partition("=")
        options[key.upper()] = expand(value, principal)
    inbox = options.get("INBOX") or (root if driver == "maildir" else os.path.join(root, "inbox"))
    index = options.get("INDEX") or expand(index_dir, principal)
    if index.upper() == "MEMORY":  # Dovecot's "no index files": ours stay in the default place
        index = expand(index_dir, principal)
    layout = options.get("LAYOUT", "maildir++").lower()
    return Location(driver, root, inbox, index, layout)
