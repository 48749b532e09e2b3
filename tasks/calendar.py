"""Calendar: find a free slot for the people who must meet, and book the meeting.

slots = calendar.find_slots(after=now, duration_minutes=60, attendees=people)
meeting = calendar.book_meeting(f"handoff:{account_id}:1", "Handoff: Alfreds Futterkiste",
                                people, slots[0].start, slots[0].end, agenda=agenda)  # or Declined
"""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel

from tasks.http import RETRY_POLICY
from tasks.http import Conflict
from tasks.http import Declined
from tasks.http import System
from tasks.steps import record_step

SYSTEM = System("calendar")
SLOT_TAKEN = "attendee_busy"  # the calendar's code for "an attendee is already booked then"


class Slot(BaseModel):
    start: datetime
    end: datetime


class Meeting(BaseModel):
    id: str
    title: str
    attendees: list[str]
    start: datetime
    end: datetime
    agenda: str = ""
    status: str


@record_step(name="calendar.find_slots", task_run_name="find-slots-{duration_minutes}min", **RETRY_POLICY)
def find_slots(after: datetime, duration_minutes: int, attendees: list[str], count: int = 3) -> list[Slot]:
    """The next free slots for all `attendees` in business hours (Mon–Fri 09–17 UTC)."""
    with SYSTEM.client() as cal:
        data = cal.read(
            "/slots",
            params={"after": after.isoformat(), "duration": duration_minutes, "attendees": attendees, "count": count},
        )
    return [Slot.model_validate(slot) for slot in data["slots"]]


@record_step(name="calendar.book_meeting", task_run_name="book-meeting-{ref}", **RETRY_POLICY)
def book_meeting(
    ref: str, title: str, attendees: list[str], start: datetime, end: datetime, agenda: str = ""
) -> Meeting | Declined:
    """Book a meeting. `ref` is the business id of this meeting (e.g. "handoff:BA-000001:2"),
    so booking it again (a retry, a re-run) never books it twice.
    Declined (a result, not an error) if an attendee is already booked then: another meeting
    took the slot. Any other conflict (the key reused for another request) raises Conflict."""
    with SYSTEM.client() as cal:
        try:
            data = cal.side_effect(
                "/meetings",
                {
                    "title": title,
                    "attendees": attendees,
                    "start": start.isoformat(),
                    "end": end.isoformat(),
                    "agenda": agenda,
                },
                key=f"meeting:{ref}",
            )
        except Conflict as clash:
            if clash.error != SLOT_TAKEN:
                raise
            return Declined.of(clash)
    return Meeting.model_validate(data)
