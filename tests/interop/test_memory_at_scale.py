"""Peak memory of the real servers (issue 3, point 9), measured as bench/memory.py
measures it: imapd.py and ipop3d.py started as inetd starts them, as the system
user `pyimapd-test`, their peak RSS (VmHWM: mapped mailbox pages and shared
libraries included) and their private memory (RssAnon) sampled from /proc.

- A 100,000-message spool of 1.2 GB (bench/corpus.py, no UW metadata yet): the
  first IMAP session (which writes UW's metadata into every message and
  computes every ENVELOPE), a later one, and a POP3 session that downloads
  everything and marks it all seen at QUIT, each under LIMIT_MB.
- A spool of a few 100 MB messages: POP3 and IMAP sessions that read every
  byte of them (RETR, BODY[], BODYSTRUCTURE, SEARCH BODY, BINARY, COPY), and one
  that APPENDs a 50 MB message, stay under BODY_LIMIT_MB, less than one body.

Memory bounds, not timings: the same code uses the same memory on any machine.
"""

import os
import pwd
import shutil
import sys
import tempfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "bench"))

import corpus  # noqa: E402
import memory  # noqa: E402

MESSAGES = 100000
# Measured at 79 MB (first IMAP session), 66 (later IMAP) and 67 (POP3); the rest
# is headroom. About 12 MB of each figure is shared file pages (the interpreter,
# libc, libcrypto, the mapped spool).
LIMIT_MB = 90
BODY_MB = 100
BODY_LIMIT_MB = 40


def _require_root_and_user():
    if os.geteuid() != 0:
        pytest.skip("runs the servers as the system user pyimapd-test: needs root")
    try:
        pwd.getpwnam("pyimapd-test")
    except KeyError:
        pytest.skip("needs the system user pyimapd-test (tests/setup_system_user.sh)")


def run_sessions(spool, scenarios):
    """The sessions' results by name; their files live where the user can reach
    them (pytest's own directories are root's alone)."""
    workdir = Path(tempfile.mkdtemp(prefix="pyimapd-memory-", dir="/var/tmp"))
    try:
        os.chmod(workdir, 0o755)
        options = memory.parse_arguments([str(spool), "--workdir", str(workdir), "--scenarios",
                                          ",".join(scenarios), "--timeout", "900"])
        return {result["name"]: result for result in memory.run_servers(options)}
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def test_a_100k_message_spool_opens_and_serves_well_under_100_mb(tmp_path):
    _require_root_and_user()
    spool = tmp_path / "corpus.mbox"
    corpus.write_mbox(spool, MESSAGES)
    assert spool.stat().st_size > 800 << 20
    results = run_sessions(spool, ["imap-first", "imap-second", "pop3"])
    spool.unlink()
    for name, result in results.items():
        print("%s: peak RSS %.1f MB, peak RssAnon %.1f MB"
              % (name, result["peak_rss_mb"], result["peak_anon_mb"]))
    assert set(results) == {"imap-first", "imap-second", "pop3"}
    for name, result in results.items():
        assert result["peak_rss_mb"] < LIMIT_MB, name
        # Every command was answered (a session that died early would use little).
        assert [label for label, _, _ in result["marks"]][-1] in ("LOGOUT", "QUIT"), name


def _huge_spool(path, count):
    """`count` messages of BODY_MB each, no metadata: long lines of plain text (with
    mixed line ends from the third on), and every second one a multipart: a base64
    attachment, then a short text part."""
    line = b"All work and no play makes a very long message body. " * 19 + b"\n"
    block = line * ((1 << 20) // len(line))
    attachment = b"QWxsIHdvcmsgYW5kIG5vIHBsYXkgbWFrZXMgYSB2ZXJ5IGxvbmcgYXR0YWNobWVudC4g\n"
    attachment_block = attachment * ((1 << 20) // len(attachment))
    with open(path, "wb") as spool:
        for number in range(1, count + 1):
            spool.write(b"From big@example.org Thu Nov 26 10:00:%02d 2026\n" % number)
            spool.write(b"From: big@example.org\nSubject: large message %d\n"
                        b"Message-ID: <large-%d@example.org>\n" % (number, number))
            if number % 2:
                spool.write(b"\n")
                # From the third on, mixed line ends: a CRLF in every megabyte.
                text = block if number == 1 else block.replace(b"\n", b"\r\n", 1)
                for _ in range(BODY_MB):
                    spool.write(text)
            else:
                spool.write(b"MIME-Version: 1.0\nContent-Type: multipart/mixed; boundary=b\n\n"
                            b"--b\nContent-Type: application/octet-stream\n"
                            b"Content-Transfer-Encoding: base64\n\n")
                for _ in range(BODY_MB):
                    spool.write(attachment_block)
                spool.write(b"--b\nContent-Type: text/plain\n\nSee the attachment.\n--b--\n")
            spool.write(b"\n")


def test_memory_does_not_grow_with_the_size_of_message_bodies(tmp_path):
    _require_root_and_user()
    spool = tmp_path / "huge.mbox"
    _huge_spool(spool, 3)
    # pop3-first: a fresh copy, no index; every message's text is sent (RETR) and
    # QUIT writes a metadata header into each. Then IMAP sessions on the result:
    # envelopes, every message's text, every BODYSTRUCTURE and a body search,
    # every first part decoded (BINARY), a COPY of all into another folder, and an
    # APPEND of a 50 MB message.
    scenarios = ["pop3-first", "imap-second", "imap-bodies", "imap-structure", "imap-binary",
                 "imap-copy", "imap-append"]
    results = run_sessions(spool, scenarios)
    spool.unlink()
    for name, result in results.items():
        print("%s: peak RSS %.1f MB, peak RssAnon %.1f MB"
              % (name, result["peak_rss_mb"], result["peak_anon_mb"]))
        assert result["peak_rss_mb"] < BODY_LIMIT_MB < BODY_MB, name
    assert sorted(results) == sorted(scenarios)
