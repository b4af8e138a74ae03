"""Child process for test_maildir's kill -9 trials: change a Maildir until killed.

Usage: python maildir_writer.py REPO HOME SEED

Opens maildir:HOME/Maildir and loops: append a `temp` message, change
flags and keywords of random messages (the `keep` ones too), mark temp
messages \\Deleted and expunge them by UID, claim \\Recent, rescan.  It
prints "go" once the loop starts; the parent kills it with SIGKILL at a
random moment.  Only temp messages are ever expunged.
"""

import os
import random
import sys


def main():
    sys.path.insert(0, sys.argv[1])
    from auth import Principal
    from mailstore import mboxformat as fmt
    from mailstore import open_store
    from server.config import Config

    home, rng = sys.argv[2], random.Random(int(sys.argv[3]))
    config = Config({"mail_location": "maildir:~/Maildir"})
    store = open_store(Principal("u", os.getuid(), os.getgid(), home), config)
    mailbox = store.open_inbox()
    print("go", flush=True)
    count = 0
    while True:
        count += 1
        body = b"x" * rng.randint(0, 20000)
        data = b"Subject: temp\nMessage-ID: <temp-%d-%d@example.org>\n\n%s\nEND\n" % (
            os.getpid(), count, body)
        mailbox.append([(data, rng.choice([0, fmt.SEEN]), rng.choice([(), ("Temp",)]),
                         (1700000000 + count, 0))])
        uids = [m.uid for m in mailbox.messages]
        chosen = rng.sample(uids, min(len(uids), 5))
        mailbox.store_flags(chosen, rng.choice("+-"), rng.choice([fmt.SEEN, fmt.FLAGGED]),
                            rng.choice([(), ("Work",), ("$Label%d" % rng.randint(1, 4),)]))
        temps = [m.uid for m in mailbox.messages if b"temp" in mailbox.header_bytes(m)]
        doomed = rng.sample(temps, len(temps) // 2)
        mailbox.store_flags(doomed, "+", fmt.DELETED, ())
        mailbox.expunge(set(doomed))
        mailbox.claim_recent()
        mailbox.refresh()


if __name__ == "__main__":
    main()
