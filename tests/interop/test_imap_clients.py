"""Real IMAP clients against the real imapd, started per connection by the listener as inetd does.

Each test checks what a user would check: the mail a client shows or copies is
byte for byte what the spool holds, flags and folders end up where the client
put them, and the spool afterwards holds exactly what it should. Fixtures are
in conftest.py, helpers shared with the POP3 tests in clienttools.py; the
mailbox generator is tests/mailgen.py.
"""

import datetime
import email
import email.policy
import email.utils
import imaplib
import os
import pty
import re
import select
import subprocess

import pytest

import mailgen
from clienttools import (GUARD_SECONDS, deliver_with_procmail, delivered_files, needs_program,
                         run_client, write_delivery_script)

FETCH_ITEMS = re.compile(rb"(UID|RFC822\.SIZE) (\d+)|FLAGS \(([^)]*)\)|INTERNALDATE \"([^\"]+)\"")
RESPONSE_CODE = re.compile(rb"\[([A-Z]+) ([^\]]*)\]")


# -- imaplib helpers ----------------------------------------------------------


def ok(response):
    """The data of an imaplib (type, data) reply, which must be OK."""
    kind, data = response
    assert kind == "OK", "expected OK, got %s %r" % (kind, data)
    return data


def imap_login(listener, setup):
    """An imaplib session through the listener, logged in with LOGIN."""
    client = imaplib.IMAP4(listener.host, listener.port, timeout=GUARD_SECONDS)
    ok(client.login(setup.user, setup.password))
    return client


def open_mailbox(client, mailbox, readonly=False):
    """SELECT (or EXAMINE) a mailbox and return its message count."""
    return int(ok(client.select(mailbox, readonly))[0])


def fetch_all(client, items="(UID FLAGS RFC822.SIZE BODY.PEEK[])", which="1:*"):
    """FETCH from the selected mailbox: {message number: {"UID", "FLAGS", "RFC822.SIZE", "BODY", ...}}."""
    result = {}
    for part in ok(client.fetch(which, items)):
        if part == b")":
            continue
        head, body = part if isinstance(part, tuple) else (part, None)
        number, _, rest = head.partition(b" ")
        result[int(number)] = parse_fetch_items(rest, body)
    return result


def parse_fetch_items(text, literal):
    """The items of one FETCH response (only those this file asks for)."""
    items = {}
    for match in FETCH_ITEMS.finditer(text):
        if match.group(1):
            items[match.group(1).decode()] = int(match.group(2))
        elif match.group(3) is not None:
            items["FLAGS"] = set(match.group(3).decode().split())
        else:
            items["INTERNALDATE"] = match.group(4).decode()
    if literal is not None:
        items["BODY"] = literal
    return items


def expand_set(text):
    """A sequence set without `*` (as in COPYUID) as the list of numbers it names, in order."""
    numbers = []
    for piece in text.split(","):
        low, _, high = piece.partition(":")
        numbers += range(int(low), int(high or low) + 1)
    return numbers


def remove_expunged(numbers, expunged):
    """Apply `* n EXPUNGE` replies in order: each names a message number at that moment (RFC 3501 §7.4.1)."""
    numbers = list(numbers)
    for number in expunged:
        assert 1 <= int(number) <= len(numbers), (number, numbers)
        del numbers[int(number) - 1]
    return numbers


def response_code(text, name):
    """The arguments of the response code `[name ...]` in a reply text, split at spaces."""
    for code, arguments in RESPONSE_CODE.findall(text):
        if code.decode() == name:
            return arguments.decode().split()
    raise AssertionError("no [%s] in %r" % (name, text))


def uid_search(client, *criteria):
    """UID SEARCH: the set of UIDs found."""
    return {int(uid) for uid in ok(client.uid("SEARCH", *criteria))[0].split()}


def list_names(client, pattern="*"):
    """LIST "" pattern: {mailbox name: set of attributes}."""
    names = {}
    for line in ok(client.list('""', pattern)):
        match = re.fullmatch(rb'\(([^)]*)\) (?:"[^"]*"|NIL) (.+)', line)
        assert match, line
        name = match.group(2).decode()
        names[name[1:-1] if name.startswith('"') else name] = set(match.group(1).decode().split())
    return names


def internaldate_instant(text):
    """An INTERNALDATE string as an aware datetime."""
    return datetime.datetime.strptime(text, "%d-%b-%Y %H:%M:%S %z")


def parsed(message):
    """A message parsed with the email package (for computing expected SEARCH results)."""
    return email.message_from_bytes(message, policy=email.policy.default)


def new_message(number, seed=4155):
    """A fresh message (stored LF form) that is not in the spool yet."""
    return mailgen.generate(1, seed=seed, first_number=number)[0][0]


def message_id(message):
    """The Message-ID header of a message (CRLF or LF form)."""
    match = re.search(rb"(?im)^Message-ID: *(<[^>\r\n]+>)", message)
    assert match, message[:300]
    return match.group(1).decode()


# -- imaplib --------------------------------------------------------------------


def test_imaplib_fetch_gives_every_spool_message_byte_identical(mail_setup, start_imap):
    """FETCH 1:* gives every spool message byte for byte, its RFC822.SIZE, UIDs 1..n and only \\Recent."""
    listener = start_imap(mail_setup.config_path)
    client = imap_login(listener, mail_setup)
    count = open_mailbox(client, "INBOX")
    assert count == len(mail_setup.messages)
    fetched = fetch_all(client)
    assert sorted(fetched) == list(range(1, count + 1))
    for number, message in enumerate(mail_setup.messages, 1):
        assert fetched[number] == {"UID": number, "FLAGS": {"\\Recent"}, "RFC822.SIZE": len(message),
                                   "BODY": message}
    client.logout()
    assert mail_setup.spool_messages() == mail_setup.messages


