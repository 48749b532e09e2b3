"""Replay workloads under the routing policies and measure them; staff for a target.

- engine.py     the discrete-event replay (simpy): dispatch via the live policies, shifts, metrics
- calendar.py   opening hours / shifts on a local wall clock; "due in N business hours"
- xes.py        touches (START/COMPLETE pairs) from an XES event log, cached
- workloads.py  BPIC 2012, Northwind and synthetic workloads, and how teams are drawn
- compare.py    the policy x team-size grid, tables, charts, staffing by simulation
- commands.py   the CLI: `simulate` and `staff` (register(app) from handoff/cli.py)

Queueing formulas (Erlang B/C/A, square-root staffing) live in handoff/staffing.py.
"""
