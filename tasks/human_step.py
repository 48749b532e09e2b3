"""A human step: the flow asks a person to decide, and waits for their form.

1. open a work item for the step (or find the one opened before, so a re-run asks once),
2. the router pushes it to the best eligible rep,
3. the waiting flow run is named and tagged with the assignee, so reps find their work in the UI,
4. the run waits for the form (Prefect renders it; `handoff complete` fills it in the terminal).
   A run started from a deployment *suspends*: it holds no process while it waits (hours or
   days), and on resume Prefect runs the flow again from the top — every step before a wait is
   idempotent (work items by step key, other systems by idempotency key), so nothing happens
   twice. A run started in-process (tests, the demo) *pauses* and blocks its thread.
5. the answer is accepted only with handoff's signed proof of who sent it (identity), and only
   from the assignee or a supervisor; anything else is refused, audited, and asked again.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from dataclasses import field
from datetime import datetime
from typing import TypeVar

from prefect import get_run_logger
from prefect import pause_flow_run
from prefect import suspend_flow_run
from prefect.client.orchestration import get_client
from prefect.runtime import deployment
from prefect.runtime import flow_run as current_run
from sqlalchemy import select

from checklists.forms import FORMS
from checklists.forms import StepForm
from handoff.core import audit
from handoff.core import sla
from handoff.core import work_types
from handoff.core.db import session
from handoff.core.identity import completion_proof
from handoff.core.models import WorkItem
from handoff.core.models import WorkItemState
from handoff.core.models import utcnow
from handoff.core.routing import router
from handoff.core.routing.claims import one_router_at_a_time
from handoff.core.settings import settings
from tasks.steps import record_step

F = TypeVar("F", bound=StepForm)


@dataclass
class HumanStep:
    """What a flow tells the back office about a decision it needs from a person.

    The work type must be declared (handoff/core/work_types.py): an unknown one fails here, in
    the flow that asks. Without `required_skills` the step needs the work type's skill and level.
    """

    work_type: str
    step_key: str  # unique for the business step, e.g. "order-approval-10248"
    title: str
    description: str  # markdown shown to the person above the form
    required_skills: dict[str, int] | None = None  # None: the work type's skill and level
    order_id: str | None = None
    priority: float = 1.0
    value: float = 0.0
    due_at: datetime | None = None
    effort_seconds: float | None = None
    tags: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        declared = work_types.get(self.work_type)
        if self.required_skills is None:
            self.required_skills = declared.required_skills


@dataclass
class OpenedItem:
    item_id: int
    assignee: str | None
    answer: dict | None  # set when the step was already completed (a re-run)
    attempt: int = 0  # the attempt to wait on: earlier ones were refused, and stay refused
    description: str | None = None  # the text shown for that attempt (with why the last was refused)
    sent_answer: dict | None = None  # an answer to that attempt sent to an earlier run, never recorded


def slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")


def due_date_for(step: HumanStep, now: datetime) -> datetime:
    """The work type's SLA in business hours, but never later than the flow's own deadline."""
    due = sla.due_at(step.work_type, now)
    return min(due, step.due_at) if step.due_at else due


# What a work item keeps of its step as the flow gave it; the rest is worked out when it opens.
KEPT_AS_GIVEN = ("work_type", "step_key", "title", "order_id", "required_skills", "priority", "value")


@record_step(task_run_name="open-work-item-{step.step_key}")
def open_work_item(step: HumanStep, flow_run_id: str | None) -> OpenedItem:
    """Create the work item and push it to a rep at once; reuse it if this step ran before."""
    with session() as s:
        item = s.scalar(select(WorkItem).where(WorkItem.step_key == step.step_key))
        if item is None:
            now = utcnow()
            item = WorkItem(
                **{name: getattr(step, name) for name in KEPT_AS_GIVEN},
                due_at=due_date_for(step, now),
                effort_seconds=step.effort_seconds or sla.effort_estimate(s, step.work_type),
                flow_run_id=flow_run_id,
                created_at=now,
            )
            s.add(item)
            s.flush()
            audit.record(
                s,
                "system:flow",
                "work_item",
                item.id,
                "created",
                None,
                WorkItemState.OPEN,
                work_type=step.work_type,
                order_id=step.order_id,
                flow_run_id=flow_run_id,
            )
            router.route_item(s, item.id)
        elif item.flow_run_id != flow_run_id and item.state != WorkItemState.COMPLETED:
            item.flow_run_id = flow_run_id  # the step is now waited on by this run
        s.flush()
        s.refresh(item)
        if item.state == WorkItemState.COMPLETED:
            return OpenedItem(item.id, item.completed_by, item.answer or {})
        sent = item.sent_answer if item.answer_sent_at is not None else None
        return OpenedItem(
            item.id, item.assignee.name if item.assignee else None, None, item.attempt, item.description, sent
        )


@record_step(task_run_name="label-waiting-run-{item_id}")
def label_waiting_run(item_id: int, waiting: bool = True, business_tags: list[str] | None = None) -> None:
    """Put the assignee in the run's name and tags: the OSS UI has no users, so reps filter on these."""
    with session() as s:
        item = s.get(WorkItem, item_id)
        assignee = item.assignee.name if item.assignee else None
        run_id = item.flow_run_id
        work_type = item.work_type
    if not run_id:
        return
    with get_client(sync_client=True) as client:
        run = client.read_flow_run(run_id)
        base = run.name.split(" · ")[0]
        # Business tags (order, customer, work type) stay; who it waits for changes.
        tags = [t for t in run.tags if not t.startswith(("assignee:", "waiting-for:"))]
        tags += business_tags or []
        if waiting:
            who = assignee or "unassigned"
            name = f"{base} · {work_type} · {who}"
            tags += [f"assignee:{slug(who)}", f"waiting-for:{work_type}"]
        else:
            name = base
        client.update_flow_run(run_id, name=name, tags=sorted(set(tags)))


