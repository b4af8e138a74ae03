"""ESEARCH responses for SEARCH and SORT with RETURN options, and what SAVE keeps.

RFC 4731 (MIN MAX ALL COUNT), RFC 5267 §3 (ESORT: the same options on SORT,
in sort order) and §4.4 (PARTIAL), RFC 9394 (PARTIAL counted from the end),
RFC 5182 §2.1 (SAVE). Results come in as numbers (UIDs or message numbers)
in result order: mailbox order for SEARCH, sort order for SORT, so MIN and
MAX are simply the first and the last.
"""

from imap import wire
from imap.sequence import format_uid_set


def correlator(tag, by_uid):
    """`ESEARCH (TAG "t")` and `UID` for UID commands (RFC 4466 search-correlator)."""
    return b"ESEARCH (TAG " + wire.string(tag) + b")" + (b" UID" if by_uid else b"")


def wants_response(returns):
    """False for RETURN (SAVE) alone: the client asked for nothing but `$` (RFC 5182 §2.1).

    CONTEXT is only a hint (RFC 5267 §4.2) and asks for nothing either.
    """
    return any(option not in ("SAVE", "CONTEXT") for option in returns)


def response(tag, by_uid, returns, found, ordered):
    """The untagged ESEARCH (without `* `) for `found`, a list of numbers.

    `ordered` marks SORT results, whose sets keep the sort order; an empty
    result carries only COUNT and PARTIAL (RFC 4731 §3.1).
    """
    parts = [correlator(tag, by_uid)]
    for option in returns:
        if option == "COUNT":
            parts.append(b"COUNT %d" % len(found))
        elif option == "MIN" and found:
            parts.append(b"MIN %d" % found[0])
        elif option == "MAX" and found:
            parts.append(b"MAX %d" % found[-1])
        elif option == "ALL" and found:
            parts.append(b"ALL " + number_set(found, ordered))
        elif option == "PARTIAL":
            parts.append(partial_item(returns.partial, found, ordered))
    return b" ".join(parts)


def partial_item(window, found, ordered):
    """`PARTIAL (range set)`, NIL for no results in the range (RFC 5267 §4.4, RFC 9394 §3.1)."""
    chosen = partial_slice(window, found)
    return b"PARTIAL (%d:%d %s)" % (window[0], window[1],
                                    number_set(chosen, ordered) if chosen else b"NIL")


def partial_slice(window, found):
    """The results at positions window[0]..window[1] (1 is the first, -1 the last).

    A range may be written either way round (500:400 is 400:500); positions
    past the end of the results select nothing.
    """
    low, high = sorted(abs(end) for end in window)
    if window[0] < 0:
        start, stop = len(found) - high, len(found) - low + 1
        return found[max(start, 0):max(stop, 0)]
    return found[low - 1:high]


def saved(returns, found):
    """The results that SAVE keeps as `$` (RFC 5182 §2.1).

    With ALL or COUNT, or with none of MIN, MAX and PARTIAL, all of them;
    otherwise just those that MIN, MAX and PARTIAL return.
    """
    if "ALL" in returns or "COUNT" in returns:
        return list(found)
    chosen = set()
    if found and "MIN" in returns:
        chosen.add(found[0])
    if found and "MAX" in returns:
        chosen.add(found[-1])
    if "PARTIAL" in returns:
        chosen.update(partial_slice(returns.partial, found))
    elif "MIN" not in returns and "MAX" not in returns:
        return list(found)
    return [item for item in found if item in chosen]


def number_set(numbers, ordered):
    """A sequence-set of numbers: compacted for SEARCH, in the given order for SORT.

    SORT results use ranges only where the numbers run up one by one
    (RFC 5267 §3.2: 10:12 always means 10,11,12).
    """
    if not ordered:
        return format_uid_set(sorted(numbers))
    parts, index = [], 0
    while index < len(numbers):
        end = index
        while end + 1 < len(numbers) and numbers[end + 1] == numbers[end] + 1:
            end += 1
        first, last = numbers[index], numbers[end]
        parts.append(b"%d" % first if first == last else b"%d:%d" % (first, last))
        index = end + 1
    return b",".join(parts)
