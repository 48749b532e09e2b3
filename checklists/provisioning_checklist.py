"""Before an order moves on from provisioning: every line is provisioned with a resource id."""

from __future__ import annotations

import pandas as pd
import pandera.pandas as pa
from pandera.typing import Series

from checklists.common import Checklist
from checklists.common import Finding
from checklists.common import findings


class ProvisionedLines(Checklist):
    line_no: Series[int] = pa.Field(ge=1, unique=True)
    reservation_id: Series[str] = pa.Field(nullable=True)
    resource_id: Series[str] = pa.Field(nullable=True)

    @pa.check("reservation_id", name="every_line_is_reserved")
    def every_line_is_reserved(cls, ids: Series[str]) -> Series[bool]:
        return ids.notna() & (ids.astype(str).str.len() > 0)

    @pa.check("resource_id", name="every_line_is_provisioned_with_a_resource_id")
    def every_line_is_provisioned_with_a_resource_id(cls, ids: Series[str]) -> Series[bool]:
        return ids.notna() & (ids.astype(str).str.len() > 0)

    @pa.dataframe_check(name="order_has_a_line_to_provision")
    def order_has_a_line_to_provision(cls, df: pd.DataFrame) -> bool:
        return len(df) > 0


def check_provisioning(lines: pd.DataFrame) -> list[Finding]:
    return findings(ProvisionedLines, lines, lines["line_no"].tolist() if "line_no" in lines else [])
