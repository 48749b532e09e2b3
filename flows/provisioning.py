"""Provisioning: every line of the order is set up in the provisioning system.

Steps:
1. For each line not yet provisioned: reserve it, then provision it.
2. A line the provisioning system refuses (e.g. a discontinued product) goes to operations:
   leave the line out, or cancel the order. When every line has been left out there is nothing
   to provision or bill: the order is cancelled there and then. A cancelled order gives back
   what provisioning holds for it: its lines' jobs are cancelled and their reservations released.
3. A line that needs a technician on site waits for the technician's report (a human step);
   the report completes the job in the provisioning system.
4. Checklist: every line is provisioned with a resource id before the order moves on.
"""

from __future__ import annotations

from itertools import count

from prefect import flow

from checklists.forms import ProvisioningException
from checklists.forms import TechnicianVisit
from tasks.checklist_gate import until_checklist_passes
from tasks.fulfilment import LineToFulfil
from tasks.fulfilment import drop_line
from tasks.fulfilment import lines_to_fulfil
from tasks.fulfilment import record_given_back
from tasks.fulfilment import record_provisioning
from tasks.fulfilment import record_reservation
from tasks.fulfilment import run_provisioning_checklist
from tasks.http import Declined
from tasks.human_step import HumanStep
from tasks.human_step import ask_a_person
from tasks.orders import reject_order
from tasks.provisioning import ProvisioningJob
from tasks.provisioning import cancel_job
from tasks.provisioning import complete_visit
from tasks.provisioning import provision
from tasks.provisioning import release
from tasks.provisioning import reserve


@flow(name="provisioning", flow_run_name="provision-{order_id}", log_prints=True)
def provisioning(order_id: str) -> str:
    lines = lines_to_fulfil(order_id)
    for line in lines:
        if line.resource_id or line.dropped:
            continue

        # 1. Reserve the line, then provision it
        reservation = reserve(order_id, line.line_no, line.product_id, line.quantity)
        if isinstance(reservation, Declined):
            # 2. Refused: operations decide
            last_line = not any(other.line_no != line.line_no and not other.dropped for other in lines)
            decision = ask_a_person(
                refused_line_step(order_id, line, reservation.reason, last_line), ProvisioningException
            )
            if decision.resolution == "cancel-order":
                return cancel_order(order_id, reason=decision.note, by=decision.completed_by)
            drop_line(order_id, line.line_no, by=decision.completed_by, reason=decision.note)
            line.dropped = True
            if last_line:
                return cancel_order(
                    order_id,
                    by=decision.completed_by,
                    reason=f"every line was left out after provisioning refused them ({decision.note})",
                )
            continue
        record_reservation(order_id, line.line_no, reservation.id, reservation.needs_technician)
        job = provision(order_id, line.line_no, reservation.id)
        record_provisioning(order_id, line.line_no, job.id, job.resource_id)

        # 3. A technician's visit, until the technician reports it done
        for visit_no in count(1):
            if not job.needs_technician:
                break
            visit = ask_a_person(technician_visit_step(order_id, line, job, visit_no), TechnicianVisit)
            if visit.visit_done:
                job = complete_visit(job.id, visit.technician, visit.notes)
                record_provisioning(order_id, line.line_no, job.id, job.resource_id)

    # 4. Every line is provisioned with a resource id
    until_checklist_passes(
        "provisioning",
        order_id,
        work_type="provisioning",
        run_check=lambda _round: run_provisioning_checklist(order_id),
        fixer_skills={"provisioning": 2},
        context="Every line that is still part of the order must be reserved and provisioned with a resource id.",
    )
    return "provisioned"


def cancel_order(order_id: str, reason: str, by: str) -> str:
    """The order is cancelled: first everything provisioning holds for it is given back (each
    line's job cancelled, then its reservation released), then the order is rejected. Run again
    after a kill, each call to the provisioning system replays its first answer."""
    why = f"order {order_id} cancelled"  # the same on every run: the calls' bodies must not change
    for line in lines_to_fulfil(order_id):
        if line.reservation_id is None or line.given_back:
            continue
        if line.job_id and not line.dropped:
            cancel_job(line.job_id, why)
        release(line.reservation_id, why)
        record_given_back(order_id, line.line_no, by=by)
    reject_order(order_id, reason=reason, by=by)
    return "cancelled"


def refused_line_step(order_id: str, line: LineToFulfil, reason: str, last_line: bool = False) -> HumanStep:
    return HumanStep(
        work_type="provisioning-exception",
        step_key=f"provisioning-exception-{order_id}-{line.line_no}",
        title=f"Provisioning refused line {line.line_no} of order {order_id}",
        description=(
            f"### Order {order_id}, line {line.line_no}: product {line.product_id} × {line.quantity}\n\n"
            f"**The provisioning system refused it:** {reason}\n\n"
            + (
                "It is the **only line left** in the order: leaving it out cancels the order."
                if last_line
                else "Leave the line out of the order (it will not be billed), or cancel the whole order."
            )
        ),
        order_id=order_id,
        priority=1.5,
        tags=[f"order:{order_id}"],
    )


def technician_visit_step(order_id: str, line: LineToFulfil, job: ProvisioningJob, visit_no: int) -> HumanStep:
    return HumanStep(
        work_type="provisioning-visit",
        step_key=f"provisioning-visit-{order_id}-{line.line_no}-{visit_no}",
        title=f"Technician visit for order {order_id}, line {line.line_no} (visit {visit_no})",
        description=(
            f"### Technician visit — order {order_id}, line {line.line_no}\n\n"
            f"**Job** {job.id} · **why** {job.visit_reason or 'on-site work'} · product {line.product_id} × {line.quantity}\n\n"
            "Report the visit when it is done (or why it could not be done; another visit is then planned)."
        ),
        order_id=order_id,
        tags=[f"order:{order_id}"],
    )
