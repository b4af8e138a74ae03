"""imap.reported: what a session told its client of each message's flags."""

from imap.reported import ReportedFlags, reported_flags
from mailstore.mboxformat import FLAGGED, OLD, SEEN


class Stored:
    def __init__(self, uid, flags, keywords=()):
        self.uid, self.flags, self.keywords = uid, flags, tuple(keywords)


def test_the_snapshot_answers_as_reported_flags_did_and_later_reports_win():
    messages = [Stored(3, SEEN | OLD), Stored(7, 0, ["$Junk"]), Stored(9, FLAGGED)]
    told = ReportedFlags(messages)
    assert [told.get(m.uid) for m in messages] == [reported_flags(m) for m in messages]
    assert told.get(7) == (0, ("$Junk",)) and told.get(3) == SEEN
    assert told.get(4) is None and told.get(10, "new") == "new" and told.get(1) is None
    told[9] = SEEN
    told[12] = (FLAGGED, ("$Label1",))
    assert told.get(9) == SEEN and told.get(12) == (FLAGGED, ("$Label1",))
    assert ReportedFlags().get(1) is None


def test_telling_what_the_snapshot_holds_keeps_nothing_on_top():
    # FETCH 1:* FLAGS tells every message its flags again; a dict entry for each
    # would hold 100,000 entries (5 MB) for what the arrays already say.
    messages = [Stored(uid, SEEN if uid % 2 else 0, ["$Junk"] if uid == 4 else ())
                for uid in range(1, 1001)]
    told = ReportedFlags(messages)
    for message in messages:
        told[message.uid] = reported_flags(message)
    assert told._since == {}
    told[5] = FLAGGED
    assert told.get(5) == FLAGGED and told._since == {5: FLAGGED}
    told[5] = SEEN  # back to what the snapshot holds
    assert told.get(5) == SEEN and told._since == {}
    told[2000] = SEEN  # not in the snapshot: kept
    assert told.get(2000) == SEEN
