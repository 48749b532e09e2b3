"""The sandbox's HTTP API, called directly over real HTTP: idempotency, status codes, ledger."""

from __future__ import annotations

from datetime import date
from datetime import timedelta

import pytest

from sandbox.core import amounts_agree
from sandbox.reference import bucket

RESERVATION = {"order_id": "10248", "line_no": 1, "product_id": 11, "quantity": 12}
SEAFOOD = 10  # Ikura: Seafood needs a technician
DISCONTINUED = 5  # Chef Anton's Gumbo Mix


def post(api, path, body, key=None):
    return api.post(path, json=body, headers={"Idempotency-Key": key} if key else {})


def reserve(api, key="reserve:10248:1", **changes):
    return post(api, "/provisioning/reservations", {**RESERVATION, **changes}, key)


def provisioned_resource(api, order_id="10248", line_no=1, product_id=11):
    reservation = reserve(
        api, key=f"reserve:{order_id}:{line_no}", order_id=order_id, line_no=line_no, product_id=product_id
    ).json()
    job = post(
        api,
        "/provisioning/provisioning-jobs",
        {"order_id": order_id, "line_no": line_no, "reservation_id": reservation["id"]},
        f"provision:{order_id}:{line_no}",
    ).json()
    return job["resource_id"]


def invoice_body(account_id, total=178.0):
    return {
        "account_id": account_id,
        "order_id": "10248",
        "currency": "USD",
        "tax": 10.0,
        "total": total,
        "lines": [{"description": "Queso Cabrales", "quantity": 12, "unit_price": 14.0, "amount": 168.0}],
    }


def test_repeating_a_key_returns_the_first_answer_and_does_the_work_once(api, sandbox):
    first = reserve(api)
    again = reserve(api)

    assert first.status_code == 201 and "Idempotent-Replay" not in first.headers
    assert again.status_code == 200 and again.headers["Idempotent-Replay"] == "true"
    assert again.json() == first.json()
    assert first.json()["id"] == "RSV-000001"
    [entry] = sandbox.ledger()
    assert entry["system"] == "provisioning" and entry["operation"] == "reserve"
    assert entry["idempotency_key"] == "reserve:10248:1"
    assert entry["request"] == RESERVATION
    assert entry["response"] == first.json()
    assert entry["resource"] == "reservations/RSV-000001" and entry["status_code"] == 201
    assert api.get("/ledger").json()["entries"] == [entry]


SIDE_EFFECTS = [
    ("/crm/customers/ALFKI/credit-checks", {"order_id": "1", "amount": 10}),
    (
        "/crm/quotes",
        {
            "quote_id": "Q1",
            "customer_id": "ALFKI",
            "total": 28.0,
            "valid_until": "2999-01-01",
            "lines": [{"product_id": 11, "quantity": 2, "unit_price": 14.0}],
        },
    ),
    ("/provisioning/reservations", RESERVATION),
    ("/provisioning/provisioning-jobs", {"order_id": "1", "line_no": 1, "reservation_id": "RSV-000001"}),
    ("/provisioning/provisioning-jobs/JOB-000001/complete", {"technician": "Robert King"}),
    ("/activation/activations", {"order_id": "1", "resource_id": "RES-000001"}),
    ("/activation/activations/ACT-000001/verify", {}),
    ("/billing/accounts", {"customer_id": "ALFKI"}),
    ("/billing/invoices", invoice_body("BA-000001")),
    (
        "/calendar/meetings",
        {"title": "Handoff", "attendees": ["sales"], "start": "2030-01-07T10:00:00Z", "end": "2030-01-07T11:00:00Z"},
    ),
]


@pytest.mark.parametrize(("path", "body"), SIDE_EFFECTS, ids=[p for p, _ in SIDE_EFFECTS])
def test_every_side_effect_needs_an_idempotency_key(api, sandbox, path, body):
    response = post(api, path, body)
    assert response.status_code == 400
    assert response.json()["error"] == "idempotency_key_missing"
    assert sandbox.ledger() == []


def test_a_key_reused_for_a_different_request_is_a_conflict(api, sandbox):
    reserve(api)
    response = reserve(api, quantity=13)
    assert response.status_code == 409
    assert response.json()["error"] == "idempotency_key_reused"
    assert len(sandbox.ledger()) == 1


