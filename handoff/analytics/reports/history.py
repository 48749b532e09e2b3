"""Part 6: the backlog and the daily on-time % reconstructed from the records, and its chart."""

import math
from dataclasses import dataclass
from datetime import UTC
from datetime import datetime
from datetime import time
from datetime import timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd
from sqlalchemy import or_
from sqlalchemy import select
from sqlalchemy.orm import Session

from handoff.analytics.reports.common import ACTIVE
from handoff.analytics.reports.common import DEFAULT_CHART_DAYS
from handoff.analytics.reports.common import _clock
from handoff.analytics.reports.common import _now
from handoff.analytics.reports.common import pct
from handoff.core import sla
from handoff.core.models import WorkItem
from handoff.core.settings import settings

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
    clock = _clock(clock)
    first_day = clock.date_of(now) - timedelta(days=days - 1)
    start = clock.start_of_day(first_day)
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
    backlog = pd.DataFrame({"open": open_count}, index=pd.Index(_to_local(samples, clock.tz), name="at"))

    day_list = [first_day + timedelta(days=i) for i in range(days)]
    ends = np.array([min(clock.end_of_day(d), now) for d in day_list], dtype="datetime64[us]")
    starts = np.array([clock.start_of_day(d) for d in day_list], dtype="datetime64[us]")
    backlog_end = np.searchsorted(created, ends, side="right") - np.searchsorted(closed, ends, side="right")
    created_per_day = np.searchsorted(created, ends, side="left") - np.searchsorted(created, starts, side="left")
    done = items.dropna(subset=["completed_at"])
    done = done[done["completed_at"] <= now]
    done_day = [clock.date_of(t.to_pydatetime()) for t in done["completed_at"]]
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
    return History(backlog=backlog, daily=daily, timezone=str(clock.tz))


def _to_local(samples: np.ndarray, tz: ZoneInfo) -> list[datetime]:
    return [pd.Timestamp(t).to_pydatetime().replace(tzinfo=UTC).astimezone(tz).replace(tzinfo=None) for t in samples]


def render_chart(hist: History, path: Path, title: str = "Work in progress") -> Path:
    """Draw the backlog over time and the on-time % per day into a PNG at `path`."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.dates import DateFormatter
    from matplotlib.dates import DayLocator
    from matplotlib.figure import Figure

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


__all__ = [
    "History",
    "default_chart_path",
    "history",
    "render_chart",
    "save_chart",
]
