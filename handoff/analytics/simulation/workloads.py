"""Workloads by name or by file: the one entry point the CLI, benches and tests use.

One loader per module: bpic2012.py (the bank's log with our SLA table), eventlog.py (any XES
or CSV event log), northwind.py (the order book), synthetic.py (generated); workload.py holds
the `Workload` they all return and how teams are drawn; import each from its own module.
"""

from __future__ import annotations

from pathlib import Path

from handoff.analytics.simulation.bpic2012 import bpic2012_workload
from handoff.analytics.simulation.eventlog import LogOptions
from handoff.analytics.simulation.eventlog import load_event_log
from handoff.analytics.simulation.northwind import northwind_workload
from handoff.analytics.simulation.synthetic import synthetic_workload
from handoff.analytics.simulation.workload import Workload

NAMED = ("bpic2012", "northwind", "synthetic")


def load_workload(
    name: str,
    *,
    xes: str | Path | None = None,
    northwind: str | Path | None = None,
    cache_dir: str | Path | None = None,
    seed: int = 0,
    weeks: float | None = None,
    volume_factor: float = 1.0,
    compression: float = 20.0,
    synthetic_items: int = 5000,
    synthetic_rate: float = 30.0,
    log_options: LogOptions | None = None,
) -> Workload:
    """The named workload (bpic2012, northwind, synthetic) or the event log at path `name`
    (XES or CSV), with the usual knobs (what the CLI and the benches call)."""
    from handoff.core.settings import settings

    if name == "bpic2012":
        wl = bpic2012_workload(xes or settings.bpic_path, cache_dir=cache_dir, options=log_options)
    elif name == "northwind":
        wl = northwind_workload(northwind or settings.northwind_path, compression=compression, seed=seed)
    elif name == "synthetic":
        wl = synthetic_workload(n_items=synthetic_items, arrivals_per_hour=synthetic_rate, seed=seed)
    elif Path(name).is_file():
        wl = load_event_log(name, log_options, cache_dir=cache_dir)
    else:
        raise ValueError(
            f"unknown workload {name!r}: give bpic2012, northwind, synthetic or the path of an XES or CSV event log"
        )
    return wl.sliced(weeks).scaled(volume_factor, seed=seed)
