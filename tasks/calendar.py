"""Calendar: find a free slot for the people who must meet, and book the meeting.

    slots = calendar.find_slots(after=now, duration_minutes=60, attendees=people)
    meeting = calendar.book_meeting(f"handoff:{account_id}:1", "Handoff: Alfreds Futterkiste",
                                    people, slots[0].start, slots[0].end, agenda=agenda)
"""

from __future__ import annotations

from datetime import datetime

import httpx
from prefect import task
from pydantic import BaseModel

from tasks.http import RETRY_POLICY, SystemClient

SYSTEM = "calendar"
TIMEOUT = httpx.Timeout(10.0, connect=3.0)


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


def client() -> SystemClient:
    return SystemClient(SYSTEM, TIMEOUT)


@task(name="calendar.find_slots", task_run_name="find-slots-{duration_minutes}min", **RETRY_POLICY)
def find_slots(after: datetime, duration_minutes: int, attendees: list[str], count: int = 3) -> list[Slot]:
    """The next free slots for all `attendees` in business hours (Mon–Fri 09–17 UTC)."""
    with client() as cal:
        data = cal.read("/slots", params={"after": after.isoformat(), "duration": duration_minutes,
                                          "attendees": attendees, "count": count})
    return [Slot.model_validate(slot) for slot in data["slots"]]


@task(name="calendar.book_meeting", task_run_name="book-meeting-{ref}", **RETRY_POLICY)
def book_meeting(
    ref: str, title: str, attendees: list[str], start: datetime, end: datetime, agenda: str = ""
) -> Meeting:
    """Book a meeting. `ref` is the business id of this meeting (e.g. "handoff:BA-000001:2"),
    so booking it again (a retry, a re-run) never books it twice.
    Conflict if an attendee is already booked then."""
    with client() as cal:
        data = cal.side_effect(
            "/meetings",
            {"title": title, "attendees": attendees, "start": start.isoformat(), "end": end.isoformat(),
             "agenda": agenda},
            key=f"meeting:{ref}",
        )
    return Meeting.model_validate(data)
