"""SORT and THREAD (RFC 5256, RFC 5957): imap.sort and imap.thread on in-memory messages."""

from datetime import datetime, timedelta, timezone

import pytest

from imap.sort import base_subject, sort, split_base_subject
from imap.thread import message_ids, thread

UTC = timezone.utc
START = datetime(2024, 1, 1, 12, 0, tzinfo=UTC)


class Message:
    """The message interface imap.sort and imap.thread read, in memory, counting header reads."""

    def __init__(self, seq, headers="", uid=None, size=100, internal_date=START):
        self.seq, self.uid, self.size = seq, uid if uid is not None else 1000 + seq, size
        self.flags, self.internal_date = frozenset(), internal_date
        self._header = (headers.replace("\n", "\r\n") + "\r\n").encode()
        self.header_reads = 0

    def header(self):
        self.header_reads += 1
        return self._header

    def message(self):
        return self._header


def sent(minutes):
    """A Date: header value `minutes` after START, in UTC."""
    return (START + timedelta(minutes=minutes)).strftime("%a, %d %b %Y %H:%M:%S +0000")


def mail(seq, subject="thread", message_id=None, references=None, in_reply_to=None,
         minutes=None, uid=None):
    """A message to thread: Message-ID <seq@x> unless given, sent `minutes` (default seq) in."""
    lines = ["Subject: " + subject, "Date: " + sent(seq if minutes is None else minutes),
             "Message-ID: " + (message_id if message_id is not None else "<%d@x>" % seq)]
    if references is not None:
        lines.append("References: " + references)
    if in_reply_to is not None:
        lines.append("In-Reply-To: " + in_reply_to)
    return Message(seq, "\n".join(lines) + "\n", uid=uid)


def seqs(messages):
    return [message.seq for message in messages]


# --- base subject (RFC 5256 §2.1) --------------------------------------------------

BASE_SUBJECTS = [
    ("test", "test"),
    ("Re: test", "test"),
    ("re:test", "test"),
    ("RE: Re: re: test", "test"),
    ("Re : test", "test"),
    ("Fw: test", "test"),
    ("FWD: test", "test"),
    ("fwd:test", "test"),
    ("Re[2]: test", "test"),
    ("Re: [2] test", "test"),
    ("[list] Re: test", "test"),
    ("[list] [tag] Fwd [3]: test", "test"),
    ("Re: [list] test", "test"),
    ("[list] test", "test"),
    ("[list]", "[list]"),
    ("[a] [b]", "[b]"),
    ("Re: [list]", "[list]"),
    ("test (fwd)", "test"),
    ("test (FWD) (fwd)  ", "test"),
    ("[fwd: test]", "test"),
    ("[Fwd: Re: test]", "test"),
    ("Re: [fwd: Re: test (fwd)]", "test"),
    ("[fwd: [fwd: test] ]", "test"),
    ("Re: Re[3]: [list] [fwd: [tag] hello]", "hello"),
    ("  test  ", "test"),
    ("test\t  with \t spaces", "test with spaces"),
    ("=?utf-8?q?Re=3A_caf=C3=A9?=", "café"),
    ("Re: =?ISO-8859-1?B?SWYgeW91IGNhbiByZWFkIHRoaXMgeW8=?=", "If you can read this yo"),
    ("Rebecca: hi", "Rebecca: hi"),
    ("re re: test", "re re: test"),
    ("Re:", ""),
    ("", ""),
]


@pytest.mark.parametrize("subject, expected", BASE_SUBJECTS)
def test_base_subject(subject, expected):
    """base_subject follows the RFC 5256 §2.1 steps: decode, trailers, leaders, blobs, [fwd:]."""
    assert base_subject(subject) == expected


REPLY_FLAGS = [
    ("test", False), ("Re: test", True), ("test (fwd)", True), ("[fwd: test]", True),
    ("Fw: test", True), ("[list] test", False), ("[list] Re: test", True),
]


@pytest.mark.parametrize("subject, is_reply", REPLY_FLAGS)
def test_reply_or_forward_is_what_extraction_removed(subject, is_reply):
    """A subject is a reply or forward when extraction removed Re/Fw, "(fwd)" or "[fwd: ]"."""
    assert split_base_subject(subject)[1] is is_reply


# --- SORT ----------------------------------------------------------------------------

def test_arrival_sorts_by_internal_date_with_sequence_ties():
    """ARRIVAL orders by INTERNALDATE; equal dates stay in sequence order."""
    messages = [Message(1, internal_date=START + timedelta(hours=2)),
                Message(2, internal_date=START), Message(3, internal_date=START)]
    assert seqs(sort(((False, "ARRIVAL"),), messages)) == [2, 3, 1]


