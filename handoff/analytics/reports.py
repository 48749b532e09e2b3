"""The work-in-progress review: what the team looks at in its daily or twice-daily meeting.

Five parts, each a plain function over the database (`s` is a SQLAlchemy session), so the
terminal (`handoff report`), the Prefect flow (flows/wip_review.py) and tests share them:

1. `queues`         size and location of the work queues, by team and work type: how many
                    items, the oldest, where they sit (unassigned or with which rep), how many
                    are escalated or past due.
2. `problem_cases`  the action list: escalated items, past-due items, items waiting with no
                    eligible rep, orders with open defects, completion refusals.
3. `late_jobs`      jobs likely to be delivered late, most urgent first: open items whose
                    business time left is less than their effort (or already overdue), and
                    orders due within a day that are not complete.
4. `defect_log`     quality problems found internally (checklists that failed).
5. `on_time`        on-time task completion %: items completed by their due time, today and
                    over the last 7 days, overall and by work type.

`build_review` gathers all five; `history` reconstructs the backlog and the daily on-time %
for the chart (`save_chart`). `display_tables` / `summary_markdown` / `to_jsonable` turn a
review into what people read (the CLI's tables, the flow's artifacts) and what machines read.

Conventions:
- Every function takes `now` (default: the clock) so a review is deterministic in tests.
  Datetimes in and out are naive UTC, as stored; aware ones are accepted.
- "Business time" is handoff.core.sla's clock (business hours, weekdays, holidays); pass `clock`
  to use another. "Today" and "a day" are calendar days in the clock's time zone.
- Work items belong to a team through the skills they require (`TEAM_BY_SKILL`).
- Cancelled items are not backlog; in the reconstructed history, closed items without a
  completed_at (cancellations record no time) are left out altogether.
"""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from dataclasses import asdict, dataclass, fields, is_dataclass
from datetime import date, datetime, time, timedelta, timezone
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd
from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session

from handoff.core import sla
from handoff.core.models import AuditEvent, Defect, Order, OrderStatus, WorkItem, WorkItemState, Worker, utcnow
from handoff.core.routing.eligibility import as_utc_naive, effective_requirements, meets
from handoff.core.routing.router import available_now
from handoff.core.settings import settings

# Which team owns a work item, by the skill it requires. Keep every mapping here.
TEAM_BY_SKILL: dict[str, str] = {
    "order-entry": "customer service",
    "credit": "customer service",
    "quotation": "customer service",
    "provisioning": "operations",
    "activation": "operations",
    "billing": "billing",
    "handoff": "account management",
}
OTHER_TEAM = "other"

ACTIVE = (WorkItemState.OPEN, WorkItemState.ASSIGNED, WorkItemState.STARTED)
FINISHED_ORDERS = (OrderStatus.COMPLETE, OrderStatus.REJECTED)
UNASSIGNED = "unassigned"

DEFAULT_WAITING_MINUTES = 30  # an open item nobody has after this long is a problem case
DEFAULT_ON_TIME_DAYS = 7
DEFAULT_CHART_DAYS = 14
DEFAULT_DEFECT_DAYS = 7  # the defect log shows what was found in this many days, plus anything open
DEFAULT_REFUSAL_HOURS = 24  # completion refusals this recent are problem cases
ORDER_DUE_WITHIN = timedelta(days=1)

# Problem kinds, in the order the action list puts them.
STRANDED_RUN = "stranded run"  # its flow run stopped and could not be restarted (tasks/stranded.py)
PAST_DUE = "past due"
ESCALATED = "escalated"
NO_ELIGIBLE_REP = "no eligible rep"
COMPLETION_REFUSED = "completion refused"
OPEN_DEFECTS = "open defects"
PROBLEM_ORDER = (STRANDED_RUN, PAST_DUE, ESCALATED, NO_ELIGIBLE_REP, COMPLETION_REFUSED, OPEN_DEFECTS)


