"""The six standard workflows and the order pipeline, run against the real sandbox systems
on localhost, with stand-in reps answering the human steps."""

import json
from collections import Counter
from datetime import UTC

import pytest
from prefect.client.orchestration import get_client
from sqlalchemy import select

from flows.activation import activation
from flows.billing import billing
from flows.handoff_meeting import handoff_meeting
from flows.order_entry import order_entry
from flows.order_pipeline import order_pipeline
from flows.provisioning import cancel_order
from flows.provisioning import provisioning
from flows.quotation import order_quotation
from handoff.core.db import session
from handoff.core.intake import submit_orders
from handoff.core.models import AuditEvent
from handoff.core.models import Defect
from handoff.core.models import FulfilmentLine
from handoff.core.models import HandoffMeeting
from handoff.core.models import Invoice
from handoff.core.models import Order
from handoff.core.models import OrderLine
from handoff.core.models import Quote
from handoff.core.models import WorkItem

pytestmark = pytest.mark.usefixtures("prefect_harness", "catalogue", "reps", "sandbox")

GOOD_CUSTOMER = "AROUT"  # credit limit 20,000, not on hold (sandbox.reference)
ON_HOLD = "BLAUS"


def receive(order_id, lines, customer=GOOD_CUSTOMER, due="2030-03-15"):
    order = {
        "order_id": order_id,
        "customer_id": customer,
        "order_date": "2030-03-01",
        "due_date": due,
        "lines": [{"product_id": p, "quantity": q, "unit_price": price, "discount": d} for p, q, price, d in lines],
    }
    assert submit_orders([(json.dumps(order), order)], source="test", announce=False).accepted == [order_id]


def order_status(order_id):
    with session() as s:
        return s.get(Order, order_id).status


def steps_of(responder, work_type):
    return [a for a in responder.answered if a[0] == work_type]


def ledger_keys(sandbox, system, operation):
    return [e["idempotency_key"] for e in sandbox.ledger(system, operation)]


def test_order_entry_asks_a_credit_review_when_the_crm_declines(responder, sandbox):
    receive("E-1", [(1, 10, 18.0, 0)], customer=ON_HOLD)
    assert order_entry("E-1") == "accepted"
    assert len(steps_of(responder, "credit-review")) == 1
    assert [e["request"]["order_id"] for e in sandbox.ledger("crm", "check_credit")] == ["E-1"]


def test_order_entry_rejects_when_the_credit_reviewer_says_no(responder):
    responder.overrides["credit-review"] = lambda step, a: {"decision": "reject", "note": "on hold: no credit"}
    receive("E-2", [(1, 10, 18.0, 0)], customer=ON_HOLD)
    assert order_entry("E-2") == "rejected"
    with session() as s:
        assert s.get(Order, "E-2").reason == "on hold: no credit"


def test_quotation_prices_from_the_catalogue_and_a_big_discount_needs_a_manager(responder, sandbox):
    receive("Q-1", [(1, 10, 18.0, 0.25), (2, 5, 19.0, 0)])
    assert order_quotation("Q-1") == "sent"
    [(_, item_id, answer)] = steps_of(responder, "discount-approval")
    with session() as s:
        quote = s.get(Quote, "Q-Q-1")
        assert quote.status == "sent" and quote.approved_by == answer["completed_by"]
        assert quote.list_total == pytest.approx(10 * 18 + 5 * 19)
        assert quote.total == pytest.approx(10 * 18 * 0.75 + 5 * 19)
        assert s.get(WorkItem, item_id).required_skills == {"quotation": 3}
    assert ledger_keys(sandbox, "crm", "send_quote") == ["quote:Q-Q-1"]
    assert order_quotation("Q-1") == "sent"  # again: nothing is sent twice
    assert ledger_keys(sandbox, "crm", "send_quote") == ["quote:Q-Q-1"]


