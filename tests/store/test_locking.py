"""Mailbox locks against real peers: flock(1), POSIX lockf, dotlockfile and procmail."""

import grp
import json
import os
import pwd
import shutil
import stat
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import pytest

from mailstore import StoreError
from mailstore import locking
from mailstore.locking import lock_mbox

REPO = Path(__file__).resolve().parents[2]

# Holds a classic POSIX record lock (what Postfix and procmail take) until stdin closes.
LOCKF_HOLDER = """
import fcntl, sys
f = open(sys.argv[1], "r+")
fcntl.lockf(f, fcntl.LOCK_EX)
print("ready", flush=True)
sys.stdin.read()
"""

# Exits 0 if a non-blocking POSIX record lock of the given kind is granted, 1 if busy.
LOCKF_PROBE = """
import fcntl, sys
shared = sys.argv[2] == "shared"
f = open(sys.argv[1], "r" if shared else "r+")
try:
    fcntl.lockf(f, (fcntl.LOCK_SH if shared else fcntl.LOCK_EX) | fcntl.LOCK_NB)
except OSError:
    sys.exit(1)
"""

# Runs lock_mbox as an unprivileged user (nobody) whose saved gid is "mail",
# the setup of locking.md §5 option (b), and reports what happened as JSON.
UNPRIVILEGED_LOCKER = """
import contextlib, json, os, sys
sys.path.insert(0, sys.argv[1])
from mailstore.locking import lock_mbox
mbox, use_privilege = sys.argv[2], sys.argv[3] == "yes"
user_uid, user_gid, mail_gid = (int(value) for value in sys.argv[4:7])
fd = os.open(mbox, os.O_RDWR)
os.setgroups([])
os.setresgid(user_gid, user_gid, mail_gid)
os.setresuid(user_uid, user_uid, user_uid)
uses = []

@contextlib.contextmanager
def privileged_group_effective():
    uses.append(1)
    os.setegid(mail_gid)
    try:
        yield
    finally:
        os.setegid(user_gid)

messages = []
with lock_mbox(mbox, fd, log=lambda priority, text: messages.append([priority, text]),
               privileged=privileged_group_effective if use_privilege else None) as held:
    lock_existed = os.path.exists(mbox + ".lock")
    held_inside = held.held
print(json.dumps({"held": held_inside, "lock_existed": lock_existed, "uses": len(uses),
                  "lock_after": os.path.exists(mbox + ".lock"), "log": messages}))
"""


class LogRecorder:
    """Collects log(priority, message) calls for assertions."""

    def __init__(self):
        self.records = []

    def __call__(self, priority, message):
        self.records.append((priority, message))

    def messages(self, priority):
        """The messages logged at one priority."""
        return [message for logged, message in self.records if logged == priority]


@pytest.fixture
def mbox(tmp_path):
    """A small mailbox file in a private directory."""
    path = tmp_path / "alice"
    path.write_bytes(b"From bob@example.org Wed Dec  2 05:53:22 1992\nSubject: hi\n\nhello\n")
    return str(path)


@pytest.fixture
def mbox_fd(mbox):
    """The mailbox opened read-write, as the server opens it for a write lock."""
    fd = os.open(mbox, os.O_RDWR)
    yield fd
    os.close(fd)


@pytest.fixture
def processes():
    """Background processes started by a test, stopped at its end."""
    started = []
    yield started
    for process in started:
        if process.poll() is None:
            process.kill()
        process.wait()
        for stream in (process.stdin, process.stdout):
            if stream:
                stream.close()


def start_holder(processes, argv):
    """Start a holder that prints "ready" once locked and lets go at stdin EOF."""
    process = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    processes.append(process)
    assert process.stdout.readline() == b"ready\n"
    return process


def start_flock_holder(processes, path):
    """flock(1) holding LOCK_EX on path, as UW and mail.local lock."""
    return start_holder(processes, ["flock", "-x", path, "sh", "-c", "echo ready; read line"])


def start_lockf_holder(processes, path):
    """Another process holding a classic POSIX fcntl lock, as Postfix and procmail lock."""
    return start_holder(processes, [sys.executable, "-c", LOCKF_HOLDER, path])


def release_later(process, released):
    """Close the holder's stdin from a timer thread, marking `released` first."""
    def release():
        released.set()
        process.stdin.close()
    timer = threading.Timer(0.3, release)
    timer.start()
    return timer


def flock_is_free(path):
    """True if another process gets `flock -n -x` on path right now."""
    return subprocess.run(["flock", "-n", "-x", path, "true"]).returncode == 0


