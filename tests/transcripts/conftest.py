"""Fixtures for the transcript tests: a user's mail files and running ipop3d processes."""

import pytest

from driver import Mailroom, ServerProcess, UW_INBOX


@pytest.fixture
def mailroom():
    """A fresh spool, home, passwd_file and configuration for the virtual user alice."""
    room = Mailroom()
    try:
        yield room
    finally:
        room.remove()


@pytest.fixture
def uw_inbox(mailroom):
    """The mailroom with alice's spool a copy of the UW fixture INBOX (12 messages)."""
    mailroom.install(UW_INBOX)
    return mailroom


@pytest.fixture
def start_server(mailroom):
    """A function that starts ipop3d on the mailroom's configuration; all are closed afterwards."""
    started = []

    def start(overrides=None):
        server = ServerProcess(mailroom.write_config(overrides))
        started.append(server)
        return server

    yield start
    for server in started:
        server.close()
