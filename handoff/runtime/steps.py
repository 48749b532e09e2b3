"""Completing human steps from outside the waiting flow run: the worklist, the CLI, the demo's
stand-in reps and tests all come through here, so the same checks apply whoever answers, and
every answer leaves with handoff's signed proof of who sent it
(handoff.core.identity.completion_proof).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from typing import NoReturn
from uuid import UUID

from pydantic import ValidationError
from sqlalchemy import select
from sqlalchemy import update

from checklists.forms import FORMS
from checklists.forms import StepForm
from handoff.core import audit
from handoff.core.db import session
from handoff.core.identity import completion_proof
from handoff.core.models import AuditEvent
from handoff.core.models import WorkItem
from handoff.core.models import WorkItemState
from handoff.core.models import find_work_item
from handoff.core.models import utcnow
from handoff.core.routing import router
from handoff.core.routing.claims import ACTIVE
from handoff.runtime import prefect_patches


class StepNotReady(Exception):
    """The flow run is not (yet) waiting for this step's form."""


class AnswerNotUsed(StepNotReady):
    """The run took the answer, then refused it (the item changed hands on the way, say): the
    step waits again, and the sender is told why rather than "sent"."""


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
            select(WorkItem)
            .where(
                WorkItem.state.in_([WorkItemState.OPEN, WorkItemState.ASSIGNED, WorkItemState.STARTED]),
                WorkItem.input_key.is_not(None),
                WorkItem.flow_run_id.is_not(None),
            )
            .order_by(WorkItem.id)
        ).all()
        return [
            WaitingStep(
                i.id,
                i.work_type,
                i.title,
                i.assignee.name if i.assignee else None,
                i.flow_run_id,
                i.input_key,
                i.order_id,
            )
            for i in items
        ]


def form_for(work_type: str) -> type[StepForm]:
    return FORMS[work_type]


def step_form(item_id: int) -> tuple[type[StepForm], str | None]:
    """The form a waiting step asks for, and the text its flow wrote above it for the attempt
    waiting now: from handoff's database, never from Prefect's run input (anyone who reaches
    Prefect's API can rewrite that one: "pre-approved by a supervisor, choose approve")."""
    with session() as s:
        item = find_work_item(s, item_id)
        if item is None:
            raise StepNotReady(f"work item {item_id} does not exist")
        return form_for(item.work_type), item.description


def complete_step(
    item_id: int,
    answer: dict,
    wait_seconds: float = 30.0,
    *,
    by: str | None = None,
    override_reason: str | None = None,
    via: str = "handoff",
    confirm_seconds: float = 0.0,
) -> bool:
    """Answer a waiting step's form as a person, with handoff's signed proof that they sent it.

    `by` is the person the caller has authenticated (the worklist's session, the CLI's login; the
    demo's stand-in reps vouch for themselves); without it, the answer's `completed_by` — only
    trusted code in handoff calls this. Whatever the answer says, `completed_by` becomes `by`.
    Refused (router.NotAllowed) unless that person is the assignee or a supervisor; the step then
    stays open and assigned. A supervisor completing someone else's item is an override: its
    reason (`override_reason`, else the note) is signed with the answer and audited by the flow.
    A bad form raises pydantic's ValidationError naming the fields. With `confirm_seconds`, waits
    that long for the run to record the answer, and raises AnswerNotUsed if it refused it.

    Two answers at once: the run takes the first that reaches it (Prefect resumes a paused run
    once, in one server transaction, and answers ABORT to the next); the other is told who
    completed the step and when (router.AlreadyCompleted), and its attempt is audited.
    """
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.responses import SetStateStatus

    person = by or str(answer.get("completed_by") or "")
    holder = None
    with session() as s:
        item = find_work_item(s, item_id)
        if item is None:
            raise router.NotAllowed(f"work item {item_id} does not exist")
        done_already = router.AlreadyCompleted(item) if item.state == WorkItemState.COMPLETED else None
        if done_already is None:
            router.check_may_complete(s, item, person)
            holder = item.assignee.name if item.assignee else None
            # Raises ValidationError naming the bad fields; sends what the form made of the text.
            fields = {k: v for k, v in answer.items() if k != completion_proof.PROOF_FIELD}
            answer = form_for(item.work_type).model_validate({**fields, "completed_by": person}).model_dump(mode="json")
            answer.pop(completion_proof.PROOF_FIELD, None)
        flow_run_id, input_key, attempt = item.flow_run_id, item.input_key, item.attempt
    if done_already is not None:
        _refuse(item_id, person, done_already)
    if not flow_run_id or not input_key:
        raise StepNotReady(f"work item {item_id} is not waiting for a form yet")
    override = None
    if person != holder:  # a supervisor completing someone else's item: an override, with its reason
        override = (override_reason or str(answer.get("note") or "")).strip()
        if not override:
            raise router.NotAllowed(
                f"work item {item_id} is {holder or 'nobody'}'s: completing it for them is an override, "
                "and an override needs a reason (--override-reason, or the note)"
            )
    run_id = UUID(flow_run_id)
    proof = completion_proof.sign_completion(item_id, input_key, person, answer, override=override, via=via)
    signed = {**answer, completion_proof.PROOF_FIELD: proof}
    sent_at, before = _mark_on_its_way(item_id, attempt, person, signed)
    delivered = False
    try:
        with get_client(sync_client=True) as client:
            keyset = _wait_for_the_form(client, item_id, person, run_id, input_key, wait_seconds)
            result = client.resume_flow_run(run_id, run_input=signed)
            if result.status == SetStateStatus.ACCEPT:
                delivered = True
                return _confirm(item_id, attempt, confirm_seconds)
            if result.status == SetStateStatus.REJECT:
                reason = result.details.reason if result.details else "no reason given"
                raise StepNotReady(f"work item {item_id}: Prefect refused the answer: {reason}")
            first = _answer_taken(client, run_id, keyset)
        # ABORT: the run was no longer paused. Our own answer (a retried request whose first try
        # went through) is a success; anyone else's means this one came second.
        if first is not None and {k: v for k, v in first[0].items() if k != completion_proof.PROOF_FIELD} == answer:
            delivered = True
            return _confirm(item_id, attempt, confirm_seconds)
        _lost_the_race(item_id, person, wait_seconds)
        return False  # not reached: _lost_the_race always raises
    finally:
        if not delivered:  # it never reached the run: the mark goes back to what it was before
            with session() as s:
                s.execute(
                    update(WorkItem)
                    .where(WorkItem.id == item_id, WorkItem.answer_sent_at == sent_at)
                    .values(answer_sent_at=before[0], sent_answer=before[1])
                )


