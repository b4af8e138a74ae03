"""Child process for test_crash_imap_ops: one IMAP-style mailbox operation, maybe dying on the way.

Usage: python ops_child.py REPO PLAN.json

The plan's "op" is what an IMAP or POP3 session does through the mailstore
API, on the plan's `location` (mbox or Maildir): "store" (STORE flags and
keywords), "expunge" (STORE +\\Deleted, then EXPUNGE or UID EXPUNGE),
"append" (APPEND or MULTIAPPEND), "copy" (COPY from INBOX to a folder: read
INBOX, append to the folder), "index" (mbox: open a large mailbox, compute
the cached fields of every message, close: close() writes the index sidecar
and the field cache), "scan" (open INBOX, which numbers new mail, claim
\\Recent, read every date) or "commit" (POP3's UPDATE after DELE and RETR).
Every op ends with close().

Dying works as in crash_child.py (`kill_at`, `phase`, `hooked`), and the
parent may kill us from outside: we print "go" just before the op starts,
and "done <seconds> <calls>" when it finished.
"""

import json
import os
import sys
import time

from crash_child import HOOKED, install_hook


def open_store(plan):
    from auth import Principal
    from mailstore import open_store as open_user_store
    from server.config import Config

    config = Config({"mail_location": plan["location"], "index_dir": plan["index_dir"],
                     "mbox_lock_timeout": 10})
    return open_user_store(Principal("u", os.getuid(), os.getgid(), plan["home"]), config)


def do_store(store, plan):
    mailbox = store.open_inbox()
    yield
    mailbox.store_flags(plan["uids"], plan["mode"], plan["bits"], plan["keywords"])
    mailbox.close()


def do_expunge(store, plan):
    from mailstore import mboxformat as fmt

    mailbox = store.open_inbox()
    yield
    mailbox.store_flags(plan["deleted"], "+", fmt.DELETED, ())
    mailbox.expunge(None if plan["uid_expunge"] is None else set(plan["uid_expunge"]))
    mailbox.close()


def do_append(store, plan):
    mailbox = store.open_mailbox(plan["target"].encode())
    items = [(item["data"].encode("latin-1"), item["bits"], item["keywords"],
              tuple(item["date"])) for item in plan["items"]]
    yield
    mailbox.append(items)
    mailbox.close()


def do_copy(store, plan):
    """As imap.selected._copy: the source's text under its read lock, appended to the target."""
    from mailstore import mboxformat as fmt

    source = store.open_inbox()
    yield
    wanted = set(plan["uids"])
    with source.reading():
        items = [(source.message_text(m), m.flags & ~fmt.OLD, m.keywords, source.internal_date(m))
                 for m in source.messages if m.uid in wanted]
    target = store.open_mailbox(plan["target"].encode())
    target.append(items)
    target.close()
    source.close()


def do_scan(store, plan):
    yield  # the open is in the kill window: it gives the new files their UIDs
    mailbox = store.open_inbox()
    mailbox.claim_recent()
    for message in mailbox.messages:
        mailbox.internal_date(message)
    mailbox.close()


def do_commit(store, plan):
    """As ipop3d: the maildrop under the POP3 lock, DELE marks in memory, QUIT commits."""
    from mailstore import mboxformat as fmt

    mailbox = store.open_inbox(exclusive_session=True)
    yield
    doomed = set(plan["deleted"])
    for message in mailbox.messages:
        if message.uid in doomed:
            message.flags |= fmt.DELETED
    mailbox.commit(seen_uids=set(plan["seen"]), expunge=True)
    mailbox.close()


def do_index(store, plan):
    mailbox = store.open_inbox()
    yield
    for message in mailbox.messages:
        mailbox.internal_date(message)
    mailbox.close()


OPS = {"store": do_store, "expunge": do_expunge, "append": do_append, "copy": do_copy,
       "index": do_index, "scan": do_scan, "commit": do_commit}


def main():
    sys.path.insert(0, sys.argv[1])
    with open(sys.argv[2]) as handle:
        plan = json.load(handle)
    steps = OPS[plan["op"]](open_store(plan), plan)
    next(steps)  # opened: the kill window starts here
    calls = install_hook(plan.get("kill_at"), plan.get("phase"), plan.get("hooked", HOOKED))
    print("go", flush=True)
    start = time.perf_counter()
    for _ in steps:
        pass
    print("done %f %d" % (time.perf_counter() - start, calls[0]), flush=True)


if __name__ == "__main__":
    main()
