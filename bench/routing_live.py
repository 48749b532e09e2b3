"""The live router timed on a throwaway database (`bench_routing.py --live`): the seeded world
written to SQLite or a temporary PostgreSQL cluster, the indexed path (handoff.core.routing.live)
and the read-per-decision one it replaced (routing_baseline.py) taking turns (TURN calls each) on the same data,
every call timed with its commit; then full sla-watch rounds, and the report against the targets.
"""

from __future__ import annotations

import os
import random
import shutil
import statistics
import time
from datetime import UTC
from datetime import datetime
from pathlib import Path

from percentile import pct
from routing_world import NOW

from handoff.core.routing.routable import RoutableItem
from handoff.core.routing.routable import RoutableRep

# The two paths take turns of TURN calls each (which goes first alternates), on the same evolving
# data. Turn by turn rather than call by call: a read-per-decision call reads the whole queue
# (10,000 rows, ~100 ms for route_for_worker), and the index call right after it paid for that
# (its CPU p99 doubled, its PostgreSQL p99 from ~6 to 11-22 ms), which a live router, never
# running the old path, does not (docs/routing-benchmarks.md, "Seventh pass"). The index
# catches up with the other path's turn (~250 changed rows) untimed before its own: a live
# router refreshes at every decision and sla-watch round, so what it reads at one is what
# changed since the last (here a churn and a claim or two), not a hundred calls' worth.
TURN = 50

# The generated item's routing fields, carried over as they are; its id is the step's key and title.
SAME_FIELDS = ("work_type", "required_skills", "priority", "value", "effort_seconds")


def dt(t: float) -> datetime:
    """A simulated time (epoch seconds) as the naive UTC the database keeps."""
    return datetime.fromtimestamp(t, UTC).replace(tzinfo=None)


def work_item_row(i: RoutableItem) -> dict:
    """An open work-item row for a generated item, for a bulk insert."""
    same = {name: getattr(i, name) for name in SAME_FIELDS}
    times = dict(due_at=dt(i.due_at), created_at=dt(i.created_at))
    return same | times | dict(step_key=i.id, title=i.id, state="open", escalated=False, version=0)


def measure_live(
    items: list[RoutableItem],
    reps: list[RoutableRep],
    backend: str,
    calls: int,
    rounds: int = 3,
    cores: set[int] | None = None,
) -> dict:
    """The live router on a throwaway database holding the same world: the indexed path and the
    read-per-decision path (bench/routing_baseline.py) take turns on the same, evolving data;
    every call is timed with its commit. Then full sla-watch rounds."""
    import tempfile
    from contextlib import ExitStack

    import routing_baseline as baseline
    from sqlalchemy import select
    from sqlalchemy import text

    from handoff.core.db import engine_for
    from handoff.core.db import session
    from handoff.core.models import Worker
    from handoff.core.models import WorkerSkill
    from handoff.core.models import WorkItem
    from handoff.core.routing import assign
    from handoff.core.routing import live
    from handoff.core.routing import watch
    from handoff.core.settings import settings

    home = Path(tempfile.mkdtemp(prefix="handoff-bench-"))
    with ExitStack() as stack:
        stack.callback(shutil.rmtree, home, True)
        if backend == "postgres":
            pinned = os.sched_getaffinity(0) if cores else None
            if cores:
                os.sched_setaffinity(0, cores)  # the server's processes inherit this: let them use every core
            url = stack.enter_context(postgres_cluster()).new_database()
            if pinned:
                os.sched_setaffinity(0, pinned)
        else:
            url = f"sqlite:///{home / 'bench.db'}"
        settings.database_url, settings.home = url, home
        t0 = time.perf_counter()
        with session() as s:
            s.add_all(
                Worker(
                    name=r.id,
                    capacity=r.capacity,
                    open_items=r.open_items,
                    presence="available" if r.available else "offline",
                    skills=[WorkerSkill(skill=k, level=v) for k, v in r.skills.items()],
                )
                for r in reps
            )
            s.flush()
            s.execute(WorkItem.__table__.insert(), [work_item_row(i) for i in items])
        if backend == "postgres":  # as autovacuum would within a minute of a bulk load: without
            # statistics the planner reads 10,000 rows to find the few changed ones
            with session() as s:
                s.execute(text("ANALYZE work_items, workers, worker_skills"))
        build_s = time.perf_counter() - t0
        with session() as s:
            open_ids = list(s.scalars(select(WorkItem.id)))
            worker_ids = list(s.scalars(select(Worker.id)))
        live.forget_indexes()
        t0 = time.perf_counter()
        with session() as s:
            live.index_for(s).at(dt(NOW))  # loaded at the bench's present, as a live one loads at its own
        load_s = time.perf_counter() - t0

        rng = random.Random(5)
        now = dt(NOW)
        paths = {"index": assign, "baseline": baseline}
        out: dict[str, list[float]] = {f"{p} {k}": [] for p in paths for k in ("route_item", "route_for_worker")}
        cpu: dict[str, list[float]] = {key: [] for key in out}
        max_id = max(open_ids)
        for start in range(0, calls, TURN):
            for name in ("index", "baseline") if start // TURN % 2 else ("baseline", "index"):
                if name == "index":  # untimed: caught up with the other path's turn (see TURN)
                    with session() as s:
                        live.index_for(s).refresh()
                for k in range(start, min(calls, start + TURN)):
                    kind = "route_item" if k % 4 else "route_for_worker"
                    finished_by = finish_one(session, rng.randint(1, max_id), now)  # untimed: the churn of a day
                    if kind == "route_item":
                        args = (open_ids.pop(rng.randrange(len(open_ids))),)
                    else:  # the rep who just finished (one place free), or one coming online (any)
                        args = (finished_by if finished_by is not None and k % 16 else rng.choice(worker_ids),)
                    with session() as s:
                        t0, c0 = time.perf_counter(), time.process_time()
                        getattr(paths[name], kind)(s, *args, now)
                        s.commit()
                        out[f"{name} {kind}"].append((time.perf_counter() - t0) * 1e3)
                        cpu[f"{name} {kind}"].append((time.process_time() - c0) * 1e3)
        watch_s = []
        for _round in range(rounds):
            with session() as s:
                t0, c0 = time.perf_counter(), time.process_time()
                report = watch.watch_cycle(s, now)
                s.commit()
                watch_s.append(
                    (
                        time.perf_counter() - t0,
                        len(report.assignments),
                        len(report.escalations),
                        time.process_time() - c0,
                    )
                )
        engine_for(url).dispose()
        live.forget_indexes()
    return {
        "backend": backend,
        "times": out,
        "cpu": cpu,
        "build_s": build_s,
        "load_s": load_s,
        "watch": watch_s,
        "load_average": os.getloadavg()[0],
    }


