"""The back office's records: customers and their orders, the people who do the work, the
work items (human steps) pushed to them, and the audit trail and quarantine that make sure
nothing a user submits is ever lost.

The schema is owned by Alembic (handoff/migrations); change a model, then add a revision.
"""

from __future__ import annotations

import enum
from datetime import UTC
from datetime import date
from datetime import datetime
from typing import Any

from sqlalchemy import JSON
from sqlalchemy import BigInteger
from sqlalchemy import Double
from sqlalchemy import ForeignKey
from sqlalchemy import Index
from sqlalchemy import LargeBinary
from sqlalchemy import String
from sqlalchemy import Text
from sqlalchemy import UniqueConstraint
from sqlalchemy.orm import DeclarativeBase
from sqlalchemy.orm import Mapped
from sqlalchemy.orm import Session
from sqlalchemy.orm import mapped_column
from sqlalchemy.orm import relationship


def utcnow() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


class Base(DeclarativeBase):
    # float is DOUBLE PRECISION (as SQLAlchemy 2.1 maps it, and migration 0001 says)
    type_annotation_map = {dict[str, Any]: JSON, list[Any]: JSON, dict[str, int]: JSON, float: Double}


class OrderStatus(enum.StrEnum):
    RECEIVED = "received"
    IN_ORDER_ENTRY = "in-order-entry"
    AWAITING_APPROVAL = "awaiting-approval"
    ACCEPTED = "accepted"  # order entry passed; downstream work may start
    REJECTED = "rejected"
    QUOTED = "quoted"
    PROVISIONED = "provisioned"
    ACTIVATED = "activated"
    BILLED = "billed"
    COMPLETE = "complete"


class QuoteState(enum.StrEnum):
    """A quotation's life: from the customer's request to their answer (or its expiry)."""

    REQUESTED = "requested"  # received, not priced yet
    PRICED = "priced"
    AWAITING_APPROVAL = "awaiting-approval"  # a discount above the threshold waits for a manager
    SENT = "sent"  # with the customer, who accepts or declines before the validity end
    ACCEPTED = "accepted"  # and became an order
    DECLINED = "declined"  # by the customer, or the discount by the manager
    EXPIRED = "expired"  # no answer by the validity end
    SUPERSEDED = "superseded"  # an earlier version, replaced by a revision (a quote's, never a request's)


OPEN_QUOTE_STATES = (QuoteState.REQUESTED, QuoteState.PRICED, QuoteState.AWAITING_APPROVAL, QuoteState.SENT)


class WorkItemState(enum.StrEnum):
    OPEN = "open"  # waiting for a person
    ASSIGNED = "assigned"  # pushed to a rep, not yet started
    STARTED = "started"
    COMPLETED = "completed"
    CANCELLED = "cancelled"


class Presence(enum.StrEnum):
    AVAILABLE = "available"
    AWAY = "away"
    OFFLINE = "offline"


# --- customers and what they buy -------------------------------------------------------


class Customer(Base):
    __tablename__ = "customers"
    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    name: Mapped[str]
    contact_name: Mapped[str | None]
    country: Mapped[str | None]
    billing_account_id: Mapped[str | None]  # in the billing system, once opened
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Product(Base):
    __tablename__ = "products"
    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=False)
    name: Mapped[str]
    category: Mapped[str | None]
    unit_price: Mapped[float]
    discontinued: Mapped[bool] = mapped_column(default=False)


class Order(Base):
    __tablename__ = "orders"
    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    # Not a foreign key: an order for a customer we do not know yet is still kept; the
    # order-entry checklist flags it for a person to resolve.
    customer_id: Mapped[str] = mapped_column(String(40), index=True)
    order_date: Mapped[date]
    due_date: Mapped[date]  # the date promised to the customer
    status: Mapped[OrderStatus] = mapped_column(String(30), default=OrderStatus.RECEIVED)
    source: Mapped[str]  # where it came from: a file name, "northwind", "http"
    total: Mapped[float] = mapped_column(default=0.0)  # sum of the line amounts
    stated_total: Mapped[float | None]  # the total the sender wrote, if any
    reason: Mapped[str | None]  # why it was rejected
    flow_run_id: Mapped[str | None]
    received_at: Mapped[datetime] = mapped_column(default=utcnow)
    announced_at: Mapped[datetime | None]  # when Prefect confirmed order.received (an outbox: re-sent if unset)

    lines: Mapped[list[OrderLine]] = relationship(
        back_populates="order", cascade="all, delete-orphan", order_by="OrderLine.line_no"
    )


