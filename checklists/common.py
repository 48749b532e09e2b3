"""Running a pandera checklist and turning its failures into findings people can read."""

from __future__ import annotations

import re
from dataclasses import dataclass
from dataclasses import field
from typing import Any

import pandas as pd
import pandera.pandas as pa
from pandera.errors import SchemaErrors


class Checklist(pa.DataFrameModel):
    """Base of every checklist: a column nobody declared is an error (strict), and values are
    converted to the declared types first (coerce)."""

    class Config:
        strict = True
        coerce = True


@dataclass
class Finding:
    """One rule that did not hold, and on which rows (empty for the whole table)."""

    rule: str
    field: str | None
    lines: list[Any] = field(default_factory=list)
    values: list[Any] = field(default_factory=list)

    @property
    def text(self) -> str:
        words = self.rule.replace("_", " ")
        subject = f"{self.field}: " if self.field else ""
        where = f" — fails on line {', '.join(map(str, self.lines))}" if self.lines else ""
        shown = f" (got {', '.join(map(str, self.values[:5]))})" if self.field and self.values else ""
        return f"{subject}{words}{where}{shown}"

    def as_dict(self) -> dict[str, Any]:
        return {
            "rule": self.rule,
            "field": self.field,
            "lines": self.lines,
            "values": [str(v) for v in self.values],
            "text": self.text,
        }


def findings(model: type[pa.DataFrameModel], df: pd.DataFrame, row_labels: list[Any] | None = None) -> list[Finding]:
    """Every failure of `model` on `df` at once (lazy validation), grouped by rule and field.
    `row_labels` names the rows (e.g. line numbers) in place of positions."""
    try:
        model.validate(df, lazy=True)
        return []
    except SchemaErrors as exc:
        cases = exc.failure_cases
    labels = row_labels or []
    found: dict[tuple[str, str | None], Finding] = {}
    for case in cases.itertuples(index=False):
        rule = rule_name(str(case.check))
        whole_frame = case.schema_context == "DataFrameSchema"
        column = None if whole_frame or pd.isna(case.column) else str(case.column)
        f = found.setdefault((rule, column), Finding(rule=rule, field=column))
        index = case.index
        if labels and index is not None and not pd.isna(index) and int(index) < len(labels):
            label = labels[int(index)]
            label = int(label) if isinstance(label, (int, float)) else label
            if label not in f.lines:
                f.lines.append(label)
        if column and case.failure_case is not None and not pd.isna(case.failure_case):
            f.values.append(case.failure_case)
    return list(found.values())


def rule_name(check: str) -> str:
    """Pandera names built-in checks like 'greater_than(0)'; say what must hold instead."""
    plain = {
        "greater_than(0)": "value_is_more_than_zero",
        "greater_than_or_equal_to(0)": "value_is_zero_or_more",
        "less_than_or_equal_to(1)": "value_is_at_most_one",
        "not_nullable": "value_is_present",
        "field_uniqueness": "value_is_unique",
        "column_in_dataframe": "column_is_present",
        "coerce_dtype('int64')": "value_is_a_whole_number",
        "coerce_dtype('float64')": "value_is_a_number",
    }
    if check in plain:
        return plain[check]
    for pattern, words in _BUILT_IN:
        m = re.fullmatch(pattern, check)
        if m:
            return words.format(*m.groups())
    return check


_BUILT_IN = [
    (r"greater_than\((.+)\)", "value_is_more_than_{}"),
    (r"greater_than_or_equal_to\((.+)\)", "value_is_at_least_{}"),
    (r"less_than\((.+)\)", "value_is_less_than_{}"),
    (r"less_than_or_equal_to\((.+)\)", "value_is_at_most_{}"),
    (r"equal_to\((.+)\)", "value_is_{}"),
    (r"in_range\((.+), (.+)\)", "value_is_between_{}_and_{}"),
    (r"isin\((.+)\)", "value_is_one_of_{}"),
    (r"str_length\((.+)\)", "text_length_is_{}"),
]
