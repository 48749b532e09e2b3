"""Starting another flow's deployment from a flow: one run per business key, however often and
from however many places it is asked for.

Prefect de-duplicates on the run's idempotency key: the server creates one run per (flow, key)
and answers every later or concurrent request for that key with the same run. A key names one
run for good, so when that run has ended without settling the business (crashed, failed,
cancelled, or finished with the work still open), its successor is keyed after it:

    handoff-meeting:ALFKI                           the first run
    handoff-meeting:ALFKI/after/<id of the first>   started once the first has ended
    ...

`start_once` follows that chain to its first link that is still under way (scheduled, running,
waiting for a person) or not created yet, which it creates. Two callers at once follow the same
chain and create the same link: one run, never two.
"""

from __future__ import annotations

from typing import Any

from prefect.deployments import run_deployment

MAX_SUCCESSORS = 100  # a run that ends unsettled this many times in a row needs a person, not another run


class TooManyRestarts(RuntimeError):
    """Every run under this key ended without settling the work; stop starting new ones."""


def start_once(deployment: str, key: str, parameters: dict[str, Any], *, name: str, tag: str) -> str:
    """The id of the deployment's run for `key` that is under way, or of a new one if every
    earlier run ended. The run is named `name` and tagged `tag` (the business it is for).

    The caller asks only while the work is unsettled (e.g. an account still awaiting its handoff),
    so an ended run, whatever its end, means the work needs a new one.
    """
    link = key
    for _ in range(MAX_SUCCESSORS):
        # as_subflow=False: asking again for an existing run must not leave a dangling
        # "subflow" task run in the calling flow each time.
        run = run_deployment(
            deployment,
            parameters=parameters,
            idempotency_key=link,
            timeout=0,
            flow_run_name=name,
            tags=[tag],
            as_subflow=False,
        )
        if run.state is None or not run.state.is_final():
            return str(run.id)
        link = f"{key}/after/{run.id}"
    raise TooManyRestarts(f"{deployment}: {MAX_SUCCESSORS} runs for {key} ended without settling it")
