"""Parts 1 and 2 of the review: the queues, and the action list of problem cases."""

from collections import Counter
from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime
from datetime import timedelta

from sqlalchemy import func
from sqlalchemy import or_
from sqlalchemy import select
from sqlalchemy.orm import Session

from handoff.analytics.reports.common import ACTIVE
from handoff.analytics.reports.common import COMPLETION_REFUSED
from handoff.analytics.reports.common import DEFAULT_REFUSAL_HOURS
from handoff.analytics.reports.common import DEFAULT_WAITING_MINUTES
from handoff.analytics.reports.common import ESCALATED
from handoff.analytics.reports.common import FINISHED_ORDERS
from handoff.analytics.reports.common import NO_ELIGIBLE_REP
from handoff.analytics.reports.common import NO_ORDER_FOR_ACCEPTED_QUOTE
from handoff.analytics.reports.common import OPEN_DEFECTS
from handoff.analytics.reports.common import ORDER_MAKING_GRACE
from handoff.analytics.reports.common import PAST_DUE
from handoff.analytics.reports.common import PROBLEM_ORDER
from handoff.analytics.reports.common import STRANDED_RUN
from handoff.analytics.reports.common import UNASSIGNED
from handoff.analytics.reports.common import _active_items
from handoff.analytics.reports.common import _now
from handoff.analytics.reports.common import fmt_duration
from handoff.analytics.reports.common import summarise_failures
from handoff.analytics.reports.common import team_for
from handoff.core.models import OPEN_QUOTE_STATES
from handoff.core.models import AuditEvent
from handoff.core.models import Defect
from handoff.core.models import Order
from handoff.core.models import QuoteRequest
from handoff.core.models import QuoteState
from handoff.core.models import Worker
from handoff.core.models import WorkItem
from handoff.core.models import WorkItemState
from handoff.core.routing.eligibility import effective_requirements
from handoff.core.routing.eligibility import meets
from handoff.core.routing.router import available_now

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
    subject: str  # "work item 12", "order 10248" or "request for quotation RFQ-7"
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
                subject=key,
                problems=[],
                details=[],
                item_id=item.id,
                order_id=item.order_id,
                work_type=item.work_type,
                team=team_for(item.required_skills),
                holder=holder,
                due_at=item.due_at,
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
        request = s.get(QuoteRequest, event.entity_id) if event.entity == "quote_request" else None
        if (
            (item is None or item.state not in ACTIVE)
            and (order is None or order.status in FINISHED_ORDERS)
            and (request is None or request.status not in OPEN_QUOTE_STATES)
        ):
            continue  # settled since
        detail = f"run {event.details.get('flow_run_id')} {event.details.get('reason', '')}"
        if item is not None:
            case_for(item, item.assignee.name if item.assignee else None).add(STRANDED_RUN, detail)
        elif order is not None:
            key = f"order {order.id}"
            cases.setdefault(key, ProblemCase(subject=key, problems=[], details=[], order_id=order.id)).add(
                STRANDED_RUN, detail
            )
        elif request is not None:
            key = f"request for quotation {request.id}"
            cases.setdefault(key, ProblemCase(subject=key, problems=[], details=[])).add(STRANDED_RUN, detail)

    # Quotes the customer accepted whose order could not be made (the order intake refused it):
    # the customer said yes and nothing will happen unless someone acts.
    stuck = s.scalars(
        select(QuoteRequest).where(
            QuoteRequest.status == QuoteState.ACCEPTED,
            QuoteRequest.order_id.is_(None),
            QuoteRequest.answered_at <= now - ORDER_MAKING_GRACE,
        )
    ).all()
    for request in stuck:
        key = f"request for quotation {request.id}"
        cases.setdefault(key, ProblemCase(subject=key, problems=[], details=[])).add(
            NO_ORDER_FOR_ACCEPTED_QUOTE,
            f"accepted by {request.answered_by or 'the customer'} at {request.answered_at:%Y-%m-%d %H:%M} UTC; "
            "no order yet: see `handoff quarantine list` for why the order intake refused it",
        )

    # Orders with open defects
    open_defects = s.scalars(
        select(Defect)
        .where(
            Defect.order_id.is_not(None),
            Defect.found_at <= now,
            or_(Defect.resolved_at.is_(None), Defect.resolved_at > now),
        )
        .order_by(Defect.order_id, Defect.found_at)
    ).all()
    by_order: dict[str, list[Defect]] = defaultdict(list)
    for d in open_defects:
        by_order[d.order_id].append(d)
    for order_id, defects in by_order.items():
        key = f"order {order_id}"
        case = cases.setdefault(
            key, ProblemCase(subject=key, problems=[], details=[], order_id=order_id, work_type=defects[0].work_type)
        )
        for d in defects:
            fix = "no fix item"
            if d.fix_item_id is not None:
                fix_item = s.get(WorkItem, d.fix_item_id)
                holder = fix_item.assignee.name if fix_item and fix_item.assignee else "nobody"
                fix = f"fix item {d.fix_item_id} {fix_item.state if fix_item else '?'} with {holder}"
            case.add(
                OPEN_DEFECTS,
                f"defect {d.id} ({d.checklist} checklist, {d.work_type}): {summarise_failures(d.failures)}; {fix}",
            )

    far = datetime.max
    return sorted(cases.values(), key=lambda c: (PROBLEM_ORDER.index(c.problems[0]), c.due_at or far, c.subject))


__all__ = [
    "ProblemCase",
    "QueueRow",
    "problem_cases",
    "queues",
    "why_no_rep",
]
