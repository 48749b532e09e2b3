"""Soak: orders through the running stack while the other systems misbehave and the stack is killed.

    .venv/bin/python bench/soak.py [--orders 1000] [--kills 3]      # CI: --orders 30 --kills 1

Starts `handoff up` (bench/stack.py) with every other system answering 20 % of requests with a
5xx and letting 5 % hang (`--error-share`, `--timeout-share`); feeds N Northwind orders through
the HTTP intake at a steady rate; stand-in reps answer every step pushed to them after a short
think time, through handoff's own signed path (`handoff.runtime.steps.complete_step`); one
system is down for two minutes (`--down`, `--down-seconds`); and `--kills` times, at random
moments, `handoff up` and the Prefect server are SIGKILLed (no goodbye) and started again on the
same home. Then it waits until every order is settled and prints:

    orders 30 · final 30 · lost 0 · duplicate side effects 0 · orphaned items 0 · kills 1 · database intact

- final: orders complete or rejected, or waiting on a named person (an open step assigned to a
  rep whose run waits for the form);
- lost: orders the intake accepted that are not in handoff's database, or are neither final nor
  waiting when the time is up;
- duplicate side effects: ledger entries of the sandbox for the same system, operation and
  business key (order, line) more than once;
- orphaned items: open work items whose flow run is over (or unknown), so nobody's answer
  would ever be used;
- database: what SQLite's `PRAGMA integrity_check` says of handoff's database at the end
  (a commit lost by SQLite itself, as the WAL-reset bug did, leaves an index that disagrees
  with its table even when no order is missing).
Exit code 0 only if lost, duplicates and orphans are all 0 and the database is intact.
"""

from __future__ import annotations

import argparse
import contextvars
import random
import sys
import threading
import time
from collections import Counter
from datetime import date
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from stack import Stack  # noqa: E402
from stack_harness import add_stack_options  # noqa: E402
from stack_harness import stack_env  # noqa: E402

FINAL = {"complete", "rejected"}


def soak_orders(n: int) -> list[dict[str, Any]]:
    """N Northwind orders as of today (promised lead times kept); past 830 the feed repeats
    under new ids."""
    from handoff.core.northwind import northwind_orders

    base = [data for _, data in northwind_orders(as_of=date.today())]
    out = []
    for i in range(n):
        order = dict(base[i % len(base)])
        if i >= len(base):
            order["order_id"] = f"{order['order_id']}-{i // len(base) + 1}"
        out.append(order)
    return out


class Soak:
    def __init__(self, stack: Stack, args: argparse.Namespace) -> None:
        self.stack, self.args = stack, args
        self.stop = threading.Event()
        self.up = threading.Event()  # the stack answers (cleared while it is killed and restarting)
        self.up.set()
        self.accepted: set[str] = set()
        self.answered: Counter[str] = Counter()
        self.problems: Counter[str] = Counter()
        self.kills = 0
        self.down_until = 0.0

    def say(self, text: str) -> None:
        print(f"[soak {time.strftime('%H:%M:%S')}] {text}", flush=True)

    # -- the three actors -------------------------------------------------------------------

    def feed(self, orders: list[dict[str, Any]]) -> None:
        """Submit each order until the intake has answered for it (a kill in between: again;
        a second copy of the same order is a reported duplicate, never a second order)."""
        pause = 60.0 / self.args.rate
        for order in orders:
            while not self.stop.is_set():
                self.up.wait()
                try:
                    response = self.stack.submit(order, timeout=30)
                except Exception as exc:  # noqa: BLE001 - a killed stack: try again when it is back
                    self.problems[f"intake: {type(exc).__name__}"] += 1
                    time.sleep(1)
                    continue
                if response.status_code in (200, 201, 207):
                    body = response.json()
                    if order["order_id"] in body.get("accepted", []) + body.get("duplicates", []):
                        self.accepted.add(order["order_id"])
                    break
                self.problems[f"intake: HTTP {response.status_code}"] += 1
                time.sleep(1)
            time.sleep(pause)

    def answer_steps(self) -> None:
        """Stand-in reps: each step assigned to someone is answered as that person, once."""
        from handoff.runtime.standins import standin_answer
        from handoff.runtime.steps import complete_step
        from handoff.runtime.steps import waiting_steps

        done: set[tuple[int, str]] = set()
        while not self.stop.is_set():
            self.up.wait()
            try:
                steps = waiting_steps()
            except Exception as exc:  # noqa: BLE001 - the database is busy while the stack restarts
                self.problems[f"responder: {type(exc).__name__}"] += 1
                time.sleep(1)
                continue
            for step in steps:
                if step.assignee is None or (step.item_id, step.input_key) in done or self.stop.is_set():
                    continue
                time.sleep(self.args.think_seconds)
                try:
                    complete_step(step.item_id, standin_answer(step.item_id), wait_seconds=5, by=step.assignee)
                except Exception as exc:  # noqa: BLE001 - not ready yet, already done, stack restarting
                    self.problems[f"responder: {type(exc).__name__}"] += 1
                    continue
                done.add((step.item_id, step.input_key))
                self.answered[step.work_type] += 1
            time.sleep(0.5)

    def misbehave(self, kill_at: list[float], down_at: float) -> None:
        """One system down for a while, and SIGKILLs of the whole stack at the given moments."""
        started = time.monotonic()
        pending = sorted(kill_at)
        down_done = False
        while not self.stop.is_set():
            now = time.monotonic() - started
            if not down_done and now >= down_at:
                self.down_until = time.monotonic() + self.args.down_seconds
                self.set_down([self.args.down])
                down_done = True
                self.say(f"{self.args.down} is down for {self.args.down_seconds:.0f} s")
            if self.down_until and time.monotonic() >= self.down_until:
                self.set_down([])
                self.down_until = 0.0
                self.say(f"{self.args.down} is back")
            if pending and now >= pending[0]:
                pending.pop(0)
                self.kill_and_restart()
            time.sleep(0.5)

    # -- helpers ------------------------------------------------------------------------------

    def set_down(self, systems: list[str]) -> None:
        import httpx

        try:
            httpx.post(f"{self.stack.sandbox_url}/_faults", json={"down": systems}, timeout=10)
        except httpx.HTTPError as exc:
            self.problems[f"faults: {type(exc).__name__}"] += 1

    def kill_and_restart(self) -> None:
        self.up.clear()
        self.kills += 1
        self.say(f"kill {self.kills}: SIGKILL `handoff up` and the Prefect server")
        self.stack.kill()
        time.sleep(2)
        self.stack.start()
        if self.down_until and time.monotonic() < self.down_until:
            self.set_down([self.args.down])  # the sandbox came back up with its faults from the environment
        self.up.set()
        self.say(f"restarted after kill {self.kills}")