def team_for(required_skills: dict[str, int] | None) -> str:
    """The team of the first required skill we know; "other" if none is known."""
    for skill in required_skills or {}:
        if skill in TEAM_BY_SKILL:
            return TEAM_BY_SKILL[skill]
    return OTHER_TEAM


def _now(now: datetime | None) -> datetime:
    return as_utc_naive(now) if now is not None else utcnow()


def _clock(clock: sla.BusinessClock | None) -> sla.BusinessClock:
    return clock if clock is not None else sla.clock()


def local_midnight(day: date, tz: ZoneInfo) -> datetime:
    """The start of a local calendar day, as naive UTC."""
    return datetime.combine(day, time(), tzinfo=tz).astimezone(timezone.utc).replace(tzinfo=None)


def local_date(at: datetime, tz: ZoneInfo) -> date:
    return as_utc_naive(at).replace(tzinfo=timezone.utc).astimezone(tz).date()


# --- 1. queues -------------------------------------------------------------------------------


@dataclass(slots=True)
class QueueRow:
    team: str
    work_type: str
    size: int  # open + assigned + started
    unassigned: int  # open: waiting for a person
    assigned: int
    started: int
    escalated: int
    past_due: int
    oldest_item_id: int
    oldest_age_seconds: float  # wall-clock time since the oldest item was created
    where: dict[str, int]  # "unassigned" or a rep's name -> items; unassigned first, then by count

    @property
    def where_text(self) -> str:
        return ", ".join(f"{n} unassigned" if who == UNASSIGNED else f"{who} {n}" for who, n in self.where.items())


def _active_items(s: Session) -> list[tuple[WorkItem, str | None]]:
    return list(
        s.execute(
            select(WorkItem, Worker.name)
            .outerjoin(Worker, WorkItem.assignee_id == Worker.id)
            .where(WorkItem.state.in_(ACTIVE))
            .order_by(WorkItem.created_at, WorkItem.id)
        ).all()
    )


def queues(s: Session, now: datetime | None = None) -> list[QueueRow]:
    """Every queue with work in it, by team then largest first."""
    now = _now(now)
    groups: dict[tuple[str, str], list[tuple[WorkItem, str | None]]] = defaultdict(list)
    for item, holder in _active_items(s):
        groups[(team_for(item.required_skills), item.work_type)].append((item, holder))
    rows = []
    for (team, work_type), members in groups.items():
        states = Counter(str(item.state) for item, _ in members)
        holders = Counter(holder for item, holder in members if item.state != WorkItemState.OPEN and holder)
        where = {UNASSIGNED: states[WorkItemState.OPEN]} if states[WorkItemState.OPEN] else {}
        where.update(sorted(holders.items(), key=lambda kv: (-kv[1], kv[0])))
        oldest = min((item for item, _ in members), key=lambda it: (it.created_at, it.id))
        rows.append(
            QueueRow(
                team=team,
                work_type=work_type,
                size=len(members),
                unassigned=states[WorkItemState.OPEN],
                assigned=states[WorkItemState.ASSIGNED],
                started=states[WorkItemState.STARTED],
                escalated=sum(1 for item, _ in members if item.escalated),
                past_due=sum(1 for item, _ in members if item.due_at <= now),
                oldest_item_id=oldest.id,
                oldest_age_seconds=max(0.0, (now - oldest.created_at).total_seconds()),
                where=where,
            )
        )
    return sorted(rows, key=lambda r: (r.team, -r.size, r.work_type))


# --- 2. problem cases ------------------------------------------------------------------------


@dataclass(slots=True)
class ProblemCase:
    subject: str  # "work item 12" or "order 10248"
    problems: list[str]  # kinds, in PROBLEM_ORDER
    details: list[str]  # one line per problem, for the action list
    item_id: int | None = None
    order_id: str | None = None
    work_type: str | None = None
    team: str | None = None
    holder: str | None = None
    due_at: datetime | None = None

    def add(self, problem: str, detail: str) -> None:
        if problem not in self.problems:
            self.problems.append(problem)
            self.problems.sort(key=PROBLEM_ORDER.index)
        self.details.append(detail)