def test_imaplib_store_and_expunge_leave_exactly_the_rest_in_the_spool(mail_setup, start_imap):
    """STORE +FLAGS \\Deleted on three messages, then EXPUNGE, removes exactly those from the spool file."""
    listener = start_imap(mail_setup.config_path)
    client = imap_login(listener, mail_setup)
    open_mailbox(client, "INBOX")
    deleted = (2, 5, len(mail_setup.messages))
    for number in deleted:
        stored = ok(client.store(str(number), "+FLAGS", "(\\Deleted)"))
        assert len(stored) == 1 and stored[0].startswith(b"%d (" % number), stored
        assert parse_fetch_items(stored[0], None) == {"FLAGS": {"\\Recent", "\\Deleted"}}
    assert mail_setup.spool_messages() == mail_setup.messages
    expunged = ok(client.expunge())
    kept = [m for n, m in enumerate(mail_setup.messages, 1) if n not in deleted]
    assert remove_expunged(list(range(1, len(mail_setup.messages) + 1)), expunged) == [
        n for n in range(1, len(mail_setup.messages) + 1) if n not in deleted]
    assert mail_setup.spool_messages() == kept
    fetched = fetch_all(client)
    assert [fetched[n]["BODY"] for n in sorted(fetched)] == kept
    assert [fetched[n]["UID"] for n in sorted(fetched)] == [
        n for n in range(1, len(mail_setup.messages) + 1) if n not in deleted]
    client.logout()
    assert mail_setup.spool_messages() == kept


def test_imaplib_flags_persist_to_the_next_session(mail_setup, start_imap):
    """Flags and keywords stored in one session are what the next fetches (no \\Recent), under the same UIDs."""
    listener = start_imap(mail_setup.config_path)
    client = imap_login(listener, mail_setup)
    open_mailbox(client, "INBOX")
    validity = client.response("UIDVALIDITY")[1]
    ok(client.store("1", "+FLAGS", "(\\Seen \\Answered)"))
    ok(client.store("3", "+FLAGS", "(\\Flagged $Important)"))
    ok(client.store("4", "FLAGS", "(\\Draft)"))
    ok(client.store("4", "-FLAGS", "(\\Draft)"))
    client.logout()
    client = imap_login(listener, mail_setup)
    open_mailbox(client, "INBOX")
    assert client.response("UIDVALIDITY")[1] == validity
    fetched = fetch_all(client, "(UID FLAGS)")
    assert {n: item["UID"] for n, item in fetched.items()} == {n: n for n in fetched}
    flags = {n: item["FLAGS"] for n, item in fetched.items()}
    expected = {n: set() for n in range(1, len(mail_setup.messages) + 1)}
    expected.update({1: {"\\Seen", "\\Answered"}, 3: {"\\Flagged", "$Important"}})
    assert flags == expected
    client.logout()
    assert mail_setup.spool_messages() == mail_setup.messages


def test_imaplib_append_with_flags_and_date_is_fetched_back(mail_setup, start_imap):
    """APPEND with flags, a keyword and a date answers APPENDUID; a new session fetches them and the bytes."""
    listener = start_imap(mail_setup.config_path)
    client = imap_login(listener, mail_setup)
    ok(client.create("Sent"))
    message = mailgen.client_view(new_message(40))
    when = datetime.datetime(2025, 11, 21, 8, 30, 5, tzinfo=datetime.timezone(datetime.timedelta(hours=1)))
    reply = ok(client.append("Sent", "(\\Seen \\Flagged $Work)", imaplib.Time2Internaldate(when), message))
    validity, uid = response_code(reply[0], "APPENDUID")
    client.logout()
    client = imap_login(listener, mail_setup)
    assert open_mailbox(client, "Sent") == 1
    assert client.response("UIDVALIDITY")[1] == [validity.encode()]
    fetched = fetch_all(client, "(UID FLAGS INTERNALDATE RFC822.SIZE BODY.PEEK[])")
    item = fetched[1]
    assert internaldate_instant(item.pop("INTERNALDATE")) == when
    # RFC 3501 §6.3.11: "In either case, the Recent flag is also set."
    assert item == {"UID": int(uid), "FLAGS": {"\\Seen", "\\Flagged", "$Work", "\\Recent"},
                    "RFC822.SIZE": len(message), "BODY": message}
    client.logout()
    assert mail_setup.spool_messages() == mail_setup.messages


def large_message():
    """A 3 MB multipart, CRLF as a client sends it: a text part, then a base64
    attachment. Large enough to be spooled as it arrives, stored through pieces
    and read back in place. (No line starts with `From `: mbox stores it quoted,
    as UW does, and gives it back so.)"""
    import base64

    attachment = base64.encodebytes(bytes(range(256)) * 9000).replace(b"\n", b"\r\n")
    return (b"From: big@example.org\r\nSubject: large\r\nMIME-Version: 1.0\r\n"
            b"Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\n"
            b"Content-Type: text/plain\r\n\r\nHello from the quokka\r\n"
            b"--b\r\nContent-Type: application/octet-stream\r\n"
            b"Content-Transfer-Encoding: base64\r\n\r\n" + attachment + b"--b--\r\n")


def test_imaplib_large_append_copy_and_parts_are_exact(mail_setup, start_imap):
    """A 3 MB APPEND (its literal written to disk as it arrives), its parts, a body
    search and a COPY of it all give back the client's bytes exactly."""
    big = large_message()
    listener = start_imap(mail_setup.config_path)
    client = imap_login(listener, mail_setup)
    ok(client.create("Big"))
    ok(client.create("Copies"))
    ok(client.append("Big", None, None, big))
    assert open_mailbox(client, "Big") == 1
    assert fetch_all(client, "(RFC822.SIZE BODY.PEEK[])")[1] == {"RFC822.SIZE": len(big),
                                                                "BODY": big}
    part = ok(client.fetch("1", "(BODY.PEEK[2])"))[0][1]
    assert part == big[big.index(b"base64\r\n\r\n") + 10:big.index(b"--b--") - 2]
    structure = ok(client.fetch("1", "(BODYSTRUCTURE)"))[0]
    assert b'("APPLICATION" "OCTET-STREAM" NIL NIL NIL "BASE64" %d' % len(part) in structure
    assert ok(client.search(None, "BODY", "quokka")) == [b"1"]
    assert ok(client.search(None, "BODY", "wombat")) == [b""]
    ok(client.copy("1", "Copies"))
    assert open_mailbox(client, "Copies") == 1
    assert fetch_all(client, "(RFC822.SIZE BODY.PEEK[])")[1] == {"RFC822.SIZE": len(big),
                                                                "BODY": big}
    client.logout()