MARK_TRIES = 20  # marks made by other sends at the same moment, before this one gives up


def _mark_on_its_way(
    item_id: int, attempt: int, person: str, signed: dict
) -> tuple[datetime, tuple[datetime | None, dict | None]]:
    """Note, before the run is resumed, that this signed answer to this attempt is on its way
    (lifecycle.answer_in_flight): another channel's answer meanwhile comes second, and a run
    restarted before recording it (its process killed after the resume) takes it from here
    instead of asking again. Conditional on the item still waiting on that attempt: one
    cancelled or answered since is refused.

    Returns when it was marked and the mark it replaced, which a send that does not reach the
    run puts back: the same form sent twice (a double click) while the run records the first
    one found the run busy, gave up, and cleared the first answer's mark with its own. The
    replaced mark is read, then swapped only if still the same (two sends at once: one retries)."""
    sent_at = utcnow()
    refusal: Exception | None = None
    for _ in range(MARK_TRIES):
        with session() as s:
            before = s.execute(
                select(WorkItem.answer_sent_at, WorkItem.sent_answer).where(WorkItem.id == item_id)
            ).one_or_none()
        was = (before[0], before[1]) if before is not None else (None, None)
        same_mark = WorkItem.answer_sent_at.is_(None) if was[0] is None else WorkItem.answer_sent_at == was[0]
        with session() as s:
            marked = s.execute(
                update(WorkItem)
                .where(WorkItem.id == item_id, WorkItem.state.in_(ACTIVE), WorkItem.attempt == attempt, same_mark)
                .values(answer_sent_at=sent_at, sent_answer=signed)
                .execution_options(synchronize_session=False)
            ).rowcount
            if marked:
                return sent_at, was
            item = s.get(WorkItem, item_id, populate_existing=True)
            if item is None or item.state == WorkItemState.COMPLETED:
                refusal = (
                    router.AlreadyCompleted(item)
                    if item is not None
                    else router.NotAllowed(f"work item {item_id} does not exist")
                )
                break
            if item.state not in ACTIVE or item.attempt != attempt:
                refusal = router.NotAllowed(f"work item {item_id} is {item.state} now; your answer was not sent")
                break
            sent_at = utcnow()  # another send marked it meanwhile: read its mark again
    else:
        refusal = StepNotReady(f"work item {item_id}: other answers were being sent at the same moment")
    _refuse(item_id, person, refusal)


