"""What happened in a throughput run, read back once its orders are done: from Prefect's API each
order's runs, task runs and states (event → first step, answer → running again, runs that
broke), from the sandbox's ledger the side effects recorded twice, and from handoff's audit
trail when each order finished.
"""

from __future__ import annotations

from collections import Counter
from datetime import UTC
from datetime import datetime
from typing import Any

DONE = {"complete", "rejected"}


def run_figures(
    runs_by_order: dict[str, list[Any]],
    occurred: dict[str, datetime],
    answers: list[tuple[str, datetime]],
    finished_at: dict[str, datetime],
) -> dict[str, Any]:
    """Event → first step, answer → running again, task runs per order, runs that broke."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowRunFilter
    from prefect.client.schemas.filters import FlowRunFilterId

    first_step, tasks, broken = [], [], []
    # every state of an order's runs by type: when each answer's run was running again, and the
    # states on its way there
    states_of: dict[str, dict[str, list[datetime]]] = {}
    with get_client(sync_client=True) as client:
        for order, runs in runs_by_order.items():
            ids = [r.id for r in runs]
            task_runs = []
            for start in range(0, len(ids), 50):
                task_runs += client.read_task_runs(
                    flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=ids[start : start + 50])), limit=200
                )
            tasks.append(len(task_runs))
            started = [t.start_time for t in task_runs if t.start_time and t.flow_run_id == ids[0]]
            if started and order in occurred:
                first_step.append((min(started) - occurred[order]).total_seconds())
            for run in runs:
                states = client.read_flow_run_states(run.id)
                for state in states:
                    states_of.setdefault(order, {}).setdefault(state.type.value, []).append(state.timestamp)
                if run.state_name in ("Crashed", "Failed"):
                    broken.append(f"{order}: run {run.name} {run.state_name}: {(run.state.message or '')[:100]}")
    resume_parts: dict[str, list[float]] = {"SCHEDULED": [], "PENDING": [], "RUNNING": []}
    for order, at in answers:
        for kind, seconds in resume_parts.items():
            after = [t for t in states_of.get(order, {}).get(kind, []) if t >= at]
            if after:
                seconds.append((min(after) - at).total_seconds())
    walls = [(finished_at[o] - occurred[o]).total_seconds() for o in finished_at if o in occurred]
    return {
        "first_step": first_step,
        "resumed": resume_parts["RUNNING"],
        "resume_parts": resume_parts,
        "tasks": tasks,
        "broken": broken,
        "walls": walls,
    }


def duplicate_side_effects(ledger: list[dict[str, Any]]) -> int:
    keys = Counter((e["system"], e["operation"], e["idempotency_key"]) for e in ledger)
    return sum(n - 1 for n in keys.values() if n > 1)


def order_finish_times(ids: set[str]) -> dict[str, datetime]:
    """When each finished order reached its last status (handoff's audit trail)."""
    from sqlalchemy import func
    from sqlalchemy import select

    from handoff.core.db import session
    from handoff.core.models import AuditEvent
    from handoff.core.models import Order

    with session() as s:
        done = set(s.scalars(select(Order.id).where(Order.id.in_(ids), Order.status.in_(DONE))))
        rows = s.execute(
            select(AuditEvent.entity_id, func.max(AuditEvent.at))
            .where(AuditEvent.entity == "order", AuditEvent.entity_id.in_(done))
            .group_by(AuditEvent.entity_id)
        ).all()
    return {oid: at if at.tzinfo else at.replace(tzinfo=UTC) for oid, at in rows}
