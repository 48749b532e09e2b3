"""Order-entry steps: read the order, run its checklist, accept or reject it.

They touch only handoff's own database; flows call them as Prefect tasks so each step shows
in the UI by name with the order id.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta

import pandas as pd
from prefect import task
from prefect.cache_policies import NO_CACHE
from pydantic import BaseModel
from sqlalchemy import select

from checklists.order_checklist import check_order
from handoff import audit
from handoff.db import session
from handoff.models import Customer, Order, OrderCheck, OrderStatus, Product, utcnow
from handoff.settings import settings
from tasks.human_step import HumanStep


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


class Findings(BaseModel):
    errors: list[dict]
    warnings: list[dict]

    @property
    def passed(self) -> bool:
        return not self.errors


class UnknownOrder(Exception):
    pass


@task(task_run_name="load-order-{order_id}", cache_policy=NO_CACHE)
def load_order(order_id: str) -> OrderView:
    with session() as s:
        order = s.get(Order, order_id)
        if order is None:
            raise UnknownOrder(f"order {order_id} has not been received")
        customer = s.get(Customer, order.customer_id)
        products = {p.id: p for p in s.scalars(select(Product).where(Product.id.in_([l.product_id for l in order.lines])))}
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
                LineView(line_no=l.line_no, product_id=l.product_id,
                         product_name=products[l.product_id].name if l.product_id in products else None,
                         quantity=l.quantity, unit_price=l.unit_price, discount=l.discount, amount=l.amount)
                for l in order.lines
            ],
        )


@task(task_run_name="start-order-entry-{order_id}", cache_policy=NO_CACHE)
def start_order_entry(order_id: str) -> None:
    with session() as s:
        order = s.get(Order, order_id)
        if order.status == OrderStatus.RECEIVED:
            _set_status(s, order, OrderStatus.IN_ORDER_ENTRY, "system:order-entry")


@task(task_run_name="run-order-checklist-{order_id}", cache_policy=NO_CACHE)
def run_order_checklist(order_id: str) -> Findings:
    """Run the checklist on the order as stored and keep the findings with the order."""
    with session() as s:
        order = s.get(Order, order_id)
        header, lines = order_frames(s, order)
        result = check_order(header, lines)
        findings = Findings(errors=[f.as_dict() for f in result.errors],
                            warnings=[f.as_dict() for f in result.warnings])
        s.add(OrderCheck(order_id=order_id, errors=findings.errors, warnings=findings.warnings))
        return findings


def order_frames(s, order: Order) -> tuple[pd.DataFrame, pd.DataFrame]:  # noqa: ANN001
    """The order as the checklist's two frames: the header row and the lines with catalogue data."""
    products = {p.id: p for p in s.scalars(select(Product).where(Product.id.in_([l.product_id for l in order.lines])))}
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
            }
            for l in order.lines
        ],
        columns=["line_no", "product_id", "product_known", "quantity", "unit_price", "discount",
                 "amount", "catalogue_price", "discontinued"],
    )
    header = pd.DataFrame([{
        "order_id": order.id,
        "customer_known": s.get(Customer, order.customer_id) is not None,
        "order_date": pd.Timestamp(order.order_date),
        "due_date": pd.Timestamp(order.due_date),
        "lines_total": float(sum(l.amount for l in order.lines)),
        "stated_total": order.stated_total,
    }])
    return header, lines


@task(cache_policy=NO_CACHE)
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


@task(task_run_name="accept-order-{order_id}", cache_policy=NO_CACHE)
def accept_order(order_id: str, by: str = "system:order-entry") -> str:
    with session() as s:
        _set_status(s, s.get(Order, order_id), OrderStatus.ACCEPTED, by)
    return OrderStatus.ACCEPTED


@task(task_run_name="reject-order-{order_id}", cache_policy=NO_CACHE)
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


def approval_step(order: OrderView, findings: Findings, reasons: list[str]) -> HumanStep:
    """The approval a rep is asked for, with what they need to decide in the form's description."""
    big = order.total >= 4 * settings.large_order_value
    level = 3 if (big or findings.errors) else 2
    return HumanStep(
        work_type="order-approval",
        step_key=f"order-approval-{order.order_id}",
        title=f"Approve order {order.order_id} for {order.customer_name or order.customer_id}",
        description=approval_description(order, findings, reasons),
        required_skills={"order-entry": level},
        order_id=order.order_id,
        priority=2.0 if findings.errors else 1.0,
        value=order.total,
        due_at=min(utcnow() + timedelta(hours=settings.approval_due_hours),
                   datetime.combine(order.due_date, datetime.min.time())),
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
    return f"""### Order {order.order_id} — {customer}{f' ({order.country})' if order.country else ''}

**Why you are asked:** {'; '.join(reasons)}

**Ordered** {order.order_date:%a %d %b %Y} · **promised to the customer by** {order.due_date:%a %d %b %Y} · **total** {order.total:,.2f}

| line | product | qty | unit price | discount | amount |
|---:|---|---:|---:|---:|---:|
{rows}

**Checklist — must be fixed or accepted knowingly**
{bullet(findings.errors)}

**Checklist — warnings**
{bullet(findings.warnings)}

Approve to accept the order, or reject it with a reason for sales. Fill in your name: only the
assignee or a supervisor may complete this step.
"""
