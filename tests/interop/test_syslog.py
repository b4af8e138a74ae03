"""ipop3d's and imapd's syslog lines, read back from a syslog socket the test owns."""

import os
import re
import shutil
import socket
import subprocess
import sys

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
FIXTURE = "/work/shared/fixtures/compat/uw/INBOX.mbox"
LOG_AUTH, LOG_MAIL = 4 << 3, 2 << 3
PASSWORD = "s3cret-word"

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="needs root to own /dev/log")


@pytest.fixture
def syslog_socket(tmp_path):
    """A datagram socket that receives what the server sends to /dev/log.

    Without a system syslogd the socket is bound at /dev/log itself; with one,
    the server runs in a private mount namespace with our socket bound over it.
    """
    private = os.path.exists("/dev/log")
    path = str(tmp_path / "log.sock") if private else "/dev/log"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(path)
    os.chmod(path, 0o666)
    sock.settimeout(5)
    try:
        yield sock, (path if private else None)
    finally:
        sock.close()
        os.unlink(path)


@pytest.fixture
def account():
    """A virtual user served as pyimapd-test (or nobody) with a copy of the UW fixture INBOX."""
    import pathlib
    import pwd
    import tempfile

    tmp_path = pathlib.Path(tempfile.mkdtemp(prefix="pyimapd-syslog-"))
    os.chmod(tmp_path, 0o755)  # the user must reach its spool and home after dropping root

    try:
        entry = pwd.getpwnam("pyimapd-test")
    except KeyError:
        entry = pwd.getpwnam("nobody")
    spool, home = tmp_path / "spool", tmp_path / "home"
    spool.mkdir(mode=0o1777)
    home.mkdir()
    os.chmod(spool, 0o1777)
    inbox = spool / "alice"
    shutil.copy(FIXTURE, inbox)
    os.chmod(inbox, 0o600)  # the shared fixture is read-only
    for path in (inbox, home):
        os.chown(path, entry.pw_uid, entry.pw_gid)
    (tmp_path / "passwd").write_text("alice:{PLAIN}%s:%d:%d::%s::\n"
                                     % (PASSWORD, entry.pw_uid, entry.pw_gid, home))
    config = tmp_path / "pyimapd.conf"
    config.write_text("mail_location = mbox:~/mail:INBOX=%s/%%u\npasswd_file = %s\n"
                      "cram_md5_file = %s/none\nlogin_failure_delay = 0\n"
                      % (spool, tmp_path / "passwd", tmp_path))
    yield str(config)
    shutil.rmtree(tmp_path)


def run_session(config, lines, bind_log=None, program="ipop3d.py"):
    """Run a server on a socket pair, send lines, return everything it answered."""
    command = [sys.executable, os.path.join(REPO, program), "--config", config]
    if bind_log:
        command = ["unshare", "-m", "sh", "-c", 'mount --bind "$0" /dev/log && exec "$@"',
                   bind_log] + command
    ours, theirs = socket.socketpair()
    with ours:
        process = subprocess.Popen(command, stdin=theirs, stdout=theirs, cwd=REPO)
        theirs.close()
        ours.sendall(b"".join(line + b"\r\n" for line in lines))
        ours.shutdown(socket.SHUT_WR)
        answer = b""
        while True:
            data = ours.recv(65536)
            if not data:
                break
            answer += data
    process.wait(timeout=30)
    return answer


def received(sock):
    """(priority value, message text) of every datagram waiting on the socket."""
    entries = []
    sock.settimeout(1)
    try:
        while True:
            datagram = sock.recv(65536).decode("utf-8", "replace")
            match = re.match(r"<(\d+)>(.*)", datagram, re.S)
            entries.append((int(match.group(1)), match.group(2)))
    except socket.timeout:
        return entries


def test_login_logout_and_failure_lines_follow_uw(syslog_socket, account):
    """A failed login goes to auth as `Login failed`, a login and logout to mail, with ident ipop3d[pid]."""
    sock, bind_log = syslog_socket
    answer = run_session(account, [b"USER alice", b"PASS wrong", b"USER alice",
                                   b"PASS " + PASSWORD.encode(), b"DELE 1", b"QUIT"], bind_log)
    assert answer.count(b"+OK Sayonara") == 1
    entries = received(sock)
    texts = [text for _, text in entries]
    failed = [(p, t) for p, t in entries if "Login failed user=alice auth=alice host=[local]" in t]
    assert failed and failed[0][0] & ~7 == LOG_AUTH
    login = [(p, t) for p, t in entries if "Login user=alice host=[local] nmsgs=12/12" in t]
    assert login and login[0][0] & ~7 == LOG_MAIL
    assert any(re.search(r"ipop3d\[\d+\]: Logout user=alice host=\[local\] nmsgs=11 ndele=1", t)
               for t in texts)
    assert not any(PASSWORD in t or "wrong" in t for t in texts)


