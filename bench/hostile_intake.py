"""Hostile intake, the long run: thousands of generated payloads (any bytes, any JSON, any CSV;
tests/core/intake_payloads.py) through the three doors — the function, the CLI
(`handoff orders submit`) and the HTTP endpoint (a real uvicorn server) — in turn.

For each payload it checks the property the tests check on a few dozen: no unhandled error (an
exception, a 500, a CLI crash), and submitted = accepted + quarantined + duplicates with the
database agreeing (rows counted before and after). At the end every stored order is read back
and held against the contract again. Prints the counts; the last line, e.g.

    payloads 10000 · unhandled 0 · lost 0 · contract-breaking accepted 0

    nice -n 10 python bench/hostile_intake.py --payloads 10000 [--processes 6]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import socket
import sys
import tempfile
import time
import traceback
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests" / "core")]
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")


class OutOfTime(Exception):
    """The time budget (--minutes) is spent."""


class Run:
    """What the run found, by channel."""

    def __init__(self) -> None:
        self.payloads = Counter()
        self.outcomes = Counter()
        self.unhandled: list[str] = []
        self.broken: list[str] = []
        self.lost = 0

    def check(
        self,
        channel: str,
        before,
        submitted: int,
        accepted: list[str],
        duplicates: list[str],
        quarantined: int,
        sample: bytes,
    ) -> None:
        from intake_payloads import check_outcome

        self.outcomes.update(
            {
                f"{channel} submitted": submitted,
                f"{channel} accepted": len(accepted),
                f"{channel} duplicates": len(duplicates),
                f"{channel} quarantined": quarantined,
            }
        )
        broken = check_outcome(before, submitted, accepted, duplicates, quarantined)
        if broken:
            self.lost += max(1, submitted - len(accepted) - len(duplicates) - quarantined)
            self.broken.append(f"{channel}: {broken} for {sample[:120]!r}")

    def crash(self, channel: str, what: str, sample: bytes) -> None:
        self.unhandled.append(f"{channel}: {what} for {sample[:120]!r}")


def through_function(run: Run, kind: str, raw: bytes) -> None:
    from intake_payloads import tally

    from handoff.core.intake import parse_csv_orders
    from handoff.core.intake import parse_json_orders
    from handoff.core.intake import submit_orders

    before = tally()
    try:
        result = submit_orders((parse_csv_orders if kind == "csv" else parse_json_orders)(raw), source="bench:function")
    except Exception:  # noqa: BLE001 - counting them is the point
        run.crash("function", traceback.format_exc(limit=3), raw)
        return
    run.check("function", before, result.submitted, result.accepted, result.duplicates, len(result.quarantined), raw)


def through_cli(run: Run, kind: str, raw: bytes, workdir: Path) -> None:
    from intake_payloads import SUMMARY
    from intake_payloads import tally
    from typer.testing import CliRunner

    from handoff.cli import intake
    from handoff.cli.main import app

    intake._announcer_if_server = lambda: None  # no Prefect server here: skip looking for one each time

    path = workdir / f"payload.{kind}"
    path.write_bytes(raw)
    before = tally()
    result = CliRunner().invoke(app, ["orders", "submit", str(path)])
    if result.exception is not None and not isinstance(result.exception, SystemExit) or result.exit_code not in (0, 1):
        run.crash(
            "cli",
            f"exit {result.exit_code}: {''.join(traceback.format_exception(result.exception, limit=3))[-600:] if result.exception else result.output[-300:]}",
            raw,
        )
        return
    summary = SUMMARY.search(result.output.replace("\n", " "))
    if summary is None:
        run.crash("cli", f"no summary line in: {result.output[-300:]!r}", raw)
        return
    submitted, accepted, duplicates, quarantined = map(int, summary.groups())
    from sqlalchemy import select

    from handoff.core.db import session
    from handoff.core.models import Order

    # The CLI prints counts and the duplicates' ids; the orders it accepted are the newest rows.
    with session() as s:
        ids = list(s.scalars(select(Order.id).order_by(Order.received_at.desc()).limit(accepted))) if accepted else []
    dup_ids = re.findall(r"duplicate order (\S+): already received", result.output.replace("\n", " "))
    if len(dup_ids) != duplicates:
        run.crash("cli", f"{duplicates} duplicates counted, {len(dup_ids)} listed", raw)
    run.check("cli", before, submitted, ids, dup_ids, quarantined, raw)


def through_http(run: Run, kind: str, raw: bytes, client, url: str) -> None:
    from intake_payloads import tally

    before = tally()
    # A connection per request: a pooled connection the server closes as idle (keep-alive timeout)
    # just as the client reuses it fails before the server reads anything — a client's retry,
    # not intake's, which the first 10,200-payload run counted as 3 unhandled errors.
    headers = {
        "Authorization": "Bearer bench",
        "Content-Type": "text/csv" if kind == "csv" else "application/json",
        "Connection": "close",
    }
    try:
        response = client.post(f"{url}/orders", content=raw, headers=headers)
    except Exception:  # noqa: BLE001 - counting them is the point
        run.crash("http", traceback.format_exc(limit=2), raw)
        return
    if response.status_code == 413:
        run.outcomes["http refused as too large (413)"] += 1
        return
    if response.status_code not in (201, 207, 422):
        run.crash("http", f"{response.status_code}: {response.text[:300]}", raw)
        return
    body = response.json()
    run.check("http", before, body["submitted"], body["accepted"], body["duplicates"], len(body["quarantined"]), raw)


def contract_breaking_orders() -> list[str]:
    from sqlalchemy import select

    from handoff.core.db import session
    from handoff.core.intake.contract import stored_order_violations
    from handoff.core.intake.door import content_as_stored
    from handoff.core.models import Order

    breaking = []
    with session() as s:
        for order in s.scalars(select(Order)):
            violations = stored_order_violations(content_as_stored(order))
            if violations:
                breaking.append(f"{order.id}: {violations[:3]}")
    return breaking


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--payloads", type=int, default=10_000, help="payloads in all, shared by the channels")
    ap.add_argument("--channels", default="function,cli,http")
    ap.add_argument("--database", default="", help="a SQLAlchemy URL (default: a new SQLite file)")
    ap.add_argument(
        "--processes",
        type=int,
        default=1,
        help="run the payloads in this many child processes at once, each with its own database "
        "and a share of the channels (the property is checked per database)",
    )
    ap.add_argument(
        "--minutes",
        type=float,
        default=0,
        help="stop generating after this long, and report what was done (0: run every payload)",
    )
    ap.add_argument("--json", action="store_true", help=argparse.SUPPRESS)  # a child's result, for its parent
    args = ap.parse_args()
    if args.processes > 1:
        return in_processes(args)

    # /dev/shm when there is one: the run measures intake's logic, not the disk's flushes
    home = Path(tempfile.mkdtemp(prefix="hostile-intake-", dir="/dev/shm" if Path("/dev/shm").is_dir() else None))
    os.environ["HANDOFF_HOME"] = str(home)
    from hypothesis import HealthCheck
    from hypothesis import Phase
    from hypothesis import given
    from hypothesis import settings as hypothesis_settings

    from handoff.core.settings import settings

    settings.home = home
    settings.database_url = args.database or f"sqlite:///{home / 'handoff.db'}"
    settings.prefect_ui_url = "http://127.0.0.1:9"  # no Prefect: orders are stored, not announced
    from intake_payloads import payloads

    from handoff.core.db import engine

    engine()
    channels = args.channels.split(",")
    run = Run()
    server = client = None
    if "http" in channels:
        import httpx

        from handoff.runtime.intake_api import IntakeServer

        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        server = IntakeServer("127.0.0.1", port, token="bench", announce=False).start()
        client = httpx.Client(timeout=120)
        for _ in range(100):
            try:
                client.get(f"{server.url}/health")
                break
            except httpx.HTTPError:
                time.sleep(0.1)

    turn = Counter()
    started = time.monotonic()

    @hypothesis_settings(
        max_examples=args.payloads,
        deadline=None,
        database=None,
        phases=[Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @given(payload=payloads())
    def one(payload: tuple[str, bytes]) -> None:
        if args.minutes and time.monotonic() - started > args.minutes * 60:
            raise OutOfTime
        kind, raw = payload
        channel = channels[sum(turn.values()) % len(channels)]
        turn[channel] += 1
        run.payloads[channel] += 1
        if channel == "function":
            through_function(run, kind, raw)
        elif channel == "cli":
            through_cli(run, kind, raw, home)
        else:
            through_http(run, kind, raw, client, server.url)
        done = sum(turn.values())
        if done % 500 == 0:
            print(
                f"  {done:,} payloads, {time.monotonic() - started:.0f} s, unhandled {len(run.unhandled)}, "
                f"broken {len(run.broken)}",
                file=sys.stderr,
                flush=True,
            )

    try:
        one()
    except OutOfTime:
        print(f"  stopped after {args.minutes:g} minutes", file=sys.stderr)
    if server is not None:
        server.stop()
    breaking = contract_breaking_orders()
    seconds = time.monotonic() - started

    for line in run.unhandled[:10] + run.broken[:10] + breaking[:10]:
        print(line)
    print(f"channels: {dict(run.payloads)}")
    for name, n in sorted(run.outcomes.items()):
        print(f"  {name}: {n:,}")
    print(f"{seconds:.0f} s")
    total = sum(run.payloads.values())
    shutil.rmtree(home, ignore_errors=True)
    if args.json:
        print(
            json.dumps(
                {
                    "payloads": dict(run.payloads),
                    "outcomes": dict(run.outcomes),
                    "unhandled": run.unhandled,
                    "broken": run.broken,
                    "lost": run.lost,
                    "breaking": breaking,
                    "seconds": seconds,
                }
            )
        )
        return
    print(
        f"payloads {total} · unhandled {len(run.unhandled)} · lost {run.lost} · "
        f"contract-breaking accepted {len(breaking)}"
    )


def in_processes(args: argparse.Namespace) -> None:
    """Share the payloads among child processes, one channel each (round robin), and add up."""
    import json as _json
    import subprocess

    channels = args.channels.split(",")
    # A payload costs the CLI about five times what it costs the function (the HTTP door about
    # twice): the slower doors get fewer payloads, so that the processes end together.
    weight = {"function": 5, "http": 3, "cli": 2}
    plan = [channels[n % len(channels)] for n in range(args.processes)]
    total_weight = sum(weight[c] for c in plan)
    shares = [args.payloads * weight[c] // total_weight for c in plan]
    shares[0] += args.payloads - sum(shares)
    children = []
    for channel, share in zip(plan, shares):
        cmd = [
            sys.executable,
            __file__,
            "--payloads",
            str(share),
            "--channels",
            channel,
            "--json",
            "--minutes",
            str(args.minutes),
        ]
        children.append(subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True))
    started = time.monotonic()
    totals = {"payloads": Counter(), "outcomes": Counter(), "unhandled": [], "broken": [], "lost": 0, "breaking": []}
    for child in children:
        out, _ = child.communicate()
        if child.returncode != 0:
            totals["unhandled"].append(f"a child process ended with {child.returncode}")
            continue
        part = _json.loads(out.strip().splitlines()[-1])
        totals["payloads"].update(part["payloads"])
        totals["outcomes"].update(part["outcomes"])
        for key in ("unhandled", "broken", "breaking"):
            totals[key] += part[key]
        totals["lost"] += part["lost"]
    for line in totals["unhandled"][:10] + totals["broken"][:10] + totals["breaking"][:10]:
        print(line)
    print(f"channels: {dict(totals['payloads'])} in {args.processes} processes")
    for name, n in sorted(totals["outcomes"].items()):
        print(f"  {name}: {n:,}")
    print(f"{time.monotonic() - started:.0f} s")
    print(
        f"payloads {sum(totals['payloads'].values())} · unhandled {len(totals['unhandled'])} · "
        f"lost {totals['lost']} · contract-breaking accepted {len(totals['breaking'])}"
    )


if __name__ == "__main__":
    main()
