"""A web app of this process served by uvicorn from a background thread: the intake endpoint and
the reps' worklist under `handoff up` (the sandbox has its own, sandbox/server.py: it knows
nothing of handoff)."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any
from typing import Self

import uvicorn

STOP_TIMEOUT_SECONDS = 5.0


class AppServer:
    """uvicorn serving `config` from a daemon thread named `name`, at `url`."""

    def __init__(self, config: uvicorn.Config, name: str) -> None:
        self.server = uvicorn.Server(config)
        self.url = f"http://{config.host}:{config.port}"
        self.name = name
        self.thread: threading.Thread | None = None

    def start(self, context_run: Callable[..., Any] | None = None) -> Self:
        """Serve from now on; `context_run` (e.g. `contextvars.copy_context().run`) runs the server
        inside a context, so it sees the caller's settings and Prefect client."""
        run = self.server.run
        target, args = (context_run, (run,)) if context_run is not None else (run, ())
        self.thread = threading.Thread(target=target, args=args, daemon=True, name=self.name)
        self.thread.start()
        return self

    def stop(self) -> None:
        self.server.should_exit = True
        if self.thread is not None:
            self.thread.join(timeout=STOP_TIMEOUT_SECONDS)
