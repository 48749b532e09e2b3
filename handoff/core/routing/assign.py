"""Routing decisions: who gets which open item, decided from the live index (live.py) and
made real by the database's conditional UPDATEs (claims.py).

- `route_item`         an item was created (or released): give it to the best eligible rep now.
- `route_for_worker`   a rep freed capacity or came online: give them the most urgent items
                       they may do, until they are full.
- `route_open_items`   every open item that has an eligible free rep gets one, most urgent first
                       (sla-watch runs this every minute).

Who gets what is the push policy's (policy.py: urgency orders the work, the least
over-qualified free rep gets it). A decision that loses its claim (another process got there
first, or the index was stale) re-reads what changed and tries the next choice.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime

import numpy as np
from sqlalchemy.orm import Session

from handoff.core.clock import as_utc_naive
from handoff.core.clock import epoch
from handoff.core.models import WorkItem
from handoff.core.models import WorkItemState
from handoff.core.models import utcnow
from handoff.core.routing.claims import Claim
from handoff.core.routing.claims import assignment_event
from handoff.core.routing.claims import claim
from handoff.core.routing.claims import claim_many
from handoff.core.routing.claims import claim_round
from handoff.core.routing.claims import one_router_at_a_time
from handoff.core.routing.claims import record_events
from handoff.core.routing.live import OPEN
from handoff.core.routing.live import POLICY
from handoff.core.routing.live import LiveIndex
from handoff.core.routing.live import index_for
from handoff.core.routing.readmodel import as_routable_item
from handoff.core.routing.routable import RoutableRep

MAX_LOST_CLAIMS = 50  # a decision that keeps losing gives up (the next event or watch round retries)


@dataclass(frozen=True, slots=True)
class Assignee:
    """Who an item was pushed to (read from the index: the caller needs no ORM object for it)."""

    id: int
    name: str


@contextmanager
def routing_turn(s: Session, now: datetime | None) -> Iterator[tuple[datetime, float, LiveIndex]]:
    """Every decision starts so: the router's turn in the database, then this process's index
    as the caller's transaction sees it at `now` (given as naive UTC and epoch seconds)."""
    one_router_at_a_time(s)
    at = as_utc_naive(now or utcnow())
    index = index_for(s)
    with index.session_view(s, at):
        yield at, epoch(at), index


def route_item(s: Session, item_id: int, now: datetime | None = None) -> Assignee | None:
    """Push one open item to the best eligible rep now; None if nobody can take it yet."""
    with routing_turn(s, now) as (now, t, index):
        row = index.active.get(item_id)
        known = row is not None and row.state == OPEN
        for _ in range(MAX_LOST_CLAIMS):
            if not known or row is None:  # not open in the index, or the index was wrong: ask the database
                item = s.get(WorkItem, item_id, populate_existing=True)
                if item is None or item.state != WorkItemState.OPEN:
                    return None
                routable, version, known = as_routable_item(item), item.version, True
            else:
                routable, version = row.routable, row.version
            rep = POLICY.rep_for(routable, index.reps, t)
            if rep is None:
                return None
            result = claim(
                s, item_id, version, int(rep.id), now, assignment_event(item_id, rep, "new or released item")
            )
            if result is Claim.TAKEN:
                index.took(item_id, int(rep.id), t)
                return Assignee(int(rep.id), rep.extra["name"])
            if result is Claim.ITEM_GONE:
                index.lost_item(item_id)
                index.renew(s)  # the loser catches up before its next choice
                if row is None:
                    return None  # it was read from the database just now: it is taken
                row = None
                known = False
                continue
            index.lost_rep(int(rep.id))
            index.renew(s)
    return None


@dataclass(slots=True)
class Assignment:
    """One item pushed to a rep, with the urgency that ranked it."""

    item_id: int
    worker: str
    urgency: float