def test_large_literal_plus_multiappend_and_a_nul(mail_setup, start_imap):
    """MULTIAPPEND with LITERAL+ (a large literal between small ones) stores all three;
    a large literal holding NUL is refused (RFC 3501 §9) and stores nothing."""
    import socket

    big, small = large_message(), b"Subject: small\r\n\r\nsmall one\r\n"
    listener = start_imap(mail_setup.config_path)
    with socket.create_connection((listener.host, listener.port), timeout=GUARD_SECONDS) as sock:
        reader = sock.makefile("rb")
        reader.readline()
        sock.sendall(b"a LOGIN %s %s\r\n" % (mail_setup.user.encode(), mail_setup.password.encode()))
        assert reader.readline().startswith(b"a OK")
        sock.sendall(b"b CREATE Multi\r\nc APPEND Multi {%d+}\r\n%s {%d+}\r\n%s {%d+}\r\n%s\r\n"
                     % (len(small), small, len(big), big, len(small), small))
        assert reader.readline().startswith(b"b OK")
        assert reader.readline().startswith(b"c OK [APPENDUID ")
        nul = big.replace(b"Hello", b"He\0lo")
        sock.sendall(b"d APPEND Multi {%d+}\r\n%s\r\n" % (len(nul), nul))
        assert reader.readline().startswith(b"d BAD ")
        sock.sendall(b"e LOGOUT\r\n")
    client = imap_login(listener, mail_setup)
    assert open_mailbox(client, "Multi") == 3
    bodies = {n: item["BODY"] for n, item in fetch_all(client, "(BODY.PEEK[])").items()}
    assert bodies == {1: small, 2: big, 3: small}
    client.logout()


def test_imaplib_create_list_rename_delete_folders(mail_setup, start_imap):
    """CREATE, RENAME and DELETE (nested and UTF-7 names too) change LIST as asked; RENAME keeps the mail."""
    listener = start_imap(mail_setup.config_path)
    client = imap_login(listener, mail_setup)
    assert set(list_names(client)) == {"INBOX"}
    ok(client.create("Projects"))
    message = mailgen.client_view(new_message(30))
    ok(client.append("Projects", None, None, message))
    ok(client.create("Archive/2025"))
    assert set(list_names(client)) == {"INBOX", "Projects", "Archive", "Archive/2025"}
    assert set(list_names(client, "Archive/%")) == {"Archive/2025"}
    assert "\\HasChildren" in list_names(client, "Archive")["Archive"]
    assert client.create("Projects")[0] == "NO"
    ok(client.create('"Entw&APw-rfe"'))  # "Entwürfe" in modified UTF-7 (RFC 3501 §5.1.3)
    assert set(list_names(client, "Entw*")) == {"Entw&APw-rfe"}
    ok(client.delete('"Entw&APw-rfe"'))
    ok(client.rename("Projects", "Done"))
    assert set(list_names(client)) == {"INBOX", "Done", "Archive", "Archive/2025"}
    assert client.select("Projects")[0] == "NO"
    assert open_mailbox(client, "Done") == 1
    assert fetch_all(client, "(BODY.PEEK[])")[1]["BODY"] == message
    ok(client.close())
    ok(client.delete("Done"))
    ok(client.delete("Archive/2025"))
    assert set(list_names(client)) == {"INBOX", "Archive"}
    assert client.delete("Done")[0] == "NO"
    client.logout()
    assert mail_setup.spool_messages() == mail_setup.messages


def test_imaplib_rename_inbox_moves_its_mail_to_a_new_folder(mail_setup, start_imap):
    """RENAME INBOX moves all INBOX mail, intact, to a new folder and leaves INBOX empty (RFC 3501 §6.3.5)."""
    listener = start_imap(mail_setup.config_path)
    client = imap_login(listener, mail_setup)
    ok(client.rename("INBOX", "Old-mail"))
    assert set(list_names(client)) == {"INBOX", "Old-mail"}
    assert open_mailbox(client, "INBOX") == 0
    assert open_mailbox(client, "Old-mail") == len(mail_setup.messages)
    fetched = fetch_all(client, "(BODY.PEEK[])")
    assert [fetched[n]["BODY"] for n in sorted(fetched)] == mail_setup.messages
    client.logout()
    assert mail_setup.spool_messages() == []


def test_imaplib_copy_and_move_answer_copyuid_and_carry_the_bytes(mail_setup, start_imap):
    """COPY and UID MOVE answer COPYUID; the folder holds those messages intact, and MOVE removed its source."""
    listener = start_imap(mail_setup.config_path)
    client = imap_login(listener, mail_setup)
    ok(client.create("Work"))
    open_mailbox(client, "INBOX")
    copied = ok(client.copy("1:2", "Work"))  # message numbers 1 and 2 are UIDs 1 and 2
    validity, sources, targets = response_code(copied[-1], "COPYUID")
    assert expand_set(sources) == [1, 2]
    copy_targets = expand_set(targets)
    client.response("COPYUID")  # imaplib also files the tagged reply's code; forget it
    ok(client.uid("MOVE", "3,7", "Work"))
    moved_code = client.response("COPYUID")[1]
    assert len(moved_code) == 1, moved_code
    moved_validity, moved_sources, moved_targets = moved_code[0].decode().split()
    assert moved_validity == validity and expand_set(moved_sources) == [3, 7]
    assert remove_expunged(range(1, len(mail_setup.messages) + 1), client.response("EXPUNGE")[1]) == [
        n for n in range(1, len(mail_setup.messages) + 1) if n not in (3, 7)]
    kept = [m for n, m in enumerate(mail_setup.messages, 1) if n not in (3, 7)]
    assert mail_setup.spool_messages() == kept
    assert open_mailbox(client, "Work") == 4
    assert client.response("UIDVALIDITY")[1] == [validity.encode()]
    fetched = fetch_all(client)
    by_uid = {item["UID"]: item["BODY"] for item in fetched.values()}
    expected = dict(zip(copy_targets + expand_set(moved_targets),
                        [mail_setup.messages[n - 1] for n in (1, 2, 3, 7)]))
    assert by_uid == expected
    client.logout()
    assert mail_setup.spool_messages() == kept