def lockf_is_free(path, kind="exclusive"):
    """True if another process gets a non-blocking POSIX lock of `kind` on path."""
    return subprocess.run([sys.executable, "-c", LOCKF_PROBE, path, kind]).returncode == 0


def dotlockfile_is_free(path):
    """True if liblockfile's dotlockfile can create path.lock at once (it is removed again)."""
    lock_path = path + ".lock"
    if subprocess.run(["dotlockfile", "-q", "-r", "0", lock_path]).returncode != 0:
        return False
    subprocess.run(["dotlockfile", "-u", lock_path], check=True)
    return True


def wait_for(condition, limit=15.0):
    """Poll `condition` until true; fail the test if it never becomes true."""
    deadline = time.monotonic() + limit
    while not condition():
        assert time.monotonic() < deadline, "condition never became true"
        time.sleep(0.05)


def test_flock_holder_makes_us_time_out_in_use(mbox, mbox_fd, processes):
    """A `flock -x` holder (UW, mail.local) blocks our write lock until the timeout gives IN_USE."""
    start_flock_holder(processes, mbox)
    with pytest.raises(StoreError) as caught:
        with lock_mbox(mbox, mbox_fd, timeout=0.5):
            pytest.fail("lock granted while flock(1) held the mailbox")
    assert caught.value.kind == StoreError.IN_USE
    assert "flock" in str(caught.value)
    assert not os.path.exists(mbox + ".lock")


def test_flock_holder_is_waited_for(mbox, mbox_fd, processes):
    """Our write lock waits for a `flock -x` holder and is granted once it lets go."""
    holder = start_flock_holder(processes, mbox)
    released = threading.Event()
    timer = release_later(holder, released)
    with lock_mbox(mbox, mbox_fd, timeout=15) as held:
        assert released.is_set()
        assert held.held == ("dotlock", "fcntl", "flock")
    timer.join()


def test_posix_lockf_holder_blocks_us(mbox, mbox_fd, processes):
    """A classic POSIX fcntl lock in another process (Postfix, procmail) blocks our OFD lock."""
    holder = start_lockf_holder(processes, mbox)
    with pytest.raises(StoreError) as caught:
        with lock_mbox(mbox, mbox_fd, timeout=0.5):
            pytest.fail("lock granted while another process held lockf")
    assert caught.value.kind == StoreError.IN_USE
    assert "fcntl" in str(caught.value)
    released = threading.Event()
    timer = release_later(holder, released)
    with lock_mbox(mbox, mbox_fd, timeout=15):
        assert released.is_set()
    timer.join()


def test_our_write_lock_blocks_every_peer(mbox, mbox_fd):
    """While we hold the write lock flock(1), lockf and dotlockfile fail; afterwards all succeed."""
    with lock_mbox(mbox, mbox_fd, timeout=1):
        assert not flock_is_free(mbox)
        assert not lockf_is_free(mbox)
        assert not lockf_is_free(mbox, "shared")
        assert not dotlockfile_is_free(mbox)
    assert flock_is_free(mbox)
    assert lockf_is_free(mbox)
    assert dotlockfile_is_free(mbox)
    assert not os.path.exists(mbox + ".lock")


def write_procmail_rc(tmp_path, mbox):
    """A procmail rcfile delivering to mbox with a local lockfile, logging verbosely."""
    log_path = tmp_path / "procmail.log"
    rcfile = tmp_path / "procmailrc"
    # LOCKSLEEP=1: procmail's default 8 s between dotlock attempts would slow the test.
    rcfile.write_text("LOCKSLEEP=1\nVERBOSE=on\nLOGFILE=%s\n:0:\n%s\n" % (log_path, mbox))
    return rcfile, log_path


def start_procmail(processes, rcfile, subject):
    """Deliver one message with `procmail -m rcfile` in the background."""
    message = ("From carol@example.org Thu Mar 14 09:26:53 2024\nFrom: carol@example.org\n"
               "Subject: %s\n\nbody\n" % subject).encode()
    process = subprocess.Popen(["procmail", "-m", str(rcfile)], stdin=subprocess.PIPE)
    processes.append(process)
    process.stdin.write(message)
    process.stdin.close()
    return process


def log_text(log_path):
    """procmail's log so far ("" before it exists)."""
    return log_path.read_text() if log_path.exists() else ""


