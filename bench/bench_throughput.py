"""Benchmark: orders per hour through the real stack, and what handoff costs over Prefect itself.

    .venv/bin/python bench/bench_throughput.py --orders 20            # every configuration, small
    .venv/bin/python bench/bench_throughput.py --orders 60 --rate 30 --configs "postgres+2 workers"

For each configuration it starts the stack (`handoff up` with the options below, a fresh home,
see bench/stack.py), feeds `--orders` large orders (approval needed, then the customer's
activation confirmation: two human steps each) through the HTTP intake at a steady `--rate` per
minute, and stand-in reps answer every human step `--think` seconds after it starts waiting
(handoff.runtime.steps.complete_step, as the assignee). It runs until every order is complete.

    sqlite+runner        `handoff up`                          (Prefect on SQLite, one runner)
    postgres+runner      `handoff up --postgres`               (both databases on PostgreSQL)
    postgres+2 workers   `handoff up --postgres --workers 2`   (a work pool, two warm workers)
    postgres+4 workers   `handoff up --postgres --workers 4`

On the postgres+2 workers stack it then drives the bare pipeline (bench/bare_pipeline.py): as
many task runs and suspends per order as handoff's measured, started by an event, resumed after
the same think time, and nothing else; handoff's overhead is its wall time per order over the
bare one's.

Figures per configuration: sustained orders/h (orders over first event → last completion), event
→ first step p50/p95 (the order.received event's time to the first task of its run), answer → run
resumed p95 (complete_step returned → the run Running again), CPU seconds per order (the stack's
processes, PostgreSQL's included, flow runs reaped), wall time per order (event → complete),
errors (crashed or failed runs, orders not complete, answers refused) and duplicate side effects
(a sandbox idempotency key recorded twice). Percentiles are nearest-rank.
"""

from __future__ import annotations

import argparse
import json
import shutil
import signal
import statistics
import sys
import tempfile
import time
from dataclasses import asdict
from dataclasses import dataclass
from dataclasses import field
from datetime import UTC
from datetime import datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from percentile import pct  # noqa: E402
from prefect_reads import order_events  # noqa: E402
from prefect_reads import pipeline_runs  # noqa: E402
from stack import Stack  # noqa: E402
from stack import _on_sigterm  # noqa: E402
from stack_code import snapshot_tree  # noqa: E402
from stack_harness import large_order  # noqa: E402
from stack_harness import stack_env  # noqa: E402
from stack_processes import machine_notes  # noqa: E402
from throughput_records import duplicate_side_effects  # noqa: E402
from throughput_records import order_finish_times  # noqa: E402
from throughput_records import run_figures  # noqa: E402
from throughput_standins import BareStandIns  # noqa: E402
from throughput_standins import StandIns  # noqa: E402
from throughput_standins import background  # noqa: E402

CONFIGS: dict[str, list[str]] = {
    "sqlite+runner": [],
    "postgres+runner": ["--postgres"],
    "postgres+2 workers": ["--postgres", "--workers", "2"],
    "postgres+4 workers": ["--postgres", "--workers", "4"],
}
FLOOR_ON = "postgres+2 workers"
RECORDS_SETTLE = 10.0  # Prefect records task runs from events: let the last ones land before counting


def say(text: str) -> None:
    print(f"[bench] {text}", file=sys.stderr, flush=True)


@dataclass
class Result:
    config: str
    orders: int
    finished: int = 0
    orders_per_hour: float = 0.0
    first_step_p50: float | None = None
    first_step_p95: float | None = None
    resume_p95: float | None = None
    cpu_per_order: float = 0.0
    wall_per_order: float | None = None
    tasks_per_order: float = 0.0
    suspends_per_order: float = 0.0
    errors: int = 0
    duplicates: int = 0
    notes: list[str] = field(default_factory=list)
    cpu_by_role: dict[str, float] = field(default_factory=dict)  # CPU s per order, by process


# --- one configuration ------------------------------------------------------------------------------


def feed(n: int, rate_per_min: float, submit: Any) -> None:
    t0 = time.monotonic()
    for i in range(n):
        pause = t0 + i * 60.0 / rate_per_min - time.monotonic()
        if pause > 0:
            time.sleep(pause)
        submit(i)


