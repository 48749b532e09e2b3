"""The code a benchmarked stack runs: a snapshot of the working tree, which commit it is, how
its runner is set, and what a fresh interpreter pays to import it.

Other engineers edit the checkout while a bench runs, so a stack runs from a copy and every
report says which code it measured. Importing this module puts the checkout on sys.path, so the
bench can import handoff.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

PYTHON = ROOT / ".venv" / "bin" / "python"


def code_version() -> str:
    """The checkout's commit and how many files differ from it (read-only git commands)."""

    def git(*args: str) -> str:
        r = subprocess.run(["git", "-C", str(ROOT), *args], capture_output=True, text=True)
        return r.stdout.strip()

    head = git("rev-parse", "--short", "HEAD") or "?"
    modified = len(git("ls-files", "-m").splitlines())
    untracked = len(git("ls-files", "-o", "--exclude-standard").splitlines())
    return f"commit {head} + {modified} modified and {untracked} untracked file(s) of the working tree"


def runner_limit_note() -> str:
    """How the stack's runner starts flow runs: its poll, process limit and warm start (from the
    stack's code and environment)."""
    try:
        from handoff.core.settings import Settings

        current = Settings()
    except ImportError:
        return "runner settings unknown"
    return (
        f"runner poll {current.runner_poll_seconds:g} s, process limit {current.runner_process_limit}, "
        f"warm start {'on' if current.warm_start else 'off'}"
    )


def import_cost(statement: str, repeat: int = 3) -> float:
    """Median wall seconds for a fresh interpreter to run `statement` (what a flow run's process
    pays before its first line of work)."""
    times = []
    for _ in range(repeat):
        t = time.monotonic()
        subprocess.run([str(PYTHON), "-c", statement], cwd=ROOT, check=True, stdout=subprocess.DEVNULL)
        times.append(time.monotonic() - t)
    return sorted(times)[len(times) // 2]


def snapshot_tree(home: Path) -> Path:
    """Copy the working tree (tracked and untracked files, as they are now) under the home and
    run the stack from there: other engineers edit the checkout while a bench runs, and a
    half-made edit would crash flow runs that start later. `<home>/shared` links to the
    checkout's `../shared` (Northwind, BPIC), which handoff finds next to its code."""
    code = home / "code"
    files = (
        subprocess.run(
            ["git", "-C", str(ROOT), "ls-files", "-co", "--exclude-standard", "-z"], check=True, capture_output=True
        )
        .stdout.decode()
        .split("\0")
    )
    for rel in filter(None, files):
        src = ROOT / rel
        if src.is_file() and not rel.startswith(("bench/out/", ".venv/")):
            (code / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, code / rel)
    shared = ROOT.parent / "shared"
    if shared.exists() and not (home / "shared").exists():
        (home / "shared").symlink_to(shared)
    subprocess.run(
        [str(PYTHON), "-m", "compileall", "-q", str(code)],
        check=False,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    return code