class OrderLine(Base):
    __tablename__ = "order_lines"
    order_id: Mapped[str] = mapped_column(ForeignKey("orders.id"), primary_key=True)
    line_no: Mapped[int] = mapped_column(primary_key=True)
    product_id: Mapped[int]
    quantity: Mapped[int]
    unit_price: Mapped[float]
    discount: Mapped[float] = mapped_column(default=0.0)

    order: Mapped[Order] = relationship(back_populates="lines")

    @property
    def amount(self) -> float:
        return round(self.quantity * self.unit_price * (1 - self.discount), 2)


# --- people and the work pushed to them ---------------------------------------------------


class Worker(Base):
    __tablename__ = "workers"
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(80), unique=True)
    role: Mapped[str] = mapped_column(String(20), default="rep")  # rep | supervisor
    capacity: Mapped[int] = mapped_column(default=3)  # open items at once
    open_items: Mapped[int] = mapped_column(default=0)  # kept in step by the router
    presence: Mapped[Presence] = mapped_column(String(20), default=Presence.AVAILABLE)
    timezone: Mapped[str] = mapped_column(String(60), default="UTC")
    shift_start: Mapped[str] = mapped_column(String(5), default="00:00")  # local HH:MM
    shift_end: Mapped[str] = mapped_column(String(5), default="24:00")
    work_days: Mapped[str] = mapped_column(String(20), default="0123456")  # Mon=0
    last_assigned_at: Mapped[datetime | None]
    presence_changed_at: Mapped[datetime] = mapped_column(default=utcnow)
    # Stamped by database triggers on every insert or update (of the worker or their skills):
    # the routers' in-memory indexes re-read only rows changed since they last looked
    # (handoff/core/routing/live.py; migration 0003 explains the ordering guarantee).
    change_seq: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")
    # Signing in (handoff.core.identity): an argon2 hash, never the password; a reset moves
    # password_set_at, which ends every session issued before it.
    password_hash: Mapped[str | None] = mapped_column(String(200))
    password_set_at: Mapped[datetime | None]
    failed_logins: Mapped[int] = mapped_column(default=0, server_default="0")  # in a row, since the last success
    last_login_at: Mapped[datetime | None]

    skills: Mapped[list[WorkerSkill]] = relationship(
        back_populates="worker", cascade="all, delete-orphan", lazy="selectin"
    )

    __table_args__ = (Index("ix_workers_change_seq", "change_seq"),)

    @property
    def skill_levels(self) -> dict[str, int]:
        return {s.skill: s.level for s in self.skills}


class ChangeCounter(Base):
    """SQLite's change counter (one row): the triggers of migration 0003 stamp each changed
    work item or worker with the next value. PostgreSQL uses the sequence routing_change_seq."""

    __tablename__ = "change_counter"
    id: Mapped[int] = mapped_column(primary_key=True)
    seq: Mapped[int] = mapped_column(BigInteger, default=0)


class WorkerSkill(Base):
    __tablename__ = "worker_skills"
    worker_id: Mapped[int] = mapped_column(ForeignKey("workers.id"), primary_key=True)
    skill: Mapped[str] = mapped_column(String(60), primary_key=True)
    level: Mapped[int]  # 1 (learning) .. 5 (expert)

    worker: Mapped[Worker] = relationship(back_populates="skills")


# The largest id a row can have: the id columns are `integer` on PostgreSQL (32 bits). An id
# typed by a person beyond it names no row, and asking the database about it fails outright
# (PostgreSQL: out of range; SQLite past 2**63: overflow): callers check it first.
MAX_ROW_ID = 2**31 - 1


