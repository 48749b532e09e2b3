"""Stand-ins for the systems a sales back office talks to — CRM, provisioning, activation,
billing and a calendar — served over HTTP on localhost with the API shape a real integration
would have, a ledger of side effects, and switchable faults (latency, 5xx, timeouts, down).

Start one in-process with `sandbox.server.start_sandbox()`, or run `python -m sandbox`.
State lives in memory unless HANDOFF_SANDBOX_STATE names a ledger file (see `sandbox.core`).
"""
