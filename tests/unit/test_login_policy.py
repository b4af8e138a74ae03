"""The login policy both servers share (server.login): failure delays, break-in names, nologin, timeouts.

The sessions run in this process on a stand-in transport; time is a fake
clock, so the tests compare delays exactly and never measure the wall clock.
PAM is a fake module that costs PAM's failure delay on that clock.
"""

import os
import pwd
import sys
import types

import pytest

from pop3 import session as ipop3d
from imap.session import CloseSession, ImapSession
from server import limits, login
from server.config import Config, ConfigError, parse
from server.transport import Timeout

NOBODY = pwd.getpwnam("nobody")
# PAM's own failure delay (pam_unix asks for about 2 s), spent on the fake clock.
PAM_FAILURE_SECONDS = 2.0
FAILURE_DELAY = 3.0
VIRTUAL_PASSWORD = "wonderland"


class FakeClock:
    """time.monotonic and time.sleep on a clock that only moves when told to."""

    def __init__(self):
        self.now = 1000.0
        self.sleeps = []

    def monotonic(self):
        return self.now

    def sleep(self, seconds):
        self.sleeps.append(seconds)
        self.now += seconds

    def time(self):
        return self.now


class LocalLink:
    """A transport for a client on this host, before any TLS: every login is allowed."""

    encrypted = False
    sock = None

    def __init__(self):
        self.written = []

    def is_loopback(self):
        return True

    def peer_text(self):
        return "[127.0.0.1]"

    def write(self, data):
        self.written.append(data)


class RecordingLog:
    """Stands in for server.log.Log: keeps (facility, priority, message)."""

    def __init__(self):
        self.lines = []

    def __call__(self, priority, message):
        self.lines.append(("mail", priority, message))

    def auth(self, priority, message):
        self.lines.append(("auth", priority, message))

    def reopen(self):
        pass


@pytest.fixture
def clock(monkeypatch):
    """The fake clock, installed wherever a login is timed."""
    fake = FakeClock()
    fake_time = types.SimpleNamespace(monotonic=fake.monotonic, sleep=fake.sleep, time=fake.time)
    monkeypatch.setattr(login, "time", fake_time)
    import auth.authenticator

    monkeypatch.setattr(auth.authenticator, "time", fake_time)
    return fake


@pytest.fixture
def fake_pam(monkeypatch, clock):
    """A `pam` module that refuses everyone after PAM's failure delay on the fake clock."""
    calls = []

    class Handle:
        reason = "Authentication failure"

        def authenticate(self, user, password, service="login"):
            calls.append(user)
            clock.now += PAM_FAILURE_SECONDS
            return False

    monkeypatch.setitem(sys.modules, "pam", types.SimpleNamespace(pam=Handle))
    return calls


@pytest.fixture
def config(tmp_path):
    """A passwd_file with one virtual user beside PAM, and UW's 3 s failure delay."""
    users = tmp_path / "passwd"
    users.write_text("alice:{PLAIN}%s:5001:5001::/srv/mail/alice::\n" % VIRTUAL_PASSWORD)
    return Config({"passwd_file": str(users), "cram_md5_file": str(tmp_path / "absent"),
                   "login_failure_delay": FAILURE_DELAY,
                   "nologin_file": str(tmp_path / "nologin")})


def literal(text):
    """An IMAP LITERAL+ literal: any bytes at all, control characters included."""
    data = text.encode("utf-8")
    return b"{%d+}\r\n%s" % (len(data), data)


def imap_login(config, user, password):
    """The reply to one IMAP LOGIN, and the log, from a fresh session."""
    log = RecordingLog()
    session = ImapSession(LocalLink(), config, log, "mail.example")
    session.framer.feed(b"a1 LOGIN " + literal(user) + b" " + literal(password) + b"\r\n")
    try:
        session.serve_one(session.next_command())
    except CloseSession:
        pass
    session.flush()
    return b"".join(session.transport.written), log


def pop3_login(config, user, password):
    """The reply to one POP3 USER and PASS, and the log, from a fresh session."""
    log = RecordingLog()
    session = ipop3d.Pop3Session(LocalLink(), config, log, "mail.example")
    session.cmd_user(user.encode())
    try:
        session.cmd_pass(password.encode())
    except ipop3d.CloseSession:
        pass
    session.flush()
    return b"".join(session.transport.written), log