class WorkItem(Base):
    """A human step of a flow: one decision or job a person must do."""

    __tablename__ = "work_items"
    id: Mapped[int] = mapped_column(primary_key=True)
    work_type: Mapped[str] = mapped_column(String(60))
    title: Mapped[str]
    step_key: Mapped[str] = mapped_column(String(120), unique=True)  # one item per business step
    order_id: Mapped[str | None] = mapped_column(ForeignKey("orders.id"))
    required_skills: Mapped[dict[str, int]]  # skill -> minimum level
    priority: Mapped[float] = mapped_column(default=1.0)
    value: Mapped[float] = mapped_column(default=0.0)
    due_at: Mapped[datetime]
    effort_seconds: Mapped[float]
    state: Mapped[WorkItemState] = mapped_column(String(20), default=WorkItemState.OPEN)
    assignee_id: Mapped[int | None] = mapped_column(ForeignKey("workers.id"))
    flow_run_id: Mapped[str | None]
    input_key: Mapped[str | None]  # the key the flow run waits on
    # the attempt it waits on: only goes up, so an answer refused once is never read again
    attempt: Mapped[int] = mapped_column(default=0, server_default="0")
    description: Mapped[str | None] = mapped_column(Text)  # what its flow wrote for reps, for this attempt
    answer_sent_at: Mapped[datetime | None]  # a rep's answer is on its way to the run (lifecycle.answer_in_flight)
    sent_answer: Mapped[dict[str, Any] | None]  # that answer, with its proof: a restarted run takes it from here
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    assigned_at: Mapped[datetime | None]
    started_at: Mapped[datetime | None]
    completed_at: Mapped[datetime | None]
    completed_by: Mapped[str | None]
    outcome: Mapped[str | None]
    note: Mapped[str | None]
    answer: Mapped[dict[str, Any] | None]  # the whole form as submitted
    escalated: Mapped[bool] = mapped_column(default=False)
    version: Mapped[int] = mapped_column(default=0)  # bumped on every change of hands
    change_seq: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")  # as Worker's

    assignee: Mapped[Worker | None] = relationship()

    __table_args__ = (
        Index("ix_work_items_state_due", "state", "due_at"),
        Index("ix_work_items_change_seq", "change_seq"),  # the routers' refresh
        Index("ix_work_items_assignee_state", "assignee_id", "state"),  # a rep's worklist, going offline
    )


def find_work_item(s: Session, item_id: int, populate_existing: bool = False) -> WorkItem | None:
    """The work item with this id, or None; an id no row can have (MAX_ROW_ID) is not asked about."""
    if not 0 < item_id <= MAX_ROW_ID:
        return None
    return s.get(WorkItem, item_id, populate_existing=populate_existing)


# --- what happened, and what was refused --------------------------------------------------


class AuditEvent(Base):
    __tablename__ = "audit_events"
    id: Mapped[int] = mapped_column(primary_key=True)
    at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    actor: Mapped[str]  # a person's name, or "system:<component>"
    entity: Mapped[str]  # "order", "work_item", "worker"
    entity_id: Mapped[str] = mapped_column(String(60))
    action: Mapped[str]
    from_state: Mapped[str | None]
    to_state: Mapped[str | None]
    details: Mapped[dict[str, Any]] = mapped_column(default=dict)

    __table_args__ = (Index("ix_audit_entity", "entity", "entity_id"),)


