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

Products of the categories in `sandbox.reference.MANUAL_CATEGORIES` (Meat/Poultry, Seafood)
need a technician's visit: their job waits until someone completes it.
One reservation per order line and one job per reservation; another try under a new key is a
409 naming the existing one.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse
from pydantic import Field

from sandbox.core import Body, Outcome, Sandbox, conflict, fault_dependency, not_found, rejected, utcnow

SYSTEM = "provisioning"
AWAITING_TECHNICIAN = "awaiting_technician"
PROVISIONED = "provisioned"


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


def router(sb: Sandbox) -> APIRouter:
    api = APIRouter(prefix=f"/{SYSTEM}", tags=[SYSTEM], dependencies=[Depends(fault_dependency(sb, SYSTEM))])

    def found(kind: str, id_: str) -> dict[str, Any]:
        item = sb.resource(SYSTEM, kind, id_)
        if item is None:
            raise not_found(kind.rstrip("s").replace("-", " "), id_)
        return item

    @api.post("/reservations", status_code=201)
    async def reserve(body: ReservationRequest, request: Request) -> JSONResponse:
        def effect() -> Outcome:
            product = sb.reference.products.get(body.product_id)
            if product is None:
                raise not_found("product", body.product_id)
            if product.discontinued:
                raise rejected("product_discontinued", f"product {product.id} ({product.name}) is discontinued")
            for existing in sb.resources(SYSTEM, "reservations").values():
                if (existing["order_id"], existing["line_no"]) == (body.order_id, body.line_no):
                    raise conflict(
                        "already_reserved",
                        f"order {body.order_id} line {body.line_no} is already reserved as {existing['id']}",
                        existing_id=existing["id"],
                    )
            return Outcome(
                "reservations",
                {
                    "id": sb.next_id(SYSTEM, "reservations", "RSV"),
                    **body.model_dump(mode="json"),
                    "product_name": product.name,
                    "category": product.category,
                    "needs_technician": product.needs_technician,
                    "status": "reserved",
                    "reserved_at": utcnow().isoformat(),
                },
            )

        return await sb.side_effect(request, SYSTEM, "reserve", body, effect)

    @api.get("/reservations/{reservation_id}")
    async def get_reservation(reservation_id: str) -> dict[str, Any]:
        return found("reservations", reservation_id)

    @api.post("/provisioning-jobs", status_code=201)
    async def provision(body: JobRequest, request: Request) -> JSONResponse:
        def effect() -> Outcome:
            reservation = found("reservations", body.reservation_id)
            if (reservation["order_id"], reservation["line_no"]) != (body.order_id, body.line_no):
                raise rejected(
                    "reservation_mismatch",
                    f"reservation {reservation['id']} belongs to order {reservation['order_id']} "
                    f"line {reservation['line_no']}",
                )
            for existing in sb.resources(SYSTEM, "provisioning-jobs").values():
                if existing["reservation_id"] == reservation["id"]:
                    raise conflict(
                        "already_provisioned",
                        f"reservation {reservation['id']} is already in job {existing['id']}",
                        existing_id=existing["id"],
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
            job = found("provisioning-jobs", job_id)
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
        return found("provisioning-jobs", job_id)

    return api
