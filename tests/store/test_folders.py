"""Folder management of the mbox store: names to paths, LIST, CREATE, DELETE, RENAME, LSUB."""

import os
import stat

import pytest

from imap.listpattern import ListPattern
from mailstore import StoreError
from mailstore import folders
from mailstore.folders import (HAS_CHILDREN, HAS_NO_CHILDREN, MARKED, NOINFERIORS, NOSELECT,
                               UNMARKED)
from mailstore.location import Location
from mailstore.locking import lock_mbox
from mailstore.mbox import MboxMailbox
from mailstore.mboxstore import MboxStore
from server.config import Config

HOST = "mail.example.org"
MESSAGE = b"From a@example.org Wed Dec  2 05:53:22 1992\nSubject: x\n\nbody\n\n"


@pytest.fixture
def location(tmp_path):
    """A user whose folders live in tmp_path/home and whose INBOX is tmp_path/spool/u."""
    home = tmp_path / "home"
    home.mkdir()
    (tmp_path / "spool").mkdir()
    return Location("mbox", str(home), str(tmp_path / "spool" / "u"), str(home / ".pyimapd"))


def write(location, name, data=MESSAGE):
    """Create the file `name` under the root (and its directories) with data."""
    path = os.path.join(location.root, name)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as handle:
        handle.write(data)
    return path


def listing(location, pattern, reference=b""):
    """LIST as a dict of name to attribute set."""
    return dict(folders.list_folders(location, ListPattern(reference, pattern)))


def open_folder(location, path):
    """Open a folder file read-only with the mbox driver."""
    store = MboxStore(location, Config({"mbox_lock_timeout": 1}))
    mailbox = MboxMailbox(path, store, readonly=True)
    mailbox.open()
    return mailbox


def assert_refused(kind, call, *args):
    """call(*args) raises StoreError of that kind."""
    with pytest.raises(StoreError) as raised:
        call(*args)
    assert raised.value.kind == kind
    return raised.value


# -- resolve ----------------------------------------------------------------

def test_resolve_maps_names_under_the_root(location):
    """Plain and hierarchical names are paths under the root; INBOX is the spool file."""
    root = os.path.realpath(location.root)
    assert folders.resolve(location, b"Sent") == os.path.join(root, "Sent")
    assert folders.resolve(location, b"a/b&AOk-") == os.path.join(root, "a", "b&AOk-")
    assert folders.resolve(location, b"INBOX") == location.inbox


REFUSED_NAMES = [
    b"/etc/passwd", b"~bob/mail", b"~/Sent", b"#news.comp", b"..", b".", b"a/../b",
    b"a/./b", b"../x", b"a//b", b"a/", b".hidden", b"a/.b", b"a\x00b", b"a\rb", b"a\nb",
    b"caf\xc3\xa9", b"", b"x" * (folders.MAX_NAME + 1), b"INBOX/sub", b"inbox/sub",
]


@pytest.mark.parametrize("name", REFUSED_NAMES)
def test_resolve_refuses_names_that_leave_the_root_or_are_malformed(location, name):
    """Absolute, ~, #, dot, empty-level, control, 8-bit and INBOX/… names are NO_PERMISSION."""
    assert_refused(StoreError.NO_PERMISSION, folders.resolve, location, name)


def test_resolve_refuses_a_symlinked_directory_pointing_outside(location, tmp_path):
    """A directory in the root that links outside it cannot be used to reach other files."""
    (tmp_path / "elsewhere").mkdir()
    os.symlink(tmp_path / "elsewhere", os.path.join(location.root, "out"))
    assert_refused(StoreError.NO_PERMISSION, folders.resolve, location, b"out/x")
    assert_refused(StoreError.NO_PERMISSION, folders.create, location, b"out/x", HOST)
    assert not os.listdir(tmp_path / "elsewhere")


