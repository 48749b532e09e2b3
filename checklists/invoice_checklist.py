"""The invoice checklist: an invoice is issued only when every rule below holds.

Lines: line total = quantity × unit price × (1 − discount); no product billed twice.
Invoice: one known currency; tax = net total × the customer's tax rate; total = Σ lines + tax.
"""

from __future__ import annotations

import pandas as pd
import pandera.pandas as pa
from pandera.typing import Series

from checklists.common import Checklist
from checklists.common import Finding
from checklists.common import findings

CURRENCIES = {"USD", "EUR", "GBP", "CAD", "BRL", "MXN", "SEK", "NOK", "DKK", "CHF", "PLN"}
CENT = 0.01
FLOAT_SLACK = 1e-9  # the last bits of binary floats: 224.49 - 224.485 is 0.00500000000001


def rounds_to(stated: pd.Series, exact: pd.Series) -> pd.Series:
    """The stated amount is the exact one rounded to the cent, half a cent up or down: however
    the sender rounded (Python's round and pandas' disagree on 1,181.50 × 19 % = 224.485)."""
    return (stated - exact).abs() <= CENT / 2 + FLOAT_SLACK


def within_a_cent(stated: pd.Series, computed: pd.Series) -> pd.Series:
    """A sum of rounded amounts agrees with its parts to the cent."""
    return (stated - computed).abs() <= CENT + FLOAT_SLACK


class InvoiceLines(Checklist):
    line_no: Series[int] = pa.Field(ge=1, unique=True)
    product_id: Series[int]
    description: Series[str]
    quantity: Series[int] = pa.Field(gt=0)
    unit_price: Series[float] = pa.Field(ge=0)
    discount: Series[float] = pa.Field(ge=0, le=1)
    amount: Series[float] = pa.Field(ge=0)

    @pa.dataframe_check(name="line_total_is_quantity_times_price_less_discount")
    def line_total_is_quantity_times_price_less_discount(cls, df: pd.DataFrame) -> Series[bool]:
        return rounds_to(df["amount"], df["quantity"] * df["unit_price"] * (1 - df["discount"]))

    @pa.dataframe_check(name="no_product_is_billed_twice")
    def no_product_is_billed_twice(cls, df: pd.DataFrame) -> Series[bool]:
        return ~df["product_id"].duplicated(keep=False)

    @pa.dataframe_check(name="invoice_has_at_least_one_line")
    def invoice_has_at_least_one_line(cls, df: pd.DataFrame) -> bool:
        return len(df) > 0


class InvoiceTotals(Checklist):
    currency: Series[str] = pa.Field(isin=sorted(CURRENCIES))
    net_total: Series[float] = pa.Field(ge=0)
    lines_total: Series[float]
    tax_rate: Series[float] = pa.Field(ge=0, le=0.5)
    tax: Series[float] = pa.Field(ge=0)
    total: Series[float]

    @pa.dataframe_check(name="net_total_is_the_sum_of_the_lines")
    def net_total_is_the_sum_of_the_lines(cls, df: pd.DataFrame) -> Series[bool]:
        return within_a_cent(df["net_total"], df["lines_total"])

    @pa.dataframe_check(name="tax_is_net_total_times_the_tax_rate")
    def tax_is_net_total_times_the_tax_rate(cls, df: pd.DataFrame) -> Series[bool]:
        return rounds_to(df["tax"], df["net_total"] * df["tax_rate"])

    @pa.dataframe_check(name="invoice_total_is_lines_plus_tax")
    def invoice_total_is_lines_plus_tax(cls, df: pd.DataFrame) -> Series[bool]:
        return within_a_cent(df["total"], df["lines_total"] + df["tax"])


def check_invoice(lines: pd.DataFrame, totals: pd.DataFrame) -> list[Finding]:
    line_numbers = lines["line_no"].tolist() if "line_no" in lines else []
    return findings(InvoiceLines, lines, line_numbers) + findings(InvoiceTotals, totals)
