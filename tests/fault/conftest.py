"""The fault suite's options for long runs, and its `mail_room` fixture.

`pytest tests/fault --trials 3000 --soak-seconds 300` is the same as setting
PYIMAPD_CRASH_TRIALS=3000 and PYIMAPD_SOAK_SECONDS=300 in the environment;
the options exist only when pytest is pointed at tests/fault, the variables
work for any selection.
"""

import os

import pytest


def pytest_addoption(parser):
    group = parser.getgroup("pyimapd fault suite")
    group.addoption("--trials", type=int, default=None,
                    help="random crash trials per crash test and driver (PYIMAPD_CRASH_TRIALS)")
    group.addoption("--soak-seconds", type=float, default=None,
                    help="how long the soak test runs (PYIMAPD_SOAK_SECONDS)")


def pytest_configure(config):
    if config.getoption("--trials") is not None:
        os.environ["PYIMAPD_CRASH_TRIALS"] = str(config.getoption("--trials"))
    if config.getoption("--soak-seconds") is not None:
        os.environ["PYIMAPD_SOAK_SECONDS"] = str(config.getoption("--soak-seconds"))


@pytest.fixture(params=["mbox", "maildir"])
def driver(request):
    """Each test that takes `driver` runs once per mail driver (faultdrivers.DRIVERS)."""
    from faultdrivers import DRIVERS

    return DRIVERS[request.param]


@pytest.fixture
def mail_room():
    """make(users, driver=None, **settings) -> faultroom.MailRoom in the system's temporary directory
    (the served uid must be able to reach it); every room is removed afterwards."""
    from faultroom import MailRoom

    rooms = []

    def make(users, parent=None, driver=None, **settings):
        rooms.append(MailRoom(users, parent, driver, **settings))
        return rooms[-1]

    yield make
    for room in rooms:
        room.remove()
