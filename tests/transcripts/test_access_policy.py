"""The real ipop3d and imapd: mail-only users' password schemes, /etc/nologin and the timeouts.

Timeouts are set to a second so that they fire while the test waits for the
server's reply; nothing here measures how long anything took. After-login
timeouts have RFC minimums of 10 and 30 minutes, so those tests run the
servers through lowered_minimums.py, which lowers only the floors.
"""

import time
from pathlib import Path

import pytest

from driver import IMAP_SERVER, PASSWORD, SERVER, USER, ServerProcess, cram_md5_answer, md5_hex

LOWERED_MINIMUMS = Path(__file__).resolve().parent / "lowered_minimums.py"
# How often a busy client speaks while it waits for the login autologout; pacing, not a measurement.
BUSY_CLIENT_PAUSE = 0.2
BUSY_CLIENT_GUARD = 150


@pytest.fixture
def servers(uw_inbox):
    """start(program, settings, lowered=False) -> ServerProcess on the UW INBOX; all closed afterwards."""
    started = []

    def start(program, settings=None, lowered=False):
        config = uw_inbox.write_config(settings)
        if lowered:
            name = "ipop3d" if program == SERVER else "imapd"
            server = ServerProcess(config, LOWERED_MINIMUMS, arguments=(name,))
        else:
            server = ServerProcess(config, program)
        started.append(server)
        return server

    yield start
    for server in started:
        server.close()


def nologin_path(mailroom):
    return mailroom.root / "nologin"


def pop3_log_in(server):
    assert server.read_line().startswith(b"+OK POP3 ")
    assert server.command(b"USER " + USER.encode()).startswith(b"+OK ")
    assert server.command(b"PASS " + PASSWORD.encode()).startswith(b"+OK Mailbox open")


def imap_command(server, line):
    """Send a tagged command; return every reply line up to and including the tagged one."""
    tag = line.split(b" ", 1)[0]
    server.send_lines([line])
    lines = [server.read_line()]
    while not lines[-1].startswith(tag + b" "):
        lines.append(server.read_line())
    return lines


def imap_log_in(server):
    assert server.read_line().startswith(b"* OK [CAPABILITY ")
    assert imap_command(server, b"a1 LOGIN %s %s" % (USER.encode(), PASSWORD.encode()))[-1].startswith(
        b"a1 OK ")


# --- mail-only users with hashed passwords -------------------------------------

# `doveadm pw -p secret -s SCHEME` (secret is driver.PASSWORD).
HASHED_PASSWORDS = {
    "CRAM-MD5": "cd3ba7deaad6e5ca23448ba42e379747a9e0f7f1fbc00c8a81bbaac395731b56",
    "SHA512-CRYPT": "$6$rBVW9Cun6evTEShs$Q2tH4IrdrehrOWtk2LtQ9b/ntDAIyQRgjOu998hMZKz.Nc4jWkKcLzRDb2"
                    "N0UdtnbPiKAWufdY8NIlLTbegk50",
}


def pop3_attempt(server, mechanism):
    """Log in by USER/PASS, APOP or AUTH CRAM-MD5 with the right secret; the server's last reply."""
    greeting = server.read_line().decode()
    if mechanism == "apop":
        stamp = greeting[greeting.rindex("<"):]
        return server.command(b"APOP %s %s" % (USER.encode(), md5_hex(stamp + PASSWORD).encode()))
    if mechanism == "cram-md5":
        challenge = server.command(b"AUTH CRAM-MD5")[2:].decode()
        return server.command(cram_md5_answer(USER, PASSWORD, challenge).encode())
    server.command(b"USER " + USER.encode())
    return server.command(b"PASS " + PASSWORD.encode())


@pytest.mark.parametrize("scheme, mechanism, accepted", [
    ("CRAM-MD5", "user", True), ("CRAM-MD5", "cram-md5", True), ("CRAM-MD5", "apop", False),
    ("SHA512-CRYPT", "user", True), ("SHA512-CRYPT", "cram-md5", False),
    ("SHA512-CRYPT", "apop", False),
])
def test_hashed_user_logs_in_by_the_mechanisms_its_scheme_allows(servers, uw_inbox, scheme,
                                                                 mechanism, accepted):
    """A passwd_file user stored as Dovecot hashes it logs in where the scheme can check the login, else fails."""
    users = uw_inbox.root / "passwd"
    users.write_text("%s:{%s}%s:%d:%d::%s::\n" % (USER, scheme, HASHED_PASSWORDS[scheme],
                                                  uw_inbox.uid, uw_inbox.gid, uw_inbox.home))
    server = servers(SERVER)
    reply = pop3_attempt(server, mechanism)
    if accepted:
        assert reply == b"+OK Mailbox open, 12 messages"
    else:
        assert reply in (b"-ERR [AUTH] Bad APOP", b"-ERR [AUTH] Bad authentication")
    assert server.command(b"QUIT") == b"+OK Sayonara"
    server.expect_clean_exit()


# --- /etc/nologin -------------------------------------------------------------


def test_pop3_greets_with_err_while_nologin_exists(servers, uw_inbox):
    """While the nologin file exists ipop3d answers `-ERR [SYS/TEMP]` instead of a greeting and closes."""
    nologin_path(uw_inbox).write_text("System going down\n")
    server = servers(SERVER, {"nologin_file": str(nologin_path(uw_inbox))})
    assert server.read_line() == b"-ERR [SYS/TEMP] Service not available, logins are disabled"
    server.expect_clean_exit()


