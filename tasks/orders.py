"""Order-entry steps: read the order, run its checklist, accept or reject it.

They touch only handoff's own database; flows call them as Prefect tasks so each step shows
in the UI by name with the order id. What order entry decides (who approves, at which level,
what they are shown) is the procedure: it is in flows/order_entry.py.
"""

from __future__ import annotations

from datetime import date
from datetime import datetime
from typing import TYPE_CHECKING

from pydantic import BaseModel
from sqlalchemy import func
from sqlalchemy import select
from sqlalchemy import update

from handoff.core import audit
from handoff.core import sla
from handoff.core.db import session
from handoff.core.models import Customer
from handoff.core.models import Order
from handoff.core.models import OrderCheck
from handoff.core.models import OrderStatus
from handoff.core.models import Product
from tasks.steps import record_step

if TYPE_CHECKING:
    import pandas as pd


class LineView(BaseModel):
    line_no: int
    product_id: int
    product_name: str | None
    quantity: int
    unit_price: float
    discount: float
    amount: float


class OrderView(BaseModel):
    """What a person needs to see of an order to decide on it."""

    order_id: str
    customer_id: str
    customer_name: str | None
    country: str | None
    order_date: date
    due_date: date
    total: float
    status: str
    lines: list[LineView]

    @property
    def promised_by(self) -> datetime:
        """When the order is late: the end of its due date in the business's time zone."""
        return sla.promised_by(self.due_date)


class Findings(BaseModel):
    errors: list[dict]
    warnings: list[dict]

    @property
    def passed(self) -> bool:
        return not self.errors


class UnknownOrder(Exception):
    pass


@record_step(task_run_name="load-order-{order_id}")
def load_order(order_id: str) -> OrderView:
    with session() as s:
        order = s.get(Order, order_id)
        if order is None:
            raise UnknownOrder(f"order {order_id} has not been received")
        customer = s.get(Customer, order.customer_id)
        products = {
            p.id: p for p in s.scalars(select(Product).where(Product.id.in_([l.product_id for l in order.lines])))
        }
        return OrderView(
            order_id=order.id,
            customer_id=order.customer_id,
            customer_name=customer.name if customer else None,
            country=customer.country if customer else None,
            order_date=order.order_date,
            due_date=order.due_date,
            total=order.total,
            status=order.status,
            lines=[
                LineView(
                    line_no=l.line_no,
                    product_id=l.product_id,
                    product_name=products[l.product_id].name if l.product_id in products else None,
                    quantity=l.quantity,
                    unit_price=l.unit_price,
                    discount=l.discount,
                    amount=l.amount,
                )
                for l in order.lines
            ],
        )


@record_step(task_run_name="start-order-entry-{order_id}")
def start_order_entry(order_id: str) -> None:
    with session() as s:
        order = s.get(Order, order_id)
        if order.status == OrderStatus.RECEIVED:
            _set_status(s, order, OrderStatus.IN_ORDER_ENTRY, "system:order-entry")


@record_step(task_run_name="run-order-checklist-{order_id}")
def run_order_checklist(order_id: str) -> Findings:
    """Run the checklist on the order as stored and keep the findings with the order."""
    from checklists.order_checklist import check_order

    with session() as s:
        order = s.get(Order, order_id)
        header, lines = order_frames(s, order)
        result = check_order(header, lines)
        findings = Findings(
            errors=[f.as_dict() for f in result.errors], warnings=[f.as_dict() for f in result.warnings]
        )
        s.add(OrderCheck(order_id=order_id, errors=findings.errors, warnings=findings.warnings))
        return findings


def order_frames(s, order: Order) -> tuple[pd.DataFrame, pd.DataFrame]:  # noqa: ANN001
    """The order as the checklist's two frames: the header row and the lines with catalogue data."""
    import pandas as pd

    from handoff.core.quotes import accepted_quote_of

    products = {p.id: p for p in s.scalars(select(Product).where(Product.id.in_([l.product_id for l in order.lines])))}
    # An order from an accepted quote must be what was quoted: line by line, and in total
    quote = accepted_quote_of(s, order.id)
    quoted = {n: l for n, l in enumerate(quote.lines, start=1)} if quote else {}
    lines = pd.DataFrame(
        [
            {
                "line_no": l.line_no,
                "product_id": l.product_id,
                "product_known": l.product_id in products,
                "quantity": l.quantity,
                "unit_price": float(l.unit_price),
                "discount": float(l.discount),
                "amount": l.amount,
                "catalogue_price": products[l.product_id].unit_price if l.product_id in products else None,
                "discontinued": products[l.product_id].discontinued if l.product_id in products else False,
                **_as_quoted(quoted.get(l.line_no) if quote else None, quote is not None),
            }
            for l in order.lines
        ],
        columns=[
            "line_no",
            "product_id",
            "product_known",
            "quantity",
            "unit_price",
            "discount",
            "amount",
            "catalogue_price",
            "discontinued",
            *QUOTED_COLUMNS,
        ],
    )
    header = pd.DataFrame(
        [
            {
                "order_id": order.id,
                "customer_known": s.get(Customer, order.customer_id) is not None,
                "order_date": pd.Timestamp(order.order_date),
                "due_date": pd.Timestamp(order.due_date),
                "lines_total": float(sum(l.amount for l in order.lines)),
                "stated_total": order.stated_total,
                "quoted_total": quote.total if quote else None,
                "line_count": len(order.lines),
                "quoted_lines": len(quote.lines) if quote else None,
            }
        ]
    )
    return header, lines


QUOTED_COLUMNS = ("quoted_product_id", "quoted_quantity", "quoted_unit_price", "quoted_discount")


