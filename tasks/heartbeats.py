"""Which deployed runs are silent: Running, with no heartbeat, their process gone.

Runs started by handoff's runners and workers send a heartbeat event every
`handoff.runtime.zombies.HEARTBEAT_SECONDS`, and an automation crashes one that stops. It arms on
a first heartbeat, so a run killed before it sent one (it started just before its Prefect server
or its runner died) stays Running for ever: sla-watch asks Prefect's events API instead
(tasks/stranded.py).
"""

from __future__ import annotations

from datetime import datetime
from datetime import timedelta

# A deployed run Running this long with no heartbeat in that time lost its process without the
# heartbeat automation noticing (found by an outside tester: orders left `received` behind a
# Running run for good).
SILENT_AFTER = timedelta(minutes=5)
HEARTBEAT = "prefect.flow-run.heartbeat"
EVENTS_PAGE = 50  # the most Prefect's events API returns at once


def silent_runs(runs: list, now: datetime) -> dict[str, str]:
    """Of these runs, the deployed ones Running for longer than SILENT_AFTER that sent no
    heartbeat in that time (their process is gone): run id -> why. A run started in-process,
    with no runner to send heartbeats, is never judged by them."""
    long_running = {
        str(r.id): now - r.state.timestamp
        for r in runs
        if r.deployment_id is not None
        and r.state is not None
        and r.state.type.value == "RUNNING"
        and r.state.timestamp is not None
        and now - r.state.timestamp > SILENT_AFTER
    }
    if not long_running:
        return {}
    heard = heard_from(list(long_running), now - SILENT_AFTER, now)
    return {
        run_id: f"Running for {running_for.total_seconds() / 60:.0f} min with no heartbeat: its process is gone"
        for run_id, running_for in long_running.items()
        if run_id not in heard
    }


def heard_from(run_ids: list[str], since: datetime, until: datetime) -> set[str]:
    """The runs among `run_ids` that sent a heartbeat between `since` and `until` (Prefect's
    events; a page holds at most EVENTS_PAGE)."""
    from prefect.client.orchestration import get_client
    from prefect.events.filters import EventFilter
    from prefect.events.filters import EventNameFilter
    from prefect.events.filters import EventOccurredFilter
    from prefect.events.filters import EventResourceFilter

    resources = {f"prefect.flow-run.{run_id}": run_id for run_id in run_ids}
    query = EventFilter(
        occurred=EventOccurredFilter(since=since, until=until),
        event=EventNameFilter(name=[HEARTBEAT]),
        resource=EventResourceFilter(id=list(resources)),
    )
    heard: set[str] = set()
    with get_client(sync_client=True) as client:
        page = client.read_events(query, limit=EVENTS_PAGE)
        while True:
            heard |= {resources[e.resource.id] for e in page.events if e.resource.id in resources}
            if not page.next_page or heard == set(run_ids):
                return heard
            page = client.read_events_page(page.next_page)
