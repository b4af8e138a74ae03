"""THREAD (RFC 5256 §3): ORDEREDSUBJECT and REFERENCES, rendered for `* THREAD`.

Messages have the interface described in imap.search. Trees are walked with
explicit stacks, not recursion: a client can append a reply chain deeper
than Python's recursion limit.
"""

import re
from itertools import groupby

from imap.search import field_values, header_fields
from imap.sort import ascii_casemap, sent_time, split_base_subject

ALGORITHMS = ("ORDEREDSUBJECT", "REFERENCES")

_MESSAGE_ID = re.compile(r"<[^<>]*>")


def thread(algorithm, messages, use_uid=False):
    """The THREAD response body: the thread lists after `* THREAD `, b"" for none.

    `algorithm` is one of ALGORITHMS; numbers are sequence numbers, or UIDs
    when `use_uid` is true (UID THREAD).
    """
    nodes = [_Node(message) for message in messages]
    if algorithm == "ORDEREDSUBJECT":
        roots = _ordered_subject(nodes)
    elif algorithm == "REFERENCES":
        roots = _references(nodes)
    else:
        raise ValueError("unknown thread algorithm %r" % (algorithm,))
    return _render(roots, use_uid)


class _Node:
    """A message in a thread tree, or a dummy standing for one that is missing.

    For a message, it holds what threading reads from the header, parsed once.
    """

    __slots__ = ("message", "parent", "children", "sent", "subject", "is_reply",
                 "message_id", "references")

    def __init__(self, message=None):
        self.message, self.parent, self.children = message, None, []
        if message is None:
            return
        fields = header_fields(message.header())
        self.sent = sent_time(message, fields)
        subject, self.is_reply = split_base_subject(_first_value(fields, "subject"))
        self.subject = ascii_casemap(subject)
        own_ids = message_ids(_first_value(fields, "message-id"))
        self.message_id = own_ids[0] if own_ids else None
        # RFC 5256 §3 REFERENCES step 1: References, else the first In-Reply-To id.
        self.references = (message_ids(_first_value(fields, "references"))
                           or message_ids(_first_value(fields, "in-reply-to"))[:1])

    def first_message(self):
        """The node itself, or for a dummy its first child: what it sorts and groups by."""
        return self if self.message is not None else self.children[0]

    def date_key(self):
        """Sent date, then sequence number as the tie-breaker (RFC 5256 §2.2)."""
        first = self.first_message()
        return first.sent, first.message.seq


def _first_value(fields, name):
    return next(field_values(fields, name), "")


def message_ids(value):
    """The `<...>` message identifiers in a Message-ID, References or In-Reply-To value.

    Whitespace inside an identifier (left by folding) is removed and `<>` is
    skipped. Identifiers compare exactly, octet for octet.
    """
    found = ("".join(text.split()) for text in _MESSAGE_ID.findall(value))
    return [message_id for message_id in found if message_id != "<>"]


def _ordered_subject(nodes):
    """ORDEREDSUBJECT: group by base subject; the first message by date is the parent.

    Threads sort by their first message's sent date; the others in a thread
    are its children in sent-date order (RFC 5256 §3).
    """
    nodes = sorted(nodes, key=lambda node: (node.subject, node.date_key()))
    roots = []
    for _, group in groupby(nodes, key=lambda node: node.subject):
        root, *children = group
        root.children = children
        roots.append(root)
    roots.sort(key=_Node.date_key)
    return roots


def _references(nodes):
    """REFERENCES, RFC 5256 §3 steps 1 to 6."""
    by_id = _index_by_message_id(nodes)
    for node in sorted(nodes, key=lambda node: node.message.seq):
        _link_references(node, by_id)
    roots = [node for node in by_id.values() if node.parent is None]   # step 2
    roots = _prune_dummies(roots)                                        # step 3
    for node in roots:                                                   # step 4
        if node.message is None:
            node.children.sort(key=_Node.date_key)
    roots.sort(key=_Node.date_key)
    roots = _merge_by_subject(roots)                                     # step 5
    for node in _post_order(roots):                                      # step 6
        node.children.sort(key=_Node.date_key)
    roots.sort(key=_Node.date_key)
    return roots


