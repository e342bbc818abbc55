"""Premium rules without AWS: the gate, the summary, event mapping, signatures, codes."""

from __future__ import annotations

import dataclasses
import hashlib
import hmac
import json

import pytest

from chalicelib import clock
from chalicelib.entitlements import premium_view, require_premium
from chalicelib.errors import ApiError
from chalicelib.premium import promo
from chalicelib.premium.checkout import checkout_url
from chalicelib.premium.summary import summarize
from chalicelib.premium.webhook import (
    PAST_DUE_GRACE_MS,
    SubscriptionEvent,
    parse_event,
    parse_time,
    verify_signature,
)
from chalicelib.settings import get_settings
from tests.helpers import did_for_seed, seed_for

DAY = 86_400_000
KEY_DID = did_for_seed(seed_for(1))


@pytest.fixture
def required() -> object:
    return dataclasses.replace(get_settings(), premium_sync_required=True)


def test_dev_mode_opens_sync_to_all() -> None:
    settings = dataclasses.replace(get_settings(), premium_sync_required=False)
    view = premium_view(None, settings)
    assert view == {"required": False, "active": True, "source": "dev", "expiresAt": None}
    require_premium(None, settings)  # no 402


def test_active_until_premium_until_then_inactive_at_once(required: object) -> None:
    # GIVEN a vault whose summary says promo time until now + 1 day
    until = clock.now_ms() + DAY
    meta = {"premiumUntil": until, "premiumSource": "promo"}
    # THEN it is active with that end
    view = premium_view(meta, required)  # type: ignore[arg-type]
    assert view == {"required": True, "active": True, "source": "promo", "expiresAt": until}
    # WHEN the clock passes the end, with no job having run
    clock.set_offset_ms(DAY + 1)
    try:
        view = premium_view(meta, required)  # type: ignore[arg-type]
        # THEN it is inactive, keeps the source that was last active, and expiresAt is null
        assert view == {"required": True, "active": False, "source": "promo", "expiresAt": None}
        with pytest.raises(ApiError) as err:
            require_premium(meta, required)  # type: ignore[arg-type]
        assert (err.value.status, err.value.code) == (402, "premium_required")
    finally:
        clock.set_offset_ms(0)


def test_never_premium_has_null_source(required: object) -> None:
    view = premium_view({"seq": 0}, required)  # type: ignore[arg-type]
    assert view == {"required": True, "active": False, "source": None, "expiresAt": None}


def test_summary_takes_the_latest_end_and_its_source() -> None:
    sub = {"sk": "ENT#SUB#1", "until": 5_000}
    promo_row = {"sk": "ENT#PROMO", "endsAt": 9_000}
    assert summarize([sub, promo_row], None) == (9_000, "promo")
    assert summarize([{**sub, "until": 10_000}, promo_row], None) == (10_000, "subscription")
    # a subscription that was never active (arrived paused) keeps the previous source
    assert summarize([{"sk": "ENT#SUB#2", "until": 0}], "promo") == (0, "promo")
    assert summarize([], None) == (0, None)


def _event(status: str, renews: int | None, ends: int | None, updated: int = 1_000) -> int:
    return SubscriptionEvent("subscription_updated", "1", status, renews, ends, updated, None).until


def test_status_mapping() -> None:
    renews, ends = 50 * DAY, 40 * DAY
    assert _event("active", renews, None) == renews
    assert _event("on_trial", renews, None) == renews
    assert _event("cancelled", renews, ends) == ends  # active until ends_at
    assert _event("cancelled", None, None) == 0
    for status in ("paused", "unpaid", "expired"):
        assert _event(status, renews, ends) == 0
    # past_due stays active through Lemon Squeezy's retry window even if renews_at has passed
    assert _event("past_due", 10, None, updated=DAY) == DAY + PAST_DUE_GRACE_MS
    assert _event("past_due", renews, None, updated=DAY) == renews


def test_parse_time_reads_lemon_squeezy_timestamps() -> None:
    assert parse_time("1970-01-01T00:00:01.000000Z") == 1_000
    assert parse_time("2024-02-09T10:06:48.000000Z") == 1_707_473_208_000
    assert parse_time("2024-02-09T11:06:48.500+01:00") == 1_707_473_208_500
    assert parse_time(None) is None
    with pytest.raises(ValueError):
        parse_time("next tuesday")
    with pytest.raises(ValueError):
        parse_time(1_707_473_208)