def test_a_malformed_request_is_400_so_that_422_always_means_a_business_no(api, sandbox):
    response = reserve(api, line_no="first")
    assert response.status_code == 400
    assert "line_no" in response.json()["reason"]
    assert post(api, "/provisioning/reservations", {**RESERVATION, "colour": "red"}, "k").status_code == 400


def test_a_business_rejection_is_422_with_a_reason_and_is_not_recorded(api, sandbox):
    response = reserve(api, product_id=DISCONTINUED)
    assert response.status_code == 422
    assert response.json() == {
        "error": "product_discontinued",
        "reason": "product 5 (Chef Anton's Gumbo Mix) is discontinued",
    }
    assert sandbox.ledger() == []


def test_after_a_rejection_the_same_key_can_carry_the_corrected_request(api, sandbox):
    account = post(api, "/billing/accounts", {"customer_id": "ALFKI"}, "billing-account:ALFKI").json()
    wrong = post(api, "/billing/invoices", invoice_body(account["id"], total=170.0), "invoice:10248")
    right = post(api, "/billing/invoices", invoice_body(account["id"]), "invoice:10248")
    assert wrong.status_code == 422 and wrong.json()["error"] == "total_mismatch"
    assert right.status_code == 201 and right.json()["status"] == "issued"
    assert [e["operation"] for e in sandbox.ledger()] == ["open_account", "issue_invoice"]


def test_unknown_ids_are_404(api, sandbox):
    assert api.get("/crm/customers/NOBODY").status_code == 404
    assert api.get("/provisioning/provisioning-jobs/JOB-999999").json()["error"] == "not_found"
    assert reserve(api, product_id=999).status_code == 404
    assert post(api, "/activation/activations", {"order_id": "1", "resource_id": "RES-9"}, "a").status_code == 404
    assert post(api, "/billing/invoices", invoice_body("BA-999999"), "i").status_code == 404


def test_doing_it_again_under_another_key_is_a_conflict_naming_what_exists(api, sandbox):
    first = reserve(api).json()
    response = reserve(api, key="someone-else")
    assert response.status_code == 409
    assert response.json()["existing_id"] == first["id"]
    assert (
        response.json()["reason"]
        == f"order {first['order_id']} line {first['line_no']} is already reserved as {first['id']}"
    )
    account = post(api, "/billing/accounts", {"customer_id": "ALFKI"}, "billing-account:ALFKI").json()
    again = post(api, "/billing/accounts", {"customer_id": "ALFKI"}, "other")
    assert again.status_code == 409
    assert again.json() == {
        "error": "account_exists",
        "reason": f"customer ALFKI already has billing account {account['id']}",
        "existing_id": account["id"],
    }


def test_credit_checks_decline_customers_on_hold_and_amounts_above_the_limit(api, sandbox):
    reference = sandbox.sandbox.reference
    on_hold = reference.on_hold()[0]
    small = next(c for c in reference.customers.values() if c.credit_status == "ok" and c.credit_limit == 3000)

    def check(customer, order_id, amount):
        response = post(
            api,
            f"/crm/customers/{customer}/credit-checks",
            {"order_id": order_id, "amount": amount},
            f"credit-check:{order_id}",
        )
        assert response.status_code == 201
        return response.json()

    assert check(small.id, "1", 2999.0)["decision"] == "approved"
    declined = check(small.id, "2", 3000.5)
    assert declined["decision"] == "declined" and "credit limit" in declined["reason"]
    held = check(on_hold, "3", 1.0)
    assert held["decision"] == "declined" and "credit hold" in held["reason"]
    assert len(sandbox.ledger("crm", "check_credit")) == 3  # every decision is on record
    assert api.get(f"/crm/customers/{on_hold}").json()["credit_status"] == "hold"


def test_a_quote_is_sent_once_and_must_add_up(api, sandbox):
    body = {
        "quote_id": "Q-1",
        "customer_id": "ALFKI",
        "total": 14.0,
        "valid_until": (date.today() + timedelta(days=30)).isoformat(),
        "lines": [{"product_id": 11, "quantity": 2, "unit_price": 14.0, "discount": 0.5}],
    }
    sent = post(api, "/crm/quotes", body, "quote:Q-1")
    assert sent.status_code == 201 and sent.json()["sent_to"] == "Maria Anders"
    assert post(api, "/crm/quotes", {**body, "total": 28.0}, "quote:Q-1b").json()["error"] == "total_mismatch"
    expired = {**body, "quote_id": "Q-2", "valid_until": "2020-01-01"}
    assert post(api, "/crm/quotes", expired, "quote:Q-2").json()["error"] == "quote_expired"
    assert post(api, "/crm/quotes", body, "quote:Q-1-again").status_code == 409
    assert api.get("/crm/quotes/Q-1").json()["status"] == "sent"


