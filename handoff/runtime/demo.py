"""`handoff demo`: a real order feed through the whole back office on the embedded stack.

Imports Northwind's orders through intake (replayed as if they arrived today, keeping the
lead time each customer was promised), runs the order pipeline for each — order entry,
quotation, provisioning, activation, billing — against the sandbox systems, then the handoff
meetings of the newly won accounts. With --auto-approve the stand-in reps answer the steps they
are pushed, as the assignee would.
"""

from __future__ import annotations

import contextvars
import statistics
import threading
import time
from collections import Counter, defaultdict
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

from sqlalchemy import select

from handoff.core.db import session
from handoff.core.intake import IntakeResult
from handoff.core.models import AuditEvent, Order, WorkItem, WorkItemState
from handoff.core.settings import settings
from handoff.runtime import prefect_server
from handoff.runtime.standins import ensure_standin_reps, standin_answer
from handoff.runtime.steps import StepNotReady, complete_step, waiting_steps


@dataclass
class WorkTypeFigures:
    asked: int = 0
    completed: int = 0
    outcomes: Counter = field(default_factory=Counter)
    seconds: list[float] = field(default_factory=list)  # created → completed


@dataclass
class DemoSummary:
    intake: IntakeResult
    orders_by_status: Counter = field(default_factory=Counter)
    human_steps: dict[str, WorkTypeFigures] = field(default_factory=dict)
    stage_seconds: dict[str, list[float]] = field(default_factory=dict)
    side_effects: Counter = field(default_factory=Counter)
    meetings: Counter = field(default_factory=Counter)
    runs_failed: int = 0
    seconds: float = 0.0
    failures: list[str] = field(default_factory=list)

    @property
    def approvals(self) -> WorkTypeFigures:
        return self.human_steps.get("order-approval", WorkTypeFigures())


def use_demo_database(fresh: bool) -> Path:
    """The demo keeps its own database so it never mixes with real work."""
    path = settings.home / "demo.db"
    if fresh:
        for suffix in ("", "-wal", "-shm"):
            Path(f"{path}{suffix}").unlink(missing_ok=True)
    settings.database_url = f"sqlite:///{path}"
    return path


def auto_approver(stop: threading.Event) -> None:
    """Stand-in reps: answer each waiting step as its assignee."""
    answered: set[tuple[int, str]] = set()
    while not stop.is_set():
        for step in waiting_steps():
            if (step.item_id, step.input_key) in answered or step.assignee is None:
                continue
            answer = standin_answer(step.item_id)
            if answer is None:
                continue
            try:
                complete_step(step.item_id, answer, wait_seconds=5)
                answered.add((step.item_id, step.input_key))
            except StepNotReady:
                pass  # the run has not paused yet; try again next round
        stop.wait(0.3)


RUN_ATTEMPTS = 3


def run_flow(fn: Callable, key: str):  # noqa: ANN201
    """Run the flow for `key`; if the server refuses to create the run (a busy SQLite server
    answers 503), try again — the flows are idempotent, so a second start repeats nothing."""
    for attempt in range(1, RUN_ATTEMPTS + 1):
        try:
            return fn(key, return_state=True)
        except Exception:
            if attempt == RUN_ATTEMPTS:
                raise
            time.sleep(2 * attempt)


def run_all(
    fn: Callable, keys: list[str], concurrency: int, summary: DemoSummary, on_progress: Callable | None, label: str
) -> None:
    """Run a flow for each key on a few threads (each flow run in its own thread's context)."""
    if on_progress:
        on_progress("start", label, len(keys))
    with ThreadPoolExecutor(max_workers=concurrency) as pool:
        futures = {pool.submit(contextvars.copy_context().run, run_flow, fn, key): key for key in keys}
        for future in as_completed(futures):
            try:
                state = future.result()
                failure = None if state.is_completed() else state.message
            except Exception as exc:  # the server refused the run itself; count it, go on
                failure = f"{type(exc).__name__}: {exc}"
            if failure:
                summary.runs_failed += 1
                summary.failures.append(f"{label} {futures[future]}: {failure}")
            if on_progress:
                on_progress("advance", label, 1)


def run_demo(
    orders: int | None, auto_approve: bool, concurrency: int, fresh: bool, on_progress: Callable | None = None
) -> DemoSummary:
    from flows.handoff_meeting import handoff_meeting
    from flows.order_pipeline import order_pipeline
    from handoff.core.northwind import import_northwind
    from handoff.runtime import outbox
    from sandbox.server import start_sandbox
    from tasks.meetings import accounts_awaiting_handoff

    started = time.monotonic()
    settings.pause_poll_seconds = 1  # stand-ins answer within a second; look for answers as often
    use_demo_database(fresh)
    ensure_standin_reps()
    intake = import_northwind(limit=orders, as_of=date.today(), announce=outbox.announce_orders)
    summary = DemoSummary(intake=intake)

    stop = threading.Event()
    approver = None
    if auto_approve:
        approver = threading.Thread(target=contextvars.copy_context().run, args=(auto_approver, stop), daemon=True)
        approver.start()
    with start_sandbox() as systems:
        settings.sandbox_url = systems.url
        run_all(order_pipeline, intake.accepted, concurrency, summary, on_progress, "order pipeline")
        run_all(handoff_meeting, accounts_awaiting_handoff(), concurrency, summary, on_progress, "handoff meeting")
        summary.side_effects = Counter(f"{e['system']}.{e['operation']}" for e in systems.ledger())
    stop.set()
    if approver:
        approver.join(timeout=5)
    collect_figures(summary)
    summary.seconds = time.monotonic() - started
    return summary


STAGES = ["received", "accepted", "quoted", "provisioned", "activated", "billed", "complete"]


def collect_figures(summary: DemoSummary) -> None:
    """Counts and timings per work type and per pipeline stage, from the database."""
    from handoff.core.models import HandoffMeeting

    with session() as s:
        summary.orders_by_status = Counter(s.scalars(select(Order.status)))
        for item in s.scalars(select(WorkItem)):
            figures = summary.human_steps.setdefault(item.work_type, WorkTypeFigures())
            figures.asked += 1
            if item.state == WorkItemState.COMPLETED:
                figures.completed += 1
                figures.outcomes[item.outcome] += 1
                figures.seconds.append((item.completed_at - item.created_at).total_seconds())
        reached: dict[str, dict[str, float]] = defaultdict(dict)
        for event in s.scalars(select(AuditEvent).where(AuditEvent.entity == "order").order_by(AuditEvent.id)):
            stage = "received" if event.action == "received" else (event.to_state or "")
            if stage in STAGES and stage not in reached[event.entity_id]:
                reached[event.entity_id][stage] = event.at.timestamp()
        for times in reached.values():
            previous = None
            for stage in STAGES:
                if stage in times:
                    if previous is not None:
                        summary.stage_seconds.setdefault(stage, []).append(times[stage] - times[previous])
                    previous = stage
        summary.meetings = Counter(s.scalars(select(HandoffMeeting.status)))


def mean(values: list[float]) -> float:
    return statistics.fmean(values) if values else 0.0


def with_local_server(fn, *args, **kwargs):  # noqa: ANN001, ANN201
    """Run `fn` against the local Prefect server, starting it for the run if none is up."""
    url = settings.prefect_ui_url
    settings.home.mkdir(parents=True, exist_ok=True)
    proc = prefect_server.start(url, log_path=str(settings.home / "prefect-server.log"))
    try:
        with prefect_server.using(url):
            return fn(*args, **kwargs), proc
    except BaseException:
        prefect_server.stop(proc)
        raise
