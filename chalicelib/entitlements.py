"""The Premium gate: is sync open for this vault right now (PROTOCOL.md §9)."""

from __future__ import annotations

from typing import Any

from chalicelib.clock import now_ms
from chalicelib.errors import ApiError, ErrorCode
from chalicelib.settings import Settings


def premium_view(meta: dict[str, Any] | None, settings: Settings) -> dict[str, Any]:
    """The §9 premium object from the vault head's entitlement summary.

    The summary (premiumUntil, premiumSource) is written by the premium module in the same
    commits as the entitlement rows; expiry is judged here, at read time, so a lapse takes
    effect at once without any job.
    """
    if not settings.premium_sync_required:
        return {"required": False, "active": True, "source": "dev", "expiresAt": None}
    until = int((meta or {}).get("premiumUntil") or 0)
    source = (meta or {}).get("premiumSource")
    active = until > now_ms()
    return {
        "required": True,
        "active": active,
        "source": source,
        "expiresAt": until if active else None,
    }


def require_premium(meta: dict[str, Any] | None, settings: Settings) -> None:
    """402 when Premium is required and not active."""
    if not premium_view(meta, settings)["active"]:
        raise ApiError(
            ErrorCode.PREMIUM_REQUIRED,
            "NT² Premium is required for cloud sync; subscribe or redeem a code.",
        )
