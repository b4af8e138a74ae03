"""The golden POP3 transcripts in pop3/, each played against the real ipop3d."""

import pytest

from driver import TRANSCRIPTS, Mailroom, parse_transcript, play

TRANSCRIPT_FILES = sorted(TRANSCRIPTS.glob("*.txt"))


def test_transcripts_exist():
    """The transcript directory is not empty, so the parametrized test below cannot pass vacuously."""
    assert TRANSCRIPT_FILES


@pytest.mark.parametrize("driver", ["mbox", "maildir"])
@pytest.mark.parametrize("path", TRANSCRIPT_FILES, ids=lambda path: path.stem)
def test_transcript(path, driver):
    """The server answers every command of the transcript exactly as written, then hangs up
    cleanly, on an mbox spool and on a Maildir holding the same mail."""
    if driver not in parse_transcript(path).drivers:
        pytest.skip("the transcript depends on mbox-only facts (@driver mbox)")
    mailroom = Mailroom(driver)
    try:
        play(path, mailroom)
    finally:
        mailroom.remove()