def test_an_order_s_quote_whose_validity_ended_while_a_manager_decided_is_sent_valid_from_now(responder, sandbox):
    """The expiry took the draft waiting for approval, the approval wrote "approved" over
    "expired", and the CRM refused the stale date at every run of the order's pipeline. A
    quote not sent is not with the customer: it stays, and is valid from when it is sent."""
    from datetime import date
    from datetime import timedelta

    from handoff.core import sla
    from handoff.core.settings import settings
    from tasks.quotes import expire_quotes
    from tasks.quotes import price_quote

    receive("Q-9", [(1, 10, 18.0, 0.25)])
    price_quote.fn("Q-9")
    with session() as s:
        s.get(Quote, "Q-Q-9").valid_until = date(2020, 1, 1)  # priced long ago
    assert expire_quotes.fn() == 0  # not with the customer: nothing to expire
    assert order_quotation("Q-9") == "sent"
    today = sla.business_today()
    with session() as s:
        quote = s.get(Quote, "Q-Q-9")
        assert (quote.status, quote.valid_until) == ("sent", today + timedelta(days=settings.quote_valid_days))
    [sent] = sandbox.ledger("crm", "send_quote")
    assert sent["request"]["valid_until"] == quote.valid_until.isoformat()


def test_a_declined_discount_is_not_sent(responder, sandbox):
    responder.overrides["discount-approval"] = lambda step, a: {"decision": "decline", "note": "too generous"}
    receive("Q-2", [(1, 10, 18.0, 0.25)])
    assert order_quotation("Q-2") == "declined"
    assert sandbox.ledger("crm", "send_quote") == []


def test_quotes_expire(db):
    from datetime import date

    from tasks.quotes import expire_quotes

    with session() as s:
        s.add(
            Quote(
                id="Q-old",
                customer_id="ALFKI",
                lines=[],
                list_total=1,
                discount=0,
                total=1,
                status="sent",
                valid_until=date(2020, 1, 1),
            )
        )
    assert expire_quotes.fn(date(2020, 1, 2)) == 1
    with session() as s:
        assert s.get(Quote, "Q-old").status == "expired"


def test_provisioning_handles_a_technician_visit_and_a_refused_line(responder, sandbox):
    # 10 Ikura (seafood: a technician on site), 5 Gumbo Mix (discontinued: refused), 1 Chai
    receive("P-1", [(10, 2, 31.0, 0), (5, 1, 21.35, 0), (1, 3, 18.0, 0)])
    assert provisioning("P-1") == "provisioned"
    assert len(steps_of(responder, "provisioning-visit")) == 1
    assert len(steps_of(responder, "provisioning-exception")) == 1
    with session() as s:
        lines = {f.line_no: f for f in s.scalars(select(FulfilmentLine).where(FulfilmentLine.order_id == "P-1"))}
    assert lines[1].resource_id and lines[1].manual
    assert lines[2].job_id == "dropped" and lines[2].resource_id is None
    assert lines[3].resource_id and not lines[3].manual
    assert sorted(ledger_keys(sandbox, "provisioning", "provision")) == ["provision:P-1:1", "provision:P-1:3"]


def test_provisioning_can_be_cancelled_by_operations(responder):
    responder.overrides["provisioning-exception"] = lambda step, a: {
        "resolution": "cancel-order",
        "note": "customer cancels",
    }
    receive("P-2", [(5, 1, 21.35, 0)])
    assert provisioning("P-2") == "cancelled"
    assert order_status("P-2") == "rejected"


def test_a_cancelled_order_gives_back_what_provisioning_held_for_it_once(responder, sandbox):
    """Line 1 (Chai) is reserved and provisioned, line 2 (Gumbo Mix, discontinued) is refused and
    operations cancel the order: line 1's job is cancelled and its reservation released, so the
    stock is free and the resource can never be switched on. The first run was killed after
    cancelling the job (done here by hand, with the same call); the run again from the top
    releases the rest, and nothing is done twice."""
    from tasks.http import BusinessRejection

    responder.overrides["provisioning-exception"] = lambda step, a: {
        "resolution": "cancel-order",
        "note": "customer cancels",
    }
    receive("P-5", [(1, 3, 18.0, 0), (5, 1, 21.35, 0)])
    assert provisioning("P-5") == "cancelled"
    [job] = [e["response"] for e in sandbox.ledger("provisioning", "provision")]
    [released] = sandbox.ledger("provisioning", "release")
    [cancelled] = sandbox.ledger("provisioning", "cancel_job")
    assert cancelled["response"]["id"] == job["id"] and cancelled["response"]["status"] == "cancelled"
    assert released["response"]["id"] == job["reservation_id"] and released["response"]["status"] == "released"
    assert [e["operation"] for e in sandbox.ledger("provisioning")][-2:] == ["cancel_job", "release"]
    assert order_status("P-5") == "rejected"
    with session() as s:
        line = s.get(FulfilmentLine, ("P-5", 1))
        given_back = [e for e in s.scalars(select(AuditEvent).where(AuditEvent.action == "given back"))]
    assert line.given_back_at is not None and [e.entity_id for e in given_back] == ["P-5/1"]
    assert given_back[0].details == {"reservation_id": job["reservation_id"], "job_id": job["id"]}

    # The resource cannot be activated any more
    from tasks.activation import activate

    with pytest.raises(BusinessRejection, match="cancelled"):
        activate.fn("P-5", job["resource_id"])

    # Run again from the top (as after a kill): the same answer, nothing given back twice
    assert provisioning("P-5") == "cancelled"
    assert (
        len(sandbox.ledger("provisioning", "cancel_job")) == 1 and len(sandbox.ledger("provisioning", "release")) == 1
    )