def test_resolve_allows_a_symlinked_directory_inside_the_root(location):
    """A link from one directory of the root to another stays allowed."""
    os.mkdir(os.path.join(location.root, "real"))
    os.symlink("real", os.path.join(location.root, "Mail"))
    expected = os.path.join(os.path.realpath(location.root), "real", "x")
    assert folders.resolve(location, b"Mail/x") == expected


def test_resolve_refuses_another_name_for_the_spool_file(tmp_path):
    """With INBOX=~/mbox, the folder name `mbox` would be a second name for INBOX."""
    home = tmp_path / "home"
    home.mkdir()
    location = Location("mbox", str(home), str(home / "mbox"), str(home / ".pyimapd"))
    assert_refused(StoreError.NO_PERMISSION, folders.resolve, location, b"mbox")


def test_resolve_refuses_an_undotted_index_directory(tmp_path):
    """An index directory inside the root is never reachable as a folder."""
    home = tmp_path / "home"
    home.mkdir()
    location = Location("mbox", str(home), str(tmp_path / "spool"), str(home / "index"))
    assert_refused(StoreError.NO_PERMISSION, folders.resolve, location, b"index/x")


# -- CREATE -----------------------------------------------------------------

def test_create_writes_a_pseudo_message_the_driver_opens_as_empty(location):
    """A new folder holds UW's pseudo-message: a valid mbox with no messages and a fresh UIDVALIDITY."""
    folders.create(location, b"Sent", HOST)
    path = folders.resolve(location, b"Sent")
    with open(path, "rb") as handle:
        data = handle.read()
    assert data.startswith(b"From MAILER-DAEMON ")
    assert b"X-IMAP: " in data and b" 0000000000\n" in data
    assert b"MAILER-DAEMON@" + HOST.encode() in data
    mailbox = open_folder(location, path)
    try:
        assert mailbox.messages == []
        assert mailbox.uidnext == 1
        assert abs(mailbox.uidvalidity - os.stat(path).st_mtime) < 5
    finally:
        mailbox.close()


def test_create_makes_missing_levels_with_private_modes(location):
    """Missing parent directories are made 0700 and the file 0600, whatever the umask."""
    old_umask = os.umask(0)
    try:
        folders.create(location, b"a/b/c", HOST)
    finally:
        os.umask(old_umask)
    root = location.root
    assert stat.S_IMODE(os.stat(os.path.join(root, "a")).st_mode) == 0o700
    assert stat.S_IMODE(os.stat(os.path.join(root, "a", "b")).st_mode) == 0o700
    assert stat.S_IMODE(os.stat(os.path.join(root, "a", "b", "c")).st_mode) == 0o600


def test_create_with_trailing_delimiter_makes_directories_only(location):
    """`CREATE a/b/` makes the levels a and a/b and no file (RFC 3501 §6.3.3)."""
    folders.create(location, b"a/b/", HOST)
    assert os.path.isdir(os.path.join(location.root, "a", "b"))
    assert os.listdir(os.path.join(location.root, "a", "b")) == []
    assert listing(location, b"*") == {b"INBOX": {NOINFERIORS, UNMARKED},
                                       b"a": {NOSELECT, HAS_CHILDREN},
                                       b"a/b": {NOSELECT, HAS_NO_CHILDREN}}


def test_create_refuses_existing_names(location):
    """An existing file or directory gives EXISTS and is left as it was."""
    path = write(location, "Sent")
    os.mkdir(os.path.join(location.root, "dir"))
    assert_refused(StoreError.EXISTS, folders.create, location, b"Sent", HOST)
    assert_refused(StoreError.EXISTS, folders.create, location, b"dir", HOST)
    assert_refused(StoreError.EXISTS, folders.create, location, b"dir/", HOST)
    with open(path, "rb") as handle:
        assert handle.read() == MESSAGE


