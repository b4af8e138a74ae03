"""The real imapd's URLAUTH keys (RFC 4467): one 0600 file per user in the index directory,
owned by the user, never shown to the client, and replaced whole by RESETKEY."""

import os
import socket
import stat

from driver import IMAP_SERVER, ServerProcess


def run(uw_inbox, commands):
    """Log in as alice, send commands, log out: every line the server sent."""
    server = ServerProcess(uw_inbox.write_config(), IMAP_SERVER)
    lines = [server.read_line()]
    try:
        for command in [b"a LOGIN alice secret"] + commands + [b"z LOGOUT"]:
            server.send_lines([command])
            tag = command.split(b" ")[0]
            while True:
                lines.append(server.read_line())
                if lines[-1].startswith(tag + b" "):
                    break
        server.expect_clean_exit()
    finally:
        server.close()
    return lines


def rump(uid):
    return b"imap://alice@%s/INBOX/;UID=%d;URLAUTH=anonymous" % (socket.gethostname().encode(), uid)


def test_key_file_is_private_to_the_user(uw_inbox):
    """GENURLAUTH creates urlauth-keys with mode 0600 under a 0700 index directory, owned by
    the served user; neither the key nor the file name reaches the client."""
    lines = run(uw_inbox, [b"g GENURLAUTH " + rump(1) + b" INTERNAL"])
    assert any(line.startswith(b"* GENURLAUTH " + rump(1) + b":INTERNAL:") for line in lines)
    index_dir = uw_inbox.home / ".pyimapd"
    key_file = index_dir / "urlauth-keys"
    info = key_file.stat()
    assert stat.S_IMODE(info.st_mode) == 0o600
    assert (info.st_uid, info.st_gid) == (uw_inbox.uid, uw_inbox.gid)
    assert stat.S_IMODE(index_dir.stat().st_mode) & 0o077 == 0
    name_hex, key_hex = key_file.read_text().split()
    assert bytes.fromhex(name_hex) == b"INBOX" and len(key_hex) == 64
    transcript = b"\n".join(lines)
    assert key_hex.encode() not in transcript and b"urlauth-keys" not in transcript
    assert not [name for name in os.listdir(index_dir) if name.endswith(".tmp")]


def test_resetkey_replaces_the_key_and_resetkey_alone_removes_all(uw_inbox):
    """RESETKEY INBOX writes a different key; RESETKEY without arguments leaves no key."""
    run(uw_inbox, [b"g GENURLAUTH " + rump(1) + b" INTERNAL"])
    key_file = uw_inbox.home / ".pyimapd" / "urlauth-keys"
    first = key_file.read_text()
    run(uw_inbox, [b"r RESETKEY INBOX"])
    second = key_file.read_text()
    assert second.split()[0] == first.split()[0] and second.split()[1] != first.split()[1]
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    run(uw_inbox, [b"r RESETKEY"])
    assert key_file.read_text() == ""
