"""Handoff meetings: sales hands a newly won account to operations.

Each meeting is one attempt in a series per customer; an attempt that does not end with both
sign-offs leaves its open questions to the next one, at the next free slot.
"""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel
from sqlalchemy import func
from sqlalchemy import select

from handoff.core import audit
from handoff.core.clock import as_utc_naive
from handoff.core.db import session
from handoff.core.models import Customer
from handoff.core.models import HandoffMeeting
from handoff.core.models import Order
from handoff.core.models import utcnow
from tasks.deployment_runs import start_once
from tasks.steps import record_step


class MeetingView(BaseModel):
    meeting_id: int
    customer_id: str
    customer_name: str
    contact_name: str | None
    country: str | None
    order_id: str | None
    attempt: int
    slot_start: datetime | None
    calendar_id: str | None
    open_questions: list[str]
    previous_requirements: dict | None
    status: str


@record_step(task_run_name="plan-handoff-meeting-{customer_id}")
def plan_handoff_meeting(customer_id: str, order_id: str) -> bool:
    """A newly won account (no meeting yet) gets its first handoff meeting planned; True if new."""
    with session() as s:
        if s.scalar(select(func.count()).select_from(HandoffMeeting).where(HandoffMeeting.customer_id == customer_id)):
            return False
        s.add(HandoffMeeting(customer_id=customer_id, order_id=order_id, attempt=1, agenda={}, status="to-schedule"))
        audit.record(
            s, "system:pipeline", "handoff_meeting", customer_id, "planned", None, "to-schedule", order_id=order_id
        )
        return True


def accounts_awaiting_handoff() -> list[str]:
    """Customers whose handoff meeting series is not signed off yet."""
    with session() as s:
        rows = s.scalars(
            select(HandoffMeeting.customer_id).where(HandoffMeeting.status.in_(["to-schedule", "scheduled"]))
        )
        return sorted(set(rows))


@record_step
def find_accounts_awaiting_handoff() -> list[str]:
    return accounts_awaiting_handoff()


MEETING_DEPLOYMENT = "handoff-meeting/handoff-meeting"


@record_step(task_run_name="start-handoff-meeting-{customer_id}")
def start_handoff_meeting(customer_id: str) -> str:
    """Start the customer's meeting run (from its deployment, so it suspends while it waits for
    the sign-offs and holds no process) unless one is under way; returns the run's id."""
    key, tag = f"handoff-meeting:{customer_id}", f"customer:{customer_id}"
    return start_once(MEETING_DEPLOYMENT, key, {"customer_id": customer_id}, name=f"handoff-{customer_id}", tag=tag)


@record_step(task_run_name="current-meeting-{customer_id}")
def current_meeting(customer_id: str) -> MeetingView:
    """The latest attempt of the customer's series (planned if none exists)."""
    with session() as s:
        meeting = s.scalar(
            select(HandoffMeeting)
            .where(HandoffMeeting.customer_id == customer_id)
            .order_by(HandoffMeeting.attempt.desc())
        )
        if meeting is None:
            first_order = s.scalar(select(Order.id).where(Order.customer_id == customer_id).order_by(Order.received_at))
            meeting = HandoffMeeting(
                customer_id=customer_id, order_id=first_order, attempt=1, agenda={}, status="to-schedule"
            )
            s.add(meeting)
            s.flush()
        return _view(s, meeting)


def _view(s, meeting: HandoffMeeting) -> MeetingView:  # noqa: ANN001
    customer = s.get(Customer, meeting.customer_id)
    previous = s.get(HandoffMeeting, meeting.previous_id) if meeting.previous_id else None
    return MeetingView(
        meeting_id=meeting.id,
        customer_id=meeting.customer_id,
        customer_name=customer.name if customer else meeting.customer_id,
        contact_name=customer.contact_name if customer else None,
        country=customer.country if customer else None,
        order_id=meeting.order_id,
        attempt=meeting.attempt,
        slot_start=meeting.slot_start,
        calendar_id=meeting.calendar_id,
        open_questions=list(meeting.open_questions or []),
        previous_requirements=(previous.agenda or {}).get("requirements") if previous else None,
        status=meeting.status,
    )


