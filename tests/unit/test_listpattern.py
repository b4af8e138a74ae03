"""LIST patterns (RFC 3501 §6.3.8): reference handling, `*` and `%`, INBOX, pruning, limits."""

import time

import pytest

from imap.listpattern import MAX_PATTERN, AnyPattern, ListPattern, collapse_wildcards, combine

# RFC 3501 §6.3.8's table of interpretations on a UNIX-based server.
RFC_COMBINATIONS = [
    (b"~smith/Mail/", b"foo.*", b"~smith/Mail/foo.*"),
    (b"archive/", b"%", b"archive/%"),
    (b"#news.", b"comp.mail.*", b"#news.comp.mail.*"),
    (b"~smith/Mail/", b"/usr/doc/foo", b"/usr/doc/foo"),
    (b"archive/", b"~fred/Mail/*", b"~fred/Mail/*"),
    (b"", b"Sent", b"Sent"),
    (b"foo", b"bar", b"foobar"),
    (b"a/", b"#x", b"#x"),
]


@pytest.mark.parametrize("reference, pattern, expected", RFC_COMBINATIONS)
def test_reference_and_pattern_combine_as_rfc_3501_shows(reference, pattern, expected):
    """The reference prefixes the pattern unless the pattern starts with `/`, `~` or `#`."""
    assert combine(reference, pattern) == expected
    assert ListPattern(reference, pattern).combined == expected


# (pattern, name, matches)
MATCH_CASES = [
    (b"*", b"a", True),
    (b"*", b"a/b/c", True),
    (b"%", b"a", True),
    (b"%", b"a/b", False),
    (b"a/%", b"a/b", True),
    (b"a/%", b"a/b/c", False),
    (b"a/*", b"a/b/c", True),
    (b"a/*", b"a", False),
    (b"a*", b"a", True),
    (b"a*", b"ab/c", True),
    (b"a%", b"ab/c", False),
    (b"%/%", b"a/b", True),
    (b"%/%", b"a", False),
    (b"*/b", b"x/y/b", True),
    (b"%/b", b"x/y/b", False),
    (b"a%c", b"abbbc", True),
    (b"a%c", b"ab/bc", False),
    (b"a*c", b"ab/bc", True),
    (b"Sent", b"Sent", True),
    (b"Sent", b"sent", False),
    (b"Sent", b"Sent/x", False),
    (b"", b"", True),
    (b"", b"a", False),
    (b"a.b+c(d)", b"a.b+c(d)", True),
    (b"a.b", b"axb", False),
    (b"*%*", b"a/b", True),
    (b"%%", b"ab", True),
    (b"%%", b"a/b", False),
    (b"/usr/doc/*", b"usr/doc/x", False),
]


@pytest.mark.parametrize("pattern, name, expected", MATCH_CASES)
def test_wildcards_match_as_rfc_3501_defines(pattern, name, expected):
    """`*` matches anything, `%` anything but the delimiter, other bytes themselves."""
    assert ListPattern(b"", pattern).matches(name) is expected


@pytest.mark.parametrize("pattern", [b"INBOX", b"inbox", b"InBox", b"in%", b"I*", b"*", b"%"])
def test_inbox_matches_case_insensitively(pattern):
    """The name INBOX matches any case of its pattern (RFC 3501 §5.1)."""
    assert ListPattern(b"", pattern).matches(b"INBOX")


@pytest.mark.parametrize("pattern", [b"INBOX/%", b"INBOXES", b"x*", b"", b"IN"])
def test_inbox_does_not_match_other_patterns(pattern):
    """Case-insensitivity does not make INBOX match patterns it does not fit."""
    assert not ListPattern(b"", pattern).matches(b"INBOX")


def test_case_insensitivity_is_only_for_inbox():
    """Other names keep their case: `sent` does not match `Sent`."""
    assert not ListPattern(b"", b"inbox/sent").matches(b"INBOX/Sent")
    assert not ListPattern(b"", b"SENT").matches(b"Sent")


def test_reference_is_part_of_the_match():
    """With reference `archive/` the pattern `%` matches only the first level below it."""
    pattern = ListPattern(b"archive/", b"%")
    assert pattern.matches(b"archive/2023")
    assert not pattern.matches(b"2023")
    assert not pattern.matches(b"archive/2023/jan")


# (pattern, prefix, may_descend)
DESCEND_CASES = [
    (b"*", b"a", True),
    (b"*", b"a/b/c", True),
    (b"%", b"a", False),
    (b"a/%", b"a", True),
    (b"a/%", b"b", False),
    (b"a/%", b"a/b", False),
    (b"a/*", b"a/b/c", True),
    (b"%/x", b"anything", True),
    (b"%/x", b"a/b", False),
    (b"a*", b"ab", True),
    (b"a%", b"ab", False),
    (b"foo/bar", b"foo", True),
    (b"foo/bar", b"fo", False),
    (b"foo/bar", b"foo/bar", False),
    (b"INBOX", b"INBOX", False),
]


