"""Two (here four) routers in separate processes, one database: no item is ever assigned
twice and no rep goes over capacity. The guarantee comes from the database (conditional
UPDATEs), so the test uses real OS processes, not threads. Three of the four decide from
deliberately stale indexes (loaded before the race, refreshed only when a lost claim forces
it): staleness may cost claims, never correctness."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections import Counter
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import func
from sqlalchemy import select

from handoff.core.db import session
from handoff.core.models import AuditEvent
from handoff.core.models import Worker
from handoff.core.models import WorkerSkill
from handoff.core.models import WorkItem
from handoff.core.models import WorkItemState

pytestmark = pytest.mark.committed  # router processes read what the test wrote

ROOT = Path(__file__).resolve().parents[3]

# Each router process waits for the starting gun, then routes every item (in its own order)
# one transaction per item, as the order-entry flow does; the "watch" process instead runs the
# batch router (sla-watch's step) repeatedly. Each prints how many assignments it won.
ROUTER_SCRIPT = r"""
import os, random, sys, time
from pathlib import Path
url, gun, ready, mode, ids = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4], sys.argv[5]
from handoff.core.settings import settings
settings.database_url = url
from handoff.core.db import engine, session
from handoff.core.routing.router import route_item, route_open_items
from handoff.core.routing import live
engine()
mode, _, stale = mode.partition(":")
if stale:
    live.MAX_STALENESS = 3600.0
with session() as s:
    live.index_for(s)  # loaded before the gun: what the others do next, it has not seen
ids = [int(x) for x in ids.split(",")]
if mode == "reversed":
    ids.reverse()
elif mode == "shuffled":
    random.Random(4).shuffle(ids)
Path(ready).touch()
while not os.path.exists(gun):
    time.sleep(0.002)
won = 0
if mode == "watch":
    for _ in range(8):
        with session() as s:
            won += len(route_open_items(s))
else:
    for item_id in ids:
        with session() as s:
            won += route_item(s, item_id) is not None
print(won)
"""

BOTH_DATABASES = pytest.mark.parametrize("db", ["sqlite", "postgres"], indirect=True)

ITEMS = 300
REPS = 30
CAPACITY = 8  # 240 places for 300 items: capacity, not items, runs out


@BOTH_DATABASES
def test_concurrent_routers_never_assign_an_item_twice_or_overfill_a_rep(routing_db, tmp_path, now):
    with session() as s:
        for r in range(REPS):
            s.add(
                Worker(
                    name=f"rep-{r:02d}",
                    capacity=CAPACITY,
                    skills=[
                        WorkerSkill(skill="order-approval", level=3),
                        WorkerSkill(skill="credit-review", level=1 + r % 3),
                    ],
                )
            )
        items = [
            WorkItem(
                work_type="order-approval",
                step_key=f"race-{i}",
                title=f"race {i}",
                required_skills={"order-approval": 1 + i % 3},
                created_at=now,
                due_at=now + timedelta(hours=1 + i % 8),
                effort_seconds=600,
            )
            for i in range(ITEMS)
        ]
        s.add_all(items)
        s.flush()
        ids = [it.id for it in items]

    gun = tmp_path / "go"
    env = {
        **os.environ,
        "HANDOFF_DATABASE_URL": routing_db,
        "HANDOFF_HOME": str(tmp_path),
        "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""),
    }
    procs = []
    for k, mode in enumerate(["same:stale", "same", "reversed:stale", "watch:stale"]):
        ready = tmp_path / f"ready-{k}"
        procs.append(
            (
                ready,
                subprocess.Popen(
                    [
                        sys.executable,
                        "-c",
                        ROUTER_SCRIPT,
                        routing_db,
                        str(gun),
                        str(ready),
                        mode,
                        ",".join(map(str, ids)),
                    ],
                    env=env,
                    cwd=ROOT,
                    stdout=subprocess.PIPE,
                    stderr=subprocess.PIPE,
                    text=True,
                ),
            )
        )
    deadline = time.monotonic() + 60
    while not all(ready.exists() for ready, _ in procs):
        assert time.monotonic() < deadline, "router processes did not start"
        assert all(p.poll() is None for _, p in procs), [p.communicate() for _, p in procs if p.poll() is not None]
        time.sleep(0.01)
    gun.touch()
    won = 0
    for _, p in procs:
        out, err = p.communicate(timeout=120)
        assert p.returncode == 0, err
        won += int(out.strip().splitlines()[-1])

    with session() as s:
        check_outcome(s, won)


def check_outcome(s, won: int) -> None:
    assignments = Counter(s.scalars(select(AuditEvent.entity_id).where(AuditEvent.action == "assigned")))
    assert assignments and max(assignments.values()) == 1, "an item was assigned more than once"
    assigned = s.scalars(select(WorkItem).where(WorkItem.state == WorkItemState.ASSIGNED)).all()
    assert len(assigned) == REPS * CAPACITY == won == sum(assignments.values())
    assert all(it.assignee_id is not None and it.version == 1 for it in assigned)
    held = Counter(it.assignee_id for it in assigned)
    for w in s.scalars(select(Worker)):
        assert w.open_items == held[w.id] <= w.capacity
    assert (
        s.scalar(select(func.count()).select_from(WorkItem).where(WorkItem.state == WorkItemState.OPEN)) == ITEMS - won
    )
