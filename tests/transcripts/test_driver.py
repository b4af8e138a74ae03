"""The transcript driver itself: it must fail on every kind of mismatch it claims to catch."""

import pytest

import driver
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


def test_second_connection_mismatch_names_the_connection(tmp_path, mailroom):
    """A wrong S2: line fails naming connection 2 and the transcript line."""
    text = GREETING + "S2~ \\+OK POP3 .*\nC2: QUIT\nS2: +OK Wrong\n"
    with pytest.raises(AssertionError, match=r"sample\.txt:4: connection 2: expected '\+OK Wrong'"):
        play_text(tmp_path, mailroom, text)


def test_deliver_appends_one_message(tmp_path, mailroom):
    """=DELIVER adds the delivery mailbox's message to the spool, so a count of 12 fails with 13."""
    text = GREETING + "C: QUIT\nS~ \\+OK .*\n=DELIVER delivery\n=MAILBOX-COUNT 12\n"
    with pytest.raises(AssertionError, match="holds 13 messages, not 12"):
        play_text(tmp_path, mailroom, text)


def test_pause_longer_than_the_limit_is_refused(tmp_path, mailroom):
    """=PAUSE is for a clock to tick, not for timers: more than 2 s fails the transcript."""
    with pytest.raises(AssertionError, match="=PAUSE takes up to 2 s"):
        play_text(tmp_path, mailroom, GREETING + "=PAUSE 5\n")


def test_hang_guard_bounds_the_wait_for_a_server_line(tmp_path, mailroom):
    """With @hang-guard 1 a server line that never comes fails after one second."""
    with pytest.raises(AssertionError, match=r"sample\.txt:3: server silent for 1 s"):
        play_text(tmp_path, mailroom, "@hang-guard 1\n" + GREETING + "S: +OK never sent\n")


def test_captured_variable_is_escaped_in_regex_lines(tmp_path, mailroom):
    """A variable in an S~ line stands for its text: "+OK" matches "+OK", no regex error."""
    text = ("S~ (?P<ok>\\+OK) POP3 .*\n"
            "C: QUIT\nS~ {ok} .*\n")
    play_text(tmp_path, mailroom, text)


def test_literal_markers_are_not_variables():
    """{12} and {12+} in a line are IMAP literal markers, {name} is a variable."""
    assert driver.VARIABLE.findall("a LOGIN {5} {6+} {user}") == ["user"]


def test_pseudo_message_is_not_counted():
    """UW's folder-data pseudo-message (X-IMAP header) does not count as mail."""
    pseudo = b"From MAILER-DAEMON Fri Nov 27 00:22:17 2026\nX-IMAP: 1 0000000014\n\ntext\n\n"
    mail = b"From a@b Fri Nov 27 00:22:17 2026\nX-UID: 1\n\nhi\n\n"
    assert (driver.count_messages(pseudo), driver.count_messages(pseudo + mail)) == (0, 1)
    assert driver.count_messages(mail + mail) == 2


def test_connection_number_on_a_computation_is_a_syntax_error(tmp_path):
    """C! lines compute for every connection; C2! is refused when the transcript is read."""
    path = tmp_path / "sample.txt"
    path.write_text("C2! x = md5 y\n")
    with pytest.raises(ValueError, match="sample.txt:1"):
        parse_transcript(path)
