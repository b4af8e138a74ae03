"""The golden IMAP transcripts in imap/, each played against the real imapd."""

import pytest

from driver import IMAP_TRANSCRIPTS, play

TRANSCRIPT_FILES = sorted(IMAP_TRANSCRIPTS.glob("*.txt"))


def test_transcripts_exist():
    """The transcript directory is not empty, so the parametrized test below cannot pass vacuously."""
    assert TRANSCRIPT_FILES


@pytest.mark.parametrize("path", TRANSCRIPT_FILES, ids=lambda path: path.stem)
def test_transcript(path, mailroom):
    """The server answers every command of the transcript exactly as written, then hangs up cleanly."""
    play(path, mailroom)
