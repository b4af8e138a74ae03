"""Issue 6's attack-surface promises, checked through the real servers run as inetd runs them.

Each server runs behind server/listener.py (or on a socket pair, under
strace) with the real system user `pyimapd-test`, so that what is refused is
refused by the server that drops root, not by a test double: the spool file
behind a symbolic link or owned by someone else, mailbox names that would
leave the user's mail root, any look at the user's files before login, and a
process that still holds root after login.
"""

import imaplib
import os
import poplib
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest

import mailgen
from clienttools import GUARD_SECONDS
from conftest import IMAPD, IPOP3D, REPO_ROOT


def tree(path):
    """{relative path: bytes or 'dir'} of everything under path, to prove it unchanged."""
    found = {}
    for entry in sorted(Path(path).rglob("*")):
        found[str(entry.relative_to(path))] = "dir" if entry.is_dir() else entry.read_bytes()
    return found


def user_owned(path, account, mode):
    os.chown(path, account.pw_uid, account.pw_gid)
    path.chmod(mode)


@pytest.fixture
def outside(mail_setup):
    """A directory outside the user's mail root, owned by the user, holding a valid mbox `box`."""
    directory = mail_setup.root / "outside"
    directory.mkdir()
    user_owned(directory, mail_setup.account, 0o700)
    box = directory / "box"
    mailgen.make_mbox(box, 2, 7)
    user_owned(box, mail_setup.account, 0o600)
    return directory


def pop3_login(listener, setup):
    """USER/PASS on a new connection: the reply to PASS (or the error text)."""
    pop = poplib.POP3(listener.host, listener.port, timeout=GUARD_SECONDS)
    pop.user(setup.user)
    try:
        return pop.pass_(setup.password)
    except poplib.error_proto as error:
        return error.args[0]
    finally:
        pop.close()


def imap_select_inbox(listener, setup):
    """LOGIN then SELECT INBOX: (status, text) of the SELECT."""
    client = imaplib.IMAP4(listener.host, listener.port, timeout=GUARD_SECONDS)
    assert client.login(setup.user, setup.password)[0] == "OK"
    status, data = client.select("INBOX")
    client.logout()
    return status, data


# -- the spool file -------------------------------------------------------------------


def test_symlinked_spool_is_refused_by_both_servers(mail_setup, outside, start_pop3, start_imap):
    """A spool path that is a symbolic link (to an mbox the user owns) is not opened: POP3 -ERR, SELECT NO."""
    mail_setup.spool.unlink()
    mail_setup.spool.symlink_to(outside / "box")
    before = tree(outside)
    reply = pop3_login(start_pop3(mail_setup.config_path), mail_setup)
    assert reply.startswith(b"-ERR"), reply
    status, _ = imap_select_inbox(start_imap(mail_setup.config_path), mail_setup)
    assert status == "NO"
    assert tree(outside) == before


@pytest.mark.parametrize("owner", ["root", "nobody"])
def test_spool_owned_by_someone_else_is_refused_by_both_servers(mail_setup, start_pop3, start_imap, owner):
    """A spool the user could write (mode 0666) but does not own is refused, and left as it was."""
    import pwd

    os.chown(mail_setup.spool, pwd.getpwnam(owner).pw_uid, 0)
    mail_setup.spool.chmod(0o666)
    before = mail_setup.spool.read_bytes()
    reply = pop3_login(start_pop3(mail_setup.config_path), mail_setup)
    assert reply.startswith(b"-ERR"), reply
    status, _ = imap_select_inbox(start_imap(mail_setup.config_path), mail_setup)
    assert status == "NO"
    assert mail_setup.spool.read_bytes() == before


# -- mailbox names ------------------------------------------------------------------


def refused(call, *args):
    """True when an imaplib command is answered NO or BAD."""
    try:
        status, _ = call(*args)
    except imaplib.IMAP4.error:
        return True
    return status != "OK"


def test_mailbox_names_cannot_leave_the_mail_root(mail_setup, outside, start_imap):
    """`..`, absolute names, `~user` and symlinks out of the root are refused by every mailbox command."""
    mail_root = mail_setup.home / "mail"
    mail_root.mkdir()
    user_owned(mail_root, mail_setup.account, 0o700)
    (mail_root / "dirlink").symlink_to(outside)
    (mail_root / "boxlink").symlink_to(outside / "box")
    absolute = mail_setup.root / "absolute"
    names = ["../outside/box", "../outside/new", str(outside / "box"), str(absolute),
             "~root/escape", "~%s/../outside/box" % mail_setup.user, "dirlink/box", "dirlink/new",
             "boxlink"]
    before = tree(outside)
    client = imaplib.IMAP4("127.0.0.1", start_imap(mail_setup.config_path).port, timeout=GUARD_SECONDS)
    assert client.login(mail_setup.user, mail_setup.password)[0] == "OK"
    assert client.create("inside")[0] == "OK"
    accepted = []
    for name in names:
        quoted = '"%s"' % name
        commands = [("SELECT", client.select, quoted), ("EXAMINE", client.select, quoted, True),
                    ("CREATE", client.create, quoted), ("DELETE", client.delete, quoted),
                    ("STATUS", client.status, quoted, "(MESSAGES)"),
                    ("APPEND", client.append, quoted, None, None, b"Subject: x\r\n\r\nx\r\n"),
                    ("RENAME from", client.rename, quoted, "taken"),
                    ("RENAME to", client.rename, "inside", quoted)]
        accepted += ["%s %s" % (what, name) for what, call, *args in commands if not refused(call, *args)]
    listed = [client.list(reference, pattern)[1] for reference, pattern in
              (("..", "*"), ('""', "../*"), ('""', "/*"), ('""', "~root/*"), ('""', "dirlink/*"))]
    client.logout()
    assert accepted == []
    assert all(entries in ([None], []) for entries in listed), listed
    assert tree(outside) == before and not absolute.exists()