# The three ways to be wrong: a name nobody has (PAM), a system user's wrong
# password (PAM), a passwd_file user's wrong password (no PAM at all).
WRONG_CREDENTIALS = [("ghost-user-pyimapd", "secret"), ("nobody", "wrong"), ("alice", "wrong")]


@pytest.mark.parametrize("attempt", [imap_login, pop3_login], ids=["imap", "pop3"])
def test_unknown_user_and_wrong_password_look_the_same(config, clock, fake_pam, attempt):
    """Unknown user, wrong system password, wrong virtual password: same reply, same total delay, one sleep each."""
    outcomes = []
    for user, password in WRONG_CREDENTIALS:
        clock.sleeps.clear()
        started = clock.now
        reply, _ = attempt(config, user, password)
        outcomes.append((reply, clock.now - started, len(clock.sleeps)))
    replies = {reply for reply, _, _ in outcomes}
    assert len(replies) == 1, outcomes
    assert [(elapsed, sleeps) for _, elapsed, sleeps in outcomes] == [(FAILURE_DELAY, 1)] * 3
    # The cases really differ inside: two went through PAM, which cost time there.
    assert fake_pam == ["ghost-user-pyimapd", "nobody"]


def test_failure_slower_than_the_delay_is_not_delayed_further(config, clock, fake_pam):
    """A check that took longer than login_failure_delay is answered at once (the sleep is for 0 s)."""
    slow = Config(dict(vars(config), login_failure_delay=1.0))
    imap_login(slow, "nobody", "wrong")
    assert clock.sleeps == [0.0]


@pytest.mark.parametrize("attempt, user, reply", [
    (imap_login, "x" * (limits.MAX_USER_NAME + 1), b"* BYE Too many login failures\r\n"),
    (imap_login, "bad\x1bname", b"* BYE Too many login failures\r\n"),
    (pop3_login, "bad\x7fname", b"+OK User name accepted, password please\r\n"
                                b"-ERR [AUTH] Bad login, too many failures; closing connection\r\n"),
    (pop3_login, "nul\x00name", b"+OK User name accepted, password please\r\n"
                                b"-ERR [AUTH] Bad login, too many failures; closing connection\r\n"),
], ids=["imap-65-bytes", "imap-escape", "pop3-delete", "pop3-nul"])
def test_break_in_user_name_is_an_alert_and_ends_the_session(config, clock, fake_pam, attempt,
                                                             user, reply):
    """A 65-byte or control-character name: ALERT `Login SYSTEM BREAK-IN ATTEMPT`, no PAM call, the session closes."""
    answer, log = attempt(config, user, "pw")
    assert answer == reply
    assert fake_pam == []
    alerts = [line for line in log.lines if line[:2] == ("auth", "alert")]
    assert len(alerts) == 1 and alerts[0][2].startswith("Login SYSTEM BREAK-IN ATTEMPT user=")
    assert alerts[0][2].isprintable()
    assert clock.sleeps == [FAILURE_DELAY]


def test_name_of_64_bytes_is_an_ordinary_failure(config, clock, fake_pam):
    """A name exactly at UW's limit is looked up as usual and logged at NOTICE, not ALERT."""
    reply, log = imap_login(config, "y" * limits.MAX_USER_NAME, "pw")
    assert reply == b"a1 NO [AUTHENTICATIONFAILED] Invalid login credentials\r\n"
    assert [line[:2] for line in log.lines] == [("auth", "notice")]


def test_third_failure_logs_excessive_failures_and_ends_the_session(config, clock, fake_pam):
    """The third failure in one session is logged as UW's `Login excessive login failures` and answered BYE."""
    log = RecordingLog()
    session = ImapSession(LocalLink(), config, log, "mail.example")
    with pytest.raises(CloseSession):
        for number in range(1, 4):
            session.serve_one(b"a%d LOGIN alice wrong" % number)
    messages = [message for facility, _, message in log.lines if facility == "auth"]
    assert messages[-1] == "Login excessive login failures user=alice host=[127.0.0.1]"
    assert len([m for m in messages if m.startswith("Login failed")]) == 3