def test_imaplib_uid_search_by_subject_from_body_and_date(mail_setup, start_imap):
    """UID SEARCH SUBJECT, FROM, BODY (ASCII and UTF-8), SINCE and BEFORE find exactly the matching mail."""
    listener = start_imap(mail_setup.config_path)
    client = imap_login(listener, mail_setup)
    open_mailbox(client, "INBOX", readonly=True)
    messages = [parsed(message) for message in mail_setup.messages]
    uids = range(1, len(messages) + 1)

    def where(predicate):
        return {uid for uid, message in zip(uids, messages) if predicate(message)}

    def body_text(message):
        parts = message.walk()
        return "\n".join(part.get_content() for part in parts if part.get_content_type() == "text/plain")

    assert uid_search(client, "SUBJECT", '"message 7 about"') == {7}
    assert uid_search(client, "SUBJECT", "FOLDED") == set(uids)
    grace = where(lambda m: "grace@example.net" in str(m["From"]))
    assert grace and grace != set(uids)
    assert uid_search(client, "FROM", "grace@example.net") == grace
    minutes = where(lambda m: "from the minutes" in body_text(m).lower())
    assert minutes and minutes != set(uids)
    assert uid_search(client, "BODY", '"from the minutes"') == minutes
    assert uid_search(client, "BODY", '"meeting 6:"') == {6}
    zurich = where(lambda m: "Zürich" in body_text(m))
    assert zurich and zurich != set(uids)
    client.literal = "Zürich".encode("utf-8")
    assert uid_search(client, "CHARSET", "UTF-8", "BODY") == zurich
    # mailgen dates the From_ line (the internal date) as the Date: header, both in UTC.
    since = where(lambda m: email.utils.parsedate_to_datetime(str(m["Date"])).date()
                  >= datetime.date(2025, 11, 21))
    assert since and since != set(uids)
    assert uid_search(client, "SINCE", "21-Nov-2025") == since
    assert uid_search(client, "BEFORE", "21-Nov-2025") == set(uids) - since
    assert uid_search(client, "SINCE", "21-Nov-2025", "FROM", "grace@example.net") == since & grace
    client.logout()


def test_imaplib_two_sessions_see_each_others_changes(mail_setup, start_imap):
    """NOOP in one session reports another's EXPUNGE and flag change, then new mail as EXISTS (RFC 2180)."""
    listener = start_imap(mail_setup.config_path)
    first, second = imap_login(listener, mail_setup), imap_login(listener, mail_setup)
    count = open_mailbox(first, "INBOX")
    assert open_mailbox(second, "INBOX") == count
    ok(first.store("1", "+FLAGS", "(\\Deleted)"))
    ok(first.store("2", "+FLAGS", "(\\Flagged)"))
    assert ok(first.expunge()) == [b"1"]
    ok(second.noop())
    assert second.response("EXPUNGE")[1] == [b"1"]
    assert second.response("FETCH")[1] == [b"1 (FLAGS (\\Flagged))"]
    added = mail_setup.append(1)[0]
    ok(second.noop())
    assert second.response("EXISTS")[1][-1] == b"%d" % count
    fetched = fetch_all(second, "(UID FLAGS BODY.PEEK[])")
    assert [fetched[n]["BODY"] for n in sorted(fetched)] == mail_setup.messages[1:]
    assert [fetched[n]["UID"] for n in sorted(fetched)] == list(range(2, count + 2))
    assert fetched[1]["FLAGS"] == {"\\Flagged"}
    ok(first.noop())
    assert first.response("EXISTS")[1][-1] == b"%d" % count
    assert fetch_all(first, "(BODY.PEEK[])", str(count))[count]["BODY"] == added
    first.logout()
    second.logout()
    assert mail_setup.spool_messages() == mail_setup.messages[1:]


def test_imaplib_saved_results_sorted_results_and_updates(mail_setup, start_imap):
    """imaplib drives SEARCHRES `$`, ESORT and CONTEXT=SEARCH updates on a real spool, then plain SEARCH still works."""
    listener = start_imap(mail_setup.config_path)
    client = imap_login(listener, mail_setup)
    advertised = ok(client.capability())[0].split()
    for name in (b"SEARCHRES", b"ESORT", b"CONTEXT=SEARCH", b"CONTEXT=SORT", b"SORT=DISPLAY"):
        assert name in advertised
    count = open_mailbox(client, "INBOX")
    grace = [uid for uid, message in enumerate(mail_setup.messages, 1)
             if "grace@example.net" in str(parsed(message)["From"])]
    assert grace and len(grace) < count
    ok(client.uid("SEARCH", "RETURN", "(SAVE)", "FROM", "grace@example.net"))
    assert sorted(item["UID"] for item in fetch_all(client, "(UID)", "$").values()) == grace
    ok(client.uid("SORT", "RETURN", "(ALL COUNT)", "(REVERSE ARRIVAL)", "UTF-8", "UID", "$"))
    esort = client.response("ESEARCH")[1][-1].decode()
    dates = {uid: email.utils.parsedate_to_datetime(str(parsed(mail_setup.messages[uid - 1])["Date"]))
             for uid in grace}
    newest_first = sorted(grace, key=lambda uid: (-dates[uid].timestamp(), uid))
    assert esort == '(TAG "%s") UID ALL %s COUNT %d' % (
        client.tagpre.decode() + str(client.tagnum - 1), ",".join(map(str, newest_first)),
        len(grace))
    ok(client.uid("SEARCH", "RETURN", "(UPDATE COUNT)", "UNSEEN"))
    update_tag = client.tagpre.decode() + str(client.tagnum - 1)
    assert client.response("ESEARCH")[1][-1] == b'(TAG "%s") UID COUNT %d' % (
        update_tag.encode(), count)
    mail_setup.append(1)
    ok(client.noop())
    assert client.response("ESEARCH")[1][-1] == b'(TAG "%s") UID ADDTO (0 %d)' % (
        update_tag.encode(), count + 1)
    ok(client.store("1", "+FLAGS", "(\\Seen)"))
    assert client.response("ESEARCH")[1][-1] == b'(TAG "%s") UID REMOVEFROM (0 1)' % (
        update_tag.encode())
    ok(client.xatom("CANCELUPDATE", '"%s"' % update_tag))
    ok(client.store("2", "+FLAGS", "(\\Seen)"))
    assert client.response("ESEARCH") == ("ESEARCH", [None])
    assert ok(client.search(None, "UNSEEN"))[0].split() == [b"%d" % n for n in range(3, count + 2)]
    client.logout()


