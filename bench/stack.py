"""Start and stop the running stack (`handoff up`) for a benchmark, and look inside it.

    from stack import Stack
    with Stack() as stack:                 # fresh temp HANDOFF_HOME, ports 4310 / 8775 / 8085
        stack.load_catalogue()             # Northwind's customers and products in handoff's DB
        stack.submit([order, ...])         # POST /orders with the bearer token
        stack.processes()                  # the OS processes of the stack's process tree
        stack.ledger()                     # GET <sandbox>/ledger
        with stack.prefect():              # this process's Prefect client → the stack's server
            ...

`handoff up` runs as a subprocess in its own process group with its own HANDOFF_HOME (a temp
directory; the Prefect server's database is under it too) and non-default ports, so it does not
collide with another stack on the machine. By default it runs from a snapshot of the working
tree copied under that home (`snapshot=False`: from the checkout itself), so edits other
engineers make while a bench runs cannot break flow runs half-way; the snapshot's commit and
number of changed files are in `stack.code_version`. `Stack()` also points *this* process at that home
(HANDOFF_HOME, HANDOFF_DATABASE_URL and `handoff.core.settings.settings`), so handoff's own functions
(`waiting_steps()`, `complete_step()` ...) read and write the stack's database.

Stopping sends SIGINT to the process group (what Ctrl-C does), then SIGKILL to every process of
the stack still alive after a timeout: the tree under `handoff up` plus any process whose
environment names this stack's HANDOFF_HOME (the Prefect server runs in its own session; a flow
run whose parent died is re-parented to init). Stopping happens whatever way the bench ends
(`with`, try/finally, atexit).

Beside it: stack_harness.py (the options and main every stack bench shares, and its large order),
stack_processes.py (the stack's OS processes and the machine, from /proc) and stack_code.py (the
snapshot of the working tree the stack runs, and its commit).
"""

from __future__ import annotations

import atexit
import contextlib
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
from stack_code import PYTHON
from stack_code import ROOT
from stack_code import code_version
from stack_code import snapshot_tree
from stack_processes import Proc
from stack_processes import cmdline
from stack_processes import process_tree
from stack_processes import processes_outside
from stack_processes import reaped_cpu_seconds

READY_LINE = "serving the deployments"


def log_errors(text: str, limit: int = 12) -> list[tuple[int, str]]:
    """Distinct error lines in a log (exceptions, ERROR records), most frequent first."""
    import re
    from collections import Counter

    lines = []
    for line in text.splitlines():
        if " | ERROR " in line or re.match(r"^[A-Za-z_.]+(Error|Exception)\b", line.strip()):
            line = re.sub(r"^\d\d:\d\d:\d\d\.\d+ \| ", "", line.strip())
            lines.append(re.sub(r"\[\s*\d+ms\]", "[…ms]", line)[:300])
    return [(n, line) for line, n in Counter(lines).most_common(limit)]


