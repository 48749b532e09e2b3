"""The same order id from two intake processes at the same moment: the database decides. One
stores it; the other is told it is a duplicate (same content) or a conflict (quarantined with
what differs), and the rest of its batch is stored as if nothing happened. Real processes,
started together by a barrier, on SQLite and PostgreSQL."""

from __future__ import annotations

import json
import logging
import multiprocessing
from collections import Counter

import pytest
from sqlalchemy import func
from sqlalchemy import select

from handoff.core.db import session
from handoff.core.models import Order
from handoff.core.models import Quarantine

BOTH_DATABASES = pytest.mark.parametrize("db", ["sqlite", "postgres"], indirect=True)
ROUNDS = 12


def an_order(order_id: str, price: float = 18.0) -> dict:
    return {
        "order_id": order_id,
        "customer_id": "ALFKI",
        "order_date": "2024-03-01",
        "due_date": "2024-03-15",
        "customer_name": "Alfreds",
        "lines": [{"product_id": 1, "quantity": 10, "unit_price": price}],
    }


def intake_process(url: str, who: int, barrier, results) -> None:
    """One intake process: for each round, wait for the other, then submit a batch whose first
    order is the contested one (changed content in odd rounds, from process 1)."""
    from handoff.core.settings import settings

    settings.database_url = url
    from handoff.core.db import engine
    from handoff.core.intake import submit_orders

    engine()
    lost = []
    logging.getLogger("handoff.core.intake.door").addHandler(
        type("H", (logging.Handler,), {"emit": lambda self, record: lost.append(record.getMessage())})()
    )
    logging.getLogger("handoff.core.intake.door").setLevel(logging.INFO)
    for r in range(ROUNDS):
        price = 18.0 + (who if r % 2 else 0)
        batch = [an_order(f"X-{r}", price), an_order(f"P{who}-{r}-a"), an_order(f"P{who}-{r}-b")]
        barrier.wait(timeout=60)
        try:
            result = submit_orders([(json.dumps(o), o) for o in batch], source=f"process-{who}", announce=False)
            results.put(
                (
                    who,
                    r,
                    result.accepted,
                    result.duplicates,
                    [(q.reference, [x["field"] for x in q.reasons]) for q in result.quarantined],
                    None,
                )
            )
        except Exception as exc:  # noqa: BLE001 - the very thing this test is about: report it
            results.put((who, r, [], [], [], f"{type(exc).__name__}: {exc}"))
    results.put((who, "races lost to the database", len(lost)))


@BOTH_DATABASES
def test_two_processes_submitting_one_order_id_at_once(db):
    ctx = multiprocessing.get_context("spawn")
    barrier, results = ctx.Barrier(2), ctx.Queue()
    procs = [ctx.Process(target=intake_process, args=(db, who, barrier, results)) for who in (0, 1)]
    for p in procs:
        p.start()
    outcomes = [results.get(timeout=180) for _ in range(2 * ROUNDS + 2)]
    for p in procs:
        p.join(timeout=30)
        assert p.exitcode == 0

    errors = [o[5] for o in outcomes if len(o) == 6 and o[5]]
    assert errors == []
    by_round: dict[int, list] = {}
    for o in outcomes:
        if len(o) == 6:
            by_round.setdefault(o[1], []).append(o)
    for r, pair in by_round.items():
        contested = f"X-{r}"
        winners = [o for o in pair if contested in o[2]]
        assert len(winners) == 1, pair  # stored exactly once
        loser = next(o for o in pair if o is not winners[0])
        if r % 2 == 0:
            assert loser[3] == [contested] and loser[4] == []  # same content: a duplicate
        else:
            [(reference, fields)] = loser[4]  # changed content: a conflict, showing the price
            assert reference == contested and fields == ["order_id", "lines.0.unit_price"]
        for who, _, accepted, _, _, _ in pair:  # the rest of each batch is unaffected
            assert f"P{who}-{r}-a" in accepted and f"P{who}-{r}-b" in accepted

    with session() as s:
        assert s.scalar(select(func.count()).select_from(Order)) == ROUNDS * 5
        assert s.scalar(select(func.count()).select_from(Quarantine)) == ROUNDS // 2
        sources = Counter(s.scalars(select(Order.source).where(Order.id.like("X-%"))))
        assert sum(sources.values()) == ROUNDS
    races = {o[0]: o[2] for o in outcomes if len(o) == 3}
    print(f"{db.split(':')[0]}: inserts that lost to the other process's, then looked again: {races}")