@needs_program("procmail")
def test_imaplib_idle_reports_mail_procmail_delivers(mail_setup, start_imap, tmp_path):
    """During IDLE, mail procmail appends to the spool is announced as `* 13 EXISTS` and then fetched intact."""
    listener = start_imap(mail_setup.config_path)
    client = imap_login(listener, mail_setup)
    count = open_mailbox(client, "INBOX")
    tag = client._new_tag()
    client.send(tag + b" IDLE\r\n")
    assert client.readline().startswith(b"+ ")
    incoming = new_message(count + 1)
    deliver_with_procmail(tmp_path, mail_setup.spool, incoming)
    exists = b"* %d EXISTS\r\n" % (count + 1)
    replies = []
    while exists not in replies:
        replies.append(client.readline())  # the socket timeout (GUARD_SECONDS) guards against a hang
        assert replies[-1].startswith(b"* "), replies
    client.send(b"DONE\r\n")
    while not replies[-1].startswith(tag + b" "):
        replies.append(client.readline())
    assert replies[-1] == tag + b" OK IDLE terminated\r\n"
    # All messages are \Recent in this first session, the new one too.
    assert sorted(replies[:-1]) == [exists, b"* %d RECENT\r\n" % (count + 1)]
    fetched = fetch_all(client, which=str(count + 1))
    assert fetched[count + 1]["BODY"] == mailgen.client_view(incoming)
    assert fetched[count + 1]["UID"] == count + 1
    client.logout()
    assert mail_setup.spool_messages() == mail_setup.messages + [mailgen.client_view(incoming)]


def test_imaplib_starttls_upgrades_a_plain_connection(mail_setup, start_imap, tls_certificate,
                                                      client_tls_context):
    """A plain listener with a certificate offers STARTTLS; after it imaplib logs in and fetches over TLS."""
    cert, key = tls_certificate
    config = mail_setup.write_config(ssl_cert_file=cert, ssl_key_file=key)
    listener = start_imap(config)
    client = imaplib.IMAP4(listener.host, listener.port, timeout=GUARD_SECONDS)
    assert "STARTTLS" in client.capabilities
    ok(client.starttls(ssl_context=client_tls_context))
    assert client.sock.version() is not None
    assert "STARTTLS" not in client.capabilities
    assert "AUTH=PLAIN" in client.capabilities
    ok(client.login(mail_setup.user, mail_setup.password))
    open_mailbox(client, "INBOX")
    assert fetch_all(client, which="2")[2]["BODY"] == mail_setup.messages[1]
    client.logout()


def test_imaplib_imap4_ssl_on_an_implicit_tls_listener(mail_setup, start_imap, tls_certificate,
                                                       client_tls_context):
    """IMAP4_SSL verifies the certificate of `imapd --tls` (imaps), sees no STARTTLS, and fetches intact."""
    cert, key = tls_certificate
    config = mail_setup.write_config(ssl_cert_file=cert, ssl_key_file=key)
    listener = start_imap(config, "--tls")
    client = imaplib.IMAP4_SSL(listener.host, listener.port, ssl_context=client_tls_context,
                               timeout=GUARD_SECONDS)
    assert "STARTTLS" not in client.capabilities
    ok(client.login(mail_setup.user, mail_setup.password))
    assert open_mailbox(client, "INBOX") == len(mail_setup.messages)
    fetched = fetch_all(client)
    assert [fetched[n]["BODY"] for n in sorted(fetched)] == mail_setup.messages
    client.logout()


# -- imapclient -------------------------------------------------------------------


def imapclient_login(listener, setup):
    """An IMAPClient session (it uses UID commands throughout) logged in with LOGIN."""
    imapclient = pytest.importorskip("imapclient", reason="pip install imapclient (the test extra)")
    client = imapclient.IMAPClient(listener.host, port=listener.port, ssl=False, timeout=GUARD_SECONDS)
    client.login(setup.user, setup.password)
    return client


def test_imapclient_fetch_flags_and_search(mail_setup, start_imap):
    """IMAPClient fetches every message intact by UID, sets and clears flags, and searches by flag and text."""
    client = imapclient_login(start_imap(mail_setup.config_path), mail_setup)
    count = len(mail_setup.messages)
    selected = client.select_folder("INBOX")
    assert (selected[b"EXISTS"], selected[b"UIDNEXT"]) == (count, count + 1)
    assert client.search() == list(range(1, count + 1))
    fetched = client.fetch(client.search(), ["FLAGS", "RFC822.SIZE", "BODY.PEEK[]"])
    assert sorted(fetched) == list(range(1, count + 1))
    for uid, message in enumerate(mail_setup.messages, 1):
        item = fetched[uid]
        assert (item[b"BODY[]"], item[b"RFC822.SIZE"], set(item[b"FLAGS"])) == (
            message, len(message), {b"\\Recent"})
    added = client.add_flags([2, 4], [b"\\Seen", b"\\Flagged"])
    assert set(added[2]) == {b"\\Recent", b"\\Seen", b"\\Flagged"}
    client.remove_flags([4], [b"\\Flagged"])
    assert {uid: set(flags) for uid, flags in client.get_flags([1, 2, 4]).items()} == {
        1: {b"\\Recent"}, 2: {b"\\Recent", b"\\Seen", b"\\Flagged"}, 4: {b"\\Recent", b"\\Seen"}}
    assert client.search(["SEEN"]) == [2, 4]
    assert client.search(["FLAGGED"]) == [2]
    assert client.search(["UNSEEN", "SUBJECT", "message 1"]) == [1, 10, 11, 12]
    grace = [uid for uid, message in enumerate(mail_setup.messages, 1)
             if "Grace Hopper" in str(parsed(message)["From"])]
    assert grace and client.search(["FROM", "Grace Hopper"]) == grace
    client.logout()
    assert mail_setup.spool_messages() == mail_setup.messages


def test_imapclient_folders_and_append(mail_setup, start_imap):
    """IMAPClient creates and lists a folder, appends to it with a flag and a date, and reads it back."""
    client = imapclient_login(start_imap(mail_setup.config_path), mail_setup)
    client.create_folder("Drafts")
    assert sorted(name for _, _, name in client.list_folders()) == ["Drafts", "INBOX"]
    assert client.folder_exists("Drafts") and not client.folder_exists("Nowhere")
    message = mailgen.client_view(new_message(50))
    when = datetime.datetime(2025, 12, 1, 17, 45, 0, tzinfo=datetime.timezone.utc)
    reply = client.append("Drafts", message, flags=[b"\\Draft"], msg_time=when)
    validity, uid = response_code(reply, "APPENDUID")
    assert client.folder_status("Drafts", ["MESSAGES", "UIDVALIDITY"]) == {
        b"MESSAGES": 1, b"UIDVALIDITY": int(validity)}
    client.select_folder("Drafts", readonly=True)
    item = client.fetch([int(uid)], ["FLAGS", "INTERNALDATE", "BODY.PEEK[]"])[int(uid)]
    assert item[b"BODY[]"] == message
    assert set(item[b"FLAGS"]) == {b"\\Draft", b"\\Recent"}  # RFC 3501 §6.3.11: APPEND sets \Recent
    assert item[b"INTERNALDATE"].astimezone(datetime.timezone.utc) == when
    client.logout()
    assert mail_setup.spool_messages() == mail_setup.messages


