"""Benchmark: from an order's `order.received` event to the first step of its pipeline.

    .venv/bin/python bench/bench_event_latency.py [--orders 30] [--spacing 3]

Starts the running stack (`handoff up`, see bench/stack.py) on its own ports with a fresh home,
sends one warm-up order (reported, not counted), then submits `--orders` large orders through
the HTTP intake one at a time, `--spacing` seconds apart, with nothing else queued. For each
order it reads, after the fact, from Prefect's API:

    event      the order.received event's `occurred` (set by intake when it emits the event)
    received   when the Prefect server received the event (events API `received`)
    created    the pipeline's flow run created by the deployment trigger (automation)
    pending    the runner picked the scheduled run up (state Pending; it polls every 1 s)
    running    the run's own process started the flow (state Running, `start_time`)
    first step the earliest start_time among the run's task runs (`claim-order-<id>`)

and prints p50 / p95 / max of event → first step (target: p95 ≤ 3 s) and of each part, so it
shows where the time goes: event delivery, trigger evaluation, runner poll, process start.
Percentiles are nearest-rank. Exit code 1 if the target is missed or an order never started.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import threading
import time
from datetime import datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from percentile import pct  # noqa: E402
from prefect_reads import order_events  # noqa: E402
from prefect_reads import pipeline_runs  # noqa: E402
from prefect_reads import scheduled_run_states  # noqa: E402
from stack import Stack  # noqa: E402
from stack_code import import_cost  # noqa: E402
from stack_code import runner_limit_note  # noqa: E402
from stack_harness import add_stack_options  # noqa: E402
from stack_harness import bench_main  # noqa: E402
from stack_harness import large_order  # noqa: E402
from stack_processes import machine_busy_seconds  # noqa: E402
from stack_processes import machine_notes  # noqa: E402

TARGET_P95 = 3.0
SEGMENTS = [  # (label, from, to)
    ("event → received by server", "event", "received"),
    ("received → flow run created (trigger)", "received", "created"),
    ("created → picked up by runner (Pending)", "created", "pending"),
    ("Pending → flow running (process start)", "pending", "running"),
    ("running → first task started", "running", "first_step"),
    ("first task → run suspended (its own work)", "first_step", "suspended"),
    ("event → flow run created", "event", "created"),
    ("event → flow run started", "event", "running"),
    ("event → first step started", "event", "first_step"),
]


def timeline(stack: Stack, order_ids: list[str]) -> dict[str, dict[str, Any]]:
    """The moments above for each order (None where Prefect has nothing yet)."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowRunFilter
    from prefect.client.schemas.filters import FlowRunFilterId

    events = order_events()
    runs = pipeline_runs()
    out: dict[str, dict[str, Any]] = {}
    with get_client(sync_client=True) as client:
        for oid in order_ids:
            ev, order_runs = events.get(oid), runs.get(oid, [])
            row: dict[str, Any] = {
                "order": oid,
                "runs": len(order_runs),
                "event": None,
                "received": None,
                "created": None,
                "pending": None,
                "running": None,
                "first_step": None,
                "first_task": None,
                "suspended": None,
            }
            if ev is not None:
                row["event"], row["received"] = ev.occurred, ev.received
            if order_runs:
                run = order_runs[0]  # the trigger's run (a second would come from the outbox)
                row["created"] = run.created
                for state in sorted(client.read_flow_run_states(run.id), key=lambda s: s.timestamp):
                    if state.type.value == "PENDING" and row["pending"] is None:
                        row["pending"] = state.timestamp
                    if state.type.value == "RUNNING" and row["running"] is None:
                        row["running"] = state.timestamp
                    if state.type.value == "PAUSED" and row["suspended"] is None:
                        row["suspended"] = state.timestamp
                tasks = [
                    t
                    for t in client.read_task_runs(
                        flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[run.id])), limit=200
                    )
                    if t.start_time
                ]
                if tasks:
                    first = min(tasks, key=lambda t: t.start_time)
                    row["first_step"], row["first_task"] = first.start_time, first.name
            out[oid] = row
    return out


