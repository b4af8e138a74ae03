"""The C heap of a session that works on a large mailbox.

glibc serves a large allocation (over 128 KiB: a list of 100,000 messages,
an array of offsets, a 1 MiB journal chunk) from mmap, and when such a block
is freed it raises that threshold to the block's size, so later blocks of up
to that size come from the heap instead.  A session on a 100,000-message
mbox then grows and frees lists and arrays of about a megabyte among small
long-lived blocks, and the heap keeps the holes: the first SELECT of a
1.2 GB spool peaked at 58 MB RssAnon, 9 MB of it free heap that malloc_trim
could hand back.  Pinning the threshold at its default keeps such blocks in
mmap, where freeing them returns the memory at once (peak 50 MB).

ctypes costs about 2 ms to import, so this is done only for large mailboxes,
where an open costs far more; nothing happens where glibc is not the libc.
"""

MMAP_THRESHOLD = 128 * 1024
# Mailboxes from this size on (about 2,500 messages of 12 KB) get it.
LARGE_MAILBOX = 32 << 20
_M_MMAP_THRESHOLD = -3  # mallopt parameter number, from glibc's malloc.h
_done = False


def keep_large_blocks_in_mmap():
    """Fix glibc's mmap threshold for the rest of the process (once)."""
    global _done
    if _done:
        return
    _done = True
    try:
        import ctypes

        ctypes.CDLL("libc.so.6").mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD)
    except (ImportError, OSError, AttributeError):
        pass  # not glibc: its allocator has its own policy