def _waiting_since(s: Session, items: list[WorkItem]) -> dict[int, datetime]:
    """When each open item last became open: its creation, or its last reclaim."""
    since = {it.id: it.created_at for it in items}
    if items:
        reopened = s.execute(
            select(AuditEvent.entity_id, func.max(AuditEvent.at))
            .where(
                AuditEvent.entity == "work_item",
                AuditEvent.entity_id.in_([str(i) for i in since]),
                AuditEvent.to_state == WorkItemState.OPEN,
            )
            .group_by(AuditEvent.entity_id)
        ).all()
        for entity_id, at in reopened:
            since[int(entity_id)] = max(since[int(entity_id)], at)
    return since


def why_no_rep(item: WorkItem, workers: list[Worker], now: datetime) -> str:
    """Why nobody has this open item: nobody has the skills, nobody who has them is at work,
    everybody at work who could do it is full, or it simply has not been routed yet."""
    required = effective_requirements(item.required_skills or {}, bool(item.escalated))
    skilled = [w for w in workers if w.capacity > 0 and meets(w.skill_levels, required)]
    if not skilled:
        wanted = ", ".join(f"{k}:{v}" for k, v in sorted(required.items())) or "no skills"
        return f"nobody on the team holds {wanted}"
    at_work = [w for w in skilled if available_now(w, now)]
    if not at_work:
        names = ", ".join(w.name for w in skilled[:3]) + (" …" if len(skilled) > 3 else "")
        return f"{len(skilled)} could do it ({names}), none at work now"
    free = [w for w in at_work if w.open_items < w.capacity]
    if not free:
        return f"{len(at_work)} at work could do it, all at capacity"
    return f"{len(free)} free rep(s) could take it; not routed yet (is sla-watch running?)"


