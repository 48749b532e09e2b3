"""The pinned stack really works together: the Prefect client can talk to its server."""

from importlib.metadata import version

import pytest
from prefect import flow


def test_pins_are_the_tested_ones():
    # prefect 3.9 needs a certifi the registry lacks; fastapi >= 0.151 breaks the 3.8.8 server.
    assert version("prefect") == "3.8.8"
    assert version("fastapi") == "0.150.0"


@flow(name="stack-probe")
def stack_probe(x: int) -> int:
    return x + 1


def test_client_lists_flow_runs_with_filters(prefect_harness):
    """fastapi 0.151-0.154 made the server refuse the client's filter calls with 422."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowFilter, FlowFilterName, FlowRunFilter, FlowRunFilterState, FlowRunFilterStateType
    from prefect.client.schemas.objects import StateType

    assert stack_probe(41) == 42
    with get_client(sync_client=True) as client:
        runs = client.read_flow_runs(
            flow_filter=FlowFilter(name=FlowFilterName(any_=["stack-probe"])),
            flow_run_filter=FlowRunFilter(state=FlowRunFilterState(type=FlowRunFilterStateType(any_=[StateType.COMPLETED]))),
            limit=10,
        )
    assert len(runs) >= 1
    assert all(r.state.is_completed() for r in runs)
