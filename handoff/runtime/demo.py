"""`handoff demo`: a real order feed through the whole back office on the embedded stack.

Imports Northwind's orders through intake (replayed as if they arrived today, keeping the
lead time each customer was promised); one in five arrives first as a request for quotation
(`RFQ_SHARE`): its quotation runs (priced, approved, sent through the sandbox CRM), the sandbox's
stand-in customer accepts most quotes, declines some and leaves a few unanswered (they get
their follow-up call and expire: the demo moves their clock to the validity end), and an
accepted quote becomes its order. Then the order pipeline runs for each order — order entry,
quotation, provisioning, activation, billing — against the sandbox systems, then the handoff
meetings of the newly won accounts. With --auto-approve the stand-in reps answer the steps they
are pushed, as the assignee would.
"""

from __future__ import annotations

import contextvars
import statistics
import threading
import time
from collections import Counter
from collections import defaultdict
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import as_completed
from dataclasses import dataclass
from dataclasses import field
from datetime import date
from datetime import timedelta
from functools import partial
from pathlib import Path

from sqlalchemy import select

from handoff.core.db import session
from handoff.core.intake import IntakeResult
from handoff.core.models import AuditEvent
from handoff.core.models import Order
from handoff.core.models import QuoteRequest
from handoff.core.models import WorkItem
from handoff.core.models import WorkItemState
from handoff.core.settings import settings
from handoff.runtime import prefect_server
from handoff.runtime.standins import ensure_standin_reps
from handoff.runtime.standins import standin_answer
from handoff.runtime.steps import StepNotReady
from handoff.runtime.steps import complete_step
from handoff.runtime.steps import waiting_steps


@dataclass
class WorkTypeFigures:
    asked: int = 0
    completed: int = 0
    outcomes: Counter = field(default_factory=Counter)
    seconds: list[float] = field(default_factory=list)  # created → completed


@dataclass
class QuotationFigures:
    requests: IntakeResult = field(default_factory=IntakeResult)
    by_state: Counter = field(default_factory=Counter)
    sent: int = 0
    turnaround_seconds: list[float] = field(default_factory=list)  # request received → quote sent
    orders: list[str] = field(default_factory=list)  # accepted quotes' orders


@dataclass
class DemoSummary:
    intake: IntakeResult
    quotations: QuotationFigures = field(default_factory=QuotationFigures)
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


RFQ_SHARE = 5  # one Northwind order in this many arrives first as a request for quotation


def as_request(data: dict) -> dict:
    """A Northwind order as the request for quotation that came before it: the same customer,
    products, quantities and discounts asked for; prices come from the catalogue."""
    return {
        "request_id": f"NW-{data['order_id']}",
        "customer_id": data["customer_id"],
        "request_date": data["order_date"],
        "due_date": data["due_date"],
        "lines": [{k: l[k] for k in ("product_id", "quantity", "discount")} for l in data["lines"]],
    }


def import_feed(orders: int | None, summary_requests: IntakeResult) -> IntakeResult:
    """Northwind's orders through intake; every RFQ_SHARE-th as a request for quotation instead."""
    import json

    from handoff.core.intake import submit_orders
    from handoff.core.intake import submit_quote_requests
    from handoff.core.northwind import load_catalogue
    from handoff.core.northwind import northwind_orders
    from handoff.runtime import outbox

    load_catalogue()
    feed = northwind_orders(limit=orders, as_of=date.today())
    as_orders, as_requests = [], []
    for n, sub in enumerate(feed):
        if n % RFQ_SHARE == RFQ_SHARE - 1 and isinstance(sub.data, dict) and isinstance(sub.data.get("lines"), list):
            rfq = as_request(sub.data)
            as_requests.append((json.dumps(rfq), rfq))
        else:
            as_orders.append(sub)
    summary_requests.merge(submit_quote_requests(as_requests, source="northwind", announce=None))
    return submit_orders(as_orders, source="northwind", announce=outbox.announce_orders)


def customers_answer(sandbox_url: str, request_ids: list[str], summary: DemoSummary) -> list[str]:
    """Each sent quote's stand-in customer answers through the CRM (as `POST /quotes/{id}/answer`
    would): accepted ones become orders. Returns the requests nobody answered."""
    import httpx

    from handoff.core.quotes import AnswerRefused
    from handoff.core.quotes import answer_quote
    from handoff.core.quotes import current_quote
    from handoff.runtime import outbox

    silent = []
    for request_id in request_ids:
        with session() as s:
            request = s.get(QuoteRequest, request_id)
            quote = current_quote(s, request_id)
            if request.status != "sent" or quote is None:
                continue
            quote_id = quote.id
        said = httpx.get(f"{sandbox_url}/crm/quotes/{quote_id}", timeout=10).json().get("customer_answer")
        if said is None:
            silent.append(request_id)
            continue
        try:
            answered = answer_quote(request_id, said == "accept", by="crm", announce=outbox.announce_orders)
        except AnswerRefused as refused:
            summary.failures.append(f"answer to quote {request_id}: {refused}")
            continue
        if answered.order_id:
            summary.quotations.orders.append(answered.order_id)
    return silent


def run_demo(
    orders: int | None, auto_approve: bool, concurrency: int, fresh: bool, on_progress: Callable | None = None
) -> DemoSummary:
    from flows.handoff_meeting import handoff_meeting
    from flows.order_pipeline import order_pipeline
    from flows.quotation import quotation
    from sandbox.server import start_sandbox
    from tasks.meetings import accounts_awaiting_handoff

    started = time.monotonic()
    settings.pause_poll_seconds = 1  # stand-ins answer within a second; look for answers as often
    use_demo_database(fresh)
    ensure_standin_reps()
    requests = IntakeResult()
    intake = import_feed(orders, requests)
    summary = DemoSummary(intake=intake, quotations=QuotationFigures(requests=requests))

    stop = threading.Event()
    approver = None
    if auto_approve:
        approver = threading.Thread(target=contextvars.copy_context().run, args=(auto_approver, stop), daemon=True)
        approver.start()
    with start_sandbox() as systems:
        settings.sandbox_url = systems.url
        # Requests for quotation first: priced, approved, sent; the customers answer
        run_all(quotation, requests.accepted, concurrency, summary, on_progress, "quotation")
        silent = customers_answer(systems.url, requests.accepted, summary)
        # The unanswered: the call after the offer before the validity ends, then the end of it
        end = date.today() + timedelta(days=settings.quote_valid_days)
        for as_of, label in [(end - timedelta(days=1), "quote follow-up"), (end + timedelta(days=1), "quote expiry")]:
            if silent:
                run_all(partial(quotation, as_of=as_of), silent, concurrency, summary, on_progress, label)
        orders_to_run = intake.accepted + summary.quotations.orders
        run_all(order_pipeline, orders_to_run, concurrency, summary, on_progress, "order pipeline")
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
        q = summary.quotations
        for request in s.scalars(select(QuoteRequest)):
            q.by_state[str(request.status)] += 1
            if request.sent_at is not None:
                q.sent += 1
                q.turnaround_seconds.append((request.sent_at - request.received_at).total_seconds())


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
