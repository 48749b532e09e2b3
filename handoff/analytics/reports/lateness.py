"""Parts 3 to 5 of the review: jobs likely to be late, the defect log, on-time completion %."""

from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime
from datetime import timedelta

from sqlalchemy import func
from sqlalchemy import or_
from sqlalchemy import select
from sqlalchemy.orm import Session

from handoff.analytics.reports.common import ACTIVE
from handoff.analytics.reports.common import DEFAULT_DEFECT_DAYS
from handoff.analytics.reports.common import DEFAULT_ON_TIME_DAYS
from handoff.analytics.reports.common import FINISHED_ORDERS
from handoff.analytics.reports.common import ORDER_DUE_WITHIN
from handoff.analytics.reports.common import _active_items
from handoff.analytics.reports.common import _clock
from handoff.analytics.reports.common import _now
from handoff.analytics.reports.common import fmt_duration
from handoff.analytics.reports.common import pct
from handoff.analytics.reports.common import summarise_failures
from handoff.analytics.reports.common import team_for
from handoff.core import sla
from handoff.core.models import Defect
from handoff.core.models import Order
from handoff.core.models import WorkItem
from handoff.core.models import WorkItemState

# --- 3. jobs likely to be late ---------------------------------------------------------------


@dataclass(slots=True)
class LateJob:
    kind: str  # "work item" or "order"
    ref: str  # the item id or the order id
    title: str
    work_type: str | None  # items only
    team: str | None
    status: str  # the item's state or the order's status
    holder: str | None
    due_at: datetime  # for an order, the end of its due date
    overdue: bool
    overdue_seconds: float  # wall-clock time past due (0 if not overdue)
    business_seconds_left: float | None  # None when overdue
    effort_seconds: float  # an item's estimate; for an order, that of its active items
    reason: str

    @property
    def slack_seconds(self) -> float | None:
        return None if self.business_seconds_left is None else self.business_seconds_left - self.effort_seconds


def late_jobs(s: Session, now: datetime | None = None, *, clock: sla.BusinessClock | None = None) -> list[LateJob]:
    """Jobs likely to be late, most urgent first: overdue ones by how long overdue, then the
    at-risk ones by slack (business time left minus the effort still needed). A started item
    is counted with its whole effort estimate (work done so far is not recorded): cautious."""
    now = _now(now)
    clock = _clock(clock)
    jobs: list[LateJob] = []

    for item, holder in _active_items(s):
        effort = float(item.effort_seconds or 0.0)
        if item.due_at <= now:
            overdue = (now - item.due_at).total_seconds()
            left, reason = None, f"overdue by {fmt_duration(overdue)}"
        else:
            overdue, left = 0.0, clock.seconds_between(now, item.due_at)
            if left >= effort:
                continue
            reason = f"needs {fmt_duration(effort)}, {fmt_duration(left)} of business time left"
        jobs.append(
            LateJob(
                "work item",
                str(item.id),
                item.title,
                item.work_type,
                team_for(item.required_skills),
                str(item.state),
                holder,
                item.due_at,
                left is None,
                overdue,
                left,
                effort,
                reason,
            )
        )

    last_day = clock.date_of(now + ORDER_DUE_WITHIN)
    orders = s.scalars(
        select(Order)
        .where(Order.due_date <= last_day, Order.status.not_in(FINISHED_ORDERS))
        .order_by(Order.due_date, Order.id)
    ).all()
    effort_by_order: dict[str, float] = {}
    if orders:
        effort_by_order = {
            order_id: float(total or 0.0)
            for order_id, total in s.execute(
                select(WorkItem.order_id, func.sum(WorkItem.effort_seconds))
                .where(WorkItem.order_id.in_([o.id for o in orders]), WorkItem.state.in_(ACTIVE))
                .group_by(WorkItem.order_id)
            )
        }
    for order in orders:
        due = clock.end_of_day(order.due_date)  # as the order's steps count it (sla.promised_by)
        effort = float(effort_by_order.get(order.id) or 0.0)
        if due <= now:
            overdue, left = (now - due).total_seconds(), None
            reason = f"promised for {order.due_date:%Y-%m-%d}, {fmt_duration(overdue)} ago; still {order.status}"
        else:
            overdue, left = 0.0, clock.seconds_between(now, due)
            reason = f"promised for {order.due_date:%Y-%m-%d}; still {order.status}"
        jobs.append(
            LateJob(
                "order",
                order.id,
                f"order {order.id} for {order.customer_id}",
                None,
                None,
                str(order.status),
                None,
                due,
                left is None,
                overdue,
                left,
                effort,
                reason,
            )
        )

    def urgency(job: LateJob) -> tuple:
        if job.overdue:
            return (0, -job.overdue_seconds, job.kind, job.ref)
        return (1, job.slack_seconds, job.due_at, job.kind, job.ref)

    return sorted(jobs, key=urgency)


