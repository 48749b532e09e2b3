"""The reps' worklist web app (handoff.runtime.worklist.app), and its server for `handoff up`."""

from __future__ import annotations

from handoff.runtime.app_server import AppServer
from handoff.runtime.app_server import guarded_config
from handoff.runtime.worklist.app import COOKIE
from handoff.runtime.worklist.app import create_worklist_app


class WorklistServer(AppServer):
    """The worklist app served by uvicorn in a background thread (like the intake endpoint)."""

    def __init__(self, host: str, port: int) -> None:
        super().__init__(guarded_config(create_worklist_app(), host, port), name="worklist-http")


__all__ = ["COOKIE", "WorklistServer", "create_worklist_app"]
