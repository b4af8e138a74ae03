"""Helpers the POP3 and IMAP interop tests share for driving real client programs.

Not fixtures (those are in conftest.py): plain functions for running a client
without a terminal, a file-writing MDA for fetchmail and mpop, and delivery
through procmail as an MTA does it.
"""

import shutil
import subprocess

import pytest

# A guard against a hung client or server, never a measurement.
GUARD_SECONDS = 60


def needs_program(name, package=None):
    """Skip the test when a client program is not installed (CI installs them all)."""
    return pytest.mark.skipif(shutil.which(name) is None,
                              reason="%s is not installed (apt-get install %s)" % (name, package or name))


def run_client(command, env=None, ok_codes=(0,)):
    """Run a mail client to completion without a terminal; fail with its output otherwise."""
    result = subprocess.run(command, env=env, stdin=subprocess.DEVNULL, capture_output=True,
                            timeout=GUARD_SECONDS)
    assert result.returncode in ok_codes, "%s exited %d\n%s\n%s" % (
        command[0], result.returncode, result.stdout.decode(errors="replace"),
        result.stderr.decode(errors="replace"))
    return result


def delivered_files(directory):
    """The messages a delivery script wrote, one file each, in delivery order."""
    return [path.read_bytes() for path in sorted(directory.iterdir())]


def write_delivery_script(directory, target):
    """An MDA that stores each message from stdin in its own numbered file under target."""
    target.mkdir()
    script = directory / "deliver.sh"
    script.write_text('#!/bin/sh\nn=$(ls "%s" | wc -l)\nexec cat > "%s/$(printf %%04d "$n")"\n'
                      % (target, target))
    script.chmod(0o755)
    return script


def deliver_with_procmail(directory, spool, message, sender="ken@example.com"):
    """Append one message (LF form) to the spool with procmail and procmail's own locking.

    -f: procmail writes the From_ line itself, as when an MTA runs it as the MDA.
    """
    rcfile = directory / "procmailrc"
    rcfile.write_text("SHELL=/bin/sh\nLOGFILE=%s/procmail.log\n:0:\n%s\n" % (directory, spool))
    result = subprocess.run(["procmail", "-f", sender, "-m", str(rcfile)], input=message,
                            capture_output=True, timeout=GUARD_SECONDS)
    assert result.returncode == 0, result.stderr
