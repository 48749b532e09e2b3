"""`handoff demo`: one real order feed through the back office on the embedded stack.

Imports Northwind's orders through intake, runs order entry for each on the local Prefect
server, and (with --auto-approve) lets the stand-in reps answer the approvals they are pushed,
as the assignee would: approve unless the checklist found errors.
"""

from __future__ import annotations

import contextvars
import threading
import time
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy import func, select

from handoff import prefect_server
from handoff.db import session
from handoff.intake import IntakeResult
from handoff.models import Order, OrderStatus, WorkItem, WorkItemState
from handoff.settings import settings
from handoff.standins import ensure_standin_reps, standin_answer
from handoff.steps import StepNotReady, complete_step, waiting_steps


@dataclass
class DemoSummary:
    intake: IntakeResult
    approvals_asked: int = 0
    approved: int = 0
    rejected: int = 0
    orders_accepted: int = 0
    orders_rejected: int = 0
    runs_failed: int = 0
    seconds: float = 0.0
    failures: list[str] = field(default_factory=list)


def use_demo_database(fresh: bool) -> Path:
    """The demo keeps its own database so it never mixes with real work."""
    path = settings.home / "demo.db"
    if fresh:
        for suffix in ("", "-wal", "-shm"):
            Path(f"{path}{suffix}").unlink(missing_ok=True)
    settings.database_url = f"sqlite:///{path}"
    return path


def auto_approver(stop: threading.Event) -> None:
    """Stand-in reps: answer each waiting approval as its assignee."""
    answered: set[int] = set()
    while not stop.is_set():
        for step in waiting_steps():
            if step.item_id in answered or step.assignee is None:
                continue
            answer = standin_answer(step.item_id)
            if answer is None:
                continue
            try:
                complete_step(step.item_id, answer, wait_seconds=5)
                answered.add(step.item_id)
            except StepNotReady:
                pass  # the run has not paused yet; try again next round
        stop.wait(0.3)


def run_demo(orders: int | None, auto_approve: bool, concurrency: int, fresh: bool,
             on_progress=None) -> DemoSummary:  # noqa: ANN001
    from flows.order_entry import order_entry
    from handoff.northwind import import_northwind

    started = time.monotonic()
    use_demo_database(fresh)
    ensure_standin_reps()
    intake = import_northwind(limit=orders)
    summary = DemoSummary(intake=intake)
    if on_progress:
        on_progress("start", len(intake.accepted))

    stop = threading.Event()
    approver = None
    if auto_approve:
        approver = threading.Thread(target=contextvars.copy_context().run, args=(auto_approver, stop), daemon=True)
        approver.start()

    def run_one(order_id: str):  # noqa: ANN202
        return order_entry(order_id, return_state=True)

    with ThreadPoolExecutor(max_workers=concurrency) as pool:
        futures = {
            pool.submit(contextvars.copy_context().run, run_one, order_id): order_id
            for order_id in intake.accepted
        }
        for future in as_completed(futures):
            state = future.result()
            if not state.is_completed():
                summary.runs_failed += 1
                summary.failures.append(f"order {futures[future]}: {state.message}")
            if on_progress:
                on_progress("advance", 1)
    stop.set()
    if approver:
        approver.join(timeout=5)

    with session() as s:
        summary.approvals_asked = s.scalar(select(func.count()).select_from(WorkItem).where(WorkItem.work_type == "order-approval"))
        summary.approved = s.scalar(select(func.count()).select_from(WorkItem).where(
            WorkItem.work_type == "order-approval", WorkItem.state == WorkItemState.COMPLETED, WorkItem.outcome == "approve"))
        summary.rejected = s.scalar(select(func.count()).select_from(WorkItem).where(
            WorkItem.work_type == "order-approval", WorkItem.state == WorkItemState.COMPLETED, WorkItem.outcome == "reject"))
        summary.orders_accepted = s.scalar(select(func.count()).select_from(Order).where(Order.status == OrderStatus.ACCEPTED))
        summary.orders_rejected = s.scalar(select(func.count()).select_from(Order).where(Order.status == OrderStatus.REJECTED))
    summary.seconds = time.monotonic() - started
    return summary


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
