"""The intake contract: what an order must be for the back office to take it.

Strict on purpose. An order is only stored when every field has exactly the type and range
written here; anything else is quarantined with a reason per bad field, never guessed at:

- types are exact: a number is not a date, `true` is not 1, `"10"` is not 10 in JSON (a CSV
  cell is text, so there numbers are read from their digits), a whole number is written whole;
- amounts are finite and within stated ranges, ids within the database's integer range;
- sizes are bounded: characters per field, lines per order (bytes per document: reading.py);
- text is printable: no control characters, bidirectional overrides or unpaired surrogates.

Business rules a person can settle (due date after the order date, a stated total that does
not match the lines, an unknown customer or product) belong to the order-entry checklist.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from datetime import date
from typing import Annotated
from typing import Any

from pydantic import AfterValidator
from pydantic import BaseModel
from pydantic import BeforeValidator
from pydantic import ConfigDict
from pydantic import Field
from pydantic import ValidationError
from pydantic import model_validator
from pydantic_core import PydanticCustomError

from handoff.core.intake.text import field_name
from handoff.core.intake.text import quote
from handoff.core.intake.text import unprintable_characters

# --- the limits (README: "The intake contract") ---------------------------------------------

MAX_ORDER_ID_CHARS = 40
MAX_CUSTOMER_ID_CHARS = 40
MAX_CUSTOMER_NAME_CHARS = 200
MAX_COUNTRY_CHARS = 60
MAX_LINES = 500
MAX_QUANTITY = 100_000
MAX_UNIT_PRICE = 1_000_000.0
MAX_ORDER_TOTAL = 1_000_000_000.0  # the lines' sum and a stated total
MAX_PRODUCT_ID = 2**31 - 1  # the database column is a 32-bit INTEGER
EARLIEST_DATE, LATEST_DATE = date(1900, 1, 1), date(2999, 12, 31)
ORDER_FIELDS = ("order_id", "customer_id", "customer_name", "country", "order_date", "due_date", "total", "lines")
LINE_FIELDS = ("product_id", "quantity", "unit_price", "discount")
MAX_REQUEST_ID_CHARS = 36
QUOTE_REQUEST_FIELDS = ("request_id", "customer_id", "customer_name", "country", "request_date", "due_date", "lines")
QUOTE_REQUEST_LINE_FIELDS = ("product_id", "quantity", "discount")

ISO_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")


@dataclass(frozen=True)
class Unreadable:
    """A value the reader could not hold faithfully (a JSON number beyond a double, an integer
    of thousands of digits, NaN): it stands in the order so that its field gets the reason."""

    text: str
    why: str

    def __repr__(self) -> str:
        return self.text


# --- the form ---------------------------------------------------------------------------------


def _printable_only(value: str) -> str:
    bad = unprintable_characters(value)
    if bad:
        raise PydanticCustomError(
            "unprintable", "contains characters that cannot be shown ({chars})", {"chars": ", ".join(bad)}
        )
    return value


def _written_one_way(value: str) -> str:
    """An id that looks like another is refused rather than taken for a new customer: with a
    zero-width space in it (`ALF\u200bKI`), full-width letters (`ＡＬＦＫＩ`) or letters spelt
    as a base and an accent, it shows as `ALFKI` on every screen while the database holds a
    different customer, with its own orders, credit and billing account."""
    hidden = sorted({f"U+{ord(c):04X}" for c in value if unicodedata.category(c) == "Cf"})
    if hidden:
        raise PydanticCustomError(
            "invisible_characters", "contains invisible characters ({chars})", {"chars": ", ".join(hidden[:5])}
        )
    plain = unicodedata.normalize("NFKC", value)
    if plain != value:
        raise PydanticCustomError(
            "lookalike_characters",
            "is written with characters that stand for others: write it as {plain}",
            {"plain": quote(plain)},
        )
    return value


def _iso_date(value: Any) -> Any:
    if isinstance(value, str) and ISO_DATE.fullmatch(value):
        return value
    raise PydanticCustomError("date_format", "must be a date written as text YYYY-MM-DD")


def _order_id_text(value: Any) -> Any:
    # Order ids are often whole numbers in a sender's file (Northwind's are); they are ids, not
    # amounts, so a JSON integer is taken as its digits. `true` is not an id.
    if isinstance(value, int) and not isinstance(value, bool) and 0 <= value < 10**MAX_ORDER_ID_CHARS:
        return str(value)
    return value


Text = Annotated[str, AfterValidator(_printable_only)]
CustomerId = Annotated[str, AfterValidator(_printable_only), AfterValidator(_written_one_way)]
IsoDate = Annotated[date, BeforeValidator(_iso_date), Field(strict=False, ge=EARLIEST_DATE, le=LATEST_DATE)]


class OrderLineIn(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    product_id: int = Field(gt=0, le=MAX_PRODUCT_ID, description="Catalogue product id.")
    quantity: int = Field(gt=0, le=MAX_QUANTITY, description="Units ordered, a whole number.")
    unit_price: float = Field(
        ge=0, le=MAX_UNIT_PRICE, allow_inf_nan=False, description="Price per unit before discount."
    )
    discount: float = Field(0.0, ge=0, le=1, allow_inf_nan=False, description="Share off the price, 0 to 1.")

    @property
    def amount(self) -> float:
        return self.quantity * self.unit_price * (1 - self.discount)


class CustomerDocument(BaseModel):
    """What every document a customer sends says of them (an order, a request for quotation):
    the customer's id and, for a customer not known yet, a name and country (intake then adds
    the customer: door.add_new_customer). Each kind adds its own id, dates and lines."""

    model_config = ConfigDict(extra="forbid", strict=True, str_strip_whitespace=True)

    customer_id: CustomerId = Field(min_length=1, max_length=MAX_CUSTOMER_ID_CHARS)
    customer_name: Text | None = Field(None, min_length=1, max_length=MAX_CUSTOMER_NAME_CHARS)
    country: Text | None = Field(None, min_length=1, max_length=MAX_COUNTRY_CHARS)

    def content(self) -> dict[str, Any]:
        """What the document says, in plain JSON values: what a re-send is compared with."""
        return self.model_dump(mode="json")


class OrderIn(CustomerDocument):
    """An order as a sender submits it. A new customer may come with a name and country."""

    order_id: Annotated[str, BeforeValidator(_order_id_text)] = Field(
        min_length=1, max_length=MAX_ORDER_ID_CHARS, pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$"
    )
    order_date: IsoDate
    due_date: IsoDate = Field(description="The date promised to the customer.")
    total: float | None = Field(
        None, ge=0, le=MAX_ORDER_TOTAL, allow_inf_nan=False, description="The order total as the sender states it."
    )
    lines: list[OrderLineIn] = Field(min_length=1, max_length=MAX_LINES)

    @model_validator(mode="after")
    def _lines_add_up_to_a_bounded_total(self) -> OrderIn:
        if sum(line.amount for line in self.lines) > MAX_ORDER_TOTAL:
            raise PydanticCustomError("total_too_large", f"the lines add up to more than {MAX_ORDER_TOTAL:,.0f}")
        return self


class QuoteRequestLineIn(BaseModel):
    """A line of a request for quotation: what and how many; the price comes from the catalogue."""

    model_config = ConfigDict(extra="forbid", strict=True)

    product_id: int = Field(gt=0, le=MAX_PRODUCT_ID, description="Catalogue product id.")
    quantity: int = Field(gt=0, le=MAX_QUANTITY, description="Units asked for, a whole number.")
    discount: float = Field(  # below 1: a quote gives nothing away whole (the CRM refuses a 100 % line)
        0.0, ge=0, lt=1, allow_inf_nan=False, description="Share off the catalogue price sales asks for, 0 to below 1."
    )


class QuoteRequestIn(CustomerDocument):
    """A request for quotation as a sender submits it: a customer asks what these lines would cost."""

    # 36 characters: the order an accepted quote becomes is `RFQ-<request id>` (at most 40)
    request_id: Annotated[str, BeforeValidator(_order_id_text)] = Field(
        min_length=1, max_length=MAX_REQUEST_ID_CHARS, pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$"
    )
    request_date: IsoDate
    due_date: IsoDate = Field(description="When the customer wants delivery: the order's due date if accepted.")
    lines: list[QuoteRequestLineIn] = Field(min_length=1, max_length=MAX_LINES)


@dataclass(frozen=True)
class Form:
    """One kind of document intake takes: its contract, its fields and the words reasons use."""

    noun: str  # "order", "quote request"
    plural: str  # the key of a wrapped list in JSON: {"orders": [...]}
    id_field: str  # the sender's id, which de-duplicates
    model: type[BaseModel]
    fields: tuple[str, ...]
    line_fields: tuple[str, ...]

    @property
    def article(self) -> str:
        return "an" if self.noun[0] in "aeiou" else "a"


ORDER_FORM = Form("order", "orders", "order_id", OrderIn, ORDER_FIELDS, LINE_FIELDS)
QUOTE_REQUEST_FORM = Form(
    "quote request", "requests", "request_id", QuoteRequestIn, QUOTE_REQUEST_FIELDS, QUOTE_REQUEST_LINE_FIELDS
)


# --- the verdict --------------------------------------------------------------------------------

Reason = dict[str, str]

_MESSAGES = {
    "model_type": "must be a JSON object ({article} {noun})",
    "model_attributes_type": "must be a JSON object ({article} {noun})",
    "dict_type": "must be a JSON object",
    "int_type": "must be a whole number",
    "float_type": "must be a number",
    "string_type": "must be text",
    "list_type": "must be a list of order lines",
    "string_unicode": "contains an unpaired surrogate, which is not text",
    "string_pattern_mismatch": "must be letters, digits, '.', '_' or '-', starting with a letter or digit",
    "greater_than": "must be more than {gt}",
    "greater_than_equal": "must be at least {ge}",
    "less_than_equal": "must be at most {le}",
    "string_too_short": "must not be empty",
    "string_too_long": "must be at most {max_length} characters",
    "too_short": "must have at least {min_length} line",
    "too_long": "must have at most {max_length} lines",
}


def check_order(data: Any) -> tuple[OrderIn | None, list[Reason]]:
    """The order if it keeps the contract, else the reasons, one per bad field."""
    return check(ORDER_FORM, data)  # type: ignore[return-value]


def check_quote_request(data: Any) -> tuple[QuoteRequestIn | None, list[Reason]]:
    """The request for quotation if it keeps its contract, else the reasons, one per bad field."""
    return check(QUOTE_REQUEST_FORM, data)  # type: ignore[return-value]


def check(form: Form, data: Any) -> tuple[BaseModel | None, list[Reason]]:
    try:
        return form.model.model_validate(data), []
    except ValidationError as exc:
        return None, field_errors(exc, form)
    except RecursionError:
        return None, [{"field": form.noun, "message": "is nested too deeply to read"}]


def field_errors(exc: ValidationError, form: Form = ORDER_FORM) -> list[Reason]:
    """Pydantic's errors as one {field, message} per bad field, in the sender's words."""
    words = {"article": form.article, "noun": form.noun}
    reasons = []
    for err in exc.errors(include_url=False, include_context=True):
        loc = err["loc"]
        where = field_name(loc) if loc else form.noun
        value = err.get("input")
        if isinstance(value, Unreadable):
            reasons.append({"field": where, "message": f"{value.why} (got {quote(value.text)})"})
            continue
        kind = err["type"]
        if kind in ("too_long", "too_short") and isinstance(value, str):
            kind = f"string_{kind}"
        message = _MESSAGES.get(kind, err["msg"]).format(
            **words, **{k: _plain(v) for k, v in err.get("ctx", {}).items()}
        )
        if err["type"] == "extra_forbidden":
            message = f"is not a field of {form.article} {form.noun}; the fields are " + ", ".join(form.fields)
        if err["type"] == "extra_forbidden" and len(loc) == 3 and loc[0] == "lines":
            message = f"is not a field of {form.article} {form.noun} line; the fields are " + ", ".join(
                form.line_fields
            )
        if err["type"] == "missing":
            reasons.append({"field": where, "message": "is required"})
        elif err["type"] == "extra_forbidden" or not loc:
            reasons.append({"field": where, "message": message})
        else:
            reasons.append({"field": where, "message": f"{message} (got {quote(value)})"})
    return reasons


def _plain(value: Any) -> str:
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, str) and (found := re.fullmatch(r"datetime\.date\((\d+), (\d+), (\d+)\)", value)):
        return date(*map(int, found.groups())).isoformat()
    if isinstance(value, float) and value.is_integer():
        return f"{value:,.0f}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


def stored_order_violations(content: dict[str, Any]) -> list[Reason]:
    """Reasons a stored order (as `OrderIn.content()`-shaped data) breaks the contract: none,
    if intake did its job. Used to re-check the database after a hostile run."""
    _, reasons = check_order(content)
    return reasons