@pytest.mark.parametrize("name", [b"INBOX", b"inbox", b"Inbox"])
def test_create_inbox_is_refused_as_existing(location, name):
    """CREATE INBOX answers EXISTS with UW's text and creates nothing."""
    error = assert_refused(StoreError.EXISTS, folders.create, location, name, HOST)
    assert str(error) == "Can't create INBOX"
    assert not os.path.exists(location.inbox)


@pytest.mark.parametrize("name", [b"a*b", b"a%", b"caf\xc3\xa9", b"a\r\nb", b"a//b/"])
def test_create_refuses_wildcards_and_invalid_names(location, name):
    """Wildcards, 8-bit bytes, CR/LF and empty levels are refused with NO_PERMISSION."""
    assert_refused(StoreError.NO_PERMISSION, folders.create, location, name, HOST)
    assert os.listdir(location.root) == []


def test_create_below_a_folder_file_is_refused(location):
    """An mbox file cannot hold other folders, so `CREATE Sent/x` fails when Sent is a file."""
    write(location, "Sent")
    assert_refused(StoreError.NO_PERMISSION, folders.create, location, b"Sent/x", HOST)


def test_created_folder_is_unmarked(location):
    """A new folder has no new mail, so LIST shows it \\Unmarked."""
    folders.create(location, b"Drafts", HOST)
    assert listing(location, b"Drafts") == {b"Drafts": {NOINFERIORS, UNMARKED}}


# -- DELETE -----------------------------------------------------------------

def test_delete_removes_a_folder_file(location):
    """DELETE unlinks the folder's file."""
    folders.create(location, b"Trash", HOST)
    folders.delete(location, b"Trash")
    assert not os.path.exists(os.path.join(location.root, "Trash"))


def test_delete_inbox_is_refused(location):
    """DELETE INBOX fails with UW's text and leaves the spool file."""
    write(location, "../spool/u")
    error = assert_refused(StoreError.NO_PERMISSION, folders.delete, location, b"INBOX")
    assert str(error) == "Can't delete INBOX"
    assert os.path.exists(location.inbox)


def test_delete_missing_is_not_found(location):
    """DELETE of a name that does not exist is NOT_FOUND."""
    assert_refused(StoreError.NOT_FOUND, folders.delete, location, b"nothing")


def test_delete_directory_only_when_empty(location):
    """A \\Noselect level with inferiors is refused; once empty it is removed."""
    folders.create(location, b"a/b", HOST)
    assert_refused(StoreError.HAS_CHILDREN, folders.delete, location, b"a")
    folders.delete(location, b"a/b")
    folders.delete(location, b"a")
    assert os.listdir(location.root) == []


def test_delete_directory_with_hidden_files_is_refused(location):
    """Files LIST does not show still block a directory's removal: they are not ours."""
    write(location, "a/.keep", b"user data")
    assert_refused(StoreError.HAS_CHILDREN, folders.delete, location, b"a")
    assert os.path.exists(os.path.join(location.root, "a", ".keep"))


def test_delete_refuses_files_that_are_not_mbox(location):
    """A non-mbox file in the home directory is not a mailbox and is not deleted."""
    write(location, "thesis.tex", b"\\documentclass{article}\n")
    assert_refused(StoreError.NOT_FOUND, folders.delete, location, b"thesis.tex")
    assert os.path.exists(os.path.join(location.root, "thesis.tex"))


def test_delete_refuses_a_symlink(location, tmp_path):
    """A symbolic link is not a mailbox (the driver refuses it too) and stays."""
    target = write(location, "../target")
    os.symlink(target, os.path.join(location.root, "link"))
    assert_refused(StoreError.NO_PERMISSION, folders.delete, location, b"link")
    assert os.path.islink(os.path.join(location.root, "link"))


def test_delete_waits_for_the_mta_lock(location):
    """A folder locked by a delivery agent is IN_USE and survives."""
    path = write(location, "lists")
    fd = os.open(path, os.O_RDWR)
    try:
        with lock_mbox(path, fd, exclusive=True, timeout=1):
            assert_refused(StoreError.IN_USE, folders.delete, location, b"lists", 0)
    finally:
        os.close(fd)
    assert os.path.exists(path)