def test_procmail_delivery_waits_for_our_dotlock(tmp_path, mbox, mbox_fd, processes):
    """A real procmail delivery retries on our dotlock and appends only after we release."""
    rcfile, log_path = write_procmail_rc(tmp_path, mbox)
    before = Path(mbox).read_bytes()
    with lock_mbox(mbox, mbox_fd, timeout=1):
        delivery = start_procmail(processes, rcfile, "procmail waited")
        # Two attempts on the lock file mean the first one found ours.
        wait_for(lambda: log_text(log_path).count('Locking "%s.lock"' % mbox) >= 2)
        assert delivery.poll() is None
        assert Path(mbox).read_bytes() == before
    assert delivery.wait(timeout=15) == 0
    after = Path(mbox).read_bytes()
    assert after.startswith(before)
    assert b"Subject: procmail waited" in after[len(before):]


def test_procmail_delivery_waits_for_our_fcntl_lock(tmp_path, mbox, mbox_fd, processes):
    """Our OFD fcntl lock alone stops procmail at its POSIX kernel lock until we release."""
    rcfile, log_path = write_procmail_rc(tmp_path, mbox)
    before = Path(mbox).read_bytes()
    with lock_mbox(mbox, mbox_fd, methods=("fcntl",), timeout=1):
        delivery = start_procmail(processes, rcfile, "procmail waited for fcntl")
        wait_for(lambda: "Acquiring kernel-lock" in log_text(log_path))
        assert delivery.poll() is None
        assert Path(mbox).read_bytes() == before
    assert delivery.wait(timeout=15) == 0
    assert b"Subject: procmail waited for fcntl" in Path(mbox).read_bytes()[len(before):]


def test_stale_dotlock_is_removed_and_taken(mbox, mbox_fd):
    """A dotlock with ctime older than stale_age is removed with a warning and replaced by ours."""
    Path(mbox + ".lock").write_text("")
    time.sleep(0.3)
    log = LogRecorder()
    with lock_mbox(mbox, mbox_fd, timeout=0, stale_age=0.2, log=log) as held:
        assert held.held == ("dotlock", "fcntl", "flock")
        assert Path(mbox + ".lock").read_text() == "%d:%s\n" % (os.getpid(), os.uname().nodename)
    assert any("stale lock" in message for message in log.messages("warning"))
    assert not os.path.exists(mbox + ".lock")


def test_dotlock_of_a_killed_server_is_taken_at_once(mbox, mbox_fd):
    """A dotlock left by a pyimapd process killed with SIGKILL is removed at once, not after 5 min."""
    holder = subprocess.Popen([sys.executable, "-c", (
        "import sys, time; sys.path.insert(0, %r)\n"
        "from mailstore.locking import lock_mbox\n"
        "import os\n"
        "fd = os.open(%r, os.O_RDWR)\n"
        "lock = lock_mbox(%r, fd, timeout=5).acquire()\n"
        "print('locked', flush=True)\n"
        "time.sleep(60)\n") % (str(REPO), mbox, mbox)], stdout=subprocess.PIPE)
    try:
        assert holder.stdout.readline() == b"locked\n"
    finally:
        holder.kill()
        holder.wait()
    assert os.path.exists(mbox + ".lock")
    log = LogRecorder()
    with lock_mbox(mbox, mbox_fd, timeout=0, log=log) as held:
        assert "dotlock" in held.held
    assert any("dead process %d" % holder.pid in message for message in log.messages("warning"))


def test_dotlock_of_a_live_process_is_respected(mbox, mbox_fd):
    """A dotlock in our own format whose process is alive is not removed before the stale age."""
    Path(mbox + ".lock").write_text("%d:%s\n" % (os.getppid(), os.uname().nodename))
    with pytest.raises(StoreError) as caught:
        with lock_mbox(mbox, mbox_fd, timeout=0.3):
            pytest.fail("lock granted over a live process's dotlock")
    assert caught.value.kind == StoreError.IN_USE


def test_live_dotlock_makes_us_time_out_in_use(mbox, mbox_fd):
    """A fresh dotlock made by dotlockfile is respected: IN_USE at the timeout, lock untouched."""
    lock_path = mbox + ".lock"
    subprocess.run(["dotlockfile", "-r", "0", lock_path], check=True)
    identity = os.stat(lock_path).st_ino
    with pytest.raises(StoreError) as caught:
        with lock_mbox(mbox, mbox_fd, timeout=0.5):
            pytest.fail("lock granted over a live dotlock")
    assert caught.value.kind == StoreError.IN_USE
    assert "dotlock" in str(caught.value)
    assert os.stat(lock_path).st_ino == identity
    subprocess.run(["dotlockfile", "-u", lock_path], check=True)


