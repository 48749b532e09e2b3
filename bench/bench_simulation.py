"""Benchmark: replay the whole BPIC 2012 work-item stream under each routing policy.

    python bench/bench_simulation.py                 # team of ceil(offered load) reps
    python bench/bench_simulation.py --staff 2,5,8   # also the overloaded and the easy case
    python bench/bench_simulation.py --xes other.xes.gz --cache-dir /tmp/cache
    python bench/bench_simulation.py --workload /path/teleclaims.xes.gz --staff 60..70   # any event log

Prints the number of work items, the parse time (first run; later runs read the cache), and
per policy and team size the wall-clock and CPU seconds of one replay. Single process, single
thread (numpy's thread pools are pinned to one thread). Target: <= 30 s per replay on one core,
judged on CPU seconds (on a shared machine wall-clock time measures the neighbours).
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse
import math
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from handoff.analytics.simulation.bpic2012 import bpic2012_workload
from handoff.analytics.simulation.compare import parse_staff
from handoff.analytics.simulation.engine import simulate
from handoff.analytics.simulation.workloads import load_workload
from handoff.core.settings import settings

TARGET_SECONDS = 30.0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--xes", type=Path, default=settings.bpic_path)
    ap.add_argument("--workload", default=None, help="a named workload or an event log path instead of --xes")
    ap.add_argument("--cache-dir", type=Path, default=None)
    ap.add_argument("--policies", default="push,fifo,self")
    ap.add_argument("--staff", default=None, help="team sizes, e.g. 5 or 2..8 (default: ceil(offered load))")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()

    t = time.perf_counter()
    if args.workload:
        wl = load_workload(args.workload, cache_dir=args.cache_dir)
    else:
        wl = bpic2012_workload(args.xes, cache_dir=args.cache_dir)
    load_s = time.perf_counter() - t
    load = wl.offered_load()
    sizes = parse_staff(args.staff) if args.staff else [math.ceil(load)]
    print(
        f"workload: {wl.name}: {len(wl.items)} work items, {wl.summary()['weeks']} weeks, "
        f"offered load {load:.2f} seats ({wl.calendar.describe()})"
    )
    print(f"load + build workload: {load_s:.1f} s (parsing the XES on the first run, the cache after)")
    print(f"{'policy':<8}{'staff':>6}{'wall s':>9}{'cpu s':>8}{'policy calls':>14}{'on-time %':>11}{'backlog max':>13}")
    worst = 0.0
    for n in sizes:
        team = wl.team(n, seed=args.seed)
        for policy in [p.strip() for p in args.policies.split(",") if p.strip()]:
            w0, c0 = time.perf_counter(), time.process_time()
            result = simulate(wl.items, team, policy, seed=args.seed)
            wall, cpu = time.perf_counter() - w0, time.process_time() - c0
            m = result.metrics()
            worst = max(worst, cpu)
            print(
                f"{policy:<8}{n:>6}{wall:>9.2f}{cpu:>8.2f}{result.policy_calls:>14}{m.on_time_pct:>11.1f}{m.backlog_max:>13}"
            )
    verdict = "OK" if worst <= TARGET_SECONDS else "SLOWER THAN TARGET"
    print(f"slowest replay {worst:.1f} s CPU (target <= {TARGET_SECONDS:g} s on one core): {verdict}")
    return 0 if worst <= TARGET_SECONDS else 1


if __name__ == "__main__":
    raise SystemExit(main())
