"""Order entry: the first thing the back office does with an order.

Steps:
1. Start order entry for the order.
2. Load the order with its customer and lines.
3. Run the order checklist (known products, quantities, prices, discounts, totals, dates).
4. Check the customer's credit for the order total with the CRM.
5. If the CRM declined, a rep with the credit skill decides: extend credit, or reject.
6. If the order is large or the checklist found anything, a rep approves or rejects it.
7. Accept the order (or reject it with the rep's reason).
8. Split the accepted order into its downstream work.
"""

from __future__ import annotations

from prefect import flow

from checklists.forms import CreditReview, OrderApproval
from tasks.crm import CreditDeclined, check_credit
from tasks.http import NotFound
from tasks.human_step import ask_a_person
from tasks.orders import (
    accept_order,
    advance_order,
    approval_step,
    credit_review_step,
    load_order,
    reasons_for_approval,
    reject_order,
    run_order_checklist,
    split_into_downstream_work,
    start_order_entry,
)


@flow(name="order-entry", flow_run_name="order-{order_id}", log_prints=True)
def order_entry(order_id: str) -> str:
    # 1. Start order entry for the order
    start_order_entry(order_id)

    # 2. Load the order with its customer and lines
    order = load_order(order_id)
    if order.status in ("rejected",):
        return order.status

    # 3. Run the order checklist
    findings = run_order_checklist(order_id)

    # 4. Check the customer's credit with the CRM
    try:
        check_credit(order_id, order.customer_id, order.total)
        credit_problem = None
    except CreditDeclined as declined:
        credit_problem = declined.reason
    except NotFound:
        credit_problem = f"customer {order.customer_id} is not in the CRM"

    # 5. Credit declined: a rep with the credit skill decides
    if credit_problem:
        review = ask_a_person(credit_review_step(order, credit_problem), CreditReview)
        if review.decision == "reject":
            return reject_order(order_id, reason=review.note, by=review.completed_by)

    # 6. Large order or checklist findings: a rep approves or rejects
    reasons = reasons_for_approval(order, findings)
    approved_by = "system:order-entry"
    if reasons:
        advance_order(order_id, "awaiting-approval", by="system:order-entry")
        approval = ask_a_person(approval_step(order, findings, reasons), OrderApproval)
        if approval.decision == "reject":
            return reject_order(order_id, reason=approval.note, by=approval.completed_by)
        approved_by = approval.completed_by

    # 7. Accept the order
    accept_order(order_id, by=approved_by)

    # 8. Split it into downstream work
    split_into_downstream_work(order_id)
    return "accepted"
