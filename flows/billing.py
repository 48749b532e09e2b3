"""Billing: open the customer's billing account and issue the order's first invoice.

Steps:
1. Open (or find) the customer's billing account.
2. Draft the invoice from the lines that were provisioned.
3. Invoice checklist: line totals, tax, currency, no duplicate lines, invoice total.
4. An invoice above the threshold needs a person's approval (held, it is asked again).
5. Issue the invoice in the billing system (once, whatever happens), exactly as it was checked.
"""

from __future__ import annotations

from itertools import count

from prefect import flow

from checklists.forms import InvoiceApproval
from handoff.core.settings import settings
from tasks.billing import issue_invoice
from tasks.billing import open_account
from tasks.checklist_gate import until_checklist_passes
from tasks.human_step import HumanStep
from tasks.human_step import ask_a_person
from tasks.invoices import InvoiceDraft
from tasks.invoices import draft_invoice
from tasks.invoices import hold_as_sent
from tasks.invoices import record_billing_account
from tasks.invoices import record_invoice_issued
from tasks.invoices import run_invoice_checklist
from tasks.orders import load_order


@flow(name="billing", flow_run_name="bill-{order_id}", log_prints=True)
def billing(order_id: str) -> str:
    order = load_order(order_id)

    # 1. The customer's billing account
    account = open_account(order.customer_id)
    record_billing_account(order.customer_id, account.id)

    # 2 + 3. Draft the invoice until its checklist passes
    until_checklist_passes(
        "invoice",
        order_id,
        work_type="billing",
        run_check=lambda _round: run_invoice_checklist(draft_invoice(order_id, account.id)),
        fixer_skills={"billing": 2},
        context="The invoice is drafted from the order's provisioned lines.",
    )
    invoice = draft_invoice(order_id, account.id)
    if invoice.status == "issued":
        return "issued"

    # 4. Large invoices need a person's approval; one held waits in the approvers' worklist,
    #    with why, until someone approves it
    if invoice.total >= settings.invoice_approval_value:
        holds: list[str] = []
        for ask_no in count(1):
            approval = ask_a_person(invoice_approval_step(invoice, ask_no, holds), InvoiceApproval)
            if approval.decision == "approve":
                break
            holds.append(f"held by {approval.completed_by}: {approval.note}")

    # 5. Issue it, as it is now (a run restarted before it is recorded sends the same invoice)
    hold_as_sent(order_id)
    issued = issue_invoice(
        account.id, order_id, lines_for_billing(invoice), invoice.currency, invoice.tax, invoice.total
    )
    record_invoice_issued(order_id, issued.id)
    return "issued"


def lines_for_billing(invoice: InvoiceDraft) -> list[dict]:
    return [
        {k: line[k] for k in ("description", "quantity", "unit_price", "discount", "amount")} for line in invoice.lines
    ]


def invoice_approval_step(invoice: InvoiceDraft, ask_no: int = 1, holds: list[str] | None = None) -> HumanStep:
    """The approval of a large invoice; asked again after each hold (ending the run on a hold
    left the order short of billing for good: nothing asked again, and a re-run was refused)."""
    held = "".join(f"- {hold}\n" for hold in holds or [])
    rows = "\n".join(
        f"| {l['line_no']} | {l['description']} | {l['quantity']} | {l['unit_price']:,.2f} | "
        f"{l['discount']:.0%} | {l['amount']:,.2f} |"
        for l in invoice.lines
    )
    return HumanStep(
        work_type="invoice-approval",
        step_key=f"invoice-approval-{invoice.invoice_id}" + (f"-{ask_no}" if ask_no > 1 else ""),
        title=f"Approve invoice {invoice.invoice_id} ({invoice.total:,.2f} {invoice.currency})",
        description=(
            f"### Invoice {invoice.invoice_id} — order {invoice.order_id}, account {invoice.account_id}\n\n"
            f"| line | item | qty | price | discount | amount |\n|---:|---|---:|---:|---:|---:|\n{rows}\n\n"
            f"**Net** {invoice.net_total:,.2f} · **tax** {invoice.tax:,.2f} ({invoice.tax_rate:.1%}) · "
            f"**total** {invoice.total:,.2f} {invoice.currency}\n\n"
            f"Invoices from {settings.invoice_approval_value:,.0f} are approved before they are issued. "
            "Approve, or hold it with a reason: a held invoice comes back here until it is approved."
            + (f"\n\n**Held so far**\n{held}" if held else "")
        ),
        order_id=invoice.order_id,
        value=invoice.total,
        tags=[f"order:{invoice.order_id}"],
    )
