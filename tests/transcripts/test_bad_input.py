"""Hostile and broken client input against the real ipop3d: clear -ERR replies, no crash, mail intact."""

import hashlib

import pytest

from driver import PASSWORD, USER
from server import limits

UW_STAT = b"+OK 12 9911"


def sha256(mailroom):
    return hashlib.sha256(mailroom.spool_bytes()).hexdigest()


def status_line(line):
    """line, after checking it is a one-line POP3 status reply with no trace of a crash."""
    assert line.startswith((b"+OK ", b"-ERR ")), "not a POP3 status line: %r" % line
    assert b"Traceback" not in line
    return line


def reply(server, line):
    """Send one command line and return its checked status reply."""
    return status_line(server.command(line))


def greet(server):
    status_line(server.read_line())


def log_in(server):
    greet(server)
    assert reply(server, b"USER " + USER.encode()).startswith(b"+OK ")
    assert reply(server, b"PASS " + PASSWORD.encode()).startswith(b"+OK Mailbox open")


def quit_cleanly(server):
    assert reply(server, b"QUIT") == b"+OK Sayonara"
    server.expect_clean_exit()


@pytest.fixture
def session(uw_inbox, start_server):
    """A server on the UW fixture INBOX; afterwards the mailbox file must be byte-identical."""
    before = sha256(uw_inbox)
    yield start_server()
    assert sha256(uw_inbox) == before


@pytest.mark.parametrize("length", [2000, 100_000])
def test_over_long_line_before_login_is_refused_and_session_goes_on(session, length):
    """A command line longer than UW's 1024 bytes is answered 'Command line too long' and forgotten."""
    greet(session)
    assert reply(session, b"USER " + b"a" * length) == b"-ERR Command line too long"
    assert reply(session, b"PASS " + PASSWORD.encode()) == b"-ERR No USER command given"
    quit_cleanly(session)


@pytest.mark.parametrize("length", [2000, 100_000])
def test_over_long_line_after_login_is_refused_and_session_goes_on(session, length):
    """An over-long DELE is refused whole: nothing is deleted and the next command is served."""
    log_in(session)
    assert reply(session, b"DELE 1 " + b"1" * length) == b"-ERR Command line too long"
    assert reply(session, b"STAT") == UW_STAT
    quit_cleanly(session)


def test_over_long_line_does_not_swallow_the_pipelined_command_after_it(session):
    """The command sent after an over-long line in the same write is still answered."""
    log_in(session)
    session.send_lines([b"NOOP " + b"x" * 100_000, b"STAT"])
    assert status_line(session.read_line()) == b"-ERR Command line too long"
    assert status_line(session.read_line()) == UW_STAT
    quit_cleanly(session)


def test_long_line_within_the_limit_is_served(session):
    """A 1000-byte command line is below UW's limit and is served normally."""
    log_in(session)
    assert reply(session, b"NOOP " + b"x" * 995) == b"+OK No-op to you too!"
    quit_cleanly(session)


@pytest.mark.parametrize("line", [b"NO\0OP", b"\0", b"QUIT\0", b"USER\0alice", b"N\xc3\xb6OP",
                                  b"\xff\xfe", b"AUTH PL\0AIN", b"AUTH \xff"])
def test_nul_and_8bit_commands_before_login_get_err(session, line):
    """NUL or 8-bit bytes in a command before login get a clear -ERR and the session goes on."""
    greet(session)
    assert reply(session, line).startswith(b"-ERR ")
    quit_cleanly(session)


@pytest.mark.parametrize("line", [b"STAT\0", b"RETR 1\0", b"DELE \0" + b"1", b"LIST\0" + b"1",
                                  b"RETR \xd9\xa1", b"DELE \xc2\xb9", b"TOP 1 \xff", b"\xe9"])
def test_nul_and_8bit_commands_after_login_get_err(session, line):
    """NUL or 8-bit bytes in a command after login get a clear -ERR and delete nothing."""
    log_in(session)
    assert reply(session, line).startswith(b"-ERR ")
    assert reply(session, b"STAT") == UW_STAT
    quit_cleanly(session)


