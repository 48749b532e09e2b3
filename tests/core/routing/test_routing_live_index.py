"""The live index: each router process decides from memory, kept in step with the database by
the change counter. What another process commits is seen within one refresh; a stale index
can lose a claim but never hands out work the database would refuse; rolled-back work is not
lost from the index; every writer is stamped, even raw SQL."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy import text
from sqlalchemy import update

from handoff.core.db import session
from handoff.core.models import Worker
from handoff.core.models import WorkItem
from handoff.core.models import WorkItemState
from handoff.core.routing import assign
from handoff.core.routing import changes
from handoff.core.routing import live
from handoff.core.routing import router

ROOT = Path(__file__).resolve().parents[3]
BOTH_DATABASES = pytest.mark.parametrize("db", ["sqlite", "postgres"], indirect=True)
# The index reads committed rows on its own connection, and other processes write: real commits.
pytestmark = [BOTH_DATABASES, pytest.mark.committed]


def in_another_process(url: str, code: str) -> str:
    """Run `code` in a fresh Python process on the same database (its own index, its own
    connections), committed when it ends; returns what it printed."""
    script = (
        "from handoff.core.settings import settings\n"
        f"settings.database_url = {url!r}\n"
        "from handoff.core.db import session\n"
        "from handoff.core.routing import router\n" + code
    )
    env = {
        **os.environ,
        "HANDOFF_DATABASE_URL": url,
        "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""),
    }
    done = subprocess.run(
        [sys.executable, "-c", script], check=False, env=env, cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


@pytest.fixture
def stale(monkeypatch):
    """Indexes that refresh only when a lost claim forces them (or when told)."""
    monkeypatch.setattr(live, "MAX_STALENESS", 3600.0)
    live.forget_indexes()
    yield
    live.forget_indexes()


def committed(routing_db, now, reps: dict[str, dict[str, int]], items: int = 0) -> tuple[dict[str, int], list[int]]:
    from handoff.core.models import WorkerSkill

    with session() as s:
        workers = {
            name: Worker(name=name, capacity=3, skills=[WorkerSkill(skill=k, level=v) for k, v in skills.items()])
            for name, skills in reps.items()
        }
        s.add_all(workers.values())
        made = [
            WorkItem(
                work_type="order-approval",
                step_key=f"live-{k}",
                title=f"item {k}",
                required_skills={"order-approval": 1},
                created_at=now,
                due_at=now + timedelta(hours=1 + k),
                effort_seconds=600,
            )
            for k in range(items)
        ]
        s.add_all(made)
        s.flush()
        return {n: w.id for n, w in workers.items()}, [it.id for it in made]


def test_a_change_committed_by_another_process_is_seen_within_one_refresh(routing_db, now, stale):
    ids, _ = committed(routing_db, now, {"ann": {"order-approval": 2}})
    with session() as s:
        index = live.index_for(s)
    index.at(now)
    assert index.rep(ids["ann"]).available and len(index.items) == 0
    in_another_process(
        routing_db,
        f"""
from datetime import datetime
from handoff.core.models import WorkItem
with session() as s:
    router.set_presence(s, "ann", "offline", datetime.fromisoformat({now.isoformat()!r}))
    s.add(WorkItem(work_type="credit-review", step_key="elsewhere", title="made elsewhere",
                   required_skills={{"credit-review": 2}}, created_at=datetime.fromisoformat({now.isoformat()!r}),
                   due_at=datetime.fromisoformat({now.isoformat()!r}), effort_seconds=300))
""",
    )
    before = index.refreshes
    index.refresh()  # a stale index does not look by itself...
    assert index.refreshes == before
    index.refresh(force=True)  # ...one refresh sees both changes
    assert index.refreshes == before + 1
    assert not index.rep(ids["ann"]).available
    assert [(it.work_type, it.required_skills) for it in index.items] == [("credit-review", {"credit-review": 2})]


def test_a_rep_who_went_offline_in_another_process_is_not_handed_work_after_the_refresh(
    routing_db, now, stale, monkeypatch
):
    ids, (item_id,) = committed(routing_db, now, {"ann": {"order-approval": 1}, "bob": {"order-approval": 4}}, 1)
    with session() as s:
        index = live.index_for(s)
    in_another_process(
        routing_db,
        f"""
