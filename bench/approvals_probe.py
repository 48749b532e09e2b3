"""What bench_waiting_approvals.py reads of a running stack: processes and memory sampled over
time, orders and approvals waiting, run states, the sandbox ledger, resume latencies."""

from __future__ import annotations

import statistics
import sys
import threading
import time
from collections import Counter
from dataclasses import dataclass
from dataclasses import field
from datetime import datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from prefect_reads import pipeline_runs  # noqa: E402
from stack import Stack  # noqa: E402
from stack_processes import Proc  # noqa: E402

ENTRY_STATES = {"received", "in-order-entry", "awaiting-approval"}


@dataclass
class Sample:
    t: float
    phase: str
    total: int
    python: int
    flow_runs: int
    rss_mb: float
    mem_available_mb: float


@dataclass
class Sampler:
    """Counts the stack's processes every `interval` seconds in a background thread."""

    stack: Stack
    t0: float
    interval: float = 1.0
    phase: str = "idle"
    min_available_mb: float = 4000.0
    samples: list[Sample] = field(default_factory=list)
    aborted: str | None = None
    _stop: threading.Event = field(default_factory=threading.Event)

    def start(self) -> Sampler:
        threading.Thread(target=self._run, daemon=True, name="process-sampler").start()
        return self

    def _run(self) -> None:
        while not self._stop.is_set():
            procs = self.stack.processes()
            available = mem_available_mb()
            self.samples.append(
                Sample(
                    time.monotonic() - self.t0,
                    self.phase,
                    len(procs),
                    sum(p.is_python for p in procs),
                    sum(p.role == "flow run" for p in procs),
                    round(sum(p.rss_mb for p in procs)),
                    round(available),
                )
            )
            if available < self.min_available_mb and not self.aborted:
                # the machine is shared: stop before the OOM killer picks someone else's process
                self.aborted = (
                    f"the machine's available memory fell to {available:.0f} MB with "
                    f"{len(procs)} stack processes using {sum(p.rss_mb for p in procs):.0f} MB"
                )
                say(f"ABORTING: {self.aborted}")
            self._stop.wait(self.interval)

    def stop(self) -> None:
        self._stop.set()

    def of(self, phase: str) -> list[Sample]:
        return [s for s in self.samples if s.phase == phase]


class Aborted(Exception):
    pass


def mem_available_mb() -> float:
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemAvailable:"):
            return int(line.split()[1]) / 1000
    return float("inf")


def say(text: str) -> None:
    print(f"[bench] {text}", file=sys.stderr, flush=True)


# --- reading the stack ----------------------------------------------------------------------


def approvals_waiting(ids: set[str]) -> list[Any]:
    from handoff.runtime.steps import waiting_steps

    return [w for w in waiting_steps() if w.work_type == "order-approval" and w.order_id in ids]


def order_statuses(ids: set[str]) -> dict[str, str]:
    from sqlalchemy import select

    from handoff.core.db import session
    from handoff.core.models import Order

    with session() as s:
        return {oid: str(status) for oid, status in s.execute(select(Order.id, Order.status).where(Order.id.in_(ids)))}


def run_states(stack: Stack, ids: set[str]) -> tuple[Counter, dict[str, int]]:
    """(state names of all pipeline runs of these orders, runs per order)."""
    runs = pipeline_runs()
    states = Counter(r.state_name for oid in ids for r in runs.get(oid, []))
    return states, {oid: len(runs.get(oid, [])) for oid in ids}


def suspended_orders(stack: Stack, ids: set[str]) -> int:
    runs = pipeline_runs()
    return sum(any(r.state_name == "Suspended" for r in runs.get(oid, [])) for oid in ids)


def ledger_summary(entries: list[dict[str, Any]], ids: set[str]) -> dict[str, Any]:
    keys = Counter((e["system"], e["idempotency_key"]) for e in entries)
    credit = [e for e in entries if e["operation"] == "check_credit" and e["request"].get("order_id") in ids]
    per_order = Counter(e["request"]["order_id"] for e in credit)
    return {
        "entries": len(entries),
        "by_operation": dict(Counter(f"{e['system']}.{e['operation']}" for e in entries)),
        "credit_checks": len(credit),
        "credit_keys": len({e["idempotency_key"] for e in credit}),
        "orders_with_credit_check": len(per_order),
        "orders_with_several_credit_checks": sorted(o for o, n in per_order.items() if n > 1),
        "duplicate_keys": sorted(f"{s}:{k}" for (s, k), n in keys.items() if n > 1),
    }


def business_key(e: dict[str, Any]) -> tuple[str, str, str]:
    """What one side effect is about: system, operation and order, e.g. ('crm', 'check_credit',
    'W-0001'). A re-run that did an order's credit check again under another key would show up
    as a second entry with the same business key."""
    order = e["request"].get("order_id") if isinstance(e.get("request"), dict) else None
    if not order:  # keys are made of business ids: "reserve:W-0001:1"
        order = next((part for part in e["idempotency_key"].split(":") if part.startswith("W-")), e["idempotency_key"])
    return e["system"], e["operation"], str(order)


def resume_latencies(stack: Stack, answered_at: dict[str, datetime]) -> dict[str, list[float]]:
    """Seconds from each answer to its run being picked up again (Pending) and running again."""
    from prefect.client.orchestration import get_client

    runs = pipeline_runs()
    lags: dict[str, list[float]] = {"pending": [], "running": []}
    with get_client(sync_client=True) as client:
        for oid, at in answered_at.items():
            for run in runs.get(oid, []):
                states = sorted(client.read_flow_run_states(run.id), key=lambda x: x.timestamp)
                later = [x for x in states if x.timestamp >= at]
                pending = next((x for x in later if x.type.value == "PENDING"), None)
                running = next((x for x in later if x.type.value == "RUNNING"), None)
                if running is not None:
                    if pending is not None:
                        lags["pending"].append((pending.timestamp - at).total_seconds())
                    lags["running"].append((running.timestamp - at).total_seconds())
                    break
    return lags


def spread(values: list[float]) -> str:
    if not values:
        return "—"
    ordered = sorted(values)
    p95 = ordered[max(0, -(-95 * len(ordered) // 100) - 1)]
    return f"p50 {statistics.median(ordered):.1f} / p95 {p95:.1f} / max {ordered[-1]:.1f} (n={len(ordered)})"


def show_processes(procs: list[Proc]) -> None:
    for p in procs:
        print(f"    pid {p.pid:>7}  {p.rss_mb:6.0f} MB  {p.role:<36} {p.cmdline[:100]}")