@needs_program("procmail")
def test_imapclient_idle_check_sees_new_mail(mail_setup, start_imap, tmp_path):
    """IMAPClient.idle_check returns EXISTS for mail procmail delivers during IDLE; the mail fetches intact."""
    client = imapclient_login(start_imap(mail_setup.config_path), mail_setup)
    count = client.select_folder("INBOX")[b"EXISTS"]
    client.idle()
    incoming = new_message(count + 1, seed=5150)
    deliver_with_procmail(tmp_path, mail_setup.spool, incoming)
    responses = client.idle_check(timeout=GUARD_SECONDS)  # a guard against a hang, not a measurement
    assert (count + 1, b"EXISTS") in responses, responses
    client.idle_done()
    assert client.fetch([count + 1], ["BODY.PEEK[]"])[count + 1][b"BODY[]"] == mailgen.client_view(incoming)
    client.logout()


# -- two-way sync: mbsync, offlineimap ----------------------------------------------

MAILDIR_FLAGS = {"D": "\\Draft", "F": "\\Flagged", "R": "\\Answered", "S": "\\Seen", "T": "\\Deleted"}


def without_header(message, name=None):
    """A CRLF message without the header lines called `name`, which a sync client adds for itself."""
    if name is None:
        return message
    header, separator, body = message.partition(b"\r\n\r\n")
    kept = [line for line in header.split(b"\r\n") if not line.lower().startswith(name.lower() + b":")]
    return b"\r\n".join(kept) + separator + body


def server_folder(listener, setup, folder, added_header=None):
    """A folder read with EXAMINE: [(Message-ID, flags but \\Recent, CRLF bytes without `added_header`)]."""
    client = imap_login(listener, setup)
    count = open_mailbox(client, folder, readonly=True)
    fetched = fetch_all(client, "(FLAGS BODY.PEEK[])") if count else {}
    client.logout()
    return sorted((message_id(item["BODY"]), item["FLAGS"] - {"\\Recent"},
                   without_header(item["BODY"], added_header)) for item in fetched.values())


def maildir_folder(path, added_header=None):
    """A Maildir's messages: [(Message-ID, flags from the file name, CRLF bytes without `added_header`)]."""
    messages = []
    for sub in ("new", "cur"):
        for entry in (path / sub).iterdir():
            data = without_header(mailgen.client_view(entry.read_bytes()), added_header)
            flags = {MAILDIR_FLAGS[letter] for letter in entry.name.partition(":2,")[2]}
            messages.append((message_id(data), flags, data))
    return sorted(messages)


def set_maildir_flags(folder, wanted_id, letters):
    """Give the Maildir message with Message-ID `wanted_id` exactly these flags, as a mail reader does."""
    for sub in ("new", "cur"):
        for entry in (folder / sub).iterdir():
            if message_id(entry.read_bytes()) == wanted_id:
                entry.rename(folder / "cur" / (entry.name.partition(":2,")[0] + ":2," + letters))
                return
    raise AssertionError("%s is not in %s" % (wanted_id, folder))


def deliver_to_maildir(folder, message, name):
    """Write a message (LF form) into a Maildir's new/ as a local delivery agent does."""
    (folder / "tmp" / name).write_bytes(message)
    os.rename(folder / "tmp" / name, folder / "new" / name)


def add_folder_with(listener, setup, folder, messages):
    """CREATE a folder on the server and APPEND the given CRLF messages to it."""
    client = imap_login(listener, setup)
    ok(client.create(folder))
    for message in messages:
        ok(client.append(folder, None, None, message))
    client.logout()


def entries(messages, flags=None):
    """Expected sync results: [(Message-ID, flags, CRLF bytes)], sorted like server_folder's."""
    flags = flags or {}
    return sorted((message_id(m), flags.get(message_id(m), set()), m) for m in messages)


def _mbsync_config(tmp_path, listener, setup, local):
    """An mbsyncrc: plain IMAP with LOGIN, Maildir near side, everything created and expunged both ways."""
    config = tmp_path / "mbsyncrc"
    config.write_text(
        "IMAPAccount test\nHost %s\nPort %d\nUser %s\nPass %s\nSSLType None\nAuthMechs LOGIN\n"
        "Timeout %d\n\n"
        "IMAPStore remote\nAccount test\n\n"
        "MaildirStore local\nPath %s/\nInbox %s/INBOX\nSubFolders Verbatim\n\n"
        "Channel test\nFar :remote:\nNear :local:\nPatterns INBOX Work\n"
        "Create Both\nExpunge Both\nSync All\nSyncState *\n"
        % (listener.host, listener.port, setup.user, setup.password, GUARD_SECONDS, local, local))
    config.chmod(0o600)
    return config