from datetime import datetime
with session() as s:
    router.set_presence(s, "ann", "offline", datetime.fromisoformat({now.isoformat()!r}))
""",
    )
    index.refresh(force=True)
    tried = []
    real_claim = assign.claim
    monkeypatch.setattr(assign, "claim", lambda s, i, v, w, *rest: tried.append(w) or real_claim(s, i, v, w, *rest))
    with session() as s:
        # ann is the better fit (least over-qualified), but the index knows she left: no claim is tried for her
        assert router.route_item(s, item_id, now).name == "bob"
    assert tried == [ids["bob"]]


def test_a_stale_index_loses_the_claim_then_refreshes_and_takes_the_next_choice(routing_db, now, stale):
    ids, (first, second) = committed(routing_db, now, {"ann": {"order-approval": 1}, "bob": {"order-approval": 1}}, 2)
    with session() as s:
        index = live.index_for(s)
    # another process gives the most urgent item to one of them; this index has not seen it
    out = in_another_process(
        routing_db,
        f"""
from datetime import datetime
with session() as s:
    print(router.route_item(s, {first}, datetime.fromisoformat({now.isoformat()!r})).name)
""",
    )
    (holder,) = out.split()
    other = "bob" if holder == "ann" else "ann"
    assert first in [int(i.id) for i in index.items]  # stale: still believes it open
    before = index.refreshes
    with session() as s:
        got = router.route_for_worker(s, ids[other], now)
        assert [a.item_id for a in got] == [second]
    assert index.refreshes > before  # it lost the claim on `first`, caught up, took the next
    with session() as s:
        assert s.get(WorkItem, first).assignee_id == ids[holder]  # never assigned twice
        assert s.get(WorkItem, second).assignee_id == ids[other]
        assert s.get(Worker, ids["bob"]).open_items == 1 and s.get(Worker, ids["ann"]).open_items == 1
    assert first not in [int(i.id) for i in index.items]  # the loser refreshed


def test_a_watch_round_on_a_stale_index_loses_its_claims_catches_up_and_assigns_the_rest(routing_db, now, stale):
    """The round decides in memory and claims in batches: behind this index's back one item is
    finished and one rep goes offline. The round's claims on them fail, it catches up, and the
    rest is assigned once each, within capacity, to reps who are there."""
    ids, items = committed(routing_db, now, {"ann": {"order-approval": 1}, "bob": {"order-approval": 1}}, 5)
    with session() as s:
        index = live.index_for(s)
    index.at(now)
    assert len(index.items) == 5 and index.rep(ids["bob"]).available
    done_elsewhere = items[0]  # the most urgent: the round would hand it out first
    in_another_process(
        routing_db,
        f"""
from datetime import datetime
from handoff.core.models import WorkItem
with session() as s:
    router.set_presence(s, "bob", "offline", datetime.fromisoformat({now.isoformat()!r}))
    s.get(WorkItem, {done_elsewhere}).state = "cancelled"