def test_hangup_is_logged_without_applying_deletions(syslog_socket, account):
    """A session that ends by disconnecting after DELE logs Hangup and deletes nothing."""
    sock, bind_log = syslog_socket
    inbox_before = open(FIXTURE, "rb").read()
    answer = run_session(account, [b"USER alice", b"PASS " + PASSWORD.encode(), b"DELE 1"],
                         bind_log)
    assert b"+OK Message deleted" in answer
    texts = [text for _, text in received(sock)]
    assert any("Hangup user=alice host=[local]" in t for t in texts)
    spool = os.path.join(os.path.dirname(account), "spool", "alice")
    assert open(spool, "rb").read() == inbox_before


def test_imapd_lines_follow_uw(syslog_socket, account):
    """imapd logs `Login failed` to auth and `Login`/`Logout` to mail with ident imapd[pid], no password."""
    sock, bind_log = syslog_socket
    answer = run_session(account, [b"a1 LOGIN alice wrong", b"a2 LOGIN alice " + PASSWORD.encode(),
                                   b"a3 SELECT INBOX", b"a4 LOGOUT"], bind_log, "imapd.py")
    assert b"a4 OK LOGOUT completed" in answer
    entries = received(sock)
    texts = [text for _, text in entries]
    failed = [(p, t) for p, t in entries
              if re.search(r"imapd\[\d+\]: Login failed user=alice auth=alice host=\[local\]", t)]
    assert failed and failed[0][0] & ~7 == LOG_AUTH
    login = [(p, t) for p, t in entries
             if re.search(r"imapd\[\d+\]: Login user=alice host=\[local\]$", t)]
    assert login and login[0][0] & ~7 == LOG_MAIL
    assert any(re.search(r"imapd\[\d+\]: Logout user=alice host=\[local\]", t) for t in texts)
    assert not any(PASSWORD in t or "wrong" in t for t in texts)


INJECTED_FAULT = """
import sys
sys.path.insert(0, {repo!r})
import imap.commands

def injected_fault(session, command):
    raise RuntimeError("injected fault for the test")

imap.commands.COMMANDS["NOOP"].handler = injected_fault
import imapd
sys.exit(imapd.main(sys.argv[1:]))
"""


def test_imapd_internal_error_logs_a_traceback_and_answers_generically(syslog_socket, account,
                                                                       tmp_path):
    """An unexpected exception in a handler is logged with its traceback; the client gets only BYE."""
    sock, bind_log = syslog_socket
    script = tmp_path / "faulty_imapd.py"
    script.write_text(INJECTED_FAULT.format(repo=REPO))
    answer = run_session(account, [b"a1 LOGIN alice " + PASSWORD.encode(), b"a2 NOOP",
                                   b"a3 LOGOUT"], bind_log, str(script))
    assert answer.endswith(b"* BYE Internal server error, closing connection\r\n")
    assert b"injected" not in answer and b"a3" not in answer
    texts = [text for _, text in received(sock)]
    assert any("internal error: Traceback" in t and "RuntimeError: injected fault" in t
               for t in texts)


LOG_ALERT, LOG_WARNING, LOG_NOTICE = 1, 4, 5


def test_break_in_user_name_is_logged_at_alert_to_auth(syslog_socket, account):
    """A 65-byte user name is logged as UW does: auth.alert `Login SYSTEM BREAK-IN ATTEMPT`, name cut to 64."""
    sock, bind_log = syslog_socket
    name = b"x" * 65
    answer = run_session(account, [b"a1 LOGIN " + name + b" " + PASSWORD.encode()], bind_log,
                         "imapd.py")
    assert answer.endswith(b"* BYE Too many login failures\r\n")
    alerts = [(p, t) for p, t in received(sock) if "Login SYSTEM BREAK-IN ATTEMPT" in t]
    assert len(alerts) == 1 and alerts[0][0] == LOG_AUTH | LOG_ALERT
    assert re.search(r"imapd\[\d+\]: Login SYSTEM BREAK-IN ATTEMPT user=x{64} auth=x{64} "
                     r"host=\[local\]$", alerts[0][1])


def test_nologin_refusal_and_clamped_timeout_are_logged(syslog_socket, account, tmp_path):
    """A greeting refused by the nologin file is logged to mail, and so is a timeout raised to its RFC minimum."""
    sock, bind_log = syslog_socket
    nologin = tmp_path / "nologin"
    nologin.write_text("")
    with open(account, "a") as config:
        config.write("nologin_file = %s\npop3_inactivity_timeout = 60\n" % nologin)
    answer = run_session(account, [], bind_log)
    assert answer == b"-ERR [SYS/TEMP] Service not available, logins are disabled\r\n"
    entries = received(sock)
    refusal = re.compile(r"ipop3d\[\d+\]: Service not available \(%s exists\) host=\[local\]$"
                         % re.escape(str(nologin)))
    assert [p for p, t in entries if refusal.search(t)] == [LOG_MAIL | LOG_NOTICE]
    warnings = [t for p, t in entries if p == LOG_MAIL | LOG_WARNING]
    assert len(warnings) == 1 and "pop3_inactivity_timeout = 60 is below the minimum" in warnings[0]
