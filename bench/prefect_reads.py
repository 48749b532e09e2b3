"""What a stack's Prefect server recorded: its runs by order, a schedule's outcomes, the intake's
events. Call these inside `with stack.prefect():` (bench/stack.py), which points Prefect's client
at that stack's server."""

from __future__ import annotations

from typing import Any


def pipeline_runs(deployment: str = "order-pipeline/order-pipeline") -> dict[str, list[Any]]:
    """Flow runs of the deployment by the order id they were started for, oldest first.
    (A run is named `order-<id>` only once it starts, so go by its parameters.)"""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowRunFilter
    from prefect.client.schemas.filters import FlowRunFilterDeploymentId
    from prefect.client.schemas.sorting import FlowRunSort

    runs: list[Any] = []
    with get_client(sync_client=True) as client:
        dep = client.read_deployment_by_name(deployment)
        flt = FlowRunFilter(deployment_id=FlowRunFilterDeploymentId(any_=[dep.id]))
        while True:
            page = client.read_flow_runs(flow_run_filter=flt, sort=FlowRunSort.ID_DESC, limit=200, offset=len(runs))
            runs += page
            if len(page) < 200:
                break
    by_order: dict[str, list[Any]] = {}
    for run in sorted(runs, key=lambda r: r.created):
        by_order.setdefault(str(run.parameters.get("order_id")), []).append(run)
    return by_order


def scheduled_run_states(deployment: str = "sla-watch/sla-watch") -> dict[str, int]:
    """How the runs of a scheduled deployment ended, by state name (a schedule that never
    ran, or whose runs fail, shows here)."""
    from collections import Counter

    runs = [run for group in pipeline_runs(deployment).values() for run in group]
    return dict(Counter(run.state_name for run in runs if run.start_time))


def order_events(name: str = "order.received") -> dict[str, Any]:
    """The (first) `order.received` event per order id, as Prefect's events API has it."""
    from prefect.client.orchestration import get_client
    from prefect.events.filters import EventFilter
    from prefect.events.filters import EventNameFilter
    from prefect.events.filters import EventOrder

    events: dict[str, Any] = {}
    with get_client(sync_client=True) as client:
        page = client.read_events(EventFilter(event=EventNameFilter(name=[name]), order=EventOrder.ASC), limit=50)
        while True:
            for ev in page.events:
                events.setdefault(ev.resource.get("handoff.order-id"), ev)
            if not page.next_page:
                break
            page = client.read_events_page(page.next_page)
    return events
