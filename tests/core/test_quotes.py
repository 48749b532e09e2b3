"""The customer's answer to a quote: recorded once, refused with a clear reason when it cannot
be taken, and an acceptance makes one order through order intake however many times and from
however many processes it arrives. The order checklist checks an order from a quote against it."""

from __future__ import annotations

import json
import multiprocessing
import re
import threading
from datetime import timedelta

import pytest
from quote_records import sent_quote
from sqlalchemy import func
from sqlalchemy import select

from handoff.core.db import session
from handoff.core.intake import submit_quote_requests
from handoff.core.models import AuditEvent
from handoff.core.models import Order
from handoff.core.models import Quote
from handoff.core.models import QuoteRequest
from handoff.core.models import Worker
from handoff.core.models import WorkItem
from handoff.core.models import WorkItemState
from handoff.core.models import utcnow
from handoff.core.quotes import FOLLOW_UP_CALL
from handoff.core.quotes import AnswerRefused
from handoff.core.quotes import UnknownQuote
from handoff.core.quotes import answer_quote
from handoff.core.quotes import expire_due_quotes
from handoff.core.quotes import follow_up_call_key
from handoff.core.routing.lifecycle import NotAllowed
from handoff.core.routing.lifecycle import complete_item
from handoff.core.sla import business_today

BOTH_DATABASES = pytest.mark.parametrize("db", ["sqlite", "postgres"], indirect=True)
ROUNDS = 6


def orders_of(request_id: str) -> int:
    with session() as s:
        return s.scalar(select(func.count()).select_from(Order).where(Order.source == f"quote:{request_id}"))


def test_an_accepted_quote_becomes_one_order_with_the_quoted_lines(db):
    sent_quote("A-1")
    first = answer_quote("A-1", accept=True, by="http")
    again = answer_quote("A-1", accept=True, by="cli")
    assert (first.order_id, first.again) == ("RFQ-A-1", False)
    assert (again.order_id, again.again) == ("RFQ-A-1", True)
    with session() as s:
        order = s.get(Order, "RFQ-A-1")
        assert [(l.product_id, l.quantity, l.unit_price, l.discount) for l in order.lines] == [(1, 10, 18.0, 0.05)]
        assert (order.total, order.stated_total, str(order.due_date)) == (171.0, 171.0, "2030-04-15")
        request = s.get(QuoteRequest, "A-1")
        assert (request.status, request.answered_by, request.order_id) == ("accepted", "http", "RFQ-A-1")
        assert s.get(Quote, "RFQ-A-1-v1").order_id == "RFQ-A-1"
        assert s.scalar(select(func.count()).select_from(AuditEvent).where(AuditEvent.action == "status:accepted")) == 1
    assert orders_of("A-1") == 1


def test_an_order_cannot_take_the_id_an_accepted_quote_will_need(db):
    """Sent in first, an ordinary order named RFQ-<request> left the quote accepted with no order
    (intake refused the quote's order as a conflicting re-send)."""
    from handoff.core.intake import submit_orders

    sent_quote("S-6")
    squatter = {
        "order_id": "rfq-S-6",
        "customer_id": "ALFKI",
        "order_date": "2030-03-01",
        "due_date": "2030-03-20",
        "lines": [{"product_id": 1, "quantity": 1, "unit_price": 18.0}],
    }
    for order_id in ("RFQ-S-6", "rfq-S-6"):
        result = submit_orders([(json.dumps(squatter), {**squatter, "order_id": order_id})], source="http")
        assert not result.accepted and "kept for the orders accepted quotes become" in str(
            result.quarantined[0].reasons
        )
    assert answer_quote("S-6", accept=True, by="http").order_id == "RFQ-S-6"
    assert orders_of("S-6") == 1


