"""Run the sandbox: in a background thread (tests, demos) or as its own process.

    with start_sandbox(faults=Faults(error_share=0.2)) as sandbox:
        sandbox.url                  # "http://127.0.0.1:54321" (port 0 = any free port)
        sandbox.urls["billing"]      # "http://127.0.0.1:54321/billing"
        sandbox.ledger("billing")    # side effects so far
        sandbox.set_faults(down=["billing"])

    python -m sandbox [--host 127.0.0.1] [--port 8765]

Environment: HANDOFF_SANDBOX_PORT (default 8765), HANDOFF_NORTHWIND_PATH,
HANDOFF_SANDBOX_STATE (JSON-lines ledger file; unset = memory only), HANDOFF_SANDBOX_* faults
(see `sandbox.faults`).
"""

from __future__ import annotations

import argparse
import os
import socket
import threading
import time
from dataclasses import dataclass
from dataclasses import field
from types import TracebackType
from typing import Any

import uvicorn

from sandbox.app import create_app
from sandbox.core import Sandbox
from sandbox.faults import SYSTEMS
from sandbox.faults import Faults

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8765
PORT_ENV = "HANDOFF_SANDBOX_PORT"
STARTUP_TIMEOUT_SECONDS = 10.0
SHUTDOWN_TIMEOUT_SECONDS = 5.0


@dataclass
class SandboxHandle:
    """A sandbox serving in a background thread of this process."""

    sandbox: Sandbox
    url: str
    _server: uvicorn.Server = field(repr=False)
    _thread: threading.Thread = field(repr=False)

    @property
    def urls(self) -> dict[str, str]:
        """Base URL of each system, e.g. {"crm": "http://127.0.0.1:54321/crm", ...}."""
        return {system: f"{self.url}/{system}" for system in SYSTEMS}

    def ledger(self, system: str | None = None, operation: str | None = None) -> list[dict[str, Any]]:
        return self.sandbox.ledger(system, operation)

    def requests(self, system: str | None = None) -> list[dict[str, Any]]:
        return self.sandbox.requests(system)

    def set_faults(self, faults: Faults | None = None, **changes: Any) -> Faults:
        return self.sandbox.set_faults(faults, **changes)

    def stop(self) -> None:
        self._server.should_exit = True
        self._thread.join(SHUTDOWN_TIMEOUT_SECONDS)

    def __enter__(self) -> SandboxHandle:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()


def start_sandbox(
    port: int = 0,
    *,
    host: str = DEFAULT_HOST,
    faults: Faults | None = None,
    sandbox: Sandbox | None = None,
    **options: Any,
) -> SandboxHandle:
    """Serve the sandbox from a background thread; returns once it accepts connections.

    `options` go to `Sandbox` (northwind_path, state_path, manual_categories,
    verify_failure_share). Faults default to the HANDOFF_SANDBOX_* environment.
    """
    sb = sandbox or Sandbox(faults=faults, **options)
    # IPPROTO_TCP explicitly: asyncio only sets TCP_NODELAY on sockets that say so, and
    # without it every answer waits ~40 ms for a delayed ACK.
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    config = uvicorn.Config(
        create_app(sb),
        log_config=None,
        log_level="warning",
        access_log=False,
        lifespan="off",
        timeout_graceful_shutdown=1,
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, name="handoff-sandbox", daemon=True)
    thread.start()
    deadline = time.monotonic() + STARTUP_TIMEOUT_SECONDS
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            server.should_exit = True
            sock.close()
            raise RuntimeError(f"sandbox did not start on {host}:{port}")
        time.sleep(0.01)
    bound_host, bound_port = sock.getsockname()[:2]
    return SandboxHandle(sandbox=sb, url=f"http://{bound_host}:{bound_port}", _server=server, _thread=thread)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m sandbox", description=__doc__.split("\n\n")[0])
    parser.add_argument("--host", default=DEFAULT_HOST)
    parser.add_argument("--port", type=int, default=int(os.environ.get(PORT_ENV, DEFAULT_PORT)))
    args = parser.parse_args(argv)
    sb = Sandbox()
    held = "memory only" if sb.state_path is None else f"ledger file {sb.state_path}"
    print(f"handoff sandbox on http://{args.host}:{args.port} ({held}); faults: {sb.faults.model_dump(mode='json')}")
    uvicorn.run(create_app(sb), host=args.host, port=args.port, log_level="info")
