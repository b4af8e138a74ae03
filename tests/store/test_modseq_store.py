"""Modseqs kept by each driver (RFC 7162): shared between sessions, noticed for other programs'
changes, persistent across reopen, and rebuilt higher when the modseq file is lost."""

import pytest

from mailstore import mboxformat as fmt
from test_store_contract import DRIVERS, Account, opened


@pytest.fixture(params=DRIVERS)
def account(request, tmp_path):
    return Account(request.param, tmp_path)


def modseqs(mailbox):
    return {m.uid: mailbox.modseqs.of(m.uid) for m in mailbox.messages}


def test_store_and_expunge_get_new_modseqs_that_other_sessions_share(account):
    """A STORE in one session raises that message's modseq, and another session reads the same."""
    for number in range(3):
        account.deliver(number)
    first, second = opened(account), opened(account)
    try:
        before = first.modseqs.highest
        uids = [m.uid for m in first.messages]
        first.store_flags([uids[1]], "+", fmt.SEEN | fmt.DELETED, ())
        changed = first.modseqs.of(uids[1])
        assert changed > before and first.modseqs.of(uids[0]) == before
        second.refresh()
        assert modseqs(second) == modseqs(first)
        second.expunge()
        first.refresh()
        assert first.modseqs.highest == second.modseqs.highest > changed
        assert first.modseqs.expunged_since(changed) == ({uids[1]}, True)
    finally:
        first.close()
        second.close()


def test_changes_by_other_programs_get_modseqs_when_noticed(account):
    """New mail from an MTA gets a modseq above everything before it."""
    account.deliver(0)
    mailbox = opened(account)
    try:
        before = mailbox.modseqs.highest
        account.deliver(1)
        mailbox.refresh()
        newest = mailbox.messages[-1]
        assert mailbox.modseqs.of(newest.uid) == mailbox.modseqs.highest > before
        assert mailbox.modseqs.of(mailbox.messages[0].uid) == before
    finally:
        mailbox.close()


def test_unchanged_since_leaves_newer_messages_alone(account):
    """store_flags with unchanged_since refuses messages changed after it, under the lock."""
    for number in range(2):
        account.deliver(number)
    mailbox = opened(account)
    try:
        start = mailbox.modseqs.highest
        first, second = (m.uid for m in mailbox.messages)
        mailbox.store_flags([first], "+", fmt.FLAGGED, ())
        refused = mailbox.store_flags([first, second], "+", fmt.SEEN, (), unchanged_since=start)
        assert refused == {first}
        assert not mailbox.by_uid(first).flags & fmt.SEEN
        assert mailbox.by_uid(second).flags & fmt.SEEN
    finally:
        mailbox.close()


def test_modseqs_persist_and_a_lost_file_is_rebuilt_higher(account, tmp_path):
    """Reopening keeps the modseqs; without the file every message comes back above them."""
    for number in range(3):
        account.deliver(number)
    mailbox = opened(account)
    mailbox.store_flags([mailbox.messages[0].uid], "+", fmt.SEEN, ())
    kept = modseqs(mailbox)
    mailbox.close()
    mailbox = opened(account)
    assert modseqs(mailbox) == kept
    mailbox.close()
    files = list((tmp_path / "index").glob("modseq-*"))
    assert len(files) == 1
    files[0].unlink()
    mailbox = opened(account)
    try:
        assert min(modseqs(mailbox).values()) > max(kept.values())
    finally:
        mailbox.close()


def test_maildir_flags_renamed_by_another_program_get_a_modseq(tmp_path):
    """A file renamed to new flags by another IMAP server is a change with its own modseq."""
    account = Account("maildir", tmp_path)
    for number in range(2):
        account.deliver(number)
    mailbox = opened(account)
    try:
        mailbox.claim_recent()
        before = mailbox.modseqs.highest
        cur = account.home / "Maildir" / "cur"
        name = sorted(path.name for path in cur.iterdir())[0]
        (cur / name).rename(cur / (name.partition(":")[0] + ":2,FS"))
        mailbox.refresh()
        changed = [m.uid for m in mailbox.messages if mailbox.modseqs.of(m.uid) > before]
        assert len(changed) == 1
        assert mailbox.by_uid(changed[0]).flags & fmt.FLAGGED
    finally:
        mailbox.close()


def _toggle_flags(account, uid, rounds):
    """In a child process: flip \\Flagged on one message `rounds` times, one STORE each."""
    mailbox = opened(account)
    try:
        for number in range(rounds):
            mailbox.store_flags([uid], "+" if number % 2 == 0 else "-", fmt.FLAGGED, ())
    finally:
        mailbox.close()


def test_concurrent_processes_hand_out_increasing_modseqs_in_file_order(account, tmp_path):
    """Three processes storing at once: every change is recorded once, with modseqs rising
    in the order the records were written, and every process ends with the same values."""
    import multiprocessing

    for number in range(3):
        account.deliver(number)
    mailbox = opened(account)
    uids = [m.uid for m in mailbox.messages]
    mailbox.close()
    rounds = 20
    context = multiprocessing.get_context("fork")
    children = [context.Process(target=_toggle_flags, args=(account, uid, rounds)) for uid in uids]
    for child in children:
        child.start()
    for child in children:
        child.join(60)
        assert child.exitcode == 0
    (path,) = (tmp_path / "index").glob("modseq-*")
    data = path.read_bytes()
    header, _, rest = data.partition(b"\n")
    records = rest[int(header.split(b" ")[3]):].split(b"\n")[:-1]
    written = [int(line.split(b" ")[1]) for line in records]
    assert written == sorted(written)
    assert len(records) >= len(uids) * rounds
    first, second = opened(account), opened(account)
    try:
        assert {m.uid: first.modseqs.of(m.uid) for m in first.messages} == {
            m.uid: second.modseqs.of(m.uid) for m in second.messages}
        assert first.modseqs.highest == max(written)
    finally:
        first.close()
        second.close()