def problem_cases(
    s: Session,
    now: datetime | None = None,
    *,
    waiting_minutes: float = DEFAULT_WAITING_MINUTES,
    refusal_hours: float = DEFAULT_REFUSAL_HOURS,
) -> list[ProblemCase]:
    """The action list: one case per item or order, with every problem it has."""
    now = _now(now)
    cases: dict[str, ProblemCase] = {}
    active = _active_items(s)

    def case_for(item: WorkItem, holder: str | None) -> ProblemCase:
        key = f"work item {item.id}"
        if key not in cases:
            cases[key] = ProblemCase(
                subject=key, problems=[], details=[], item_id=item.id, order_id=item.order_id,
                work_type=item.work_type, team=team_for(item.required_skills), holder=holder, due_at=item.due_at,
            )
        return cases[key]

    # Escalated and past-due items
    for item, holder in active:
        if item.due_at <= now:
            ago = fmt_duration((now - item.due_at).total_seconds())
            case_for(item, holder).add(PAST_DUE, f"due {item.due_at:%Y-%m-%d %H:%M} UTC, {ago} ago")
        if item.escalated:
            case_for(item, holder).add(ESCALATED, f"escalated; {item.state} with {holder or 'nobody'}")

    # Items waiting with no eligible rep
    waiting = [item for item, _ in active if item.state == WorkItemState.OPEN and item.assignee_id is None]
    since = _waiting_since(s, waiting)
    limit = timedelta(minutes=waiting_minutes)
    late_waiting = [item for item in waiting if now - since[item.id] > limit]
    if late_waiting:
        workers = list(s.scalars(select(Worker)))
        for item in late_waiting:
            waited = fmt_duration((now - since[item.id]).total_seconds())
            case_for(item, None).add(NO_ELIGIBLE_REP, f"unassigned for {waited}: {why_no_rep(item, workers, now)}")

    # Completion refusals
    refusals = s.scalars(
        select(AuditEvent)
        .where(
            AuditEvent.action == "completion-refused",
            AuditEvent.entity == "work_item",
            AuditEvent.at > now - timedelta(hours=refusal_hours),
            AuditEvent.at <= now,
        )
        .order_by(AuditEvent.at)
    ).all()
    for event in refusals:
        item = s.get(WorkItem, int(event.entity_id)) if event.entity_id.isdigit() else None
        if item is None:
            continue
        holder = item.assignee.name if item.assignee else None
        reason = (event.details or {}).get("reason", "")
        state = "" if item.state in ACTIVE else f" (item now {item.state})"
        case_for(item, holder).add(
            COMPLETION_REFUSED, f"{event.actor} was refused at {event.at:%Y-%m-%d %H:%M}{state}: {reason}"
        )

    # Work whose flow run stopped (crashed, failed, pushed out of its wait) and was not restarted
    for event in s.scalars(select(AuditEvent).where(AuditEvent.action == "run-stranded", AuditEvent.at <= now)):
        item_id = (event.details or {}).get("item_id") or (event.entity_id if event.entity == "work_item" else None)
        item = s.get(WorkItem, int(item_id)) if item_id is not None and str(item_id).isdigit() else None
        order = s.get(Order, event.entity_id) if event.entity == "order" else None
        if (item is None or item.state not in ACTIVE) and (order is None or order.status in FINISHED_ORDERS):
            continue  # settled since
        detail = f"run {event.details.get('flow_run_id')} {event.details.get('reason', '')}"
        if item is not None:
            case_for(item, item.assignee.name if item.assignee else None).add(STRANDED_RUN, detail)
        else:
            key = f"order {order.id}"
            cases.setdefault(key, ProblemCase(subject=key, problems=[], details=[], order_id=order.id)).add(
                STRANDED_RUN, detail)

    # Orders with open defects
    open_defects = s.scalars(
        select(Defect)
        .where(Defect.order_id.is_not(None), Defect.found_at <= now,
               or_(Defect.resolved_at.is_(None), Defect.resolved_at > now))
        .order_by(Defect.order_id, Defect.found_at)
    ).all()
    by_order: dict[str, list[Defect]] = defaultdict(list)
    for d in open_defects:
        by_order[d.order_id].append(d)
    for order_id, defects in by_order.items():
        key = f"order {order_id}"
        case = cases.setdefault(key, ProblemCase(subject=key, problems=[], details=[], order_id=order_id,
                                                 work_type=defects[0].work_type))
        for d in defects:
            fix = "no fix item"
            if d.fix_item_id is not None:
                fix_item = s.get(WorkItem, d.fix_item_id)
                holder = fix_item.assignee.name if fix_item and fix_item.assignee else "nobody"
                fix = f"fix item {d.fix_item_id} {fix_item.state if fix_item else '?'} with {holder}"
            case.add(OPEN_DEFECTS, f"defect {d.id} ({d.checklist} checklist, {d.work_type}): "
                                   f"{summarise_failures(d.failures)}; {fix}")

    far = datetime.max
    return sorted(cases.values(), key=lambda c: (PROBLEM_ORDER.index(c.problems[0]), c.due_at or far, c.subject))


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
        jobs.append(LateJob("work item", str(item.id), item.title, item.work_type, team_for(item.required_skills),
                            str(item.state), holder, item.due_at, left is None, overdue, left, effort,
                            reason))

    last_day = local_date(now + ORDER_DUE_WITHIN, clock.tz)
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
        due = local_midnight(order.due_date + timedelta(days=1), clock.tz)  # the end of the promised day
        effort = float(effort_by_order.get(order.id) or 0.0)
        if due <= now:
            overdue, left = (now - due).total_seconds(), None
            reason = f"promised for {order.due_date:%Y-%m-%d}, {fmt_duration(overdue)} ago; still {order.status}"
        else:
            overdue, left = 0.0, clock.seconds_between(now, due)
            reason = f"promised for {order.due_date:%Y-%m-%d}; still {order.status}"
        jobs.append(LateJob("order", order.id, f"order {order.id} for {order.customer_id}", None, None,
                            str(order.status), None, due, left is None, overdue, left, effort, reason))

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