@needs_program("mbsync", "isync")
def test_mbsync_two_way_sync_of_inbox_and_a_folder(mail_setup, start_imap, tmp_path):
    """mbsync mirrors INBOX and a folder to a Maildir, then syncs flags, deletions and new mail both ways."""
    listener = start_imap(mail_setup.config_path)
    work = [mailgen.client_view(new_message(60)), mailgen.client_view(new_message(61))]
    add_folder_with(listener, mail_setup, "Work", work)
    local = tmp_path / "Mail"
    local.mkdir()
    config = _mbsync_config(tmp_path, listener, mail_setup, local)
    env = dict(os.environ, HOME=str(tmp_path))
    run_client(["mbsync", "-c", str(config), "-a"], env=env)
    inbox = list(mail_setup.messages)
    assert maildir_folder(local / "INBOX", b"X-TUID") == entries(inbox)
    assert maildir_folder(local / "Work", b"X-TUID") == entries(work)

    # Changes on both sides: flags and a new message locally; a deletion, a flag and new mail remotely.
    flagged_id, seen_id = message_id(inbox[2]), message_id(inbox[3])
    set_maildir_flags(local / "INBOX", flagged_id, "F")
    set_maildir_flags(local / "INBOX", seen_id, "S")
    local_new = new_message(70)
    deliver_to_maildir(local / "INBOX", local_new, "1700000000.1_1.localhost")
    local_work = new_message(71)
    deliver_to_maildir(local / "Work", local_work, "1700000000.2_1.localhost")
    client = imap_login(listener, mail_setup)
    open_mailbox(client, "INBOX")
    ok(client.store("5", "+FLAGS", "(\\Deleted)"))
    ok(client.store("6", "+FLAGS", "(\\Answered)"))
    ok(client.expunge())
    remote_work = mailgen.client_view(new_message(72))
    ok(client.append("Work", None, None, remote_work))
    client.logout()
    remote_new = mail_setup.append(1)[0]

    run_client(["mbsync", "-c", str(config), "-a"], env=env)
    expected_inbox = entries([m for n, m in enumerate(inbox, 1) if n != 5]
                             + [remote_new, mailgen.client_view(local_new)],
                             {flagged_id: {"\\Flagged"}, seen_id: {"\\Seen"},
                              message_id(inbox[5]): {"\\Answered"}})
    expected_work = entries(work + [remote_work, mailgen.client_view(local_work)])
    for _ in range(2):  # the second round changes nothing
        # mbsync marks what it uploads with an X-TUID: header, to find it again.
        assert server_folder(listener, mail_setup, "INBOX", b"X-TUID") == expected_inbox
        assert maildir_folder(local / "INBOX", b"X-TUID") == expected_inbox
        assert server_folder(listener, mail_setup, "Work", b"X-TUID") == expected_work
        assert maildir_folder(local / "Work", b"X-TUID") == expected_work
        run_client(["mbsync", "-c", str(config), "-a"], env=env)
    assert sorted(without_header(m, b"X-TUID") for m in mail_setup.spool_messages()) == sorted(
        entry[2] for entry in expected_inbox)


def _offlineimap_config(tmp_path, listener, setup, local):
    """An offlineimaprc: plain IMAP (no SSL, no STARTTLS), a Maildir, state files in tmp_path."""
    config = tmp_path / "offlineimaprc"
    config.write_text(
        "[general]\naccounts = test\nmetadata = %s/offlineimap-state\nfsync = false\n\n"
        "[Account test]\nlocalrepository = local\nremoterepository = remote\n\n"
        "[Repository local]\ntype = Maildir\nlocalfolders = %s\n\n"
        "[Repository remote]\ntype = IMAP\nremotehost = %s\nremoteport = %d\n"
        "remoteuser = %s\nremotepass = %s\nssl = no\nstarttls = no\ntimeout = %d\n"
        % (tmp_path, local, listener.host, listener.port, setup.user, setup.password, GUARD_SECONDS))
    config.chmod(0o600)
    return config


def _offlineimap(config, tmp_path):
    """One offlineimap run; it can exit 0 after a folder failed, so its report must show no error."""
    result = run_client(["offlineimap", "-c", str(config), "-o", "-u", "basic"],
                        env=dict(os.environ, HOME=str(tmp_path)))
    output = (result.stdout + result.stderr).decode(errors="replace")
    assert "ERROR" not in output and "Traceback" not in output, output


def maildir_file_names(path):
    """Every message file name in a Maildir tree (they change when a sync rewrites anything)."""
    return sorted(str(entry.relative_to(path)) for entry in path.glob("*/*/*"))


@needs_program("offlineimap", "offlineimap3")
def test_offlineimap_mirrors_folders_then_syncs_only_changes(mail_setup, start_imap, tmp_path):
    """offlineimap mirrors two folders intact, changes nothing on a rerun, then uploads a flag and a message."""
    listener = start_imap(mail_setup.config_path)
    work = [mailgen.client_view(new_message(80))]
    add_folder_with(listener, mail_setup, "Work", work)
    local = tmp_path / "OfflineMail"
    config = _offlineimap_config(tmp_path, listener, mail_setup, local)
    _offlineimap(config, tmp_path)
    assert maildir_folder(local / "INBOX") == entries(mail_setup.messages)
    assert maildir_folder(local / "Work") == entries(work)
    names = maildir_file_names(local)
    _offlineimap(config, tmp_path)
    assert maildir_file_names(local) == names
    assert server_folder(listener, mail_setup, "INBOX") == entries(mail_setup.messages)

    flagged_id = message_id(mail_setup.messages[0])
    set_maildir_flags(local / "INBOX", flagged_id, "FS")
    local_new = new_message(81)
    deliver_to_maildir(local / "Work", local_new, "1700000000.3_1.localhost")
    _offlineimap(config, tmp_path)
    expected_inbox = entries(mail_setup.messages, {flagged_id: {"\\Flagged", "\\Seen"}})
    expected_work = entries(work + [mailgen.client_view(local_new)])
    assert server_folder(listener, mail_setup, "INBOX") == expected_inbox
    assert server_folder(listener, mail_setup, "Work") == expected_work
    assert maildir_folder(local / "INBOX") == expected_inbox
    assert maildir_folder(local / "Work") == expected_work
    assert mail_setup.spool_messages() == mail_setup.messages


# -- fetchmail, curl, mutt ---------------------------------------------------------


def _fetchmail_setup(tmp_path, listener, setup):
    """A HOME, an MDA writing one file per message, and a 0600 rcfile polling with IMAP."""
    home = tmp_path / "fetchmail-home"
    home.mkdir(mode=0o700)
    script = write_delivery_script(tmp_path, tmp_path / "fetchmail-delivered")
    rcfile = home / "fetchmailrc"
    rcfile.write_text(
        "set invisible\n"
        "poll 127.0.0.1 with protocol imap port %d\n"
        '    user "%s" there with password "%s" is "root" here\n'
        "    options no rewrite sslproto '' mda \"%s\"\n"
        % (listener.port, setup.user, setup.password, script))
    rcfile.chmod(0o600)
    env = dict(os.environ, HOME=str(home), FETCHMAILHOME=str(home))
    return rcfile, env


def _fetchmail(rcfile, env, *options, ok_codes=(0,)):
    """Run fetchmail once over IMAP; exit code 1 means "no mail" to fetchmail."""
    return run_client(["fetchmail", "-f", str(rcfile), "--nosyslog", "--protocol", "imap", *options],
                      env=env, ok_codes=ok_codes)


