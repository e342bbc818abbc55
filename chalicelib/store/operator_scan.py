"""Whole-table Scans, for the operator's tool (nt2sync-admin) only.

No Lambda calls these: the deployed functions are not granted dynamodb:Scan, and the IAM
policy test's static scan leaves this module out as it leaves out chalicelib/admin/.
A Scan reads (and bills) every row before its filter, so nothing scheduled may use it.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from chalicelib.store.table import Item, Table, paginate


def scan(table: Table, **kwargs: Any) -> Iterator[Item]:
    """Every item of a low-level Scan (kwargs as boto3 takes them), page after page."""
    return paginate(table, "Scan", table.ddb.scan, kwargs)
