"""Northwind's order book as an order-to-cash back office (entry -> provisioning -> billing)."""

from __future__ import annotations

import math
import sqlite3
from pathlib import Path

import numpy as np
import pandas as pd

from handoff.analytics.simulation.calendar import DAY
from handoff.analytics.simulation.calendar import WeeklyCalendar
from handoff.analytics.simulation.calendar import weekday
from handoff.analytics.simulation.engine import WorkItem
from handoff.analytics.simulation.workload import SkillProfile
from handoff.analytics.simulation.workload import Workload

NORTHWIND_STEPS = (
    # (work type, skill, fixed seconds, seconds per order line, share of the promise window by
    #  which the step must be done)
    ("order entry", "order entry", 300.0, 60.0, 0.2),
    ("provisioning", "provisioning", 600.0, 180.0, 0.8),
    ("billing", "billing", 240.0, 30.0, 1.0),
)


def northwind_workload(
    path: str | Path,
    compression: float = 20.0,
    seed: int = 0,
    calendar: WeeklyCalendar | None = None,
    large_order_value: float | None = None,
    handling_cv: float = 0.4,
) -> Workload:
    """Northwind's 830 orders as an order-to-cash back office: entry -> provisioning -> billing.

    Assumptions (stated because the database has no back-office timings):
    - Dates: this SQLite port shifted the 1996-98 dates by 20 years, so orders fall on
      weekends too; we count calendar days x 5/7 as business days.
    - Time compression: `compression` business days of the order book are replayed in one
      business day (default 20), with deadlines compressed the same way. At the real pace
      (compression=1) the work is ~1 hour a day and any team of one is always on time.
    - Arrivals: an order arrives at a uniformly random moment of its own order date, compressed
      like everything else (so 20 order dates share one replayed day); opening hours Mon-Fri 09-17.
    - Steps in order: order entry, provisioning (pick, pack, book the carrier), billing. Each
      is released when the one before is done. Effort = fixed + per order line (NORTHWIND_STEPS);
      the actual touch time is that x a lognormal factor (mean 1, CV `handling_cv`); the router
      sees the formula (it knows the line count, not the surprises).
    - Due: RequiredDate (the promise) for billing; provisioning by 80 % and order entry by 20 %
      of the window between arrival and the promise.
    - Value = order total (sum of lines after discount); priority 2 and order-entry skill level 2
      (an approval) for orders of at least `large_order_value` (settings: 5,000).
    - Team: generalists holding all three skills, levels 1-3 drawn at random per rep; at least
      one rep per team holds order entry at level 2 (cross-training rule).
    """
    if compression <= 0:
        raise ValueError("compression must be positive")
    if large_order_value is None:
        from handoff.core.settings import settings

        large_order_value = settings.large_order_value
    calendar = calendar or WeeklyCalendar.from_shift("09:00", "17:00", "01234")
    conn = sqlite3.connect(f"file:{Path(path)}?mode=ro", uri=True)
    try:
        orders = pd.read_sql_query(
            """SELECT o.OrderID AS id, o.OrderDate AS ordered, o.RequiredDate AS required,
                      COUNT(d.ProductID) AS lines,
                      SUM(d.UnitPrice * d.Quantity * (1 - d.Discount)) AS total
               FROM Orders o JOIN "Order Details" d ON d.OrderID = o.OrderID
               GROUP BY o.OrderID ORDER BY o.OrderDate, o.OrderID""",
            conn,
        )
    finally:
        conn.close()
    ordered = pd.to_datetime(orders["ordered"])
    required = pd.to_datetime(orders["required"])
    first = ordered.min().normalize()
    rng = np.random.default_rng(seed)
    day_len = calendar.weekly_hours() * 3600 / sum(1 for d in calendar.hours if d)
    # Business-day positions (x 5/7 for the weekend dates), compressed. An order arrives at a
    # random moment of its own (compressed) order date, so it never arrives after its promise.
    order_day = (ordered - first).dt.days.to_numpy()
    pos_due = ((required - first).dt.days.to_numpy() + 1) * 5 / 7 / compression
    # Day 0 of the replay: the Monday of the first order's week, at opening time.
    t_first = (first - pd.Timestamp("1970-01-01")).total_seconds()
    t0 = float(t_first - weekday(t_first) * DAY)
    t0 = calendar.add_open_seconds(t0, 0.0)
    sigma = math.sqrt(math.log(1 + handling_cv**2))
    items: list[WorkItem] = []
    for k, row in enumerate(orders.itertuples(index=False)):
        arrival = calendar.add_open_seconds(t0, float((order_day[k] + rng.random()) * 5 / 7 / compression * day_len))
        promise = calendar.add_open_seconds(t0, float(pos_due[k] * day_len))
        promise = max(promise, arrival + 600.0)  # compression must not promise the past
        window = promise - arrival
        large = float(row.total) >= large_order_value
        prev = None
        for work_type, skill, fixed, per_line, share in NORTHWIND_STEPS:
            effort = fixed + per_line * int(row.lines)
            actual = effort * float(rng.lognormal(-(sigma**2) / 2, sigma))
            item_id = f"order{row.id}:{work_type}"
            items.append(
                WorkItem(
                    id=item_id,
                    work_type=work_type,
                    required_skills={skill: 2 if (large and work_type == "order entry") else 1},
                    arrival=arrival,
                    handling_seconds=actual,
                    due=arrival + share * window,
                    priority=2.0 if large else 1.0,
                    value=float(row.total),
                    effort_estimate=effort,
                    after=prev,
                )
            )
            prev = item_id
    items.sort(key=lambda it: it.arrival)
    prof_rng = np.random.default_rng(seed + 1)
    profiles = [
        SkillProfile({s: int(prof_rng.integers(1, 4)) for _, s, *_ in NORTHWIND_STEPS}, 1.0, f"generalist{k}")
        for k in range(30)
    ]
    notes = [
        f"{len(orders)} orders, 3 steps each ({len(items)} items); {int((orders['total'] >= large_order_value).sum())} "
        f"orders >= {large_order_value:g} need an approval (order entry level 2)",
        f"time compression: {compression:g} business days of orders per replayed business day; calendar days x 5/7",
        "effort = fixed + per line (entry 5+1/line, provisioning 10+3/line, billing 4+0.5/line minutes), "
        f"actual x lognormal CV {handling_cv:g}",
        "due: entry by 20 %, provisioning by 80 % of the window to RequiredDate, billing by RequiredDate",
        f"opening hours {calendar.describe()}; generalist reps, skill levels 1-3 at random",
    ]
    sla = {
        work_type: f"{share:.0%} of the window from arrival to RequiredDate"
        for work_type, _, _, _, share in NORTHWIND_STEPS
    }
    return Workload("northwind", items, calendar, profiles, notes, sla)