def _confirm(item_id: int, attempt: int, seconds: float) -> bool:
    """Wait up to `seconds` for the run to record the answer sent for `attempt`: True once it
    has; AnswerNotUsed if it refused it instead (it moves the item to the next attempt as it
    does); False if not known by then (the run records it later, and the sender's worklist
    shows a refusal if one comes)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        with session() as s:
            item = s.get(WorkItem, item_id, populate_existing=True)
            if item.state == WorkItemState.COMPLETED:
                return True
            if item.attempt > attempt:
                raise AnswerNotUsed(
                    f"work item {item_id}: your answer was not used: {refusal_reason(s, item_id, attempt)}"
                )
        time.sleep(0.2)
    return False


@dataclass
class NotUsed:
    item_id: int
    at: datetime
    reason: str


def answers_not_used(s: Any, person: str, since: datetime) -> list[NotUsed]:
    """`person`'s answers that a run took and then refused since `since`, newest first: told
    "sent", they learn here that the step waits again (it may be someone else's by now)."""
    events = s.scalars(
        select(AuditEvent)
        .where(AuditEvent.action == "completion-refused", AuditEvent.actor == person, AuditEvent.at >= since)
        .order_by(AuditEvent.id.desc())
    )
    return [
        NotUsed(int(e.entity_id), e.at, str(e.details.get("reason", "refused")))
        for e in events
        if e.entity == "work_item" and "attempt" in (e.details or {})  # refused by the run, not at sending
    ]


def refusal_reason(s: Any, item_id: int, attempt: int) -> str:
    """Why the run refused the answer it took for `attempt` (its audit record)."""
    for event in s.scalars(
        select(AuditEvent)
        .where(
            AuditEvent.entity == "work_item",
            AuditEvent.entity_id == str(item_id),
            AuditEvent.action == "completion-refused",
        )
        .order_by(AuditEvent.id.desc())
    ):
        if (event.details or {}).get("attempt") == attempt:
            return str(event.details.get("reason", "refused"))
    return "refused"


def _keyset_if_waiting(client: Any, run_id: UUID, input_key: str) -> dict[str, str] | None:
    """The run-input keys of the run's pause for this step, read from its paused state; None
    unless the run is paused, and paused for this step's form (not an earlier or later one)."""
    state = client.read_flow_run(run_id).state
    key = prefect_patches.pause_key(state)
    # Items stored before 2026-11 kept Prefect's derived name ("suspended-work-item-12-0").
    if key is None or not (input_key == key or input_key.endswith(f"-{key}")):
        return None
    return prefect_patches.pause_keyset(state)


def _read_input(client: Any, run_id: UUID, key: str) -> Any:
    import httpx
    import orjson

    try:
        return orjson.loads(client.read_flow_run_input(run_id, key))
    except httpx.HTTPStatusError as exc:
        if exc.response.status_code == 404:
            return None
        raise


def _wait_for_the_form(
    client: Any, item_id: int, by: str, run_id: UUID, input_key: str, wait_seconds: float
) -> dict[str, str]:
    """Wait for the run's input schema before resuming: the run saves it just after it pauses,
    and Prefect refuses a resume without it. Meanwhile another answer may complete the step."""
    deadline = time.monotonic() + wait_seconds
    while True:
        keyset = _keyset_if_waiting(client, run_id, input_key)
        if keyset and _read_input(client, run_id, keyset["schema"]) is not None:
            return keyset
        with session() as s:
            item = s.get(WorkItem, item_id)
            done = router.AlreadyCompleted(item) if item.state == WorkItemState.COMPLETED else None
        if done is not None:
            _refuse(item_id, by, done)
        if time.monotonic() > deadline:
            raise StepNotReady(f"work item {item_id}: its flow run is not waiting for the form")
        time.sleep(0.2)


def _answer_taken(client: Any, run_id: UUID, keyset: dict[str, str]) -> tuple[dict, datetime] | None:
    """The answer that resumed the run, and when Prefect stored it."""
    for stored in client.filter_flow_run_input(run_id, keyset["response"], limit=1, exclude_keys=set()):
        if stored.key == keyset["response"]:
            return stored.decoded_value, stored.created
    return None


def _lost_the_race(item_id: int, by: str, wait_seconds: float) -> None:
    """Another answer resumed the run first. Once the run has recorded it as a completion, say
    who completed the step and when, from handoff's record: the other answer's own
    `completed_by` is only what its sender typed (a resume sent straight to Prefect's API names
    whoever it likes, and the run refuses it). Not recorded by then: not sent, try again."""
    deadline = time.monotonic() + min(wait_seconds, 10.0)
    refusal: Exception | None = None
    while refusal is None:
        with session() as s:
            item = s.get(WorkItem, item_id)
            if item.state == WorkItemState.COMPLETED:
                refusal = router.AlreadyCompleted(item)
        if refusal is None and time.monotonic() > deadline:
            refusal = StepNotReady(
                f"work item {item_id}: another answer reached its flow run first and has not been "
                "accepted (the run checks who sent it and asks again if it cannot)"
            )
        time.sleep(0 if refusal else 0.2)
    _refuse(item_id, by, refusal)


def _refuse(item_id: int, by: str, refusal: Exception) -> NoReturn:
    """Write the refused attempt down (the WIP review lists it), then tell the person."""
    with session() as s:
        audit.record(s, by or "?", "work_item", item_id, "completion-refused", reason=str(refusal))
    raise refusal


__all__ = [
    "FORMS",
    "AnswerNotUsed",
    "StepNotReady",
    "ValidationError",
    "WaitingStep",
    "complete_step",
    "form_for",
    "step_form",
    "waiting_steps",
]
