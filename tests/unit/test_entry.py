"""The entry points as inetd starts them, with fd 0, 1 and 2 all on the connection."""

import socket
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
HANG_GUARD_SECONDS = 30


def run_on_connection(program, *arguments):
    """Start a server with stdin, stdout and stderr on one socket; return all the client got."""
    ours, theirs = socket.socketpair()
    process = subprocess.Popen([sys.executable, str(REPO / program), *arguments],
                               stdin=theirs, stdout=theirs, stderr=theirs, cwd=REPO)
    theirs.close()
    ours.settimeout(HANG_GUARD_SECONDS)
    received = b""
    with ours:
        while True:
            data = ours.recv(65536)
            if not data:
                break
            received += data
    process.wait(timeout=HANG_GUARD_SECONDS)
    return received


@pytest.mark.parametrize("program", ["imapd.py", "ipop3d.py"])
def test_usage_error_text_never_reaches_the_client(program):
    """A bad command-line option (a broken inetd.conf line) sends the client nothing at all."""
    assert run_on_connection(program, "--bogus") == b""


@pytest.mark.parametrize("program, reply", [
    ("imapd.py", b"* BYE Server configuration error\r\n"),
    ("ipop3d.py", b"-ERR [SYS/PERM] Server configuration error\r\n"),
])
def test_configuration_error_gives_only_the_protocol_reply(tmp_path, program, reply):
    """A broken configuration file gives the client one protocol line, no Python text."""
    config = tmp_path / "broken.conf"
    config.write_text("no_such_setting = 1\n")
    assert run_on_connection(program, "--config", str(config)) == reply
