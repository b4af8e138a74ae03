"""Dovecot's files in a Maildir folder: `dovecot-uidlist` (UIDs) and `dovecot-keywords`.

Pure parsing and rendering, plus reading and atomic replacement; the locks
around them are mailstore.maildir's concern.

dovecot-uidlist, version 3 (Dovecot >= 1.1):

    3 V<uidvalidity> N<next uid> G<mailbox guid, 32 hex digits>
    <uid> [<key><value> ...] :<file name up to its ":2," info>

Header fields may come in any order and unknown ones are kept; record
fields (W<virtual size>, S<size>, ...) are kept as they are.  pyimapd adds
Z<zone minutes> to the records of APPENDed messages, so INTERNALDATE keeps
its zone as in mbox; Dovecot keeps the field and ignores it.  Dovecot may
append records under its lock without touching the header, so the next UID
is the larger of N and the highest UID + 1.  Version 1 (Courier's
courierimapuiddb: `1 <uidvalidity> <next uid>`, records `<uid> <name>`) is
read too and written back as version 3.

dovecot-keywords: `<index> <keyword>` per line; index 0 is the file-name
letter a, 1 is b, ... 25 is z.
"""

import contextlib
import os

VERSION = 3
MAX_KEYWORDS = 26


class UidList:
    """One folder's UID state: UIDVALIDITY, next UID, and file base name -> (uid, fields)."""

    def __init__(self, uidvalidity, next_uid, guid, header_extra=(), records=None):
        self.uidvalidity = uidvalidity
        self.next_uid = next_uid
        self.guid = guid
        self.header_extra = list(header_extra)
        self.records = records if records is not None else {}

    def add(self, base, fields=""):
        """Give a new file the next UID and return it."""
        uid = self.next_uid
        self.records[base] = (uid, fields)
        self.next_uid += 1
        return uid

    def uid(self, base):
        record = self.records.get(base)
        return record[0] if record else None

    def render(self):
        """The file's bytes, version 3, records in UID order."""
        header = ["%d" % VERSION, "V%d" % self.uidvalidity, "N%d" % self.next_uid]
        if self.guid:
            header.append("G" + self.guid)
        header.extend(self.header_extra)
        lines = [" ".join(header)]
        for base, (uid, fields) in sorted(self.records.items(), key=lambda item: item[1][0]):
            lines.append(record_line(uid, fields, base))
        return ("\n".join(lines) + "\n").encode("utf-8", "surrogateescape")


def record_line(uid, fields, base):
    """One record as the file holds it, without its newline."""
    return "%d %s:%s" % (uid, fields + " " if fields else "", base)


def append_record(fd, uid, fields, base):
    """Append one record to an open uidlist, as Dovecot does under the lock: a kill -9 leaves
    the line whole or without its newline, which readers skip."""
    data = (record_line(uid, fields, base) + "\n").encode("utf-8", "surrogateescape")
    while data:
        data = data[os.write(fd, data):]


def zone_field(minutes):
    """Our record field for APPEND's time zone (the file's mtime keeps only the instant)."""
    return "Z%+d" % minutes


def zone_of(fields):
    """The zone in minutes from a record's fields, or None (Dovecot writes no Z field)."""
    for field in fields.split():
        if field[:1] == "Z" and field[1:].lstrip("+-").isdigit():
            return int(field[1:])
    return None


def parse_uidlist(data):
    """A UidList from the file's bytes, or None when the header is not one we understand.

    A last line without its newline is being appended by another writer and
    is left out; a record with a UID that does not increase is dropped (its
    file gets a new UID, as Dovecot does with a broken record).
    """
    lines = data.decode("utf-8", "surrogateescape").split("\n")
    if len(lines) < 2:
        return None  # not even a complete header line
    header = lines[0].split()
    if not header or header[0] not in ("1", "3"):
        return None
    uidlist = _parse_header(header)
    if uidlist is None:
        return None
    highest = 0
    for line in lines[1:-1]:
        parsed = _parse_record(line, header[0])
        if parsed is None or parsed[0] <= highest:
            continue
        uid, fields, base = parsed
        uidlist.records[base] = (uid, fields)
        highest = uid
    uidlist.next_uid = max(uidlist.next_uid, highest + 1)
    return uidlist


def _parse_header(header):
    if header[0] == "1":
        if len(header) < 3 or not header[1].isdigit() or not header[2].isdigit():
            return None
        return UidList(int(header[1]), int(header[2]), "")
    values, extra = {}, []
    for field in header[1:]:
        if field[:1] in ("V", "N", "G") and field[:1] not in values:
            values[field[:1]] = field[1:]
        else:
            extra.append(field)
    if not values.get("V", "").isdigit() or not values.get("N", "").isdigit():
        return None
    uidvalidity = int(values["V"])
    if not 0 < uidvalidity <= 0xFFFFFFFF:
        return None
    return UidList(uidvalidity, max(1, int(values["N"])), values.get("G", ""), extra)


def _parse_record(line, version):
    """(uid, fields, base) from one record line, or None."""
    if version == "1":
        uid, _, base = line.partition(" ")
        fields = ""
    else:
        head, sep, base = line.partition(" :")
        if not sep:
            head, sep, base = line.partition(":")  # a record with nothing before the name
        uid, _, fields = head.strip().partition(" ")
    if not uid.isdigit() or not base or "/" in base:
        return None
    return int(uid), fields.strip(), base


def parse_keywords(data):
    """The keyword names by index (None for unused indexes) from dovecot-keywords bytes."""
    names = [None] * MAX_KEYWORDS
    for line in data.decode("utf-8", "replace").split("\n"):
        index, _, name = line.partition(" ")
        name = name.strip()
        if index.isdigit() and int(index) < MAX_KEYWORDS and name and " " not in name:
            names[int(index)] = name
    while names and names[-1] is None:
        names.pop()
    return names


def render_keywords(names):
    return "".join("%d %s\n" % (index, name) for index, name in enumerate(names)
                   if name).encode("utf-8")


def read_file(path):
    """The file's bytes, or None when it does not exist."""
    try:
        with open(path, "rb") as handle:
            return handle.read()
    except FileNotFoundError:
        return None


def replace_file(path, data, mode=0o600):
    """Write data to a temporary file, sync it, and rename it over path.

    The caller holds the file's lock, so one fixed temporary name suffices;
    a kill -9 leaves at worst that temporary file, which the next writer
    truncates.  Readers see the old file or the new one, never a mixture.
    """
    temporary = path + ".tmp"
    flags = os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW | os.O_NOCTTY
    fd = os.open(temporary, flags, mode)
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view):]
        os.fsync(fd)
    except BaseException:
        os.close(fd)
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise
    os.close(fd)
    os.rename(temporary, path)
