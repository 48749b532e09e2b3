"""Intake: every order that reaches the back office comes through here, whatever the channel
(a JSON or CSV file, the Northwind feed, the HTTP endpoint).

Nothing a user submits is lost: every input, any bytes of any size, ends as an accepted order
(stored and announced with an `order.received` event), a quarantined one (kept byte for byte
with a reason per bad field), or a reported duplicate — decided per order, never per batch.

- contract.py  what a valid order is (the strict form and its limits)
- reading.py   bytes → one submission per order, with its exact bytes and what reading found
- door.py      each submission decided in its own transaction; races decided by the database
- quote_requests.py  requests for quotation through the same door (their own contract and table)
"""

from handoff.core.intake.contract import ORDER_FORM
from handoff.core.intake.contract import QUOTE_REQUEST_FORM
from handoff.core.intake.contract import Form
from handoff.core.intake.contract import OrderIn
from handoff.core.intake.contract import OrderLineIn
from handoff.core.intake.contract import QuoteRequestIn
from handoff.core.intake.contract import Unreadable
from handoff.core.intake.contract import check_order
from handoff.core.intake.contract import check_quote_request
from handoff.core.intake.contract import field_errors
from handoff.core.intake.door import Announcer
from handoff.core.intake.door import IntakeInterrupted
from handoff.core.intake.door import IntakeResult
from handoff.core.intake.door import Rejected
from handoff.core.intake.door import quarantine
from handoff.core.intake.door import store_order
from handoff.core.intake.door import submit_orders
from handoff.core.intake.door import unannounced_orders
from handoff.core.intake.quote_requests import submit_quote_requests
from handoff.core.intake.quote_requests import unannounced_quote_requests
from handoff.core.intake.reading import Submission
from handoff.core.intake.reading import parse_csv_orders
from handoff.core.intake.reading import parse_json_orders
from handoff.core.intake.reading import read_order_file
from handoff.core.intake.reading import read_quote_request_file

__all__ = [
    "ORDER_FORM",
    "QUOTE_REQUEST_FORM",
    "Announcer",
    "Form",
    "QuoteRequestIn",
    "check_quote_request",
    "read_quote_request_file",
    "submit_quote_requests",
    "unannounced_quote_requests",
    "IntakeInterrupted",
    "IntakeResult",
    "OrderIn",
    "OrderLineIn",
    "Rejected",
    "Submission",
    "Unreadable",
    "check_order",
    "field_errors",
    "parse_csv_orders",
    "parse_json_orders",
    "quarantine",
    "read_order_file",
    "store_order",
    "submit_orders",
    "unannounced_orders",
]
