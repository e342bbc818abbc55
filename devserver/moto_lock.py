"""Serialize moto's DynamoDB requests: real DynamoDB applies each request atomically.

Upstream issue (moto 5.2.5; the report to file at github.com/getmoto/moto/issues):

    DynamoDB (server mode): concurrent requests interleave; TransactWriteItems is not atomic

    What moto does: ThreadedMotoServer / `moto_server` answer each request on its own thread,
    and `DynamoHandler.call_action` runs the backend with no lock. A TransactWriteItems that
    checks a condition and then writes can interleave with another thread's PutItem between
    the check and the write, and a reader can see half of a transaction.
    What DynamoDB does: each request (a TransactWriteItems as a whole) is isolated: others
    see all of it or none of it, and its conditions hold at its commit.
    Repro: run `moto_server`; 8 threads loop `transact_write_items([ConditionCheck(pk=a,
    "ver = :v"), Put(pk=b, ver=v+1)])` after reading `ver` of `a`, while 8 threads
    `update_item(a, SET ver = ver + 1)`; count the transactions that committed although
    `a.ver` was never `v` at their commit (DynamoDB: 0; moto: some, under load).

moto's server answers requests on many threads and its DynamoDB backend has no locks, so a
TransactWriteItems could interleave with another request's reads and writes — an anomaly
real DynamoDB never shows. Our concurrency tests run real threads against the moto server,
so they need DynamoDB's per-request atomicity: one lock around each DynamoDB action.
"""

from __future__ import annotations

import functools
import threading
from typing import Any

from moto.dynamodb.responses import DynamoHandler

__all__ = ["LOCK", "apply"]

LOCK = threading.RLock()
_MARKER = "_nt2_serialized"


def apply() -> None:
    """Install the lock (idempotent); use ``devserver.moto_fidelity.apply()``."""
    original = DynamoHandler.call_action
    if getattr(original, _MARKER, False):
        return

    @functools.wraps(original)
    def call_action(self: Any) -> Any:
        with LOCK:
            return original(self)

    setattr(call_action, _MARKER, True)
    DynamoHandler.call_action = call_action  # type: ignore[method-assign]
