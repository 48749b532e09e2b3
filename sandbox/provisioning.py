"""Provisioning stand-in: reserve stock for an order line, then provision it.

    POST /provisioning/reservations                  {order_id, line_no, product_id, quantity}
                                                     → 201 reservation; 422 discontinued product
    GET  /provisioning/reservations/{reservation_id}
    POST /provisioning/provisioning-jobs             {order_id, line_no, reservation_id}
                                                     → 201 job, "provisioned" with a resource_id,
                                                       or "awaiting_technician" (no resource yet)
    POST /provisioning/provisioning-jobs/{job_id}/complete   {technician, notes}
                                                     → 200 job, now "provisioned"
    GET  /provisioning/provisioning-jobs/{job_id}
    POST /provisioning/provisioning-jobs/{job_id}/cancel     {reason}
                                                     → 200 job, now "cancelled" (its resource
                                                       freed: it cannot be activated)
    POST /provisioning/reservations/{reservation_id}/release {reason}
                                                     → 200 reservation, now "released";
                                                       409 while a job of it is not cancelled

Products of the categories in `sandbox.reference.MANUAL_CATEGORIES` (Meat/Poultry, Seafood)
need a technician's visit: their job waits until someone completes it.
One reservation per order line and one job per reservation; another try under a new key is a
409 naming the existing one. A cancelled job or a released reservation stays cancelled or
released: doing it again under a new key is a 409 saying so.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from fastapi import Request
from fastapi.responses import JSONResponse
from pydantic import Field

from sandbox.core import Body
from sandbox.core import Outcome
from sandbox.core import Sandbox
from sandbox.core import conflict
from sandbox.core import rejected
from sandbox.core import system_router
from sandbox.core import utcnow

SYSTEM = "provisioning"
AWAITING_TECHNICIAN = "awaiting_technician"
PROVISIONED = "provisioned"
CANCELLED = "cancelled"
RELEASED = "released"


class ReservationRequest(Body):
    order_id: str = Field(min_length=1)
    line_no: int = Field(gt=0)
    product_id: int
    quantity: int = Field(gt=0)


class JobRequest(Body):
    order_id: str = Field(min_length=1)
    line_no: int = Field(gt=0)
    reservation_id: str = Field(min_length=1)


class VisitReport(Body):
    technician: str = Field(min_length=1)
    notes: str = ""


class Undo(Body):
    reason: str = Field(min_length=1, max_length=500)


def router(sb: Sandbox) -> APIRouter:
    api = system_router(sb, SYSTEM)

    @api.post("/reservations", status_code=201)
    async def reserve(body: ReservationRequest, request: Request) -> JSONResponse:
        def effect() -> Outcome:
            product = sb.product(body.product_id)
            if product.discontinued:
                raise rejected("product_discontinued", f"product {product.id} ({product.name}) is discontinued")
            sb.refuse_duplicate(
                SYSTEM,
                "reservations",
                "already_reserved",
                "order {order_id} line {line_no} is already reserved as {id}",
                order_id=body.order_id,
                line_no=body.line_no,
            )
            return sb.created(
                SYSTEM,
                "reservations",
                "RSV",
                body,
                product_name=product.name,
                category=product.category,
                needs_technician=product.needs_technician,
                status="reserved",
                reserved_at=utcnow().isoformat(),
            )

        return await sb.side_effect(request, SYSTEM, "reserve", body, effect)

    @api.get("/reservations/{reservation_id}")
    async def get_reservation(reservation_id: str) -> dict[str, Any]:
        return sb.found(SYSTEM, "reservations", reservation_id)

    @api.post("/provisioning-jobs", status_code=201)
    async def provision(body: JobRequest, request: Request) -> JSONResponse:
        def effect() -> Outcome:
            reservation = sb.found(SYSTEM, "reservations", body.reservation_id)
            if (reservation["order_id"], reservation["line_no"]) != (body.order_id, body.line_no):
                raise rejected(
                    "reservation_mismatch",
                    f"reservation {reservation['id']} belongs to order {reservation['order_id']} "
                    f"line {reservation['line_no']}",
                )
            if reservation["status"] == RELEASED:
                raise rejected("reservation_released", f"reservation {reservation['id']} was released")
            sb.refuse_duplicate(
                SYSTEM,
                "provisioning-jobs",
                "already_provisioned",
                "reservation {reservation_id} is already in job {id}",
                reservation_id=reservation["id"],
            )
            job_id = sb.next_id(SYSTEM, "provisioning-jobs", "JOB")
            manual = reservation["needs_technician"]
            return Outcome(
                "provisioning-jobs",
                {
                    "id": job_id,
                    **body.model_dump(mode="json"),
                    "product_id": reservation["product_id"],
                    "status": AWAITING_TECHNICIAN if manual else PROVISIONED,
                    "resource_id": None if manual else job_id.replace("JOB", "RES"),
                    "visit_reason": f"{reservation['category']} needs a technician on site" if manual else None,
                    "technician": None,
                    "notes": None,
                    "created_at": utcnow().isoformat(),
                    "completed_at": None if manual else utcnow().isoformat(),
                },
            )

        return await sb.side_effect(request, SYSTEM, "provision", body, effect)

    @api.post("/provisioning-jobs/{job_id}/complete", status_code=200)
    async def complete_visit(job_id: str, body: VisitReport, request: Request) -> JSONResponse:
        def effect() -> Outcome:
            job = sb.found(SYSTEM, "provisioning-jobs", job_id)
            if job["status"] != AWAITING_TECHNICIAN:
                raise conflict("not_awaiting_technician", f"job {job_id} is {job['status']}, not waiting for a visit")
            return Outcome(
                "provisioning-jobs",
                {
                    **job,
                    "status": PROVISIONED,
                    "resource_id": job_id.replace("JOB", "RES"),
                    "technician": body.technician,
                    "notes": body.notes,
                    "completed_at": utcnow().isoformat(),
                },
                status_code=200,
            )

        return await sb.side_effect(request, SYSTEM, "complete_visit", body, effect)

    @api.get("/provisioning-jobs/{job_id}")
    async def get_job(job_id: str) -> dict[str, Any]:
        return sb.found(SYSTEM, "provisioning-jobs", job_id)

    @api.post("/provisioning-jobs/{job_id}/cancel", status_code=200)
    async def cancel_job(job_id: str, body: Undo, request: Request) -> JSONResponse:
        def effect() -> Outcome:
            return undone("provisioning-jobs", sb.found(SYSTEM, "provisioning-jobs", job_id), CANCELLED, body.reason)

        return await sb.side_effect(request, SYSTEM, "cancel_job", body, effect)

    @api.post("/reservations/{reservation_id}/release", status_code=200)
    async def release(reservation_id: str, body: Undo, request: Request) -> JSONResponse:
        def effect() -> Outcome:
            reservation = sb.found(SYSTEM, "reservations", reservation_id)
            job = sb.first(SYSTEM, "provisioning-jobs", lambda j: j["reservation_id"] == reservation_id)
            if reservation["status"] != RELEASED and job is not None and job["status"] != CANCELLED:
                raise conflict(
                    "reservation_in_a_job",
                    f"reservation {reservation_id} is in job {job['id']} ({job['status']}): cancel the job first",
                )
            return undone("reservations", reservation, RELEASED, body.reason)

        return await sb.side_effect(request, SYSTEM, "release", body, effect)

    return api


def undone(kind: str, resource: dict[str, Any], status: str, reason: str) -> Outcome:
    """A job cancelled or a reservation released: for good, so doing it again is a 409."""
    if resource["status"] == status:
        raise conflict(
            f"already_{status}", f"{kind.rstrip('s').replace('-', ' ')} {resource['id']} was {status} already"
        )
    return Outcome(
        kind, {**resource, "status": status, "status_reason": reason, f"{status}_at": utcnow().isoformat()}, 200
    )
