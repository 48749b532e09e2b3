"""A rep's worklist: the items pushed to them, most urgent first, with where to act on each.

Each waiting step is a suspended Prefect flow run; the link opens its page in the Prefect UI,
where the rep fills in the step's form. The urgency shown is the one the router ranks by: the
push policy's score of the rep's next pick (the whole open queue's mean effort and wait, the
rep's late clock, the team's scarce-skill factor), from the live index, not a separate estimate.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import numpy as np
from sqlalchemy import select
from sqlalchemy.orm import Session

from handoff.core import sla
from handoff.core.clock import as_utc_naive
from handoff.core.clock import epoch
from handoff.core.models import Worker
from handoff.core.models import WorkItem
from handoff.core.models import WorkItemState
from handoff.core.models import utcnow
from handoff.core.routing.claims import UnknownWorker
from handoff.core.routing.live import index_for
from handoff.core.routing.readmodel import as_routable_item
from handoff.core.settings import settings


@dataclass(slots=True)
class WorklistEntry:
    item_id: int
    title: str
    work_type: str
    state: str
    order_id: str | None
    due_at: datetime
    seconds_left: float  # sla.seconds_left: business time to due, or minus the time since
    urgency: float
    escalated: bool
    flow_run_id: str | None
    link: str | None


def run_link(flow_run_id: str | None) -> str | None:
    """The Prefect UI page of the flow run waiting on this step."""
    if not flow_run_id:
        return None
    return f"{settings.prefect_ui_url.rstrip('/')}/runs/flow-run/{flow_run_id}"


def worklist(s: Session, name: str, now: datetime | None = None) -> list[WorklistEntry]:
    """The worker's assigned and started items, most urgent first."""
    now = as_utc_naive(now or utcnow())
    worker = s.scalar(select(Worker).where(Worker.name == name))
    if worker is None:
        raise UnknownWorker(f"no worker named {name!r}")
    items = s.scalars(
        select(WorkItem).where(
            WorkItem.assignee_id == worker.id,
            WorkItem.state.in_((WorkItemState.ASSIGNED, WorkItemState.STARTED)),
        )
    ).all()
    t = epoch(now)
    index = index_for(s)
    with index.session_view(s, now):
        urgency: np.ndarray | list[float] = (
            index.ranking(worker.id, [as_routable_item(it) for it in items], t) if items else []
        )
    entries = [
        WorklistEntry(
            item_id=it.id,
            title=it.title,
            work_type=it.work_type,
            state=str(it.state),
            order_id=it.order_id,
            due_at=it.due_at,
            seconds_left=sla.seconds_left(now, it.due_at),
            urgency=float(score),
            escalated=it.escalated,
            flow_run_id=it.flow_run_id,
            link=run_link(it.flow_run_id),
        )
        for it, score in zip(items, urgency)
    ]
    entries.sort(key=lambda e: (-e.urgency, e.due_at, e.item_id))
    return entries
