"""The order-entry checklist: what must be true of an order before the back office accepts it.

Rules are pandera checks named as sentences, so a failed rule reads as the finding.
- Errors (OrderLines, OrderHeader): the order is wrong as it stands; a person must decide.
- Warnings (OrderLineWarnings): the order may be fine but is unusual; a person looks at it.

To add a rule, add a method with @pa.check / @pa.dataframe_check to the right model below;
its name is what the approver will read (see README, "Add a checklist rule").
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd
import pandera.pandas as pa
from pandera.typing import Series

from checklists.common import Checklist
from checklists.common import Finding
from checklists.common import findings

PRICE_TOLERANCE = 0.25  # a unit price this far from the catalogue's is unusual
DISCOUNT_NEEDS_A_LOOK = 0.20  # discounts from here on are unusual


class OrderLines(Checklist):
    """One row per order line, joined with the catalogue."""

    line_no: Series[int] = pa.Field(ge=1, unique=True)
    product_id: Series[int]
    product_known: Series[bool] = pa.Field(description="The product is in the catalogue.")
    quantity: Series[int] = pa.Field(gt=0, description="Units ordered.")
    unit_price: Series[float] = pa.Field(ge=0, description="Price per unit before discount.")
    discount: Series[float] = pa.Field(ge=0, le=1, description="Share off, 0 to 1.")
    amount: Series[float] = pa.Field(description="quantity × unit price × (1 − discount).")
    catalogue_price: Series[float] = pa.Field(nullable=True)
    discontinued: Series[bool]
    # An order from an accepted quote: the quote's line beside each (empty otherwise)
    quoted_product_id: Series[float] | None = pa.Field(nullable=True)
    quoted_quantity: Series[float] | None = pa.Field(nullable=True)
    quoted_unit_price: Series[float] | None = pa.Field(nullable=True)
    quoted_discount: Series[float] | None = pa.Field(nullable=True)

    @pa.check("product_known", name="every_product_is_in_the_catalogue")
    def every_product_is_in_the_catalogue(cls, known: Series[bool]) -> Series[bool]:
        return known

    @pa.dataframe_check(name="order_has_at_least_one_line")
    def order_has_at_least_one_line(cls, df: pd.DataFrame) -> bool:
        return len(df) > 0

    @pa.dataframe_check(name="line_amount_is_quantity_times_price_less_discount")
    def line_amount_is_quantity_times_price_less_discount(cls, df: pd.DataFrame) -> Series[bool]:
        expected = df["quantity"] * df["unit_price"] * (1 - df["discount"])
        return (df["amount"] - expected).abs() <= 0.01

    @pa.dataframe_check(name="every_line_is_as_in_the_accepted_quote")
    def every_line_is_as_in_the_accepted_quote(cls, df: pd.DataFrame) -> Series[bool]:
        if "quoted_quantity" not in df:
            return pd.Series(True, index=df.index)
        return df["quoted_quantity"].isna() | (
            (df["product_id"] == df["quoted_product_id"])
            & (df["quantity"] == df["quoted_quantity"])
            & ((df["unit_price"] - df["quoted_unit_price"]).abs() <= 0.005)
            & ((df["discount"] - df["quoted_discount"]).abs() <= 0.00005)
        )


class OrderHeader(Checklist):
    """The order as a whole, one row."""

    order_id: Series[str]
    customer_known: Series[bool]
    order_date: Series[pd.Timestamp]
    due_date: Series[pd.Timestamp]
    lines_total: Series[float] = pa.Field(ge=0)
    stated_total: Series[float] = pa.Field(nullable=True)
    quoted_total: Series[float] | None = pa.Field(nullable=True)  # from an accepted quote
    quoted_lines: Series[float] | None = pa.Field(nullable=True)
    line_count: Series[int] | None

    @pa.check("customer_known", name="customer_is_known")
    def customer_is_known(cls, known: Series[bool]) -> Series[bool]:
        return known

    @pa.dataframe_check(name="due_date_is_after_order_date")
    def due_date_is_after_order_date(cls, df: pd.DataFrame) -> Series[bool]:
        return df["due_date"] > df["order_date"]

    @pa.dataframe_check(name="stated_total_matches_the_lines")
    def stated_total_matches_the_lines(cls, df: pd.DataFrame) -> Series[bool]:
        return df["stated_total"].isna() | ((df["stated_total"] - df["lines_total"]).abs() <= 0.01)

    @pa.dataframe_check(name="order_matches_the_accepted_quote")
    def order_matches_the_accepted_quote(cls, df: pd.DataFrame) -> Series[bool]:
        if "quoted_total" not in df:
            return pd.Series(True, index=df.index)
        same_total = (df["quoted_total"] - df["lines_total"]).abs() <= 0.01
        same_lines = df["quoted_lines"] == df["line_count"] if "line_count" in df else True
        return df["quoted_total"].isna() | (same_total & same_lines)


class OrderLineWarnings(Checklist):
    """Unusual but possibly right: a person should look before the order goes on."""

    line_no: Series[int]
    unit_price: Series[float]
    catalogue_price: Series[float] = pa.Field(nullable=True)
    discount: Series[float]
    discontinued: Series[bool]

    @pa.dataframe_check(name="unit_price_is_close_to_the_catalogue_price")
    def unit_price_is_close_to_the_catalogue_price(cls, df: pd.DataFrame) -> Series[bool]:
        cat = df["catalogue_price"]
        return cat.isna() | ((df["unit_price"] - cat).abs() <= PRICE_TOLERANCE * cat)

    @pa.check("discount", name="discount_is_within_the_usual_range")
    def discount_is_within_the_usual_range(cls, discount: Series[float]) -> Series[bool]:
        return discount < DISCOUNT_NEEDS_A_LOOK

    @pa.check("discontinued", name="product_is_still_sold")
    def product_is_still_sold(cls, discontinued: Series[bool]) -> Series[bool]:
        return ~discontinued

    class Config:
        strict = "filter"
        coerce = True


# --- running the checklist ----------------------------------------------------------------


@dataclass
class ChecklistResult:
    errors: list[Finding]
    warnings: list[Finding]

    @property
    def passed(self) -> bool:
        return not self.errors


def check_order(header: pd.DataFrame, lines: pd.DataFrame) -> ChecklistResult:
    """Run every rule on the order and return every finding at once (lazy validation)."""
    line_numbers = lines["line_no"].tolist() if "line_no" in lines else []
    errors = findings(OrderHeader, header) + findings(OrderLines, lines, line_numbers)
    warnings = findings(OrderLineWarnings, lines, line_numbers) if len(lines) else []
    return ChecklistResult(errors=errors, warnings=warnings)
