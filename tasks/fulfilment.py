"""What provisioning and activation did for each order line, kept in handoff's database so
a re-run (a resumed flow, a retry) picks up where the last one stopped."""

from __future__ import annotations

from pydantic import BaseModel
from sqlalchemy import select

from handoff.core import audit
from handoff.core.db import session
from handoff.core.models import FulfilmentLine
from handoff.core.models import Order
from handoff.core.models import utcnow
from tasks.steps import record_step


class LineToFulfil(BaseModel):
    line_no: int
    product_id: int
    quantity: int
    reservation_id: str | None
    job_id: str | None
    manual: bool
    resource_id: str | None
    activation_id: str | None
    verified: bool
    dropped: bool
    given_back: bool = False


@record_step(task_run_name="lines-to-fulfil-{order_id}")
def lines_to_fulfil(order_id: str) -> list[LineToFulfil]:
    with session() as s:
        order = s.get(Order, order_id)
        done = {f.line_no: f for f in s.scalars(select(FulfilmentLine).where(FulfilmentLine.order_id == order_id))}
        out = []
        for line in order.lines:
            f = done.get(line.line_no)
            out.append(
                LineToFulfil(
                    line_no=line.line_no,
                    product_id=line.product_id,
                    quantity=line.quantity,
                    reservation_id=f.reservation_id if f else None,
                    job_id=f.job_id if f else None,
                    manual=f.manual if f else False,
                    resource_id=f.resource_id if f else None,
                    activation_id=f.activation_id if f else None,
                    verified=bool(f and f.verified_at),
                    dropped=bool(f and f.job_id == "dropped"),
                    given_back=bool(f and f.given_back_at),
                )
            )
        return out


def _line(s, order_id: str, line_no: int) -> FulfilmentLine:  # noqa: ANN001
    f = s.get(FulfilmentLine, (order_id, line_no))
    if f is None:
        f = FulfilmentLine(order_id=order_id, line_no=line_no)
        s.add(f)
    return f


@record_step(task_run_name="record-reservation-{order_id}-{line_no}")
def record_reservation(order_id: str, line_no: int, reservation_id: str, manual: bool) -> None:
    with session() as s:
        f = _line(s, order_id, line_no)
        f.reservation_id, f.manual = reservation_id, manual


@record_step(task_run_name="record-provisioning-{order_id}-{line_no}")
def record_provisioning(order_id: str, line_no: int, job_id: str, resource_id: str | None) -> None:
    with session() as s:
        f = _line(s, order_id, line_no)
        f.job_id, f.resource_id = job_id, resource_id
        if resource_id and f.provisioned_at is None:
            f.provisioned_at = utcnow()
            audit.record(
                s,
                "system:provisioning",
                "order_line",
                f"{order_id}/{line_no}",
                "provisioned",
                resource_id=resource_id,
                job_id=job_id,
            )


@record_step(task_run_name="drop-line-{order_id}-{line_no}")
def drop_line(order_id: str, line_no: int, by: str, reason: str) -> None:
    """Leave a line out of the order (the other system refused it and a person decided)."""
    with session() as s:
        f = _line(s, order_id, line_no)
        f.job_id = "dropped"
        audit.record(s, by, "order_line", f"{order_id}/{line_no}", "dropped", reason=reason)


@record_step(task_run_name="record-given-back-{order_id}-{line_no}")
def record_given_back(order_id: str, line_no: int, by: str) -> None:
    """The line's reservation was released (its job cancelled first); recorded once."""
    with session() as s:
        f = _line(s, order_id, line_no)
        if f.given_back_at is None:
            f.given_back_at = utcnow()
            audit.record(
                s,
                by,
                "order_line",
                f"{order_id}/{line_no}",
                "given back",
                reservation_id=f.reservation_id,
                job_id=f.job_id,
            )


@record_step(task_run_name="provisioning-checklist-{order_id}")
def run_provisioning_checklist(order_id: str) -> list[dict]:
    """Every line that is still part of the order is reserved and has a resource id."""
    import pandas as pd

    from checklists.provisioning_checklist import check_provisioning

    with session() as s:
        order = s.get(Order, order_id)
        done = {f.line_no: f for f in s.scalars(select(FulfilmentLine).where(FulfilmentLine.order_id == order_id))}
        rows = [
            {
                "line_no": l.line_no,
                "reservation_id": done[l.line_no].reservation_id if l.line_no in done else None,
                "resource_id": done[l.line_no].resource_id if l.line_no in done else None,
            }
            for l in order.lines
            if not (l.line_no in done and done[l.line_no].job_id == "dropped")
        ]
    frame = pd.DataFrame(rows, columns=["line_no", "reservation_id", "resource_id"]).astype(
        {"line_no": "int64", "reservation_id": "object", "resource_id": "object"}
    )
    return [f.as_dict() for f in check_provisioning(frame)]


@record_step(task_run_name="record-activation-{order_id}-{line_no}")
def record_activation(order_id: str, line_no: int, activation_id: str, verified: bool) -> None:
    with session() as s:
        f = _line(s, order_id, line_no)
        f.activation_id = activation_id
        f.activated_at = f.activated_at or utcnow()
        if verified and f.verified_at is None:
            f.verified_at = utcnow()