# -- who the server is -----------------------------------------------------------------


def server_processes(script, config_path):
    """Pids of the server processes (not their listener) started with this script and config."""
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            argv = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if argv[1:4] == [str(script).encode(), b"--config", str(config_path).encode()]:
            pids.append(int(entry.name))
    return pids


def ids(pid):
    """(real, effective, saved, filesystem uids), the same gids and the supplementary groups of pid."""
    status = dict(line.split(":\t", 1) for line in
                  Path("/proc/%d/status" % pid).read_text().splitlines() if ":\t" in line)
    return status["Uid"].split(), status["Gid"].split(), status["Groups"].split()


def test_ipop3d_holds_only_the_users_ids_after_login(mail_setup, start_pop3, system_account):
    """Before login ipop3d is root; after USER/PASS its four uids and gids are the user's, root's groups gone."""
    import grp

    listener = start_pop3(mail_setup.config_path)
    pop = poplib.POP3(listener.host, listener.port, timeout=GUARD_SECONDS)
    [pid] = server_processes(IPOP3D, mail_setup.config_path)
    assert ids(pid)[0] == ["0"] * 4
    pop.user(mail_setup.user)
    assert pop.pass_(mail_setup.password).startswith(b"+OK")
    uids, gids, groups = ids(pid)
    assert uids == [str(system_account.pw_uid)] * 4
    assert gids == [str(system_account.pw_gid)] * 4
    member_of = {g.gr_gid for g in grp.getgrall() if mail_setup.user in g.gr_mem} | {system_account.pw_gid}
    assert {int(gid) for gid in groups} <= member_of
    pop.quit()


# -- before login ----------------------------------------------------------------------


def traced_session(script, config_path, lines, trace_path):
    """Run a server under strace on a socket pair, send lines, wait for it; the file calls it made."""
    command = ["strace", "-f", "-qq", "-e", "trace=%file,%desc", "-o", str(trace_path),
               sys.executable, str(script), "--config", str(config_path)]
    ours, theirs = socket.socketpair()
    with ours:
        with theirs:
            process = subprocess.Popen(command, stdin=theirs, stdout=theirs, cwd=REPO_ROOT)
        ours.settimeout(GUARD_SECONDS)
        ours.sendall(b"".join(line + b"\r\n" for line in lines))
        answer = b""
        while True:
            data = ours.recv(65536)
            if not data:
                break
            answer += data
    process.wait(timeout=GUARD_SECONDS)
    return answer, trace_path.read_text(errors="replace")


# program: (script, a session that fails to log in, how it ends, lines that log in and open INBOX)
PRE_LOGIN = {
    "ipop3d": (IPOP3D, [b"CAPA", b"USER pyimapd-test", b"PASS Wrong-pass-1", b"QUIT"], b"+OK Sayonara",
               [b"USER pyimapd-test", b"PASS Test-pass-1", b"QUIT"]),
    "imapd": (IMAPD, [b"a CAPABILITY", b"b LOGIN pyimapd-test Wrong-pass-1", b"c LOGOUT"], b"c OK",
              [b"b LOGIN pyimapd-test Test-pass-1", b"s SELECT INBOX", b"c LOGOUT"]),
}


@pytest.mark.skipif(shutil.which("strace") is None, reason="strace is not installed (apt-get install strace)")
@pytest.mark.parametrize("program", sorted(PRE_LOGIN))
def test_nothing_of_the_user_is_touched_before_login(mail_setup, tmp_path, program):
    """Greeting, capabilities and a failed login of a real user open, stat or list nothing in the spool or home."""
    script, lines, goodbye, control = PRE_LOGIN[program]
    answer, trace = traced_session(script, mail_setup.config_path, lines, tmp_path / "pre-login.trace")
    assert goodbye in answer
    user_paths = (str(mail_setup.spool_dir), str(mail_setup.home))
    assert [line for line in trace.splitlines() if any(path in line for path in user_paths)] == []
    # A session that logs in and opens INBOX does name the spool: the search above can find it.
    _, trace = traced_session(script, mail_setup.config_path, control, tmp_path / "login.trace")
    assert str(mail_setup.spool) in trace