def test_reverse_keeps_ties_in_sequence_order():
    """REVERSE inverts the key, but equal messages still follow sequence order (RFC 5256 §3)."""
    messages = [Message(4, size=10), Message(1, size=20), Message(3, size=10), Message(2, size=5)]
    assert seqs(sort(((False, "SIZE"),), messages)) == [2, 3, 4, 1]
    assert seqs(sort(((True, "SIZE"),), messages)) == [1, 3, 4, 2]


def test_arrival_and_size_do_not_read_headers():
    """Sorting only by ARRIVAL and SIZE never reads a header from disk."""
    messages = [Message(1), Message(2)]
    sort(((False, "SIZE"), (True, "ARRIVAL")), messages)
    assert [message.header_reads for message in messages] == [0, 0]


def test_headers_are_read_once_per_message():
    """Several header criteria share one header read per message."""
    messages = [Message(1, "Subject: b\nFrom: x@y\n"), Message(2, "Subject: a\nFrom: z@y\n")]
    sort(((False, "SUBJECT"), (False, "FROM"), (True, "DATE")), messages)
    assert [message.header_reads for message in messages] == [1, 1]


def test_date_compares_instants_and_falls_back_to_internal_date():
    """DATE orders by the Date: header in UTC; without a usable one, by INTERNALDATE (§2.2)."""
    messages = [
        Message(1, "Date: Mon, 1 Jan 2024 12:30:00 +0200\n"),          # 10:30 UTC
        Message(2, "Date: Mon, 1 Jan 2024 11:00:00 +0000\n"),          # 11:00 UTC
        Message(3, "", internal_date=START - timedelta(hours=5)),     # 07:00 UTC
        Message(4, "Date: not a date\n", internal_date=START),        # 12:00 UTC
        Message(5, "Date: Mon, 1 Jan 2024 04:00:00 -0500\n"),          # 09:00 UTC
    ]
    assert seqs(sort(((False, "DATE"),), messages)) == [3, 5, 1, 2, 4]
    assert seqs(sort(((True, "DATE"),), messages)) == [4, 2, 1, 5, 3]


def test_subject_sorts_by_base_subject_ignoring_ascii_case():
    """SUBJECT compares base subjects with i;ascii-casemap; a missing subject sorts first."""
    messages = [Message(1, "Subject: Re: banana\n"), Message(2, "Subject: [list] cherry\n"),
                Message(3, "Subject: APPLE\n"), Message(4, ""), Message(5, "Subject: apple\n")]
    assert seqs(sort(((False, "SUBJECT"),), messages)) == [4, 3, 5, 1, 2]


@pytest.mark.parametrize("key, field", [("FROM", "From"), ("TO", "To"), ("CC", "Cc")])
def test_address_keys_sort_by_the_first_mailbox_local_part(key, field):
    """FROM, TO and CC compare the local part of the first address only (RFC 5256 §3)."""
    messages = [
        Message(1, field + ": Aaron <zed@a.example>\n"),
        Message(2, field + ": beta@z.example, aaa@a.example\n"),
        Message(3, ""),
        Message(4, field + ': "Alpha Quoted" <"ALPHA one"@x.example>\n'),
        Message(5, field + ": Friends: carol@x.example, aaa@y.example;\n"),
    ]
    assert seqs(sort(((False, key),), messages)) == [3, 4, 2, 5, 1]


@pytest.mark.parametrize("key, field", [("DISPLAYFROM", "From"), ("DISPLAYTO", "To")])
def test_display_keys_sort_by_display_name_else_address(key, field):
    """DISPLAYFROM/DISPLAYTO use the decoded display name, else the whole addr-spec (RFC 5957)."""
    messages = [
        Message(1, field + ": Zed <alpha@a.example>\n"),
        Message(2, field + ": beta@a.example\n"),
        Message(3, field + ": =?utf-8?q?Carl?= <aaa@a.example>\n"),
        Message(4, field + ': "" <delta@a.example>\n'),
        Message(5, ""),
    ]
    assert seqs(sort(((False, key),), messages)) == [5, 2, 3, 4, 1]


def test_several_criteria_apply_in_order():
    """Later criteria break ties of earlier ones, each with its own REVERSE."""
    messages = [
        Message(1, "Subject: b\nDate: " + sent(1) + "\n"),
        Message(2, "Subject: a\nDate: " + sent(2) + "\n"),
        Message(3, "Subject: Re: b\nDate: " + sent(3) + "\n"),
        Message(4, "Subject: a\nDate: " + sent(0) + "\n"),
    ]
    assert seqs(sort(((False, "SUBJECT"), (True, "DATE")), messages)) == [2, 4, 3, 1]
    assert seqs(sort(((True, "SUBJECT"), (False, "DATE")), messages)) == [1, 3, 4, 2]