def summarise_failures(failures: list[Any] | None) -> str:
    """'rule a (2×); field: rule b' — each distinct finding once, with how often it occurred."""
    counts: Counter[str] = Counter()
    for f in failures or []:
        if isinstance(f, dict):
            text = f.get("rule") or f.get("text") or "?"
            text = f"{f['field']}: {text}" if f.get("field") else str(text)
        else:
            text = str(f)
        counts[text.replace("_", " ")] += 1
    return "; ".join(f"{text} ({n}×)" if n > 1 else text for text, n in counts.items()) or "(no findings recorded)"


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
    return [
        DefectRow(
            id=d.id, found_at=d.found_at, order_id=d.order_id, work_type=d.work_type, checklist=d.checklist,
            failed_rules=summarise_failures(d.failures), failure_count=len(d.failures or []),
            fix_item_id=d.fix_item_id, fix_item_state=str(fix_state) if fix_state else None,
            resolved=d.resolved_at is not None and d.resolved_at <= now,
            resolved_at=d.resolved_at if d.resolved_at is not None and d.resolved_at <= now else None,
            resolved_by=d.resolved_by if d.resolved_at is not None and d.resolved_at <= now else None,
        )
        for d, fix_state in defects
    ]


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


def pct(part: int, whole: int) -> float | None:
    return round(100.0 * part / whole, 1) if whole else None


def on_time(
    s: Session, now: datetime | None = None, *, days: int = DEFAULT_ON_TIME_DAYS, clock: sla.BusinessClock | None = None
) -> list[OnTime]:
    """Items completed by their due time (completed_at <= due_at): today and over the last
    `days` calendar days (today included), overall first, then by work type."""
    now = _now(now)
    tz = _clock(clock).tz
    today = local_date(now, tz)
    today_start = local_midnight(today, tz)
    window_start = local_midnight(today - timedelta(days=days - 1), tz)
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


# --- the whole review ------------------------------------------------------------------------


@dataclass(slots=True)
class WipReview:
    now: datetime
    timezone: str  # the zone "today" is read in
    queues: list[QueueRow]
    problems: list[ProblemCase]
    late_jobs: list[LateJob]
    defects: list[DefectRow]
    on_time: list[OnTime]  # "all" first, then by work type

    @property
    def overall(self) -> OnTime:
        return self.on_time[0]

    def frames(self) -> dict[str, pd.DataFrame]:
        """Each part as a DataFrame (one row per dataclass), for analysis or export."""
        parts = {"queues": self.queues, "problems": self.problems, "late_jobs": self.late_jobs,
                 "defects": self.defects, "on_time": self.on_time}
        kinds = (QueueRow, ProblemCase, LateJob, DefectRow, OnTime)
        return {
            name: pd.DataFrame([asdict(r) for r in rows], columns=[f.name for f in fields(kind)])
            for (name, rows), kind in zip(parts.items(), kinds)
        }


def build_review(
    s: Session,
    now: datetime | None = None,
    *,
    clock: sla.BusinessClock | None = None,
    waiting_minutes: float = DEFAULT_WAITING_MINUTES,
    on_time_days: int = DEFAULT_ON_TIME_DAYS,
    defect_days: int = DEFAULT_DEFECT_DAYS,
    refusal_hours: float = DEFAULT_REFUSAL_HOURS,
) -> WipReview:
    """Everything the work-in-progress meeting looks at, as of `now`."""
    now = _now(now)
    clock = _clock(clock)
    return WipReview(
        now=now,
        timezone=str(clock.tz),
        queues=queues(s, now),
        problems=problem_cases(s, now, waiting_minutes=waiting_minutes, refusal_hours=refusal_hours),
        late_jobs=late_jobs(s, now, clock=clock),
        defects=defect_log(s, now, days=defect_days),
        on_time=on_time(s, now, days=on_time_days, clock=clock),
    )


# --- 6. history and the chart ----------------------------------------------------------------


