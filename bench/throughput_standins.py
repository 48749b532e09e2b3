"""Stand-in reps for the throughput bench: each answers a waiting human step a fixed think time
after it starts waiting, as its assignee (handoff's own complete_step), or resumes a suspended
run of the bare pipeline (Prefect's resume), polling in a background thread that carries the
bench's context (its Prefect client settings) with it.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from datetime import UTC
from datetime import datetime
from typing import Any


class StandIns:
    """Answer each waiting step `think` seconds after it is first seen waiting, as its assignee."""

    def __init__(self, think: float) -> None:
        self.think = think
        self.seen: dict[tuple[int, str], float] = {}
        self.answered: dict[tuple[int, str], tuple[str, datetime]] = {}
        self.failures: Counter = Counter()
        self.stop = threading.Event()

    def run(self) -> None:
        from handoff.runtime.standins import standin_answer
        from handoff.runtime.steps import StepNotReady
        from handoff.runtime.steps import complete_step
        from handoff.runtime.steps import waiting_steps

        while not self.stop.is_set():
            try:
                steps = waiting_steps()
            except Exception as exc:  # noqa: BLE001 - a busy database now and then; try again
                self.failures[f"waiting_steps: {type(exc).__name__}"] += 1
                steps = []
            now = time.monotonic()
            for step in steps:
                key = (step.item_id, step.input_key)
                if key in self.answered or step.assignee is None:
                    continue
                if now - self.seen.setdefault(key, now) < self.think:
                    continue
                try:
                    complete_step(step.item_id, standin_answer(step.item_id), wait_seconds=1)
                    self.answered[key] = (step.order_id or "", datetime.now(UTC))
                except StepNotReady:
                    continue
                except Exception as exc:  # noqa: BLE001 - counted as an error, tried again
                    self.failures[f"{type(exc).__name__}: {str(exc)[:80]}"] += 1
            self.stop.wait(0.2)


class BareStandIns:
    """Resume each suspended bare run `think` seconds after it suspended."""

    def __init__(self, think: float, deployment_id: Any) -> None:
        self.think, self.deployment_id = think, deployment_id
        self.seen: dict[tuple[str, str], float] = {}
        self.answered: dict[tuple[str, str], tuple[str, datetime]] = {}
        self.failures: Counter = Counter()
        self.stop = threading.Event()

    def run(self) -> None:
        from prefect.client.orchestration import get_client
        from prefect.client.schemas.filters import FlowRunFilter
        from prefect.client.schemas.filters import FlowRunFilterDeploymentId
        from prefect.client.schemas.filters import FlowRunFilterState
        from prefect.client.schemas.filters import FlowRunFilterStateType
        from prefect.client.schemas.objects import StateType
        from prefect.flow_runs import resume_flow_run

        flt = FlowRunFilter(
            deployment_id=FlowRunFilterDeploymentId(any_=[self.deployment_id]),
            state=FlowRunFilterState(type=FlowRunFilterStateType(any_=[StateType.PAUSED])),
        )
        with get_client(sync_client=True) as client:
            while not self.stop.is_set():
                now = time.monotonic()
                for run in client.read_flow_runs(flow_run_filter=flt, limit=200):
                    key = (str(run.id), str(run.state.id))
                    if key in self.answered or now - self.seen.setdefault(key, now) < self.think:
                        continue
                    try:
                        resume_flow_run(run.id, run_input={"ok": True})
                        self.answered[key] = (str(run.parameters.get("order_id")), datetime.now(UTC))
                    except Exception as exc:  # noqa: BLE001 - its schema is not saved yet, or a busy server
                        self.failures[type(exc).__name__] += 1
                self.stop.wait(0.2)


def background(target: Any) -> threading.Thread:
    import contextvars

    thread = threading.Thread(target=contextvars.copy_context().run, args=(target,), daemon=True)
    thread.start()
    return thread