# --- THREAD ORDEREDSUBJECT ---------------------------------------------------------

def test_ordered_subject_groups_by_base_subject_and_sorts_by_date():
    """ORDEREDSUBJECT: one thread per base subject, first message the parent, threads by date."""
    messages = [mail(1, "a"), mail(2, "Re: a", minutes=30), mail(3, "b", minutes=2),
                mail(4, "RE: A", minutes=20), mail(5, "c"), mail(6, "Re: b")]
    assert thread("ORDEREDSUBJECT", messages) == b"(1 (4)(2))(3 6)(5)"


def test_ordered_subject_parent_is_the_earliest_message():
    """The earliest message by sent date heads the thread even when it is a reply."""
    messages = [mail(1, "x", minutes=9), mail(2, "Re: x", minutes=1)]
    assert thread("ORDEREDSUBJECT", messages) == b"(2 1)"


# --- THREAD REFERENCES -------------------------------------------------------------

def test_references_renders_the_rfc_example_shape():
    """A hand-built mailbox yields the RFC 5256 example `(2)(3 6 (4 23)(44 7 96))`."""
    messages = [
        mail(2, "other"),
        mail(3, "thread"),
        mail(6, "Re: thread", references="<3@x>"),
        mail(4, "Re: thread", references="<3@x> <6@x>"),
        mail(23, "Re: thread", references="<3@x> <6@x> <4@x>"),
        mail(44, "Re: thread", references="<3@x>\n <6@x>", minutes=5),
        mail(7, "Re: thread", references="<3@x> <6@x> <44@x>"),
        mail(96, "Re: thread", references="<6@x> <44@x> <7@x>"),
    ]
    assert thread("REFERENCES", messages) == b"(2)(3 6 (4 23)(44 7 96))"


def test_siblings_under_a_missing_parent_keep_a_dummy():
    """Two replies to a message not in the set share a dummy parent: `((3)(5))`."""
    messages = [mail(3, "Re: lost", references="<gone@x>"),
                mail(5, "Re: lost", references="<gone@x>"), mail(7, "unrelated")]
    assert thread("REFERENCES", messages) == b"((3)(5))(7)"


def test_single_child_of_a_missing_parent_is_promoted():
    """A dummy with one child at the top is replaced by that child."""
    assert thread("REFERENCES", [mail(3, "Re: lost", references="<gone@x>")]) == b"(3)"


def test_missing_message_inside_a_chain_is_pruned():
    """A dummy between two messages disappears and its child moves up to the grandparent."""
    messages = [mail(1, "chain"), mail(5, "Re: chain", references="<1@x> <gone@x>")]
    assert thread("REFERENCES", messages) == b"(1 5)"


def test_missing_root_above_a_present_message_is_pruned():
    """A missing root above a present message is dropped and the thread starts at that message."""
    messages = [mail(3, "start"), mail(4, "Re: start", references="<gone@x> <3@x>")]
    assert thread("REFERENCES", messages) == b"(3 4)"


def test_in_reply_to_is_used_without_references():
    """Without References, the first message ID of In-Reply-To names the parent."""
    messages = [mail(1, "one"), mail(2, "two"),
                mail(3, "Re: other", in_reply_to='"Joe" <2@x> (message of Monday) <1@x>')]
    assert thread("REFERENCES", messages) == b"(1)(2 3)"


def test_references_win_over_in_reply_to():
    """When References holds a message ID, In-Reply-To is ignored."""
    messages = [mail(1, "one"), mail(2, "two"),
                mail(3, "Re: x", references="<1@x>", in_reply_to="<2@x>")]
    assert thread("REFERENCES", messages) == b"(1 3)(2)"


def test_own_last_reference_replaces_a_guessed_parent():
    """A parent guessed from another message's References yields to the message's own (step 1.B)."""
    messages = [mail(1, "root"),
                mail(2, "Re: root", references="<wrong@x> <3@x>"),
                mail(3, "Re: root", references="<1@x>")]
    assert thread("REFERENCES", messages) == b"(1 3 2)"


def test_reference_loop_between_two_messages_terminates():
    """Two messages that reference each other form one thread, each message once."""
    messages = [mail(1, "loop a", references="<2@x>"), mail(2, "loop b", references="<1@x>")]
    assert thread("REFERENCES", messages) == b"(2 1)"


