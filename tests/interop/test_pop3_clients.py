"""Real POP3 clients against the real ipop3d, started per connection by the listener as inetd does.

Each test checks what a user would check: the mail that arrived is byte for byte
what the spool held, and the spool afterwards holds exactly what it should.
Fixtures are in conftest.py; the mailbox generator is tests/mailgen.py.
"""

import os
import poplib
import re

import pytest

import mailgen
from clienttools import (GUARD_SECONDS, deliver_with_procmail, delivered_files, needs_program,
                         run_client, write_delivery_script)

UIDL_FORMAT = re.compile(rb"[0-9a-f]{16}")


def login(listener, setup):
    """A poplib session through the listener, logged in with USER/PASS."""
    pop = poplib.POP3(listener.host, listener.port, timeout=GUARD_SECONDS)
    pop.user(setup.user)
    pop.pass_(setup.password)
    return pop


def joined(lines):
    """A multi-line poplib response (CRLF stripped, dots unstuffed) as the CRLF bytes sent."""
    return b"".join(line + b"\r\n" for line in lines)


def retrieve(pop, number):
    """RETR one message and return it as the CRLF bytes of the message."""
    return joined(pop.retr(number)[1])


def scan_listing(lines):
    """Parse LIST or UIDL lines into {message number: value bytes}."""
    return {int(number): value for number, value in (line.split(b" ", 1) for line in lines)}


def without_status(delivered_lf):
    """A message a client delivered with LF line ends, in CRLF form without UW's Status: line."""
    status, message = mailgen.split_status(delivered_lf.replace(b"\n", b"\r\n"))
    assert status is not None, "no synthesized Status: line in %r" % delivered_lf[:300]
    return message


def test_poplib_stat_list_uidl_describe_the_spool(mail_setup, start_pop3):
    """STAT, LIST and UIDL report every spool message with UW sizes (CRLF + 12) and UW UIDLs."""
    listener = start_pop3(mail_setup.config_path)
    pop = login(listener, mail_setup)
    sizes = [len(message) + 12 for message in mail_setup.messages]
    assert pop.stat() == (len(sizes), sum(sizes))
    assert scan_listing(pop.list()[1]) == {n: b"%d" % size for n, size in enumerate(sizes, 1)}
    uidls = scan_listing(pop.uidl()[1])
    assert sorted(uidls) == list(range(1, len(sizes) + 1))
    assert all(UIDL_FORMAT.fullmatch(uidl) for uidl in uidls.values())
    assert len(set(uidls.values())) == len(uidls)
    assert len({uidl[:8] for uidl in uidls.values()}) == 1  # one UIDVALIDITY
    pop.quit()


def test_poplib_top_sends_header_status_line_and_requested_body_lines(mail_setup, start_pop3):
    """TOP n 3 returns the header, the synthesized Status: line, the empty line and 3 body lines."""
    listener = start_pop3(mail_setup.config_path)
    pop = login(listener, mail_setup)
    for number, message in enumerate(mail_setup.messages, 1):
        header, _, body = message.partition(b"\r\n\r\n")
        status, top = mailgen.split_status(joined(pop.top(number, 3)[1]))
        assert status is not None
        assert top == header + b"\r\n\r\n" + b"".join(body.split(b"\r\n")[i] + b"\r\n" for i in range(3))
    pop.quit()


def test_poplib_retr_all_and_dele_some_removes_exactly_those_at_quit(mail_setup, start_pop3):
    """RETR gives every message byte-identical; DELE takes effect only at QUIT, and only for those."""
    listener = start_pop3(mail_setup.config_path)
    inode_before = os.stat(mail_setup.spool).st_ino
    pop = login(listener, mail_setup)
    for number, message in enumerate(mail_setup.messages, 1):
        assert mailgen.split_status(retrieve(pop, number)) == ("  ", message)
    deleted = (2, 5, len(mail_setup.messages))
    for number in deleted:
        pop.dele(number)
    assert mail_setup.spool_messages() == mail_setup.messages
    pop.quit()
    kept = [m for n, m in enumerate(mail_setup.messages, 1) if n not in deleted]
    assert mail_setup.spool_messages() == kept
    after = os.stat(mail_setup.spool)
    assert (after.st_ino, after.st_uid, after.st_mode & 0o7777) == (
        inode_before, mail_setup.account.pw_uid, 0o600)


