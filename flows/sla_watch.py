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
is a task (tasks/sla_watch.py) so the UI shows what each minute did.
"""

from __future__ import annotations

from datetime import datetime
from datetime import timedelta

from prefect import flow
from prefect import get_run_logger

from handoff.core.models import utcnow
from tasks.sla_watch import escalate_near_breach
from tasks.sla_watch import notify_supervisors
from tasks.sla_watch import reclaim_from_absent_reps
from tasks.sla_watch import relabel_reassigned_runs
from tasks.sla_watch import rescore_open_work
from tasks.sla_watch import route_waiting_work
from tasks.stranded import restart_stranded_runs

RELABEL_LOOKBACK = timedelta(minutes=3)  # a little more than one cycle, so no change is missed


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
        logger.info(
            "Reclaimed work item %s from %s (%s); now with %s",
            r.item_id,
            r.from_worker,
            r.reason,
            r.rerouted_to or "nobody yet",
        )

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
