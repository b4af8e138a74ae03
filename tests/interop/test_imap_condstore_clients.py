"""CONDSTORE and QRESYNC (RFC 7162) driven by a real client library, IMAPClient, against the real
imapd started per connection by the listener as inetd does, with a second client changing the
mailbox meanwhile.  (offlineimap3 and mbsync, run in test_imap_clients.py with the capability
advertised, use neither extension in the versions Debian ships.)"""

import pytest

from clienttools import GUARD_SECONDS


def login(listener, setup):
    """An IMAPClient session (UID commands throughout) logged in with LOGIN."""
    imapclient = pytest.importorskip("imapclient", reason="pip install imapclient (the test extra)")
    client = imapclient.IMAPClient(listener.host, port=listener.port, ssl=False,
                                   timeout=GUARD_SECONDS)
    client.login(setup.user, setup.password)
    return client


def test_imapclient_condstore_finds_exactly_what_another_session_changed(mail_setup, start_imap):
    """HIGHESTMODSEQ at SELECT, MODSEQ per message, then FETCH CHANGEDSINCE and SEARCH MODSEQ
    name only the message another session flagged, and STATUS HIGHESTMODSEQ rises on an expunge."""
    listener = start_imap(mail_setup.config_path)
    client, other = login(listener, mail_setup), login(listener, mail_setup)
    assert b"CONDSTORE" in client.capabilities()
    assert client.enable("CONDSTORE") == [b"CONDSTORE"]
    highest = client.select_folder("INBOX")[b"HIGHESTMODSEQ"]
    every = client.search()
    fetched = client.fetch(every, ["MODSEQ"])
    assert {item[b"MODSEQ"] for item in fetched.values()} == {(highest,)}
    uids = sorted(fetched)

    other.select_folder("INBOX")
    other.add_flags([uids[2]], [b"\\Flagged"])
    changed = client.fetch(every, ["FLAGS"], modifiers=["CHANGEDSINCE %d" % highest])
    assert list(changed) == [uids[2]]
    assert b"\\Flagged" in changed[uids[2]][b"FLAGS"]
    flagged_at = changed[uids[2]][b"MODSEQ"][0]
    assert flagged_at > highest
    found = client.search(["MODSEQ", str(highest + 1)])
    assert list(found) == [uids[2]] and found.modseq == flagged_at

    other.delete_messages([uids[0]])
    other.uid_expunge([uids[0]])
    status = client.folder_status("INBOX", ["HIGHESTMODSEQ"])
    assert status[b"HIGHESTMODSEQ"] > flagged_at
    assert client.fetch(every, ["FLAGS"], modifiers=["CHANGEDSINCE %d" % flagged_at]) == {}
    client.logout()
    other.logout()


def test_imapclient_qresync_reconnect_learns_vanished_and_changed(mail_setup, start_imap):
    """After ENABLE QRESYNC a client that comes back with its old HIGHESTMODSEQ is told by
    SELECT (QRESYNC ...) which UID another session expunged and which it flagged meanwhile."""
    listener = start_imap(mail_setup.config_path)
    client = login(listener, mail_setup)
    assert client.enable("QRESYNC") == [b"QRESYNC"]
    selected = client.select_folder("INBOX")
    validity, highest = selected[b"UIDVALIDITY"], selected[b"HIGHESTMODSEQ"]
    uids = client.search()
    client.logout()

    other = login(listener, mail_setup)
    other.select_folder("INBOX")
    other.delete_messages([uids[1]])
    other.uid_expunge([uids[1]])
    other.add_flags([uids[3]], [b"\\Answered"])
    other.logout()

    client = login(listener, mail_setup)
    client.enable("QRESYNC")
    imap = client._imap  # IMAPClient's select_folder takes no parameters: send SELECT itself
    status, _ = imap._simple_command("SELECT", "INBOX", "(QRESYNC (%d %d))" % (validity, highest))
    assert status == "OK"
    assert imap.untagged_responses.get("VANISHED") == [b"(EARLIER) %d" % uids[1]]
    fetches = imap.untagged_responses.get("FETCH", [])
    assert len(fetches) == 1 and b"UID %d " % uids[3] in fetches[0]
    assert b"\\Answered" in fetches[0] and b"MODSEQ (" in fetches[0]
    client.logout()