class LoginAttempt(Base):
    """Every sign-in attempt, kept so the rate limit holds across processes (the web app, the
    CLI) and so a supervisor can see who tried what from where."""

    __tablename__ = "login_attempts"
    id: Mapped[int] = mapped_column(primary_key=True)
    at: Mapped[datetime] = mapped_column(default=utcnow)
    name: Mapped[str] = mapped_column(String(80))  # as typed: may be no worker's name
    client: Mapped[str] = mapped_column(String(80))  # the client address, or "cli"
    succeeded: Mapped[bool] = mapped_column(default=False)
    # a hash of the trusted device's id when it came from a device this name signed in on
    # before (identity.sign_in.issue_device): such attempts are limited per device, not per name
    device: Mapped[str | None] = mapped_column(String(64))

    __table_args__ = (
        Index("ix_login_attempts_name_at", "name", "at"),
        Index("ix_login_attempts_client_at", "client", "at"),
        Index("ix_login_attempts_device_at", "device", "at"),
    )


class EndedSession(Base):
    """A session its person signed out of: its token is refused from then on, wherever a copy
    of it is (a session is a signed token, valid until it expires unless listed here). Kept
    until the token would have expired anyway."""

    __tablename__ = "ended_sessions"
    session_id: Mapped[str] = mapped_column(String(64), primary_key=True)  # sha256 of the session's nonce
    worker_id: Mapped[int]
    ended_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(index=True)


class Quarantine(Base):
    """Input we could not accept, kept whole with the reasons, so nothing is lost."""

    __tablename__ = "quarantine"
    id: Mapped[int] = mapped_column(primary_key=True)
    source: Mapped[str]
    reference: Mapped[str | None]  # the order id, if the input had one
    raw: Mapped[str]  # what was received, as printable text to read (escapes for what is not)
    raw_bytes: Mapped[bytes | None] = mapped_column(LargeBinary)  # exactly what was received
    reasons: Mapped[list[Any]]  # [{"field": ..., "message": ...}]
    received_at: Mapped[datetime] = mapped_column(default=utcnow)
    resolved: Mapped[bool] = mapped_column(default=False)


class OrderCheck(Base):
    """The result of an order's checklist: kept so the approver and reports see the findings."""

    __tablename__ = "order_checks"
    id: Mapped[int] = mapped_column(primary_key=True)
    order_id: Mapped[str] = mapped_column(ForeignKey("orders.id"))
    at: Mapped[datetime] = mapped_column(default=utcnow)
    errors: Mapped[list[Any]]
    warnings: Mapped[list[Any]]

    __table_args__ = (UniqueConstraint("order_id", "at"),)


class Defect(Base):
    """A quality problem found internally: a checklist that failed, on which rows and rules.
    Kept for the defect log of the work-in-progress review."""

    __tablename__ = "defects"
    id: Mapped[int] = mapped_column(primary_key=True)
    key: Mapped[str] = mapped_column(String(160), unique=True)  # one defect per check round
    found_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    order_id: Mapped[str | None] = mapped_column(String(40), index=True)
    work_type: Mapped[str]  # the work in which it was found, e.g. "billing"
    checklist: Mapped[str]  # e.g. "invoice", "order", "provisioning", "requirements"
    failures: Mapped[list[Any]]  # findings: rule, field, lines/rows, values
    fix_item_id: Mapped[int | None] = mapped_column(ForeignKey("work_items.id"))
    resolved_at: Mapped[datetime | None]
    resolved_by: Mapped[str | None]


# --- quotations: a customer's request, the quotes answering it, and its order ------------------


class QuoteRequest(Base):
    """A request for quotation, as received through intake; its state is the quotation's state
    (requested → priced → awaiting-approval → sent → accepted | declined | expired)."""

    __tablename__ = "quote_requests"
    id: Mapped[str] = mapped_column(String(40), primary_key=True)  # the sender's request id
    customer_id: Mapped[str] = mapped_column(String(40), index=True)  # not a foreign key, as orders
    request_date: Mapped[date]
    due_date: Mapped[date]  # when the customer wants delivery: the order's due date if accepted
    lines: Mapped[list[Any]]  # as requested: [{product_id, quantity, discount}]
    status: Mapped[QuoteState] = mapped_column(String(30), default=QuoteState.REQUESTED)
    source: Mapped[str]
    received_at: Mapped[datetime] = mapped_column(default=utcnow)
    announced_at: Mapped[datetime | None]  # when Prefect confirmed quote.requested (the outbox)
    flow_run_id: Mapped[str | None]
    sent_at: Mapped[datetime | None]  # the first version sent: the end of the turnaround
    answered_at: Mapped[datetime | None]  # the customer's answer, or the expiry
    answered_by: Mapped[str | None]  # who recorded it: "http", "cli", a rep's name, "system:expiry"
    order_id: Mapped[str | None] = mapped_column(String(40))  # the order an accepted quote became