@pytest.mark.parametrize("pattern, prefix, expected", DESCEND_CASES)
def test_may_descend_tells_whether_names_below_can_match(pattern, prefix, expected):
    """may_descend is False exactly when no name below `prefix/` can match."""
    assert ListPattern(b"", pattern).may_descend(prefix) is expected


# (pattern, literal prefix)
PREFIX_CASES = [
    (b"*", b""),
    (b"%", b""),
    (b"foo", b""),
    (b"a/b/c%", b"a/b"),
    (b"a/%/c", b"a"),
    (b"a/b/c", b"a/b"),
    (b"a/b/", b"a/b"),
    (b"a*/b", b""),
    (b"/etc/*", b"/etc"),
    (b"", b""),
]


@pytest.mark.parametrize("pattern, expected", PREFIX_CASES)
def test_literal_prefix_is_the_directory_before_the_first_wildcard(pattern, expected):
    """literal_prefix names the deepest level every matching name lies under."""
    assert ListPattern(b"", pattern).literal_prefix() == expected


@pytest.mark.parametrize("raw, collapsed", [
    (b"a**b", b"a*b"), (b"a%%b", b"a%b"), (b"a%*%b", b"a*b"), (b"*%", b"*"), (b"%a%", b"%a%"),
])
def test_runs_of_wildcards_collapse_to_one(raw, collapsed):
    """A run of wildcards becomes `*` if it holds a `*`, else `%`."""
    assert collapse_wildcards(raw) == collapsed


def test_delimiter_is_configurable():
    """With `.` as delimiter, `%` stops at dots and `/` is an ordinary byte."""
    pattern = ListPattern(b"", b"a.%", delimiter=b".")
    assert pattern.matches(b"a.b/c")
    assert not pattern.matches(b"a.b.c")


def test_pathological_patterns_stay_fast():
    """Many wildcards against a long non-matching name finish at once, not after hours."""
    started = time.monotonic()
    name = b"a" * 1000
    for wildcard in (b"*", b"%"):
        pattern = ListPattern(b"", (wildcard + b"a") * 300 + wildcard + b"b")
        assert not pattern.matches(name)
        assert pattern.matches(name + b"b")
        assert pattern.may_descend(name) is (wildcard == b"*")
    assert time.monotonic() - started < 5


def test_long_runs_of_wildcards_are_accepted_after_collapsing():
    """Thousands of consecutive `*` collapse to one and match everything."""
    assert ListPattern(b"", b"*" * 10000).matches(b"x/y")


def test_overlong_patterns_are_refused():
    """A pattern longer than MAX_PATTERN bytes after collapsing raises ValueError."""
    ListPattern(b"", b"x" * MAX_PATTERN)
    with pytest.raises(ValueError):
        ListPattern(b"x" * MAX_PATTERN, b"y")


def any_of(*patterns):
    return AnyPattern([ListPattern(b"", pattern) for pattern in patterns])


def test_any_pattern_matches_what_one_of_its_patterns_matches():
    """RFC 5258 pattern lists: a name matches when any pattern does, INBOX included."""
    patterns = any_of(b"INBOX", b"Work/%", b"*o")
    assert [name for name in (b"INBOX", b"Work/a", b"Work/a/b", b"Moo", b"Ma", b"inbox")
            if patterns.matches(name)] == [b"INBOX", b"Work/a", b"Moo", b"inbox"]


def test_any_pattern_descends_where_any_pattern_can_match_below():
    """A folder walk enters a directory when one of the patterns can match below it."""
    patterns = any_of(b"Work/%", b"Home/x/*")
    assert patterns.may_descend(b"Work") and patterns.may_descend(b"Home/x")
    assert not patterns.may_descend(b"Play") and not patterns.may_descend(b"Work/a")


@pytest.mark.parametrize("patterns, expected", [
    ((b"a/b/c%", b"a/b/d"), b"a/b"),
    ((b"a/b/%", b"a/c/%"), b"a"),
    ((b"a/%", b"b/%"), b""),
    ((b"a/b/%", b"*"), b""),
    ((b"x/%",), b"x"),
])
def test_any_pattern_walks_from_the_levels_all_patterns_share(patterns, expected):
    """The walk starts at the common literal levels, so no pattern's names are missed."""
    assert any_of(*patterns).literal_prefix() == expected