def _sign(secret: str, raw: bytes) -> str:
    return hmac.new(secret.encode(), raw, hashlib.sha256).hexdigest()


def test_signature_is_hmac_of_the_exact_bytes() -> None:
    raw = b'{"meta": {}}'
    verify_signature("whsec", raw, _sign("whsec", raw))
    verify_signature("whsec", raw, _sign("whsec", raw).upper())  # hex is hex
    for secret, body, sig in [
        ("whsec", raw + b" ", _sign("whsec", raw)),  # one byte more
        ("other", raw, _sign("whsec", raw)),  # wrong secret
        ("whsec", raw, ""),  # unsigned
        ("whsec", raw, None),
        ("whsec", raw, "zz" * 32),
        ("whsec", raw, "é" * 64),  # non-ASCII header never raises TypeError
        ("", raw, _sign("", raw)),  # no secret configured: nothing is authentic
    ]:
        with pytest.raises(ApiError) as err:
            verify_signature(secret, body, sig)
        assert (err.value.status, err.value.code) == (401, "invalid_signature")


def _doc(**attrs: object) -> dict[str, object]:
    base: dict[str, object] = {
        "status": "active",
        "renews_at": "2030-01-01T00:00:00.000000Z",
        "ends_at": None,
        "updated_at": "2024-02-09T10:06:48.000000Z",
    }
    base.update(attrs)
    return {
        "meta": {"event_name": "subscription_updated", "custom_data": {"key_did": KEY_DID}},
        "data": {"type": "subscriptions", "id": "42", "attributes": base},
    }


def test_parse_event_shapes() -> None:
    event = parse_event(json.dumps(_doc()).encode())
    assert event is not None
    assert (event.subscription_id, event.status, event.key_did) == ("42", "active", KEY_DID)
    assert event.updated_at == 1_707_473_208_000
    # other events: acknowledged, ignored
    other = {"meta": {"event_name": "order_created"}, "data": {"type": "orders", "id": "1"}}
    assert parse_event(json.dumps(other).encode()) is None
    # a key_did that is not an Ed25519 did:key: usable event, no vault to apply it to
    bad_key = _doc()
    bad_key["meta"] = {"event_name": "subscription_created", "custom_data": {"key_did": "x"}}
    parsed = parse_event(json.dumps(bad_key).encode())
    assert parsed is not None and parsed.key_did is None


@pytest.mark.parametrize(
    "raw",
    [
        b"not json",
        b"\xff\xfe",
        b"[]",
        json.dumps({"data": {}}).encode(),
        json.dumps({"meta": {"event_name": "subscription_created"}}).encode(),
        json.dumps(_doc(updated_at=None)).encode(),
        json.dumps(_doc(updated_at="yesterday")).encode(),
        json.dumps(_doc(status="mystery")).encode(),
    ],
)
def test_malformed_events_are_400(raw: bytes) -> None:
    with pytest.raises(ApiError) as err:
        parse_event(raw)
    assert (err.value.status, err.value.code) == (400, "invalid_request")


def test_codes_are_random_and_normalised_before_hashing() -> None:
    code = promo.generate_code()
    assert len(code.replace("-", "")) == promo.CODE_CHARS
    assert code != promo.generate_code()
    digest = promo.code_hash(code)
    assert digest == promo.code_hash(code.lower().replace("-", " "))
    assert promo.code_hash("ABC0-1") == promo.code_hash("abco-i")  # O→0, I→1
    assert code not in digest and len(digest) == 64


def test_checkout_url_adds_the_key_did_and_keeps_the_query() -> None:
    url = checkout_url("https://nt2.lemonsqueezy.com/buy/abc?embed=1", KEY_DID)
    assert url.startswith("https://nt2.lemonsqueezy.com/buy/abc?embed=1&")
    assert url.endswith("checkout%5Bcustom%5D%5Bkey_did%5D=" + KEY_DID.replace(":", "%3A"))
    with pytest.raises(ApiError) as err:
        checkout_url("", KEY_DID)
    assert err.value.status == 503
