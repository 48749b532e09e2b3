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
6. `quotations`     requests for quotation: open ones by state, turnaround request → sent
                    against its SLA, quotes about to expire, quote-to-order conversion.

`build_review` gathers all five; `history` reconstructs the backlog and the daily on-time %
for the chart (`save_chart`). `display_tables` / `summary_markdown` / `to_jsonable` turn a
review into what people read (the CLI's tables, the flow's artifacts) and what machines read.

The parts live in common, queues, lateness, history, quotations and review, each naming what it
offers in `__all__`; callers import them from here.

Conventions:
- Every function takes `now` (default: the clock) so a review is deterministic in tests.
  Datetimes in and out are naive UTC, as stored; aware ones are accepted.
- "Business time" is handoff.core.sla's clock (business hours, weekdays, holidays); pass `clock`
  to use another. "Today" and "a day" are calendar days in the clock's time zone.
- Work items belong to a team through the skills they require (`TEAM_BY_SKILL`, from the
  work-type registry handoff.core.work_types).
- Cancelled items are not backlog; in the reconstructed history, closed items without a
  completed_at (cancellations record no time) are left out altogether.
"""

# Each part names what it offers in its __all__; the package offers the union of them.
from handoff.analytics.reports.common import *  # noqa: F403
from handoff.analytics.reports.history import *  # noqa: F403
from handoff.analytics.reports.lateness import *  # noqa: F403
from handoff.analytics.reports.queues import *  # noqa: F403
from handoff.analytics.reports.quotations import *  # noqa: F403
from handoff.analytics.reports.review import *  # noqa: F403