def _as_quoted(line: dict | None, from_a_quote: bool) -> dict:
    """The accepted quote's line beside the order's (NaN when the order has no quote; for an
    order from a quote, a line the quote does not have is -1, which matches nothing)."""
    if not from_a_quote:
        return dict.fromkeys(QUOTED_COLUMNS)
    if line is None:
        return dict.fromkeys(QUOTED_COLUMNS, -1)
    return {f"quoted_{k}": line[k] for k in ("product_id", "quantity", "unit_price", "discount")}


@record_step(task_run_name="accept-order-{order_id}")
def accept_order(order_id: str, by: str = "system:order-entry") -> str:
    with session() as s:
        order = s.get(Order, order_id)
        if order.status in ENTRY_STATES:
            _set_status(s, order, OrderStatus.ACCEPTED, by)
    return OrderStatus.ACCEPTED


ENTRY_STATES = (OrderStatus.RECEIVED, OrderStatus.IN_ORDER_ENTRY, OrderStatus.AWAITING_APPROVAL)


@record_step(task_run_name="advance-order-{order_id}-to-{status}")
def advance_order(order_id: str, status: str, by: str = "system:pipeline") -> str:
    """Move the order to the next stage of the pipeline (once: a re-run does not move it again)."""
    with session() as s:
        order = s.get(Order, order_id)
        if order.status != status and order.status != OrderStatus.REJECTED:
            _set_status(s, order, OrderStatus(status), by)
        return order.status


@record_step(task_run_name="reject-order-{order_id}")
def reject_order(order_id: str, reason: str, by: str) -> str:
    with session() as s:
        order = s.get(Order, order_id)
        order.reason = reason
        _set_status(s, order, OrderStatus.REJECTED, by, reason=reason)
    return OrderStatus.REJECTED


def _set_status(s, order: Order, status: OrderStatus, by: str, **details) -> None:  # noqa: ANN001
    before = order.status
    order.status = status
    audit.record(s, by, "order", order.id, f"status:{status}", before, status, **details)


class WorkPlan(BaseModel):
    """The downstream work an accepted order needs."""

    order_id: str
    customer_id: str
    quotation: bool
    lines_to_provision: int
    new_account: bool


@record_step(task_run_name="split-into-downstream-work-{order_id}")
def split_into_downstream_work(order_id: str) -> WorkPlan:
    from tasks.quotes import needs_a_quote

    with session() as s:
        order = s.get(Order, order_id)
        earlier = s.scalar(
            select(func.count())
            .select_from(Order)
            .where(Order.customer_id == order.customer_id, Order.id != order_id, Order.received_at < order.received_at)
        )
        plan = WorkPlan(
            order_id=order_id,
            customer_id=order.customer_id,
            quotation=needs_a_quote(order_id),
            lines_to_provision=len(order.lines),
            new_account=earlier == 0,
        )
        audit.record(s, "system:order-entry", "order", order_id, "split", **plan.model_dump())
        return plan


PIPELINE_ORDER = [
    OrderStatus.RECEIVED,
    OrderStatus.IN_ORDER_ENTRY,
    OrderStatus.AWAITING_APPROVAL,
    OrderStatus.ACCEPTED,
    OrderStatus.QUOTED,
    OrderStatus.PROVISIONED,
    OrderStatus.ACTIVATED,
    OrderStatus.BILLED,
    OrderStatus.COMPLETE,
]


def order_reached(order_id: str, status: str) -> bool:
    """The order is at `status` or further along the pipeline (a rejected order reached nothing)."""
    with session() as s:
        order = s.get(Order, order_id)
        if order is None:  # an event for an order not stored here, or one the database lost
            raise UnknownOrder(f"order {order_id} is not in handoff's database: nothing to work on")
        current = order.status
    if current == OrderStatus.REJECTED:
        return False
    return PIPELINE_ORDER.index(OrderStatus(current)) >= PIPELINE_ORDER.index(OrderStatus(status))


@record_step(task_run_name="claim-order-{order_id}")
def claim_order(order_id: str, flow_run_id: str) -> bool:
    """Make this run the order's pipeline; False if another live run already is.

    A new order.received event for the same order starts a second run; the database decides
    (a conditional UPDATE) which one carries the order. A run that failed or was cancelled
    gives the order up to the next one."""
    with session() as s:
        won = s.execute(
            update(Order)
            .where(Order.id == order_id, (Order.flow_run_id.is_(None)) | (Order.flow_run_id == flow_run_id))
            .values(flow_run_id=flow_run_id)
        ).rowcount
        if won:
            return True
        holder = s.get(Order, order_id).flow_run_id
    if _run_is_over(holder):
        with session() as s:
            return bool(
                s.execute(
                    update(Order)
                    .where(Order.id == order_id, Order.flow_run_id == holder)
                    .values(flow_run_id=flow_run_id)
                ).rowcount
            )
    return False


def _run_is_over(flow_run_id: str) -> bool:
    from prefect.client.orchestration import get_client

    try:
        with get_client(sync_client=True) as client:
            state = client.read_flow_run(flow_run_id).state
    except Exception:  # the run is unknown to this server: nobody is carrying the order
        return True
    return state is not None and state.is_final() and not state.is_completed()


@record_step(task_run_name="tag-run-{order_id}")
def tag_run_with_business_ids(order_id: str, flow_run_id: str) -> None:
    """Operators filter runs in the UI by order and customer: put them on the run."""
    from prefect.client.orchestration import get_client

    with session() as s:
        customer_id = s.get(Order, order_id).customer_id
    with get_client(sync_client=True) as client:
        run = client.read_flow_run(flow_run_id)
        tags = set(run.tags) | {f"order:{order_id}", f"customer:{customer_id}", "work-type:order"}
        if tags != set(run.tags):
            client.update_flow_run(flow_run_id, tags=sorted(tags))
