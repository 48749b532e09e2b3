"""The invoice checklist holds every invoice drafted the way billing drafts it (amounts rounded
to the cent in Python) and refuses one that is more than a cent off, whatever the amounts."""

import pandas as pd
from hypothesis import given
from hypothesis import settings
from hypothesis import strategies as st

from checklists.invoice_checklist import check_invoice
from tasks.invoices import TAX_RATES


def invoice(quantity: int, unit_price: float, discount: float, rate: float, tax_off_by: float = 0.0):
    """One line, drafted as tasks/invoices.py drafts it; `tax_off_by` puts the tax out."""
    amount = round(quantity * unit_price * (1 - discount), 2)
    net = round(amount, 2)
    tax = round(round(net * rate, 2) + tax_off_by, 2)
    lines = pd.DataFrame(
        [
            {
                "line_no": 1,
                "product_id": 1,
                "description": "Chai",
                "quantity": quantity,
                "unit_price": unit_price,
                "discount": discount,
                "amount": amount,
            }
        ]
    )
    totals = pd.DataFrame(
        [
            {
                "currency": "USD",
                "net_total": net,
                "lines_total": amount,
                "tax_rate": rate,
                "tax": tax,
                "total": round(net + tax, 2),
            }
        ]
    )
    return lines, totals


def rules(findings) -> set[str]:
    return {f.rule for f in findings}


def test_half_a_cent_of_tax_rounded_either_way_passes():
    """The RFQ order a 100-order demo lost: 1,181.50 at 19 % is 224.485; Python rounds it to
    224.49, pandas to 224.48, and their difference in binary floats is 0.010000000000019."""
    assert check_invoice(*invoice(50, 23.63, 0.0, 0.19)) == []
    assert round(50 * 23.63, 2) == 1181.5


@settings(max_examples=300, deadline=None)
@given(
    quantity=st.integers(1, 10_000),
    unit_price=st.decimals("0.01", "5000", places=2).map(float),
    discount=st.sampled_from([0.0, 0.05, 0.1, 0.15, 0.2, 0.25]),
    rate=st.sampled_from(sorted(set(TAX_RATES.values()))),
)
def test_every_invoice_billing_drafts_passes(quantity, unit_price, discount, rate):
    assert rules(check_invoice(*invoice(quantity, unit_price, discount, rate))) == set()


@settings(max_examples=100, deadline=None)
@given(
    quantity=st.integers(1, 10_000),
    unit_price=st.decimals("0.01", "5000", places=2).map(float),
    rate=st.sampled_from(sorted(set(TAX_RATES.values()))),
    off=st.sampled_from([-0.05, -0.02, 0.02, 0.03, 1.0]),
)
def test_a_tax_more_than_a_cent_off_fails(quantity, unit_price, rate, off):
    lines, totals = invoice(quantity, unit_price, 0.0, rate, tax_off_by=off)
    if totals.loc[0, "tax"] < 0:
        return  # not an invoice anyone would draft
    assert "tax_is_net_total_times_the_tax_rate" in rules(check_invoice(lines, totals))


def test_a_line_amount_two_cents_off_fails():
    lines, totals = invoice(50, 23.63, 0.1, 0.19)
    lines.loc[0, "amount"] += 0.02
    assert "line_total_is_quantity_times_price_less_discount" in rules(check_invoice(lines, totals))