def wait_until(done: Any, timeout: float, label: str) -> bool:
    deadline, last = time.monotonic() + timeout, None
    while time.monotonic() < deadline:
        state = done()
        if state is True:
            return True
        if state != last:
            say(f"{label}: {state}")
            last = state
        time.sleep(2)
    return False


def run_handoff(stack: Stack, name: str, prefix: str, args: argparse.Namespace) -> Result:
    ids = [f"{prefix}-{i:04d}" for i in range(1, args.orders + 1)]
    idset = set(ids)
    standins = StandIns(args.think)
    thread = background(standins.run)
    cpu0 = stack.cpu_by_role()
    feed(len(ids), args.rate, lambda i: stack.submit(large_order(ids[i])))
    say(f"{name}: fed {len(ids)} orders")

    def progress() -> bool | str:
        finished = order_finish_times(idset)
        return True if len(finished) == len(ids) else f"{len(finished)}/{len(ids)} orders done"

    finished_ok = wait_until(progress, args.timeout, name)
    cpu = cpu_since(stack, cpu0)
    standins.stop.set()
    thread.join(timeout=10)
    time.sleep(RECORDS_SETTLE)
    finished = order_finish_times(idset)
    events = {oid: ev.occurred for oid, ev in order_events().items() if oid in idset}
    runs = {oid: r for oid, r in pipeline_runs().items() if oid in idset}
    answers = list(standins.answered.values())
    fig = run_figures(runs, events, answers, finished)
    result = figures(name, len(ids), finished, events, fig, cpu, len(answers))
    result.duplicates = duplicate_side_effects(stack.ledger())
    if not finished_ok:
        result.notes.append(f"not all orders finished within {args.timeout:.0f} s")
    result.notes += [f"answers that failed before succeeding: {dict(standins.failures)}"] if standins.failures else []
    return result


def cpu_since(stack: Stack, before: dict[str, float]) -> dict[str, float]:
    """CPU seconds by process role since `before` (a role whose processes all ended keeps 0)."""
    now = stack.cpu_by_role()
    return {role: max(0.0, now.get(role, 0.0) - before.get(role, 0.0)) for role in now.keys() | before.keys()}


def figures(
    name: str,
    n: int,
    finished: dict[str, datetime],
    events: dict[str, datetime],
    fig: dict[str, Any],
    cpu: dict[str, float],
    answers: int,
) -> Result:
    result = Result(name, n, finished=len(finished))
    if finished and events:
        span = (max(finished.values()) - min(events.values())).total_seconds()
        result.orders_per_hour = len(finished) / span * 3600 if span > 0 else 0.0
    result.first_step_p50, result.first_step_p95 = pct(fig["first_step"], 50), pct(fig["first_step"], 95)
    result.resume_p95 = pct(fig["resumed"], 95)
    result.cpu_per_order = sum(cpu.values()) / n
    result.cpu_by_role = {role: seconds / n for role, seconds in sorted(cpu.items(), key=lambda kv: -kv[1])}
    result.wall_per_order = statistics.fmean(fig["walls"]) if fig["walls"] else None
    result.tasks_per_order = statistics.fmean(fig["tasks"]) if fig["tasks"] else 0.0
    result.suspends_per_order = answers / n
    result.errors = len(fig["broken"]) + (n - len(finished))
    result.notes += fig["broken"][:5]
    parts = fig.get("resume_parts") or {}
    if any(parts.values()):  # where an answer's way back to running goes (the states in between)
        result.notes.append(
            "answer → next " + " / ".join(f"{kind.lower()} p50 {fmt(pct(v, 50))} s" for kind, v in parts.items() if v)
        )
    return result


