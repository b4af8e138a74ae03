"""The Store and Mailbox interface that ipop3d and imap/ use, whatever the driver.

Documentation only: nothing imports this module.  Both drivers implement
it (mailstore.mboxstore + mailstore.mbox, mailstore.maildirstore +
mailstore.maildir) and tests/store/test_store_contract.py checks it on each.
Names are IMAP names as bytes (modified UTF-7, "/" between levels, INBOX in
any case).  Failures are StoreError with a kind (mailstore.StoreError).

Store (from mailstore.open_store(principal, config, log)):

    open_inbox(readonly=False, exclusive_session=False) -> Mailbox
        exclusive_session: POP3's lock (RFC 1939 §8); a second such open is
        IN_USE, and while it is held another session's expunge is IN_USE.
    open_mailbox(name, readonly=False) -> Mailbox      NOT_FOUND, NOT_SELECTABLE
    create(name)          a trailing "/" asks for a level only; EXISTS
    delete(name)          NOT_FOUND, HAS_CHILDREN (a level with folders)
    rename(old, new)      inferiors move too; RENAME INBOX moves its messages
    subscribe(name), unsubscribe(name) (NOT_FOUND if not subscribed)
    subscriptions() -> [name]
    list(pattern) -> iterable of (name, {attribute, ...})
        pattern is an imap.listpattern.ListPattern; attributes are RFC 3501 /
        RFC 3348 names (\\Noselect, \\Noinferiors, \\HasChildren, \\Marked ...).

Mailbox:

    messages              [message] in UID order
    uidvalidity, uidnext  (RFC 3501 §2.3.1.1)
    keywords              [str] the keywords the mailbox knows (FLAGS)
    stamp                 changes whenever what a session reports changed
    readonly
    by_uid(uid) -> message or None
    header_bytes(m)       the header with the empty line that ends it
    body_chunks(m)        the body, in bounded chunks
    visible_chunks(m, header_only=False)
    message_text(m)       header + body; line ends as stored (LF or CRLF),
                          clients get wire_form(): CRs dropped, LF as CRLF
    internal_date(m) -> (unix seconds, zone offset in minutes)
    cached(m, kind, compute) -> compute() or a value kept from before
    changed() -> bool, refresh() -> bool (re-read if changed)
    reading()             context manager around reading message text
    claim_recent() -> {uid}  \\Recent for this session; read-only: none taken
    store_flags(uids, mode "+" | "-" | "", flag bits, keywords, unchanged_since=None)
                          -> {uid} left alone because their modseq is above
                          unchanged_since (RFC 7162 UNCHANGEDSINCE)
    modseqs               a mailstore.modseq.ModseqLog: highest, of(uid),
                          expunged_since(modseq), available (False: NOMODSEQ);
                          brought up to date whenever the driver re-reads
    expunge(uids=None) -> [uid]   \\Deleted ones (only those in uids if given)
    append([(data, flag bits, keywords, (unix seconds, zone minutes))]) -> [uid]
    commit(seen_uids=(), expunge=False) -> count   POP3's UPDATE state: mark
                          seen_uids \\Seen and everything old, expunge messages
                          whose in-memory flags have DELETED
    close()

message:

    uid, flags (bits of mailstore.mboxformat: SEEN ANSWERED FLAGGED DELETED
    DRAFT, and OLD = not \\Recent), keywords (tuple of str), size
    (RFC822.SIZE: the wire_form length).  POP3 sets DELETED in `flags`
    before commit(expunge=True).
"""
