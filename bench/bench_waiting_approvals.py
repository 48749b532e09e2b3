"""Benchmark: 200 orders waiting for approval at once — without 200 processes — and resuming
them repeats no side effect.

    .venv/bin/python bench/bench_waiting_approvals.py [--orders 200]     # --orders 20: quick run

Starts the running stack (`handoff up`, see bench/stack.py) on its own ports with a fresh home
and then:

1. submits N large orders (W-0001 …; AROUT, Chai × 300 = 5,400: credit passes, approval needed)
   through the HTTP intake endpoint, one POST per order, as fast as intake answers;
2. waits until all N order-approval work items wait for their form (`waiting_steps()`: input
   key set) and all N pipeline runs are Suspended; counts the stack's OS processes (the tree
   under `handoff up`) every second meanwhile, and again once all N wait and the flow-run
   processes have exited;
3. snapshots the sandbox ledger: N credit checks, each idempotency key once;
4. completes all N approvals as their assignees (handoff.runtime.steps.complete_step with
   handoff.runtime.standins.standin_answer): Prefect resumes each run, the runner runs it again from
   the top in a new process;
5. waits until every order has moved past order entry (later human steps, e.g. activation
   confirmation, then wait: fine), and checks the ledger again: still exactly N credit checks,
   no idempotency key twice, nothing recorded before the resume recorded again.

Prints a table and exits 1 if a check fails.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from collections import Counter
from collections.abc import Callable
from datetime import UTC
from datetime import datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from approvals_probe import ENTRY_STATES  # noqa: E402
from approvals_probe import Aborted  # noqa: E402
from approvals_probe import Sampler  # noqa: E402
from approvals_probe import approvals_waiting  # noqa: E402
from approvals_probe import business_key  # noqa: E402
from approvals_probe import ledger_summary  # noqa: E402
from approvals_probe import order_statuses  # noqa: E402
from approvals_probe import resume_latencies  # noqa: E402
from approvals_probe import run_states  # noqa: E402
from approvals_probe import say  # noqa: E402
from approvals_probe import show_processes  # noqa: E402
from approvals_probe import spread  # noqa: E402
from approvals_probe import suspended_orders  # noqa: E402
from stack import Stack  # noqa: E402
from stack_code import runner_limit_note  # noqa: E402
from stack_harness import add_stack_options  # noqa: E402
from stack_harness import bench_main  # noqa: E402
from stack_harness import large_order  # noqa: E402
from stack_processes import Proc  # noqa: E402
from stack_processes import machine_notes  # noqa: E402

# --- the benchmark --------------------------------------------------------------------------


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--orders", type=int, default=200)
    ap.add_argument("--fill-timeout", type=float, default=3600.0, help="seconds for all N to be waiting")
    ap.add_argument("--resume-timeout", type=float, default=3600.0, help="seconds for all N to pass order entry")
    ap.add_argument(
        "--rate",
        type=float,
        default=0.0,
        help="orders per second to submit at (0: all at once, as fast as intake answers)",
    )
    ap.add_argument(
        "--answer-rate",
        type=float,
        default=0.0,
        help="approvals per second to answer at (0: one after the other, as fast as they go)",
    )
    ap.add_argument(
        "--assign-timeout",
        type=float,
        default=1800.0,
        help="seconds to wait for an approval with no assignee yet to be pushed to a rep",
    )
    ap.add_argument(
        "--min-free-mb",
        type=float,
        default=4000.0,
        help="abort (stop the stack) if the machine's available memory falls below this",
    )
    ap.add_argument(
        "--stall-timeout",
        type=float,
        default=600.0,
        help="give up waiting when nothing progressed for this many seconds",
    )
    ap.add_argument("--json", type=Path, default=None, help="also write the figures here")
    add_stack_options(ap)
    args = ap.parse_args()
    return bench_main(args, run, indent="  ")


def run(stack: Stack, args: argparse.Namespace) -> bool:
    ids = [f"W-{i:04d}" for i in range(1, args.orders + 1)]
    time.sleep(5)
    notes = {"start": machine_notes()}
    t0 = time.monotonic()
    sampler = Sampler(stack, t0, min_available_mb=args.min_free_mb).start()
    idle = stack.processes()
    try:
        return measure(stack, args, ids, sampler, idle, notes)
    except Aborted as aborted:
        sampler.stop()
        print()
        print(f"ABORTED: {aborted}")
        print(
            f"  phase when aborted: {sampler.samples[-1].phase if sampler.samples else '?'}, "
            f"at {sampler.samples[-1].t if sampler.samples else 0:.0f} s"
        )
        print(
            f"  max processes (total / flow runs): {max((x.total for x in sampler.samples), default=0)} / "
            f"{max((x.flow_runs for x in sampler.samples), default=0)}"
        )
        print(
            f"  max stack RSS: {max((x.rss_mb for x in sampler.samples), default=0):.0f} MB; "
            f"min available memory: {min((x.mem_available_mb for x in sampler.samples), default=0):.0f} MB"
        )
        print(f"  approvals waiting: {len(approvals_waiting(set(ids)))}/{len(ids)}")
        if args.json:
            args.json.parent.mkdir(parents=True, exist_ok=True)
            args.json.write_text(
                json.dumps(
                    {"aborted": str(aborted), "samples": [x.__dict__ for x in sampler.samples]}, indent=2, default=str
                )
            )
        return False


def measure(
    stack: Stack, args: argparse.Namespace, ids: list[str], sampler: Sampler, idle: list[Proc], notes: dict[str, str]
) -> bool:
    n = len(ids)
    idset = set(ids)
    t0 = sampler.t0

    def check_abort() -> None:
        if sampler.aborted:
            raise Aborted(sampler.aborted)

    # 1. submit
    sampler.phase = "filling"
    for i, oid in enumerate(ids):
        if args.rate:
            pause = t0 + i / args.rate - time.monotonic()
            if pause > 0:
                time.sleep(pause)
        check_abort()
        stack.submit(large_order(oid))
    t_submitted = time.monotonic() - t0
    say(f"submitted {n} orders in {t_submitted:.1f} s")

    def watch(count: Callable[[], int], done: Callable[[int], bool], deadline: float, since: float, what: str) -> bool:
        """Count every 2 s until `done(count)` (True), the deadline, or no change for the stall
        timeout (False); say each new count, `what` it counts, with the flow-run processes."""
        last, progressed = -1, time.monotonic()
        while time.monotonic() < deadline and time.monotonic() - progressed < args.stall_timeout:
            got = count()
            if done(got):
                return True
            if got != last:
                say(
                    f"{time.monotonic() - since:6.0f} s{what.format(got=got, n=n)}; "
                    f"{sampler.samples[-1].flow_runs if sampler.samples else '?'} flow-run processes"
                )
                last, progressed = got, time.monotonic()
            check_abort()
            time.sleep(2)
        return False

    # 2. wait until all N wait
    t_waiting = t_suspended = None

    def all_waiting_and_suspended(waiting: int) -> bool:
        nonlocal t_waiting
        if waiting == n and t_waiting is None:
            t_waiting = time.monotonic() - t0
        return t_waiting is not None and suspended_orders(stack, idset) == n

    if watch(
        lambda: len(approvals_waiting(idset)),
        all_waiting_and_suspended,
        t0 + args.fill_timeout,
        t0,
        ": {got}/{n} approvals waiting",
    ):
        t_suspended = time.monotonic() - t0
    if t_suspended is None:
        say(f"not all {n} waiting within {args.fill_timeout:.0f} s")
    say(f"all {n} waiting at {t_waiting} s, suspended at {t_suspended} s")

    # processes with N waiting: let the last flow-run processes exit, then watch 15 s
    sampler.phase = "settling"
    settle_deadline = time.monotonic() + 60
    while time.monotonic() < settle_deadline and any(p.role == "flow run" for p in stack.processes()):
        time.sleep(1)
    sampler.phase = "waiting"
    time.sleep(15)
    waiting_procs = stack.processes()
    strays = stack.strays()
    notes["waiting"] = machine_notes()
    states_waiting, runs_per_order = run_states(stack, idset)
    before = stack.ledger()
    sum_before = ledger_summary(before, idset)

    # 4. complete every approval as its assignee
    from handoff.runtime.standins import standin_answer
    from handoff.runtime.steps import complete_step

    sampler.phase = "resuming"
    t_resume0 = time.monotonic()
    answered, refused = 0, []
    failed_first: list[tuple[int, str | None, str]] = []
    answered_at: dict[str, datetime] = {}
    decisions = Counter()
    queue = approvals_waiting(idset)
    unassigned_at_start = sum(w.assignee is None for w in queue)
    deferred: set[int] = set()  # answered later: no rep had room for the item when its turn came
    i = misses = 0
    assign_deadline = None
    while queue:
        w = queue.pop(0)
        if args.answer_rate:
            pause = t_resume0 + i / args.answer_rate - time.monotonic()
            if pause > 0:
                time.sleep(pause)
        check_abort()
        answer = standin_answer(w.item_id)
        if answer is None:  # not pushed to a rep yet: it will be once earlier answers free capacity
            deferred.add(w.item_id)
            assign_deadline = assign_deadline or time.monotonic() + args.assign_timeout
            if time.monotonic() < assign_deadline:
                queue.append(w)
                misses += 1
                if misses >= len(queue):  # a whole round without an assignee: give the runs time
                    time.sleep(2)
                    misses = 0
                continue
            refused.append((w.item_id, w.order_id, "no assignee within --assign-timeout"))
            continue
        i, misses = i + 1, 0
        try:
            complete_step(w.item_id, answer)
            answered_at[w.order_id] = datetime.now(UTC)
            answered += 1
            decisions[answer.get("decision")] += 1
        except Exception as exc:  # noqa: BLE001 - reported, and tried again below (a rep would)
            failed_first.append((w.item_id, w.order_id, f"{type(exc).__name__}: {exc}"))
    # answers that failed: try again as the rep would, up to 3 times, 10 s apart
    retry = list(failed_first)
    for _ in range(3):
        if not retry:
            break
        time.sleep(10)
        still = []
        for item_id, order_id, _ in retry:
            answer = standin_answer(item_id)
            try:
                complete_step(item_id, answer)
                answered_at[order_id] = datetime.now(UTC)
                answered += 1
                decisions[answer.get("decision")] += 1
            except Exception as exc:  # noqa: BLE001
                still.append((item_id, order_id, f"{type(exc).__name__}: {exc}"))
        retry = still
    refused += retry
    t_answered = time.monotonic() - t_resume0
    say(f"answered {answered} approvals in {t_answered:.1f} s ({len(refused)} failed)")

    # 5. wait until every order is past order entry
    t_past = None
    if watch(
        lambda: sum(s not in ENTRY_STATES for s in order_statuses(idset).values()),
        lambda past: past == n,
        time.monotonic() + args.resume_timeout,
        t_resume0,
        " after resuming: {got}/{n} past order entry",
    ):
        t_past = time.monotonic() - t_resume0
    # let the resumed runs reach their next wait (or the end) before reading the ledger
    sampler.phase = "after"
    settle_deadline = time.monotonic() + 120
    while time.monotonic() < settle_deadline and any(p.role == "flow run" for p in stack.processes()):
        time.sleep(1)
    time.sleep(3)
    sampler.stop()
    resume_lags = resume_latencies(stack, answered_at)
    after = stack.ledger()
    sum_after = ledger_summary(after, idset)
    statuses = order_statuses(idset)
    states_after, runs_per_order_after = run_states(stack, idset)
    from handoff.runtime.steps import waiting_steps

    next_waits = Counter(w.work_type for w in waiting_steps() if w.order_id in idset)
    credit_requests = [
        r for r in stack.sandbox_requests("crm") if "/credit-checks" in r["path"] and r["method"] == "POST"
    ]
    notes["end"] = machine_notes()

    # checks
    before_by_seq = {e["seq"]: e for e in before}
    changed = [s for s, e in before_by_seq.items() if next((a for a in after if a["seq"] == s), None) != e]
    keys_before = {business_key(e) for e in before}
    repeated = [e for e in after if e["seq"] not in before_by_seq and business_key(e) in keys_before]
    fill = sampler.of("filling") + sampler.of("settling")
    wait_samples = sampler.of("waiting")
    resume_samples = sampler.of("resuming") + sampler.of("after")
    crashed = {k: v for k, v in states_after.items() if k in ("Crashed", "Failed")}

    checks = {
        f"all {n} approvals waiting": t_waiting is not None and t_suspended is not None,
        "processes with N waiting ≤ 10 (not N)": len(waiting_procs) <= 10,
        f"credit checks before resume = {n}": sum_before["credit_checks"] == n == sum_before["credit_keys"],
        f"all {n} approvals answered": answered == n,
        f"all {n} orders past order entry": t_past is not None,
        f"credit checks after resume = {n}": sum_after["credit_checks"] == n == sum_after["credit_keys"],
        "no idempotency key twice in the ledger": not sum_after["duplicate_keys"],
        "no side effect of before the resume recorded again": not repeated and not changed,
    }

    # --- report ---------------------------------------------------------------------------
    def fmt(v: float | None) -> str:
        return "—" if v is None else f"{v:.1f}"

    print()
    how = f"{args.rate:g} orders/s" if args.rate else "all at once"
    answers = f"{args.answer_rate:g} answers/s" if args.answer_rate else "one after the other"
    print(
        f"Waiting approvals: {n} large orders through intake, submitted {how}, approvals answered "
        f"{answers} ({runner_limit_note()})"
    )
    print()
    rows = [
        ("orders", n),
        ("seconds to submit all (one POST each)", fmt(t_submitted)),
        ("seconds to all waiting (work items)", fmt(t_waiting)),
        ("  of which after the last order was submitted", fmt(t_waiting - t_submitted if t_waiting else None)),
        ("seconds to all runs Suspended", fmt(t_suspended)),
        ("processes idle before (total / python)", f"{len(idle)} / {sum(p.is_python for p in idle)}"),
        (
            "max processes while filling (total / python)",
            f"{max((s.total for s in fill), default=0)} / {max((s.python for s in fill), default=0)}",
        ),
        ("max flow-run processes at once while filling", max((s.flow_runs for s in fill), default=0)),
        ("max stack memory while filling (RSS, MB)", max((s.rss_mb for s in fill), default=0)),
        ("min machine memory available while filling (MB)", min((s.mem_available_mb for s in fill), default=0)),
        (
            "processes with N waiting (total / python)",
            f"{len(waiting_procs)} / {sum(p.is_python for p in waiting_procs)}",
        ),
        (
            "processes with N waiting, median of 15 s samples",
            statistics.median([s.total for s in wait_samples]) if wait_samples else "—",
        ),
        ("stack processes outside the tree (strays)", len(strays)),
        (
            "pipeline runs of these orders (runs/order > 1)",
            f"{sum(runs_per_order.values())} ({sum(v > 1 for v in runs_per_order.values())} orders)",
        ),
        ("credit checks before resume (distinct keys)", f"{sum_before['credit_checks']} ({sum_before['credit_keys']})"),
        ("approvals with no assignee yet when all N waited", unassigned_at_start),
        ("approvals answered later: not yet assigned when their turn came", len(deferred)),
        ("seconds to answer all approvals", fmt(t_answered)),
        ("answers that failed at the first try (then tried again)", len(failed_first)),
        ("decisions", dict(decisions)),
        ("seconds from resume to all past order entry", fmt(t_past)),
        ("answer → run picked up again (Pending), s", spread(resume_lags["pending"])),
        ("answer → run running again, s", spread(resume_lags["running"])),
        (
            "max processes while resuming (total / flow runs)",
            f"{max((s.total for s in resume_samples), default=0)} / {max((s.flow_runs for s in resume_samples), default=0)}",
        ),
        ("credit checks after resume (distinct keys)", f"{sum_after['credit_checks']} ({sum_after['credit_keys']})"),
        ("credit-check requests answered as replays", sum(bool(r["replay"]) for r in credit_requests)),
        ("duplicate idempotency keys (must be 0)", len(sum_after["duplicate_keys"])),
        ("side effects recorded again after resume (must be 0)", len(repeated) + len(changed)),
        ("ledger entries before / after", f"{sum_before['entries']} / {sum_after['entries']}"),
    ]
    width = max(len(str(k)) for k, _ in rows)
    for k, v in rows:
        print(f"  {k:<{width}}  {v}")
    print()
    print(f"  processes with {n} waiting:")
    show_processes(waiting_procs)
    if strays:
        print("  strays:")
        show_processes(strays)
    print(f"  order statuses after: {dict(Counter(statuses.values()))}")
    print(f"  steps now waiting for these orders: {dict(next_waits)}")
    print(f"  pipeline run states with {n} waiting: {dict(states_waiting)}")
    print(f"  pipeline run states at the end: {dict(states_after)}")
    print(f"  ledger by operation at the end: {sum_after['by_operation']}")
    if failed_first:
        print(f"  answers that failed at the first try ({len(failed_first)}; tried again up to 3 times):")
        for item in failed_first[:10]:
            print(f"    {item}")
    if refused:
        print(f"  approvals that could not be answered ({len(refused)}):")
        for item in refused[:10]:
            print(f"    {item}")
    if crashed:
        print(f"  CRASHED/FAILED runs: {crashed}")
    print(f"  machine at start:   {notes['start']}")
    print(f"  machine, N waiting: {notes['waiting']}")
    print(f"  machine at end:     {notes['end']}")
    print()
    for name, passed in checks.items():
        print(f"  [{'ok' if passed else 'FAIL'}] {name}")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(
            json.dumps(
                {
                    "table": {k: v for k, v in rows},
                    "checks": checks,
                    "notes": notes,
                    "samples": [s.__dict__ for s in sampler.samples],
                    "waiting_processes": [p.__dict__ for p in waiting_procs],
                    "statuses": dict(Counter(statuses.values())),
                    "run_states_after": dict(states_after),
                    "refused": refused,
                    "failed_first": failed_first,
                    "repeated": repeated[:50],
                    "resume_lags": resume_lags,
                    "ledger_before": sum_before,
                    "ledger_after": sum_after,
                },
                indent=2,
                default=str,
            )
        )
    return all(checks.values())


if __name__ == "__main__":
    sys.exit(main())
