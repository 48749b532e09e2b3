"""The invoice checklist: an invoice is issued only when every rule below holds.

Lines: line total = quantity × unit price × (1 − discount); no product billed twice.
Invoice: one known currency; tax = net total × the customer's tax rate; total = Σ lines + tax.
"""

from __future__ import annotations

import pandas as pd
import pandera.pandas as pa
from pandera.typing import Series

from checklists.common import Checklist, Finding, findings

CURRENCIES = {"USD", "EUR", "GBP", "CAD", "BRL", "MXN", "SEK", "NOK", "DKK", "CHF", "PLN"}
CENT = 0.01


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
        expected = (df["quantity"] * df["unit_price"] * (1 - df["discount"])).round(2)
        return (df["amount"] - expected).abs() <= CENT

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
        return (df["net_total"] - df["lines_total"]).abs() <= CENT

    @pa.dataframe_check(name="tax_is_net_total_times_the_tax_rate")
    def tax_is_net_total_times_the_tax_rate(cls, df: pd.DataFrame) -> Series[bool]:
        return (df["tax"] - (df["net_total"] * df["tax_rate"]).round(2)).abs() <= CENT

    @pa.dataframe_check(name="invoice_total_is_lines_plus_tax")
    def invoice_total_is_lines_plus_tax(cls, df: pd.DataFrame) -> Series[bool]:
        return (df["total"] - (df["lines_total"] + df["tax"])).abs() <= CENT


def check_invoice(lines: pd.DataFrame, totals: pd.DataFrame) -> list[Finding]:
    line_numbers = lines["line_no"].tolist() if "line_no" in lines else []
    return findings(InvoiceLines, lines, line_numbers) + findings(InvoiceTotals, totals)
