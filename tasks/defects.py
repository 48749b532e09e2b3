"""Defects: a checklist that failed is written down (which rules, on which rows) for the
defect log, and a person who can fix it gets a checklist-fix step."""

from __future__ import annotations

from sqlalchemy import select

from handoff.core import audit
from handoff.core.db import session
from handoff.core.models import Defect
from handoff.core.models import utcnow
from tasks.steps import record_step


@record_step(task_run_name="record-defect-{key}")
def record_defect(key: str, order_id: str | None, work_type: str, checklist: str, failures: list[dict]) -> int:
    """Write the defect once per check round (`key`), however often the flow runs again."""
    with session() as s:
        existing = s.scalar(select(Defect).where(Defect.key == key))
        if existing is not None:
            return existing.id
        defect = Defect(key=key, order_id=order_id, work_type=work_type, checklist=checklist, failures=failures)
        s.add(defect)
        s.flush()
        audit.record(
            s,
            "system:checklist",
            "defect",
            defect.id,
            "found",
            None,
            "open",
            order_id=order_id,
            checklist=checklist,
            rules=[f["rule"] for f in failures],
        )
        return defect.id


@record_step(task_run_name="resolve-defect-{defect_id}")
def resolve_defect(defect_id: int, by: str, fix_item_id: int | None = None) -> None:
    with session() as s:
        defect = s.get(Defect, defect_id)
        defect.resolved_at = utcnow()
        defect.resolved_by = by
        defect.fix_item_id = fix_item_id or defect.fix_item_id
        audit.record(s, by, "defect", defect_id, "resolved", "open", "resolved")


def findings_markdown(failures: list[dict]) -> str:
    return "\n".join(f"- {f['text']}" for f in failures) or "- none"