# -- RENAME -----------------------------------------------------------------

def test_rename_moves_a_file_into_new_levels(location):
    """RENAME a file to a deeper name creates the missing levels and keeps the content."""
    path = write(location, "old")
    folders.rename(location, b"old", b"archive/2024/old")
    assert not os.path.exists(path)
    with open(os.path.join(location.root, "archive", "2024", "old"), "rb") as handle:
        assert handle.read() == MESSAGE


def test_rename_moves_a_directory_with_its_children(location):
    """RENAME of a level moves every folder below it (RFC 3501 §6.3.5)."""
    write(location, "a/x")
    write(location, "a/b/y")
    folders.rename(location, b"a", b"c")
    names = set(listing(location, b"*"))
    assert names == {b"INBOX", b"c", b"c/x", b"c/b", b"c/b/y"}


@pytest.mark.parametrize("target", [b"dest", b"dir"])
def test_rename_onto_an_existing_name_is_refused(location, target):
    """An existing target, file or directory (even empty), gives EXISTS and nothing moves."""
    write(location, "src")
    write(location, "dest", MESSAGE + MESSAGE)
    os.mkdir(os.path.join(location.root, "dir"))
    assert_refused(StoreError.EXISTS, folders.rename, location, b"src", target)
    with open(os.path.join(location.root, "dest"), "rb") as handle:
        assert handle.read() == MESSAGE + MESSAGE
    assert os.path.exists(os.path.join(location.root, "src"))


def test_rename_missing_source_is_not_found(location):
    """RENAME of a name that does not exist is NOT_FOUND."""
    assert_refused(StoreError.NOT_FOUND, folders.rename, location, b"none", b"other")


def test_rename_inbox_is_left_to_the_session(location):
    """RENAME INBOX (which moves messages) is refused here; RENAME to INBOX is EXISTS."""
    write(location, "x")
    assert_refused(StoreError.NO_PERMISSION, folders.rename, location, b"INBOX", b"old")
    assert_refused(StoreError.EXISTS, folders.rename, location, b"x", b"inbox")


def test_rename_into_itself_is_refused(location):
    """A level cannot be moved below itself."""
    write(location, "a/x")
    assert_refused(StoreError.NO_PERMISSION, folders.rename, location, b"a", b"a/b")


def test_rename_below_a_folder_file_is_refused(location):
    """A folder file cannot become a level, so renaming to `Sent/x` fails when Sent is a file."""
    write(location, "x")
    write(location, "Sent")
    assert_refused(StoreError.NO_PERMISSION, folders.rename, location, b"x", b"Sent/x")
    assert os.path.exists(os.path.join(location.root, "x"))


def test_rename_refuses_invalid_targets(location):
    """Targets with wildcards or outside the root are refused and the source stays."""
    write(location, "x")
    for target in (b"y*", b"../y", b"/tmp/y", b".y"):
        assert_refused(StoreError.NO_PERMISSION, folders.rename, location, b"x", target)
    assert os.listdir(location.root) == ["x"]


# -- LIST -------------------------------------------------------------------

@pytest.fixture
def tree(location):
    """A home directory with folders, levels and things LIST must hide."""
    write(location, "Sent")
    write(location, "Drafts", b"")
    write(location, "work/reports")
    write(location, "work/2024/q1")
    os.mkdir(os.path.join(location.root, "empty"))
    write(location, "notes.txt", b"not mail\n")
    write(location, ".bashrc", b"From x\n")
    write(location, ".pyimapd/index", b"")
    write(location, "inbox", MESSAGE)
    write(location, "caf\xe9", MESSAGE)
    os.symlink("Sent", os.path.join(location.root, "sent-link"))
    os.symlink("work", os.path.join(location.root, "work-link"))
    os.mkfifo(os.path.join(location.root, "fifo"))
    return location