def test_a_run_killed_between_cancelling_a_job_and_releasing_its_reservation_finishes_once(responder, sandbox):
    from tasks.provisioning import cancel_job

    responder.overrides["provisioning-exception"] = lambda step, a: {"resolution": "drop-line", "note": "later"}
    receive("P-6", [(1, 3, 18.0, 0), (5, 1, 21.35, 0)])
    assert provisioning("P-6") == "provisioned"  # line 2 left out; line 1 provisioned
    [job] = [e["response"] for e in sandbox.ledger("provisioning", "provision")]
    cancel_job.fn(job["id"], "order P-6 cancelled")  # the first run's call, then its process died
    cancel_order("P-6", reason="the customer cancelled", by="system:pipeline")
    assert len(sandbox.ledger("provisioning", "cancel_job")) == 1  # the second call replayed the first
    [released] = sandbox.ledger("provisioning", "release")
    assert released["response"]["id"] == job["reservation_id"]
    assert order_status("P-6") == "rejected"


def test_an_order_whose_every_line_is_refused_is_cancelled_without_a_checklist_round(responder):
    # 5 Gumbo Mix and 9 Mishi Kobe Niku are discontinued: provisioning refuses both
    receive("P-3", [(5, 1, 21.35, 0), (9, 1, 97.0, 0)])
    assert provisioning("P-3") == "cancelled"
    assert len(steps_of(responder, "provisioning-exception")) == 2
    assert steps_of(responder, "checklist-fix") == []  # nobody is asked to "fix" an empty order
    assert order_status("P-3") == "rejected"
    with session() as s:
        assert "every line was left out" in s.get(Order, "P-3").reason
    # the person deciding on the last line is told that leaving it out cancels the order
    from flows.provisioning import refused_line_step
    from tasks.fulfilment import lines_to_fulfil

    last = lines_to_fulfil("P-3")[-1]
    assert "only line left" in refused_line_step("P-3", last, "discontinued", last_line=True).description
    assert "only line left" not in refused_line_step("P-3", last, "discontinued").description


def test_an_invoice_sent_but_not_recorded_is_sent_again_as_it_was_after_a_catalogue_reload(
    responder, sandbox, monkeypatch
):
    """The first run sends the invoice and its process dies before recording it; meanwhile a
    catalogue reload renames the product. The run again sends the very same request under the
    same key (the billing system replays its answer): one invoice, recorded, as it was checked.
    Drafted afresh, the request changed under the key and the billing system refused it (409)."""
    import flows.billing
    from handoff.core.models import Product

    receive("B-3", [(1, 10, 18.0, 0)], customer="ALFKI")
    assert provisioning("B-3") == "provisioned"

    def died(order_id: str, external_id: str) -> None:
        raise RuntimeError("the process died after the billing system answered")

    with monkeypatch.context() as patched, pytest.raises(RuntimeError, match="process died"):
        patched.setattr(flows.billing, "record_invoice_issued", died)
        billing("B-3")
    with session() as s:
        assert s.get(Invoice, "INV-B-3").status == "sending"
        s.get(Product, 1).name = "Chai, renamed by a catalogue reload"

    assert billing("B-3") == "issued"
    [sent] = sandbox.ledger("billing", "issue_invoice")
    assert sent["request"]["lines"][0]["description"] == "Chai"
    with session() as s:
        invoice = s.get(Invoice, "INV-B-3")
        assert (invoice.status, invoice.external_id) == ("issued", sent["response"]["id"])
        assert invoice.lines[0]["description"] == "Chai"