# --- 4. defect log ---------------------------------------------------------------------------


@dataclass(slots=True)
class DefectRow:
    id: int
    found_at: datetime
    order_id: str | None
    work_type: str
    checklist: str
    failed_rules: str  # a one-line summary of the findings
    failure_count: int
    fix_item_id: int | None
    fix_item_state: str | None
    resolved: bool
    resolved_at: datetime | None
    resolved_by: str | None


def defect_log(s: Session, now: datetime | None = None, *, days: int = DEFAULT_DEFECT_DAYS) -> list[DefectRow]:
    """Defects found in the last `days` days, plus older ones still open; newest first."""
    now = _now(now)
    defects = s.execute(
        select(Defect, WorkItem.state)
        .outerjoin(WorkItem, Defect.fix_item_id == WorkItem.id)
        .where(
            Defect.found_at <= now,
            or_(Defect.found_at > now - timedelta(days=days), Defect.resolved_at.is_(None), Defect.resolved_at > now),
        )
        .order_by(Defect.found_at.desc(), Defect.id.desc())
    ).all()
    return [_defect_row(d, fix_state, now) for d, fix_state in defects]


def _defect_row(d: Defect, fix_state: object, now: datetime) -> DefectRow:
    """The defect as it stood at `now`: a fix made later does not count yet."""
    settled = d.resolved_at is not None and d.resolved_at <= now
    return DefectRow(
        id=d.id,
        found_at=d.found_at,
        order_id=d.order_id,
        work_type=d.work_type,
        checklist=d.checklist,
        failed_rules=summarise_failures(d.failures),
        failure_count=len(d.failures or []),
        fix_item_id=d.fix_item_id,
        fix_item_state=str(fix_state) if fix_state else None,
        resolved=settled,
        resolved_at=d.resolved_at if settled else None,
        resolved_by=d.resolved_by if settled else None,
    )


# --- 5. on-time completion % -----------------------------------------------------------------


@dataclass(slots=True)
class OnTime:
    scope: str  # "all" or a work type
    today_completed: int
    today_on_time: int
    today_pct: float | None  # None when nothing was completed
    week_completed: int
    week_on_time: int
    week_pct: float | None
    days: int = DEFAULT_ON_TIME_DAYS  # the "week": today and the days before it


def on_time(
    s: Session, now: datetime | None = None, *, days: int = DEFAULT_ON_TIME_DAYS, clock: sla.BusinessClock | None = None
) -> list[OnTime]:
    """Items completed by their due time (completed_at <= due_at): today and over the last
    `days` calendar days (today included), overall first, then by work type."""
    now = _now(now)
    clock = _clock(clock)
    today = clock.date_of(now)
    today_start = clock.start_of_day(today)
    window_start = clock.start_of_day(today - timedelta(days=days - 1))
    rows = s.execute(
        select(WorkItem.work_type, WorkItem.completed_at, WorkItem.due_at).where(
            WorkItem.state == WorkItemState.COMPLETED,
            WorkItem.completed_at >= window_start,
            WorkItem.completed_at <= now,
        )
    ).all()
    tallies: dict[str, list[int]] = defaultdict(lambda: [0, 0, 0, 0])  # today done, on time, week done, on time
    for work_type, completed_at, due_at in rows:
        kept = completed_at <= due_at
        for scope in ("all", work_type):
            t = tallies[scope]
            t[2] += 1
            t[3] += kept
            if completed_at >= today_start:
                t[0] += 1
                t[1] += kept
    tallies.setdefault("all", [0, 0, 0, 0])
    scopes = ["all"] + sorted(k for k in tallies if k != "all")
    return [
        OnTime(scope, t[0], t[1], pct(t[1], t[0]), t[2], t[3], pct(t[3], t[2]), days)
        for scope in scopes
        for t in [tallies[scope]]
    ]


__all__ = [
    "DefectRow",
    "LateJob",
    "OnTime",
    "defect_log",
    "late_jobs",
    "on_time",
]
