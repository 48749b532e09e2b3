"""Each checklist rule has a failing and a passing case, on small inline frames."""

import pandas as pd
import pytest

from checklists.order_checklist import check_order


def lines(**changes):
    df = pd.DataFrame(
        {
            "line_no": [1, 2],
            "product_id": [1, 2],
            "product_known": [True, True],
            "quantity": [10, 5],
            "unit_price": [18.0, 19.0],
            "discount": [0.0, 0.1],
            "amount": [180.0, 85.5],
            "catalogue_price": [18.0, 19.0],
            "discontinued": [False, False],
        }
    )
    for column, values in changes.items():
        df[column] = values
    return df


def header(**changes):
    row = {
        "order_id": "A-1",
        "customer_known": True,
        "order_date": pd.Timestamp("2024-03-01"),
        "due_date": pd.Timestamp("2024-03-15"),
        "lines_total": 265.5,
        "stated_total": None,
    }
    row.update(changes)
    return pd.DataFrame([row])


def rules(result, kind="errors"):
    return {(f.rule, f.field, tuple(f.lines)) for f in getattr(result, kind)}


def test_a_clean_order_passes_with_no_findings():
    result = check_order(header(), lines())
    assert result.passed and result.errors == [] and result.warnings == []


@pytest.mark.parametrize(
    "change, expected",
    [
        ({"product_known": [True, False]}, ("every_product_is_in_the_catalogue", "product_known", (2,))),
        ({"quantity": [0, 5], "amount": [0.0, 85.5]}, ("value_is_more_than_zero", "quantity", (1,))),
        ({"unit_price": [-1.0, 19.0], "amount": [-10.0, 85.5]}, ("value_is_zero_or_more", "unit_price", (1,))),
        ({"discount": [0.0, 1.5], "amount": [180.0, -47.5]}, ("value_is_at_most_one", "discount", (2,))),
        ({"amount": [180.0, 95.0]}, ("line_amount_is_quantity_times_price_less_discount", None, (2,))),
    ],
)
def test_each_line_rule_fails_on_the_bad_line(change, expected):
    result = check_order(header(), lines(**change))
    assert not result.passed
    assert expected in rules(result)


def test_an_order_needs_at_least_one_line():
    result = check_order(header(lines_total=0.0), lines().iloc[:0])
    assert ("order_has_at_least_one_line", None, ()) in rules(result)
    assert check_order(header(), lines()).passed


@pytest.mark.parametrize(
    "change, rule",
    [
        ({"customer_known": False}, "customer_is_known"),
        ({"due_date": pd.Timestamp("2024-03-01")}, "due_date_is_after_order_date"),
        ({"stated_total": 300.0}, "stated_total_matches_the_lines"),
    ],
)
def test_each_header_rule_fails_and_passes(change, rule):
    assert rule in {f.rule for f in check_order(header(**change), lines()).errors}
    assert rule not in {f.rule for f in check_order(header(stated_total=265.5), lines()).errors}


@pytest.mark.parametrize(
    "change, rule",
    [
        ({"unit_price": [18.0, 30.0], "amount": [180.0, 135.0]}, "unit_price_is_close_to_the_catalogue_price"),
        ({"discount": [0.25, 0.1], "amount": [135.0, 85.5]}, "discount_is_within_the_usual_range"),
        ({"discontinued": [False, True]}, "product_is_still_sold"),
    ],
)
def test_warnings_flag_unusual_lines_without_failing_the_order(change, rule):
    result = check_order(header(), lines(**change))
    assert result.passed
    assert rule in {f.rule for f in result.warnings}
    assert rule not in {f.rule for f in check_order(header(), lines()).warnings}


def test_every_failure_is_reported_at_once_with_readable_text():
    result = check_order(header(customer_known=False), lines(quantity=[-1, 0], amount=[-18.0, 0.0]))
    quantity = next(f for f in result.errors if f.field == "quantity")
    assert quantity.lines == [1, 2]
    assert quantity.text == "quantity: value is more than zero — fails on line 1, 2 (got -1, 0)"
    assert {f.rule for f in result.errors} >= {"customer_is_known", "value_is_more_than_zero"}
