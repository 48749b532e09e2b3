"""The work-type registry: every kind of human step, declared once.

A work type is a kind of decision a flow asks a person for (an order approval, a technician's
visit report, a sign-off). Everything the back office knows about one is in its entry below:

    name            the key flows use: `HumanStep(work_type="order-approval", ...)`
    form            the class in checklists/forms.py the person fills in
    sla_hours       business hours from creation to due (handoff.core.sla; HANDOFF_SLA_CONFIG
                    may override it per installation)
    effort_minutes  the effort assumed until enough completed items exist to learn it
    skill, level    who does this work: the skill and the minimum level a step of this type
                    requires unless its flow asks for more (order approval asks level 3 for
                    very large orders; a checklist fix names the skill of the failed stage)
    team            whose queue it is in the work-in-progress review
    standin         what a stand-in rep answers in the demo (`handoff demo --auto-approve`): the
                    form's fields as a dict, or a function of the work item and a session

What reads it (derived, never copied): `checklists.forms.FORMS`, the SLA defaults
(`handoff.core.sla`), the stand-in answers (`handoff.runtime.standins`), the WIP review's
team map (`handoff.analytics.reports.TEAM_BY_SKILL`). A HumanStep of a type not registered
here fails when the flow builds it; tests/core/test_work_types.py walks flows/ and tasks/ for
the types they use.

Why the form is named, not imported: the forms are Prefect RunInput classes, and the core
imports no Prefect. The entry names the class; checklists/forms.py resolves every name when it
is imported (an unknown name stops the import), so there is still one declaration per work type
to edit, and a type can never be registered without a form.

Adding a work type: one entry here (reuse a form, or add its class to checklists/forms.py) and
the flow step that asks for it.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from collections.abc import Iterable
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from handoff.core.models import OrderCheck
from handoff.core.models import WorkItem
from handoff.core.settings import settings

StandinAnswer = Mapping[str, Any] | Callable[[WorkItem, Session], Mapping[str, Any]]

NAME = re.compile(r"^[a-z][a-z0-9]*(-[a-z0-9]+)*$")
FORM_NAME = re.compile(r"^[A-Z][A-Za-z0-9]*$")
MAX_LEVEL = 5  # skill levels run from 1 (learning) to 5 (expert)


class UnknownWorkType(LookupError):
    """A flow asked for a work type nobody declared."""


@dataclass(frozen=True)
class WorkType:
    name: str
    form: str
    sla_hours: float
    effort_minutes: float
    skill: str
    level: int
    team: str
    standin: StandinAnswer

    def __post_init__(self) -> None:
        problems = []
        if not isinstance(self.name, str) or not NAME.match(self.name):
            problems.append("name: lower-case words joined by hyphens")
        if not isinstance(self.form, str) or not FORM_NAME.match(self.form):
            problems.append("form: the name of a class in checklists/forms.py")
        if not _positive(self.sla_hours):
            problems.append("sla_hours: a number of hours above 0")
        if not _positive(self.effort_minutes):
            problems.append("effort_minutes: a number of minutes above 0")
        if not isinstance(self.skill, str) or not NAME.match(self.skill):
            problems.append("skill: lower-case words joined by hyphens")
        if isinstance(self.level, bool) or not isinstance(self.level, int) or not 1 <= self.level <= MAX_LEVEL:
            problems.append(f"level: 1 to {MAX_LEVEL}")
        if not isinstance(self.team, str) or not self.team.strip():
            problems.append("team: the team whose queue it is")
        if not (callable(self.standin) or isinstance(self.standin, Mapping)):
            problems.append("standin: the form's fields, or a function of (item, session)")
        if problems:
            raise ValueError(f"work type {self.name!r}: " + "; ".join(problems))

    @property
    def required_skills(self) -> dict[str, int]:
        return {self.skill: self.level}

    def standin_answer(self, item: WorkItem, s: Session) -> dict[str, Any]:
        """What a stand-in rep enters in the form (without `completed_by`)."""
        answer = self.standin(item, s) if callable(self.standin) else self.standin
        return dict(answer)


def _positive(number: object) -> bool:
    return isinstance(number, (int, float)) and not isinstance(number, bool) and 0 < number < math.inf


def _approve_unless_the_checklist_failed(item: WorkItem, s: Session) -> dict[str, Any]:
    check = s.scalar(select(OrderCheck).where(OrderCheck.order_id == item.order_id).order_by(OrderCheck.id.desc()))
    if check is not None and check.errors:
        return {"decision": "reject", "note": "checklist failed: " + "; ".join(f["text"] for f in check.errors)}
    return {"decision": "approve", "note": "checked the order and its findings; fine to go on"}


def _the_assignee_did_the_visit(item: WorkItem, s: Session) -> dict[str, Any]:
    technician = item.assignee.name if item.assignee is not None else "the technician"
    return {"visit_done": True, "technician": technician, "notes": "installed and tested on site"}


# --- the work types ---------------------------------------------------------------------------

DECLARED = (
    # Order entry (flows/order_entry.py)
    WorkType(
        "order-approval",
        form="OrderApproval",
        sla_hours=settings.approval_due_hours,  # HANDOFF_APPROVAL_DUE_HOURS
        effort_minutes=15,
        skill="order-entry",
        level=2,
        team="customer service",
        standin=_approve_unless_the_checklist_failed,
    ),
    WorkType(
        "credit-review",
        form="CreditReview",
        sla_hours=16,
        effort_minutes=30,
        skill="credit",
        level=2,
        team="customer service",
        standin={"decision": "approve", "note": "prepayment agreed with the customer"},
    ),
    # Quotation (flows/quotation.py)
    WorkType(
        "discount-approval",
        form="DiscountApproval",
        sla_hours=4,
        effort_minutes=10,
        skill="quotation",
        level=3,
        team="customer service",
        standin={"decision": "approve", "note": "within what we give this customer"},
    ),
    # A sent quote: before its validity ends, a rep calls the customer after the offer (BPIC 2012's
    # "W_Nabellen offertes"); due well before the end, so an answer can still be had.
    WorkType(
        "quote-follow-up",
        form="QuoteFollowUp",
        sla_hours=8,
        effort_minutes=10,
        skill="quotation",
        level=1,
        team="customer service",
        standin={"customer_answer": "undecided", "note": "left a message; the customer has not decided yet"},
    ),
    # Provisioning (flows/provisioning.py)
    WorkType(
        "provisioning-visit",
        form="TechnicianVisit",
        sla_hours=40,
        effort_minutes=120,
        skill="provisioning",
        level=2,
        team="operations",
        standin=_the_assignee_did_the_visit,
    ),
    WorkType(
        "provisioning-exception",
        form="ProvisioningException",
        sla_hours=8,
        effort_minutes=20,
        skill="provisioning",
        level=3,
        team="operations",
        standin={"resolution": "drop-line", "note": "product no longer sold; customer informed"},
    ),
    # Activation (flows/activation.py)
    WorkType(
        "activation-confirmation",
        form="CustomerConfirmation",
        sla_hours=8,
        effort_minutes=15,
        skill="activation",
        level=1,
        team="operations",
        standin={"confirmed": True, "note": "customer confirmed by phone"},
    ),
    # Billing (flows/billing.py)
    WorkType(
        "invoice-approval",
        form="InvoiceApproval",
        sla_hours=16,
        effort_minutes=20,
        skill="billing",
        level=3,
        team="billing",
        standin={"decision": "approve", "note": "amounts match the order"},
    ),
    # Any stage's checklist gate (tasks/checklist_gate.py): the flow names the skill of the stage
    # whose checklist failed (provisioning, activation, billing); order entry's otherwise.
    WorkType(
        "checklist-fix",
        form="ChecklistFix",
        sla_hours=8,
        effort_minutes=30,
        skill="order-entry",
        level=2,
        team="customer service",
        standin={"resolution": "fixed", "note": "corrected the data"},
    ),
    # Handoff meeting (flows/handoff_meeting.py): sales and operations each sign off
    WorkType(
        "handoff-signoff-sales",
        form="SalesSignOff",
        sla_hours=24,
        effort_minutes=30,
        skill="sales",
        level=2,
        team="account management",
        standin={
            "signed": True,
            "turnaround_days": 3,
            "scope": "nation-wide",
            "customisations": "none",
            "decision_maker": "the customer's contact",
            "decision_maker_contact": "contact@example.com",
            "training_sessions": 1,
            "changes_since_contract": "none",
            "open_questions": "",
        },
    ),
    WorkType(
        "handoff-signoff-operations",
        form="OperationsSignOff",
        sla_hours=24,
        effort_minutes=30,
        skill="operations",
        level=2,
        team="account management",
        standin={"signed": True, "open_questions": ""},
    ),
)


# --- reading the registry -------------------------------------------------------------------


def by_name(declared: Iterable[WorkType]) -> dict[str, WorkType]:
    """The declarations keyed by name; a name declared twice is refused."""
    out: dict[str, WorkType] = {}
    for work_type in declared:
        if work_type.name in out:
            raise ValueError(f"work type {work_type.name!r} is declared twice")
        out[work_type.name] = work_type
    return out


def team_by_skill(declared: Iterable[WorkType]) -> dict[str, str]:
    """Which team owns work requiring a skill; a skill claimed by two teams is refused."""
    teams: dict[str, str] = {}
    for work_type in declared:
        known = teams.setdefault(work_type.skill, work_type.team)
        if known != work_type.team:
            raise ValueError(
                f"skill {work_type.skill!r} belongs to team {known!r} and, in work type "
                f"{work_type.name!r}, to {work_type.team!r}: one team per skill"
            )
    return teams


WORK_TYPES: dict[str, WorkType] = by_name(DECLARED)
TEAM_BY_SKILL: dict[str, str] = team_by_skill(DECLARED)


def get(name: str) -> WorkType:
    """The declared work type; UnknownWorkType (naming the known ones) if there is none."""
    try:
        return WORK_TYPES[name]
    except KeyError:
        raise UnknownWorkType(
            f"work type {name!r} is not declared in handoff/core/work_types.py "
            f"(declared: {', '.join(sorted(WORK_TYPES))})"
        ) from None


__all__ = [
    "DECLARED",
    "TEAM_BY_SKILL",
    "WORK_TYPES",
    "StandinAnswer",
    "UnknownWorkType",
    "WorkType",
    "by_name",
    "get",
    "team_by_skill",
]
