"""§9 Lemon Squeezy webhooks through chalice.test.Client over moto.

Payloads follow Lemon Squeezy's documented webhook shape (JSON:API: `meta.event_name`,
`meta.custom_data`, `data.type`/`id`/`attributes` with ISO-8601 times) and are signed here,
the way Lemon Squeezy signs them: hex HMAC-SHA256 of the raw body with the signing secret.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from datetime import UTC, datetime
from typing import Any

import pytest

from chalicelib.clock import now_ms
from chalicelib.store import keys
from chalicelib.store.table import Table
from tests.helpers import Caller, Device, Resp, did_for_seed, seed_for

SECRET = "whsec-test"  # tests/conftest.py sets LEMONSQUEEZY_SIGNING_SECRET to this
DAY = 86_400_000


def iso(ms: int) -> str:
    """A time as Lemon Squeezy writes it: `2024-02-09T10:06:48.000000Z`."""
    return datetime.fromtimestamp(ms / 1000, tz=UTC).strftime("%Y-%m-%dT%H:%M:%S.%f") + "Z"


def subscription_event(
    event_name: str,
    key_did: str | None,
    *,
    status: str = "active",
    sub_id: str = "1001",
    renews_at: int | None = None,
    ends_at: int | None = None,
    updated_at: int | None = None,
) -> dict[str, Any]:
    """A subscription webhook as Lemon Squeezy sends it (a representative subset of fields)."""
    now = now_ms()
    updated = updated_at if updated_at is not None else now
    meta: dict[str, Any] = {"test_mode": True, "event_name": event_name, "webhook_id": "wh-1"}
    if key_did is not None:
        meta["custom_data"] = {"key_did": key_did}
    return {
        "meta": meta,
        "data": {
            "type": "subscriptions",
            "id": sub_id,
            "attributes": {
                "store_id": 1,
                "customer_id": 2,
                "order_id": 3,
                "order_item_id": 4,
                "product_id": 5,
                "variant_id": 6,
                "product_name": "NT² Premium",
                "variant_name": "Monthly",
                "user_name": "Ada",
                "user_email": "ada@example.test",
                "status": status,
                "status_formatted": status.replace("_", " ").title(),
                "card_brand": "visa",
                "card_last_four": "4242",
                "pause": {"mode": "void", "resumes_at": None} if status == "paused" else None,
                "cancelled": status == "cancelled",
                "trial_ends_at": None,
                "billing_anchor": 9,
                "first_subscription_item": {"id": 7, "subscription_id": int(sub_id)},
                "urls": {"update_payment_method": "https://example.test/update"},
                "renews_at": iso(renews_at if renews_at is not None else now + 30 * DAY),
                "ends_at": iso(ends_at) if ends_at is not None else None,
                "created_at": iso(now - DAY),
                "updated_at": iso(updated),
                "test_mode": True,
            },
            "relationships": {"store": {"links": {"related": "https://api.example.test/x"}}},
            "links": {"self": f"https://api.lemonsqueezy.com/v1/subscriptions/{sub_id}"},
        },
    }


def payment_event(key_did: str) -> dict[str, Any]:
    return {
        "meta": {"event_name": "subscription_payment_success", "custom_data": {"key_did": key_did}},
        "data": {
            "type": "subscription-invoices",
            "id": "555",
            "attributes": {"subscription_id": 1001, "status": "paid", "total": 500},
        },
    }


def sign(raw: bytes, secret: str = SECRET) -> str:
    return hmac.new(secret.encode(), raw, hashlib.sha256).hexdigest()


def deliver(caller: Caller, doc: Any, secret: str = SECRET, raw: bytes | None = None) -> Resp:
    body = raw if raw is not None else json.dumps(doc).encode()
    return caller.call(
        "POST", "/api/premium/webhook", raw=body, headers={"X-Signature": sign(body, secret)}
    )


@pytest.fixture(autouse=True)
def premium_required(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PREMIUM_SYNC_REQUIRED", "true")


def premium(dev: Device) -> dict[str, Any]:
    r = dev.call("GET", "/api/premium")
    assert r.status == 200, r.body
    return dict(r.body)


def test_subscription_created_activates_the_vault(device: Device) -> None:
    # GIVEN a signed-in, unregistered vault that is not Premium
    device.sign_in()
    assert premium(device)["active"] is False
    assert device.register().status == 402
    # WHEN Lemon Squeezy reports a new active subscription for its keyDid
    renews = now_ms() + 30 * DAY
    r = deliver(
        device.caller, subscription_event("subscription_created", device.key_did, renews_at=renews)
    )
    assert (r.status, r.body) == (200, {"status": "applied"})
    # THEN the vault is Premium until renews_at, and registration passes the gate
    assert premium(device) == {
        "required": True,
        "active": True,
        "source": "subscription",
        "expiresAt": renews,
    }
    assert device.register().status == 201
    status = device.call("GET", "/api/sync/status").body
    assert status["premium"]["active"] is True


def test_unsigned_wrong_secret_and_tampered_bodies_are_401(device: Device) -> None:
    device.sign_in()
    doc = subscription_event("subscription_created", device.key_did)
    raw = json.dumps(doc).encode()
    caller = device.caller
    unsigned = caller.call("POST", "/api/premium/webhook", raw=raw)
    wrong = deliver(caller, doc, secret="whsec-other")
    tampered_raw = raw.replace(b'"active"', b'"paused"', 1)
    tampered = caller.call(
        "POST", "/api/premium/webhook", raw=tampered_raw, headers={"X-Signature": sign(raw)}
    )
    # a signature over the parsed-and-reserialised body is not a signature of the raw bytes
    reserialised = caller.call(
        "POST",
        "/api/premium/webhook",
        raw=json.dumps(doc, indent=1).encode(),
        headers={"X-Signature": sign(raw)},
    )
    for r in (unsigned, wrong, tampered, reserialised):
        assert (r.status, r.body["code"]) == (401, "invalid_signature")
    assert premium(device)["active"] is False
    # not even garbage is parsed before the signature is checked
    r = caller.call("POST", "/api/premium/webhook", raw=b"{not json", headers={"X-Signature": "00"})
    assert (r.status, r.body["code"]) == (401, "invalid_signature")


def test_no_secret_configured_rejects_everything(
    device: Device, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LEMONSQUEEZY_SIGNING_SECRET", "")
    doc = subscription_event("subscription_created", device.key_did)
    r = deliver(device.caller, doc, secret="")
    assert (r.status, r.body["code"]) == (401, "invalid_signature")


def test_replay_changes_nothing(device: Device) -> None:
    device.sign_in()
    doc = subscription_event("subscription_created", device.key_did)
    assert deliver(device.caller, doc).body == {"status": "applied"}
    before = premium(device)
    # WHEN the very same delivery comes again
    r = deliver(device.caller, doc)
    # THEN it is acknowledged as stale and nothing moves
    assert (r.status, r.body) == (200, {"status": "stale"})
    assert premium(device) == before


def test_out_of_order_older_event_never_moves_backwards(device: Device) -> None:
    device.sign_in()
    t0 = now_ms()
    ends = t0 + 5 * DAY
    cancelled = subscription_event(
        "subscription_cancelled", device.key_did, status="cancelled", ends_at=ends, updated_at=t0
    )
    older_active = subscription_event(
        "subscription_created", device.key_did, renews_at=t0 + 30 * DAY, updated_at=t0 - 60_000
    )
    # GIVEN the newer event (cancelled) arrived first
    assert deliver(device.caller, cancelled).body == {"status": "applied"}
    assert premium(device)["expiresAt"] == ends
    # WHEN the older one (active, renewing in 30 days) arrives late
    assert deliver(device.caller, older_active).body == {"status": "stale"}
    # THEN the entitlement still ends at the cancellation's ends_at
    assert premium(device)["expiresAt"] == ends


def test_cancelled_is_active_until_ends_at_then_inactive(device: Device, clock: Any) -> None:
    device.sign_in()
    ends = now_ms() + 3 * DAY
    doc = subscription_event(
        "subscription_cancelled", device.key_did, status="cancelled", ends_at=ends
    )
    assert deliver(device.caller, doc).status == 200
    assert premium(device) == {
        "required": True,
        "active": True,
        "source": "subscription",
        "expiresAt": ends,
    }
    # WHEN the grace period is over (no event, no job)
    clock(3 * DAY + 1000)
    device.sign_in()  # the first session has expired by now
    # THEN the vault is inactive at once; the source is the one that was last active
    assert premium(device) == {
        "required": True,
        "active": False,
        "source": "subscription",
        "expiresAt": None,
    }


def test_paused_unpaid_expired_are_inactive(caller: Caller) -> None:
    for n, status in enumerate(("paused", "unpaid", "expired")):
        dev = Device(caller, seed_for(20 + n))
        dev.sign_in()
        t0 = now_ms()
        created = subscription_event("subscription_created", dev.key_did, updated_at=t0)
        deliver(caller, created)
        assert premium(dev)["active"] is True
        event = {"paused": "subscription_paused", "unpaid": "subscription_updated"}.get(
            status, "subscription_expired"
        )
        doc = subscription_event(
            event, dev.key_did, status=status, ends_at=t0 + DAY, updated_at=t0 + 1000
        )
        assert deliver(caller, doc).body == {"status": "applied"}
        assert premium(dev) == {
            "required": True,
            "active": False,
            "source": "subscription",
            "expiresAt": None,
        }, status
        # and a newer event (unpaused, resumed, renewed) brings it back
        back = subscription_event("subscription_unpaused", dev.key_did, updated_at=t0 + 2000)
        assert deliver(caller, back).body == {"status": "applied"}
        assert premium(dev)["active"] is True


def test_payment_order_and_unknown_events_are_acknowledged_and_ignored(
    device: Device, aws: None
) -> None:
    device.sign_in()
    order = {
        "meta": {"event_name": "order_created", "custom_data": {"key_did": device.key_did}},
        "data": {"type": "orders", "id": "9", "attributes": {"status": "paid"}},
    }
    unknown = {"meta": {"event_name": "something_new"}, "data": {"type": "things", "id": "1"}}
    for doc in (payment_event(device.key_did), order, unknown):
        r = deliver(device.caller, doc)
        assert (r.status, r.body) == (200, {"status": "ignored"})
    assert premium(device)["active"] is False


def test_subscription_event_without_usable_key_did_is_ignored(caller: Caller, aws: None) -> None:
    for key_did in (None, "did:key:zNotAnEd25519Key", "did:key:z6MkNope"):
        doc = subscription_event("subscription_created", key_did)
        r = deliver(caller, doc)
        assert (r.status, r.body) == (200, {"status": "ignored"})
    doc = subscription_event("subscription_created", None)
    doc["meta"]["custom_data"] = {"key_did": 12}
    assert deliver(caller, doc).body == {"status": "ignored"}
    # and nothing was allocated for them
    import boto3

    rows = boto3.client("dynamodb", region_name="us-east-1").scan(TableName="nt2-sync-test")
    assert rows["Count"] == 0


def test_malformed_signed_bodies_are_400(caller: Caller) -> None:
    for raw in (
        b"not json at all",
        b"[1, 2]",
        json.dumps({"data": {"type": "subscriptions"}}).encode(),
        json.dumps({"meta": {"event_name": "subscription_created"}}).encode(),
    ):
        r = deliver(caller, None, raw=raw)
        assert (r.status, r.body["code"]) == (400, "invalid_request"), raw


def test_unreadable_updated_at_is_400(caller: Caller) -> None:
    key_did = did_for_seed(seed_for(9))
    for value in (None, "soon", 12345):
        doc = subscription_event("subscription_updated", key_did)
        doc["data"]["attributes"]["updated_at"] = value
        r = deliver(caller, doc)
        assert (r.status, r.body["code"]) == (400, "invalid_request")


def test_body_over_5_mib_is_413(caller: Caller) -> None:
    raw = b'{"pad": "' + b"x" * (5 * 1024 * 1024) + b'"}'
    r = deliver(caller, None, raw=raw)
    assert (r.status, r.body["code"]) == (413, "payload_too_large")


def test_premium_bought_before_first_sign_in_waits_for_the_vault(caller: Caller) -> None:
    # GIVEN a keyDid the server has never seen buys Premium
    dev = Device(caller, seed_for(7))
    doc = subscription_event("subscription_created", dev.key_did)
    assert deliver(caller, doc).body == {"status": "applied"}
    # WHEN that key signs in for the first time
    dev.sign_in()
    # THEN its vault is Premium and can register
    assert premium(dev)["active"] is True
    assert dev.register().status == 201


def test_vault_is_active_while_any_subscription_is(device: Device) -> None:
    device.sign_in()
    t0 = now_ms()
    expired = subscription_event(
        "subscription_expired", device.key_did, status="expired", sub_id="1", updated_at=t0
    )
    active = subscription_event(
        "subscription_created", device.key_did, sub_id="2", renews_at=t0 + 9 * DAY
    )
    deliver(device.caller, active)
    deliver(device.caller, expired)
    assert premium(device)["expiresAt"] == (t0 + 9 * DAY)


def test_entitlement_follows_rotation_and_old_key_webhooks_still_apply(
    registered_premium: Device,
) -> None:
    dev = registered_premium
    old_key = dev.key_did
    new_seed = seed_for(5)
    # WHEN the vault rotates to a new key
    r = dev.call("POST", "/api/vault/rotate", dev.rotate_body(new_seed))
    assert r.status == 200, r.body
    rotated = Device(dev.caller, new_seed, "replica-a")
    rotated.sign_in()
    # THEN the entitlement came along
    assert premium(rotated)["active"] is True
    # AND a later event for the subscription (bought with the old key) still reaches the vault
    lapse = subscription_event(
        "subscription_expired", old_key, status="expired", updated_at=now_ms() + 1000
    )
    assert deliver(dev.caller, lapse).body == {"status": "applied"}
    assert premium(rotated)["active"] is False
    r = rotated.call("POST", "/api/sync/push", {"batchId": "b1", "items": []})
    assert r.status == 400  # validation first (empty items), whatever Premium says
    item = {"id": "x", "baseVersion": 0, "deleted": True}
    r = rotated.call("POST", "/api/sync/push", {"batchId": "b1", "items": [item]})
    assert (r.status, r.body["code"]) == (402, "premium_required")


@pytest.fixture
def registered_premium(device: Device) -> Device:
    device.sign_in("Laptop")
    doc = subscription_event("subscription_created", device.key_did, updated_at=now_ms() - 1000)
    assert deliver(device.caller, doc).body == {"status": "applied"}
    assert device.register().status == 201
    return device


def test_entitlement_rows_live_under_the_vault(registered_premium: Device, aws: None) -> None:
    table = Table()
    record = table.get(keys.key_pk(registered_premium.key_did))
    assert record is not None
    vault_id = str(record["vaultId"])
    row = table.get(keys.entitlement_key(vault_id, keys.subscription_sk("1001")))
    assert row is not None
    assert row["status"] == "active" and row["source"] == "subscription"
    meta = table.get(keys.meta_key(vault_id))
    assert meta is not None and meta["premiumSource"] == "subscription"
    assert meta["premiumUntil"] == row["until"] == row["renewsAt"]


@pytest.mark.parametrize("status", [[], {}, ["active"], {"a": 1}, 7, None, True])
def test_non_string_status_is_400_not_500(caller: Caller, status: Any) -> None:
    doc = subscription_event("subscription_updated", did_for_seed(seed_for(9)))
    doc["data"]["attributes"]["status"] = status
    r = deliver(caller, doc)
    assert (r.status, r.body["code"]) == (400, "invalid_request"), r.body
