"""The SLA watch's steps: each minute's pass over the open work items in handoff's database.

The logic is in handoff.core.routing.watch (plain functions, tested without Prefect); each
step here is a task so the UI shows what each minute did, and the flow (flows/sla_watch.py)
reads as the procedure.
"""

from __future__ import annotations

from datetime import datetime

from prefect import get_run_logger

from handoff.core.db import session
from handoff.core.routing import watch
from tasks.steps import record_step


@record_step(name="re-score urgency")
def rescore_open_work(now: datetime | None) -> watch.Rescore:
    with session() as s:
        return watch.rescore(s, now)


@record_step(name="escalate near-breach items")
def escalate_near_breach(now: datetime | None) -> list[watch.Escalation]:
    with session() as s:
        return watch.escalate_near_breach(s, now)


@record_step(name="reclaim work from absent reps")
def reclaim_from_absent_reps(now: datetime | None) -> list[watch.Reclaim]:
    with session() as s:
        return watch.reclaim_from_absent_reps(s, now)


@record_step(name="route waiting work")
def route_waiting_work(now: datetime | None) -> int:
    with session() as s:
        return len(watch.route_waiting_work(s, now))


@record_step(name="show new assignees on waiting runs")
def relabel_reassigned_runs(since: datetime) -> int:
    """Runs are named and tagged with their assignee; work that changed hands (here, or by a
    `handoff presence` change) gets its run relabelled so reps filter to their own work."""
    from tasks.human_step import label_waiting_run

    with session() as s:
        item_ids = watch.reassigned_since(s, since)
    for item_id in item_ids:
        try:
            label_waiting_run.fn(item_id)
        except Exception as exc:  # a label is a convenience; the assignment itself is done
            get_run_logger().warning("could not relabel the run of work item %s: %s", item_id, exc)
    return len(item_ids)


def notify_supervisors(escalations: list[watch.Escalation]) -> None:
    """A log line per escalation, and a Prefect event automations can forward (mail, chat)."""
    logger = get_run_logger()
    for e in escalations:
        logger.warning(
            "Escalated work item %s (%s%s): %.1f business hours left, due %s UTC; supervisor %s; pool widened to %s",
            e.item_id,
            e.work_type,
            f", order {e.order_id}" if e.order_id else "",
            e.business_seconds_left / 3600,
            f"{e.due_at:%Y-%m-%d %H:%M}",
            e.supervisor or "(none on record)",
            e.widened_to,
        )
        try:
            from prefect.events import emit_event

            emit_event(
                event="work-item.escalated",
                resource={"prefect.resource.id": f"handoff.work-item.{e.item_id}", "handoff.work-type": e.work_type},
                payload={
                    "supervisor": e.supervisor,
                    "order_id": e.order_id,
                    "due_at": e.due_at.isoformat(),
                    "business_seconds_left": e.business_seconds_left,
                },
            )
        except Exception as exc:  # an event is a courtesy; the audit trail already has the escalation
            logger.debug("could not emit work-item.escalated: %s", exc)
