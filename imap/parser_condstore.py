"""The grammar CONDSTORE and QRESYNC add (RFC 7162 §7), on imap.parser's primitives.

SELECT/EXAMINE parameters (CONDSTORE, QRESYNC), the FETCH modifiers
CHANGEDSINCE and VANISHED, the STORE modifier UNCHANGEDSINCE, and the
MODSEQ search key.
"""

from imap.parser import DIGITS, nz_number, parenthesised, quoted, sequence_set

# mod-sequence-value: a positive 63-bit number (RFC 7162 §7); 0 only where
# mod-sequence-valzer allows it.
MAX_MODSEQ = (1 << 63) - 1


class SelectParameters:
    """SELECT/EXAMINE parameters (RFC 4466 §2.1): CONDSTORE, and QRESYNC's
    (uidvalidity, modseq, known UIDs or None, (known numbers, known UIDs) or None)."""

    __slots__ = ("condstore", "qresync")

    def __init__(self, condstore=False, qresync=None):
        self.condstore, self.qresync = condstore, qresync

    def __eq__(self, other):
        return isinstance(other, SelectParameters) and (self.condstore, self.qresync) == (
            other.condstore, other.qresync)

    def __repr__(self):
        return "SelectParameters(condstore=%r, qresync=%r)" % (self.condstore, self.qresync)


class FetchModifiers:
    """FETCH (CHANGEDSINCE modseq [VANISHED]) (RFC 7162 §3.1.4.1, §3.2.6)."""

    __slots__ = ("changedsince", "vanished")

    def __init__(self, changedsince, vanished=False):
        self.changedsince, self.vanished = changedsince, vanished

    def __eq__(self, other):
        return isinstance(other, FetchModifiers) and (self.changedsince, self.vanished) == (
            other.changedsince, other.vanished)

    def __repr__(self):
        return "FetchModifiers(%r, vanished=%r)" % (self.changedsince, self.vanished)


def mod_sequence_value(cursor, invalid, zero_allowed=False):
    """mod-sequence-value (1..2^63-1), or mod-sequence-valzer when zero_allowed."""
    digits = cursor.take(DIGITS)
    if not digits or len(digits) > 19 or int(digits) > MAX_MODSEQ:
        raise cursor.fail(invalid)
    if int(digits) == 0 and not zero_allowed:
        raise cursor.fail(invalid)
    return int(digits)


def select_parameters(cursor):
    """SP "(" select-param *(SP select-param) ")" as SelectParameters."""
    cursor.space("Invalid SELECT parameters")
    parameters = SelectParameters()

    def select_param(cursor):
        name = cursor.word()
        if name == "CONDSTORE" and not parameters.condstore:
            parameters.condstore = True
        elif name == "QRESYNC" and parameters.qresync is None:
            cursor.space("Invalid QRESYNC parameter")
            parameters.qresync = qresync_parameter(cursor)
        else:
            raise cursor.fail("Unknown SELECT parameter")
        return name

    parenthesised(cursor, select_param, "Invalid SELECT parameters")
    return parameters


def qresync_parameter(cursor):
    """"(" uidvalidity SP mod-sequence-value [SP known-uids] [SP seq-match-data] ")" """
    invalid = "Invalid QRESYNC parameter"
    cursor.expect(b"(", invalid)
    uidvalidity = nz_number(cursor, invalid)
    cursor.space(invalid)
    modseq = mod_sequence_value(cursor, invalid)
    known_uids = seq_match = None
    if cursor.skip(b" "):
        if cursor.peek() != b"(":
            known_uids = _uid_set(cursor, invalid)
            if cursor.skip(b" "):
                seq_match = seq_match_data(cursor, invalid)
        else:
            seq_match = seq_match_data(cursor, invalid)
    cursor.expect(b")", invalid)
    return uidvalidity, modseq, known_uids, seq_match


def seq_match_data(cursor, invalid):
    """"(" known-sequence-set SP known-uid-set ")" as (numbers, UIDs)."""
    cursor.expect(b"(", invalid)
    numbers = _uid_set(cursor, invalid)
    cursor.space(invalid)
    uids = _uid_set(cursor, invalid)
    cursor.expect(b")", invalid)
    return numbers, uids


def _uid_set(cursor, invalid):
    """A sequence set without "*" or `$` (RFC 7162 §7 known-uids)."""
    ranges = sequence_set(cursor)
    if ranges == "$" or any(None in pair for pair in ranges):
        raise cursor.fail(invalid)
    return ranges


def fetch_modifiers(cursor):
    """SP "(" fetch-modifier *(SP fetch-modifier) ")" as FetchModifiers."""
    cursor.space("Invalid FETCH modifiers")
    found = {}

    def fetch_modifier(cursor):
        name = cursor.word()
        if name in found:
            raise cursor.fail("Repeated FETCH modifier")
        if name == "CHANGEDSINCE":
            cursor.space("Invalid CHANGEDSINCE")
            found[name] = mod_sequence_value(cursor, "Invalid CHANGEDSINCE")
        elif name == "VANISHED":
            found[name] = True
        else:
            raise cursor.fail("Unknown FETCH modifier")
        return name

    parenthesised(cursor, fetch_modifier, "Invalid FETCH modifiers")
    if "CHANGEDSINCE" not in found:
        # RFC 7162 §3.2.6: VANISHED only together with CHANGEDSINCE.
        raise cursor.fail("VANISHED requires CHANGEDSINCE")
    return FetchModifiers(found["CHANGEDSINCE"], "VANISHED" in found)


def store_modifiers(cursor):
    """"(" UNCHANGEDSINCE SP mod-sequence-valzer ")" SP: the modseq (RFC 7162 §3.1.3)."""
    found = []

    def store_modifier(cursor):
        if cursor.word() != "UNCHANGEDSINCE" or found:
            raise cursor.fail("Unknown STORE modifier")
        cursor.space("Invalid UNCHANGEDSINCE")
        found.append(mod_sequence_value(cursor, "Invalid UNCHANGEDSINCE", zero_allowed=True))
        return found[-1]

    parenthesised(cursor, store_modifier, "Invalid STORE modifiers")
    cursor.space("Missing store item")
    return found[0]


def modseq_key(cursor, name):
    """MODSEQ [SP entry-name SP entry-type-req] SP mod-sequence-valzer (RFC 7162 §3.1.5).

    There is one modseq per message here, so the entry (a flag's own
    modseq) narrows nothing and is checked for form only.
    """
    if cursor.peek() == b'"':
        entry = quoted(cursor)
        if not entry.lower().startswith(b"/flags/"):
            raise cursor.fail("Invalid MODSEQ entry name")
        cursor.space("Missing MODSEQ entry type")
        if cursor.word() not in ("PRIV", "SHARED", "ALL"):
            raise cursor.fail("Invalid MODSEQ entry type")
        cursor.space("Missing MODSEQ value")
    return (name, mod_sequence_value(cursor, "Invalid MODSEQ value", zero_allowed=True))
