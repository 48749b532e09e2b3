"""The daily handoff-meeting check: every newly won account gets its meetings run.

Steps:
1. Expire quotes past their validity.
2. Find the accounts whose handoff meetings are not signed off yet.
3. Start a handoff-meeting run for each that has none under way (from its deployment, so it
   suspends while it waits for the sign-offs and holds no process).
"""

from __future__ import annotations

from prefect import flow, get_run_logger, task
from prefect.cache_policies import NO_CACHE

from tasks.meetings import accounts_awaiting_handoff
from tasks.quotes import expire_quotes

MEETING_DEPLOYMENT = "handoff-meeting/handoff-meeting"


@task(cache_policy=NO_CACHE)
def find_accounts_awaiting_handoff() -> list[str]:
    return accounts_awaiting_handoff()


@task(task_run_name="start-handoff-meeting-{customer_id}", cache_policy=NO_CACHE)
def start_handoff_meeting(customer_id: str) -> str:
    """Start the customer's meeting run unless one is already scheduled, running or waiting."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import (
        DeploymentFilter, DeploymentFilterName, FlowRunFilter, FlowRunFilterName,
        FlowRunFilterState, FlowRunFilterStateType,
    )
    from prefect.client.schemas.objects import StateType
    from prefect.deployments import run_deployment

    with get_client(sync_client=True) as client:
        live = client.read_flow_runs(
            deployment_filter=DeploymentFilter(name=DeploymentFilterName(any_=["handoff-meeting"])),
            flow_run_filter=FlowRunFilter(
                name=FlowRunFilterName(like_=f"handoff-{customer_id}"),
                state=FlowRunFilterState(type=FlowRunFilterStateType(any_=[
                    StateType.SCHEDULED, StateType.PENDING, StateType.RUNNING, StateType.PAUSED])),
            ),
            limit=1,
        )
    if live:
        return str(live[0].id)
    run = run_deployment(MEETING_DEPLOYMENT, parameters={"customer_id": customer_id}, timeout=0,
                         flow_run_name=f"handoff-{customer_id}", tags=[f"customer:{customer_id}"])
    return str(run.id)


@flow(name="handoff-meeting-check", flow_run_name="handoff-meeting-check")
def handoff_meeting_check() -> dict[str, int]:
    # 1. Expire old quotes
    expired = expire_quotes()

    # 2. Accounts awaiting their handoff
    customers = find_accounts_awaiting_handoff()

    # 3. Start (or keep) each account's meeting run
    for customer_id in customers:
        start_handoff_meeting(customer_id)
    get_run_logger().info("handoff-meeting-check: %s accounts awaiting handoff, %s quotes expired",
                          len(customers), expired)
    return {"accounts": len(customers), "quotes_expired": expired}