def test_activation_verifies_every_line_and_the_customer_confirms(responder, sandbox):
    responder.overrides["activation-confirmation"] = lambda step, a: {
        "confirmed": len(steps_of(responder, "activation-confirmation")) > 0,
        "note": "tried",
    }
    receive("A-1", [(1, 3, 18.0, 0), (2, 1, 19.0, 0), (3, 2, 10.0, 0)])
    assert provisioning("A-1") == "provisioned"
    assert activation("A-1") == "activated"
    assert len(steps_of(responder, "activation-confirmation")) == 2  # not confirmed once, asked again
    with session() as s:
        lines = s.scalars(select(FulfilmentLine).where(FulfilmentLine.order_id == "A-1")).all()
    assert all(f.activation_id and f.verified_at for f in lines)
    assert len(sandbox.ledger("activation", "activate")) == 3


def test_billing_issues_one_invoice_that_passes_its_checklist(responder, sandbox):
    receive("B-1", [(1, 700, 18.0, 0.1)], customer="ALFKI")  # Germany: 19 % tax; > 10,000: approval
    assert provisioning("B-1") == "provisioned"
    assert billing("B-1") == "issued"
    with session() as s:
        invoice = s.get(Invoice, "INV-B-1")
    assert invoice.net_total == pytest.approx(700 * 18 * 0.9)
    assert invoice.tax == pytest.approx(round(700 * 18 * 0.9 * 0.19, 2))
    assert invoice.status == "issued"
    assert len(steps_of(responder, "invoice-approval")) == 1
    assert ledger_keys(sandbox, "billing", "issue_invoice") == ["invoice:B-1"]
    assert billing("B-1") == "issued"
    assert ledger_keys(sandbox, "billing", "issue_invoice") == ["invoice:B-1"]


def test_a_held_invoice_comes_back_to_the_approvers_until_it_is_approved_then_is_issued_once(responder, sandbox):
    """A hold ended the run: the order stayed short of billing for good (nothing asked again,
    a re-run refused, the stored "hold" read again). Held, the approval is asked again, with
    why it was held, and the invoice is issued once it is approved."""
    from handoff.core.models import WorkItem

    answers = iter([{"decision": "hold", "note": "customer disputes the quantity"}])
    responder.overrides["invoice-approval"] = lambda step, a: next(answers, {"decision": "approve", "note": "agreed"})
    receive("B-7", [(1, 700, 18.0, 0.1)], customer="ALFKI")  # > 10,000: approval
    assert provisioning("B-7") == "provisioned"
    assert billing("B-7") == "issued"
    asked = steps_of(responder, "invoice-approval")
    assert [answer["decision"] for _, _, answer in asked] == ["hold", "approve"]
    with session() as s:
        again = s.get(WorkItem, asked[1][1])
        assert "held by" in again.description and "customer disputes the quantity" in again.description
        assert s.get(Invoice, "INV-B-7").status == "issued"
    assert ledger_keys(sandbox, "billing", "issue_invoice") == ["invoice:B-7"]


def test_a_failed_invoice_checklist_is_a_defect_routed_to_billing_and_rechecked(responder, sandbox):
    receive("B-2", [(1, 2, 18.0, 0), (1, 3, 18.0, 0)])  # the same product on two lines

    def fix_the_order(step, answer):
        with session() as s:  # the fixer merges the duplicate lines before answering
            order = s.get(Order, "B-2")
            order.lines[0].quantity = 5
            s.delete(s.get(OrderLine, ("B-2", 2)))
        return {"resolution": "fixed", "note": "merged the two Chai lines"}

    responder.overrides["checklist-fix"] = fix_the_order
    assert provisioning("B-2") == "provisioned"
    assert billing("B-2") == "issued"
    with session() as s:
        [defect] = s.scalars(select(Defect).where(Defect.order_id == "B-2")).all()
        fix_item = s.scalar(select(WorkItem).where(WorkItem.work_type == "checklist-fix", WorkItem.order_id == "B-2"))
    assert defect.checklist == "invoice" and defect.resolved_by == fix_item.completed_by
    assert "no_product_is_billed_twice" in {f["rule"] for f in defect.failures}
    assert fix_item.required_skills == {"billing": 2}
    [invoice] = sandbox.ledger("billing", "issue_invoice")
    assert [l["quantity"] for l in invoice["request"]["lines"]] == [5]