def test_answers_that_cannot_be_taken_are_refused_with_why(db):
    with pytest.raises(UnknownQuote, match='no request for quotation "nope"'):
        answer_quote("nope", accept=True, by="http")
    with pytest.raises(UnknownQuote) as long_one:  # an id from outside is quoted short, not echoed whole
        answer_quote("x" * 5000, accept=True, by="http")
    assert len(str(long_one.value)) < 200 and "5,000 characters" in str(long_one.value)
    sent_quote("A-2")
    answer_quote("A-2", accept=False, by="http")
    with pytest.raises(
        AnswerRefused, match=r"quote A-2 was already declined on .* \(recorded by http\); it cannot be accepted"
    ):
        answer_quote("A-2", accept=True, by="cli")
    sent_quote("A-3", valid_days=-1)  # its validity ended yesterday
    with pytest.raises(AnswerRefused, match="quote A-3 expired .* cannot be accepted"):
        answer_quote("A-3", accept=True, by="http")
    with session() as s:
        assert s.get(QuoteRequest, "A-3").status == "expired"
    rfq = {"request_id": "A-4", "customer_id": "ALFKI", "request_date": "2030-03-01", "due_date": "2030-04-15",
           "lines": [{"product_id": 1, "quantity": 1}]}  # fmt: skip
    submit_quote_requests([(json.dumps(rfq), rfq)], source="test", announce=False)
    with pytest.raises(AnswerRefused, match="has not been sent to the customer yet"):
        answer_quote("A-4", accept=True, by="http")
    assert orders_of("A-2") == orders_of("A-3") == orders_of("A-4") == 0


def test_quotes_past_their_validity_expire(db):
    sent_quote("A-5", valid_days=1)
    assert expire_due_quotes(business_today() + timedelta(days=1)) == []
    assert expire_due_quotes(business_today() + timedelta(days=2)) == ["A-5"]
    with session() as s:
        assert s.get(QuoteRequest, "A-5").status == s.get(Quote, "RFQ-A-5-v1").status == "expired"


def test_an_order_that_differs_from_its_accepted_quote_fails_the_checklist(db, catalogue):
    from tasks.orders import run_order_checklist

    sent_quote("A-6")
    answer_quote("A-6", accept=True, by="http")
    assert not [f for f in run_order_checklist.fn("RFQ-A-6").errors if "quote" in f["rule"]]
    with session() as s:
        s.get(Order, "RFQ-A-6").lines[0].unit_price = 17.0
    rules = {f["rule"] for f in run_order_checklist.fn("RFQ-A-6").errors}
    assert {"every_line_is_as_in_the_accepted_quote", "order_matches_the_accepted_quote"} <= rules


@pytest.mark.committed
def test_two_threads_accepting_at_once_make_one_order(db):
    sent_quote("T-1")
    barrier, answers, errors = threading.Barrier(4), [], []

    def accept() -> None:
        barrier.wait(timeout=30)
        try:
            answers.append(answer_quote("T-1", accept=True, by="http"))
        except Exception as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=accept) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert errors == []
    assert {a.order_id for a in answers} == {"RFQ-T-1"} and sum(not a.again for a in answers) == 1
    assert orders_of("T-1") == 1


def answering_process(url: str, who: int, barrier, results) -> None:
    """Answer each round's quote at the same moment as the other process: both accept in even
    rounds; in odd rounds this one accepts while the other declines."""
    from handoff.core.settings import settings

    settings.database_url = url
    from handoff.core.db import engine
    from handoff.core.quotes import AnswerRefused
    from handoff.core.quotes import answer_quote

    engine()
    for r in range(ROUNDS):
        accept = who == 0 or r % 2 == 0
        barrier.wait(timeout=60)
        try:
            a = answer_quote(f"P-{r}", accept=accept, by=f"process-{who}")
            results.put((who, r, a.state, a.order_id, a.again))
        except AnswerRefused as refused:
            results.put((who, r, "refused", str(refused), None))
        except Exception as exc:  # noqa: BLE001 - the very thing this test is about
            results.put((who, r, "error", f"{type(exc).__name__}: {exc}", None))