def finish_one(session, near_id: int, now) -> int | None:  # noqa: ANN001
    """A rep finishes an assigned item (the first at or after `near_id`): it is completed and
    their place freed, in a transaction of its own, as a completion does (its routing is what
    the bench times). Returns who finished, None if nothing was assigned there."""
    from sqlalchemy import text

    with session() as s:
        found = s.execute(
            text("SELECT id, assignee_id FROM work_items WHERE state = 'assigned' AND id >= :near ORDER BY id LIMIT 1"),
            {"near": near_id},
        ).first()
        if found is None:
            return None
        s.execute(
            text("UPDATE work_items SET state = 'completed', completed_at = :now WHERE id = :id"),
            {"now": now, "id": found.id},
        )
        s.execute(
            text("UPDATE workers SET open_items = open_items - 1 WHERE id = :w AND open_items > 0"),
            {"w": found.assignee_id},
        )
        return int(found.assignee_id)


def postgres_cluster():  # noqa: ANN201
    """A throwaway PostgreSQL cluster, started the way the tests start theirs."""
    from handoff.runtime.postgres import PostgresCluster
    from handoff.runtime.postgres import PostgresNotInstalled

    try:
        return PostgresCluster()
    except PostgresNotInstalled as missing:
        raise SystemExit(str(missing)) from None


def report_live(args, lives: list[dict]) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console()
    lines = []
    for result in lives:
        backend, times = result["backend"], result["times"]
        t = Table(
            "call (incl. commit)",
            "n",
            "p50 ms",
            "p99 ms",
            "max ms",
            "cpu p50 ms",
            "cpu p99 ms",
            title_justify="left",
            title=f"live router on {backend}: {args.items:,} open items x {args.reps:,} reps "
            f"(database built in {result['build_s']:.1f} s, index loaded in {result['load_s'] * 1e3:.0f} ms)",
        )
        for label, values in times.items():
            if values:
                spent = result["cpu"][label]
                t.add_row(
                    label,
                    f"{len(values):,}",
                    f"{statistics.median(values):.2f}",
                    f"{pct(values, 99):.2f}",
                    f"{max(values):.2f}",
                    f"{statistics.median(spent):.2f}",
                    f"{pct(spent, 99):.2f}",
                )
        console.print(t)
        console.print(
            f"(cpu: this process only; load average during the run {result['load_average']:.1f} "
            f"on {os.cpu_count()} cores)"
        )
        for kind in ("route_item", "route_for_worker"):
            a, b = times[f"baseline {kind}"], times[f"index {kind}"]
            console.print(
                f"{backend} {kind}: read-per-decision / index  p50 x{statistics.median(a) / statistics.median(b):.1f}"
                f"  p99 x{pct(a, 99) / pct(b, 99):.1f}"
            )
        for k, (secs, assigned, escalated, spent) in enumerate(result["watch"], 1):
            console.print(
                f"{backend} sla-watch round {k}: {secs:.3f} s, cpu {spent:.3f} s "
                f"({assigned} assigned, {escalated} escalated)"
            )
        limit = 5.0 if args.items <= 10_000 and args.reps <= 500 else 20.0
        item_p99, worker_p99 = pct(times["index route_item"], 99), pct(times["index route_for_worker"], 99)
        round_s = max(secs for secs, *_ in result["watch"])
        ok = item_p99 <= limit and worker_p99 <= limit and round_s <= 1.0
        lines.append(
            f"live p99: route_item {item_p99:.1f} ms, route_for_worker {worker_p99:.1f} ms, "
            f"sla-watch round <= {round_s:.2f} s ({backend}, {args.items} items x {args.reps} reps) -> "
            + ("met" if ok else f"NOT met (p99 <= {limit:g} ms, round <= 1 s)")
        )
    for line in lines:
        print(line)