def _port_taken(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.settimeout(0.5)
        return s.connect_ex((host, port)) == 0


class Stack:
    """`handoff up` as a subprocess with a fresh home and its own ports (see the module doc)."""

    _live: list[Stack] = []

    def __init__(
        self,
        ui_port: int = 4310,
        sandbox_port: int = 8775,
        intake_port: int = 8085,
        home: Path | None = None,
        keep_home: bool = False,
        extra_env: dict[str, str] | None = None,
        snapshot: bool = True,
        say: Callable[[str], None] | None = None,
        up_args: list[str] | None = None,
        code: Path | None = None,
    ) -> None:
        self.ui_url = f"http://127.0.0.1:{ui_port}"
        self.sandbox_url = f"http://127.0.0.1:{sandbox_port}"
        self.intake_url = f"http://127.0.0.1:{intake_port}"
        self.ports = (ui_port, sandbox_port, intake_port)
        self.home = Path(home) if home else Path(tempfile.mkdtemp(prefix="handoff-bench-"))
        self.keep_home = keep_home or home is not None
        self.token = secrets.token_urlsafe(24)
        self.extra_env = extra_env or {}
        self.up_args = list(up_args or [])  # e.g. ["--postgres", "--workers", "2"]
        self.stack_info: dict[str, Any] = {}  # HANDOFF_HOME/stack.json, written by `handoff up --postgres/--workers`
        self.say = say or (lambda text: print(f"[stack] {text}", file=sys.stderr, flush=True))
        self.proc: subprocess.Popen | None = None
        self.log_path = self.home / "handoff-up.log"
        self._log = None
        self.started_at: float | None = None
        self.code_version = code_version()
        self.code = code or (self.snapshot_code() if snapshot else ROOT)  # `code`: a snapshot made once for many stacks
        self.point_this_process_here()

    def snapshot_code(self) -> Path:
        """A snapshot of the working tree under the stack's home (see `snapshot_tree`)."""
        return snapshot_tree(self.home)

    # -- environment -------------------------------------------------------------------------

    @property
    def database_url(self) -> str:
        """handoff's database: the stack's PostgreSQL one once `handoff up --postgres` said where it is."""
        return self.stack_info.get("handoff_database_url") or f"sqlite:///{self.home / 'handoff.db'}"

    def handoff_env(self) -> dict[str, str]:
        """Where this stack's handoff keeps its data and finds its systems."""
        return {
            "HANDOFF_HOME": str(self.home),
            "HANDOFF_DATABASE_URL": self.database_url,
            "HANDOFF_PREFECT_UI_URL": self.ui_url,
            "HANDOFF_SANDBOX_URL": self.sandbox_url,
            "HANDOFF_INTAKE_PORT": str(self.ports[2]),
            "HANDOFF_INTAKE_TOKEN": self.token,
        }

    def env(self) -> dict[str, str]:
        """What `handoff up` (and every flow run it starts) sees."""
        env = {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_", "HANDOFF_"))}
        env.update(self.handoff_env())
        env.update(
            {
                "PREFECT_HOME": str(self.home / "prefect"),
                "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
                "COLUMNS": "200",  # rich wraps at 80 columns when not on a terminal
                "PYTHONUNBUFFERED": "1",
            }
        )
        if self.code != ROOT:  # the snapshot comes before the editable install on the path
            env["PYTHONPATH"] = str(self.code)
        env.update(self.extra_env)
        return env

    def point_this_process_here(self) -> None:
        """Make handoff's code in this process use the stack's database and systems. Set in the
        environment (read if handoff.core.settings is imported later) and on the settings object."""
        os.environ.update(self.handoff_env())
        os.environ.update({k: v for k, v in self.extra_env.items() if k.startswith("HANDOFF_")})
        os.environ.setdefault("PREFECT_HOME", str(self.home / "prefect-client"))
        if str(self.code) not in sys.path:
            sys.path.insert(0, str(self.code))
        loaded = sys.modules.get("handoff")
        if loaded is not None and not str(getattr(loaded, "__file__", "")).startswith(str(self.code)):
            self.say(f"warning: handoff was imported from {loaded.__file__} before the stack's code")
        if "handoff.core.settings" in sys.modules:
            from handoff.core.settings import settings

            settings.home = self.home
            settings.database_url = self.database_url
            settings.prefect_ui_url = self.ui_url
            settings.sandbox_url = self.sandbox_url
            settings.intake_port = self.ports[2]
            settings.intake_token = self.token

    @contextlib.contextmanager
    def prefect(self) -> Iterator[None]:
        """This process's Prefect client talks to the stack's server inside the block."""
        from handoff.runtime import prefect_server

        with prefect_server.using(self.ui_url):
            yield

    # -- start / stop ------------------------------------------------------------------------

    def start(self, timeout: float = 240.0) -> Stack:
        taken = [p for p in self.ports if _port_taken(p)]
        if taken:
            raise RuntimeError(
                f"port(s) {taken} already answer on 127.0.0.1: another stack? "
                "`handoff up` would reuse a Prefect server it does not own; pick other ports"
            )
        self.home.mkdir(parents=True, exist_ok=True)
        self._log = open(self.log_path, "ab")
        self.say(
            f"starting `handoff up` (home {self.home}, UI {self.ui_url}, sandbox {self.sandbox_url}, "
            f"intake {self.intake_url})"
        )
        self.started_at = time.monotonic()
        self.say(f"code: {self.code_version} (run from {self.code})")
        command = [str(PYTHON), "-c", "from handoff.cli.main import app; app()", "up", *self.up_args]
        self.proc = subprocess.Popen(
            command,
            cwd=self.code,
            env=self.env(),
            stdout=self._log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            process_group=0,
        )
        Stack._live.append(self)
        try:
            self._wait_ready(timeout)
        except BaseException:
            self.stop()
            raise
        self.say(f"stack ready in {time.monotonic() - self.started_at:.1f} s ({len(self.processes())} processes)")
        return self

    def _wait_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(f"`handoff up` exited with code {self.proc.returncode}:\n{self.log_tail()}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"`handoff up` not ready within {timeout:.0f} s:\n{self.log_tail()}")
            if READY_LINE in self.log_text() and self._healthy() and self._deployments_exist():
                self._read_stack_info()
                return
            time.sleep(0.5)

    def _read_stack_info(self) -> None:
        """Where `handoff up --postgres` put the databases: this process follows it there."""
        import json

        path = self.home / "stack.json"
        if path.exists():
            self.stack_info = json.loads(path.read_text())
            self.point_this_process_here()  # handoff's engines are per URL: the next session goes there

    def postgres_processes(self) -> list[Proc]:
        """The throwaway PostgreSQL cluster's processes (`--postgres`), outside `handoff up`'s tree."""
        data = self.stack_info.get("postgres_data")
        if not data:
            return []
        try:
            postmaster = int(Path(data, "postmaster.pid").read_text().split()[0])
        except (OSError, ValueError, IndexError):
            return []
        return process_tree(postmaster)

    def _healthy(self) -> bool:
        try:
            return httpx.get(f"{self.intake_url}/health", timeout=2).status_code == 200
        except httpx.HTTPError:
            return False

    def _deployments_exist(self) -> bool:
        try:
            r = httpx.post(f"{self.ui_url}/api/deployments/filter", json={"limit": 50}, timeout=5)
            names = {d["name"] for d in r.json()}
        except (httpx.HTTPError, ValueError):
            return False
        return "order-pipeline" in names

    def stop(self, timeout: float = 60.0, remove_home: bool | None = None) -> None:
        """SIGINT to the group (Ctrl-C), then SIGKILL to whatever of the stack is left."""
        if self in Stack._live:
            Stack._live.remove(self)
        if self.proc is not None and self.proc.poll() is None:
            self.say("stopping the stack (SIGINT)")
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGINT)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.say(f"`handoff up` still running after {timeout:.0f} s: SIGKILL")
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=10)
        leftovers = self._leftovers()
        if leftovers:
            time.sleep(3)  # the server is stopped by `handoff up` itself; give it a moment
            leftovers = self._leftovers()
        for pid in leftovers:
            self.say(f"killing left-over process {pid}: {cmdline(pid)[:120]}")
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGKILL)
        if self._log:
            self._log.close()
            self._log = None
        if remove_home if remove_home is not None else not self.keep_home:
            shutil.rmtree(self.home, ignore_errors=True)
        else:
            self.say(f"kept the stack's home: {self.home}")

    def kill(self) -> None:
        """SIGKILL the whole stack at once — `handoff up`, its flow runs and the Prefect server —
        as a power cut would: nothing is told to stop. The home stays, so `start()` carries on."""
        if self.proc is not None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGKILL)
        for pid in self._leftovers():
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGKILL)
        if self.proc is not None:
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.proc.wait(timeout=10)
        if self._log:
            self._log.close()
            self._log = None
        if self in Stack._live:
            Stack._live.remove(self)
        deadline = time.monotonic() + 20
        while any(_port_taken(p) for p in self.ports) and time.monotonic() < deadline:
            time.sleep(0.2)

    def _leftovers(self) -> list[int]:
        """Processes of this stack still alive: those with its home in their environment."""
        return [p.pid for p in processes_outside(f"HANDOFF_HOME={self.home}", tree=set())]

    def __enter__(self) -> Stack:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- looking inside ----------------------------------------------------------------------

    def log_text(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except OSError:
            return ""

    def error_report(self) -> list[str]:
        """Distinct errors in `handoff up`'s output and in the Prefect server's log, as lines."""
        out = []
        for name, path in (
            ("`handoff up`'s output", self.log_path),
            ("the Prefect server's log", self.home / "prefect-server.log"),
        ):
            try:
                errors = log_errors(path.read_text(errors="replace"))
            except OSError:
                errors = []
            out.append(f"errors in {name}: {sum(n for n, _ in errors) if errors else 'none'}")
            out += [f"  {count:>4}× {line}" for count, line in errors]
        return out

    def log_tail(self, lines: int = 40) -> str:
        return "\n".join(self.log_text().splitlines()[-lines:])

    def processes(self) -> list[Proc]:
        """The processes of the stack's tree (`handoff up` and all its descendants)."""
        if self.proc is None or self.proc.poll() is not None:
            return []
        return process_tree(self.proc.pid)

    def strays(self) -> list[Proc]:
        """Processes with this stack's HANDOFF_HOME in their environment but outside its tree."""
        return processes_outside(f"HANDOFF_HOME={self.home}", {p.pid for p in self.processes()})

    def cpu_seconds(self) -> float:
        """CPU seconds the stack has used so far (the sum of `cpu_by_role`)."""
        return sum(self.cpu_by_role().values())

    def cpu_by_role(self) -> dict[str, float]:
        """CPU seconds the stack has used so far, by what each process is: its live processes,
        PostgreSQL's, and the exited children their parents reaped (cutime/cstime) — flow runs
        for a worker or the fork server, backends for the postmaster."""
        if self.proc is None or self.proc.poll() is not None:
            return {}
        by_role: Counter[str] = Counter()
        procs = self.processes()
        pg = self.postgres_processes()
        for p in procs:
            by_role[p.role] += p.cpu_seconds
        by_role["postgres"] += sum(p.cpu_seconds for p in pg)
        reapers = [(self.proc.pid, "reaped by handoff up")]
        reapers += [(p.pid, "flow run") for p in procs if p.role in ("worker", "fork server")]
        reapers += [(p.pid, "postgres") for p in pg[:1]]
        for parent, role in reapers:
            by_role[role] += reaped_cpu_seconds(parent)
        return dict(by_role)

    def process_count(self) -> tuple[int, int]:
        """(all processes, python processes) in the stack's tree."""
        procs = self.processes()
        return len(procs), sum(p.is_python for p in procs)

    # -- talking to it -----------------------------------------------------------------------

    def submit(self, orders: list[dict[str, Any]] | dict[str, Any], timeout: float = 60.0) -> httpx.Response:
        """POST orders to intake with the bearer token; raises unless 201."""
        r = httpx.post(
            f"{self.intake_url}/orders", json=orders, timeout=timeout, headers={"Authorization": f"Bearer {self.token}"}
        )
        if r.status_code != 201:
            raise RuntimeError(f"intake answered {r.status_code}: {r.text[:500]}")
        return r

    def ledger(self) -> list[dict[str, Any]]:
        """Every side effect the sandbox systems recorded, oldest first."""
        return httpx.get(f"{self.sandbox_url}/ledger", timeout=30).json()["entries"]

    def sandbox_requests(self, system: str | None = None) -> list[dict[str, Any]]:
        """Every request the sandbox saw (last 10,000), with status and replay flag."""
        params = {"system": system} if system else None
        return httpx.get(f"{self.sandbox_url}/_requests", params=params, timeout=30).json()["requests"]

    def load_catalogue(self) -> tuple[int, int]:
        """Northwind's customers and products into the stack's handoff database."""
        from handoff.core.northwind import load_catalogue

        return load_catalogue()


@atexit.register
def _stop_live_stacks() -> None:
    for stack in list(Stack._live):
        with contextlib.suppress(Exception):
            stack.stop(timeout=30)


def _on_sigterm(signum: int, frame: object) -> None:  # noqa: ARG001
    raise SystemExit(128 + signum)  # runs finally blocks and atexit


if __name__ == "__main__":  # a smoke test: start, show the processes, stop
    signal.signal(signal.SIGTERM, _on_sigterm)
    with Stack() as st:
        for p in st.processes():
            print(f"{p.pid:>7} {p.ppid:>7} {p.rss_mb:7.0f} MB  {p.role:<36} {p.cmdline[:110]}")
        print("ledger entries:", len(st.ledger()))
