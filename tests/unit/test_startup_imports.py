"""Start-up budget (ARCHITECTURE "Start-up is part of every connection"): greeting + QUIT stays light.

ipop3d runs under `python -X importtime`, started as inetd starts it (a socket
pair on fd 0/1); the import log on stderr must not show any heavy module.
"""

import socket
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
# Loaded only by the command that needs it: TLS, MIME, PAM, digests, the mailbox engine.
HEAVY_MODULES = ("ssl", "_ssl", "email", "asyncio", "pam", "ctypes", "_ctypes", "hashlib",
                 "_hashlib", "hmac", "mmap", "json", "configparser", "auth.authenticator",
                 "mailstore.mbox", "mailstore.mboxformat", "imap.mime", "imap.search", "imap.view",
                 # COMPRESS (RFC 4978) loads zlib only when a client sends it.
                 "zlib", "server.compression", "imap.parser_append", "imap.parser_url",
                 "imap.urls", "imap.urlauth", "imap.storable",
                 # Lighter, but several milliseconds together (enum, selectors, re) on every
                 # connection: the C modules _socket and _signal do for the greeting.
                 "socket", "signal", "selectors", "base64")
HANG_GUARD_SECONDS = 30


def import_log(stderr):
    """[(nesting depth, module name)] from -X importtime output, in the order printed."""
    entries = []
    for line in stderr.splitlines():
        if not line.startswith("import time:") or line.endswith("imported package"):
            continue
        name_field = line.rsplit("|", 1)[1][1:]
        name = name_field.lstrip(" ")
        entries.append(((len(name_field) - len(name)) // 2, name))
    return entries


def import_chain(entries, index):
    """'module <- importer <- ...' for entries[index]: importtime prints parents after children."""
    depth, name = entries[index]
    chain = [name]
    for later_depth, later_name in entries[index + 1:]:
        if later_depth < depth:
            chain.append(later_name)
            depth = later_depth
    return " <- ".join(chain)


def is_heavy(name):
    return any(name == heavy or name.startswith(heavy + ".") for heavy in HEAVY_MODULES)


def greet_and_quit_under_importtime(config, program="ipop3d.py", goodbye=b"QUIT\r\n"):
    """Run a server under -X importtime for greeting + goodbye; return (its replies, its stderr)."""
    ours, theirs = socket.socketpair()
    command = [sys.executable, "-X", "importtime", str(REPO / program), "--config", str(config)]
    process = subprocess.Popen(command, stdin=theirs, stdout=theirs, stderr=subprocess.PIPE,
                               cwd=REPO)
    theirs.close()
    with ours:
        ours.settimeout(HANG_GUARD_SECONDS)
        ours.sendall(goodbye)
        replies = b""
        while True:
            data = ours.recv(65536)
            if not data:
                break
            replies += data
    _, stderr = process.communicate(timeout=HANG_GUARD_SECONDS)
    return replies, stderr.decode("utf-8", "replace")


def write_config(tmp_path, with_passwd_file):
    lines = ["cram_md5_file = %s" % (tmp_path / "no-cram-md5.pwd")]
    if with_passwd_file:
        # Present secrets switch the greeting to the APOP form, which asks the auth package.
        (tmp_path / "passwd").write_text("alice:{PLAIN}secret:1001:1001::/nonexistent::\n")
        lines.append("passwd_file = %s" % (tmp_path / "passwd"))
    config = tmp_path / "pyimapd.conf"
    config.write_text("\n".join(lines) + "\n")
    return config


def test_import_chain_names_the_importer():
    """import_chain walks importtime's post-order output up to the top-level import."""
    stderr = "\n".join([
        "import time: self [us] | cumulative | imported package",
        "import time:        1 |          1 |     _ssl",
        "import time:        1 |          2 |   ssl",
        "import time:        1 |          3 | server.tls",
        "import time:        1 |          1 | json",
    ])
    entries = import_log(stderr)
    assert entries == [(2, "_ssl"), (1, "ssl"), (0, "server.tls"), (0, "json")]
    assert import_chain(entries, 0) == "_ssl <- ssl <- server.tls"


@pytest.mark.parametrize("with_passwd_file", [True, False], ids=["apop-greeting", "plain-greeting"])
def test_greeting_and_quit_load_no_heavy_module(tmp_path, with_passwd_file):
    """Greeting and QUIT import none of the heavy modules; a failure names who imported one."""
    replies, stderr = greet_and_quit_under_importtime(write_config(tmp_path, with_passwd_file))
    assert replies.startswith(b"+OK POP3 ") and replies.endswith(b"\r\n+OK Sayonara\r\n"), replies
    entries = import_log(stderr)
    # The log is really parsed: the transport, needed for the greeting, shows in it.
    assert "server.transport" in [name for _, name in entries]
    heavy = [import_chain(entries, i) for i, (_, name) in enumerate(entries) if is_heavy(name)]
    assert heavy == [], "heavy imports before the greeting was done:\n" + "\n".join(heavy)


@pytest.mark.parametrize("with_passwd_file", [True, False], ids=["cram-md5", "plain"])
def test_imap_greeting_and_logout_load_no_heavy_module(tmp_path, with_passwd_file):
    """imapd's greeting and LOGOUT parse one command and import nothing heavy, no mailstore."""
    replies, stderr = greet_and_quit_under_importtime(
        write_config(tmp_path, with_passwd_file), "imapd.py", b"a LOGOUT\r\n")
    assert replies.startswith(b"* OK [CAPABILITY IMAP4rev1 ") and replies.endswith(
        b"\r\na OK LOGOUT completed\r\n"), replies
    entries = import_log(stderr)
    assert (0, "imap.session") in entries
    heavy = [import_chain(entries, i) for i, (_, name) in enumerate(entries)
             if is_heavy(name) and name != "imap.parser"]
    assert heavy == [], "heavy imports before the greeting was done:\n" + "\n".join(heavy)
