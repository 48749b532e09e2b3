"""Handoff meeting: sales hands a newly won account to operations.

Steps, for each meeting of the series:
1. Book the meeting at the next free slot, with its agenda: requirements (turn-around times,
   scope, customisations), decision-maker contacts, training sessions, changes since the
   contract was signed, and the questions left open by the last meeting. If another meeting
   takes that slot first, the next free one.
2. Sales presents the requirements and signs off (or not).
3. Requirements checklist: it must pass before operations may sign.
4. Operations signs off (or not) — a different person from sales.
5. Both signed and nothing open: the account belongs to operations. Otherwise the meeting
   recurs at the next slot with the open questions carried over, until both sign.
"""

from __future__ import annotations

from datetime import UTC
from datetime import timedelta

from prefect import flow

from checklists.forms import OperationsSignOff
from checklists.forms import SalesSignOff
from tasks.calendar import Meeting
from tasks.calendar import Slot
from tasks.calendar import book_meeting
from tasks.calendar import find_slots
from tasks.http import Declined
from tasks.human_step import HumanStep
from tasks.human_step import ask_a_person
from tasks.meetings import MeetingView
from tasks.meetings import close_meeting
from tasks.meetings import current_meeting
from tasks.meetings import meeting_attendees
from tasks.meetings import plan_meeting_slot
from tasks.meetings import record_meeting_slot
from tasks.meetings import record_sign_off
from tasks.meetings import run_requirements_checklist
from tasks.meetings import utcnow

MEETING_MINUTES = 60
MAX_MEETINGS = 10
BOOKING_ATTEMPTS = 5


@flow(name="handoff-meeting", flow_run_name="handoff-{customer_id}", log_prints=True)
def handoff_meeting(customer_id: str) -> str:
    for _ in range(MAX_MEETINGS):
        meeting = current_meeting(customer_id)
        if meeting.status == "signed":
            return "signed"

        # 1. Book the meeting at the next free slot, with its agenda
        if meeting.status == "to-schedule":
            booked, slot = book_next_free_slot(meeting)
            record_meeting_slot(meeting.meeting_id, slot.start, booked.id, agenda_for(meeting))
            meeting = current_meeting(customer_id)

        # 2. Sales presents the requirements and signs off
        sales = ask_a_person(sales_step(meeting), SalesSignOff)
        requirements = sales.model_dump(exclude={"completed_by", "completion_proof", "signed", "open_questions"})
        record_sign_off(meeting.meeting_id, "sales", sales.completed_by, sales.signed, requirements)
        open_questions = lines_of(sales.open_questions)

        # 3. The requirements checklist must pass before operations may sign
        failures = run_requirements_checklist(customer_id, requirements, len(open_questions))
        open_questions += [f"requirements: {text}" for text in failures]

        # 4. Operations signs off — a different person from sales
        if sales.signed and not failures and not open_questions:
            operations = ask_a_person(operations_step(meeting, sales), OperationsSignOff)
            if operations.completed_by == sales.completed_by:
                open_questions.append("operations must sign off by someone other than the salesperson")
            else:
                record_sign_off(meeting.meeting_id, "operations", operations.completed_by, operations.signed)
            open_questions += lines_of(operations.open_questions)
            if not operations.signed and not operations.open_questions.strip():
                open_questions.append("operations did not sign off")
        elif not sales.signed:
            open_questions.append("sales did not sign off")

        # 5. Both signed: done. Otherwise the meeting recurs with the open questions
        if close_meeting(meeting.meeting_id, open_questions) is None:
            return "signed"
    return "still-open"


class SlotsKeptBeingTaken(Exception):
    """The calendar is too contended to book the meeting now; the next daily check tries again."""


