"""BPI Challenge 2012 (a Dutch bank's loan applications) as a workload: the log plus our terms.

The log carries no due dates or priorities, so the service levels and priorities below are our
assumption, chosen from what each step means; everything else is the generic event-log
builder (eventlog.py): touches paired per case and activity, capped at 1 h, opening hours
derived from touch starts (Mon-Fri 09-21, Sat 10-17), skill profiles from the employees.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from handoff.analytics.simulation.eventlog import ActivityTerms
from handoff.analytics.simulation.eventlog import LogOptions
from handoff.analytics.simulation.eventlog import eventlog_workload
from handoff.analytics.simulation.eventlog import workload_name
from handoff.analytics.simulation.workload import Workload
from handoff.analytics.simulation.xes import load_touches

# Service levels per work type, in *opening* hours of the derived calendar:
BPIC_SLA_HOURS: dict[str, float] = {
    "W_Afhandelen leads": 4,  # handle a lead: call while the customer is still interested
    "W_Beoordelen fraude": 8,  # assess suspected fraud: within a working day
    "W_Completeren aanvraag": 8,  # complete the application: within a working day
    "W_Nabellen offertes": 12,  # call after an offer was sent: one full opening day
    "W_Nabellen incomplete dossiers": 12,  # call about missing documents: one opening day
    "W_Valideren aanvraag": 24,  # validate the application (long task): two opening days
}
BPIC_DEFAULT_SLA_HOURS = 8.0  # any other work type in a log of the same shape
# Business priority (1 = normal): fraud blocks a loan, a lead goes cold.
BPIC_PRIORITY: dict[str, float] = {"W_Beoordelen fraude": 3.0, "W_Afhandelen leads": 2.0}
BPIC_GLOSSARY = {
    "W_Afhandelen leads": "handle leads",
    "W_Beoordelen fraude": "assess fraud",
    "W_Completeren aanvraag": "complete the application",
    "W_Nabellen offertes": "call after offers",
    "W_Nabellen incomplete dossiers": "call about incomplete files",
    "W_Valideren aanvraag": "validate the application",
}


def bpic_terms(sla_hours: dict[str, float] | None = None) -> dict[str, ActivityTerms]:
    sla = BPIC_SLA_HOURS if sla_hours is None else sla_hours
    return {a: ActivityTerms(sla.get(a), BPIC_PRIORITY.get(a)) for a in set(sla) | set(BPIC_PRIORITY)}


def bpic2012_workload(
    path: str | Path,
    cache_dir: str | Path | None = None,
    interruption_cap_seconds: float = 3600.0,
    sla_hours: dict[str, float] | None = None,
    opening_threshold: float = 0.2,
    min_profile_volume: int = 100,
    min_skill_share: float = 0.05,
    options: LogOptions | None = None,
) -> Workload:
    """BPIC 2012 (or an XES log of the same shape) with the BPIC terms above; `options` (the
    CLI's) override them per activity. Named after the file."""
    opts = (
        replace(options)
        if options is not None
        else LogOptions(
            touch_cap_hours=interruption_cap_seconds / 3600,
            opening_threshold=opening_threshold,
            min_profile_volume=min_profile_volume,
            min_skill_share=min_skill_share,
        )
    )
    opts.terms = {**bpic_terms(sla_hours), **opts.terms}
    if options is None:
        opts.default_sla_hours = BPIC_DEFAULT_SLA_HOURS
    opts.value_words = f"the case's {opts.value_attribute} (requested loan amount)"
    parsed = load_touches(path, cache_dir=cache_dir, value_attribute=opts.value_attribute)
    return eventlog_workload(parsed, workload_name(path), opts, str(path))
