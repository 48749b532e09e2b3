"""Replay workloads under the routing policies and measure them; staff for a target.

- engine.py     the discrete-event replay (simpy): dispatch via the live policies, shifts
- results.py    what a replay produced and its metrics (on-time %, lateness, utilisation, ...)
- calendar.py   opening hours / shifts on a local wall clock; "due in N business hours"; --hours
- hours.py      opening hours derived from a log, with checks and fallbacks
- touches.py    touches (START/COMPLETE pairs or intervals) from any log's events, cached
- xes.py        the XES reader (any namespace spelling, lifecycle or interval events)
- csvlog.py     the CSV reader (column mapping, guessed headers)
- eventlog.py   any event log as a workload: SLA/priority/value per activity, touch cap, markers
- bpic2012.py, northwind.py, synthetic.py   the named workloads; workload.py the Workload and teams
- workloads.py  load_workload(name or path): the one entry point
- compare.py    the policy x team-size grid, tables, charts
- smallest.py   staffing by simulation: the smallest team over several team draws

The CLI (`handoff simulate`, `handoff staff`) is in handoff/cli/simulation.py and staffing.py;
queueing formulas (Erlang B/C/A, square-root staffing) in handoff/analytics/staffing.py.
"""