def run_bare(stack: Stack, args: argparse.Namespace, tasks: int, suspends: int) -> Result:
    """The bare pipeline on the same stack: same rate, think time, task runs and suspends."""
    from bare_pipeline import BARE_EVENT
    from prefect.events import DeploymentEventTrigger
    from prefect.events import emit_event
    from prefect.flows import Flow

    trigger = DeploymentEventTrigger(
        name="bare.received starts the bare pipeline",
        expect={BARE_EVENT},
        match={"prefect.resource.id": "bare.order.*"},
        parameters={"order_id": "{{ event.resource['bare.order-id'] }}"},
    )
    flow = Flow.from_source(source=str(stack.code), entrypoint="bench/bare_pipeline.py:bare_order")
    deployment_id = flow.deploy(
        name="bare-order",
        work_pool_name=stack.stack_info.get("pool") or "back-office",
        parameters={"tasks": tasks, "suspends": suspends},
        triggers=[trigger],
        build=False,
        push=False,
        print_next_steps=False,
    )
    time.sleep(5)  # the trigger is live on the server
    ids = [f"B-{i:04d}" for i in range(1, args.orders + 1)]
    occurred: dict[str, datetime] = {}

    def submit(i: int) -> None:
        occurred[ids[i]] = datetime.now(UTC)
        emit_event(event=BARE_EVENT, resource={"prefect.resource.id": f"bare.order.{ids[i]}", "bare.order-id": ids[i]})

    standins = BareStandIns(args.think, deployment_id)
    thread = background(standins.run)
    cpu0 = stack.cpu_by_role()
    feed(len(ids), args.rate, submit)

    def bare_runs() -> dict[str, list[Any]]:
        return {oid: r for oid, r in pipeline_runs("bare-order/bare-order").items() if oid in occurred}

    def progress() -> bool | str:
        done = sum(any(r.state_name == "Completed" for r in runs) for runs in bare_runs().values())
        return True if done == len(ids) else f"{done}/{len(ids)} bare orders done"

    wait_until(progress, args.timeout, "bare pipeline")
    cpu = cpu_since(stack, cpu0)
    standins.stop.set()
    thread.join(timeout=10)
    time.sleep(RECORDS_SETTLE)
    runs = bare_runs()
    finished = {
        oid: max(r.end_time for r in rs if r.state_name == "Completed")
        for oid, rs in runs.items()
        if any(r.state_name == "Completed" for r in rs)
    }
    fig = run_figures(runs, occurred, list(standins.answered.values()), finished)
    return figures(f"bare Prefect ({FLOOR_ON})", len(ids), finished, occurred, fig, cpu, len(standins.answered))


def run_config(name: str, index: int, args: argparse.Namespace, code: Path) -> list[Result]:
    stack = Stack(
        args.ui_port,
        args.sandbox_port,
        args.intake_port,
        code=code,
        up_args=CONFIGS[name],
        keep_home=args.keep_home,
        say=lambda text: say(f"{name}: {text}"),
        extra_env={**stack_env(args.env, args.process_limit), **({"HANDOFF_WARM_START": "false"} if args.cold else {})},
    )
    results: list[Result] = []
    try:
        stack.start(timeout=args.start_timeout)
        stack.load_catalogue()
        with stack.prefect():
            time.sleep(args.settle)
            result = run_handoff(stack, name, f"T{index}", args)
            results.append(result)
            say(f"{name}: {result}")
            if name == FLOOR_ON and not args.no_floor:
                tasks = max(1, round(result.tasks_per_order))
                suspends = max(0, round(result.suspends_per_order))
                results.append(run_bare(stack, args, tasks, suspends))
                say(f"{name}: {results[-1]}")
        for line in stack.error_report():
            say(f"{name}: {line}")
    except Exception as exc:  # noqa: BLE001 - one configuration failing must not hide the others
        say(f"{name}: FAILED {type(exc).__name__}: {exc}")
        results.append(Result(name, args.orders, errors=args.orders, notes=[f"{type(exc).__name__}: {exc}"[:300]]))
        stack.keep_home = True
    finally:
        stack.stop()
    return results


# --- report -----------------------------------------------------------------------------------------


def fmt(v: float | None, spec: str = ".2f") -> str:
    return "—" if v is None else format(v, spec)


