"""Calendar stand-in: free slots in business hours and booked meetings.

    GET  /calendar/slots?after=<ISO time>&duration=<minutes>&attendees=a&attendees=b&count=3
                                     → {"slots": [{"start", "end"}, ...]}
    POST /calendar/meetings          {title, attendees, start, end, agenda} → 201 meeting
                                     (422 outside business hours or end ≤ start; 409 if an
                                     attendee is already booked then)
    GET  /calendar/meetings/{meeting_id}

Business hours: Monday–Friday, 09:00–17:00 UTC; slots start on the half hour. Times without
a zone are taken as UTC.
"""

from __future__ import annotations

from datetime import UTC
from datetime import datetime
from datetime import time
from datetime import timedelta
from typing import Annotated
from typing import Any

from fastapi import APIRouter
from fastapi import Query
from fastapi import Request
from fastapi.responses import JSONResponse
from pydantic import Field
from pydantic import field_validator

from sandbox.core import Body
from sandbox.core import Outcome
from sandbox.core import Sandbox
from sandbox.core import conflicts_with
from sandbox.core import rejected
from sandbox.core import system_router
from sandbox.core import utcnow

SYSTEM = "calendar"
DAY_START = time(9, 0)
DAY_END = time(17, 0)
WORK_DAYS = frozenset({0, 1, 2, 3, 4})  # Monday = 0
SLOT_STEP = timedelta(minutes=30)
SEARCH_HORIZON = timedelta(days=60)


def as_utc(moment: datetime) -> datetime:
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def in_business_hours(start: datetime, end: datetime) -> bool:
    return (
        start.date() == end.date()
        and start.weekday() in WORK_DAYS
        and DAY_START <= start.time()
        and end.time() <= DAY_END
    )


class MeetingRequest(Body):
    title: str = Field(min_length=1)
    attendees: list[str] = Field(min_length=1)
    start: datetime
    end: datetime
    agenda: str = ""

    @field_validator("start", "end")
    @classmethod
    def _utc(cls, value: datetime) -> datetime:
        return as_utc(value)


def router(sb: Sandbox) -> APIRouter:
    api = system_router(sb, SYSTEM)

    def busy(attendees: set[str], start: datetime, end: datetime) -> dict[str, Any] | None:
        """The first booked meeting of any of `attendees` that overlaps [start, end)."""
        for meeting in sb.resources(SYSTEM, "meetings").values():
            if attendees & set(meeting["attendees"]):
                if datetime.fromisoformat(meeting["start"]) < end and start < datetime.fromisoformat(meeting["end"]):
                    return meeting
        return None

    @api.get("/slots")
    async def find_slots(
        after: datetime,
        duration: Annotated[int, Query(gt=0, le=8 * 60)] = 60,
        attendees: Annotated[list[str] | None, Query()] = None,
        count: Annotated[int, Query(gt=0, le=20)] = 3,
    ) -> dict[str, Any]:
        length = timedelta(minutes=duration)
        start = as_utc(after).replace(second=0, microsecond=0)
        start += timedelta(minutes=(-start.minute) % 30)
        horizon = start + SEARCH_HORIZON
        slots: list[dict[str, str]] = []
        with sb.lock:
            while len(slots) < count and start < horizon:
                end = start + length
                if in_business_hours(start, end) and busy(set(attendees or ()), start, end) is None:
                    slots.append({"start": start.isoformat(), "end": end.isoformat()})
                start += SLOT_STEP
        return {"slots": slots}

    @api.post("/meetings", status_code=201)
    async def book_meeting(body: MeetingRequest, request: Request) -> JSONResponse:
        def effect() -> Outcome:
            if body.end <= body.start:
                raise rejected("invalid_time", "a meeting must end after it starts")
            if not in_business_hours(body.start, body.end):
                raise rejected("outside_business_hours", "meetings are Monday–Friday, 09:00–17:00 UTC")
            clash = busy(set(body.attendees), body.start, body.end)
            if clash is not None:
                raise conflicts_with(
                    "attendee_busy",
                    f"{', '.join(sorted(set(body.attendees) & set(clash['attendees'])))} already booked "
                    f"in {clash['id']} ({clash['start']}–{clash['end']})",
                    clash,
                )
            return sb.created(SYSTEM, "meetings", "MTG", body, status="booked", booked_at=utcnow().isoformat())

        return await sb.side_effect(request, SYSTEM, "book_meeting", body, effect)

    @api.get("/meetings/{meeting_id}")
    async def get_meeting(meeting_id: str) -> dict[str, Any]:
        return sb.found(SYSTEM, "meetings", meeting_id)

    return api