def book_next_free_slot(meeting: MeetingView) -> tuple[Meeting, Slot]:
    """Book the next slot both teams have free, noted first (`plan_meeting_slot`): a run that
    starts again books the slot it noted, with the same request. Meetings of other accounts
    book at the same time: one that takes the slot between finding and booking it sends us
    to the next."""
    for _ in range(BOOKING_ATTEMPTS):
        if meeting.slot_start is None:
            [found] = find_slots(utcnow(), MEETING_MINUTES, meeting_attendees(), count=1)
            meeting = plan_meeting_slot(meeting.meeting_id, found.start)
        start = meeting.slot_start.replace(tzinfo=UTC)  # noted just now, or by the run before (naive UTC)
        slot = Slot(start=start, end=start + timedelta(minutes=MEETING_MINUTES))
        booked = book_meeting(
            f"handoff:{meeting.customer_id}:{meeting.attempt}",
            f"Handoff meeting: {meeting.customer_name}",
            meeting_attendees(),
            slot.start,
            slot.end,
            agenda_markdown(meeting),
        )
        if not isinstance(booked, Declined):
            return booked, slot
        meeting = plan_meeting_slot(meeting.meeting_id, None)  # taken by another meeting first: find the next
    raise SlotsKeptBeingTaken(f"{BOOKING_ATTEMPTS} free slots in a row were taken before we could book them: {booked}")


def lines_of(text: str) -> list[str]:
    return [line.strip("-• ").strip() for line in text.splitlines() if line.strip("-• ").strip()]


def agenda_for(meeting: MeetingView) -> dict:
    return {
        "requirements": meeting.previous_requirements or {},
        "decision_maker_contacts": [c for c in [meeting.contact_name] if c],
        "training_sessions": "to agree",
        "changes_since_contract": "to review",
        "open_questions": meeting.open_questions,
    }


def agenda_markdown(meeting: MeetingView, agenda: dict | None = None) -> str:
    agenda = agenda or agenda_for(meeting)
    questions = "\n".join(f"- {q}" for q in meeting.open_questions) or "- none"
    known = agenda["requirements"]
    requirements = "\n".join(f"- {k.replace('_', ' ')}: {v}" for k, v in known.items()) or "- to gather"
    slot = f"{meeting.slot_start:%a %d %b %Y %H:%M} UTC" if meeting.slot_start else "to book"
    return f"""### Handoff meeting {meeting.attempt} — {meeting.customer_name}{f" ({meeting.country})" if meeting.country else ""}

**When** {slot} · **first order** {meeting.order_id or "—"}

**1. Requirements** — turn-around times; scope (in-state / nation-wide / international); customisations
{requirements}

**2. Decision-maker contacts** — {", ".join(agenda["decision_maker_contacts"]) or "to collect"}

**3. Training sessions** — how many, for whom

**4. Changes since the contract was signed**

**5. Open questions from the last meeting**
{questions}
"""


def sales_step(meeting: MeetingView) -> HumanStep:
    return HumanStep(
        work_type="handoff-signoff-sales",
        step_key=f"handoff-sales-{meeting.customer_id}-{meeting.attempt}",
        title=f"Handoff meeting {meeting.attempt} for {meeting.customer_name}: sales sign-off",
        description=agenda_markdown(meeting) + "\nFill in the requirements you gathered and sign off if you are "
        "comfortable handing the account to operations.",
        order_id=meeting.order_id,
        due_at=(meeting.slot_start + timedelta(minutes=MEETING_MINUTES)) if meeting.slot_start else None,
        tags=[f"customer:{meeting.customer_id}"],
    )


def operations_step(meeting: MeetingView, sales: SalesSignOff) -> HumanStep:
    requirements = "\n".join(
        f"- {k.replace('_', ' ')}: {v}"
        for k, v in sales.model_dump(exclude={"completed_by", "completion_proof", "signed", "open_questions"}).items()
    )
    return HumanStep(
        work_type="handoff-signoff-operations",
        step_key=f"handoff-operations-{meeting.customer_id}-{meeting.attempt}",
        title=f"Handoff meeting {meeting.attempt} for {meeting.customer_name}: operations sign-off",
        description=agenda_markdown(meeting) + f"\n**Requirements as sales signed them ({sales.completed_by})**\n"
        f"{requirements}\n\nSign off if operations is comfortable owning this customer's success; "
        "otherwise list what must be answered first.",
        order_id=meeting.order_id,
        due_at=(meeting.slot_start + timedelta(minutes=MEETING_MINUTES)) if meeting.slot_start else None,
        tags=[f"customer:{meeting.customer_id}"],
    )
