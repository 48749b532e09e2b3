"""The daily handoff-meeting check: every newly won account gets its meetings run.

Steps:
1. Expire quotes past their validity.
2. Find the accounts whose handoff meetings are not signed off yet.
3. Start a handoff-meeting run for each that has none under way (from its deployment, so it
   suspends while it waits for the sign-offs and holds no process; Prefect de-duplicates the
   runs by the account's key, tasks/deployment_runs.py).
4. Quotes with the customer whose follow-up call is due: their quotation runs again (it pushes
   the call after the offer to a rep, or expires the quote at the end of its validity).
"""

from __future__ import annotations

from prefect import flow
from prefect import get_run_logger

from tasks.meetings import find_accounts_awaiting_handoff
from tasks.meetings import start_handoff_meeting
from tasks.quotes import expire_quotes
from tasks.quotes import quotes_to_follow_up
from tasks.quotes import start_quotation


@flow(name="handoff-meeting-check", flow_run_name="handoff-meeting-check")
def handoff_meeting_check() -> dict[str, int]:
    # 1. Expire old quotes
    expired = expire_quotes()

    # 2. Accounts awaiting their handoff
    customers = find_accounts_awaiting_handoff()

    # 3. Start (or keep) each account's meeting run
    for customer_id in customers:
        start_handoff_meeting(customer_id)

    # 4. Quotes whose follow-up call is due
    for request_id in quotes_to_follow_up():
        start_quotation(request_id)
    get_run_logger().info(
        "handoff-meeting-check: %s accounts awaiting handoff, %s quotes expired", len(customers), expired
    )
    return {"accounts": len(customers), "quotes_expired": expired}
