"""SLA watch: every minute, keep pushed work moving toward its due dates.

Steps:
1. Re-score the urgency of every open work item (urgency rises as due dates near).
2. Escalate items close to breaching their SLA: flag them, notify a supervisor, and widen
   their pool to reps one skill level lower.
3. Reclaim not-started items from reps who went offline, are off shift or away too long, and
   re-route them.
4. Route every open item that now has an eligible free rep.
5. Show the new assignee on each waiting run whose work changed hands.
6. Restart runs that crashed, failed or were pushed out of their wait while their order or step
   still needs them; list those that cannot be restarted as problem cases (tasks/stranded.py).

The logic lives in handoff.core.routing.watch (plain functions, tested without Prefect); each step
here is a task so the UI shows what each minute did.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from prefect import flow, get_run_logger, task
from prefect.cache_policies import NO_CACHE

RELABEL_LOOKBACK = timedelta(minutes=3)  # a little more than one cycle, so no change is missed

from handoff.core.db import session
from handoff.core.models import utcnow
from handoff.core.routing import watch
from tasks.stranded import restart_stranded_runs


@task(name="re-score urgency", cache_policy=NO_CACHE)
def rescore_open_work(now: datetime | None) -> watch.Rescore:
    with session() as s:
        return watch.rescore(s, now)


@task(name="escalate near-breach items", cache_policy=NO_CACHE)
def escalate_near_breach(now: datetime | None) -> list[watch.Escalation]:
    with session() as s:
        return watch.escalate_near_breach(s, now)


@task(name="reclaim work from absent reps", cache_policy=NO_CACHE)
def reclaim_from_absent_reps(now: datetime | None) -> list[watch.Reclaim]:
    with session() as s:
        return watch.reclaim_from_absent_reps(s, now)


@task(name="route waiting work", cache_policy=NO_CACHE)
def route_waiting_work(now: datetime | None) -> int:
    with session() as s:
        return len(watch.route_waiting_work(s, now))


@task(name="show new assignees on waiting runs", cache_policy=NO_CACHE)
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
            "Escalated work item %s (%s%s): %.1f business hours left, due %s UTC; supervisor %s; "
            "pool widened to %s",
            e.item_id, e.work_type, f", order {e.order_id}" if e.order_id else "",
            e.business_seconds_left / 3600, f"{e.due_at:%Y-%m-%d %H:%M}", e.supervisor or "(none on record)",
            e.widened_to,
        )
        try:
            from prefect.events import emit_event

            emit_event(
                event="work-item.escalated",
                resource={"prefect.resource.id": f"handoff.work-item.{e.item_id}", "handoff.work-type": e.work_type},
                payload={"supervisor": e.supervisor, "order_id": e.order_id, "due_at": e.due_at.isoformat(),
                         "business_seconds_left": e.business_seconds_left},
            )
        except Exception as exc:  # an event is a courtesy; the audit trail already has the escalation
            logger.debug("could not emit work-item.escalated: %s", exc)


@flow(name="sla-watch", flow_run_name="sla-watch")
def sla_watch(now: datetime | None = None) -> dict[str, int]:
    """One pass of the SLA watch (`now` is for tests and replays; default: the clock)."""
    logger = get_run_logger()

    # 1. Re-score urgency
    scores = rescore_open_work(now)

    # 2. Escalate near-breach items and tell their supervisors
    escalations = escalate_near_breach(now)
    notify_supervisors(escalations)

    # 3. Reclaim work from reps who are not at work, and re-route it
    reclaims = reclaim_from_absent_reps(now)
    for r in reclaims:
        logger.info("Reclaimed work item %s from %s (%s); now with %s", r.item_id, r.from_worker, r.reason,
                    r.rerouted_to or "nobody yet")

    # 4. Route every open item that has an eligible free rep
    routed = route_waiting_work(now)

    # 5. Show new assignees on the waiting runs
    relabel_reassigned_runs((now or utcnow()) - RELABEL_LOOKBACK)

    # 6. Restart runs that stopped while their order or step still needs them (or list them for the WIP review)
    restart_stranded_runs(now)

    summary = {
        "open": scores.open_items,
        "overdue": scores.overdue,
        "escalated": len(escalations),
        "reclaimed": len(reclaims),
        "routed": routed,
    }
    logger.info("sla-watch: %s", summary)
    return summary


if __name__ == "__main__":
    sla_watch()
