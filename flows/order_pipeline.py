"""The order pipeline: everything the back office does for one order, in order.

Steps:
0. Take the order (one pipeline per order, however many order.received events arrive).
1. Order entry: checklist, credit check, approvals.
2. Quotation, when the order needs a priced quote (a discounted order placed without a request
   for quotation; an order from an accepted quote was priced already: its checklist checks it
   matches the quote).
3. Provisioning.
4. Activation.
5. Billing.
6. A newly won account gets its handoff meeting planned (the daily check runs it).
7. The order is complete.

Each stage is its own flow (flows/*.py, runnable alone); here they run inside this one run, so
when a human step waits, the whole order's run suspends and holds no process; on resume the
run starts again from the top and each stage skips what is already done.
"""

from __future__ import annotations

from prefect import flow
from prefect.runtime import flow_run

from flows.activation import activation
from flows.billing import billing
from flows.order_entry import order_entry
from flows.provisioning import cancel_order
from flows.provisioning import provisioning
from flows.quotation import order_quotation
from tasks.checklist_gate import ChecklistCancelled
from tasks.meetings import plan_handoff_meeting
from tasks.orders import advance_order
from tasks.orders import claim_order
from tasks.orders import order_reached
from tasks.orders import split_into_downstream_work
from tasks.orders import tag_run_with_business_ids


@flow(name="order-pipeline", flow_run_name="order-{order_id}", log_prints=True)
def order_pipeline(order_id: str) -> str:
    # 0. One pipeline per order; a finished order is not worked again
    if order_reached(order_id, "complete"):
        return "complete"
    if not claim_order(order_id, str(flow_run.id)):
        return "already-in-progress"
    tag_run_with_business_ids(order_id, str(flow_run.id))

    try:
        # 1. Order entry
        if not order_reached(order_id, "accepted"):
            if order_entry.fn(order_id) == "rejected":
                return "rejected"
        plan = split_into_downstream_work(order_id)

        # 2. Quotation, when the order needs a priced quote (not one from an accepted quote)
        if plan.quotation and not order_reached(order_id, "quoted"):
            if order_quotation.fn(order_id) == "declined":
                cancel_order(order_id, reason="the discount was not approved", by="system:pipeline")
                return "rejected"
            advance_order(order_id, "quoted")

        # 3. Provisioning
        if not order_reached(order_id, "provisioned"):
            if provisioning.fn(order_id) == "cancelled":
                return "rejected"
            advance_order(order_id, "provisioned")

        # 4. Activation
        if not order_reached(order_id, "activated"):
            activation.fn(order_id)
            advance_order(order_id, "activated")

        # 5. Billing
        if not order_reached(order_id, "billed"):
            billing.fn(order_id)
            advance_order(order_id, "billed")
    except ChecklistCancelled as cancelled:  # what provisioning held for it is given back
        cancel_order(order_id, reason=str(cancelled), by="system:pipeline")
        return "rejected"

    # 6. A new account gets its handoff meeting
    if plan.new_account:
        plan_handoff_meeting(plan.customer_id, order_id)

    # 7. Complete
    advance_order(order_id, "complete")
    return "complete"
