"""The order's steps on an order that is not there: a pipeline started by an event whose order
was never stored here (or that the database lost: docs/faults-and-hostile-input.md) says so,
instead of failing with "'NoneType' object has no attribute 'status'"."""

from __future__ import annotations

import pytest

from tasks.orders import UnknownOrder
from tasks.orders import load_order
from tasks.orders import order_reached


def test_an_order_not_in_the_database_is_named_as_unknown(db):
    with pytest.raises(UnknownOrder, match="order 10268 is not in handoff's database"):
        order_reached("10268", "complete")
    with pytest.raises(UnknownOrder, match="order 10268 has not been received"):
        load_order.fn("10268")