def test_imap_greets_with_uws_bye_while_nologin_exists(servers, uw_inbox):
    """imapd answers as UW imapd does: `* BYE Service not available <host> IMAP4rev1 ...`, then closes."""
    nologin_path(uw_inbox).write_text("")
    server = servers(IMAP_SERVER, {"nologin_file": str(nologin_path(uw_inbox))})
    line = server.read_line()
    assert line.startswith(b"* BYE Service not available ") and b" IMAP4rev1 pyimapd " in line
    server.expect_clean_exit()


def test_nologin_appearing_mid_session_refuses_logins_until_removed(servers, uw_inbox):
    """A nologin file created after the greeting refuses even the right password; once removed, login works."""
    server = servers(IMAP_SERVER, {"nologin_file": str(nologin_path(uw_inbox))})
    assert server.read_line().startswith(b"* OK ")
    nologin_path(uw_inbox).write_text("")
    assert imap_command(server, b"a1 LOGIN %s %s" % (USER.encode(), PASSWORD.encode())) == [
        b"a1 NO [UNAVAILABLE] Logins are disabled, try again later"]
    nologin_path(uw_inbox).unlink()
    assert imap_command(server, b"a2 LOGIN %s %s" % (USER.encode(), PASSWORD.encode()))[-1].startswith(
        b"a2 OK ")
    assert imap_command(server, b"a3 LOGOUT")[-1] == b"a3 OK LOGOUT completed"
    server.expect_clean_exit()


# --- before login -----------------------------------------------------------------


@pytest.mark.parametrize("program, greeting, goodbye", [
    (SERVER, b"+OK POP3 ", b"-ERR Autologout"),
    (IMAP_SERVER, b"* OK ", b"* BYE Autologout"),
], ids=["pop3", "imap"])
def test_silent_client_is_logged_out_after_login_timeout(servers, program, greeting, goodbye):
    """A client that says nothing after the greeting gets UW's autologout reply once login_timeout passes."""
    server = servers(program, {"login_timeout": "1"})
    assert server.read_line().startswith(greeting)
    assert server.read_line() == goodbye
    server.expect_clean_exit()


@pytest.mark.parametrize("program, command, goodbye", [
    (SERVER, b"CAPA", b"-ERR Autologout"),
    (IMAP_SERVER, b"c CAPABILITY", b"* BYE Autologout"),
], ids=["pop3", "imap"])
def test_busy_client_is_logged_out_when_the_login_phase_ends(servers, program, command, goodbye):
    """Commands before login do not extend it: login_autologout after connect the session ends."""
    server = servers(program, {"login_autologout": "1"})
    server.read_line()
    for _ in range(BUSY_CLIENT_GUARD):
        try:
            server.send_lines([command])
        except (BrokenPipeError, ConnectionResetError):
            pass  # the goodbye and close came while we paused; the goodbye is still to read
        line = server.read_line()
        while line != goodbye and not line.startswith((b"+OK Capability", b"c OK")):
            line = server.read_line()
        if line == goodbye:
            break
        if program == SERVER:
            server.read_multiline()
        time.sleep(BUSY_CLIENT_PAUSE)
    else:
        raise AssertionError("no autologout after %d commands" % BUSY_CLIENT_GUARD)
    server.expect_clean_exit()


# --- after login (RFC minimums lowered by lowered_minimums.py) ---------------------


def test_pop3_timeout_after_login_applies_no_deletions(servers, uw_inbox):
    """A POP3 session that times out in TRANSACTION says so and leaves every DELE and RETR unapplied (UW)."""
    before = uw_inbox.spool_bytes()
    server = servers(SERVER, {"pop3_inactivity_timeout": "1"}, lowered=True)
    pop3_log_in(server)
    assert server.command(b"RETR 1").startswith(b"+OK ")
    server.read_multiline()
    assert server.command(b"DELE 1") == b"+OK Message deleted"
    assert server.command(b"DELE 2") == b"+OK Message deleted"
    assert server.read_line() == b"-ERR Autologout; idle for too long"
    server.expect_clean_exit()
    assert uw_inbox.spool_bytes() == before


def test_imap_inactivity_after_login_ends_in_autologout(servers):
    """An IMAP session silent for imap_inactivity_timeout after login gets `* BYE Autologout; idle for too long`."""
    server = servers(IMAP_SERVER, {"imap_inactivity_timeout": "1"}, lowered=True)
    imap_log_in(server)
    assert server.read_line() == b"* BYE Autologout; idle for too long"
    server.expect_clean_exit()


def test_imap_idle_ends_in_autologout_after_imap_idle_timeout(servers):
    """An IDLE longer than imap_idle_timeout ends the session with BYE, even though the link is alive."""
    server = servers(IMAP_SERVER, {"imap_idle_timeout": "1"}, lowered=True)
    imap_log_in(server)
    assert imap_command(server, b"a2 SELECT INBOX")[-1].startswith(b"a2 OK ")
    server.send_lines([b"a3 IDLE"])
    assert server.read_line() == b"+ idling"
    line = server.read_line()
    while line != b"* BYE Autologout; idle for too long":
        assert line.startswith(b"* "), line
        line = server.read_line()
    server.expect_clean_exit()
