"""The reps' worklist web app (handoff.runtime.worklist.app), and its server for `handoff up`."""

from __future__ import annotations

import threading

import uvicorn

from handoff.runtime.worklist.app import COOKIE, create_worklist_app


class WorklistServer:
    """The worklist app served by uvicorn in a background thread (like the intake endpoint)."""

    def __init__(self, host: str, port: int) -> None:
        self.server = uvicorn.Server(uvicorn.Config(create_worklist_app(), host=host, port=port, log_level="warning"))
        self.url = f"http://{host}:{port}"
        self.thread = threading.Thread(target=self.server.run, daemon=True, name="worklist-http")

    def start(self, context_run=None) -> WorklistServer:
        if context_run is not None:
            self.thread = threading.Thread(
                target=context_run, args=(self.server.run,), daemon=True, name="worklist-http"
            )
        self.thread.start()
        return self

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=5)


__all__ = ["COOKIE", "WorklistServer", "create_worklist_app"]
