"""Provisioning: reserve what an order line needs, then provision it.

reservation = provisioning.reserve(order_id, line_no, product_id, quantity)   # or Declined
job = provisioning.provision(order_id, line_no, reservation.id)
if job.needs_technician:                 # some products need a visit on site
    ...                                  # a person books the visit, then:
    job = provisioning.complete_visit(job.id, technician="Robert King")
job.resource_id                          # what activation switches on

provisioning.cancel_job(job.id, reason)            # a cancelled order gives back what it held:
provisioning.release(reservation.id, reason)       # its jobs first, then their reservations
"""

from __future__ import annotations

from pydantic import BaseModel

from tasks.http import RETRY_POLICY
from tasks.http import BusinessRejection
from tasks.http import Declined
from tasks.http import System
from tasks.steps import record_step

SYSTEM = System("provisioning")


class Reservation(BaseModel):
    id: str
    order_id: str
    line_no: int
    product_id: int
    quantity: int
    needs_technician: bool
    status: str


class ProvisioningJob(BaseModel):
    id: str
    order_id: str
    line_no: int
    reservation_id: str
    status: str  # "provisioned" | "awaiting_technician" | "cancelled"
    resource_id: str | None = None
    visit_reason: str | None = None
    technician: str | None = None

    @property
    def needs_technician(self) -> bool:
        return self.status == "awaiting_technician"


@record_step(name="provisioning.reserve", task_run_name="reserve-{order_id}-{line_no}", **RETRY_POLICY)
def reserve(order_id: str, line_no: int, product_id: int, quantity: int) -> Reservation | Declined:
    """Reserve stock for one order line; Declined (a result, not an error) when the system
    refuses the line for a business reason, e.g. a discontinued product."""
    with SYSTEM.client() as provisioning:
        try:
            data = provisioning.side_effect(
                "/reservations",
                {"order_id": str(order_id), "line_no": line_no, "product_id": product_id, "quantity": quantity},
                key=f"reserve:{order_id}:{line_no}",
            )
        except BusinessRejection as refused:
            return Declined.of(refused)
    return Reservation.model_validate(data)


@record_step(name="provisioning.provision", task_run_name="provision-{order_id}-{line_no}", **RETRY_POLICY)
def provision(order_id: str, line_no: int, reservation_id: str) -> ProvisioningJob:
    """Start provisioning a reserved line; the job is done, or waits for a technician."""
    with SYSTEM.client() as provisioning:
        data = provisioning.side_effect(
            "/provisioning-jobs",
            {"order_id": str(order_id), "line_no": line_no, "reservation_id": reservation_id},
            key=f"provision:{order_id}:{line_no}",
        )
    return ProvisioningJob.model_validate(data)


@record_step(name="provisioning.complete_visit", task_run_name="complete-visit-{job_id}", **RETRY_POLICY)
def complete_visit(job_id: str, technician: str, notes: str = "") -> ProvisioningJob:
    """Report the technician's visit done; the job becomes provisioned with a resource id."""
    with SYSTEM.client() as provisioning:
        data = provisioning.side_effect(
            f"/provisioning-jobs/{job_id}/complete",
            {"technician": technician, "notes": notes},
            key=f"complete-visit:{job_id}",
        )
    return ProvisioningJob.model_validate(data)


@record_step(name="provisioning.get_job", task_run_name="provisioning-job-{job_id}", **RETRY_POLICY)
def get_job(job_id: str) -> ProvisioningJob:
    with SYSTEM.client() as provisioning:
        return ProvisioningJob.model_validate(provisioning.read(f"/provisioning-jobs/{job_id}"))


@record_step(name="provisioning.cancel_job", task_run_name="cancel-job-{job_id}", **RETRY_POLICY)
def cancel_job(job_id: str, reason: str) -> ProvisioningJob:
    """Cancel a provisioning job: its resource is freed and can no longer be activated."""
    with SYSTEM.client() as provisioning:
        data = provisioning.side_effect(
            f"/provisioning-jobs/{job_id}/cancel", {"reason": reason}, key=f"cancel-job:{job_id}"
        )
    return ProvisioningJob.model_validate(data)


@record_step(name="provisioning.release", task_run_name="release-{reservation_id}", **RETRY_POLICY)
def release(reservation_id: str, reason: str) -> Reservation:
    """Release a reservation (its job, if any, cancelled first): the stock is free again."""
    with SYSTEM.client() as provisioning:
        data = provisioning.side_effect(
            f"/reservations/{reservation_id}/release", {"reason": reason}, key=f"release:{reservation_id}"
        )
    return Reservation.model_validate(data)