def test_list_star_shows_the_whole_tree_with_attributes(tree):
    """`*` lists INBOX, files (\\Noinferiors) and levels (\\Noselect, children) and hides the rest."""
    assert set(listing(tree, b"*")) == {b"INBOX", b"Sent", b"Drafts", b"work", b"work/reports",
                                        b"work/2024", b"work/2024/q1", b"empty"}
    result = listing(tree, b"*")
    assert result[b"work"] == {NOSELECT, HAS_CHILDREN}
    assert result[b"empty"] == {NOSELECT, HAS_NO_CHILDREN}
    assert NOINFERIORS in result[b"Sent"]


def test_list_percent_stays_on_one_level(tree):
    """`%` lists the top level only, levels included."""
    assert set(listing(tree, b"%")) == {b"INBOX", b"Sent", b"Drafts", b"work", b"empty"}
    assert set(listing(tree, b"%", reference=b"work/")) == {b"work/reports", b"work/2024"}


def test_list_is_sorted_depth_first(tree):
    """Names come INBOX first, then in byte order, each level before what it holds."""
    names = [name for name, _ in folders.list_folders(tree, ListPattern(b"", b"*"))]
    assert names == [b"INBOX", b"Drafts", b"Sent", b"empty", b"work", b"work/2024",
                     b"work/2024/q1", b"work/reports"]


def test_list_marks_files_with_new_mail(location):
    """A non-empty file written after it was last read is \\Marked; read or empty is \\Unmarked."""
    new, read = write(location, "new"), write(location, "read")
    write(location, "empty", b"")
    os.utime(new, (1000, 2000))
    os.utime(read, (2000, 1000))
    result = listing(location, b"*")
    assert result[b"new"] == {NOINFERIORS, MARKED}
    assert result[b"read"] == {NOINFERIORS, UNMARKED}
    assert result[b"empty"] == {NOINFERIORS, UNMARKED}


def test_list_does_not_clear_the_new_mail_state(location):
    """Reading a file's first bytes to check its format leaves its atime alone."""
    path = write(location, "new")
    os.utime(path, (1000, 2000))
    listing(location, b"*")
    assert os.stat(path).st_atime == 1000


def test_list_inbox_attributes_come_from_the_spool(location):
    """INBOX is listed even when the spool is missing, always \\Noinferiors, marked by its times."""
    assert listing(location, b"INBOX") == {b"INBOX": {NOINFERIORS, UNMARKED}}
    with open(location.inbox, "wb") as handle:
        handle.write(MESSAGE)
    os.utime(location.inbox, (1000, 2000))
    assert listing(location, b"inbox") == {b"INBOX": {NOINFERIORS, MARKED}}


def test_list_accepts_mbox_files_with_leading_white_space(location):
    """A file starting with blank lines before its From_ line is still an mbox (UW)."""
    write(location, "padded", b"\n\n" + MESSAGE)
    write(location, "blank", b"\n")
    assert set(listing(location, b"%")) == {b"INBOX", b"padded", b"blank"}


def test_list_hides_the_spool_file_under_the_root(tmp_path):
    """With INBOX=~/mbox the file mbox is listed only as INBOX."""
    home = tmp_path / "home"
    home.mkdir()
    location = Location("mbox", str(home), str(home / "mbox"), str(home / ".pyimapd"))
    write(location, "mbox")
    assert set(listing(location, b"*")) == {b"INBOX"}


@pytest.mark.parametrize("pattern", [b"../*", b"/etc/*", b".pyimapd/*", b"work-link/*",
                                     b"inbox/*", b"~/*", b"fifo/*"])
def test_list_never_walks_outside_or_into_hidden_places(tree, pattern):
    """Patterns whose literal prefix is unsafe or hidden list nothing."""
    assert listing(tree, pattern) == {}


