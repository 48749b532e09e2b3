"""Every change of state is written down: who, what, when, from which state to which."""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from handoff.core.models import AuditEvent


def record(
    s: Session,
    actor: str,
    entity: str,
    entity_id: object,
    action: str,
    from_state: str | None = None,
    to_state: str | None = None,
    **details: Any,
) -> None:
    s.add(
        AuditEvent(
            actor=actor,
            entity=entity,
            entity_id=str(entity_id),
            action=action,
            from_state=from_state,
            to_state=to_state,
            details=details,
        )
    )