def test_chilled_products_wait_for_a_technician_before_they_can_be_activated(api, sandbox):
    reservation = reserve(api, product_id=SEAFOOD).json()
    assert reservation["needs_technician"] is True
    job = post(
        api,
        "/provisioning/provisioning-jobs",
        {"order_id": "10248", "line_no": 1, "reservation_id": reservation["id"]},
        "provision:10248:1",
    ).json()
    assert job["status"] == "awaiting_technician" and job["resource_id"] is None
    assert "Seafood" in job["visit_reason"]

    done = post(
        api,
        f"/provisioning/provisioning-jobs/{job['id']}/complete",
        {"technician": "Robert King"},
        f"complete-visit:{job['id']}",
    )
    assert done.status_code == 200
    assert done.json()["status"] == "provisioned" and done.json()["resource_id"] == "RES-000001"
    again = post(api, f"/provisioning/provisioning-jobs/{job['id']}/complete", {"technician": "X"}, "other")
    assert again.status_code == 409
    assert api.get(f"/provisioning/provisioning-jobs/{job['id']}").json()["technician"] == "Robert King"


def test_a_job_must_use_its_own_lines_reservation(api, sandbox):
    reservation = reserve(api).json()
    wrong = post(
        api,
        "/provisioning/provisioning-jobs",
        {"order_id": "10248", "line_no": 2, "reservation_id": reservation["id"]},
        "p",
    )
    assert wrong.status_code == 422 and wrong.json()["error"] == "reservation_mismatch"


def test_verification_fails_first_for_a_stable_share_of_resources_then_succeeds(api, sandbox):
    resource_id = provisioned_resource(api)
    activation = post(
        api,
        "/activation/activations",
        {"order_id": "10248", "resource_id": resource_id},
        f"activate:10248:{resource_id}",
    ).json()
    assert activation["status"] == "pending"
    fails_first = bucket("verify", resource_id) < 10
    assert fails_first  # RES-000001 is in the failing 10 %; the rule is stable across runs

    first = post(api, f"/activation/activations/{activation['id']}/verify", {}, "verify:1").json()
    assert first["verified"] is False and "confirm" in first["reason"]
    second = post(api, f"/activation/activations/{activation['id']}/verify", {}, "verify:2").json()
    assert second["verified"] is True and second["status"] == "active" and second["verifications"] == 2
    assert (
        post(api, "/activation/activations", {"order_id": "10248", "resource_id": resource_id}, "again").status_code
        == 409
    )


def test_slots_are_in_business_hours_and_skip_booked_time(api, sandbox):
    # 2030-01-05 is a Saturday: the first slots are Monday from 09:00 UTC.
    slots = api.get(
        "/calendar/slots",
        params={"after": "2030-01-05T12:00:00Z", "duration": 60, "attendees": ["sales", "ops"], "count": 2},
    ).json()["slots"]
    assert [s["start"] for s in slots] == ["2030-01-07T09:00:00+00:00", "2030-01-07T09:30:00+00:00"]

    meeting = {
        "title": "Handoff: Alfreds",
        "attendees": ["sales", "ops"],
        "start": slots[0]["start"],
        "end": slots[0]["end"],
        "agenda": "requirements, contacts, training",
    }
    assert post(api, "/calendar/meetings", meeting, "meeting:handoff:BA-1:1").status_code == 201
    after = api.get(
        "/calendar/slots", params={"after": "2030-01-05T12:00:00Z", "duration": 60, "attendees": ["ops"], "count": 1}
    ).json()["slots"]
    assert after[0]["start"] == "2030-01-07T10:00:00+00:00"
    clash = post(api, "/calendar/meetings", {**meeting, "attendees": ["ops", "cs"]}, "meeting:other")
    assert clash.status_code == 409 and clash.json()["existing_id"] == "MTG-000001"
    evening = {**meeting, "start": "2030-01-07T17:00:00Z", "end": "2030-01-07T18:00:00Z"}
    assert post(api, "/calendar/meetings", evening, "meeting:late").json()["error"] == "outside_business_hours"