@BOTH_DATABASES
@pytest.mark.committed
def test_two_processes_answering_one_quote_at_once(db):
    for r in range(ROUNDS):
        sent_quote(f"P-{r}")
    ctx = multiprocessing.get_context("spawn")
    barrier, results = ctx.Barrier(2), ctx.Queue()
    procs = [ctx.Process(target=answering_process, args=(db, who, barrier, results)) for who in (0, 1)]
    for p in procs:
        p.start()
    outcomes = [results.get(timeout=180) for _ in range(2 * ROUNDS)]
    for p in procs:
        p.join(timeout=30)
        assert p.exitcode == 0
    assert [o for o in outcomes if o[2] == "error"] == []
    for r in range(ROUNDS):
        pair = [o for o in outcomes if o[1] == r]
        if r % 2 == 0:  # both accept: one order, both told it
            assert {o[3] for o in pair} == {f"RFQ-P-{r}"} and sorted(o[4] for o in pair) == [False, True]
        else:  # accept and decline: one wins, the other is refused with what the quote is
            assert sorted(o[2] for o in pair) in (["accepted", "refused"], ["declined", "refused"])
        assert orders_of(f"P-{r}") == (1 if any(o[2] == "accepted" for o in pair) else 0)


def a_follow_up_call(request_id: str, rep: Worker | None) -> int:
    """The call after the offer for the request's quote, waiting in `rep`'s worklist (or open)."""
    with session() as s:
        item = WorkItem(
            work_type=FOLLOW_UP_CALL,
            step_key=follow_up_call_key(f"RFQ-{request_id}-v1"),
            title=f"Call ALFKI about quote {request_id}",
            required_skills={"quotation": 1},
            due_at=utcnow() + timedelta(hours=8),
            effort_seconds=600,
            state=WorkItemState.ASSIGNED if rep else WorkItemState.OPEN,
            assignee_id=rep.id if rep else None,
            flow_run_id="a-suspended-run",
            input_key="work-item-call",
        )
        s.add(item)
        if rep is not None:
            s.get(Worker, rep.id).open_items += 1
        s.flush()
        return item.id


def test_an_answer_through_the_crm_takes_the_open_call_out_of_the_worklist(db, reps):
    with session() as s:
        rep = s.scalars(select(Worker).where(Worker.role != "supervisor")).first()
        s.expunge(rep)
    sent_quote("A-9")
    sent_quote("A-10")
    call = a_follow_up_call("A-9", rep)
    other = a_follow_up_call("A-10", None)
    with session() as s:
        load_before = s.get(Worker, rep.id).open_items

    answer_quote("A-9", accept=False, by="crm")
    with session() as s:
        assert s.get(WorkItem, call).state == WorkItemState.CANCELLED
        assert s.get(WorkItem, other).state == WorkItemState.OPEN  # another customer's call stays
        assert s.get(Worker, rep.id).open_items == load_before - 1
        (cancelled,) = s.scalars(select(AuditEvent).where(AuditEvent.action == "cancelled")).all()
        assert (cancelled.entity_id, cancelled.details["reason"]) == (
            str(call),
            "the customer declined the quote (recorded by crm)",
        )
        # The rep, who had not called yet, is told there is nothing to complete.
        with pytest.raises(NotAllowed, match="already cancelled"):
            complete_item(s, call, rep.name, outcome="done")
    answer_quote("A-9", accept=False, by="crm")  # the same answer again cancels nothing more
    with session() as s:
        assert s.scalar(select(func.count()).select_from(AuditEvent).where(AuditEvent.action == "cancelled")) == 1


def test_an_accepted_quote_whose_order_could_not_be_made_is_a_problem_case(db):
    """The customer said yes; if the order intake refuses the order (here: the order id was
    stored earlier with other content, as before the RFQ- prefix was kept), the review lists
    it until someone acts, instead of nothing happening."""
    from handoff.analytics.reports import problem_cases
    from handoff.core.intake import submit_orders

    sent_quote("P-1")
    other = {
        "order_id": "RFQ-P-1",
        "customer_id": "ALFKI",
        "order_date": "2030-03-01",
        "due_date": "2030-03-20",
        "lines": [{"product_id": 2, "quantity": 9, "unit_price": 19.0}],
    }
    assert submit_orders([(json.dumps(other), other)], source="quote:P-1").accepted == ["RFQ-P-1"]
    with pytest.raises(AnswerRefused, match="refused by order intake"):
        answer_quote("P-1", accept=True, by="http")
    with session() as s:
        assert s.get(QuoteRequest, "P-1").status == "accepted" and s.get(QuoteRequest, "P-1").order_id is None
        soon = [c for c in problem_cases(s, utcnow()) if c.subject == "request for quotation P-1"]
        later = [
            c for c in problem_cases(s, utcnow() + timedelta(minutes=11)) if c.subject == "request for quotation P-1"
        ]
    assert soon == []  # its order may still be on its way
    assert later and later[0].problems == ["accepted quote without its order"]


