"""The special_use setting (RFC 6154 attributes for named folders): syntax, checks and default."""

import pytest

from server import config


def test_default_names_the_four_folders_clients_create():
    """By default Sent, Drafts, Trash and Junk carry their special-use attributes."""
    assert config.special_use_pairs(config.Config().special_use) == (
        ("Sent", "\\Sent"), ("Drafts", "\\Drafts"), ("Trash", "\\Trash"), ("Junk", "\\Junk"))


def test_names_may_hold_spaces_utf8_and_repeat():
    """Items are Name=\\Attribute split at commas; attribute case is ignored, spelling made canonical."""
    parsed = config.parse("special_use = Sent Items = \\sent,Entwürfe=\\DRAFTS , a=b=\\Archive, "
                          "Archive=\\All, Archive=\\Archive,")
    assert config.special_use_pairs(parsed.special_use) == (
        ("Sent Items", "\\Sent"), ("Entwürfe", "\\Drafts"), ("a=b", "\\Archive"),
        ("Archive", "\\All"), ("Archive", "\\Archive"))


def test_empty_means_no_special_use_folders():
    """An empty value turns the attributes off."""
    assert config.special_use_pairs(config.parse("special_use =").special_use) == ()


@pytest.mark.parametrize("value", ["Sent", "Sent=\\Outbox", "=\\Sent", "Sent=Sent", "Sent:\\Sent"])
def test_bad_items_are_refused_with_the_line(value):
    """A missing name or an attribute RFC 6154 does not define makes the file unusable."""
    with pytest.raises(config.ConfigError, match="line 1: bad value for special_use"):
        config.parse("special_use = " + value)


def test_the_value_reads_back_as_written():
    """The checked value is kept as text, so a generated config file parses to the same setting."""
    value = config.parse("special_use = Sent Items=\\sent ,Junk=\\JUNK").special_use
    assert value == "Sent Items=\\Sent, Junk=\\Junk"
    assert config.parse("special_use = " + value).special_use == value