def test_poplib_next_session_keeps_uidls_and_shows_retrieved_mail_as_read(mail_setup, start_pop3):
    """After RETR of some, DELE of one and QUIT, a new session keeps the UIDLs and flags RETRed mail Seen."""
    listener = start_pop3(mail_setup.config_path)
    pop = login(listener, mail_setup)
    first_uidls = scan_listing(pop.uidl()[1])
    retrieve(pop, 2)
    retrieve(pop, 3)
    pop.dele(1)
    pop.quit()
    pop = login(listener, mail_setup)
    count = len(mail_setup.messages) - 1
    assert pop.stat()[0] == count
    assert scan_listing(pop.uidl()[1]) == {n: first_uidls[n + 1] for n in range(1, count + 1)}
    statuses = [mailgen.split_status(retrieve(pop, n))[0] for n in range(1, count + 1)]
    assert statuses == ["RO", "RO"] + [" O"] * (count - 2)
    pop.quit()


def test_disconnect_without_quit_deletes_nothing(mail_setup, pop3_over_socketpair):
    """DELE followed by a dropped connection (no QUIT) leaves the spool untouched (RFC 1939 §6)."""
    pop = pop3_over_socketpair(mail_setup.config_path)
    pop.user(mail_setup.user)
    pop.pass_(mail_setup.password)
    pop.dele(1)
    pop.dele(2)
    pop.close()  # hang up: no QUIT
    pop.server_process.wait(timeout=GUARD_SECONDS)
    assert mail_setup.spool_messages() == mail_setup.messages


def test_poplib_pop3_ssl_on_an_implicit_tls_listener(mail_setup, start_pop3, tls_certificate,
                                                     client_tls_context):
    """poplib.POP3_SSL verifies the certificate of `ipop3d --tls` (pop3s) and retrieves mail intact."""
    cert, key = tls_certificate
    config = mail_setup.write_config(ssl_cert_file=cert, ssl_key_file=key)
    listener = start_pop3(config, "--tls")
    pop = poplib.POP3_SSL(listener.host, listener.port, context=client_tls_context,
                          timeout=GUARD_SECONDS)
    assert "STLS" not in pop.capa()
    pop.user(mail_setup.user)
    pop.pass_(mail_setup.password)
    assert mailgen.split_status(retrieve(pop, 1))[1] == mail_setup.messages[0]
    pop.quit()


def test_poplib_stls_upgrades_a_plain_connection(mail_setup, start_pop3, tls_certificate,
                                                 client_tls_context):
    """A plain listener with a certificate offers STLS; after it, logins and retrieval work over TLS."""
    cert, key = tls_certificate
    config = mail_setup.write_config(ssl_cert_file=cert, ssl_key_file=key)
    listener = start_pop3(config)
    pop = poplib.POP3(listener.host, listener.port, timeout=GUARD_SECONDS)
    capabilities = pop.capa()
    assert {"STLS", "USER", "UIDL", "TOP"} <= set(capabilities)
    pop.stls(context=client_tls_context)
    assert "STLS" not in pop.capa()
    pop.user(mail_setup.user)
    pop.pass_(mail_setup.password)
    assert pop.stat()[0] == len(mail_setup.messages)
    assert mailgen.split_status(retrieve(pop, 2))[1] == mail_setup.messages[1]
    pop.quit()


def test_second_session_for_the_same_user_gets_in_use(mail_setup, start_pop3):
    """While one session holds the maildrop, a second login fails with -ERR [IN-USE]; after QUIT it works."""
    listener = start_pop3(mail_setup.config_path)
    first = login(listener, mail_setup)
    second = poplib.POP3(listener.host, listener.port, timeout=GUARD_SECONDS)
    second.user(mail_setup.user)
    with pytest.raises(poplib.error_proto) as refused:
        second.pass_(mail_setup.password)
    assert b"[IN-USE]" in refused.value.args[0]
    second.close()
    first.quit()
    third = login(listener, mail_setup)
    assert third.stat()[0] == len(mail_setup.messages)
    third.quit()


def test_session_on_an_inetd_socketpair(mail_setup, pop3_over_socketpair):
    """ipop3d with a socket pair on fd 0/1 (no TCP at all) logs in and serves the whole maildrop."""
    pop = pop3_over_socketpair(mail_setup.config_path)
    assert pop.getwelcome().startswith(b"+OK")
    pop.user(mail_setup.user)
    pop.pass_(mail_setup.password)
    assert pop.stat()[0] == len(mail_setup.messages)
    assert mailgen.split_status(retrieve(pop, 3))[1] == mail_setup.messages[2]
    pop.quit()


