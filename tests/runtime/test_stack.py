"""The pinned stack really works together: the Prefect client can talk to its server, the
server's scheduler writes through SQLAlchemy, and handoff's own database runs on the same
SQLAlchemy (every database test)."""

import re
import tomllib
from importlib.metadata import version
from pathlib import Path

from prefect import flow

PYPROJECT = Path(__file__).resolve().parents[2] / "pyproject.toml"


def pinned() -> dict[str, str]:
    deps = tomllib.loads(PYPROJECT.read_text())["project"]["dependencies"]
    return {m[1].lower(): m[2] for d in deps if (m := re.match(r"^([A-Za-z0-9_.\-]+)(?:\[[^]]*\])?==([^;\s]+)", d))}


def test_installed_versions_are_the_pinned_ones():
    pins = pinned()
    assert pins["prefect"] == "3.9.1" and pins["sqlalchemy"].startswith("2.1.")
    # fastapi stays where Prefect resolves it: newer ones refuse the server's own filter calls
    assert pins["fastapi"] == "0.150.0"
    for name, pin in pins.items():
        assert version(name) == pin, f"{name}: installed {version(name)}, pinned {pin}"


@flow(name="stack-probe")
def stack_probe(x: int) -> int:
    return x + 1


def test_client_lists_flow_runs_with_filters(prefect_harness):
    """Prefect 3.9.1's client and server agree on filters (fastapi 0.151-0.154 made the server
    refuse them with 422)."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowFilter
    from prefect.client.schemas.filters import FlowFilterName
    from prefect.client.schemas.filters import FlowRunFilter
    from prefect.client.schemas.filters import FlowRunFilterState
    from prefect.client.schemas.filters import FlowRunFilterStateType
    from prefect.client.schemas.objects import StateType

    assert stack_probe(41) == 42
    with get_client(sync_client=True) as client:
        runs = client.read_flow_runs(
            flow_filter=FlowFilter(name=FlowFilterName(any_=["stack-probe"])),
            flow_run_filter=FlowRunFilter(
                state=FlowRunFilterState(type=FlowRunFilterStateType(any_=[StateType.COMPLETED]))
            ),
            limit=10,
        )
    assert len(runs) >= 1
    assert all(r.state.is_completed() for r in runs)


def test_the_server_schedules_a_deployments_runs(prefect_harness):
    """The scheduler service makes the runs of every scheduled deployment (sla-watch each
    minute, wip-review twice a day). With Prefect 3.8.8 on SQLAlchemy 2.1 its bulk insert of
    scheduled runs failed ("Can't evaluate bulk DML statement"); 3.9.1 on 2.1 must make them. The
    harness runs no scheduler, so this asks the server to schedule the same way it does."""
    from prefect.client.orchestration import get_client

    deployment_id = stack_probe.to_deployment(name="every-minute", interval=60, parameters={"x": 1}).apply()
    with get_client(sync_client=True) as client:
        # Through Prefect's client, which retries the 503 its server answers while its SQLite
        # database is busy with other tests' writes (a plain httpx call failed once on it).
        response = client.request(
            "POST", "/deployments/{id}/schedule", path_params={"id": deployment_id}, json={"min_runs": 3, "max_runs": 3}
        )
    assert response.status_code < 300, response.text
    with get_client(sync_client=True) as client:
        from prefect.client.schemas.filters import DeploymentFilter
        from prefect.client.schemas.filters import DeploymentFilterId

        runs = client.read_flow_runs(deployment_filter=DeploymentFilter(id=DeploymentFilterId(any_=[deployment_id])))
    assert len(runs) == 3
    assert all(r.state.is_scheduled() and r.parameters == {"x": 1} for r in runs)
