"""Work routing: every human step is a work item, pushed to the right person.

- policy.py       the push policy, and make_policy for all three; shared with the simulator
- baselines.py    the fifo and self-selection policies push is measured against
- routable.py     RoutableItem / RoutableRep: the work and the people as the policies see them
- candidates.py   who may take what now, and the tie-break every policy shares
- scarce_skills.py  how scarce the team's skills are (push's two team rules)
- urgency.py      the urgency score (apparent tardiness cost + aging), scalar and vectorised
- eligibility.py  skills at level: who may take what (shifts and time zones: handoff.core.clock)
- index.py        ItemPool / RepPool / RoutingIndex: fast decisions over thousands of items
- live.py         each process's index of the database, kept in step by a change counter
- changes.py      what a refresh of that index reads: the rows changed since it last looked
- readmodel.py    database rows as the policies see them
- claims.py       the hand-over the database arbitrates (conditional UPDATEs), the routing lock
- assign.py       routing decisions: route_item, route_for_worker, route_open_items
- lifecycle.py    the rep's side: complete, start, presence, reclaim
- router.py       one import for callers: everything above that other code calls
- watch.py        the SLA watch's steps (re-score, escalate, reclaim, route); flows/sla_watch.py
- worklist.py     a rep's items, most urgent first (the router's urgency), with links to their runs
"""