def settle(stack: Stack, ids: set[str], timeout: float, quiet_seconds: float, say: Any) -> dict[str, Any]:
    """Wait until every accepted order is final or waiting on a named person (the same for
    `quiet_seconds`), or the time is up; then count."""
    deadline = time.monotonic() + timeout
    last, since = None, time.monotonic()
    while True:
        figures = count(stack, ids)
        # an order missing from the database will not come back: waiting longer only delays the verdict
        settled = figures["final"] + figures["waiting"] + figures["missing"] == len(ids)
        if figures != last:
            last, since = figures, time.monotonic()
            say(
                f"settling: {figures['final']} final, {figures['waiting']} waiting on a person, "
                f"{figures['moving']} moving, of {len(ids)}"
            )
        if settled and time.monotonic() - since >= quiet_seconds:
            return figures
        if time.monotonic() > deadline:
            say("time is up")
            return figures
        time.sleep(3)


def count(stack: Stack, ids: set[str]) -> dict[str, Any]:
    from prefect.client.orchestration import get_client
    from sqlalchemy import select

    from handoff.core.db import session
    from handoff.core.models import Order
    from handoff.core.models import WorkItem
    from handoff.core.models import WorkItemState

    active = (WorkItemState.OPEN, WorkItemState.ASSIGNED, WorkItemState.STARTED)
    with session() as s:
        status = dict(s.execute(select(Order.id, Order.status).where(Order.id.in_(ids))).all())
        items = s.execute(
            select(WorkItem.id, WorkItem.order_id, WorkItem.assignee_id, WorkItem.flow_run_id).where(
                WorkItem.state.in_(active)
            )
        ).all()
    states: dict[str, Any] = {}
    with get_client(sync_client=True) as client:
        for run_id in {i.flow_run_id for i in items if i.flow_run_id}:
            try:
                states[run_id] = client.read_flow_run(run_id).state
            except Exception:  # noqa: BLE001 - unknown to this server
                states[run_id] = None
    waiting_orders = {
        i.order_id
        for i in items
        if i.assignee_id is not None and states.get(i.flow_run_id) and states[i.flow_run_id].is_paused()
    }
    orphans = [
        i.id
        for i in items
        if not i.flow_run_id or states.get(i.flow_run_id) is None or states[i.flow_run_id].is_final()
    ]
    final = {o for o, st in status.items() if st in FINAL}
    waiting = {o for o in waiting_orders if o in status and o not in final}
    return {
        "final": len(final),
        "waiting": len(waiting),
        "moving": len(set(status) - final - waiting),
        "missing": len(ids - set(status)),  # accepted, yet not in the database
        "orphans": len(orphans),
        "statuses": dict(Counter(status.values())),
    }