def test_no_kernel_lock_is_held_while_waiting(mbox, mbox_fd, monkeypatch):
    """When one lock is busy, the kernel locks already taken are dropped before every sleep."""
    subprocess.run(["dotlockfile", "-r", "0", mbox + ".lock"], check=True)
    real_sleep = time.sleep
    probes = []

    def probing_sleep(seconds):
        probes.append((flock_is_free(mbox), lockf_is_free(mbox)))
        real_sleep(seconds)

    monkeypatch.setattr(locking.time, "sleep", probing_sleep)
    # Kernel locks first, so each round takes them before finding the dotlock busy.
    with pytest.raises(StoreError):
        with lock_mbox(mbox, mbox_fd, methods=("fcntl", "flock", "dotlock"), timeout=0.5):
            pytest.fail("lock granted over a live dotlock")
    monkeypatch.undo()
    assert probes and all(probe == (True, True) for probe in probes)
    os.unlink(mbox + ".lock")


def test_symlink_lock_name_is_refused(tmp_path, mbox, mbox_fd):
    """A symlink lock name is refused (NO_PERMISSION, crit log) and its target is untouched."""
    target = tmp_path / "target"
    os.symlink(target, mbox + ".lock")
    log = LogRecorder()
    with pytest.raises(StoreError) as caught:
        with lock_mbox(mbox, mbox_fd, timeout=1, stale_age=0, log=log):
            pytest.fail("lock granted through a symlink")
    assert caught.value.kind == StoreError.NO_PERMISSION
    assert log.messages("crit") == ["SECURITY PROBLEM: symbolic link on lock name: %s.lock" % mbox]
    assert not target.exists()
    assert os.path.islink(mbox + ".lock")
    assert flock_is_free(mbox) and lockf_is_free(mbox)


def test_closing_another_fd_keeps_our_fcntl_lock(mbox, mbox_fd):
    """Opening and closing the mailbox again in this process does not drop our OFD lock."""
    with lock_mbox(mbox, mbox_fd, methods=("fcntl",), timeout=1):
        os.close(os.open(mbox, os.O_RDONLY))
        open(mbox, "rb").close()
        assert not lockf_is_free(mbox)
    assert lockf_is_free(mbox)


