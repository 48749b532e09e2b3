"""Activation: switch a provisioned resource on for the customer, then check that it works.

activation = activation.activate(order_id, job.resource_id)
result = activation.verify(activation.id)           # attempt=1
if not result.verified:                              # result.reason says what to ask
    ...                                              # the customer confirms, then:
    result = activation.verify(activation.id, attempt=2)
"""

from __future__ import annotations

from pydantic import BaseModel

from tasks.http import RETRY_POLICY
from tasks.http import System
from tasks.steps import record_step

SYSTEM = System("activation")


class Activation(BaseModel):
    id: str
    order_id: str
    resource_id: str
    status: str  # "pending" | "active" | "failed"
    verified: bool | None = None
    verifications: int = 0
    reason: str | None = None


@record_step(name="activation.activate", task_run_name="activate-{order_id}-{resource_id}", **RETRY_POLICY)
def activate(order_id: str, resource_id: str) -> Activation:
    """Switch the resource on (NotFound if provisioning does not know it)."""
    with SYSTEM.client() as activation:
        data = activation.side_effect(
            "/activations",
            {"order_id": str(order_id), "resource_id": resource_id},
            key=f"activate:{order_id}:{resource_id}",
        )
    return Activation.model_validate(data)


@record_step(name="activation.verify", task_run_name="verify-{activation_id}-{round_no}-{attempt}", **RETRY_POLICY)
def verify(activation_id: str, attempt: int = 1, round_no: int = 1) -> Activation:
    """Check the activation works: `.verified` True, or False with a `.reason` for the customer.

    Each `attempt` of each checklist round (`round_no`) is its own check; a retry of the same
    attempt, or the flow re-run from the top, is not a new check. The round is in the key:
    with the attempt alone, the round after a person's fix replayed the failed checks before
    it, and the order was cancelled after five rounds of "fixed".
    """
    key = f"verify:{activation_id}:{attempt}" if round_no == 1 else f"verify:{activation_id}:{round_no}:{attempt}"
    with SYSTEM.client() as activation:
        data = activation.side_effect(f"/activations/{activation_id}/verify", {}, key=key)
    return Activation.model_validate(data)
