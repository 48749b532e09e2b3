"""Activation: switch on what was provisioned, check it works, and have the customer confirm.

Steps:
1. Activate each provisioned line's resource and verify it works (checked again if not).
2. Checklist: every provisioned line is activated and verified.
3. A rep confirms with the customer that the service works (asked again if not).
"""

from __future__ import annotations

from itertools import count

from prefect import flow

from checklists.forms import CustomerConfirmation
from tasks.activation import activate
from tasks.activation import verify
from tasks.checklist_gate import until_checklist_passes
from tasks.fulfilment import lines_to_fulfil
from tasks.fulfilment import record_activation
from tasks.human_step import HumanStep
from tasks.human_step import ask_a_person

VERIFY_ATTEMPTS = 2


@flow(name="activation", flow_run_name="activate-{order_id}", log_prints=True)
def activation(order_id: str) -> str:
    # 1 + 2. Activate and verify every provisioned line, until all are verified
    until_checklist_passes(
        "activation",
        order_id,
        work_type="activation",
        run_check=lambda round_no: activate_and_verify(order_id, round_no),
        fixer_skills={"activation": 2},
        context="Every provisioned line must be activated and pass its verification.",
    )

    # 3. The customer confirms the service works
    for ask_no in count(1):
        answer = ask_a_person(confirmation_step(order_id, ask_no), CustomerConfirmation)
        if answer.confirmed:
            return "activated"


def activate_and_verify(order_id: str, round_no: int = 1) -> list[dict]:
    """Activate and verify the lines not verified yet; the lines still failing, as findings.
    Each checklist round verifies again (after a person's fix, the old answers are stale)."""
    failing = []
    for line in lines_to_fulfil(order_id):
        if line.dropped or line.verified or not line.resource_id:
            continue
        switched_on = activate(order_id, line.resource_id)
        verified = False
        for attempt in range(1, VERIFY_ATTEMPTS + 1):
            check = verify(switched_on.id, attempt, round_no)
            verified = bool(check.verified)
            if verified:
                break
        record_activation(order_id, line.line_no, switched_on.id, verified)
        if not verified:
            failing.append(
                {
                    "rule": "every_line_is_verified",
                    "field": "verified",
                    "lines": [line.line_no],
                    "values": [check.reason or "verification failed"],
                    "text": f"line {line.line_no} ({line.resource_id}) fails verification: {check.reason}",
                }
            )
    return failing


def confirmation_step(order_id: str, ask_no: int) -> HumanStep:
    return HumanStep(
        work_type="activation-confirmation",
        step_key=f"activation-confirmation-{order_id}-{ask_no}",
        title=f"Confirm with the customer that order {order_id} works",
        description=(
            f"### Order {order_id} is active\n\nCall the customer's contact and ask them to confirm the "
            "service works for them. If not, note what they said: the confirmation is asked again "
            "once it is put right."
        ),
        order_id=order_id,
        tags=[f"order:{order_id}"],
    )
