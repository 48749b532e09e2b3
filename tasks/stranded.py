"""Nothing stranded: runs an order, a quotation or a waiting step counts on, that are not on it.

An order that is not finished, a request for quotation not yet answered, and a work item that is
still open, each name the flow run that carries them. That run may have crashed, failed or been
cancelled (a kill, a bug, someone in the UI), or been pushed out of its wait (set to Running or
Failed through the API while it was suspended: it then holds no process and never comes back).
Left alone, the order stays `awaiting-approval` for ever, the quote is never sent, and the item
stays assigned to a dead run.

sla-watch calls `restart_stranded_runs` every minute. Each stranded run is restarted — a new run
of the same deployment with the same parameters, which is safe because every flow is
idempotent (work items by step key, other systems by idempotency key, the order taken once) —
or, where that cannot be done (no deployment, restarted `MAX_RESTARTS` times already), written
down as a problem case the WIP review lists ("stranded run"). Prefect de-duplicates the restart:
it is created with the idempotency key `restart-of-<old run id>`, so two sla-watch passes (or
machines) restarting the same run get one new run.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC
from datetime import datetime
from datetime import timedelta
from uuid import UUID

from prefect import get_run_logger
from sqlalchemy import select

from handoff.core import audit
from handoff.core.db import session
from handoff.core.models import OPEN_QUOTE_STATES
from handoff.core.models import AuditEvent
from handoff.core.models import Order
from handoff.core.models import OrderStatus
from handoff.core.models import QuoteRequest
from handoff.core.models import WorkItem
from handoff.core.models import WorkItemState
from handoff.core.models import utcnow
from handoff.core.routing.claims import ACTIVE
from tasks.heartbeats import silent_runs
from tasks.steps import record_step

ENDED = ("CRASHED", "FAILED", "CANCELLED")
PUSHED_OUT_AFTER = timedelta(
    minutes=10
)  # Running this long while its step expects it to wait (a resumed run re-runs its idempotent steps first)
MAX_RESTARTS = 3  # a run that keeps failing is a problem for a person, not a loop
# A deployed run Pending this long was taken by a runner that died before starting it (a kill
# between "submitting" and the process's first heartbeat): no runner looks at it again.
STUCK_PENDING_AFTER = timedelta(minutes=5)
FINISHED_ORDERS = (OrderStatus.COMPLETE, OrderStatus.REJECTED)
PAGE = 200
RESTARTED, STRANDED = "run-restarted", "run-stranded"


@dataclass
class StrandedRun:
    flow_run_id: str
    why: str  # "crashed", "pushed out of its wait (Running for 5 min)", …
    order_id: str | None = None
    item_id: int | None = None
    request_id: str | None = None  # a request for quotation its quotation run carries
    restarted_as: str | None = None  # the new run
    problem: str | None = None  # why it was not restarted (a WIP-review problem case)
    news: bool = True  # False: restarted or reported by an earlier pass

    @property
    def subject(self) -> tuple[str, str]:
        if self.order_id:
            return "order", self.order_id
        if self.request_id:
            return "quote_request", self.request_id
        return "work_item", str(self.item_id)


@record_step(name="restart stranded runs")
def restart_stranded_runs(now: datetime | None = None) -> list[StrandedRun]:
    """Find the runs orders and waiting steps count on that crashed, failed or left their wait;
    restart each, or list it as a problem case."""
    logger = get_run_logger()
    for run_id in reschedule_runs_left_pending(now):
        logger.warning("Scheduled run %s again: its runner was gone before the run started", run_id)
    named = RunsNamed.read()  # one read serves both looks: rescheduling changes no row
    for run_id in reschedule_silent_runs_nothing_names(now, named):
        logger.warning("Scheduled run %s again: its process was gone before it took its work", run_id)
    for run_id in end_runs_waiting_on_cancelled_steps():
        logger.info("Ended run %s: the step it waited on was cancelled (answered elsewhere)", run_id)
    found = find_stranded_runs(now, named)
    for run in found:
        restart_or_report(run)
        if not run.news:
            continue
        if run.restarted_as:
            logger.warning(
                "Restarted stranded run %s (%s; %s) as %s", run.flow_run_id, run.why, _describe(run), run.restarted_as
            )
        else:
            logger.error(
                "Stranded run %s (%s; %s) needs a person: %s", run.flow_run_id, run.why, _describe(run), run.problem
            )
    return found


def _describe(run: StrandedRun) -> str:
    return ", ".join(
        x
        for x in (
            f"order {run.order_id}" if run.order_id else "",
            f"request for quotation {run.request_id}" if run.request_id else "",
            f"work item {run.item_id}" if run.item_id else "",
        )
        if x
    )


def find_stranded_runs(now: datetime | None = None, named: RunsNamed | None = None) -> list[StrandedRun]:
    """The runs an unfinished order, an unanswered request for quotation or an open work item
    names, that are not carrying it."""
    now = _aware(now)
    named = named or RunsNamed.read()
    orders, requests, items = named.orders, named.requests, named.items
    waiting_items = {run_id: (item_id, order_id) for run_id, item_id, key, order_id in items if key}
    any_items = {run_id: (item_id, order_id) for run_id, item_id, _key, order_id in items}
    counted_on = named.run_ids()
    runs = read_runs(counted_on)
    silent = silent_runs([r for r in runs.values() if r.id and str(r.id) not in waiting_items], now)
    stranded = []
    for run_id in sorted(counted_on):
        run = runs.get(run_id)
        item_id, item_order = any_items.get(run_id, (None, None))
        why = _why_stranded(run, run_id in waiting_items, now) or silent.get(run_id)
        if why:
            stranded.append(StrandedRun(run_id, why, orders.get(run_id) or item_order, item_id, requests.get(run_id)))
    return stranded


@dataclass
class RunsNamed:
    """The runs handoff's rows count on: unfinished orders' and open requests' (run id -> its
    id), and active work items' (run id, item id, input key, order id)."""

    orders: dict[str, str]
    requests: dict[str, str]
    items: list

    @classmethod
    def read(cls) -> RunsNamed:
        with session() as s:
            orders = dict(
                s.execute(
                    select(Order.flow_run_id, Order.id).where(
                        Order.status.not_in(FINISHED_ORDERS), Order.flow_run_id.is_not(None)
                    )
                ).all()
            )
            requests = dict(
                s.execute(
                    select(QuoteRequest.flow_run_id, QuoteRequest.id).where(
                        QuoteRequest.status.in_(OPEN_QUOTE_STATES), QuoteRequest.flow_run_id.is_not(None)
                    )
                ).all()
            )
            items = s.execute(
                select(WorkItem.flow_run_id, WorkItem.id, WorkItem.input_key, WorkItem.order_id).where(
                    WorkItem.state.in_(ACTIVE), WorkItem.flow_run_id.is_not(None)
                )
            ).all()
        return cls(orders, requests, list(items))

    def run_ids(self) -> set[str]:
        return set(self.orders) | set(self.requests) | {row[0] for row in self.items}


