"""Make moto's DynamoDB Query cost what it costs in DynamoDB: the queried partition only.

moto 5.2.5's `Table.query` starts from `all_items()`, which walks and sorts every item of the
*table* (DynamoType comparisons), then filters the partition and sorts it again. Profiled on
the local server, a 10 000-item pull spent 61 % of its time there (29 % in `all_items`, 26 %
in the sort). DynamoDB reads one partition in key order. This patch, for queries on the base
table or a local secondary index (same partition key), hands moto's own query code just the
partition's items, and sorts by plain values instead of DynamoType comparisons. Results,
order, pagination and limits stay moto's: only the work done to reach them changes.

Upstream issue (moto 5.2.5; the report to file at github.com/getmoto/moto/issues):

    DynamoDB: Query walks and sorts the whole table, so it slows down with unrelated
    partitions

    What moto does: `Table.query` starts from `Table.all_items()` (every item of every
    partition, sorted with `DynamoType` comparisons), keeps the queried partition, and sorts
    that again. A Query of a 10-item partition costs O(n log n) in the table size n.
    What DynamoDB does: a Query reads one partition in sort-key order; its cost does not
    depend on other partitions.
    Repro: put 100 000 items into 1 000 partitions, then time `query(KeyConditionExpression=
    "pk = :p")` on a 10-item partition: it takes about as long as a Scan of the table, and
    grows linearly as other partitions fill.

Fragile: `index_name` is `Table.query`'s 8th positional parameter in 5.2.5 (`args[6]` after
`hash_key`) and `_generate_attr_to_sort_by` is private; hence the version pin.
"""

from __future__ import annotations

import functools
import threading
from typing import Any

from moto.dynamodb.models.table import LocalSecondaryIndex, Table

__all__ = ["apply"]

_MARKER = "_nt2_partition_query"
_state = threading.local()


def _plain(value: Any) -> Any:
    """A sort key with DynamoDB's order for S and N keys (others: moto's own comparison)."""
    if value.type not in ("S", "N"):
        raise TypeError("only S and N keys take the fast sort")
    return value.cast_value


def apply() -> None:
    """Install (idempotent); use ``devserver.moto_fidelity.apply()``."""
    if getattr(Table.query, _MARKER, False):
        return
    original_query = Table.query
    original_all_items = Table.all_items
    original_sorted_items = Table.sorted_items

    @functools.wraps(original_query)
    def query(self: Any, hash_key: Any, *args: Any, **kwargs: Any) -> Any:
        index_name = (
            kwargs.get("index_name")
            if "index_name" in kwargs
            else (args[6] if len(args) > 6 else None)
        )
        same_partition = index_name is None or isinstance(
            self.get_index(index_name), LocalSecondaryIndex
        )
        _state.partition = (self, hash_key) if hash_key is not None and same_partition else None
        try:
            return original_query(self, hash_key, *args, **kwargs)
        finally:
            _state.partition = None

    @functools.wraps(original_all_items)
    def all_items(self: Any) -> Any:
        scope = getattr(_state, "partition", None)
        if scope is None or scope[0] is not self or not self.range_key_attr:
            return original_all_items(self)
        # The caller keeps only this partition and sorts what it keeps: skip the rest.
        return list(self.items.get(scope[1], {}).values())

    @functools.wraps(original_sorted_items)
    def sorted_items(self: Any, hash_key_attrs: Any, range_key_attrs: Any, items: Any) -> Any:
        attrs = self._generate_attr_to_sort_by(hash_key_attrs, range_key_attrs)
        try:
            items.sort(key=lambda x: tuple(_plain(x.attrs[k]) for k in attrs))
        except (KeyError, TypeError):
            return original_sorted_items(self, hash_key_attrs, range_key_attrs, items)
        return items

    setattr(query, _MARKER, True)
    Table.query = query  # type: ignore[method-assign]
    Table.all_items = all_items  # type: ignore[method-assign]
    Table.sorted_items = sorted_items  # type: ignore[method-assign]