# --- /etc/nologin -------------------------------------------------------------


def test_nologin_file_counts_only_while_it_exists(config, tmp_path):
    """nologin_file is None until the file exists; an empty setting or a dangling link never counts."""
    assert login.nologin_file(config) is None
    (tmp_path / "nologin").write_text("down for maintenance\n")
    assert login.nologin_file(config) == str(tmp_path / "nologin")
    assert login.nologin_file(Config({"nologin_file": ""})) is None
    os.symlink(tmp_path / "missing", tmp_path / "dangling")
    assert login.nologin_file(Config({"nologin_file": str(tmp_path / "dangling")})) is None


@pytest.mark.parametrize("attempt, reply", [
    (imap_login, b"a1 NO [UNAVAILABLE] Logins are disabled, try again later\r\n"),
    (pop3_login, b"+OK User name accepted, password please\r\n"
                 b"-ERR [SYS/TEMP] Logins are disabled, try again later\r\n"),
], ids=["imap", "pop3"])
def test_nologin_refuses_the_right_password_without_checking_it(config, clock, tmp_path, attempt,
                                                                reply):
    """While the nologin file exists even the right password is refused, unchecked and undelayed, and logged."""
    (tmp_path / "nologin").write_text("")
    answer, log = attempt(config, "alice", VIRTUAL_PASSWORD)
    assert answer == reply
    assert clock.sleeps == []
    assert log.lines == [("auth", "notice", "Login disabled user=alice auth=alice host=[127.0.0.1] "
                                            "(%s exists)" % (tmp_path / "nologin"))]


# --- timeouts ---------------------------------------------------------------


def test_login_read_timeout_is_per_command_within_the_autologout(clock):
    """Before login a read waits login_timeout, but never past login_autologout counted from connect."""
    config = Config({"login_timeout": 60, "login_autologout": 180})
    started = clock.now
    assert login.login_read_timeout(config, started) == 60
    clock.now += 150
    assert login.login_read_timeout(config, started) == 30
    clock.now += 30
    with pytest.raises(Timeout):
        login.login_read_timeout(config, started)


@pytest.mark.parametrize("name, least", [
    ("pop3_inactivity_timeout", limits.POP3_MIN_IDLE_TIMEOUT),
    ("imap_inactivity_timeout", limits.IMAP_MIN_IDLE_TIMEOUT),
    ("imap_idle_timeout", limits.IMAP_MIN_IDLE_TIMEOUT),
])
def test_timeout_below_the_rfc_minimum_is_raised_with_a_warning(name, least):
    """A configured after-login timeout below its RFC minimum becomes the minimum, and a warning says so."""
    config = parse("%s = 60\n" % name, "test.conf")
    assert getattr(config, name) == least
    assert len(config.warnings) == 1
    assert config.warnings[0].startswith("test.conf: %s = 60 is below the minimum" % name)


def test_timeouts_at_or_above_their_minimum_are_kept_silently():
    """Values the RFCs allow, and pre-login timeouts of any positive size, are used as given."""
    config = parse("pop3_inactivity_timeout = 900\nimap_inactivity_timeout = 1800\n"
                   "imap_idle_timeout = 3600\nlogin_timeout = 1\nlogin_autologout = 2.5\n")
    assert (config.pop3_inactivity_timeout, config.imap_inactivity_timeout,
            config.imap_idle_timeout, config.login_timeout, config.login_autologout) == (
        900, 1800, 3600, 1, 2.5)
    assert config.warnings == []


@pytest.mark.parametrize("line", ["login_timeout = 0", "login_autologout = -5",
                                  "imap_idle_timeout = soon"])
def test_zero_negative_or_non_numeric_timeouts_are_configuration_errors(line):
    """A timeout must be a positive number of seconds; anything else stops the server with a clear error."""
    with pytest.raises(ConfigError):
        parse(line + "\n")


def test_default_timeouts_are_uws():
    """Without a configuration the servers keep UW's timers: 180 s before login, 10 and 30 min after."""
    config = Config()
    assert (config.login_timeout, config.login_autologout, config.pop3_inactivity_timeout,
            config.imap_inactivity_timeout, config.imap_idle_timeout) == (180, 180, 600, 1800, 1800)