def test_loop_inside_one_references_header_terminates():
    """A References list that repeats an ID makes no cycle: the looping link is skipped."""
    messages = [mail(1, "a"), mail(2, "b"),
                mail(3, "Re: c", references="<1@x> <2@x> <1@x>")]
    assert thread("REFERENCES", messages) == b"(1 (2)(3))"


def test_self_reference_is_ignored():
    """A message that references its own Message-ID stays a thread of its own."""
    assert thread("REFERENCES", [mail(1, "me", references="<1@x>")]) == b"(1)"


def test_duplicate_message_id_belongs_to_the_first_message():
    """With a repeated Message-ID only the lowest-numbered message answers to it."""
    messages = [mail(1, "first", message_id="<same@x>"), mail(2, "second", message_id="<same@x>"),
                mail(3, "Re: first", references="<same@x>")]
    assert thread("REFERENCES", messages) == b"(1 3)(2)"


def test_messages_without_message_id_still_thread():
    """Messages lacking a Message-ID each get their own identity."""
    messages = [mail(1, "a", message_id=""), mail(2, "b", message_id="")]
    assert thread("REFERENCES", messages) == b"(1)(2)"


def test_reply_without_references_joins_by_subject():
    """A reply with no references is filed under the message with its base subject (step 5)."""
    messages = [mail(1, "hello"), mail(2, "other"), mail(3, "Re: hello")]
    assert thread("REFERENCES", messages) == b"(1 3)(2)"


def test_original_wins_over_an_earlier_reply_in_subject_grouping():
    """The non-reply message becomes the parent even when the reply was sent first."""
    messages = [mail(1, "Re: hello", minutes=1), mail(2, "hello", minutes=2)]
    assert thread("REFERENCES", messages) == b"(2 1)"


def test_two_originals_with_one_subject_get_a_dummy_parent():
    """Two non-reply messages with one base subject become siblings under a dummy."""
    messages = [mail(1, "hello"), mail(2, "Hello"), mail(3, "Re: hello")]
    assert thread("REFERENCES", messages) == b"((1)(2)(3))"


def test_dummy_threads_with_one_subject_merge_their_children():
    """Two dummy-rooted threads with one subject merge into a single dummy."""
    messages = [mail(1, "Re: s", references="<p@x>"), mail(2, "Re: s", references="<p@x>"),
                mail(3, "Re: s", references="<q@x>"), mail(4, "Re: s", references="<q@x>")]
    assert thread("REFERENCES", messages) == b"((1)(2)(3)(4))"


def test_empty_subjects_are_not_grouped():
    """Threads whose base subject is empty are never merged by subject."""
    messages = [mail(1, ""), mail(2, "Re:")]
    assert thread("REFERENCES", messages) == b"(1)(2)"


def test_siblings_and_threads_sort_by_sent_date():
    """Children and top-level threads are ordered by sent date, not by sequence number."""
    messages = [mail(1, "late thread", minutes=50),
                mail(2, "root", minutes=0),
                mail(3, "Re: root", references="<2@x>", minutes=30),
                mail(4, "Re: root", references="<2@x>", minutes=10)]
    assert thread("REFERENCES", messages) == b"(2 (4)(3))(1)"


def test_use_uid_renders_uids():
    """With use_uid the thread lists carry UIDs instead of sequence numbers."""
    messages = [mail(1, "x", uid=501), mail(2, "Re: x", references="<1@x>", uid=777)]
    assert thread("REFERENCES", messages, use_uid=True) == b"(501 777)"
    assert thread("ORDEREDSUBJECT", messages, use_uid=True) == b"(501 777)"


def test_no_messages_render_nothing():
    """An empty set of messages renders as an empty body for both algorithms."""
    assert thread("REFERENCES", []) == b""
    assert thread("ORDEREDSUBJECT", []) == b""


def test_deep_reply_chain_does_not_recurse():
    """A reply chain deeper than the recursion limit threads into one flat list."""
    depth = 3000
    messages = [mail(1, "deep")] + [
        mail(n, "Re: deep", references="<%d@x>" % (n - 1)) for n in range(2, depth + 1)]
    assert thread("REFERENCES", messages) == (
        b"(" + b" ".join(b"%d" % n for n in range(1, depth + 1)) + b")")


def test_message_ids_ignore_empty_and_unfold():
    """message_ids finds every <...> identifier, removes folding inside and skips `<>`."""
    assert message_ids('<a@x> "x" <>\r\n <b@\r\n y> junk') == ["<a@x>", "<b@y>"]
