"""Every flow is a deployment with the right trigger or schedule; the order.received trigger
hands the order id to the pipeline."""

import uuid

import pytest
from prefect.events import Event
from prefect.server.utilities.user_templates import render_user_template_sync
from typer.testing import CliRunner

from deployments import DEFINITIONS
from deployments import ORDER_RECEIVED_TRIGGER
from deployments import runner_deployments
from handoff.cli.main import app


def by_name(name):
    return next(d for d in runner_deployments() if d.name == name)


def test_every_flow_loads_and_names_are_unique():
    deployments = runner_deployments()
    assert len({d.name for d in deployments}) == len(DEFINITIONS)
    assert {d.name for d in deployments} >= {
        "order-pipeline",
        "sla-watch",
        "handoff-meeting-check",
        "wip-review",
        "handoff-meeting",
        "order-entry",
        "quotation",
        "provisioning",
        "activation",
        "billing",
    }


def test_schedules():
    assert by_name("sla-watch").schedules[0].schedule.interval.total_seconds() == 60
    assert by_name("wip-review").schedules[0].schedule.cron == "0 9,15 * * 1-5"  # twice a day
    assert by_name("handoff-meeting-check").schedules[0].schedule.cron == "0 8 * * 1-5"  # daily
    assert by_name("sla-watch").concurrency_limit == 1


def test_an_order_received_event_starts_the_pipeline_with_the_order_id():
    [trigger] = by_name("order-pipeline").triggers
    assert trigger.expect == {"order.received"}
    event = Event(
        event="order.received",
        id=uuid.uuid4(),
        resource={"prefect.resource.id": "handoff.order.10248", "handoff.order-id": "10248"},
    )
    rendered = render_user_template_sync(ORDER_RECEIVED_TRIGGER.parameters["order_id"], {"event": event})
    assert rendered == "10248"


@pytest.mark.parametrize("rate", ["fast", "0/min", "-2/min"])
def test_up_refuses_a_bad_feed_rate(rate):
    result = CliRunner().invoke(app, ["up", "--feed", "northwind", "--rate", rate])
    assert result.exit_code == 2
    assert "--rate" in result.output


@pytest.mark.slow
def test_the_same_definitions_deploy_to_a_work_pool(prefect_harness):
    """`handoff deploy --pool`: every definition lands in the pool with its trigger, schedule
    and tags, and points its workers at this checkout's flow files. (By hand, a `prefect worker`
    on a process pool ran an order from its event through the approval wait and its resume.)"""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.actions import WorkPoolCreate
    from prefect.client.schemas.filters import WorkPoolFilter
    from prefect.client.schemas.filters import WorkPoolFilterName

    with get_client(sync_client=True) as client:
        client.create_work_pool(WorkPoolCreate(name="back-office", type="process"), overwrite=True)
    result = CliRunner().invoke(app, ["deploy", "--pool", "back-office"])
    assert result.exit_code == 0, result.output
    with get_client(sync_client=True) as client:
        deployed = {
            d.name: d
            for d in client.read_deployments(
                work_pool_filter=WorkPoolFilter(name=WorkPoolFilterName(any_=["back-office"]))
            )
        }
        try:
            check_deployed(client, deployed)
        finally:  # no trigger of these is left to start runs for other tests' events
            for deployment in deployed.values():
                client.delete_deployment(deployment.id)
            for automation in client.read_automations_by_name("order.received starts the order pipeline"):
                client.delete_automation(automation.id)


def check_deployed(client, deployed) -> None:
    assert set(deployed) == {d.name for d in DEFINITIONS}
    pipeline = deployed["order-pipeline"]
    assert pipeline.entrypoint == "flows/order_pipeline.py:order_pipeline"
    assert pipeline.tags == ["work-type:order"]
    automations = client.read_automations_by_name("order.received starts the order pipeline")
    assert any(a.actions[0].deployment_id == pipeline.id for a in automations)
    assert deployed["sla-watch"].schedules[0].schedule.interval.total_seconds() == 60


def test_a_quote_requested_event_starts_the_quotation_with_the_request_id():
    from deployments import QUOTE_REQUESTED_TRIGGER

    [trigger] = by_name("quotation").triggers
    assert trigger.expect == {"quote.requested"}
    assert trigger.match.model_dump() == {"prefect.resource.id": "handoff.quote-request.*"}
    event = Event(
        event="quote.requested",
        id=uuid.uuid4(),
        resource={"prefect.resource.id": "handoff.quote-request.R-1", "handoff.request-id": "R-1"},
    )
    assert render_user_template_sync(QUOTE_REQUESTED_TRIGGER.parameters["request_id"], {"event": event}) == "R-1"