def database_damage() -> list[str]:
    """What SQLite's own check finds wrong with the database (nothing: intact). A lost commit
    shows here even when no order went missing (an index short of the rows it lists)."""
    from handoff.core import sqlite_driver
    from handoff.core.settings import settings

    return sqlite_driver.damage(settings.sqlalchemy_url, limit=100)


def duplicate_side_effects(ledger: list[dict[str, Any]]) -> list[tuple[str, ...]]:
    """Side effects done twice: the same system, operation and business ids (order, line, ...)
    under more than one entry, whatever idempotency key each carried."""

    def business(e: dict[str, Any]) -> tuple[str, ...]:
        request = e.get("request") if isinstance(e.get("request"), dict) else {}
        ids = tuple(f"{k}={request[k]}" for k in sorted(request) if k.endswith("_id") or k in ("line_no", "attempt"))
        return (e["system"], e["operation"], *ids) if ids else (e["system"], e["operation"], e["idempotency_key"])

    keys = Counter(business(e) for e in ledger)
    return sorted(k for k, n in keys.items() if n > 1)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--orders", type=int, default=1000)
    ap.add_argument("--kills", type=int, default=3)
    ap.add_argument("--rate", type=float, default=30.0, help="orders per minute")
    ap.add_argument("--think-seconds", type=float, default=1.0)
    ap.add_argument("--error-share", type=float, default=0.20)
    ap.add_argument("--timeout-share", type=float, default=0.05)
    ap.add_argument("--down", default="billing", help="the system that goes down for a while")
    ap.add_argument("--down-seconds", type=float, default=120.0)
    ap.add_argument("--settle-timeout", type=float, default=None, help="seconds (default: scales with --orders)")
    ap.add_argument("--seed", type=int, default=7)
    add_stack_options(ap)
    args = ap.parse_args()
    rng = random.Random(args.seed)
    env = {
        "HANDOFF_SANDBOX_ERROR_SHARE": str(args.error_share),
        "HANDOFF_SANDBOX_TIMEOUT_SHARE": str(args.timeout_share),
        "HANDOFF_SANDBOX_STALL_SECONDS": "10",
        "HANDOFF_SANDBOX_SEED": str(args.seed),
        **stack_env(args.env, args.process_limit),
    }
    stack = Stack(
        args.ui_port, args.sandbox_port, args.intake_port, keep_home=True, snapshot=not args.live_tree, extra_env=env
    )
    started = time.monotonic()
    ok = False
    try:
        stack.start()
        stack.load_catalogue()
        soak = Soak(stack, args)
        orders = soak_orders(args.orders)
        feed_seconds = args.orders * 60.0 / args.rate
        kill_at = [rng.uniform(0.15, 0.85) * max(feed_seconds, 60.0) for _ in range(args.kills)]
        down_at = rng.uniform(0.1, 0.5) * max(feed_seconds, 60.0)
        with stack.prefect():
            # Prefect's client settings live in context variables: each actor runs in a copy of
            # this context, or its client would start a server of its own.
            actors = [
                threading.Thread(target=contextvars.copy_context().run, args=(fn, *fn_args), daemon=True)
                for fn, fn_args in (
                    (soak.feed, (orders,)),
                    (soak.answer_steps, ()),
                    (soak.misbehave, (kill_at, down_at)),
                )
            ]
            for actor in actors:
                actor.start()
            actors[0].join()
            soak.say(f"fed {len(soak.accepted)} of {args.orders} orders")
            while soak.kills < args.kills or soak.down_until:  # let the planned faults happen
                time.sleep(1)
            timeout = args.settle_timeout or 300 + 20 * args.orders
            figures = settle(stack, soak.accepted, timeout, quiet_seconds=20, say=soak.say)
            soak.stop.set()
            soak.up.set()
            dupes = duplicate_side_effects(stack.ledger())
            damage = database_damage()
        lost = figures["missing"] + figures["moving"] + (args.orders - len(soak.accepted))
        final = figures["final"] + figures["waiting"]
        print(f"statuses {figures['statuses']} · answered {dict(soak.answered)}")
        print(f"problems met on the way (retried): {dict(soak.problems) or 'none'}")
        for key in dupes[:10]:
            print(f"duplicate side effect: {key}")
        for finding in damage[:10]:
            print(f"database damaged: {finding}")
        print(f"time {time.monotonic() - started:.0f} s")
        print(
            f"orders {args.orders} · final {final} · lost {lost} · duplicate side effects {len(dupes)} · "
            f"orphaned items {figures['orphans']} · kills {soak.kills} · database {'damaged' if damage else 'intact'}"
        )
        ok = lost == 0 and not dupes and figures["orphans"] == 0 and not damage
    finally:
        for line in stack.error_report():
            print(line)
        stack.keep_home = not ok
        stack.stop()
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