def report(results: list[Result], args: argparse.Namespace) -> str:
    print()
    print(
        f"Throughput: {args.orders} large orders per configuration at {args.rate:g}/min, two human steps each, "
        f"answered {args.think:g} s after they wait; flow runs start {'cold' if args.cold else 'warm'}"
    )
    header = (
        f"{'configuration':<30} {'done':>6} {'orders/h':>9} {'1st step p50':>12} {'p95':>6} "
        f"{'resume p95':>10} {'CPU s/order':>11} {'wall s/order':>12} {'tasks':>6} {'errors':>6} {'dup':>4}"
    )
    print(header)
    print("-" * len(header))
    for r in results:
        print(
            f"{r.config:<30} {r.finished:>3}/{r.orders:<2} {r.orders_per_hour:>9.0f} {fmt(r.first_step_p50):>12} "
            f"{fmt(r.first_step_p95):>6} {fmt(r.resume_p95):>10} {r.cpu_per_order:>11.2f} "
            f"{fmt(r.wall_per_order, '.1f'):>12} {r.tasks_per_order:>6.1f} {r.errors:>6} {r.duplicates:>4}"
        )
        for note in r.notes:
            print(f"    {r.config}: {note}")
    print("CPU s/order by process:")
    for r in results:
        split = " · ".join(f"{role} {seconds:.2f}" for role, seconds in r.cpu_by_role.items() if seconds >= 0.005)
        print(f"    {r.config}: {split or '—'}")
    by = {r.config: r for r in results}
    handoff, bare = by.get(FLOOR_ON), by.get(f"bare Prefect ({FLOOR_ON})")
    overhead = (
        handoff.wall_per_order / bare.wall_per_order
        if handoff and bare and handoff.wall_per_order and bare.wall_per_order
        else None
    )
    if handoff and bare and bare.cpu_per_order:
        print(
            f"CPU per order, handoff over bare Prefect on {FLOOR_ON}: x{handoff.cpu_per_order / bare.cpu_per_order:.2f}"
        )
    print(f"machine: {machine_notes()}")
    errors = sum(r.errors for r in results)
    dups = sum(r.duplicates for r in results)
    parts = [f"overhead x{overhead:.2f} vs bare Prefect" if overhead else "overhead — (no floor)"]
    for name in (FLOOR_ON, "sqlite+runner"):
        if name in by:
            parts.append(f"{name} {by[name].orders_per_hour:.0f} orders/h")
    parts += [f"errors {errors}", f"duplicate side effects {dups}"]
    line = " · ".join(parts)
    print(line)
    return line


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--orders", type=int, default=20)
    ap.add_argument("--rate", type=float, default=20.0, help="orders per minute fed through intake")
    ap.add_argument("--think", type=float, default=2.0, help="seconds a stand-in takes to answer a step")
    ap.add_argument("--configs", default=",".join(CONFIGS), help="comma-separated, of: " + ", ".join(CONFIGS))
    ap.add_argument(
        "--process-limit",
        type=int,
        default=None,
        help="HANDOFF_RUNNER_PROCESS_LIMIT: runs at once per runner or worker",
    )
    ap.add_argument("--env", action="append", default=[], metavar="KEY=VALUE", help="more environment for the stacks")
    ap.add_argument("--no-floor", action="store_true", help="skip the bare Prefect pipeline")
    ap.add_argument(
        "--cold",
        action="store_true",
        help="HANDOFF_WARM_START=false: every flow run (runner or worker) a fresh interpreter",
    )
    ap.add_argument("--settle", type=float, default=10.0, help="seconds after start before feeding")
    ap.add_argument("--timeout", type=float, default=1800.0, help="seconds for one configuration's orders to finish")
    ap.add_argument("--start-timeout", type=float, default=600.0, help="seconds for a stack to be ready")
    ap.add_argument("--ui-port", type=int, default=4320)
    ap.add_argument("--sandbox-port", type=int, default=8785)
    ap.add_argument("--intake-port", type=int, default=8095)
    ap.add_argument("--keep-home", action="store_true")
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args()
    signal.signal(signal.SIGTERM, _on_sigterm)  # stacks are stopped however the bench ends
    signal.signal(signal.SIGINT, signal.default_int_handler)  # also when started in the background
    names = [n.strip() for n in args.configs.split(",") if n.strip()]
    unknown = [n for n in names if n not in CONFIGS]
    if unknown:
        ap.error(f"unknown configuration(s) {unknown}; known: {list(CONFIGS)}")
    snapshot = Path(tempfile.mkdtemp(prefix="handoff-bench-code-"))
    code = snapshot_tree(snapshot)  # one snapshot of the working tree for all stacks
    results: list[Result] = []
    try:
        for index, name in enumerate(names, start=1):
            results += run_config(name, index, args, code)
    finally:
        shutil.rmtree(snapshot, ignore_errors=True)
    line = report(results, args)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(
            json.dumps(
                {
                    "args": vars(args) | {"json": str(args.json)},
                    "summary": line,
                    "results": [asdict(r) for r in results],
                },
                indent=2,
                default=str,
            )
        )
    return 0 if all(r.errors == 0 and r.duplicates == 0 for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