def test_the_customer_s_answer_on_the_call_sent_first_is_not_overtaken_by_one_through_the_crm(db, reps):
    """A rep sent the customer's decline from the follow-up call; before the (suspended) run
    recorded it, the customer's acceptance came through the CRM, won, cancelled the call and
    made an order — the decline lost (found by an outside tester). An answer on its way is
    first: the CRM's is refused, the call stays; once the rep's answer is refused by its run,
    or a mark is stale (its sender died before sending), the CRM's answer is taken again."""
    from handoff.core.routing.lifecycle import ANSWER_IN_FLIGHT

    with session() as s:
        rep = s.scalars(select(Worker).where(Worker.role != "supervisor")).first()
        s.expunge(rep)
    sent_quote("F-1")
    call = a_follow_up_call("F-1", rep)
    with session() as s:
        s.get(WorkItem, call).answer_sent_at = utcnow()  # as handoff.runtime.steps marks it, before resuming
    with pytest.raises(AnswerRefused, match="a rep has just sent the customer's answer"):
        answer_quote("F-1", accept=True, by="http")
    with session() as s:
        assert s.get(QuoteRequest, "F-1").status == "sent" and s.get(WorkItem, call).state == WorkItemState.ASSIGNED
        assert s.scalar(select(func.count()).select_from(Order)) == 0
        s.get(WorkItem, call).answer_sent_at = utcnow() - ANSWER_IN_FLIGHT - timedelta(seconds=1)
    assert answer_quote("F-1", accept=True, by="http").order_id == "RFQ-F-1"
    with session() as s:
        assert s.get(WorkItem, call).state == WorkItemState.CANCELLED


def test_a_quote_that_could_not_become_an_order_cannot_be_accepted_into_limbo(db):
    """Accepted first and refused by order intake after, a too-large quote stayed accepted with
    no order, for good. The would-be order is checked before the acceptance is recorded; the
    quote stays with the customer, to be re-quoted."""
    sent_quote("BIG-1")
    with session() as s:
        quote = s.get(Quote, "RFQ-BIG-1-v1")
        quote.lines = [{"product_id": 38, "quantity": 100_000, "unit_price": 263.5, "discount": 0.0}] * 40
        quote.total = 1_054_000_000.0
    with pytest.raises(AnswerRefused, match="cannot become an order.*new quote"):
        answer_quote("BIG-1", accept=True, by="http")
    with session() as s:
        assert s.get(QuoteRequest, "BIG-1").status == "sent"
    assert answer_quote("BIG-1", accept=False, by="http").state == "declined"  # it can still be answered


def test_a_quote_s_days_are_the_business_s_days_wherever_the_machine_is(db, monkeypatch):
    """Validity and expiry used the machine's date, the order's date the UTC one: with the
    business in Kiritimati (UTC+14), an order from a quote accepted at once was dated the day
    before its request. One calendar: the business's time zone."""
    from datetime import date
    from datetime import datetime

    from handoff.core import sla

    monkeypatch.setenv(sla.ENV_VAR, json.dumps({"business_hours": {"timezone": "Pacific/Kiritimati"}}))
    sla.reload_config()
    try:
        assert sla.business_today(datetime(2026, 11, 30, 12, 0)) == date(2026, 12, 1)
        sent_quote("TZ-1")
        with session() as s:
            s.get(Quote, "RFQ-TZ-1-v1").valid_until = sla.business_today()
        answered = answer_quote("TZ-1", accept=True, by="http")  # on its last valid day there: taken
        with session() as s:
            request = s.get(QuoteRequest, "TZ-1")
            assert s.get(Order, answered.order_id).order_date == sla.business_today(request.answered_at)
    finally:
        monkeypatch.delenv(sla.ENV_VAR)
        sla.reload_config()


