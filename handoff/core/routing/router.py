"""The live router: pushes open work items to reps, backed by the database.

One import for the callers (flows, tasks, the CLI, the runtime); the work is done in:

- assign.py      routing decisions: `route_item`, `route_for_worker`, `route_open_items`
- lifecycle.py   the rep's side: `complete_item`, `start_item`, `set_presence`, `reclaim_item`,
                 `hand_back_work_beyond_skills`
- claims.py      the hand-over the database arbitrates (conditional UPDATEs), the routing lock
- live.py        the in-memory index each process decides from, kept in step by a change counter
- readmodel.py   rows translated into what the policy sees

Nobody gets an item twice, however many routers run: every hand-over is a conditional UPDATE
whose row count says who won; a router whose index was stale loses the claim and tries its
next choice. "Available now" = presence available and inside the worker's shift (their time
zone, shift hours and work days). Supervisors are routed work like anyone else with spare
capacity; being the most skilled, the least-over-qualified rule keeps them for the work only
they can do (set a supervisor's capacity to 0 to keep them out of routing entirely).
"""

from __future__ import annotations

from handoff.core.clock import epoch
from handoff.core.routing.assign import Assignment
from handoff.core.routing.assign import route_for_worker
from handoff.core.routing.assign import route_item
from handoff.core.routing.assign import route_open_items
from handoff.core.routing.claims import ACTIVE
from handoff.core.routing.claims import ROUTER
from handoff.core.routing.claims import ROUTING_LOCK
from handoff.core.routing.claims import Claim
from handoff.core.routing.claims import NotAllowed
from handoff.core.routing.claims import UnknownWorker
from handoff.core.routing.claims import one_router_at_a_time
from handoff.core.routing.lifecycle import AlreadyCompleted
from handoff.core.routing.lifecycle import PresenceChange
from handoff.core.routing.lifecycle import check_may_complete
from handoff.core.routing.lifecycle import complete_item
from handoff.core.routing.lifecycle import hand_back_work_beyond_skills
from handoff.core.routing.lifecycle import reclaim_item
from handoff.core.routing.lifecycle import set_presence
from handoff.core.routing.lifecycle import start_item
from handoff.core.routing.live import POLICY
from handoff.core.routing.readmodel import as_routable_item
from handoff.core.routing.readmodel import as_routable_rep
from handoff.core.routing.readmodel import available_now

__all__ = [
    "ACTIVE",
    "POLICY",
    "ROUTER",
    "ROUTING_LOCK",
    "AlreadyCompleted",
    "Assignment",
    "Claim",
    "NotAllowed",
    "PresenceChange",
    "UnknownWorker",
    "as_routable_item",
    "as_routable_rep",
    "available_now",
    "check_may_complete",
    "complete_item",
    "epoch",
    "hand_back_work_beyond_skills",
    "one_router_at_a_time",
    "reclaim_item",
    "route_for_worker",
    "route_item",
    "route_open_items",
    "set_presence",
    "start_item",
]