def _index_by_message_id(nodes):
    """Message-ID -> node; a missing or repeated Message-ID gets a unique key.

    The first message (lowest sequence number) keeps a repeated identifier
    (RFC 5256 §3 REFERENCES step 1).
    """
    by_id = {}
    for node in sorted(nodes, key=lambda node: node.message.seq):
        key = node.message_id
        if key is None or key in by_id:
            key = (node.message.seq,)  # never equal to a str identifier
        by_id[key] = node
    return by_id


def _link_references(node, by_id):
    """Step 1: chain the references parent to child, then hang the message below the last.

    Links already made stay (1.A); the message's own last reference replaces
    a parent guessed from another message's References (1.B). No link that
    would close a loop is made; when the new parent would, the old one stays.
    """
    chain = [_node_for(message_id, by_id) for message_id in node.references]
    for parent, child in zip(chain, chain[1:]):
        if child.parent is None and not _would_loop(parent, child):
            _attach(parent, child)
    if chain and chain[-1] is not node.parent and not _would_loop(chain[-1], node):
        if node.parent is not None:
            node.parent.children.remove(node)
        _attach(chain[-1], node)


def _node_for(message_id, by_id):
    """The node for a referenced identifier, a new dummy when no message has it."""
    node = by_id.get(message_id)
    if node is None:
        node = by_id[message_id] = _Node()
    return node


def _would_loop(parent, child):
    """True when `child` is `parent` or one of its ancestors."""
    while parent is not None:
        if parent is child:
            return True
        parent = parent.parent
    return False


def _attach(parent, child):
    child.parent = parent
    parent.children.append(child)


def _prune_dummies(roots):
    """Step 3: drop childless dummies and put a dummy's children in its place.

    At the top a dummy stays when it has two or more children: promoting them
    would make separate threads of messages that belong together.
    """
    for node in _post_order(roots):
        children = []
        for child in node.children:
            children.extend(child.children if child.message is None else (child,))
        node.children = children
    pruned = []
    for node in roots:
        if node.message is None and len(node.children) < 2:
            pruned.extend(node.children)
        else:
            pruned.append(node)
    return pruned


def _merge_by_subject(roots):
    """Step 5: gather top-level threads that share a base subject."""
    table = _subject_table(roots)
    slots = list(roots)
    for index, node in enumerate(slots):
        subject = node.first_message().subject
        if not subject or table[subject] is node:
            continue
        held = table[subject]
        slots[index] = None
        if held.message is None and node.message is None:
            held.children.extend(node.children)
        elif held.message is None or (node.is_reply and not held.is_reply):
            held.children.append(node)
        else:
            dummy = _Node()
            dummy.children = [held, node]
            slots[slots.index(held)] = table[subject] = dummy
    return [node for node in slots if node is not None]


def _subject_table(roots):
    """Step 5.B: per base subject the thread others merge into.

    A dummy wins over a message, and a message that is not a reply or forward
    wins over one that is.
    """
    table = {}
    for node in roots:
        subject = node.first_message().subject
        if not subject:
            continue
        held = table.get(subject)
        if held is None or (held.message is not None and (
                node.message is None or (held.is_reply and not node.is_reply))):
            table[subject] = node
    return table


def _post_order(roots):
    """Every node below and including `roots`, children before their parent."""
    order, stack = [], list(roots)
    while stack:
        node = stack.pop()
        order.append(node)
        stack.extend(node.children)
    return reversed(order)


def _render(roots, use_uid):
    """RFC 5256 §4 thread-list: a chain of only children is a plain list of numbers,
    two or more children are each a parenthesised thread-list; a dummy has no number.
    """
    out, stack = [], list(reversed(roots))
    while stack:
        node = stack.pop()
        if isinstance(node, bytes):
            out.append(node)
            continue
        numbers = []
        while node.message is not None:
            numbers.append(b"%d" % (node.message.uid if use_uid else node.message.seq))
            if len(node.children) != 1:
                break
            node = node.children[0]
        out.append(b"(" + b" ".join(numbers) + (b" " if numbers and node.children else b""))
        stack.append(b")")
        stack.extend(reversed(node.children))
    return b"".join(out)
