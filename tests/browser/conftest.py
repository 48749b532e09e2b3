"""Fixtures for the real-browser tests: Debian's Chromium driven by Playwright, a Prefect server
of their own WITH its UI (the session harness serves the API only), and the flow run a rep
answers, in a subprocess pointed at that server.

Nothing here changes this process's Prefect settings: every subprocess gets its environment
spelled out, and os.environ is only touched for the instant the server is started.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from collections.abc import Callable
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

CHROMIUM = "/usr/bin/chromium"
# As root Chromium needs --no-sandbox; the networking flags stop it calling home, which this
# closed network refuses (and which would only slow the page down).
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",  # containers often give /dev/shm only 64 MB: tabs crash
]
SERVER_START_SECONDS = 180  # a busy shared machine: the server may take minutes to answer
LOG_TAIL_CHARS = 4000

# The flow run the rep answers: the sandbox (the CRM the credit check calls) and order entry,
# in a process of its own so it pauses and resumes exactly as a real run does.
RUN_ORDER_ENTRY = """
import sys

from handoff.core.settings import settings
from sandbox.faults import Faults
from sandbox.server import start_sandbox

order_id = sys.argv[1]
with start_sandbox(faults=Faults()) as handle:
    settings.sandbox_url = handle.url
    from flows.order_entry import order_entry

    state = order_entry(order_id, return_state=True)
    print(f"FINAL {state.type.value} {state.result(raise_on_failure=False)!r}", flush=True)