def test_the_ledger_can_be_read_per_system_and_operation(api, sandbox):
    reserve(api)
    post(api, "/billing/accounts", {"customer_id": "ALFKI"}, "billing-account:ALFKI")
    assert [e["system"] for e in sandbox.ledger()] == ["provisioning", "billing"]
    assert [e["seq"] for e in sandbox.ledger()] == [1, 2]
    assert api.get("/ledger", params={"system": "billing"}).json()["entries"] == sandbox.ledger("billing")
    assert sandbox.ledger("provisioning", "provision") == []


def test_totals_must_agree_to_the_cent_with_slack_for_rounded_line_amounts():
    exact = 3 * (7 * 0.335)  # three lines of 2.345 each: 7.035 exact, 7.05 as a sum of rounded amounts
    assert amounts_agree(7.05, exact, rounded_terms=3) and amounts_agree(7.04, exact, rounded_terms=3)
    assert not amounts_agree(7.10, exact, rounded_terms=3)
    assert amounts_agree(168.0, 12 * 14.0) and not amounts_agree(168.02, 12 * 14.0)


def test_a_job_is_cancelled_before_its_reservation_is_released_and_each_only_once(api, sandbox):
    resource = provisioned_resource(api)
    [job] = [e["response"] for e in sandbox.ledger("provisioning", "provision")]
    reservation_id = job["reservation_id"]
    why = {"reason": "order 10248 cancelled"}

    early = post(api, f"/provisioning/reservations/{reservation_id}/release", why, f"release:{reservation_id}")
    assert early.status_code == 409 and early.json()["error"] == "reservation_in_a_job"
    assert job["id"] in early.json()["reason"]

    cancelled = post(api, f"/provisioning/provisioning-jobs/{job['id']}/cancel", why, f"cancel-job:{job['id']}")
    assert cancelled.status_code == 200 and cancelled.json()["status"] == "cancelled"
    assert cancelled.json()["resource_id"] == resource and cancelled.json()["status_reason"] == why["reason"]
    replay = post(api, f"/provisioning/provisioning-jobs/{job['id']}/cancel", why, f"cancel-job:{job['id']}")
    assert replay.headers["Idempotent-Replay"] == "true" and replay.json() == cancelled.json()
    again = post(api, f"/provisioning/provisioning-jobs/{job['id']}/cancel", why, "another-key")
    assert again.status_code == 409 and again.json()["error"] == "already_cancelled"

    released = post(api, f"/provisioning/reservations/{reservation_id}/release", why, f"release:{reservation_id}")
    assert released.status_code == 200 and released.json()["status"] == "released"
    assert api.get(f"/provisioning/reservations/{reservation_id}").json()["status"] == "released"
    again = post(api, f"/provisioning/reservations/{reservation_id}/release", why, "yet-another-key")
    assert again.status_code == 409 and again.json()["error"] == "already_released"
    assert [e["operation"] for e in sandbox.ledger("provisioning")] == ["reserve", "provision", "cancel_job", "release"]

    # what was given back is not used again: no activation of the resource, no job on the reservation
    activated = post(api, "/activation/activations", {"order_id": "10248", "resource_id": resource}, "activate:x")
    assert activated.status_code == 422 and "cancelled" in activated.json()["reason"]
    job_again = post(
        api,
        "/provisioning/provisioning-jobs",
        {"order_id": "10248", "line_no": 1, "reservation_id": reservation_id},
        "provision:again",
    )
    assert job_again.status_code == 422 and job_again.json()["error"] == "reservation_released"


def test_giving_back_what_does_not_exist_or_without_a_reason_is_refused(api):
    assert post(api, "/provisioning/provisioning-jobs/JOB-999999/cancel", {"reason": "x"}, "k1").status_code == 404
    assert post(api, "/provisioning/reservations/RSV-999999/release", {"reason": "x"}, "k2").status_code == 404
    reservation = reserve(api).json()
    empty = post(api, f"/provisioning/reservations/{reservation['id']}/release", {"reason": ""}, "k3")
    assert empty.status_code == 400  # the sandbox's answer to a body that fails validation
    assert api.get(f"/provisioning/reservations/{reservation['id']}").json()["status"] == "reserved"