def test_classic_posix_lock_would_be_lost_on_close(mbox, mbox_fd):
    """Control for the test above: a classic lockf lock vanishes when another fd is closed."""
    import fcntl
    fcntl.lockf(mbox_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    assert not lockf_is_free(mbox)
    os.close(os.open(mbox, os.O_RDONLY))
    assert lockf_is_free(mbox)


def test_dotlock_content_and_mode(mbox, mbox_fd):
    """The dotlock holds `<pid>:<hostname>` and is mode 0666 whatever the umask, as UW chmods it."""
    old_umask = os.umask(0o077)
    try:
        with lock_mbox(mbox, mbox_fd, timeout=1):
            info = os.lstat(mbox + ".lock")
            content = Path(mbox + ".lock").read_text()
    finally:
        os.umask(old_umask)
    assert stat.S_IMODE(info.st_mode) == 0o666
    assert content == "%d:%s\n" % (os.getpid(), os.uname().nodename)


def test_replaced_dotlock_is_not_removed_on_release(mbox, mbox_fd):
    """If another process replaced our lock file, release leaves theirs in place and warns."""
    lock_path = mbox + ".lock"
    log = LogRecorder()
    with lock_mbox(mbox, mbox_fd, timeout=1, log=log):
        os.unlink(lock_path)
        subprocess.run(["dotlockfile", "-r", "0", lock_path], check=True)
    assert os.path.exists(lock_path)
    assert any("replaced" in message for message in log.messages("warning"))
    subprocess.run(["dotlockfile", "-u", lock_path], check=True)


def test_shared_locks_coexist_and_exclude_writers(mbox):
    """Two shared read locks coexist; they admit peer readers and block peer and local writers."""
    first, second, writer = (os.open(mbox, os.O_RDONLY), os.open(mbox, os.O_RDONLY),
                             os.open(mbox, os.O_RDWR))
    try:
        with lock_mbox(mbox, first, exclusive=False, timeout=0) as reading:
            with lock_mbox(mbox, second, exclusive=False, timeout=0):
                assert reading.held == ("fcntl",)
                assert not os.path.exists(mbox + ".lock")
                assert lockf_is_free(mbox, "shared")
                assert not lockf_is_free(mbox)
            with pytest.raises(StoreError) as caught:
                with lock_mbox(mbox, writer, timeout=0.3):
                    pytest.fail("write lock granted during a read lock")
            assert caught.value.kind == StoreError.IN_USE
    finally:
        for fd in (first, second, writer):
            os.close(fd)


def test_shared_flock_blocks_flock_writer(mbox):
    """A shared read lock asked for with flock blocks `flock -x` peers such as UW."""
    fd = os.open(mbox, os.O_RDONLY)
    try:
        with lock_mbox(mbox, fd, methods=("flock",), exclusive=False, timeout=0):
            assert not flock_is_free(mbox)
    finally:
        os.close(fd)


def test_write_lock_on_read_only_fd_is_a_temporary_error(mbox):
    """An fcntl write lock needs a writable fd; the failure is TEMPORARY and leaves nothing held."""
    fd = os.open(mbox, os.O_RDONLY)
    try:
        with pytest.raises(StoreError) as caught:
            with lock_mbox(mbox, fd, timeout=0):
                pytest.fail("write lock granted on a read-only fd")
    finally:
        os.close(fd)
    assert caught.value.kind == StoreError.TEMPORARY
    assert not os.path.exists(mbox + ".lock")


def test_unknown_method_is_rejected(mbox, mbox_fd):
    """A misspelt lock method is a programming error, reported before anything is locked."""
    with pytest.raises(ValueError):
        lock_mbox(mbox, mbox_fd, methods=("dotlock", "lockf"))


@pytest.fixture
def group_spool():
    """A Debian-style spool: directory root:mail 2775, reachable by nobody."""
    if os.geteuid() != 0:
        pytest.skip("needs root to set up a root:mail spool and drop to nobody")
    top = tempfile.mkdtemp(prefix="spool-")
    os.chmod(top, 0o755)
    spool = os.path.join(top, "mail")
    os.mkdir(spool)
    os.chown(spool, 0, grp.getgrnam("mail").gr_gid)
    os.chmod(spool, 0o2775)
    yield spool
    shutil.rmtree(top)


def run_as_nobody(mbox, use_privilege):
    """Lock mbox from a child running as nobody (saved gid mail); its JSON report."""
    nobody = pwd.getpwnam("nobody")
    argv = [sys.executable, "-c", UNPRIVILEGED_LOCKER, str(REPO), mbox,
            "yes" if use_privilege else "no", str(nobody.pw_uid), str(nobody.pw_gid),
            str(grp.getgrnam("mail").gr_gid)]
    done = subprocess.run(argv, capture_output=True, check=True)
    return json.loads(done.stdout)


def make_user_mbox(spool, owner):
    """A mailbox in the spool owned by `owner` ("nobody" or "root"), mode 0600."""
    path = os.path.join(spool, "nobody")
    Path(path).write_bytes(b"")
    os.chown(path, pwd.getpwnam(owner).pw_uid, 0)
    os.chmod(path, 0o600)
    return path


def test_privileged_group_creates_dotlock_in_group_spool(group_spool):
    """With EACCES in a 2775 spool, the dotlock is made and removed with the mail group."""
    report = run_as_nobody(make_user_mbox(group_spool, "nobody"), use_privilege=True)
    assert report["held"] == ["dotlock", "fcntl", "flock"]
    assert report["lock_existed"] and not report["lock_after"]
    assert report["uses"] == 2
    assert not [message for priority, message in report["log"] if priority == "warning"]


def test_group_spool_without_privilege_continues_vulnerable(group_spool):
    """Without the mail group the lock proceeds on fcntl+flock and warns, as UW does."""
    report = run_as_nobody(make_user_mbox(group_spool, "nobody"), use_privilege=False)
    assert report["held"] == ["fcntl", "flock"]
    assert not report["lock_existed"]
    assert report["log"] == [["warning", "Mailbox vulnerable - directory %s must have 1777 "
                              "protection" % group_spool]]


def test_privilege_is_not_used_for_an_unreadable_mailbox(group_spool):
    """The mail group is never used to dotlock a mailbox the user cannot read (Dovecot's rule)."""
    report = run_as_nobody(make_user_mbox(group_spool, "root"), use_privilege=True)
    assert report["uses"] == 0
    assert report["held"] == ["fcntl", "flock"]
    assert any(message.startswith("Mailbox vulnerable") for _, message in report["log"])