@needs_program("procmail")
def test_procmail_delivery_during_a_session_survives_its_expunge(mail_setup, start_pop3, tmp_path):
    """Mail procmail delivers while a session is open is kept when that session deletes message 1."""
    listener = start_pop3(mail_setup.config_path)
    pop = login(listener, mail_setup)
    count = len(mail_setup.messages)
    incoming, _, _ = mailgen.generate(1, seed=4155, first_number=count + 1)[0]
    deliver_with_procmail(tmp_path, mail_setup.spool, incoming)
    assert len(mail_setup.spool_messages()) == count + 1
    assert pop.stat()[0] == count  # the POP3 view is fixed for the session
    pop.dele(1)
    pop.quit()
    assert mail_setup.spool_messages() == mail_setup.messages[1:] + [mailgen.client_view(incoming)]


def _fetchmail_setup(tmp_path, listener, setup):
    """A HOME, an MDA writing one file per message, and a 0600 rcfile for fetchmail."""
    home = tmp_path / "fetchmail-home"
    home.mkdir(mode=0o700)
    script = write_delivery_script(tmp_path, tmp_path / "fetchmail-delivered")
    rcfile = home / "fetchmailrc"
    rcfile.write_text(
        "set invisible\n"
        "poll 127.0.0.1 with protocol pop3 port %d uidl\n"
        '    user "%s" there with password "%s" is "root" here\n'
        "    options no rewrite dropstatus sslproto '' mda \"%s\"\n"
        % (listener.port, setup.user, setup.password, script))
    rcfile.chmod(0o600)
    env = dict(os.environ, HOME=str(home), FETCHMAILHOME=str(home))
    return rcfile, env


def _fetchmail(rcfile, env, *options, ok_codes=(0,)):
    """Run fetchmail once; exit code 1 means "no mail" to fetchmail."""
    return run_client(["fetchmail", "-f", str(rcfile), "--nosyslog", "--idfile",
                       str(rcfile.parent / "fetchids"), *options], env=env, ok_codes=ok_codes)


@needs_program("fetchmail")
def test_fetchmail_keep_with_uidl_fetches_only_new_mail_then_flush_deletes_all(
        mail_setup, start_pop3, tmp_path):
    """fetchmail --keep with uidl fetches all, then nothing, then only new mail; --flush empties the spool."""
    listener = start_pop3(mail_setup.config_path)
    rcfile, env = _fetchmail_setup(tmp_path, listener, mail_setup)
    delivered = tmp_path / "fetchmail-delivered"
    _fetchmail(rcfile, env, "--keep")
    expected = [mailgen.to_lf(message) for message in mail_setup.messages]
    assert delivered_files(delivered) == expected
    _fetchmail(rcfile, env, "--keep", ok_codes=(1,))
    assert len(delivered_files(delivered)) == len(expected)
    added = mail_setup.append(1)
    _fetchmail(rcfile, env, "--keep")
    assert delivered_files(delivered) == expected + [mailgen.to_lf(added[0])]
    assert mail_setup.spool_messages() == mail_setup.messages
    _fetchmail(rcfile, env, "--flush", ok_codes=(0, 1))
    assert len(delivered_files(delivered)) == len(expected) + 1
    assert mail_setup.spool_messages() == []


def _mpop_config(tmp_path, listener, setup):
    """An mpop configuration file (mode 0600, it holds the password) delivering through an MDA."""
    script = write_delivery_script(tmp_path, tmp_path / "mpop-delivered")
    config = tmp_path / "mpoprc"
    config.write_text(
        "defaults\ntls off\nauth user\nreceived_header off\n"
        "uidls_file %s/mpop-uidls\n"
        "account test\nhost %s\nport %d\nuser %s\npassword %s\ndelivery mda %s\n"
        "account default : test\n"
        % (tmp_path, listener.host, listener.port, setup.user, setup.password, script))
    config.chmod(0o600)
    return config


