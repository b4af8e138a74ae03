"""Message text handed to a store's append: bytes, or a FileText read in pieces.

A COPY of a large mailbox must not hold every message in memory at once
(issue 3, point 9). A Spool keeps the texts in memory while they are small
and moves them to an unlinked scratch file once they are not; what it hands
out is read back 1 MB at a time, and both drivers append from the pieces.
"""

import errno
import os

from mailstore import StoreError

PIECE = 1 << 20
# Texts up to this total stay in memory: most COPY commands, at no file cost.
SPOOL_LIMIT = 8 << 20


class FileText:
    """`length` bytes at `offset` of an open file: one message spooled out of memory.

    `error` is the StoreError met while it was written (a full disk), raised
    when it is read: the command that uses it fails, and nothing else.
    """

    def __init__(self, fd, offset, length, error=None):
        self.fd, self.offset, self.length, self.error = fd, offset, length, error

    def __len__(self):
        return self.length

    def chunks(self):
        if self.error is not None:
            raise self.error
        end = self.offset + self.length
        for position in range(self.offset, end, PIECE):
            try:
                data = os.pread(self.fd, min(PIECE, end - position), position)
            except OSError as error:
                raise StoreError(StoreError.TEMPORARY, "cannot read back the messages held"
                                 " for copying: %s" % error.strerror) from None
            if not data:
                raise StoreError(StoreError.TEMPORARY, "the scratch file lost messages")
            yield data


def chunks_of(data):
    """The pieces of a message text, whichever form it has."""
    return data.chunks() if isinstance(data, FileText) else (data,)


def lf_pieces(chunks):
    """The text with each CRLF made LF, in pieces that end at a line end where one
    comes within PIECE bytes. A CR is never parted from the LF after it, so the
    result joined equals `b"".join(chunks).replace(b"\\r\\n", b"\\n")`."""
    carry = b""
    for chunk in chunks:
        data = carry + chunk
        cut = data.rfind(b"\n") + 1
        if not cut:
            if len(data) < PIECE:
                carry = data
                continue
            cut = len(data) - data.endswith(b"\r")
        carry = data[cut:]
        yield data[:cut].replace(b"\r\n", b"\n")
    if carry:
        yield carry


class Spool:
    """Message texts for one command: bytes while their total is small, FileText after.

    The scratch file is created unlinked (O_TMPFILE) in `directory`, the
    user's index directory, which lies on a disk rather than in /tmp's
    memory; it is gone when closed or when the process dies.
    """

    def __init__(self, directory, limit=SPOOL_LIMIT):
        self.directory, self.limit = directory, limit
        self.held, self.fd, self.end = 0, None, 0
        # The text being written with start/write/finish: where it began, and any failure.
        self.text_start, self.error = 0, None

    def add(self, chunks, size):
        """Keep the text that `chunks` yields; `size` is about its length."""
        if self.fd is None and self.held + size <= self.limit:
            data = b"".join(chunks)
            self.held += len(data)
            return data
        try:
            return self._write(chunks)
        except OSError as error:
            raise self._failure(error) from None

    def start(self):
        """Begin a text that arrives piece by piece (an APPEND literal off the wire)."""
        self.error, self.text_start = None, self.end
        try:
            if self.fd is None:
                self.fd = _scratch_file(self.directory)
        except OSError as error:
            self.error = self._failure(error)

    def write(self, data):
        """Add to the text begun; a failure is kept for finish(), not raised."""
        if self.error is None:
            try:
                self._write((data,))
            except OSError as error:
                self.error = self._failure(error)

    def finish(self):
        """The text begun, as a FileText (which raises any write failure when read)."""
        return FileText(self.fd, self.text_start, self.end - self.text_start, self.error)

    def _failure(self, error):
        return StoreError(StoreError.TEMPORARY, "cannot hold the message in %s: %s"
                          % (self.directory, error.strerror))

    def _write(self, chunks):
        if self.fd is None:
            self.fd = _scratch_file(self.directory)
        start = self.end
        for chunk in chunks:
            view = memoryview(chunk)
            while view:
                written = os.pwrite(self.fd, view, self.end)
                view, self.end = view[written:], self.end + written
        return FileText(self.fd, start, self.end - start)

    def close(self):
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def _scratch_file(directory):
    """An unlinked file in directory, open for reading and writing."""
    os.makedirs(directory, mode=0o700, exist_ok=True)
    try:
        return os.open(directory, os.O_TMPFILE | os.O_RDWR, 0o600)
    except OSError as error:
        if error.errno not in (errno.EOPNOTSUPP, errno.EISDIR, errno.EINVAL):
            raise
    # A file system without O_TMPFILE (NFS, some FUSE): create, then unlink at once.
    import tempfile

    handle = tempfile.TemporaryFile(dir=directory)
    fd = os.dup(handle.fileno())
    handle.close()
    return fd


def spooled_items(mailbox, uids, spool):
    """Append items (text, flag bits, keywords, date) for the messages of `uids` still
    there, taken under the mailbox's read lock, and the UIDs they are for."""
    from mailstore.mboxformat import OLD

    items, found = [], []
    with mailbox.reading():
        for uid in uids:
            stored = mailbox.by_uid(uid)
            if stored is None:
                continue  # expunged by another session meanwhile
            text = spool.add(mailbox.visible_chunks(stored), stored.size)
            items.append((text, stored.flags & ~OLD, stored.keywords,
                          mailbox.internal_date(stored)))
            found.append(uid)
    return items, found


def move_all(source, target, scratch_directory):
    """Append every message of source to target (then closed), then expunge them from
    source: RENAME INBOX (RFC 3501 §6.3.5), in bounded memory."""
    from mailstore.mboxformat import DELETED

    try:
        with Spool(scratch_directory) as spool:
            items, uids = spooled_items(source, [m.uid for m in source.messages], spool)
            if items:
                target.append(items)
    finally:
        target.close()
    source.store_flags(uids, "+", DELETED, ())
    source.expunge(set(uids))