@pytest.mark.parametrize("user, password", [(USER.encode(), b"sec\0ret"),
                                            (b"\xe9l\xe8ve", PASSWORD.encode()),
                                            (USER.encode(), b"s\xe9cret")])
def test_nul_and_8bit_credentials_are_a_failed_login(session, user, password):
    """NUL or 8-bit bytes in USER or PASS give the ordinary failed-login reply, no crash."""
    greet(session)
    assert reply(session, b"USER " + user).startswith(b"+OK ")
    assert reply(session, b"PASS " + password) == b"-ERR [AUTH] Bad login"
    quit_cleanly(session)


@pytest.mark.parametrize("user", [b"al\0ice", b"al\x1bice", b"a" * (limits.MAX_USER_NAME + 1)])
def test_break_in_user_name_ends_the_session(session, user):
    """A user name with a control character or over 64 bytes fails and closes the session (UW's rule)."""
    greet(session)
    assert reply(session, b"USER " + user).startswith(b"+OK ")
    assert reply(session, b"PASS " + PASSWORD.encode()) == (
        b"-ERR [AUTH] Bad login, too many failures; closing connection")
    session.expect_clean_exit()


@pytest.mark.parametrize("response", [b"A" * (limits.SASL_MAX_LINE + 10), b"not base64!",
                                      b"AGFs\0aWNl", b"\xff\xfe"])
def test_bad_sasl_response_fails_only_the_exchange(session, response):
    """An over-long, non-base64 or binary SASL response fails AUTH; USER/PASS still works after it."""
    greet(session)
    assert session.command(b"AUTH PLAIN") == b"+ "
    assert reply(session, response) == b"-ERR [AUTH] Bad authentication"
    assert reply(session, b"USER " + USER.encode()).startswith(b"+OK ")
    assert reply(session, b"PASS " + PASSWORD.encode()).startswith(b"+OK Mailbox open")
    quit_cleanly(session)


@pytest.mark.parametrize("line", [
    b"RETR 99999999999999999999", b"RETR -1", b"RETR 0", b"RETR 13", b"RETR +1", b"RETR 1.0",
    b"RETR 0x1", b"RETR 1 2", b"LIST 99999999999999999999", b"UIDL 4294967297",
    b"DELE -1", b"DELE 99999999999", b"TOP 1 -5", b"TOP 1 99999999999", b"TOP 1 1e3",
    b"TOP -1 0", b"TOP 99999999999999999999 1",
])
def test_bad_numbers_get_err_and_change_nothing(session, line):
    """Huge, negative, zero and malformed numbers get -ERR; no message is deleted or sent."""
    log_in(session)
    assert reply(session, line).startswith(b"-ERR ")
    assert reply(session, b"STAT") == UW_STAT
    quit_cleanly(session)


def bad_commands_until_closed(server, bad_line, expected_reply):
    """Send bad_line until the server gives up; check every reply on the way and the close."""
    for _ in range(limits.MAX_BAD_COMMANDS - 1):
        assert reply(server, bad_line) == expected_reply
    assert reply(server, bad_line) == b"-ERR Too many bad commands, closing connection"
    server.expect_clean_exit()


def test_too_many_unknown_commands_before_login_close_the_connection(session):
    """After MAX_BAD_COMMANDS unknown commands the server says so and hangs up."""
    greet(session)
    bad_commands_until_closed(session, b"XYZZY", b"-ERR Unknown AUTHORIZATION state command")


def test_too_many_bad_lines_after_login_close_without_applying_deletes(session):
    """Empty lines count as bad commands; the forced close discards a pending DELE."""
    log_in(session)
    assert reply(session, b"DELE 1") == b"+OK Message deleted"
    bad_commands_until_closed(session, b"", b"-ERR Null command")


def test_over_long_lines_count_as_bad_commands(session):
    """Over-long lines count towards the bad-command limit, so they cannot be sent forever."""
    greet(session)
    bad_commands_until_closed(session, b"x" * 2000, b"-ERR Command line too long")