def test_a_handoff_meeting_recurs_until_both_sign_and_keeps_the_open_questions(responder, sandbox):
    def operations(step, answer):
        first = not steps_of(responder, "handoff-signoff-operations")
        return {"signed": not first, "open_questions": "who approves rush orders?" if first else ""}

    responder.overrides["handoff-signoff-operations"] = operations
    assert handoff_meeting("AROUT") == "signed"
    with session() as s:
        meetings = s.scalars(
            select(HandoffMeeting).where(HandoffMeeting.customer_id == "AROUT").order_by(HandoffMeeting.attempt)
        ).all()
    assert [m.status for m in meetings] == ["recurs", "signed"]
    assert meetings[1].open_questions == ["who approves rush orders?"]
    assert meetings[1].slot_start >= meetings[0].slot_start
    assert meetings[1].sales_signed_by != meetings[1].operations_signed_by
    assert len(sandbox.ledger("calendar", "book_meeting")) == 2


def test_a_meeting_whose_slot_is_taken_meanwhile_is_booked_at_the_next_free_one(responder, sandbox, monkeypatch):
    """Meetings of several accounts book at once: another one takes the slot this one found
    before it books it (the calendar answers 409); it books the next free slot instead."""

    import flows.handoff_meeting as meeting_flow
    from tasks.calendar import book_meeting
    from tasks.calendar import find_slots

    taken = []

    def found_then_taken(after, duration_minutes, attendees, count=1):
        slots = find_slots.fn(after, duration_minutes, attendees, count)
        if not taken:  # the first slot found goes to another account's meeting first
            taken.append(
                book_meeting.fn(
                    "handoff:OTHER:1", "Handoff meeting: another account", attendees, slots[0].start, slots[0].end
                )
            )
        return slots

    monkeypatch.setattr(meeting_flow, "find_slots", found_then_taken)
    assert handoff_meeting("AROUT") == "signed"
    with session() as s:
        meeting = s.scalar(select(HandoffMeeting).where(HandoffMeeting.customer_id == "AROUT"))
    assert meeting.slot_start >= taken[0].end.astimezone(UTC).replace(tzinfo=None)  # stored as naive UTC
    assert len(sandbox.ledger("calendar", "book_meeting")) == 2  # the other account's and this one


def test_a_meeting_booked_by_a_run_that_died_before_recording_it_is_the_one_the_next_run_keeps(
    responder, sandbox, monkeypatch
):
    """The calendar booked the meeting; the run died before noting it (a kill, or a calendar
    that answered too late at every retry). The next run found the next free slot from "now"
    (ours was busy by then), sent it under the same key, and was refused as a reused key at
    every run: the account's handoff stopped for good. The slot is noted before the booking,
    so the next run sends the same request and keeps the meeting the calendar made."""
    import flows.handoff_meeting as meeting_flow

    class Killed(Exception):
        pass

    def killed(*args, **kwargs):
        raise Killed("the process died after the calendar booked the meeting")

    noted = meeting_flow.record_meeting_slot
    monkeypatch.setattr(meeting_flow, "record_meeting_slot", killed)
    with pytest.raises(Killed):
        handoff_meeting("AROUT")
    [booked] = sandbox.ledger("calendar", "book_meeting")
    monkeypatch.setattr(meeting_flow, "record_meeting_slot", noted)
    assert handoff_meeting("AROUT") == "signed"
    assert sandbox.ledger("calendar", "book_meeting") == [booked]  # booked once
    with session() as s:
        meeting = s.scalar(select(HandoffMeeting).where(HandoffMeeting.customer_id == "AROUT"))
    assert (meeting.calendar_id, meeting.status) == (booked["response"]["id"], "signed")


