"""A checklist gate: work moves on only when its checklist passes.

A failed check is recorded as a defect (which rules, on which rows) and routed as a
checklist-fix step to a person who can fix it; when they say "fixed" the check runs again,
when they say "cancel" the work stops. The flow never just crashes on bad data.
"""

from __future__ import annotations

from collections.abc import Callable

from checklists.forms import ChecklistFix
from tasks.defects import findings_markdown
from tasks.defects import record_defect
from tasks.defects import resolve_defect
from tasks.human_step import HumanStep
from tasks.human_step import ask_a_person

MAX_ROUNDS = 5


class ChecklistCancelled(Exception):
    """A person cancelled the work instead of fixing its checklist."""


def until_checklist_passes(
    checklist: str,
    order_id: str,
    work_type: str,
    run_check: Callable[[int], list[dict]],
    fixer_skills: dict[str, int],
    context: str,
) -> None:
    """Run `run_check(round_no)` until it finds nothing; raise ChecklistCancelled if a person
    cancels. A check that asks another system passes the round on: after a person answers
    "fixed", the next round must check again, not replay the last round's answers."""
    for round_no in range(1, MAX_ROUNDS + 1):
        failures = run_check(round_no)
        if not failures:
            return
        key = f"{checklist}-{order_id}-{round_no}"
        defect_id = record_defect(key, order_id, work_type, checklist, failures)
        fix = ask_a_person(
            HumanStep(
                work_type="checklist-fix",
                step_key=f"fix-{key}",
                title=f"Fix the {checklist} checklist of order {order_id}",
                description=(
                    f"### The {checklist} checklist of order {order_id} failed\n\n{context}\n\n"
                    f"**Rules that failed**\n{findings_markdown(failures)}\n\n"
                    "Correct the data, then answer **fixed** to check again, or **cancel** to stop this work."
                ),
                required_skills=fixer_skills,
                order_id=order_id,
                priority=2.0,
            ),
            ChecklistFix,
        )
        resolve_defect(defect_id, fix.completed_by)
        if fix.resolution == "cancel":
            raise ChecklistCancelled(
                f"{checklist} checklist of order {order_id}: cancelled by {fix.completed_by}: {fix.note}"
            )
    raise ChecklistCancelled(f"{checklist} checklist of order {order_id} still fails after {MAX_ROUNDS} rounds")