@dataclass(slots=True)
class History:
    backlog: pd.DataFrame  # index "at" (local time, naive), column "open": active items at that moment
    daily: pd.DataFrame  # index "day" (local date); created, completed, on_time, on_time_pct, backlog_end
    timezone: str


def history(
    s: Session,
    now: datetime | None = None,
    *,
    days: int = DEFAULT_CHART_DAYS,
    step: timedelta = timedelta(hours=1),
    clock: sla.BusinessClock | None = None,
) -> History:
    """The backlog (active items) every `step` and the on-time % per day, over the last `days`
    calendar days up to `now`, reconstructed from created_at / completed_at."""
    now = _now(now)
    tz = _clock(clock).tz
    first_day = local_date(now, tz) - timedelta(days=days - 1)
    start = local_midnight(first_day, tz)
    rows = s.execute(
        select(WorkItem.created_at, WorkItem.completed_at, WorkItem.due_at, WorkItem.state).where(
            WorkItem.created_at <= now,
            or_(WorkItem.completed_at.is_(None), WorkItem.completed_at >= start),
            # a closed item without a closing time cannot be placed in the history
            or_(WorkItem.state.in_(ACTIVE), WorkItem.completed_at.is_not(None)),
        )
    ).all()
    items = pd.DataFrame(rows, columns=["created_at", "completed_at", "due_at", "state"])
    created = np.sort(items["created_at"].to_numpy(dtype="datetime64[us]"))
    closed_col = items["completed_at"].dropna()
    closed = np.sort(closed_col.to_numpy(dtype="datetime64[us]"))

    samples = pd.date_range(start, now, freq=step).to_numpy(dtype="datetime64[us]")
    if len(samples) == 0 or samples[-1] != np.datetime64(now, "us"):
        samples = np.append(samples, np.datetime64(now, "us"))
    open_count = np.searchsorted(created, samples, side="right") - np.searchsorted(closed, samples, side="right")
    backlog = pd.DataFrame({"open": open_count}, index=pd.Index(_to_local(samples, tz), name="at"))

    day_list = [first_day + timedelta(days=i) for i in range(days)]
    ends = np.array([min(local_midnight(d + timedelta(days=1), tz), now) for d in day_list], dtype="datetime64[us]")
    starts = np.array([local_midnight(d, tz) for d in day_list], dtype="datetime64[us]")
    backlog_end = np.searchsorted(created, ends, side="right") - np.searchsorted(closed, ends, side="right")
    created_per_day = np.searchsorted(created, ends, side="left") - np.searchsorted(created, starts, side="left")
    done = items.dropna(subset=["completed_at"])
    done = done[done["completed_at"] <= now]
    done_day = [local_date(t.to_pydatetime(), tz) for t in done["completed_at"]]
    on_time_flags = (done["completed_at"] <= done["due_at"]).to_numpy()
    per_day = pd.DataFrame({"day": done_day, "on_time": on_time_flags}).groupby("day")["on_time"].agg(["count", "sum"])
    completed = [int(per_day["count"].get(d, 0)) for d in day_list]
    kept = [int(per_day["sum"].get(d, 0)) for d in day_list]
    daily = pd.DataFrame(
        {
            "created": created_per_day.astype(int),
            "completed": completed,
            "on_time": kept,
            "on_time_pct": [pct(k, c) if c else math.nan for k, c in zip(kept, completed)],
            "backlog_end": backlog_end.astype(int),
        },
        index=pd.Index(day_list, name="day"),
    )
    return History(backlog=backlog, daily=daily, timezone=str(tz))


def _to_local(samples: np.ndarray, tz: ZoneInfo) -> list[datetime]:
    return [
        pd.Timestamp(t).to_pydatetime().replace(tzinfo=timezone.utc).astimezone(tz).replace(tzinfo=None)
        for t in samples
    ]