@needs_program("fetchmail")
def test_fetchmail_imap_keep_fetches_unseen_once_then_flush_deletes_all(mail_setup, start_imap, tmp_path):
    """fetchmail --keep over IMAP delivers all mail intact, marked seen, then only new mail; --flush deletes."""
    listener = start_imap(mail_setup.config_path)
    rcfile, env = _fetchmail_setup(tmp_path, listener, mail_setup)
    delivered = tmp_path / "fetchmail-delivered"
    _fetchmail(rcfile, env, "--keep")
    expected = [mailgen.to_lf(message) for message in mail_setup.messages]
    assert delivered_files(delivered) == expected
    assert server_folder(listener, mail_setup, "INBOX") == entries(
        mail_setup.messages, {message_id(m): {"\\Seen"} for m in mail_setup.messages})
    _fetchmail(rcfile, env, "--keep", ok_codes=(1,))
    assert len(delivered_files(delivered)) == len(expected)
    added = mail_setup.append(1)
    _fetchmail(rcfile, env, "--keep")
    assert delivered_files(delivered) == expected + [mailgen.to_lf(added[0])]
    assert mail_setup.spool_messages() == mail_setup.messages
    _fetchmail(rcfile, env, "--flush", ok_codes=(0, 1))
    assert len(delivered_files(delivered)) == len(expected) + 1
    assert mail_setup.spool_messages() == []


def _curl(listener, setup, path=""):
    """Run curl on imap://host:port/path as the test user; return what it printed."""
    url = "imap://%s:%d/%s" % (listener.host, listener.port, path)
    return run_client(["curl", "--silent", "--show-error", "--user",
                       "%s:%s" % (setup.user, setup.password), url]).stdout


@needs_program("curl")
def test_curl_lists_folders(mail_setup, start_imap):
    """`curl imap://host:port/` prints one LIST line per folder, and `.../Archive/` only that subtree."""
    listener = start_imap(mail_setup.config_path)
    client = imap_login(listener, mail_setup)
    ok(client.create("Work"))
    ok(client.create("Archive/2025"))
    client.logout()
    line = re.compile(rb'\* LIST \(([^)]*)\) "/" ("?)([^"\r\n]+)\2\r\n')
    listing = _curl(listener, mail_setup)
    names = [match.group(3) for match in line.finditer(listing)]
    assert b"".join(match.group(0) for match in line.finditer(listing)) == listing
    assert sorted(names) == [b"Archive", b"Archive/2025", b"INBOX", b"Work"]
    subtree = [match.group(3) for match in line.finditer(_curl(listener, mail_setup, "Archive/"))]
    assert sorted(subtree) == [b"Archive", b"Archive/2025"]


@needs_program("curl")
def test_curl_fetches_each_message_by_uid_byte_identical(mail_setup, start_imap):
    """`curl imap://host:port/INBOX;UID=n` prints message n exactly; its FETCH sets \\Seen on it only."""
    listener = start_imap(mail_setup.config_path)
    for uid, message in enumerate(mail_setup.messages, 1):
        if uid % 2:
            assert _curl(listener, mail_setup, "INBOX;UID=%d" % uid) == message
    assert _curl(listener, mail_setup, "INBOX?SUBJECT%20%22message%207%20about%22") == b"* SEARCH 7\r\n"
    assert server_folder(listener, mail_setup, "INBOX") == entries(
        mail_setup.messages, {message_id(m): {"\\Seen"} for m in mail_setup.messages[::2]})
    assert mail_setup.spool_messages() == mail_setup.messages


def run_in_terminal(command, env):
    """Run a full-screen program on a pseudo-terminal; return its exit code and screen output."""
    master, slave = pty.openpty()
    with subprocess.Popen(command, stdin=slave, stdout=slave, stderr=slave, env=env) as process:
        os.close(slave)
        screen = b""
        try:
            while select.select([master], [], [], GUARD_SECONDS)[0]:  # a guard against a hang
                data = os.read(master, 65536)
                if not data:
                    break
                screen += data
        except OSError:
            pass  # EIO: the program closed the terminal
        finally:
            os.close(master)
            if process.poll() is None:
                process.kill()
    return process.returncode, screen.decode(errors="replace")


def _muttrc(tmp_path, listener, setup):
    """A muttrc for plain IMAP with LOGIN credentials, no caches and no questions asked."""
    rcfile = tmp_path / "muttrc"
    rcfile.write_text(
        'set imap_user = "%s"\nset imap_pass = "%s"\nset folder = "imap://%s:%d/"\n'
        "set ssl_starttls = no\nset ssl_force_tls = no\nset imap_peek = yes\n"
        "set mbox_type = mbox\nset confirmappend = no\nset confirmcreate = no\n"
        "set move = no\nset delete = yes\nset quit = yes\nset mark_old = no\n"
        'set header_cache = ""\nset message_cachedir = ""\n'
        % (setup.user, setup.password, listener.host, listener.port))
    rcfile.chmod(0o600)
    return rcfile


@needs_program("mutt")
def test_mutt_copies_all_mail_out_then_deletes_and_flags_on_the_server(mail_setup, start_imap, tmp_path):
    """mutt on a pseudo-terminal copies all mail intact to an mbox, then deletes and flags on the server."""
    listener = start_imap(mail_setup.config_path)
    saved = tmp_path / "saved.mbox"
    keys = ("<tag-pattern>~A<enter><tag-prefix><copy-message>%s<enter><untag-pattern>~A<enter>"
            "<delete-pattern>~s message.2.about<enter>"
            "<tag-pattern>~s message.3.about<enter><tag-prefix><flag-message>"
            "<sync-mailbox><quit>" % saved)
    command = ["mutt", "-n", "-F", str(_muttrc(tmp_path, listener, mail_setup)),
               "-f", "imap://%s:%d/INBOX" % (listener.host, listener.port), "-e", 'push "%s"' % keys]
    code, screen = run_in_terminal(command, dict(os.environ, TERM="vt100", HOME=str(tmp_path)))
    assert code == 0, screen
    # mutt adds Content-Length: and Lines: when it writes an mbox (and Status:, which read_mbox hides).
    copies = [without_header(without_header(m, b"Content-Length"), b"Lines")
              for m in mailgen.read_mbox(saved)]
    assert copies == mail_setup.messages
    kept = [m for n, m in enumerate(mail_setup.messages, 1) if n != 2]
    assert server_folder(listener, mail_setup, "INBOX") == entries(
        kept, {message_id(mail_setup.messages[2]): {"\\Flagged"}})
    assert mail_setup.spool_messages() == kept
