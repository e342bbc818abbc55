"""Lemon Squeezy webhooks (§9): signature first, then subscription events → entitlement rows.

Payload shape (Lemon Squeezy's JSON:API documents): `meta.event_name`, `meta.custom_data`
(what the checkout link carried: `key_did`), `data.type` (`subscriptions` for subscription
events), `data.id`, and `data.attributes.status`, `renews_at`, `ends_at`, `updated_at` as
ISO-8601 strings such as `2024-02-09T10:06:48.000000Z`.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from chalicelib.errors import ApiError, ErrorCode
from chalicelib.premium.summary import SOURCE_SUBSCRIPTION, Change, Snapshot, change_entitlements
from chalicelib.shared.didkey import InvalidDidKey, parse_did_key
from chalicelib.shared.limits import MAX_BODY_BYTES
from chalicelib.store import entitlement_rows, keys
from chalicelib.store.table import Table
from chalicelib.store.txn import Transaction
from chalicelib.vaults import vault_id_for

log = logging.getLogger("nt2sync.premium")

Outcome = Literal["applied", "stale", "ignored"]

SUBSCRIPTION_EVENTS = frozenset(
    {
        "subscription_created",
        "subscription_updated",
        "subscription_cancelled",
        "subscription_resumed",
        "subscription_expired",
        "subscription_paused",
        "subscription_unpaused",
    }
)
ACTIVE_STATUSES = frozenset({"on_trial", "active", "past_due"})
INACTIVE_STATUSES = frozenset({"paused", "unpaid", "expired"})
CANCELLED = "cancelled"
# Lemon Squeezy retries a failed renewal 4 times over 2 weeks while the subscription is
# past_due; §9 keeps it active meanwhile even when its renews_at has already gone by.
PAST_DUE_GRACE_MS = 14 * 86_400_000
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass(frozen=True)
class SubscriptionEvent:
    """The parts of a subscription event that decide an entitlement."""

    name: str
    subscription_id: str
    status: str
    renews_at: int | None
    ends_at: int | None
    updated_at: int
    key_did: str | None

    @property
    def until(self) -> int:
        """Until when this state keeps the vault active (ms); 0 when it does not."""
        if self.status in ACTIVE_STATUSES:
            until = self.renews_at or self.ends_at or 0
            if self.status == "past_due":
                until = max(until, self.updated_at + PAST_DUE_GRACE_MS)
            return until
        if self.status == CANCELLED:
            return self.ends_at or 0  # the grace period: active until it ends
        return 0


def _bad(message: str) -> ApiError:
    return ApiError(ErrorCode.INVALID_REQUEST, message)


def verify_signature(secret: str, raw: bytes, signature: str | None) -> None:
    """401 unless X-Signature is the hex HMAC-SHA256 of the exact raw body under the secret."""
    if not secret or not signature:
        # No secret configured means no webhook can be authentic: reject everything.
        raise ApiError(ErrorCode.INVALID_SIGNATURE, "The webhook signature does not match.")
    expected = hmac.new(secret.encode("utf-8"), raw, hashlib.sha256).hexdigest()
    given = signature.strip().lower().encode("utf-8", "replace")
    if not hmac.compare_digest(expected.encode("ascii"), given):
        raise ApiError(ErrorCode.INVALID_SIGNATURE, "The webhook signature does not match.")


def parse_time(value: Any) -> int | None:
    """An ISO-8601 time (e.g. `2024-02-09T10:06:48.000000Z`) as epoch ms; None if null."""
    if value is None:
        return None
    if not isinstance(value, str):
        raise ValueError("not a string")
    parsed = datetime.fromisoformat(value.strip())
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return (parsed - _EPOCH) // timedelta(milliseconds=1)


def _key_did(meta: dict[str, Any]) -> str | None:
    custom = meta.get("custom_data")
    key_did = custom.get("key_did") if isinstance(custom, dict) else None
    if not isinstance(key_did, str):
        return None
    try:
        parse_did_key(key_did)
    except InvalidDidKey:
        return None
    return key_did


def parse_event(raw: bytes) -> SubscriptionEvent | None:
    """The subscription event in an authentic body; None for events we acknowledge and ignore."""
    try:
        doc = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise _bad("The webhook body is not JSON.") from exc
    meta = doc.get("meta") if isinstance(doc, dict) else None
    data = doc.get("data") if isinstance(doc, dict) else None
    name = meta.get("event_name") if isinstance(meta, dict) else None
    if not isinstance(meta, dict) or not isinstance(name, str) or not isinstance(data, dict):
        raise _bad("The webhook body lacks meta.event_name or data.")
    if name not in SUBSCRIPTION_EVENTS:
        return None  # payments, orders, license keys: acknowledged, nothing to do
    attrs = data.get("attributes")
    sub_id = data.get("id")
    if isinstance(sub_id, int) and not isinstance(sub_id, bool):
        sub_id = str(sub_id)
    if data.get("type") != "subscriptions" or not isinstance(attrs, dict):
        raise _bad("A subscription event must carry a subscriptions resource.")
    if not isinstance(sub_id, str) or not 0 < len(sub_id) <= 128:
        raise _bad("A subscription event must carry data.id.")
    status = attrs.get("status")
    # A list or object is unhashable: without the type check it would be a 500 (§9: 400).
    if not isinstance(status, str) or status not in ACTIVE_STATUSES | INACTIVE_STATUSES | {
        CANCELLED
    }:
        raise _bad("A subscription event must carry a known data.attributes.status.")
    try:
        updated_at = parse_time(attrs.get("updated_at"))
        renews_at = parse_time(attrs.get("renews_at"))
        ends_at = parse_time(attrs.get("ends_at"))
    except (ValueError, OverflowError) as exc:
        raise _bad("A subscription event has a time that cannot be read.") from exc
    if updated_at is None:
        raise _bad("A subscription event must carry data.attributes.updated_at.")
    return SubscriptionEvent(
        name, sub_id, str(status), renews_at, ends_at, updated_at, _key_did(meta)
    )


def apply_event(table: Table, event: SubscriptionEvent) -> Outcome:
    """Set the subscription's entitlement row unless it already holds a newer state.

    Order is kept per subscription by `updated_at`: an older or equal one (a replay, an
    out-of-order delivery) changes nothing. Returns "applied", "stale" or "ignored".
    """
    if event.key_did is None:
        return "ignored"
    # Any keyDid the vault has had points at it (retired keys too); an unknown keyDid gets its
    # vault now, and the entitlement waits there for the first registration.
    vault_id, _ = vault_id_for(table, event.key_did, allocate=True)
    if vault_id is None:
        return "ignored"
    sk = keys.subscription_sk(event.subscription_id)
    outcome: Outcome = "applied"

    def plan(snap: Snapshot) -> Change | None:
        nonlocal outcome
        current = snap.rows.get(sk)
        if current is not None and int(current.get("updatedAt") or 0) >= event.updated_at:
            outcome = "stale"
            return None
        outcome = "applied"
        row = {
            **keys.plain(keys.entitlement_key(vault_id, sk)),
            "source": SOURCE_SUBSCRIPTION,
            "subscriptionId": event.subscription_id,
            "status": event.status,
            "renewsAt": event.renews_at,
            "endsAt": event.ends_at,
            "updatedAt": event.updated_at,
            "until": event.until,
            "event": event.name,
            "keyDid": event.key_did,
        }
        txn = Transaction()
        entitlement_rows.add_subscription(txn, row, event.updated_at)
        return Change(txn, {sk: row})

    if change_entitlements(table, vault_id, plan) is None:
        return "ignored"  # the vault head is gone (deleted vault)
    return outcome


def handle(table: Table, secret: str, raw: bytes, signature: str | None) -> Outcome:
    """Verify, parse and apply one webhook delivery; the outcome for the acknowledgement."""
    if len(raw) > MAX_BODY_BYTES:
        raise ApiError(ErrorCode.PAYLOAD_TOO_LARGE, "The request body is over 5 MiB.")
    verify_signature(secret, raw, signature)
    event = parse_event(raw)
    if event is None:
        return "ignored"
    outcome = apply_event(table, event)
    log.info(
        "webhook %s subscription %s status %s: %s",
        event.name,
        event.subscription_id,
        event.status,
        outcome,
    )
    return outcome