def render_chart(hist: History, path: Path, title: str = "Work in progress") -> Path:
    """Draw the backlog over time and the on-time % per day into a PNG at `path`."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    from matplotlib.dates import DateFormatter, DayLocator

    fig = Figure(figsize=(9, 5.5), dpi=90, layout="constrained")
    FigureCanvasAgg(fig)  # Agg, whatever backend pyplot is set to
    top, bottom = fig.subplots(2, 1, sharex=True)

    top.step(hist.backlog.index, hist.backlog["open"], where="post", color="tab:blue")
    top.fill_between(hist.backlog.index, hist.backlog["open"], step="post", alpha=0.15, color="tab:blue")
    top.set_title(f"Backlog: open, assigned and started items ({hist.timezone})", fontsize=10)
    top.set_ylabel("items")
    top.set_ylim(bottom=0)
    top.grid(alpha=0.3)

    daily = hist.daily
    noons = [datetime.combine(d, time(12)) for d in daily.index]  # a bar in the middle of its day
    values = daily["on_time_pct"].fillna(0).to_numpy()
    colours = ["tab:green" if v >= 90 else "tab:orange" if v >= 75 else "tab:red" for v in values]
    bars = bottom.bar(noons, values, width=0.8, color=colours)
    for bar, at, done, kept in zip(bars, noons, daily["completed"], daily["on_time"]):
        label = f"{kept}/{done}" if done else "–"
        bottom.annotate(label, (at, bar.get_height()), ha="center", va="bottom", fontsize=7)
    bottom.axhline(90, color="grey", linestyle="--", linewidth=0.8)
    bottom.set_ylim(0, 110)
    bottom.set_ylabel("on time %")
    bottom.set_title("On-time task completion per day (target 90 %; on time / completed)", fontsize=10)
    bottom.xaxis.set_major_locator(DayLocator(interval=max(1, len(noons) // 14)))
    bottom.xaxis.set_major_formatter(DateFormatter("%a %d"))
    bottom.tick_params(axis="x", labelsize=7, rotation=45)
    fig.suptitle(title, fontsize=12)

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, format="png")
    return path


def default_chart_path(now: datetime | None = None, directory: Path | None = None) -> Path:
    """<directory or settings.home/reports>/wip-review-YYYYmmdd-HHMM.png"""
    directory = Path(directory) if directory is not None else settings.home / "reports"
    return directory / f"wip-review-{_now(now):%Y%m%d-%H%M}.png"


def save_chart(hist: History, target: Path | None = None, now: datetime | None = None) -> Path:
    """Save the chart: to `target` if it names a .png file, else into the directory `target`
    (default settings.home / "reports") under a name with the review's time."""
    if target is not None and Path(target).suffix.lower() == ".png":
        path = Path(target)
    else:
        path = default_chart_path(now, target)
    return render_chart(hist, path, title=f"Work in progress — {_now(now):%Y-%m-%d %H:%M} UTC")


# --- presenting a review ---------------------------------------------------------------------


def fmt_duration(seconds: float | None) -> str:
    if seconds is None:
        return ""
    seconds = abs(seconds)
    if seconds < 3600:
        return f"{seconds / 60:.0f} min"
    if seconds < 48 * 3600:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86400:.1f} d"


def fmt_pct(value: float | None) -> str:
    return "—" if value is None else f"{value:.1f} %"


def _when(at: datetime | None) -> str:
    return "" if at is None else f"{at:%Y-%m-%d %H:%M}"


