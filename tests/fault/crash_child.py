"""Child process for test_crash_rewrite: commit (or recover) a mailbox, maybe dying on the way.

Usage: python crash_child.py REPO PLAN.json

The plan says what to do ("commit": open, set flags, commit with expunge;
"recover": just open, which replays a journal) and, optionally, at which I/O
call to die by SIGKILL: `kill_at` counts calls to os.write, os.pwrite,
os.fsync, os.ftruncate, os.posix_fallocate and os.unlink (or only those
named in `hooked`) made from the moment the action starts; `moves_min_tail` lowers
journal_moves.MIN_TAIL so that a small spool's expunge takes the moves form; `phase` is "before" the call, "after" it, or "torn"
(half of the data written, then death).  The parent may also kill us from
outside: we print "go" just before the action starts, and "done <seconds>
<calls>" when it finished.
"""

import json
import os
import signal
import sys
import time

HOOKED = ("write", "pwrite", "fsync", "ftruncate", "posix_fallocate", "unlink")


def install_hook(kill_at, phase, hooked=HOOKED):
    """Count the hooked os calls; die by SIGKILL at call number kill_at (None: never)."""
    calls = [0]

    def wrap(name, original):
        def hooked(*args, **kwargs):
            calls[0] += 1
            if calls[0] != kill_at:
                return original(*args, **kwargs)
            if phase == "torn" and name in ("write", "pwrite") and len(args[1]) > 1:
                data = bytes(args[1])
                original(args[0], data[:len(data) // 2], *args[2:])
            elif phase == "after":
                original(*args, **kwargs)
            os.kill(os.getpid(), signal.SIGKILL)
            raise AssertionError("still alive after SIGKILL")
        return hooked

    for name in hooked:
        setattr(os, name, wrap(name, getattr(os, name)))
    return calls


def main():
    sys.path.insert(0, sys.argv[1])
    with open(sys.argv[2]) as handle:
        plan = json.load(handle)
    from auth import Principal
    from mailstore import mboxformat as fmt
    from mailstore import journal_moves, open_store
    from server.config import Config

    if "moves_min_tail" in plan:
        journal_moves.MIN_TAIL = plan["moves_min_tail"]  # the moves form on a small spool

    config = Config({"mail_location": "mbox:%s:INBOX=%s" % (plan["home"], plan["spool"]),
                     "index_dir": plan["index_dir"], "mbox_lock_timeout": 5})
    store = open_store(Principal("u", os.getuid(), os.getgid(), plan["home"]), config)
    if plan["action"] == "recover":
        calls = install_hook(plan.get("kill_at"), plan.get("phase"), plan.get("hooked", HOOKED))
        print("go", flush=True)
        start = time.perf_counter()
        store.open_inbox().close()
    else:
        mailbox = store.open_inbox()
        expunge, flag = set(plan["expunge"]), set(plan["flag"])
        for message in mailbox.messages:
            if message.uid in expunge:
                message.flags |= fmt.DELETED
            if message.uid in flag:
                message.flags |= fmt.FLAGGED
                message.dirty = True
        calls = install_hook(plan.get("kill_at"), plan.get("phase"), plan.get("hooked", HOOKED))
        print("go", flush=True)
        start = time.perf_counter()
        mailbox.commit(seen_uids=set(plan["seen"]), expunge=True)
        mailbox.close()
    print("done %f %d" % (time.perf_counter() - start, calls[0]), flush=True)


if __name__ == "__main__":
    main()
