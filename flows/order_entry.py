"""Order entry: the first thing the back office does with an order.

Steps:
1. Start order entry for the order.
2. Load the order with its customer and lines.
3. Run the order checklist (known products, quantities, prices, discounts, totals, dates).
4. Decide whether a person must approve it: a large order, or any checklist finding.
5. If so, push the approval to a rep with the order-entry skill and wait for their form.
6. Accept the order, or reject it with the rep's reason.
"""

from __future__ import annotations

from prefect import flow

from checklists.forms import OrderApproval
from tasks.human_step import ask_a_person
from tasks.orders import (
    accept_order,
    approval_step,
    load_order,
    reasons_for_approval,
    reject_order,
    run_order_checklist,
    start_order_entry,
)


@flow(name="order-entry", flow_run_name="order-{order_id}", log_prints=True)
def order_entry(order_id: str) -> str:
    # 1. Start order entry for the order
    start_order_entry(order_id)

    # 2. Load the order with its customer and lines
    order = load_order(order_id)

    # 3. Run the order checklist
    findings = run_order_checklist(order_id)

    # 4. Does a person need to approve it?
    reasons = reasons_for_approval(order, findings)

    # 5. Ask a rep, and wait for their decision
    if reasons:
        approval = ask_a_person(approval_step(order, findings, reasons), OrderApproval)
        if approval.decision == "reject":
            # 6a. Reject with the rep's reason
            return reject_order(order_id, reason=approval.note, by=approval.completed_by)
        return accept_order(order_id, by=approval.completed_by)

    # 6b. Accept
    return accept_order(order_id)