def rfq(request_id: str, lines: list[dict]) -> list:
    """Submit a request for quotation with these lines; what intake accepted."""
    data = {
        "request_id": request_id,
        "customer_id": "ALFKI",
        "request_date": "2030-03-01",
        "due_date": "2030-04-15",
        "lines": lines,
    }
    return submit_quote_requests([(json.dumps(data), data)], source="test", announce=False).accepted


@pytest.mark.parametrize(
    ("lines", "why"),
    [
        ([{"product_id": 29, "quantity": 5}], r"no longer sold: \[29\]"),  # discontinued in Northwind
        ([{"product_id": 38, "quantity": 100_000}] * 40, "more than one order may be"),
    ],
)
def test_a_request_that_could_never_become_an_order_is_declined_when_priced(db, catalogue, lines, why):
    """A discontinued product was quoted, sent and ordered; a 1,054,000,000 quote was sent and
    then could not become an order. Both are declined at pricing, with the reason for sales."""
    from tasks.quotes import price_request

    assert rfq("NO-1", lines) == ["NO-1"]
    quote = price_request.fn("NO-1")
    assert quote.state == "declined" and quote.quote_id is None
    with session() as s:
        event = s.scalars(
            select(AuditEvent).where(AuditEvent.entity_id == "NO-1").order_by(AuditEvent.id.desc())
        ).first()
    assert event.to_state == "declined" and re.search(why, event.details["reason"])


def test_a_request_cannot_ask_for_a_whole_line_free(db):
    """The RFQ contract took a discount of 1 that the CRM refuses: the manager approved it and
    the quotation then failed on every run. A quote gives nothing away whole."""
    from handoff.core.models import Quarantine

    assert rfq("FREE-1", [{"product_id": 1, "quantity": 5, "discount": 1.0}]) == []
    with session() as s:
        assert "discount" in json.dumps(s.scalars(select(Quarantine)).all()[-1].reasons)
    assert rfq("FREE-2", [{"product_id": 1, "quantity": 5, "discount": 0.99}]) == ["FREE-2"]


@pytest.mark.committed
@pytest.mark.parametrize("db", ["sqlite", "postgres"], indirect=True)
def test_an_acceptance_made_while_the_expiry_sweep_expires_the_quote_waits_and_is_refused(db, monkeypatch):
    """On PostgreSQL the sweep read a quote as sent, an acceptance committed meanwhile (its
    order made), and the sweep wrote "expired" over "accepted": an order from an expired quote.
    The sweep now holds the quote's row from its read: the acceptance waits for it, and is told
    the quote expired. Either way round, the quote's state and its order agree."""
    import time

    from handoff.core import quotes

    sent_quote("E-1", valid_days=1)
    read, real_expire = threading.Event(), quotes.expire

    def expire_slowly(s, request, today):  # noqa: ANN001
        read.set()  # the sweep has read the quote as sent
        time.sleep(1.5)  # while the customer accepts
        real_expire(s, request, today)

    monkeypatch.setattr(quotes, "expire", expire_slowly)
    swept, answers = [], []
    sweep = threading.Thread(target=lambda: swept.append(expire_due_quotes(business_today() + timedelta(days=2))))
    sweep.start()
    assert read.wait(timeout=30)

    def accept() -> None:
        try:
            answers.append(answer_quote("E-1", accept=True, by="http"))
        except AnswerRefused as refused:
            answers.append(refused)

    customer = threading.Thread(target=accept)
    customer.start()
    sweep.join(timeout=60)
    customer.join(timeout=60)
    assert swept == [["E-1"]]
    [answer] = answers
    assert isinstance(answer, AnswerRefused) and "expired" in str(answer)
    with session() as s:
        assert s.get(QuoteRequest, "E-1").status == "expired"
    assert orders_of("E-1") == 0


@pytest.mark.parametrize("db", ["sqlite", "postgres"], indirect=True)
def test_an_answer_to_an_id_with_a_nul_is_an_unknown_quote(db):
    """PostgreSQL cannot be asked about a NUL: POST /quotes/a%00b/answer was a 500."""
    with pytest.raises(UnknownQuote):
        answer_quote("a\x00b", accept=True, by="http")
