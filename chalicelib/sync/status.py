"""Status (PROTOCOL.md §5): everything from the head and device rows read at authentication."""

from __future__ import annotations

from typing import Any

from chalicelib.entitlements import premium_view
from chalicelib.identity import Principal
from chalicelib.settings import Settings
from chalicelib.vaults import vault_counts


def status(principal: Principal, settings: Settings) -> dict[str, Any]:
    meta = principal.meta or {}
    device = principal.device or {}
    registered = principal.registered
    return {
        "registered": registered,
        "keyDid": principal.key_did,
        "registeredAt": meta.get("registeredAt") if registered else None,
        "watermark": int(meta.get("seq") or 0) if registered else 0,
        "lastPushAt": device.get("lastPushAt"),
        "lastPullAt": device.get("lastPullAt"),
        "counts": vault_counts(meta),
        "devices": int(meta.get("nDevices") or 0),
        "premium": premium_view(meta if principal.vault_id else None, settings),
    }
