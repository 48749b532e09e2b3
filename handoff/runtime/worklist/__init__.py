"""The reps' worklist web app (handoff.runtime.worklist.app), and its server for `handoff up`."""

from __future__ import annotations

import uvicorn

from handoff.runtime.app_server import AppServer
from handoff.runtime.worklist.app import COOKIE
from handoff.runtime.worklist.app import create_worklist_app


class WorklistServer(AppServer):
    """The worklist app served by uvicorn in a background thread (like the intake endpoint)."""

    def __init__(self, host: str, port: int) -> None:
        config = uvicorn.Config(create_worklist_app(), host=host, port=port, log_level="warning")
        super().__init__(config, name="worklist-http")


__all__ = ["COOKIE", "WorklistServer", "create_worklist_app"]
