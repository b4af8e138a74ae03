"""Resolving sequence sets (RFC 3501 §9 sequence-set) against a mailbox.

A parsed set is a tuple of (low, high) ranges with None for "*" (see
imap.command). Ranges are clipped and merged before anything is expanded,
so `1:4294967295` costs the size of the mailbox, not of the range.
"""

from bisect import bisect_left, bisect_right


class SequenceError(ValueError):
    """A message sequence number beyond the mailbox: the command gets BAD (RFC 3501 §9)."""


def resolve_numbers(seqset, count, strict=True):
    """The sorted message numbers (1..count) that seqset names, each once.

    "*" is count. With strict, a number above count (or "*" in an empty
    mailbox) raises SequenceError, as RFC 3501 §9 (seq-number) asks of
    commands; SEARCH passes strict=False and such numbers simply match nothing.
    """
    numbers = []
    for low, high in number_spans(seqset, count, strict):
        numbers.extend(range(low, high + 1))
    return numbers


def number_spans(seqset, count, strict=True):
    """resolve_numbers as sorted, disjoint inclusive (low, high) spans of numbers."""
    spans = []
    for low, high in seqset:
        low, high = sorted((count if low is None else low, count if high is None else high))
        if strict and (high > count or low < 1):
            raise SequenceError("Invalid message sequence number")
        low, high = max(low, 1), min(high, count)
        if low <= high:
            spans.append((low, high))
    return _merged(spans)


def resolve_uids(seqset, uids):
    """The UIDs from uids (sorted ascending) that seqset names, in order, each once.

    "*" is the highest UID, so `n:*` names it even when n is higher (RFC 3501
    §6.4.8); UIDs that no message has are ignored.
    """
    found = []
    for first, last in uid_position_spans(seqset, uids):
        found.extend(uids[first:last + 1])
    return found


def uid_position_spans(seqset, uids):
    """resolve_uids as sorted, disjoint inclusive (first, last) spans of positions in uids."""
    if not uids:
        return []
    highest = uids[-1]
    spans = []
    for low, high in seqset:
        low, high = sorted((highest if low is None else low, highest if high is None else high))
        first, end = bisect_left(uids, low), bisect_right(uids, high)
        if first < end:
            spans.append((first, end - 1))
    return _merged(spans)


def _merged(spans):
    """Inclusive (low, high) spans sorted, with overlapping and adjacent ones joined."""
    merged = []
    for low, high in sorted(spans):
        if merged and low <= merged[-1][1] + 1:
            if high > merged[-1][1]:
                merged[-1] = (merged[-1][0], high)
        else:
            merged.append((low, high))
    return merged


def format_uid_set(uids):
    """Sorted UIDs as a compact sequence set, e.g. b"1:3,7,9:12" (COPYUID, APPENDUID)."""
    parts = []
    start = previous = None
    for uid in uids:
        if previous is not None and uid <= previous + 1:
            previous = max(previous, uid)
            continue
        if start is not None:
            parts.append(_span(start, previous))
        start = previous = uid
    if start is not None:
        parts.append(_span(start, previous))
    return b",".join(parts)


def _span(low, high):
    return b"%d" % low if low == high else b"%d:%d" % (low, high)