def seconds(row: dict[str, Any], a: str, b: str) -> float | None:
    if row.get(a) is None or row.get(b) is None:
        return None
    return (row[b] - row[a]).total_seconds()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--orders", type=int, default=30)
    ap.add_argument("--spacing", type=float, default=3.0, help="seconds between submissions")
    ap.add_argument("--settle", type=float, default=10.0, help="seconds to let the stack settle before measuring")
    ap.add_argument("--json", type=Path, default=None, help="also write the per-order timeline here")
    ap.add_argument("--verbose", action="store_true", help="print every order's timeline")
    add_stack_options(ap)
    args = ap.parse_args()
    return bench_main(args, run)


def wait_started(stack: Stack, order_ids: list[str], timeout: float) -> dict[str, dict[str, Any]]:
    deadline = time.monotonic() + timeout
    while True:
        rows = timeline(stack, order_ids)
        if all(r["first_step"] is not None for r in rows.values()) or time.monotonic() > deadline:
            return rows
        time.sleep(1.0)


def run(stack: Stack, args: argparse.Namespace) -> bool:
    print(f"settling {args.settle:.0f} s, then a warm-up order", file=sys.stderr, flush=True)
    time.sleep(args.settle)
    notes_before = machine_notes()
    stack.submit(large_order("L-WARM"))
    warm = wait_started(stack, ["L-WARM"], 120)["L-WARM"]
    time.sleep(max(args.spacing, 5.0))

    ids = [f"L-{i:04d}" for i in range(1, args.orders + 1)]
    post_seconds = []
    concurrent: list[int] = []
    stop = threading.Event()

    def sample() -> None:  # flow-run processes alive, every 0.5 s
        while not stop.is_set():
            concurrent.append(sum(p.role == "flow run" for p in stack.processes()))
            stop.wait(0.5)

    threading.Thread(target=sample, daemon=True).start()
    cpu0, busy0, wall0 = stack.cpu_seconds(), machine_busy_seconds(), time.monotonic()
    t0 = time.monotonic()
    for i, oid in enumerate(ids):
        pause = t0 + i * args.spacing - time.monotonic()
        if pause > 0:
            time.sleep(pause)
        t = time.monotonic()
        stack.submit(large_order(oid))
        post_seconds.append(time.monotonic() - t)
        print(f"submitted {oid}", file=sys.stderr, flush=True)
    rows = wait_started(stack, ids, 120)
    deadline = time.monotonic() + 120  # the last runs finish (suspend) before the CPU is read
    while time.monotonic() < deadline and any(p.role == "flow run" for p in stack.processes()):
        time.sleep(0.5)
    stop.set()
    wall = time.monotonic() - wall0
    stack_cpu, machine_cpu = stack.cpu_seconds() - cpu0, machine_busy_seconds() - busy0
    rows = timeline(stack, ids)
    sla_watch = scheduled_run_states()
    processes = stack.processes()
    notes_after = machine_notes()
    costs = {
        "python -c pass": import_cost("pass"),
        "import prefect.engine": import_cost("import prefect.engine"),
        "import prefect.engine + flows.order_pipeline": import_cost("import prefect.engine, flows.order_pipeline"),
    }

    # --- report ---------------------------------------------------------------------------
    print()
    print(
        f"Event → first step: {args.orders} large orders through intake, one every {args.spacing:g} s "
        f"({runner_limit_note()})"
    )
    print(f"intake POST round trip: p50 {pct(post_seconds, 50) * 1000:.0f} ms, max {max(post_seconds) * 1000:.0f} ms")
    warm_total = seconds(warm, "event", "first_step")
    print(
        f"warm-up order (not counted): event → first step {warm_total:.2f} s"
        if warm_total is not None
        else "warm-up order never started"
    )
    missing = [oid for oid, r in rows.items() if r["first_step"] is None]
    extra_runs = {oid: r["runs"] for oid, r in rows.items() if r["runs"] > 1}
    print()
    print(f"{'part':<42} {'p50 s':>7} {'p95 s':>7} {'max s':>7} {'min s':>7}")
    summary: dict[str, dict[str, float]] = {}
    for label, a, b in SEGMENTS:
        vals = [v for r in rows.values() if (v := seconds(r, a, b)) is not None]
        if not vals:
            print(f"{label:<42} {'—':>7}")
            continue
        summary[label] = {
            "p50": pct(vals, 50),
            "p95": pct(vals, 95),
            "max": max(vals),
            "min": min(vals),
            "n": len(vals),
        }
        s = summary[label]
        print(f"{label:<42} {s['p50']:>7.2f} {s['p95']:>7.2f} {s['max']:>7.2f} {s['min']:>7.2f}")
    total = summary.get("event → first step started")
    parts = [(label, summary[label]["p50"]) for label, _, _ in SEGMENTS[:5] if label in summary]  # up to the first step
    print()
    if parts:
        big = max(parts, key=lambda x: x[1])
        print(f"largest part (p50): {big[0]} = {big[1]:.2f} s")
    print(f"first task of each run: {sorted({r['first_task'] for r in rows.values() if r['first_task']})}")
    print(f"orders whose run never started within 120 s: {len(missing)} {missing[:10]}")
    print(f"orders with more than one pipeline run: {len(extra_runs)} {dict(list(extra_runs.items())[:10])}")
    print(f"sla-watch runs (every minute) that started during the bench, by end state: {sla_watch or 'none'}")
    cores = os.cpu_count() or 1
    print(
        f"flow-run processes alive at once (0.5 s samples): max {max(concurrent, default=0)}, "
        f"mean {statistics.mean(concurrent) if concurrent else 0:.1f}"
    )
    print(
        f"CPU over the {wall:.0f} s measured: machine busy {machine_cpu / wall / cores:.0%} of {cores} cores; "
        f"this stack {stack_cpu / wall / cores:.0%}, everything else on the machine "
        f"{max(0.0, machine_cpu - stack_cpu) / wall / cores:.0%}; stack CPU per order "
        f"{stack_cpu / max(1, args.orders):.2f} s"
    )
    print(f"stack processes at the end: {len(processes)} ({', '.join(sorted({p.role for p in processes}))})")
    print(
        "what a flow run's process pays before its flow starts (fresh interpreter, median of 3, "
        "measured after the run):"
    )
    for what, cost in costs.items():
        print(f"  {what:<46} {cost:.2f} s")
    print(f"machine before: {notes_before}")
    print(f"machine after:  {notes_after}")
    met = total is not None and total["p95"] <= TARGET_P95 and not missing
    verdict = "MET" if met else "MISSED"
    print(
        f"target p95 ≤ {TARGET_P95:.0f} s: {verdict} (p95 = {total['p95']:.2f} s)"
        if total
        else f"target p95 ≤ {TARGET_P95:.0f} s: MISSED (no measurement)"
    )
    if args.verbose:
        print()
        for r in rows.values():
            print(
                r["order"],
                *(
                    f"{label.split(' → ')[-1]}={v:.2f}"
                    for label, a, b in SEGMENTS[:6]
                    if (v := seconds(r, a, b)) is not None
                ),
            )
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(
            json.dumps(
                {
                    "orders": args.orders,
                    "spacing": args.spacing,
                    "summary": summary,
                    "warm_up": warm_total,
                    "import_cost": costs,
                    "machine_before": notes_before,
                    "machine_after": notes_after,
                    "concurrent_flow_run_processes": concurrent,
                    "wall": wall,
                    "stack_cpu": stack_cpu,
                    "machine_cpu": machine_cpu,
                    "post_seconds": post_seconds,
                    "rows": [
                        {k: (v.isoformat() if isinstance(v, datetime) else v) for k, v in r.items()}
                        for r in rows.values()
                    ],
                },
                indent=2,
            )
        )
    return met


if __name__ == "__main__":
    sys.exit(main())