def display_tables(review: WipReview, limit: int | None = None) -> dict[str, list[dict[str, Any]]]:
    """The review as rows of short text, one table per part; the CLI prints them and the flow
    publishes them as table artifacts. `limit` caps the rows of the long tables."""
    cap = (lambda rows: rows[:limit]) if limit else (lambda rows: rows)
    return {
        "queues": [
            {"team": q.team, "work type": q.work_type, "size": q.size, "oldest": fmt_duration(q.oldest_age_seconds),
             "where": q.where_text, "escalated": q.escalated, "past due": q.past_due}
            for q in review.queues
        ],
        "late_jobs": [
            {"kind": j.kind, "ref": j.ref, "title": j.title, "team": j.team or "", "status": j.status,
             "holder": j.holder or "", "due (UTC)": _when(j.due_at), "why": j.reason}
            for j in cap(review.late_jobs)
        ],
        "problems": [
            {"subject": p.subject, "problems": ", ".join(p.problems), "work type": p.work_type or "",
             "holder": p.holder or "", "due (UTC)": _when(p.due_at), "details": "\n".join(p.details)}
            for p in cap(review.problems)
        ],
        "defects": [
            {"found (UTC)": _when(d.found_at), "defect": d.id, "order": d.order_id or "", "work type": d.work_type,
             "checklist": d.checklist, "failed rules": d.failed_rules,
             "fix item": "" if d.fix_item_id is None else f"{d.fix_item_id} ({d.fix_item_state})",
             "resolved": f"yes, {_when(d.resolved_at)} by {d.resolved_by or '?'}" if d.resolved else "no"}
            for d in cap(review.defects)
        ],
        "on_time": [
            {"scope": t.scope, "today": fmt_pct(t.today_pct), "today done": t.today_completed,
             "today on time": t.today_on_time, f"{t.days} days": fmt_pct(t.week_pct),
             f"{t.days} days done": t.week_completed, f"{t.days} days on time": t.week_on_time}
            for t in review.on_time
        ],
    }


def summary_markdown(review: WipReview, chart_uri: str | None = None) -> str:
    """The headline for the meeting: on-time %, queue totals, what needs action."""
    t = review.overall
    in_queues = sum(q.size for q in review.queues)
    unassigned = sum(q.unassigned for q in review.queues)
    overdue = sum(1 for j in review.late_jobs if j.overdue)
    open_defects = sum(1 for d in review.defects if not d.resolved)
    lines = [
        f"# Work-in-progress review — {review.now:%Y-%m-%d %H:%M} UTC",
        "",
        f"**On time today: {fmt_pct(t.today_pct)}** ({t.today_on_time} of {t.today_completed} completed) · "
        f"last {t.days} days: **{fmt_pct(t.week_pct)}** ({t.week_on_time} of {t.week_completed}); target 90 %.",
        "",
        f"- Work in queues: **{in_queues}** items in {len(review.queues)} queues, {unassigned} unassigned",
        f"- Jobs likely to be late: **{len(review.late_jobs)}** ({overdue} already overdue)",
        f"- Problem cases: **{len(review.problems)}**",
        f"- Defects in the log: {len(review.defects)} ({open_defects} open)",
        "",
    ]
    by_type = review.on_time[1:]
    if by_type:
        lines += ["| work type | today | done | last %d days | done |" % t.days, "|---|---|---|---|---|"]
        lines += [f"| {o.scope} | {fmt_pct(o.today_pct)} | {o.today_completed} | {fmt_pct(o.week_pct)} | "
                  f"{o.week_completed} |" for o in by_type]
        lines.append("")
    if chart_uri:
        lines += [f"![backlog and on-time %]({chart_uri})", ""]
    return "\n".join(lines)


def to_jsonable(value: Any) -> Any:
    """A review (or any part of it) as JSON-ready data: datetimes in ISO 8601 (naive UTC)."""
    if is_dataclass(value) and not isinstance(value, type):
        return {f.name: to_jsonable(getattr(value, f.name)) for f in fields(value)}
    if isinstance(value, dict):
        return {str(k): to_jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_jsonable(v) for v in value]
    if isinstance(value, (datetime, date)):
        return value.isoformat()
    if isinstance(value, float) and math.isnan(value):
        return None
    return value


__all__ = [
    "TEAM_BY_SKILL", "DefectRow", "History", "LateJob", "OnTime", "ProblemCase", "QueueRow", "WipReview",
    "build_review", "defect_log", "display_tables", "history", "late_jobs", "on_time", "problem_cases", "queues",
    "render_chart", "save_chart", "summary_markdown", "team_for", "to_jsonable",
]