@needs_program("mpop")
def test_mpop_keep_then_delete(mail_setup, start_pop3, tmp_path):
    """mpop with keep fetches every message intact and then nothing new; without keep it empties the spool."""
    listener = start_pop3(mail_setup.config_path)
    config = _mpop_config(tmp_path, listener, mail_setup)
    delivered = tmp_path / "mpop-delivered"
    run_client(["mpop", "-C", str(config), "-q", "--keep=on"])
    assert [without_status(m) for m in delivered_files(delivered)] == mail_setup.messages
    run_client(["mpop", "-C", str(config), "-q", "--keep=on"])
    assert len(delivered_files(delivered)) == len(mail_setup.messages)
    assert mail_setup.spool_messages() == mail_setup.messages
    run_client(["mpop", "-C", str(config), "-q", "--keep=off"])
    assert len(delivered_files(delivered)) == len(mail_setup.messages)
    assert mail_setup.spool_messages() == []


def _curl(listener, setup, path=""):
    url = "pop3://%s:%d/%s" % (listener.host, listener.port, path)
    return run_client(["curl", "--silent", "--show-error", "--user",
                       "%s:%s" % (setup.user, setup.password), url]).stdout


@needs_program("curl")
def test_curl_lists_the_maildrop(mail_setup, start_pop3):
    """`curl pop3://host:port/` prints the LIST of every message with its UW size."""
    listener = start_pop3(mail_setup.config_path)
    listing = _curl(listener, mail_setup)
    assert listing == b"".join(b"%d %d\r\n" % (n, len(m) + 12)
                               for n, m in enumerate(mail_setup.messages, 1))


@needs_program("curl")
def test_curl_retrieves_message_one_byte_identical(mail_setup, start_pop3):
    """`curl pop3://host:port/1` prints message 1 exactly (after its synthesized Status: line)."""
    listener = start_pop3(mail_setup.config_path)
    status, message = mailgen.split_status(_curl(listener, mail_setup, "1"))
    assert status is not None
    assert message == mail_setup.messages[0]
    assert mail_setup.spool_messages() == mail_setup.messages


def getmail_view(delivered_lf):
    """A getmail delivery in CRLF form without the Status: line, whose blanks getmail trims.

    getmail re-serializes every message with Python's email package, which
    strips trailing white space from header values (`Status:   ` arrives as `Status: `).
    """
    header, separator, body = delivered_lf.replace(b"\n", b"\r\n").partition(b"\r\n\r\n")
    lines = header.split(b"\r\n")
    assert re.fullmatch(rb"Status: ?[RO ]{0,2}", lines[-1]), lines[-1]
    return b"\r\n".join(lines[:-1]) + separator + body


def _user_maildir(setup):
    """An empty Maildir owned by the test user (getmail refuses to deliver as root)."""
    maildir = setup.root / "Maildir"
    for path in (maildir, maildir / "cur", maildir / "new", maildir / "tmp"):
        path.mkdir(mode=0o700)
        os.chown(path, setup.account.pw_uid, setup.account.pw_gid)
    return maildir


def _getmail_rc(tmp_path, listener, setup, maildir):
    """A getmail rcfile: SimplePOP3Retriever, Maildir destination, no added headers, keep mail."""
    rcfile = tmp_path / "getmailrc"
    rcfile.write_text(
        "[retriever]\ntype = SimplePOP3Retriever\nserver = %s\nport = %d\n"
        "username = %s\npassword = %s\n\n"
        "[destination]\ntype = Maildir\npath = %s/\nuser = %s\n\n"
        "[options]\nread_all = false\ndelete = false\nreceived = false\ndelivered_to = false\n"
        "message_log_syslog = false\nverbose = 0\n"
        % (listener.host, listener.port, setup.user, setup.password, maildir, setup.user))
    rcfile.chmod(0o600)
    return rcfile


@needs_program("getmail")
def test_getmail_downloads_everything_once(mail_setup, start_pop3, tmp_path):
    """getmail6 into a Maildir gets every message intact, then nothing new on the next run."""
    listener = start_pop3(mail_setup.config_path)
    maildir = _user_maildir(mail_setup)
    rcfile = _getmail_rc(tmp_path, listener, mail_setup, maildir)
    getmaildir = tmp_path / "getmail-state"
    getmaildir.mkdir()
    command = ["getmail", "--rcfile", str(rcfile), "--getmaildir", str(getmaildir)]
    run_client(command)
    received = sorted(getmail_view(p.read_bytes()) for p in (maildir / "new").iterdir())
    assert received == sorted(mail_setup.messages)
    run_client(command)
    assert len(list((maildir / "new").iterdir())) == len(mail_setup.messages)
    assert mail_setup.spool_messages() == mail_setup.messages
