"""The floor Prefect itself sets: an order's pipeline with the same number of task runs and
suspends as handoff's, and none of handoff's logic (no database, no other systems, no routing).

`bench/bench_throughput.py` deploys it to the same work pool as handoff's deployments, starts it
from an event as handoff's pipeline starts, and resumes each suspend after the same think time.
Like handoff's pipeline, a resumed run starts again from the top and skips what is done: here a
segment whose suspend already has its answer.
"""

from __future__ import annotations

from uuid import UUID

from prefect import flow
from prefect import suspend_flow_run
from prefect import task
from prefect.input import RunInput
from prefect.runtime import flow_run

BARE_EVENT = "bare.received"


class Answer(RunInput):
    ok: bool = True


@task(task_run_name="bare-step-{segment}-{i}")
def bare_step(order_id: str, segment: int, i: int) -> int:
    return i


def answered(key: str) -> bool:
    """Has the suspend with this pause key had its answer already (a resumed run)?"""
    from prefect.input import read_flow_run_input

    return read_flow_run_input(key=f"suspended-{key}-response", flow_run_id=UUID(flow_run.id)) is not None


def segment_sizes(tasks: int, segments: int) -> list[int]:
    base, extra = divmod(tasks, segments)
    return [base + (1 if i < extra else 0) for i in range(segments)]


@flow(name="bare-order", flow_run_name="bare-{order_id}")
def bare_order(order_id: str, tasks: int = 20, suspends: int = 2) -> str:
    for segment, size in enumerate(segment_sizes(tasks, suspends + 1)):
        key = f"bare-{segment}"
        if segment < suspends and answered(key):
            continue
        for i in range(size):
            bare_step(order_id, segment, i)
        if segment < suspends:
            suspend_flow_run(wait_for_input=Answer, key=key, timeout=3600)
    return "complete"
