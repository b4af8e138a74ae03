"""The transcript driver itself: it must fail on every kind of mismatch it claims to catch."""

import pytest

from driver import parse_transcript, play

GREETING = "S~ \\+OK POP3 .*\n"


def play_text(tmp_path, mailroom, text):
    path = tmp_path / "sample.txt"
    path.write_text(text)
    play(path, mailroom)


def test_wrong_server_line_fails_naming_the_transcript_line(tmp_path, mailroom):
    """An S: line the server does not send fails with the file name and line number."""
    with pytest.raises(AssertionError, match=r"sample\.txt:3: expected '\+OK Bye'"):
        play_text(tmp_path, mailroom, GREETING + "C: QUIT\nS: +OK Bye\n")


def test_unread_server_output_fails(tmp_path, mailroom):
    """Server lines the transcript does not expect make the session fail at its end."""
    with pytest.raises(AssertionError, match=r"sample\.txt:end: unexpected server output"):
        play_text(tmp_path, mailroom, GREETING + "C: QUIT\n")


def test_changed_mailbox_fails_the_unchanged_check(tmp_path, mailroom):
    """=MAILBOX-UNCHANGED fails after a session that deleted a message."""
    login = "C: USER alice\nS~ \\+OK .*\nC: PASS secret\nS~ \\+OK .*\n"
    with pytest.raises(AssertionError, match="mailbox file changed"):
        play_text(tmp_path, mailroom, GREETING + login
                  + "C: DELE 1\nS~ \\+OK .*\nC: QUIT\nS: +OK Sayonara\n=MAILBOX-UNCHANGED\n")


def test_unknown_line_kind_is_a_syntax_error(tmp_path):
    """A line that is no directive is refused when the transcript is read."""
    path = tmp_path / "sample.txt"
    path.write_text("X: QUIT\n")
    with pytest.raises(ValueError, match="sample.txt:1"):
        parse_transcript(path)