@record_step(task_run_name="remember-pause-key-{item_id}")
def remember_pause_key(item_id: int, input_key: str, description: str) -> None:
    """Keep the key the run pauses under, so `handoff complete` answers this step's pause and no
    other, and the text reps read above its form (the worklist shows this, never the copy in
    Prefect's run input, which anyone who reaches Prefect's API can rewrite). The run-input keys
    Prefect derives from the key are read from the run's paused state
    (handoff.runtime.prefect_patches.pause_keyset), never rebuilt here."""
    with session() as s:
        item = s.get(WorkItem, item_id)
        item.input_key, item.description = input_key, description


@record_step(task_run_name="record-completion-{item_id}-{attempt}")
def record_completion(item_id: int, answer: dict, attempt: int) -> str | None:
    """Close the item for the person who answered; returns why it was refused, if it was. A
    refusal moves the item to the next attempt in the same transaction, so however the run
    re-runs (a resume starts it from the top), this attempt's answer is never checked again."""
    with session() as s:
        # The routing turn first, as every writer of work items takes it (a row lock first, then
        # the turn, deadlocked against a router holding the turn and wanting this row).
        one_router_at_a_time(s)
        item = s.get(WorkItem, item_id, populate_existing=True)
        if item.attempt > attempt:
            return f"the answer to attempt {attempt} was refused already"
        if item.state == WorkItemState.COMPLETED:  # recorded by an earlier run of this step (restarted)
            same = item.answer == {k: v for k, v in answer.items() if k != completion_proof.PROOF_FIELD}
            return None if same else f"work item {item_id} was already completed by {item.completed_by}"
        try:  # only for the person handoff's signed proof names (not the name typed in the form)
            with s.begin_nested():
                completion_proof.complete_verified(s, item_id, answer)
            item.answer_sent_at, item.sent_answer = None, None
            return None
        except router.NotAllowed as refused:
            audit.record(
                s,
                getattr(refused, "actor", "unverified"),
                "work_item",
                item_id,
                "completion-refused",
                reason=str(refused),
                attempt=attempt,
                **getattr(refused, "details", {}),
            )
            item.attempt, item.answer_sent_at, item.sent_answer = attempt + 1, None, None  # nothing is on its way now
            return str(refused)


def ask_a_person(step: HumanStep, form: type[F]) -> F:
    """Open the step as a work item, wait for the assignee's form, and return their answer."""
    if not issubclass(form, FORMS[step.work_type]):  # `handoff complete` fills in the declared form
        raise TypeError(
            f"{step.work_type} steps are answered with {FORMS[step.work_type].__name__}, not {form.__name__}"
        )
    logger = get_run_logger()
    run_id = str(current_run.id) if current_run.id else None
    opened = open_work_item(step, run_id)
    if opened.answer is not None:
        logger.info("Step %s was already completed by %s", step.step_key, opened.assignee)
        return form.model_validate(opened.answer)
    logger.info("Work item %s (%s) is assigned to %s", opened.item_id, step.work_type, opened.assignee or "nobody yet")
    business_tags = [*step.tags, f"work-type:{step.work_type}"]
    label_waiting_run(opened.item_id, business_tags=business_tags)
    attempt = opened.attempt  # a re-run carries on at the attempt it waits on, never an earlier one
    description = opened.description or without_links(step.description)
    sent_before = opened.sent_answer
    while True:
        key = f"work-item-{opened.item_id}-{attempt}"
        if sent_before is not None:  # sent to a run that died before recording it: nothing is asked again
            logger.info("Taking the answer %s sent to an earlier run of this step", sent_before.get("completed_by"))
            answer, sent_before = form.model_validate(sent_before), None
        else:
            answer = wait_for_form(opened.item_id, form.with_initial_data(description=description), key, description)
        refused = record_completion(opened.item_id, answer.model_dump(), attempt)
        if refused is None:
            label_waiting_run(opened.item_id, waiting=False, business_tags=business_tags)
            return answer
        logger.warning("Completion refused: %s", refused)
        description = without_links(f"**Refused:** {refused}\n\n{step.description}")
        attempt += 1


def without_links(markdown: str) -> str:
    """The step's Markdown with no link, image or autolink left in it: its text carries what
    customers and other systems wrote (a customer's name from the intake, a reason from the
    CRM), and a name like "ACME [re-enter your password](https://evil.example)" must read as
    text in front of a rep, in the worklist and in Prefect's UI alike. No step's own text links
    anywhere; headings, bold, lists and tables stay."""
    return markdown.replace("\\", "\\\\").replace("[", "\\[").replace("<", "\\<")


def wait_for_form(item_id: int, form: type[F], key: str, description: str) -> F:
    """Suspend (deployed runs: no process held) or pause (in-process runs) until the form comes."""
    remember_pause_key(item_id, key, description)
    if deployment.id:
        return suspend_flow_run(wait_for_input=form, key=key, timeout=settings.human_step_timeout_seconds)
    return pause_flow_run(
        wait_for_input=form,
        key=key,
        timeout=settings.human_step_timeout_seconds,
        poll_interval=settings.pause_poll_seconds,
    )
