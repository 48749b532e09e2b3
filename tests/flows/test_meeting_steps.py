"""The handoff meeting's own records."""

from __future__ import annotations

from datetime import datetime
from datetime import timedelta
from datetime import timezone

from handoff.core.db import session
from handoff.core.models import HandoffMeeting
from tasks.meetings import current_meeting
from tasks.meetings import record_meeting_slot


def test_a_slot_a_calendar_gives_in_its_own_offset_is_kept_as_the_same_moment_in_utc(db):
    """10:00 in Berlin (+01:00) was stored as 10:00 UTC: the meeting, its agenda's time and
    its sign-offs' due dates an hour late."""
    with session() as s:
        meeting = HandoffMeeting(customer_id="ALFKI", attempt=1, agenda={}, status="to-schedule")
        s.add(meeting)
        s.flush()
        meeting_id = meeting.id
    berlin = timezone(timedelta(hours=1))
    record_meeting_slot.fn(meeting_id, datetime(2026, 12, 1, 10, 0, tzinfo=berlin), "cal-1", {"requirements": {}})
    assert current_meeting.fn("ALFKI").slot_start == datetime(2026, 12, 1, 9, 0)