def _why_stranded(run, expected_to_wait: bool, now: datetime) -> str | None:
    if run is None:
        return "no longer exists in Prefect"
    state = run.state
    if state is None:
        return None
    if state.type.value in ENDED:
        return state.name.lower() if state.name else state.type.value.lower()
    if expected_to_wait and state.type.value == "RUNNING" and state.timestamp is not None:
        running_for = now - state.timestamp
        if running_for > PUSHED_OUT_AFTER:
            return f"pushed out of its wait (Running for {running_for.total_seconds() / 60:.0f} min, no form answered)"
    return None


def reschedule_runs_left_pending(now: datetime | None = None) -> list[str]:
    """Deployed runs left Pending by a runner that died as it submitted them, set Scheduled again
    so a runner starts them. Their order has no run yet (the run never took it), so nothing
    else would notice them, and the outbox sees a live run and starts no other. A run that did
    start after all is harmless twice: every flow is idempotent and takes its order once."""
    now = _aware(now)
    stuck = [
        run
        for run in _deployed_runs("PENDING")
        if run.state is not None
        and run.state.timestamp is not None
        and now - run.state.timestamp >= STUCK_PENDING_AFTER
    ]
    return _schedule_again([str(run.id) for run in stuck], "its runner was gone before it started")


def reschedule_silent_runs_nothing_names(now: datetime | None = None, named: RunsNamed | None = None) -> list[str]:
    """Deployed runs Running with no heartbeat for SILENT_AFTER that no unfinished order, open
    request or active work item names, set Scheduled again so a runner runs them. Their process
    died before the run took its work (killed as it started): as with a run left Pending, the
    order has no run yet, `find_stranded_runs` does not know the run, and the outbox sees a live
    run and starts no other — the order stayed `received` for good (the soak, a kill 5 s after
    the order's event). Running it again is safe: every flow is idempotent."""
    now = _aware(now)
    counted_on = (named or RunsNamed.read()).run_ids()
    unnamed = [run for run in _deployed_runs("RUNNING") if str(run.id) not in counted_on]
    return _schedule_again(sorted(silent_runs(unnamed, now)), "Running with no heartbeat: its process was gone")


