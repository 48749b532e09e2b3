"""The pinned stack really works together: the Prefect client can talk to its server."""

from importlib.metadata import version

import pytest
from prefect import flow


def test_pins_are_the_tested_ones():
    # prefect 3.9 needs a certifi the registry lacks; fastapi >= 0.151 breaks the 3.8.8 server;
    # sqlalchemy 2.1 breaks its scheduler (see below).
    assert version("prefect") == "3.8.8"
    assert version("fastapi") == "0.150.0"
    assert version("sqlalchemy").startswith("2.0.")


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


def test_the_server_schedules_a_deployments_runs(prefect_harness):
    """The scheduler service makes the runs of every scheduled deployment (sla-watch each
    minute, wip-review twice a day). With sqlalchemy 2.1 its bulk insert of scheduled runs fails
    ("Can't evaluate bulk DML statement"), so no schedule ever ran under `handoff up`. The
    harness runs no scheduler, so this asks the server to schedule the same way it does."""
    import httpx
    from prefect.client.orchestration import get_client
    from prefect.settings import PREFECT_API_URL

    deployment_id = stack_probe.to_deployment(name="every-minute", interval=60, parameters={"x": 1}).apply()
    response = httpx.post(f"{PREFECT_API_URL.value()}/deployments/{deployment_id}/schedule",
                          json={"min_runs": 3, "max_runs": 3}, timeout=30)
    assert response.status_code < 300, response.text
    with get_client(sync_client=True) as client:
        from prefect.client.schemas.filters import DeploymentFilter, DeploymentFilterId

        runs = client.read_flow_runs(deployment_filter=DeploymentFilter(id=DeploymentFilterId(any_=[deployment_id])))
    assert len(runs) == 3
    assert all(r.state.is_scheduled() and r.parameters == {"x": 1} for r in runs)
