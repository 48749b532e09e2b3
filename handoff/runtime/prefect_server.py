"""The local Prefect server of the embedded stack: reuse one that is running, or start one.

The server keeps its own SQLite database under PREFECT_HOME (default ~/.prefect), so runs,
schedules and waiting steps survive a restart.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlparse

import httpx

DEFAULT_URL = "http://127.0.0.1:4200"
ROOT = Path(__file__).resolve().parents[2]  # the checkout: flows/, deployments/ …


def is_up(url: str) -> bool:
    try:
        return httpx.get(f"{url}/api/health", timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


class LeftBehind:
    """A server an earlier `handoff up` of this home started and never stopped (it was killed):
    reused, and stopped like one started now. The subset of Popen that `stop` uses."""

    def __init__(self, pid: int) -> None:
        self.pid, self.returncode = pid, None

    def poll(self) -> int | None:
        try:
            os.kill(self.pid, 0)
        except ProcessLookupError:
            self.returncode = self.returncode if self.returncode is not None else -1
        return self.returncode

    def terminate(self) -> None:
        self._signal(signal.SIGTERM)

    def kill(self) -> None:
        self._signal(signal.SIGKILL)

    def wait(self, timeout: float) -> int:
        deadline = time.monotonic() + timeout
        while self.poll() is None:
            if time.monotonic() > deadline:
                raise subprocess.TimeoutExpired(str(self.pid), timeout)
            time.sleep(0.1)
        return self.returncode or 0

    def _signal(self, signum: int) -> None:
        try:
            os.kill(self.pid, signum)
        except ProcessLookupError:
            pass


Server = subprocess.Popen | LeftBehind


def left_behind(url: str, pidfile: Path | None) -> LeftBehind | None:
    """The server at `url` if the pid file says this home started it and it is still that
    program (a pid is reused by the system once its process is gone)."""
    try:
        pid_text, _, its_url = pidfile.read_text().partition(" ") if pidfile is not None else ("", "", "")
        cmdline = Path(f"/proc/{int(pid_text)}/cmdline").read_bytes()
    except (OSError, ValueError):
        return None
    return LeftBehind(int(pid_text)) if its_url.strip() == url and b"prefect_server_main" in cmdline else None


def start(
    url: str = DEFAULT_URL, log_path: str | None = None, timeout: float | None = None, pidfile: Path | None = None
) -> Server | None:
    """Start `prefect server start` for `url` unless one answers there: None if it is someone
    else's, a `LeftBehind` if `pidfile` says this home started it. Its SQLite write
    transactions begin IMMEDIATE (see handoff.runtime.prefect_server_main). A first start
    migrates its database: on a busy machine (or PostgreSQL) that takes well over a minute.
    Interrupted or failed while it starts, the server is stopped, not left running alone."""
    if is_up(url):
        return left_behind(url, pidfile)
    parsed = urlparse(url)
    from handoff.core.settings import settings

    env = {
        **os.environ,
        "PREFECT_HOME": os.environ.get("PREFECT_HOME", str(settings.home / "prefect")),
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "PREFECT_UI_API_URL": f"{url}/api",
        "PREFECT_API_URL": f"{url}/api",
    }
    out = open(log_path, "ab") if log_path else subprocess.DEVNULL
    try:
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "handoff.runtime.prefect_server_main",
                "server",
                "start",
                "--host",
                parsed.hostname or "127.0.0.1",
                "--port",
                str(parsed.port or 4200),
            ],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    finally:  # the server has its own copy of the file; ours would leak
        if out is not subprocess.DEVNULL:
            out.close()
    if pidfile is not None:
        pidfile.write_text(f"{proc.pid} {url}")
    timeout = timeout or settings.prefect_start_seconds  # a fresh database migrates first: slow on a busy machine
    deadline = time.monotonic() + timeout
    try:
        while not is_up(url):
            if proc.poll() is not None:
                raise RuntimeError(f"the Prefect server exited with code {proc.returncode} (log: {log_path})")
            if time.monotonic() > deadline:
                raise RuntimeError(f"the Prefect server did not answer at {url} within {timeout:.0f} s")
            time.sleep(0.5)
    except BaseException:  # Ctrl-C or SIGTERM too: it runs in its own session, nobody else would stop it
        stop(proc)
        raise
    return proc


def stop(proc: Server | None) -> None:
    if proc is None or proc.poll() is not None:
        return
    proc.terminate()
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        proc.kill()


def flush_and_stop(proc: Server | None) -> None:
    """Send the logs and events still queued in this process, then stop the server we started."""
    from handoff.runtime.prefect_patches import drain_client_services

    drain_client_services(timeout=10)
    stop(proc)


@contextmanager
def using(url: str) -> Iterator[None]:
    """Point this process's Prefect client at `url`."""
    from prefect.settings import PREFECT_API_AUTH_STRING
    from prefect.settings import PREFECT_API_URL
    from prefect.settings import PREFECT_CLIENT_MAX_RETRIES
    from prefect.settings import PREFECT_CLIENT_RETRY_EXTRA_CODES
    from prefect.settings import temporary_settings

    from handoff.runtime.console_lock import stored_auth_string

    # A SQLite server under load answers 500 ("database is locked") or 503; retry those longer.
    updates = {PREFECT_API_URL: f"{url}/api", PREFECT_CLIENT_RETRY_EXTRA_CODES: "500", PREFECT_CLIENT_MAX_RETRIES: 10}
    auth = stored_auth_string()  # the console is locked (`handoff up --lock-ui`): the CLI signs in too
    if auth:
        updates[PREFECT_API_AUTH_STRING] = auth
    with temporary_settings(updates=updates):
        yield
