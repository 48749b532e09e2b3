"""What every part of the review shares: teams, thresholds, problem kinds, local days, formats."""

from collections import Counter
from datetime import datetime
from datetime import timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from handoff.core import sla
from handoff.core import work_types
from handoff.core.clock import as_utc_naive
from handoff.core.models import OrderStatus
from handoff.core.models import Worker
from handoff.core.models import WorkItem
from handoff.core.models import WorkItemState
from handoff.core.models import utcnow

# Which team owns a work item, by the skill it requires: as the work types declare it.
TEAM_BY_SKILL: dict[str, str] = work_types.TEAM_BY_SKILL
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
NO_ORDER_FOR_ACCEPTED_QUOTE = "accepted quote without its order"  # the order intake refused to make it
PROBLEM_ORDER = (
    STRANDED_RUN,
    NO_ORDER_FOR_ACCEPTED_QUOTE,
    PAST_DUE,
    ESCALATED,
    NO_ELIGIBLE_REP,
    COMPLETION_REFUSED,
    OPEN_DEFECTS,
)
ORDER_MAKING_GRACE = timedelta(minutes=10)  # an acceptance makes its order at once; retries take minutes


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


def pct(part: int, whole: int) -> float | None:
    return round(100.0 * part / whole, 1) if whole else None


def _active_items(s: Session) -> list[tuple[WorkItem, str | None]]:
    return list(
        s.execute(
            select(WorkItem, Worker.name)
            .outerjoin(Worker, WorkItem.assignee_id == Worker.id)
            .where(WorkItem.state.in_(ACTIVE))
            .order_by(WorkItem.created_at, WorkItem.id)
        ).all()
    )


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


__all__ = [
    "ACTIVE",
    "COMPLETION_REFUSED",
    "DEFAULT_CHART_DAYS",
    "DEFAULT_DEFECT_DAYS",
    "DEFAULT_ON_TIME_DAYS",
    "DEFAULT_REFUSAL_HOURS",
    "DEFAULT_WAITING_MINUTES",
    "ESCALATED",
    "FINISHED_ORDERS",
    "NO_ELIGIBLE_REP",
    "OPEN_DEFECTS",
    "ORDER_DUE_WITHIN",
    "OTHER_TEAM",
    "PAST_DUE",
    "NO_ORDER_FOR_ACCEPTED_QUOTE",
    "ORDER_MAKING_GRACE",
    "PROBLEM_ORDER",
    "STRANDED_RUN",
    "TEAM_BY_SKILL",
    "UNASSIGNED",
    "fmt_duration",
    "fmt_pct",
    "pct",
    "summarise_failures",
    "team_for",
]