class Quote(Base):
    """A priced quote. For a request: one row per version (a revision keeps the one before, as
    superseded); for a discounted order placed without a request: one row, `Q-<order id>`."""

    __tablename__ = "quotes"
    id: Mapped[str] = mapped_column(String(60), primary_key=True)
    order_id: Mapped[str | None] = mapped_column(String(40), index=True)  # the order it priced or became
    request_id: Mapped[str | None] = mapped_column(String(40), index=True)
    version: Mapped[int] = mapped_column(default=1, server_default="1")
    customer_id: Mapped[str] = mapped_column(String(40))
    lines: Mapped[list[Any]]
    list_total: Mapped[float]
    discount: Mapped[float]  # overall share off the list total
    total: Mapped[float]
    status: Mapped[str] = mapped_column(String(30), default="draft")  # a QuoteState; draft|approved on orders' quotes
    valid_until: Mapped[date]
    approved_by: Mapped[str | None]
    sent_at: Mapped[datetime | None]
    crm_ref: Mapped[str | None]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    __table_args__ = (Index("ux_quotes_request_version", "request_id", "version", unique=True),)


# --- downstream work on an order -----------------------------------------------------------


class FulfilmentLine(Base):
    """What the other systems did for one order line: reserved, provisioned, activated."""

    __tablename__ = "fulfilment_lines"
    order_id: Mapped[str] = mapped_column(String(40), primary_key=True)
    line_no: Mapped[int] = mapped_column(primary_key=True)
    reservation_id: Mapped[str | None]
    job_id: Mapped[str | None]
    manual: Mapped[bool] = mapped_column(default=False)  # needs a technician's visit
    resource_id: Mapped[str | None]
    provisioned_at: Mapped[datetime | None]
    activation_id: Mapped[str | None]
    activated_at: Mapped[datetime | None]
    verified_at: Mapped[datetime | None]
    given_back_at: Mapped[datetime | None]  # a cancelled order's reservation released, its job cancelled


class Invoice(Base):
    __tablename__ = "invoices"
    id: Mapped[str] = mapped_column(String(60), primary_key=True)
    order_id: Mapped[str] = mapped_column(String(40), index=True)
    account_id: Mapped[str]
    currency: Mapped[str] = mapped_column(String(3))
    lines: Mapped[list[Any]]
    net_total: Mapped[float]
    tax: Mapped[float]
    total: Mapped[float]
    status: Mapped[str] = mapped_column(String(30), default="draft")  # draft|sending|issued
    external_id: Mapped[str | None]
    issued_at: Mapped[datetime | None]


class HandoffMeeting(Base):
    """Sales hands a new account to operations; it recurs until both sides sign off."""

    __tablename__ = "handoff_meetings"
    id: Mapped[int] = mapped_column(primary_key=True)
    customer_id: Mapped[str] = mapped_column(String(40), index=True)
    order_id: Mapped[str | None] = mapped_column(String(40))
    attempt: Mapped[int] = mapped_column(default=1)
    slot_start: Mapped[datetime | None]
    calendar_id: Mapped[str | None]
    agenda: Mapped[dict[str, Any]]
    open_questions: Mapped[list[Any]] = mapped_column(default=list)
    status: Mapped[str] = mapped_column(String(30), default="scheduled")  # scheduled|signed|recurs
    sales_signed_by: Mapped[str | None]
    operations_signed_by: Mapped[str | None]
    previous_id: Mapped[int | None] = mapped_column(ForeignKey("handoff_meetings.id"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    __table_args__ = (UniqueConstraint("customer_id", "attempt"),)