def _deployed_runs(state_type: str) -> list:
    """Every deployed flow run in this state (PENDING, RUNNING, …), page by page."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowRunFilter
    from prefect.client.schemas.filters import FlowRunFilterDeploymentId
    from prefect.client.schemas.filters import FlowRunFilterState
    from prefect.client.schemas.filters import FlowRunFilterStateType
    from prefect.client.schemas.objects import StateType

    runs: list = []
    in_state = FlowRunFilter(
        state=FlowRunFilterState(type=FlowRunFilterStateType(any_=[StateType(state_type)])),
        deployment_id=FlowRunFilterDeploymentId(is_null_=False),
    )
    with get_client(sync_client=True) as client:
        while True:
            page = client.read_flow_runs(flow_run_filter=in_state, limit=PAGE, offset=len(runs))
            runs += page
            if len(page) < PAGE:
                return runs


def _schedule_again(run_ids: list[str], why: str) -> list[str]:
    from prefect.client.orchestration import get_client
    from prefect.states import Scheduled

    with get_client(sync_client=True) as client:
        for run_id in run_ids:
            client.set_flow_run_state(UUID(run_id), Scheduled(message=why), force=True)
    return run_ids


def _aware(now: datetime | None) -> datetime:
    now = now or utcnow()
    return now.replace(tzinfo=UTC) if now.tzinfo is None else now


def end_runs_waiting_on_cancelled_steps() -> list[str]:
    """Runs still suspended on a step that was cancelled (the customer answered a follow-up
    call's question through the CRM): nothing will ever answer them, so each is set Completed,
    saying why. A cancelled step is looked at until its run has moved past it, then no more."""
    from prefect.client.orchestration import get_client
    from prefect.states import Completed

    with session() as s:
        cancelled = s.execute(
            select(WorkItem.id, WorkItem.flow_run_id, WorkItem.input_key).where(
                WorkItem.state == WorkItemState.CANCELLED,
                WorkItem.flow_run_id.is_not(None),
                WorkItem.input_key.is_not(None),
            )
        ).all()
    if not cancelled:
        return []
    runs = read_runs({run_id for _item, run_id, _key in cancelled})
    ended, settled = [], []
    with get_client(sync_client=True) as client:
        for item_id, run_id, key in cancelled:
            run = runs.get(run_id)
            state = run.state if run is not None else None
            if state is not None and state.is_paused() and state.state_details.pause_key == key:
                message = f"its step, work item {item_id}, was cancelled: answered elsewhere (see its audit trail)"
                client.set_flow_run_state(run.id, Completed(message=message), force=True)
                ended.append(run_id)
            elif state is not None and not (state.is_final() or state.is_paused()):
                continue  # on its way to the step (or back from it): look again next pass
            settled.append(item_id)
    with session() as s:
        for item_id in settled:
            s.get(WorkItem, item_id).input_key = None  # its run waits on it no more
    return ended


def read_runs(run_ids: set[str]) -> dict:
    """These flow runs, by id (runs Prefect no longer has are missing)."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowRunFilter
    from prefect.client.schemas.filters import FlowRunFilterId

    ids = sorted(run_ids)
    runs = {}
    with get_client(sync_client=True) as client:
        for start in range(0, len(ids), PAGE):
            page = [UUID(i) for i in ids[start : start + PAGE]]
            for run in client.read_flow_runs(flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=page)), limit=PAGE):
                runs[str(run.id)] = run
    return runs


