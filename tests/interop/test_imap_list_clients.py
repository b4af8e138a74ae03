"""Real clients against imapd with LIST-EXTENDED, LIST-STATUS, SPECIAL-USE and STATUS=SIZE advertised.

The server runs behind the listener as inetd starts it; imaplib and
IMAPClient, which know none of these extensions beyond what they parse, must
keep working, and what they can ask for must be right.
"""

import imaplib
import re

import pytest

import mailgen
from clienttools import GUARD_SECONDS

NEW_CAPABILITIES = ("LIST-EXTENDED", "LIST-STATUS", "SPECIAL-USE", "STATUS=SIZE")
STATUS_ITEMS = re.compile(rb'\* STATUS ("[^"]*"|\S+) \(([^)]*)\)')


def ok(response):
    """The data of an imaplib (type, data) reply, which must be OK."""
    kind, data = response
    assert kind == "OK", "expected OK, got %s %r" % (kind, data)
    return data


def status_items(text):
    """`NAME n NAME n` as {NAME: n}."""
    words = text.split()
    return {words[n].decode(): int(words[n + 1]) for n in range(0, len(words), 2)}


def test_imaplib_lists_sizes_and_extended_lists(mail_setup, start_imap):
    """imaplib sees the new capabilities; plain LIST still parses; SIZE is the sum of RFC822.SIZE."""
    listener = start_imap(mail_setup.write_config(special_use="Sent=\\Sent, Old Mail=\\Archive"))
    client = imaplib.IMAP4(listener.host, listener.port, timeout=GUARD_SECONDS)
    ok(client.login(mail_setup.user, mail_setup.password))
    assert set(NEW_CAPABILITIES) <= set(ok(client.capability())[0].decode().split())
    for name in ("Sent", '"Old Mail"', "Work/Notes"):
        ok(client.create(name))
    sent = mailgen.client_view(mailgen.generate(1, seed=4155, first_number=77)[0][0])
    ok(client.append("Sent", None, None, sent))
    listed = {line.rsplit(b' "/" ', 1)[1]: line.split(b")")[0][1:].split()
              for line in ok(client.list('""', "*"))}
    assert b"\\Sent" in listed[b"Sent"] and b"\\Noinferiors" in listed[b"Sent"]
    assert b"\\Archive" in listed[b'"Old Mail"'] and b"\\Archive" not in listed[b"INBOX"]
    ok(client.select("INBOX", readonly=True))
    sizes = [int(size) for size in re.findall(rb"RFC822\.SIZE (\d+)",
                                              b" ".join(ok(client.fetch("1:*", "(RFC822.SIZE)"))))]
    assert sum(sizes) == sum(len(message) for message in mail_setup.messages)
    status = status_items(STATUS_ITEMS.match(b"* STATUS " + ok(client.status(
        "INBOX", "(MESSAGES SIZE)"))[0]).group(2))
    assert status == {"MESSAGES": len(mail_setup.messages), "SIZE": sum(sizes)}
    # LIST-STATUS through imaplib's generic command path: every selectable
    # mailbox's STATUS follows its LIST; the \Noselect level Work has none.
    kind, _ = client._simple_command("LIST", '""', "*", "RETURN", "(STATUS", "(MESSAGES", "SIZE))")
    assert kind == "OK"
    names = [line.rsplit(b' "/" ', 1)[1] for line in client.untagged_responses.pop("LIST")]
    statuses = {name: status_items(items) for name, items in
                (STATUS_ITEMS.match(b"* STATUS " + line).groups()
                 for line in client.untagged_responses.pop("STATUS"))}
    assert names == [b"INBOX", b'"Old Mail"', b"Sent", b"Work", b"Work/Notes"]
    assert set(statuses) == {b"INBOX", b'"Old Mail"', b"Sent", b"Work/Notes"}
    assert statuses[b"INBOX"] == status
    assert statuses[b"Sent"] == {"MESSAGES": 1, "SIZE": len(sent)}
    client.logout()
    assert mail_setup.spool_messages() == mail_setup.messages


def test_imapclient_finds_special_folders_and_subscriptions(mail_setup, start_imap):
    """IMAPClient finds a special-use folder by its attribute alone and reads SIZE and subscriptions."""
    imapclient = pytest.importorskip("imapclient", reason="pip install imapclient (the test extra)")
    from imapclient.imapclient import SENT, TRASH

    listener = start_imap(mail_setup.write_config(special_use="Outbox Copies=\\Sent, Bin=\\Trash"))
    client = imapclient.IMAPClient(listener.host, port=listener.port, ssl=False,
                                   timeout=GUARD_SECONDS)
    client.login(mail_setup.user, mail_setup.password)
    assert {word.encode() for word in NEW_CAPABILITIES} <= set(client.capabilities())
    client.create_folder("Outbox Copies")
    client.create_folder("Bin")
    # No popular name fits "Outbox Copies": only the \Sent attribute can find it.
    assert client.find_special_folder(SENT) == "Outbox Copies"
    assert client.find_special_folder(TRASH) == "Bin"
    client.subscribe_folder("Bin")
    client.subscribe_folder("Nowhere")
    assert sorted(name for _, _, name in client.list_sub_folders()) == ["Bin", "Nowhere"]
    assert client.folder_status("INBOX", ["MESSAGES", "SIZE"]) == {
        b"MESSAGES": len(mail_setup.messages),
        b"SIZE": sum(len(message) for message in mail_setup.messages)}
    client.logout()
    assert mail_setup.spool_messages() == mail_setup.messages
