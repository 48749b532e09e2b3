"""What every bench of the running stack shares: its command-line options, its main (start a
stack, run the measurement, report the code and the logs' errors, stop it) and the large order
it feeds, so each bench starts, reports and cleans up a stack the same way.
"""

from __future__ import annotations

import argparse
import signal
from collections.abc import Callable
from datetime import date
from datetime import timedelta
from typing import Any

from stack import Stack
from stack import _on_sigterm


def add_stack_options(ap: argparse.ArgumentParser) -> None:
    """The options every bench of the running stack takes (ports, home, runner, code)."""
    ap.add_argument("--ui-port", type=int, default=4310)
    ap.add_argument("--sandbox-port", type=int, default=8775)
    ap.add_argument("--intake-port", type=int, default=8085)
    ap.add_argument("--keep-home", action="store_true", help="keep the stack's temp home (logs, databases)")
    ap.add_argument(
        "--process-limit",
        type=int,
        default=None,
        help="HANDOFF_RUNNER_PROCESS_LIMIT for the stack (default: the product's default)",
    )
    ap.add_argument(
        "--env",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="more environment for the stack, e.g. PREFECT_API_LOG_RETRYABLE_ERRORS=true",
    )
    ap.add_argument(
        "--live-tree", action="store_true", help="run the stack from the checkout itself, not from a snapshot of it"
    )
    ap.add_argument(
        "--up",
        default="",
        metavar="ARGS",
        help='more arguments for `handoff up`, e.g. "--postgres --workers 2" (the production stack)',
    )


def stack_env(pairs: list[str], process_limit: int | None = None) -> dict[str, str]:
    """`--env KEY=VALUE` options (and `--process-limit`) as the stack's extra environment."""
    env = dict(pair.split("=", 1) for pair in pairs)
    if process_limit:
        env["HANDOFF_RUNNER_PROCESS_LIMIT"] = str(process_limit)
    return env


def bench_main(args: argparse.Namespace, run: Callable[[Stack, argparse.Namespace], bool], indent: str = "") -> int:
    """Start a stack from `args` (add_stack_options), load the catalogue, `run` the bench, then
    report the code and the errors in the logs and stop it (keeping its home if the bench
    failed). Exit code 0 if `run` says the checks passed."""
    signal.signal(signal.SIGTERM, _on_sigterm)
    stack = Stack(
        args.ui_port,
        args.sandbox_port,
        args.intake_port,
        keep_home=args.keep_home,
        snapshot=not args.live_tree,
        extra_env=stack_env(args.env, args.process_limit),
        up_args=args.up.split(),
    )
    ok = False
    try:
        stack.start()
        stack.load_catalogue()
        with stack.prefect():
            ok = run(stack, args)
    finally:
        print(f"{indent}code: {stack.code_version}")
        for line in stack.error_report():
            print(f"{indent}{line}")
        if not ok:
            stack.keep_home = True
        stack.stop()
    return 0 if ok else 1


def large_order(order_id: str, customer_id: str = "AROUT", quantity: int = 300) -> dict[str, Any]:
    """An order that passes the checklist and the credit check (AROUT: limit 20,000, not on hold)
    but needs a rep's approval: one line of Chai (product 1, catalogue price 18.00) × 300 = 5,400."""
    today = date.today()
    return {
        "order_id": order_id,
        "customer_id": customer_id,
        "order_date": today.isoformat(),
        "due_date": (today + timedelta(days=30)).isoformat(),
        "total": round(18.0 * quantity, 2),
        "lines": [{"product_id": 1, "quantity": quantity, "unit_price": 18.0, "discount": 0.0}],
    }
