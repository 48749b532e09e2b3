"""`@record_step`: the decorator for a step that reads or writes a record.

A step that touches handoff's database, a flow run in Prefect or another system works on the
record, which is the truth: its answer must come from the record every time, never from a cache
of an earlier call with the same inputs (a re-run after a resume must see the rows the first
run wrote; the inputs may be sessions or views that do not hash). So every such step is a
Prefect task with `cache_policy=NO_CACHE`, written once here:

    @record_step(task_run_name="load-order-{order_id}")
    def load_order(order_id: str) -> OrderView: ...

    @record_step(name="crm.check_credit", task_run_name="credit-check-{order_id}", **RETRY_POLICY)
    def check_credit(...): ...

Every other option of `prefect.task` passes through; a cache policy cannot be given.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from typing import ParamSpec
from typing import TypeVar
from typing import overload

from prefect import Task
from prefect import task
from prefect.cache_policies import NO_CACHE

P = ParamSpec("P")
R = TypeVar("R")


@overload
def record_step(fn: Callable[P, R], /) -> Task[P, R]: ...


@overload
def record_step(**options: Any) -> Callable[[Callable[P, R]], Task[P, R]]: ...


def record_step(fn: Callable[P, R] | None = None, /, **options: Any) -> Any:
    """`prefect.task` that never caches: as `@record_step` or `@record_step(task_run_name=...)`."""
    if "cache_policy" in options:
        raise TypeError("a record step reads the record every time: it takes no cache_policy")
    if fn is None:
        return lambda f: task(f, cache_policy=NO_CACHE, **options)
    return task(fn, cache_policy=NO_CACHE, **options)
