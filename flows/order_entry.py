"""Order entry: the first thing the back office does with an order.

Steps:
1. Start order entry for the order.
2. Load the order with its customer and lines.
3. Run the order checklist (known products, quantities, prices, discounts, totals, dates).
4. Check the customer's credit for the order total with the CRM.
5. If the CRM declined (or does not know the customer), a rep with the credit skill decides:
   extend credit, or reject.
6. If the order is large or the checklist found anything, a rep approves or rejects it: at
   order-entry level 2, level 3 when the order is very large or the checklist found errors.
7. Accept the order (or reject it with the rep's reason).
8. Split the accepted order into its downstream work.
"""

from __future__ import annotations

from prefect import flow

from checklists.forms import CreditReview
from checklists.forms import OrderApproval
from handoff.core.settings import settings
from tasks.crm import check_credit
from tasks.http import Declined
from tasks.human_step import HumanStep
from tasks.human_step import ask_a_person
from tasks.orders import Findings
from tasks.orders import OrderView
from tasks.orders import accept_order
from tasks.orders import advance_order
from tasks.orders import load_order
from tasks.orders import reject_order
from tasks.orders import run_order_checklist
from tasks.orders import split_into_downstream_work
from tasks.orders import start_order_entry

# Who approves an order: a rep with order entry at this level...
APPROVAL_LEVEL = 2
# ... or at this one when the order is very large, or its checklist found errors.
SENIOR_APPROVAL_LEVEL = 3
VERY_LARGE = 4  # × the large-order value (HANDOFF_LARGE_ORDER_VALUE)


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
    credit = check_credit(order_id, order.customer_id, order.total)

    # 5. Credit declined: a rep with the credit skill decides
    if isinstance(credit, Declined):
        review = ask_a_person(credit_review_step(order, credit.reason), CreditReview)
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


def reasons_for_approval(order: OrderView, findings: Findings) -> list[str]:
    """Why a person must look at this order; empty when it can go straight on."""
    reasons = []
    if order.total >= settings.large_order_value:
        reasons.append(f"large order: {order.total:,.2f} ≥ {settings.large_order_value:,.0f}")
    if findings.errors:
        reasons.append(f"{len(findings.errors)} checklist rule(s) failed")
    if findings.warnings:
        reasons.append(f"{len(findings.warnings)} checklist warning(s)")
    return reasons


def approval_step(order: OrderView, findings: Findings, reasons: list[str]) -> HumanStep:
    """The approval a rep is asked for, with what they need to decide in the form's description."""
    very_large = order.total >= VERY_LARGE * settings.large_order_value
    level = SENIOR_APPROVAL_LEVEL if (very_large or findings.errors) else APPROVAL_LEVEL
    return HumanStep(
        work_type="order-approval",
        step_key=f"order-approval-{order.order_id}",
        title=f"Approve order {order.order_id} for {order.customer_name or order.customer_id}",
        description=approval_description(order, findings, reasons),
        required_skills={"order-entry": level},
        order_id=order.order_id,
        priority=2.0 if findings.errors else 1.0,
        value=order.total,
        due_at=order.promised_by,
        tags=[f"order:{order.order_id}", f"customer:{order.customer_id}"],
    )


def approval_description(order: OrderView, findings: Findings, reasons: list[str]) -> str:
    customer = order.customer_name or f"{order.customer_id} (not a known customer)"
    rows = "\n".join(
        f"| {l.line_no} | {l.product_name or f'unknown product {l.product_id}'} | {l.quantity} | "
        f"{l.unit_price:,.2f} | {l.discount:.0%} | {l.amount:,.2f} |"
        for l in order.lines
    )

    def bullet(items: list[dict]) -> str:
        return "\n".join(f"- {f['text']}" for f in items) or "- none"

    return f"""### Order {order.order_id} — {customer}{f" ({order.country})" if order.country else ""}

**Why you are asked:** {"; ".join(reasons)}

**Ordered** {order.order_date:%a %d %b %Y} · **promised to the customer by** {order.due_date:%a %d %b %Y} · **total** {order.total:,.2f}

| line | product | qty | unit price | discount | amount |
|---:|---|---:|---:|---:|---:|
{rows}

**Checklist — must be fixed or accepted knowingly**
{bullet(findings.errors)}

**Checklist — warnings**
{bullet(findings.warnings)}

Approve to accept the order, or reject it with a reason for sales. Only the assignee, or a
supervisor saying why, may complete this step: signed in, in the worklist or with `handoff complete`.
"""


def credit_review_step(order: OrderView, problem: str) -> HumanStep:
    """A declined credit check goes to a rep with the credit skill, at the work type's level."""
    return HumanStep(
        work_type="credit-review",
        step_key=f"credit-review-{order.order_id}",
        title=f"Credit review for order {order.order_id} ({order.customer_name or order.customer_id})",
        description=(
            f"### Credit review — order {order.order_id}, {order.customer_name or order.customer_id}\n\n"
            f"**The CRM declined credit:** {problem}\n\n"
            f"**Order total** {order.total:,.2f} · **promised by** {order.due_date:%a %d %b %Y} · "
            f"{len(order.lines)} line(s)\n\n"
            "Approve to extend credit for this order anyway (e.g. prepayment agreed), or reject it "
            "with a reason for sales."
        ),
        order_id=order.order_id,
        priority=1.5,
        value=order.total,
        due_at=order.promised_by,
        tags=[f"order:{order.order_id}", f"customer:{order.customer_id}"],
    )