sys.exit(0 if state.is_completed() else 1)
"""


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "browser: drives the Prefect UI in a real (headless) Chromium")


@pytest.fixture(autouse=True)
def _needs_chromium_and_playwright() -> None:
    """Skip — before anything is started — when the browser or its driver is not installed."""
    if not Path(CHROMIUM).exists():
        pytest.skip(f"{CHROMIUM} is missing: apt-get install -y chromium (.ci/run installs it)")
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        pytest.skip("the playwright package is missing: pip install playwright (.ci/run installs it)")


def tail(path: Path, chars: int = LOG_TAIL_CHARS) -> str:
    try:
        return path.read_text(errors="replace")[-chars:]
    except FileNotFoundError:
        return f"({path} was not written)"


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def environment_without_prefect_and_handoff() -> dict[str, str]:
    """This process's environment minus every PREFECT_* and HANDOFF_* variable, so nothing
    from the session harness, a developer's profile or CI leaks into a subprocess."""
    return {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_", "HANDOFF_"))}


@dataclass
class UIServer:
    url: str  # http://127.0.0.1:<port>; the UI is served at /, the API at /api
    log: Path

    @property
    def api(self) -> str:
        return f"{self.url}/api"

    def log_tail(self) -> str:
        return tail(self.log)


@pytest.fixture(scope="session")
def ui_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[UIServer]:
    """A Prefect server with the UI, shared by the browser tests (each starts its own flow runs
    under its own order ids, so they never see each other's); stopped at the end. One for all:
    each start costs ~25 s of the suite."""
    from handoff.runtime import prefect_server

    root = tmp_path_factory.mktemp("ui-server")
    url = f"http://127.0.0.1:{free_port()}"
    log = root / "prefect-server.log"
    home = root / "prefect-server-home"
    home.mkdir()
    # start() passes os.environ on: clear it of PREFECT_* for the moment of the start only.
    with pytest.MonkeyPatch.context() as env:
        for name in [k for k in os.environ if k.startswith("PREFECT_")]:
            env.delenv(name)
        env.setenv("PREFECT_HOME", str(home))
        env.setenv("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
        env.setenv("PREFECT_SERVER_UI_ENABLED", "true")
        env.setenv("PREFECT_SERVER_UI_V2_ENABLED", "true")  # the UI whose pages the test knows
        try:
            proc = prefect_server.start(url, log_path=str(log), timeout=SERVER_START_SECONDS)
        except RuntimeError as exc:
            pytest.fail(f"{exc}\n--- server log ---\n{tail(log)}")
    if proc is None:
        pytest.fail(f"something else already answers at {url}")
    try:
        yield UIServer(url, log)
    finally:
        prefect_server.stop(proc)


@pytest.fixture
def chromium():
    """Debian's Chromium, headless, through Playwright (no browser download)."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS, timeout=30_000)
        try:
            yield browser
        finally:
            browser.close()


@pytest.fixture
def screenshot_dir(tmp_path: Path) -> Path:
    """$HANDOFF_SCREENSHOT_DIR if set (CI keeps it), else this test's tmp_path."""
    chosen = os.environ.get("HANDOFF_SCREENSHOT_DIR")
    directory = Path(chosen) if chosen else tmp_path / "screenshots"
    directory.mkdir(parents=True, exist_ok=True)
    print(f"screenshots: {directory}")
    return directory


@dataclass
class FlowProcess:
    proc: subprocess.Popen
    log: Path

    def log_tail(self) -> str:
        return tail(self.log)


@pytest.fixture
def order_entry_process(tmp_path: Path, db: str) -> Iterator[Callable[[UIServer, str], FlowProcess]]:
    """Start `order_entry(order_id)` in a subprocess against `server` and the test's handoff
    database (the `db` fixture's file); killed at the end if it is still running."""
    from handoff.core.settings import settings

    started: list[subprocess.Popen] = []

    def start(server: UIServer, order_id: str) -> FlowProcess:
        script = tmp_path / "run_order_entry.py"
        script.write_text(RUN_ORDER_ENTRY)
        log = tmp_path / f"order-entry-{order_id}.log"
        client_home = tmp_path / "prefect-client-home"
        client_home.mkdir(exist_ok=True)
        env = {
            **environment_without_prefect_and_handoff(),
            "PREFECT_API_URL": server.api,
            "PREFECT_HOME": str(client_home),
            "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
            # SQLite answers 500 "database is locked" under concurrent writes: retry those.
            "PREFECT_CLIENT_RETRY_EXTRA_CODES": "500",
            "PREFECT_LOGGING_LEVEL": "INFO",
            "HANDOFF_HOME": str(tmp_path),
            "HANDOFF_DATABASE_URL": db,
            "HANDOFF_NORTHWIND_PATH": str(settings.northwind_path),
            "HANDOFF_PAUSE_POLL_SECONDS": "1",
            "PYTHONUNBUFFERED": "1",
        }
        out = open(log, "wb")
        proc = subprocess.Popen(
            [sys.executable, str(script), order_id],
            env=env,
            cwd=tmp_path,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        out.close()
        started.append(proc)
        return FlowProcess(proc, log)

    yield start
    for proc in started:
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=10)


@dataclass
class WorklistHandle:
    url: str


@pytest.fixture
def worklist_server(ui_server: UIServer, db: str) -> Iterator[WorklistHandle]:
    """The reps' worklist app on a free port, talking to `ui_server`'s Prefect API and the test's
    handoff database; the flow subprocesses share its HANDOFF_HOME, so they verify what it signs."""
    import threading
    import time as _time

    import httpx
    import uvicorn
    from prefect.settings import PREFECT_API_URL
    from prefect.settings import temporary_settings

    from handoff.runtime.worklist import create_worklist_app

    port = free_port()
    app = create_worklist_app(prefect_context=lambda: temporary_settings(updates={PREFECT_API_URL: ui_server.api}))
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True, name="worklist-under-test")
    thread.start()
    url = f"http://127.0.0.1:{port}"
    deadline = _time.monotonic() + 30
    while _time.monotonic() < deadline:
        try:
            if httpx.get(f"{url}/health", timeout=2).status_code == 200:
                break
        except httpx.HTTPError:
            _time.sleep(0.2)
    try:
        yield WorklistHandle(url)
    finally:
        server.should_exit = True
        thread.join(timeout=10)