def restart_or_report(stranded: StrandedRun) -> StrandedRun:
    """Restart the run from its deployment with the same parameters, ending the old one first if
    it still claims to run; or record why not. Records an audit event either way."""
    from prefect.client.orchestration import get_client
    from prefect.states import Crashed

    kind, subject_id = stranded.subject
    with session() as s:
        history = s.scalars(
            select(AuditEvent)
            .where(
                AuditEvent.entity == kind,
                AuditEvent.entity_id == subject_id,
                AuditEvent.action.in_([RESTARTED, STRANDED]),
            )
            .order_by(AuditEvent.id)
        ).all()
    # Restarted before: follow to the newest run of the chain; restart that one only if it ended too.
    restarted = {
        (e.details or {}).get("flow_run_id"): (e.details or {}).get("new_flow_run_id")
        for e in history
        if e.action == RESTARTED
    }
    if stranded.flow_run_id in restarted:
        newest = stranded.flow_run_id
        while newest in restarted:
            newest = restarted[newest]
        latest = read_runs({newest}).get(newest)
        if latest is not None and not (latest.state and latest.state.type.value in ENDED):
            stranded.restarted_as, stranded.news = newest, False  # on its way (queued, running or waiting)
            return stranded
        stranded.flow_run_id = newest
    reported = [
        e for e in history if e.action == STRANDED and (e.details or {}).get("flow_run_id") == stranded.flow_run_id
    ]
    if reported:
        stranded.problem, stranded.news = (reported[0].details or {}).get("reason"), False
        return stranded  # reported before; the WIP review lists it
    restarts = len(restarted)
    with get_client(sync_client=True) as client:
        try:
            run = client.read_flow_run(UUID(stranded.flow_run_id))
        except Exception:  # noqa: BLE001 - gone from Prefect
            run = None
        if run is None or run.deployment_id is None:
            stranded.problem = (
                "its run is not from a deployment; start the work again by hand"
                if run is not None
                else "its run no longer exists in Prefect"
            )
        elif restarts >= MAX_RESTARTS:
            stranded.problem = f"restarted {restarts} times already; a person must look at why it stops"
        else:
            if not run.state.is_final():  # pushed out of its wait: it claims to run, with no process
                client.set_flow_run_state(run.id, Crashed(message=f"handoff sla-watch: {stranded.why}"), force=True)
            new = client.create_flow_run_from_deployment(
                run.deployment_id,
                parameters=run.parameters,
                name=run.name.split(" · ")[0],
                tags=[t for t in run.tags if not t.startswith(("assignee:", "waiting-for:"))],
                idempotency_key=f"restart-of-{run.id}",
            )
            stranded.restarted_as = str(new.id)
    with session() as s:
        if stranded.restarted_as:
            audit.record(
                s,
                "system:sla-watch",
                kind,
                subject_id,
                RESTARTED,
                flow_run_id=stranded.flow_run_id,
                new_flow_run_id=stranded.restarted_as,
                reason=stranded.why,
                item_id=stranded.item_id,
            )
        else:
            audit.record(
                s,
                "system:sla-watch",
                kind,
                subject_id,
                STRANDED,
                flow_run_id=stranded.flow_run_id,
                reason=f"{stranded.why}: {stranded.problem}",
                item_id=stranded.item_id,
            )
    return stranded
