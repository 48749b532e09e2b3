"""Completing human steps from outside the waiting flow run: the worklist, the CLI, the demo's
stand-in reps and tests all come through here, so the same checks apply whoever answers, and
every answer leaves with handoff's signed proof of who sent it (handoff.core.identity).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from uuid import UUID

from pydantic import ValidationError
from sqlalchemy import select

from checklists.forms import FORMS, StepForm
from handoff.core import identity
from handoff.core.db import session
from handoff.core.models import WorkItem, WorkItemState
from handoff.core.routing import router


class StepNotReady(Exception):
    """The flow run is not (yet) waiting for this step's form."""


@dataclass
class WaitingStep:
    item_id: int
    work_type: str
    title: str
    assignee: str | None
    flow_run_id: str
    input_key: str
    order_id: str | None


def waiting_steps() -> list[WaitingStep]:
    """Steps whose flow run has paused for a form (or is about to)."""
    with session() as s:
        items = s.scalars(
            select(WorkItem).where(
                WorkItem.state.in_([WorkItemState.OPEN, WorkItemState.ASSIGNED, WorkItemState.STARTED]),
                WorkItem.input_key.is_not(None),
                WorkItem.flow_run_id.is_not(None),
            ).order_by(WorkItem.id)
        ).all()
        return [
            WaitingStep(i.id, i.work_type, i.title, i.assignee.name if i.assignee else None,
                        i.flow_run_id, i.input_key, i.order_id)
            for i in items
        ]


def form_for(work_type: str) -> type[StepForm]:
    return FORMS[work_type]


def step_form(item_id: int) -> tuple[type[StepForm], str | None]:
    """The form a waiting step asks for, and the description its flow run shows above it."""
    from prefect.input import read_flow_run_input

    with session() as s:
        item = s.get(WorkItem, item_id)
        if item is None:
            raise StepNotReady(f"work item {item_id} does not exist")
        form, run_id, key = form_for(item.work_type), item.flow_run_id, item.input_key
    description = None
    if run_id and key:
        description = read_flow_run_input(key=f"{key}-description", flow_run_id=UUID(run_id))
    return form, description


def complete_step(item_id: int, answer: dict, wait_seconds: float = 30.0, *, by: str | None = None,
                  override_reason: str | None = None, via: str = "handoff") -> None:
    """Answer a waiting step's form as a person, with handoff's signed proof that they sent it.

    `by` is the person the caller has authenticated (the worklist's session, the CLI's login; the
    demo's stand-in reps vouch for themselves); without it, the answer's `completed_by` — only
    trusted code in handoff calls this. Whatever the answer says, `completed_by` becomes `by`.
    Refused (router.NotAllowed) unless that person is the assignee or a supervisor; the step then
    stays open and assigned. A supervisor completing someone else's item is an override: its
    reason (`override_reason`, else the note) is signed with the answer and audited by the flow.
    A bad form raises pydantic's ValidationError naming the fields.
    """
    from prefect.flow_runs import resume_flow_run
    from prefect.input import read_flow_run_input

    person = by or str(answer.get("completed_by") or "")
    with session() as s:
        item = s.get(WorkItem, item_id)
        if item is None:
            raise router.NotAllowed(f"work item {item_id} does not exist")
        router.check_may_complete(s, item, person)
        holder = item.assignee.name if item.assignee else None
        # Raises ValidationError naming the bad fields; sends what the form made of the text.
        fields = {k: v for k, v in answer.items() if k != identity.PROOF_FIELD}
        answer = form_for(item.work_type).model_validate({**fields, "completed_by": person}).model_dump(mode="json")
        answer.pop(identity.PROOF_FIELD, None)
        flow_run_id, input_key = item.flow_run_id, item.input_key
    if not flow_run_id or not input_key:
        raise StepNotReady(f"work item {item_id} is not waiting for a form yet")
    if person != holder and override_reason is None:
        override_reason = answer.get("note") or "(no reason given)"
    # The run saves its form's schema just after it pauses; resuming before that fails.
    deadline = time.monotonic() + wait_seconds
    while read_flow_run_input(key=f"{input_key}-schema", flow_run_id=UUID(flow_run_id)) is None:
        if time.monotonic() > deadline:
            raise StepNotReady(f"work item {item_id}: its flow run is not waiting for the form")
        time.sleep(0.2)
    proof = identity.sign_completion(item_id, input_key, person, answer,
                                     override=override_reason if person != holder else None, via=via)
    resume_flow_run(UUID(flow_run_id), run_input={**answer, identity.PROOF_FIELD: proof})


__all__ = ["FORMS", "StepNotReady", "ValidationError", "WaitingStep", "complete_step", "form_for", "step_form", "waiting_steps"]