def route_for_worker(s: Session, worker_id: int, now: datetime | None = None) -> list[Assignment]:
    """Fill a rep's spare capacity with the most urgent open items they may do (none unless
    they are on shift, available and have room, as the index sees them under the router lock)."""
    taken: list[Assignment] = []
    with routing_turn(s, now) as (now, t, index):
        rep = index.rep(worker_id)
        if rep is None or not rep.available or rep.spare <= 0:
            return []
        for _ in range(MAX_LOST_CLAIMS):
            # The rep's next items, in the order the policy hands them out one by one (each
            # leaves the pool before the next is chosen), then claimed together.
            picks = [(int(item.id), score) for item, score in POLICY.items_for(rep, index.items, t, rep.spare)]
            if not picks:
                break
            claimed = claim_many(
                s,
                worker_id,
                [(i, index.active[i].version) for i, _ in picks],
                now,
                [assignment_event(i, rep, "rep has spare capacity", score) for i, score in picks],
            )
            won = set(claimed or ())  # None: less room than the index thought (or gone)
            for item_id, score in picks:
                if item_id in won:
                    index.took(item_id, worker_id, t)
                    taken.append(Assignment(item_id, rep.extra["name"], score))
                else:
                    index.lost_item(item_id)  # stays open: read again at the catch-up below
            if claimed is None:
                index.lost_rep(worker_id)
            elif len(won) == len(picks):
                break
            index.renew(s)  # lost some or all: catch up, then fill the room that is left
            rep = index.rep(worker_id)
            if rep is None or not rep.available or rep.spare <= 0:
                break
    return taken


def route_open_items(s: Session, now: datetime | None = None) -> list[Assignment]:
    """Give every open item that has an eligible free rep to one, most urgent first.

    The round is decided in memory first (each pick leaves the index, so the next sees the
    rep's place taken, exactly as one claim after another would) and then claimed in batches
    (`claim_round`). Under the routing turn the refreshed index is the database's own state,
    so the claims all hold and the round hands out exactly what one claim after another would.
    A stale index (`live.MAX_STALENESS`) loses some: the round keeps what it won (each a valid
    hand-over, though planned beside picks that failed), catches up, and decides again for
    what is left."""
    done: list[Assignment] = []
    events: list[dict] = []
    with routing_turn(s, now) as (now, t, index):
        for _ in range(MAX_LOST_CLAIMS):
            plan = _decide_round(index, t)
            if not plan:
                break
            taken, full = claim_round(s, [(item_id, version, int(rep.id)) for item_id, version, rep, _ in plan], now)
            for item_id, _, rep, score in plan:
                if taken.get(item_id) == int(rep.id):
                    events.append(assignment_event(item_id, rep, "open item, eligible rep free", score))
                    done.append(Assignment(item_id, rep.extra["name"], score))
                elif int(rep.id) not in full:
                    index.lost_item(item_id)  # changed meanwhile: read again at the catch-up
            for worker_id in full:
                index.lost_rep(worker_id)
            if len(taken) == len(plan):
                break
            index.renew(s)
    record_events(s, events)
    return done


def _decide_round(index: LiveIndex, t: float) -> list[tuple[int, int, RoutableRep, float]]:
    """(item id, version, rep, urgency) for every open item an eligible free rep can take now,
    most urgent first; each pick is applied to the index (`took`) before the next is chosen."""
    plan: list[tuple[int, int, RoutableRep, float]] = []
    free = sum(r.spare for r in index.reps if r.available and r.spare > 0)
    if free <= 0 or not len(index.items):
        return plan
    slots, scores = index.open_scores(t)
    c = index.items.columns
    order = np.lexsort((c.created_at[slots], c.due_at[slots], -scores))
    kinds = c.signature[slots]
    exhausted: set[int] = set()  # kinds of work (signature ids) no free rep can take this round
    open_kinds = len(set(kinds.tolist()))
    full_heads: dict = {}  # per kind of work, the reps at the head of its ranking found full
    for i, kind in zip(order.tolist(), kinds[order].tolist()):
        if free <= 0 or len(exhausted) == open_kinds:
            break
        if kind in exhausted:
            continue
        item = index.items.item_at(int(slots[i]))
        rep = POLICY.rep_in_round(item, index.reps, full_heads)
        if rep is None:
            exhausted.add(kind)
            continue
        item_id = int(item.id)
        plan.append((item_id, index.active[item_id].version, rep, float(scores[i])))
        index.took(item_id, int(rep.id), t)
        free -= 1
    return plan
