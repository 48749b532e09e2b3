"""The forms people fill in to complete a human step.

Prefect renders each as a form in the UI (and `handoff complete` asks the same fields in the
terminal). Required fields have no default: a field with a default shows as optional. The
OSS Prefect server has no user accounts, so the form asks who completes it, and the flow
checks that person against the work item's assignee.
"""

from __future__ import annotations

from typing import Literal

from prefect.input import RunInput
from pydantic import Field, model_validator


class StepForm(RunInput):
    """What every human step asks: who is completing it."""

    completed_by: str = Field(
        min_length=1, max_length=80,
        description="Your name as it appears in the worker list (the assignee or a supervisor).",
    )


class OrderApproval(StepForm):
    decision: Literal["approve", "reject"] = Field(description="Approve the order, or reject it.")
    note: str = Field(max_length=2000, description="Why — required when rejecting; it is sent to sales.")

    @model_validator(mode="after")
    def _rejection_needs_a_reason(self) -> "OrderApproval":
        if self.decision == "reject" and not self.note.strip():
            raise ValueError("note: a rejection needs a reason")
        return self

    @property
    def outcome(self) -> str:
        return self.decision
