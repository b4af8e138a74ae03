"""mailstore.sessionlock: UW's /tmp/.<dev>.<ino> lock of a POP3 session."""

import os

import pytest

from mailstore import StoreError
from mailstore.sessionlock import SessionLock


@pytest.fixture
def mailbox_fd(tmp_path):
    path = tmp_path / "mbox"
    path.write_bytes(b"")
    fd = os.open(path, os.O_RDONLY)
    yield fd
    os.close(fd)


def test_a_lock_released_between_our_open_and_its_check_is_taken_not_called_an_attack(
        tmp_path, mailbox_fd, monkeypatch):
    """The holder's release (unlink, then close) can fall between our open of the name and
    our fstat: the file then has no link at all. That is a retry, not a hard-link attack
    (the soak test met it as a POP3 login refused with 'Mailbox access denied')."""
    holder = SessionLock(mailbox_fd, str(tmp_path)).acquire()
    real_open, released = os.open, []

    def open_then_release(path, flags, mode=0o777, **kwargs):
        opened = real_open(path, flags, mode, **kwargs)
        if path == holder.path and not released:
            released.append(True)
            holder.release()
        return opened

    monkeypatch.setattr(os, "open", open_then_release)
    lock = SessionLock(mailbox_fd, str(tmp_path)).acquire()
    assert released and lock.fd is not None
    assert os.stat(lock.path).st_nlink == 1
    lock.release()


def test_a_second_session_is_in_use_and_a_hard_link_is_refused(tmp_path, mailbox_fd):
    lock = SessionLock(mailbox_fd, str(tmp_path)).acquire()
    with pytest.raises(StoreError) as busy:
        SessionLock(mailbox_fd, str(tmp_path)).acquire()
    assert busy.value.kind == StoreError.IN_USE
    lock.release()
    target = tmp_path / "target"
    target.write_bytes(b"")
    os.link(target, lock.path)
    os.link(target, tmp_path / "second-name")
    with pytest.raises(StoreError) as attack:
        SessionLock(mailbox_fd, str(tmp_path)).acquire()
    assert attack.value.kind == StoreError.NO_PERMISSION