def test_list_prunes_directories_the_pattern_cannot_reach(tree, monkeypatch):
    """`work/%` reads the root's children only as far as the pattern needs."""
    scanned = []
    real_scandir = os.scandir

    def recording_scandir(path):
        scanned.append(os.fsdecode(path))
        return real_scandir(path)

    monkeypatch.setattr(os, "scandir", recording_scandir)
    assert set(listing(tree, b"work/%")) == {b"work/reports", b"work/2024"}
    relative = {os.path.relpath(path, os.path.realpath(tree.root)) for path in scanned}
    assert relative == {"work", "work/2024"}


def test_list_skips_unreadable_directories_silently(tree, monkeypatch):
    """A directory that cannot be read is listed without children and the walk goes on."""
    real_scandir = os.scandir
    work = os.fsencode(os.path.join(os.path.realpath(tree.root), "work"))

    def refusing_scandir(path):
        if path == work:
            raise PermissionError(13, "Permission denied")
        return real_scandir(path)

    monkeypatch.setattr(os, "scandir", refusing_scandir)
    result = listing(tree, b"*")
    assert result[b"work"] == {NOSELECT, HAS_NO_CHILDREN}
    assert b"work/reports" not in result and b"Sent" in result


def test_list_has_no_children_when_a_level_holds_only_hidden_files(location):
    """\\HasChildren counts only what LIST would show (RFC 3348)."""
    write(location, "a/notes.txt", b"plain text\n")
    write(location, "a/.hidden")
    assert listing(location, b"a") == {b"a": {NOSELECT, HAS_NO_CHILDREN}}


# -- Subscriptions ----------------------------------------------------------

def test_subscriptions_round_trip_in_uw_format(location):
    """SUBSCRIBE appends to ~/.mailboxlist one name per line; UNSUBSCRIBE removes it."""
    assert folders.subscribed(location) == []
    for name in (b"Sent", b"work/reports", b"inbox", b"Sent"):
        folders.subscribe(location, name)
    assert folders.subscribed(location) == [b"Sent", b"work/reports", b"INBOX"]
    path = folders.subscriptions_path(location)
    assert path == os.path.join(location.root, ".mailboxlist")
    with open(path, "rb") as handle:
        assert handle.read() == b"Sent\nwork/reports\nINBOX\n"
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    folders.unsubscribe(location, b"Sent")
    assert folders.subscribed(location) == [b"work/reports", b"INBOX"]
    assert sorted(os.listdir(location.root)) == [".mailboxlist"]


def test_unsubscribe_of_an_unsubscribed_name_is_not_found(location):
    """UNSUBSCRIBE of a name not in the list is NOT_FOUND, with or without a file."""
    assert_refused(StoreError.NOT_FOUND, folders.unsubscribe, location, b"Sent")
    folders.subscribe(location, b"Drafts")
    assert_refused(StoreError.NOT_FOUND, folders.unsubscribe, location, b"Sent")


def test_subscriptions_read_uw_files(location):
    """A list written by UW (or by hand, with CRLF and blank lines) reads back in order."""
    with open(folders.subscriptions_path(location), "wb") as handle:
        handle.write(b"Sent\r\n\nmail/lists\nSent\n")
    assert folders.subscribed(location) == [b"Sent", b"mail/lists"]


def test_subscriptions_keep_mode_0600(location):
    """A list left readable by others is rewritten private."""
    path = folders.subscriptions_path(location)
    with open(path, "wb") as handle:
        handle.write(b"Sent\n")
    os.chmod(path, 0o644)
    folders.subscribe(location, b"Drafts")
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600


@pytest.mark.parametrize("name", [b"a\nb", b"a\rb", b"", b"/etc/x"])
def test_subscribe_refuses_names_that_would_corrupt_the_list(location, name):
    """Names with line breaks or that leave the root are never written to the list."""
    assert_refused(StoreError.NO_PERMISSION, folders.subscribe, location, name)
    assert not os.path.exists(folders.subscriptions_path(location))
