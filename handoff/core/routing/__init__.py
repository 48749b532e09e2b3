"""Work routing: every human step is a work item, pushed to the right person.

- policy.py       the three policies (push / fifo / self-selection), shared with the simulator
- urgency.py      the urgency score (apparent tardiness cost + aging), scalar and vectorised
- eligibility.py  skills at level, shifts and time zones: who may take what, and when
- index.py        ItemPool / RepPool / RoutingIndex: fast decisions over thousands of items
- router.py       the live, database-backed router (assign, complete, start, presence, reclaim)
- watch.py        the SLA watch's steps (re-score, escalate, reclaim, route); flows/sla_watch.py
- worklist.py     a rep's items, most urgent first, with links to their waiting flow runs
- commands.py     the CLI: workers, presence, worklist (mounted by handoff/cli.py)
"""
