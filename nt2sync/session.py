"""Authenticated calls: one session reused while it lasts, renewed once when it expires.

Every request after sign-in goes through `call`; it is also where a revoked device or a
password changed elsewhere stops the command with a sentence instead of a protocol code.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from chalicelib.shared.codes import ErrorCode
from nt2sync import auth
from nt2sync.api import Api
from nt2sync.errors import PasswordChangedElsewhere, ServerError
from nt2sync.rotation import finish_rotation

if TYPE_CHECKING:
    from nt2sync.engine import Client

SESSION_MARGIN_MS = 120_000
RENEWABLE = (ErrorCode.SESSION_EXPIRED, ErrorCode.UNAUTHORIZED)


def ensure_session(client: Client) -> Api:
    """The connection with a live token (finishing a recorded rotation first)."""
    api = client.api
    meta = client.meta
    if meta.pending_rotation:
        finish_rotation(client)
        meta = client.meta
    if api.token is None:
        if meta.token and (meta.token_expires_at or 0) > client.clock() + SESSION_MARGIN_MS:
            api.token = meta.token
        else:
            keys = client.require_keys()
            auth.open_session(client, api, keys.seed, keys.key_did, meta.device_name)
    return api


def call(client: Client, fn: Callable[[Api], Any]) -> Any:
    """Run one authenticated request; renew an expired session once; map fatal codes."""
    api = ensure_session(client)
    try:
        return fn(api)
    except ServerError as exc:
        if exc.status == 401 and exc.code in RENEWABLE:
            keys = client.require_keys()
            auth.open_session(client, api, keys.seed, keys.key_did, client.meta.device_name)
            try:
                return fn(api)
            except ServerError as again:
                _map_fatal(client, again)
                raise
        _map_fatal(client, exc)
        raise


def _map_fatal(client: Client, exc: ServerError) -> None:
    if exc.code in (ErrorCode.SESSION_REVOKED, ErrorCode.DEVICE_REVOKED):
        raise auth.revoked(client) from exc
    if exc.code == ErrorCode.VAULT_NOT_FOUND and client.meta.sync_enabled:
        raise PasswordChangedElsewhere(
            "The master password was changed on another device; run `nt2sync password "
            "adopt` with the new master password."
        ) from exc
