"""The OS processes of a running stack, and the machine they share, read from /proc.

A stack is `handoff up`'s process tree plus what left it (the Prefect server runs in its own
session, a flow run whose parent died is re-parented to init): a bench counts, weighs and stops
them by walking /proc/*/stat and /proc/*/environ. The machine's figures go in every report,
because on two shared cores a neighbour's work shows up directly in the timings.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

CLK_TCK = os.sysconf("SC_CLK_TCK")


@dataclass(frozen=True)
class Proc:
    pid: int
    ppid: int
    comm: str
    cmdline: str
    rss_mb: float
    cpu_seconds: float
    parent_cmdline: str = ""

    @property
    def is_python(self) -> bool:
        first = self.cmdline.split(" ", 1)[0]
        return "python" in self.comm.lower() or "python" in Path(first).name.lower()

    @property
    def role(self) -> str:
        """What the process is, in a word, from its command line."""
        c = self.cmdline
        if "multiprocessing.forkserver" in c:  # warm start: runs are forks of the fork server
            return "flow run" if "multiprocessing.forkserver" in self.parent_cmdline else "fork server"
        if "prefect.engine" in c or "prefect/engine" in c or "multiprocessing.spawn" in c:
            return "flow run"
        if "multiprocessing.resource_tracker" in c:
            return "resource tracker"
        if "server start" in c and "prefect" in c or "prefect.server" in c or "uvicorn" in c and "prefect" in c:
            return "prefect server"
        if " worker --pool" in c:
            return "worker"
        if (c.endswith(" up") or " up --" in c) and "handoff" in c:
            return "handoff up (runner, intake, sandbox)"
        return "other"


def _read_stat(pid: int) -> tuple[str, int, float, float] | None:
    """(comm, ppid, cpu seconds, rss MB) from /proc/<pid>/stat, or None if it is gone."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # comm is in parentheses and may contain spaces or parentheses: split at the last ')'
    comm = raw[raw.index("(") + 1 : raw.rindex(")")]
    fields = raw[raw.rindex(")") + 2 :].split()
    ppid = int(fields[1])
    cpu = (int(fields[11]) + int(fields[12])) / CLK_TCK  # utime + stime
    rss_mb = int(fields[21]) * os.sysconf("SC_PAGE_SIZE") / 1e6
    return comm, ppid, cpu, rss_mb


def cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace").strip()
    except OSError:
        return ""


def environ_has(pid: int, needle: bytes) -> bool:
    try:
        return needle in Path(f"/proc/{pid}/environ").read_bytes()
    except OSError:
        return False


def all_processes() -> dict[int, tuple[str, int, float, float]]:
    out = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            stat = _read_stat(int(entry))
            if stat is not None:
                out[int(entry)] = stat
    return out


def process_tree(root_pid: int) -> list[Proc]:
    """`root_pid` and all its descendants (walks /proc/*/stat ppid)."""
    table = all_processes()
    children: dict[int, list[int]] = {}
    for pid, (_, ppid, _, _) in table.items():
        children.setdefault(ppid, []).append(pid)
    found, todo = [], [root_pid] if root_pid in table else []
    while todo:
        pid = todo.pop()
        found.append(pid)
        todo.extend(children.get(pid, []))
    procs = []
    for pid in sorted(found):
        comm, ppid, cpu, rss = table[pid]
        procs.append(Proc(pid, ppid, comm, cmdline(pid), rss, cpu, cmdline(ppid)))
    return procs


def processes_outside(environment_entry: str, tree: set[int]) -> list[Proc]:
    """Processes with `environment_entry` (NAME=value) in their environment, not in `tree` and not
    this one: what a stack left behind."""
    needle = f"{environment_entry}\0".encode()
    table = all_processes()
    return [
        Proc(pid, table[pid][1], table[pid][0], cmdline(pid), table[pid][3], table[pid][2])
        for pid in sorted(table)
        if pid not in tree and pid != os.getpid() and environ_has(pid, needle)
    ]


def reaped_cpu_seconds(parent: int) -> float:
    """CPU seconds of the exited children `parent` reaped (cutime + cstime); 0 if it is gone."""
    try:
        raw = Path(f"/proc/{parent}/stat").read_text()
    except OSError:
        return 0.0
    fields = raw[raw.rindex(")") + 2 :].split()
    return (int(fields[13]) + int(fields[14])) / CLK_TCK


def machine_busy_seconds() -> float:
    """CPU seconds all cores of the machine have been busy since boot (/proc/stat)."""
    fields = [int(x) for x in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)  # idle + iowait
    return (sum(fields[:8]) - idle) / CLK_TCK


def machine_notes() -> str:
    """Cores, memory, load average and how many other python processes share the machine."""
    load = Path("/proc/loadavg").read_text().split()[:3]
    mem_kb = next(
        (
            int(line.split()[1])
            for line in Path("/proc/meminfo").read_text().splitlines()
            if line.startswith("MemTotal:")
        ),
        0,
    )
    table = all_processes()
    pythons = sum(1 for comm, *_ in table.values() if "python" in comm.lower())
    return (
        f"{os.cpu_count()} cores, {mem_kb / 1e6:.0f} GB RAM, load average {' '.join(load)}, "
        f"{pythons} python processes on the machine (all users, this stack included)"
    )
