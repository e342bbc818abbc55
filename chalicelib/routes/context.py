"""Per-request helpers the blueprints share: the table and the caller."""

from __future__ import annotations

from chalice.app import Request as ChaliceRequest

from chalicelib import observability
from chalicelib.identity import Principal, authenticate
from chalicelib.routes.parsing import bearer_token
from chalicelib.store.table import Table


def table() -> Table:
    return Table()


def principal(request: ChaliceRequest) -> Principal:
    """The authenticated caller (401 otherwise)."""
    caller = authenticate(table(), bearer_token(request))
    observability.annotate(keyDid=caller.key_did)  # logged as its hash
    return caller