""",
    )
    before = index.refreshes
    with session() as s:
        got = router.route_open_items(s, now)
    assert index.refreshes > before  # lost claims forced a catch-up
    # ann's 3 places are filled, each once, never with the finished item; bob, offline, gets none.
    # (Which 3: the first pass planned some of the open items for bob, so the index could not
    # have known which of them ann would be left to take; a fresh index plans as the database is.)
    mine = {a.item_id for a in got}
    assert len(got) == 3 and {a.worker for a in got} == {"ann"} and done_elsewhere not in mine
    with session() as s:
        assert s.get(Worker, ids["ann"]).open_items == 3 and s.get(Worker, ids["bob"]).open_items == 0
        states = {i: (s.get(WorkItem, i).state, s.get(WorkItem, i).assignee_id) for i in items}
    assert states[done_elsewhere] == ("cancelled", None)
    assert {i for i, st in states.items() if st == ("assigned", ids["ann"])} == mine
    assert [st for i, st in states.items() if i not in mine and i != done_elsewhere] == [("open", None)]


def test_bulk_claims_and_escalations_elsewhere_are_seen_whole_within_one_refresh(routing_db, now, stale):
    """A watch round claims and escalates a statement at a time, stamping the rows itself (on
    SQLite one new stamp per statement, not the row trigger's one per row): an index in another
    process sees every row it changed after one refresh. Each kind of write is checked on its
    own, after the index has seen everything before it: a write that stamped its rows with a
    value already seen would be missed for ever."""
    ids, items = committed(routing_db, now, {"ann": {"order-approval": 1}, "bob": {"order-approval": 1}}, 8)
    with session() as s:
        index = live.index_for(s)
    index.at(now)

    def elsewhere(call: str) -> list[int]:
        told = in_another_process(
            routing_db,
            f"""
import json
from datetime import datetime
from handoff.core.routing import watch
with session() as s:
    print(json.dumps([done.item_id for done in {call}(s, datetime.fromisoformat({now.isoformat()!r}))]))
""",
        )
        return json.loads(told)

    def as_stored() -> tuple[dict, int]:
        with session() as s:
            rows = s.execute(select(WorkItem.id, WorkItem.state, WorkItem.assignee_id, WorkItem.escalated))
            counter = s.execute(changes.COUNTER[s.get_bind().dialect.name]).scalar_one()
            return {row.id: (str(row.state), row.assignee_id, row.escalated) for row in rows}, counter

    def as_indexed() -> dict:
        return {i: (row.state, row.assignee_id, row.escalated) for i, row in index.active.items()}

    _, before = as_stored()
    assigned = elsewhere("router.route_open_items")
    index.refresh(force=True)
    stored, after = as_stored()
    assert len(assigned) == 6 and as_indexed() == stored  # ann and bob: 3 places each
    assert {i for i, (state, *_) in stored.items() if state == "assigned"} == set(assigned)
    assert {index.rep(w).open_items for w in ids.values()} == {3}
    if routing_db.startswith("sqlite"):  # stamped in bulk, not row by row
        assert after - before < len(assigned)

    urgent = items[-3:]  # due in minutes: near breach
    with session() as s:
        s.execute(
            update(WorkItem)
            .where(WorkItem.id.in_(urgent))
            .values(created_at=now - timedelta(days=2), due_at=now + timedelta(minutes=5))
        )
    index.refresh(force=True)
    _, before = as_stored()
    escalated = elsewhere("watch.escalate_near_breach")
    index.refresh(force=True)
    stored, after = as_stored()
    assert sorted(escalated) == sorted(urgent) and as_indexed() == stored
    assert {i for i, (*_, flagged) in stored.items() if flagged} == set(urgent)
    if routing_db.startswith("sqlite"):
        assert after - before < len(urgent)


def test_work_claimed_in_a_transaction_that_rolls_back_stays_open_in_the_index(routing_db, now):
    ids, (item_id,) = committed(routing_db, now, {"ann": {"order-approval": 1}}, 1)
    with pytest.raises(RuntimeError), session() as s:
        assert router.route_item(s, item_id, now).name == "ann"
        raise RuntimeError("the step failed after routing")
    with session() as s:
        assert s.get(WorkItem, item_id).state == WorkItemState.OPEN
        assert router.route_for_worker(s, ids["ann"], now)[0].item_id == item_id  # the index still offers it


def test_a_transaction_that_decides_again_sees_its_own_changes_and_reads_only_what_it_stamped_since(routing_db, now):
    """sla-watch's steps, or a loser's retry, decide more than once in one transaction: what it
    changed earlier stays as it sees it (not the older committed rows), and what it changes
    next is read on top."""
    ids, (first, second, third) = committed(routing_db, now, {"ann": {"order-approval": 1}}, 3)
    with session() as s:
        assert router.route_item(s, first, now).name == "ann"
        index = live.index_for(s)
        index.renew(s)  # as the next decision starts: a refresh from committed state, its own rows on top
        own = index.own_rows
        assert own is not None and own.items == {first} and own.workers == {ids["ann"]}
        stamp = own.item_stamp
        s.execute(text("UPDATE work_items SET state = 'cancelled' WHERE id = :id"), {"id": second})
        index.renew(s)
        assert index.own_rows is own and own.items == {first, second} and own.item_stamp > stamp
        assert index.active[first].state == "assigned" and index.rep(ids["ann"]).open_items == 1
        assert second not in index.active and str(second) not in index.items
        assert [a.item_id for a in assign.route_for_worker(s, ids["ann"], now)] == [third]
        assert index.rep(ids["ann"]).open_items == 2
    with session() as s:  # committed: a new transaction reads the rows afresh
        index = live.index_for(s)
        index.renew(s)
        assert index.own_rows is None
        assert (index.active[first].state, index.active[third].state, second in index.active) == (
            "assigned",
            "assigned",
            False,
        )


def test_a_decision_in_a_savepoint_that_rolls_back_leaves_the_index_as_the_transaction_sees_it(routing_db, now):
    ids, (first, second) = committed(routing_db, now, {"ann": {"order-approval": 1}}, 2)
    with session() as s:
        assert router.route_item(s, first, now).name == "ann"
        savepoint = s.begin_nested()
        assert router.route_item(s, second, now).name == "ann"
        savepoint.rollback()
        index = live.index_for(s)
        index.renew(s)
        assert index.active[first].state == "assigned" and index.active[second].state == "open"
        assert index.rep(ids["ann"]).open_items == 1
        assert [a.item_id for a in assign.route_for_worker(s, ids["ann"], now)] == [second]


def test_a_reader_in_another_transaction_meanwhile_does_not_leave_the_deciding_one_a_stale_view(routing_db, now):
    """The index is shared by the process: a worklist read (another session, no routing turn)
    refreshes it from committed state in the middle of a transaction that has claimed work. The
    deciding transaction's next decision must still see its own claims, not the committed rows."""
    ids, (first, second) = committed(routing_db, now, {"ann": {"order-approval": 1}}, 2)
    with session() as deciding:
        assert router.route_item(deciding, first, now).name == "ann"
        index = live.index_for(deciding)
        index.renew(deciding)
        mine = index.own_rows
        assert mine is not None and first in mine.items
        with session() as reading:
            index.renew(reading)  # the committed rows: `first` still open there
            assert index.own_rows is not mine and index.active[first].state == "open"
        index.renew(deciding)
        assert index.active[first].state == "assigned" and index.rep(ids["ann"]).open_items == 1
        assert [a.item_id for a in assign.route_for_worker(deciding, ids["ann"], now)] == [second]
    with session() as s:
        assert {i: s.get(WorkItem, i).state for i in (first, second)} == {
            first: WorkItemState.ASSIGNED,
            second: WorkItemState.ASSIGNED,
        }
        assert s.get(Worker, ids["ann"]).open_items == 2


def test_every_writer_is_stamped_even_raw_sql(routing_db, now, stale):
    ids, (item_id,) = committed(routing_db, now, {"ann": {"order-approval": 1}}, 1)
    with session() as s:
        index = live.index_for(s)
    with session() as s:
        s.execute(text("UPDATE workers SET capacity = 7 WHERE name = 'ann'"))
        s.execute(text("UPDATE work_items SET priority = 5 WHERE id = :id"), {"id": item_id})
        s.execute(text("UPDATE worker_skills SET level = 4 WHERE worker_id = :id"), {"id": ids["ann"]})
    index.refresh(force=True)
    assert index.rep(ids["ann"]).capacity == 7 and index.rep(ids["ann"]).skills == {"order-approval": 4}
    assert index.items.get(str(item_id)).priority == 5
    with session() as s:
        stamps = s.execute(select(Worker.change_seq).union_all(select(WorkItem.change_seq))).scalars().all()
    assert len(set(stamps)) == len(stamps) and min(stamps) > 0


def test_a_database_without_the_change_triggers_is_refused(routing_db, request):
    if "sqlite" not in routing_db:
        pytest.skip("SQLite only: a rebuilt table (batch migration) loses its triggers there")
    with session() as s:
        s.execute(text("DROP TRIGGER work_items_stamp_update"))
    live.forget_indexes()
    with session() as s, pytest.raises(changes.IndexNotInStep):
        live.index_for(s)


def test_a_skill_change_committed_elsewhere_is_seen_and_ranks_the_rep_afresh(routing_db, now, stale):
    ids, _ = committed(routing_db, now, {"ann": {"order-approval": 1}, "bob": {}})
    with session() as s:
        index = live.index_for(s)
    index.at(now)
    assert index.rep(ids["ann"]).skills == {"order-approval": 1} and index.rep(ids["bob"]).skills == {}
    ranked = [r.id for _, _, r in live.POLICY.ranked_reps(index.reps, {"credit-review": 2})]
    assert ranked == []
    in_another_process(  # training: ann levels up, bob learns a skill (raw SQL: the triggers stamp them)
        routing_db,
        f"""
from sqlalchemy import text
with session() as s:
    s.execute(text("UPDATE worker_skills SET level = 3 WHERE worker_id = {ids["ann"]}"))
    s.execute(text("INSERT INTO worker_skills (worker_id, skill, level) VALUES ({ids["bob"]}, 'credit-review', 2)"))
""",
    )
    index.refresh(force=True)
    assert index.rep(ids["ann"]).skills == {"order-approval": 3}
    assert index.rep(ids["bob"]).skills == {"credit-review": 2}
    ranked = [r.id for _, _, r in live.POLICY.ranked_reps(index.reps, {"credit-review": 2})]
    assert ranked == [str(ids["bob"])]


def test_a_large_index_is_frozen_out_of_the_cyclic_collector_and_a_small_one_is_not(routing_db, now, monkeypatch):
    import gc

    committed(routing_db, now, {"ann": {"order-approval": 1}}, items=3)
    gc.unfreeze()
    try:
        live.forget_indexes()
        with session() as s:
            live.index_for(s)
        assert gc.get_freeze_count() == 0  # 4 rows: not worth a full collection at load
        monkeypatch.setattr(live, "FREEZE_FROM", 4)
        live.forget_indexes()
        with session() as s:
            index = live.index_for(s)
        assert gc.get_freeze_count() > 0 and len(index.active) == 3
    finally:
        gc.unfreeze()
        live.forget_indexes()


def test_a_rep_with_less_room_than_a_stale_index_thinks_gets_exactly_the_room_left(routing_db, now, stale):
    ids, _ = committed(routing_db, now, {"ann": {"order-approval": 1}}, items=4)  # capacity 3
    with session() as s:
        live.index_for(s)  # loaded: three places free
    in_another_process(  # two of them taken elsewhere; this index does not look by itself
        routing_db,
        f"""
from sqlalchemy import text
with session() as s:
    s.execute(text("UPDATE workers SET open_items = 2 WHERE id = {ids["ann"]}"))
""",
    )
    with session() as s:
        got = router.route_for_worker(s, ids["ann"], now)
    assert len(got) == 1  # the claim for three lost, the index caught up, the one place filled
    with session() as s:
        assert s.get(Worker, ids["ann"]).open_items == 3
        held = s.scalars(select(WorkItem.id).where(WorkItem.assignee_id == ids["ann"])).all()
    assert held == [got[0].item_id]


def test_a_reading_connection_the_server_dropped_is_replaced_and_the_change_still_read(routing_db, now, stale):
    # The index keeps its reading connection between refreshes, unpinged: when the server drops
    # it (a restart, an idle timeout; here its backend is terminated, or on SQLite it is closed
    # under the index) the refresh opens another and reads the change all the same.
    ids, _ = committed(routing_db, now, {"ann": {"order-approval": 2}})
    with session() as s:
        index = live.index_for(s)
    index.refresh(force=True)
    dropped = index.reader.kept
    assert dropped is not None
    if routing_db.startswith("postgresql"):
        backend = dropped.connection.driver_connection.info.backend_pid
        with session() as s:
            assert s.scalar(text("SELECT pg_terminate_backend(:pid)"), {"pid": backend})
    else:
        dropped.connection.driver_connection.close()
    index.dirty_workers.add(ids["ann"])  # a row this process changed: must still be re-read
    with session() as s:
        router.set_presence(s, "ann", "offline", now)
    index.refresh(force=True)
    assert index.reader.kept is not dropped
    assert not index.rep(ids["ann"]).available and not index.dirty_workers


def test_a_forked_process_reads_on_a_connection_of_its_own(routing_db, now, stale, monkeypatch):
    ids, _ = committed(routing_db, now, {"ann": {"order-approval": 2}})
    with session() as s:
        index = live.index_for(s)
    index.refresh(force=True)
    parents = index.reader.kept
    monkeypatch.setattr(changes.os, "getpid", lambda: -1)  # as a forked child sees itself
    with session() as s:
        router.set_presence(s, "ann", "offline", now)
    index.refresh(force=True)
    assert index.reader.kept is not parents and index.reader.inherited == [parents]
    assert not parents.closed  # the parent's socket is left alone
    assert not index.rep(ids["ann"]).available
    index.reader.inherited.clear()  # here the "parent" is this process: close it now
    parents.invalidate()
