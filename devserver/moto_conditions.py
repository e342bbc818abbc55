"""Condition and filter expressions are parsed once per distinct text, not once per use.

Upstream report (moto 5.2.5, not filed: no network here): "`get_filter_expression` builds
a new `ConditionExpressionParser` and lexes/parses the expression every time it is used: a
TransactWriteItems of 100 Puts with `attribute_not_exists(pk)` parses the same expression
100 times, ~40 % of moto's CPU for a bulk upload (`comparisons.parse`, `_lex_one_node`).
DynamoDB itself evaluates conditions without such cost. Repro: 10 transactions of 100
conditional Puts under cProfile; `moto/dynamodb/comparisons.py` dominates."

The parsed tree is a pure function of (expression, names, values) and evaluating it does
not change it, so it is cached on exactly those three (values compared by their JSON, so
`:v = 1` and `:v = 2` are different entries). Errors are never cached: an invalid
expression raises on every use, as before. `tests/unit/test_moto_conditions.py` checks the
outcomes are unchanged.
"""

from __future__ import annotations

import functools
import json
from typing import Any

from moto.dynamodb import comparisons
from moto.dynamodb import models as dynamo_models
from moto.dynamodb.models import table as dynamo_table

_ORIGINAL = comparisons.get_filter_expression
CACHE_SIZE = 4096


@functools.lru_cache(maxsize=CACHE_SIZE)
def _parsed(expr: str | None, names: str, values: str) -> Any:
    return _ORIGINAL(expr, json.loads(names), json.loads(values))


def get_filter_expression(
    expr: str | None, names: dict[str, str] | None, values: dict[str, Any] | None
) -> Any:
    """moto's get_filter_expression, parsed once per distinct (expression, names, values)."""
    try:
        key_names = json.dumps(names, sort_keys=True)  # None stays None ("null")
        key_values = json.dumps(values, sort_keys=True)
    except TypeError:
        return _ORIGINAL(expr, names, values)  # not plain JSON: no cache
    return _parsed(expr, key_names, key_values)


def apply() -> None:
    """Install the cache where moto's models look the function up (idempotent)."""
    dynamo_models.get_filter_expression = get_filter_expression  # type: ignore[attr-defined]
    dynamo_table.get_filter_expression = get_filter_expression  # type: ignore[attr-defined]