@record_step(task_run_name="plan-meeting-slot-{meeting_id}")
def plan_meeting_slot(meeting_id: int, slot_start: datetime | None) -> MeetingView:
    """Note the slot a meeting still to schedule is about to be booked at (None: that slot was
    taken by another meeting; find another), before asking the calendar. A run re-run from the
    top, or restarted after dying between the booking and `record_meeting_slot`, books that
    same slot with the same request again, which the calendar answers with the booking it made.
    Found afresh from "now", the slot (and so the request) differed under the same key: the
    calendar refused it as a reused key at every run, and the account's handoff stopped for good.
    Returns the meeting as it is now."""
    with session() as s:
        m = s.get(HandoffMeeting, meeting_id)
        if m.status == "to-schedule":
            m.slot_start = as_utc_naive(slot_start) if slot_start is not None else None
        return _view(s, m)


@record_step(task_run_name="record-meeting-slot-{meeting_id}")
def record_meeting_slot(meeting_id: int, slot_start: datetime, calendar_id: str, agenda: dict) -> None:
    with session() as s:
        m = s.get(HandoffMeeting, meeting_id)
        if m.status == "to-schedule":
            m.slot_start, m.calendar_id, m.agenda, m.status = (
                as_utc_naive(slot_start),  # a calendar may answer in its own offset: UTC, as stored everywhere
                calendar_id,
                agenda,
                "scheduled",
            )
            audit.record(
                s,
                "system:handoff-meeting",
                "handoff_meeting",
                m.id,
                "scheduled",
                "to-schedule",
                "scheduled",
                slot=str(slot_start),
                attempt=m.attempt,
            )


@record_step(task_run_name="record-sign-off-{meeting_id}-{side}")
def record_sign_off(meeting_id: int, side: str, by: str, signed: bool, requirements: dict | None = None) -> None:
    with session() as s:
        m = s.get(HandoffMeeting, meeting_id)
        if side == "sales":
            m.sales_signed_by = by if signed else None
            if requirements is not None:
                m.agenda = {**(m.agenda or {}), "requirements": requirements}
        else:
            m.operations_signed_by = by if signed else None
        audit.record(s, by, "handoff_meeting", m.id, f"{side}-{'signed' if signed else 'declined'}")


@record_step(task_run_name="close-meeting-{meeting_id}")
def close_meeting(meeting_id: int, open_questions: list[str]) -> int | None:
    """Signed by both: the series ends (None). Otherwise the next attempt is planned with the
    open questions carried over; returns its id."""
    with session() as s:
        m = s.get(HandoffMeeting, meeting_id)
        if m.sales_signed_by and m.operations_signed_by and not open_questions:
            if m.status != "signed":
                m.status = "signed"
                audit.record(
                    s,
                    "system:handoff-meeting",
                    "handoff_meeting",
                    m.id,
                    "signed-off",
                    "scheduled",
                    "signed",
                    sales=m.sales_signed_by,
                    operations=m.operations_signed_by,
                )
            return None
        nxt = s.scalar(
            select(HandoffMeeting).where(
                HandoffMeeting.customer_id == m.customer_id, HandoffMeeting.attempt == m.attempt + 1
            )
        )
        if nxt is None:
            m.status = "recurs"
            nxt = HandoffMeeting(
                customer_id=m.customer_id,
                order_id=m.order_id,
                attempt=m.attempt + 1,
                agenda={},
                open_questions=open_questions,
                status="to-schedule",
                previous_id=m.id,
            )
            s.add(nxt)
            s.flush()
            audit.record(
                s,
                "system:handoff-meeting",
                "handoff_meeting",
                m.id,
                "recurs",
                "scheduled",
                "recurs",
                open_questions=open_questions,
                next_attempt=nxt.attempt,
            )
        return nxt.id


def meeting_attendees() -> list[str]:
    return ["sales", "operations"]


__all__ = [
    "MEETING_DEPLOYMENT",
    "MeetingView",
    "accounts_awaiting_handoff",
    "close_meeting",
    "current_meeting",
    "find_accounts_awaiting_handoff",
    "meeting_attendees",
    "plan_handoff_meeting",
    "record_meeting_slot",
    "record_sign_off",
    "run_requirements_checklist",
    "start_handoff_meeting",
    "utcnow",
]


@record_step(task_run_name="requirements-checklist-{customer_id}")
def run_requirements_checklist(customer_id: str, requirements: dict, open_questions: int) -> list[str]:
    """The requirements sales gathered, checked; the failed rules as sentences."""
    from checklists.requirements_checklist import check_requirements

    return [
        f.text
        for f in check_requirements({**requirements, "open_questions": open_questions})
        if f.field != "open_questions"
    ]