def test_after_a_person_fixes_an_activation_it_is_verified_again_not_replayed(responder, sandbox, monkeypatch):
    """Each checklist round sent the verifications under the keys of the round before, so an
    activation system that answers a repeated key with its first answer (as every system
    handoff calls must) replayed the failures: five rounds of "fixed", then the order
    cancelled. The round is in the key: after the fix, the line is checked again and passes."""
    import httpx

    from tasks import activation as activation_system
    from tasks.http import SystemClient

    class ActivationUntilConnected:
        """Fails every verification until the customer connects the equipment; answers a
        repeated Idempotency-Key with its first answer."""

        def __init__(self):
            self.connected, self.answers, self.checks = False, {}, []

        def __call__(self, request: httpx.Request) -> httpx.Response:
            key = request.headers["Idempotency-Key"]
            if key in self.answers:
                return httpx.Response(200, json=self.answers[key], headers={"Idempotent-Replay": "true"})
            body = json.loads(request.content or b"{}")
            answer = {
                "id": "ACT-1",
                "order_id": "A-9",
                "resource_id": body.get("resource_id", "R"),
                "status": "pending",
            }
            if request.url.path.endswith("/verify"):
                self.checks.append((key, self.connected))
                answer |= {
                    "status": "active" if self.connected else "failed",
                    "verified": self.connected,
                    "reason": None if self.connected else "no signal: the customer must connect the equipment",
                }
            self.answers[key] = answer
            return httpx.Response(201, json=answer)

    receive("A-9", [(1, 2, 18.0, 0)])
    assert provisioning("A-9") == "provisioned"
    system = ActivationUntilConnected()
    monkeypatch.setattr(
        activation_system.SYSTEM, "client", lambda: SystemClient("activation", transport=httpx.MockTransport(system))
    )

    def connect_then_say_fixed(step, answer):
        system.connected = True
        return {"resolution": "fixed", "note": "the customer connected the equipment"}

    responder.overrides["checklist-fix"] = connect_then_say_fixed
    assert activation("A-9") == "activated"
    assert len(steps_of(responder, "checklist-fix")) == 1
    assert [connected for _, connected in system.checks][-1] is True  # checked again after the fix
    assert len({key for key, _ in system.checks}) == len(system.checks)  # no check sent twice as new


def test_operations_cannot_sign_before_the_requirements_checklist_passes(responder):
    calls = Counter()

    def sales(step, answer):
        calls["sales"] += 1
        return {"decision_maker_contact": "nobody"} if calls["sales"] == 1 else {}

    responder.overrides["handoff-signoff-sales"] = sales
    assert handoff_meeting("BERGS") == "signed"
    with session() as s:
        first = s.scalar(
            select(HandoffMeeting).where(HandoffMeeting.customer_id == "BERGS", HandoffMeeting.attempt == 1)
        )
    assert first.operations_signed_by is None and first.status == "recurs"
    assert len(steps_of(responder, "handoff-signoff-operations")) == 1  # only at the second meeting


@pytest.mark.parametrize("db", ["sqlite", "postgres"], indirect=True)
def test_the_pipeline_takes_an_order_from_entry_to_billing(responder, sandbox):
    receive("O-1", [(10, 2, 31.0, 0.05), (1, 3, 18.0, 0)])
    state = order_pipeline("O-1", return_state=True)
    assert state.result() == "complete"
    with get_client(sync_client=True) as client:  # operators find the run by order and customer
        run = client.read_flow_run(state.state_details.flow_run_id)
    assert {"order:O-1", f"customer:{GOOD_CUSTOMER}", "work-type:order"} <= set(run.tags)
    assert run.name == "order-O-1"
    assert order_status("O-1") == "complete"
    with session() as s:
        assert s.get(Quote, "Q-O-1").status == "sent"
        assert s.get(Invoice, "INV-O-1").status == "issued"
        assert (
            s.scalar(select(HandoffMeeting).where(HandoffMeeting.customer_id == GOOD_CUSTOMER)).status == "to-schedule"
        )
    assert sorted(ledger_keys(sandbox, "provisioning", "provision")) == ["provision:O-1:1", "provision:O-1:2"]
    assert order_pipeline("O-1") == "complete"  # a second event for the same order changes nothing
    assert len(sandbox.ledger("billing", "issue_invoice")) == 1


def test_every_order_completes_under_20pct_errors_and_timeouts_with_each_side_effect_once(responder, sandbox):
    from sandbox.faults import Faults

    orders = [f"F-{n}" for n in range(1, 4)]  # three: bench/soak.py runs thirty in CI
    for n, order_id in enumerate(orders):
        receive(order_id, [(1 + n, 2, 18.0, 0), (20 + n, 1, 81.0, 0)])
    sandbox.set_faults(Faults(error_share=0.2, timeout_share=0.2, timeout_after_share=0.5, stall_seconds=2, seed=7))
    assert [order_pipeline(o) for o in orders] == ["complete"] * len(orders)
    sandbox.set_faults(Faults())
    requests = sandbox.requests()
    assert any(r.get("fault") for r in requests), "no fault was injected"
    for system, operation in [("provisioning", "reserve"), ("provisioning", "provision"), ("billing", "issue_invoice")]:
        keys = ledger_keys(sandbox, system, operation)
        assert len(keys) == len(set(keys)), f"{system}.{operation} happened twice"
    assert len(ledger_keys(sandbox, "provisioning", "provision")) == 2 * len(orders)
    assert len(ledger_keys(sandbox, "billing", "issue_invoice")) == len(orders)
