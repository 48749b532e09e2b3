"""Stand-in reps for the demo and tests: Northwind's staff, with skills that cover every work
type, so a first-time user sees work pushed to people without setting up a team first — and
the answers they give when the demo runs with --auto-approve.
"""

from __future__ import annotations

from typing import Callable

from sqlalchemy import select

from handoff.core.db import session
from handoff.core.models import OrderCheck, Worker, WorkerSkill, WorkItem

# name, role, capacity, {skill: level}. Sales and operations are different people, so a
# handoff meeting's two sign-offs always come from two sides.
STANDIN_REPS: list[tuple[str, str, int, dict[str, int]]] = [
    ("Nancy Davolio", "rep", 6, {"order-entry": 3, "credit": 2, "billing": 2, "sales": 2}),
    ("Janet Leverling", "rep", 6, {"order-entry": 2, "quotation": 3, "billing": 3, "sales": 3}),
    ("Margaret Peacock", "rep", 6, {"order-entry": 3, "provisioning": 3, "activation": 2, "operations": 2}),
    ("Steven Buchanan", "supervisor", 4, {"order-entry": 5, "credit": 4, "quotation": 4, "billing": 4,
                                         "provisioning": 3, "activation": 3, "operations": 4}),
    ("Michael Suyama", "rep", 6, {"order-entry": 2, "activation": 3, "provisioning": 2, "operations": 3}),
    ("Robert King", "rep", 6, {"order-entry": 1, "provisioning": 3, "activation": 1, "operations": 2}),
    ("Laura Callahan", "rep", 6, {"order-entry": 3, "credit": 3, "quotation": 2, "sales": 2}),
    ("Anne Dodsworth", "rep", 6, {"billing": 3, "activation": 2, "credit": 2, "sales": 2}),
    ("Andrew Fuller", "supervisor", 4, {"order-entry": 5, "quotation": 5, "credit": 5, "sales": 5, "billing": 3}),
]


def ensure_standin_reps() -> int:
    """Add the stand-in reps that are missing; returns how many were added."""
    added = 0
    with session() as s:
        known = set(s.scalars(select(Worker.name)))
        for name, role, capacity, skills in STANDIN_REPS:
            if name in known:
                continue
            s.add(Worker(name=name, role=role, capacity=capacity,
                         skills=[WorkerSkill(skill=k, level=v) for k, v in skills.items()]))
            added += 1
    return added


# --- what a stand-in answers, per work type ------------------------------------------------


def _order_approval(item: WorkItem, s) -> dict:  # noqa: ANN001
    check = s.scalar(select(OrderCheck).where(OrderCheck.order_id == item.order_id).order_by(OrderCheck.id.desc()))
    if check is not None and check.errors:
        return {"decision": "reject", "note": "checklist failed: " + "; ".join(f["text"] for f in check.errors)}
    return {"decision": "approve", "note": "checked the order and its findings; fine to go on"}


STANDIN_ANSWERS: dict[str, Callable[[WorkItem, object], dict]] = {
    "order-approval": _order_approval,
    "credit-review": lambda item, s: {"decision": "approve", "note": "prepayment agreed with the customer"},
    "discount-approval": lambda item, s: {"decision": "approve", "note": "within what we give this customer"},
    "provisioning-visit": lambda item, s: {"visit_done": True, "technician": item.assignee.name,
                                           "notes": "installed and tested on site"},
    "provisioning-exception": lambda item, s: {"resolution": "drop-line",
                                               "note": "product no longer sold; customer informed"},
    "activation-confirmation": lambda item, s: {"confirmed": True, "note": "customer confirmed by phone"},
    "invoice-approval": lambda item, s: {"decision": "approve", "note": "amounts match the order"},
    "checklist-fix": lambda item, s: {"resolution": "fixed", "note": "corrected the data"},
    "handoff-signoff-sales": lambda item, s: {
        "signed": True, "turnaround_days": 3, "scope": "nation-wide", "customisations": "none",
        "decision_maker": "the customer's contact", "decision_maker_contact": "contact@example.com",
        "training_sessions": 1, "changes_since_contract": "none", "open_questions": ""},
    "handoff-signoff-operations": lambda item, s: {"signed": True, "open_questions": ""},
}


def standin_answer(item_id: int) -> dict | None:
    """What the item's assignee answers, or None if it has no assignee yet."""
    with session() as s:
        item = s.get(WorkItem, item_id)
        if item is None or item.assignee is None or item.work_type not in STANDIN_ANSWERS:
            return None
        return {"completed_by": item.assignee.name, **STANDIN_ANSWERS[item.work_type](item, s)}
