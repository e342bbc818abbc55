"""§9 Premium routes, promo redemption and the sync gate through chalice.test.Client over moto."""

from __future__ import annotations

import threading
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from chalicelib.clock import now_ms
from chalicelib.errors import ApiError
from chalicelib.premium import promo
from chalicelib.premium.summary import load, summarize
from chalicelib.premium.webhook import SubscriptionEvent, apply_event
from chalicelib.store import keys
from chalicelib.store.table import Table
from chalicelib.vaults import vault_id_for
from tests.helpers import Caller, Device, did_for_seed, seed_for

DAY = 86_400_000


@pytest.fixture
def required(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PREMIUM_SYNC_REQUIRED", "true")


def make_code(days: int = 30, max_redemptions: int = 10, expires_at: int | None = None) -> str:
    (code,) = promo.create_codes(
        Table(), duration_days=days, max_redemptions=max_redemptions, expires_at=expires_at
    )
    return code


def redeem(dev: Device, code: str) -> Any:
    return dev.call("POST", "/api/premium/redeem", {"code": code})


def item(item_id: str) -> dict[str, Any]:
    return {"id": item_id, "baseVersion": 0, "deleted": False, "ciphertext": "eHh4"}


# --- GET /api/premium ------------------------------------------------------------------------


def test_dev_mode_premium_object(device: Device) -> None:
    device.sign_in()
    r = device.call("GET", "/api/premium")
    assert (r.status, r.body) == (
        200,
        {"required": False, "active": True, "source": "dev", "expiresAt": None},
    )


def test_required_and_never_premium(device: Device, required: None) -> None:
    # works for a session whose vault is not registered yet
    device.sign_in()
    r = device.call("GET", "/api/premium")
    assert r.body == {"required": True, "active": False, "source": None, "expiresAt": None}
    assert device.call("GET", "/api/sync/status").body["premium"] == r.body


def test_premium_needs_a_session(caller: Caller) -> None:
    for method, path, body in [
        ("GET", "/api/premium", None),
        ("POST", "/api/premium/redeem", {"code": "X"}),
        ("POST", "/api/premium/checkout", None),
    ]:
        r = caller.call(method, path, body)
        assert (r.status, r.body["code"]) == (401, "unauthorized")


# --- checkout --------------------------------------------------------------------------------


def test_checkout_link_carries_the_key_did(device: Device, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(
        "LEMONSQUEEZY_CHECKOUT_URL", "https://nt2.lemonsqueezy.com/buy/abc?embed=1&media=0"
    )
    device.sign_in()
    r = device.call("POST", "/api/premium/checkout")
    assert r.status == 200, r.body
    url = urlsplit(r.body["url"])
    assert (url.scheme, url.netloc, url.path) == ("https", "nt2.lemonsqueezy.com", "/buy/abc")
    assert parse_qs(url.query) == {
        "embed": ["1"],
        "media": ["0"],
        "checkout[custom][key_did]": [device.key_did],
    }
    assert device.call("POST", "/api/premium/checkout", {}).status == 200


def test_checkout_rejects_unknown_fields(device: Device) -> None:
    device.sign_in()
    r = device.call("POST", "/api/premium/checkout", {"plan": "gold"})
    assert (r.status, r.body["code"]) == (400, "invalid_request")


# --- redeem ----------------------------------------------------------------------------------


def test_redeem_activates_and_returns_the_object(device: Device, required: None, aws: None) -> None:
    code = make_code(days=30)
    device.sign_in()
    before = now_ms()
    r = redeem(device, code)
    assert r.status == 200, r.body
    assert r.body["required"] is True and r.body["active"] is True
    assert r.body["source"] == "promo"
    assert before + 30 * DAY <= r.body["expiresAt"] <= now_ms() + 30 * DAY
    assert device.call("GET", "/api/premium").body == r.body
    # the code is typed loosely by a person: lower case, spaces instead of dashes
    other = Device(device.caller, seed_for(3))
    other.sign_in()
    assert redeem(other, code.lower().replace("-", " ")).status == 200


def test_redeem_validation_comes_first(device: Device) -> None:
    device.sign_in()
    for body in ({}, {"code": ""}, {"code": 5}, {"code": "A", "extra": 1}, {"code": "A" * 129}):
        r = device.call("POST", "/api/premium/redeem", body)
        assert (r.status, r.body["code"]) == (400, "invalid_request"), body


def test_unknown_code_is_404(device: Device, aws: None) -> None:
    make_code()
    device.sign_in()
    r = redeem(device, promo.generate_code())
    assert (r.status, r.body["code"]) == (404, "promo_not_found")


def test_expired_code_is_404(device: Device, clock: Any, aws: None) -> None:
    code = make_code(expires_at=now_ms() + DAY)
    clock(DAY + 1)
    device.sign_in()
    r = redeem(device, code)
    assert (r.status, r.body["code"]) == (404, "promo_not_found")


def test_same_vault_twice_is_409_and_counts_once(device: Device, aws: None) -> None:
    code = make_code(max_redemptions=5)
    device.sign_in()
    first = redeem(device, code)
    assert first.status == 200
    again = redeem(device, code)
    assert (again.status, again.body["code"]) == (409, "already_redeemed")
    # another replica of the same vault is the same vault
    laptop = Device(device.caller, device.seed, "replica-b")
    laptop.sign_in()
    assert redeem(laptop, code).body["code"] == "already_redeemed"
    (info,) = promo.list_codes(Table())
    assert info.redemptions == 1


def test_used_up_code_is_409_exhausted(caller: Caller, aws: None) -> None:
    code = make_code(max_redemptions=1)
    a, b = Device(caller, seed_for(1)), Device(caller, seed_for(2))
    a.sign_in()
    b.sign_in()
    assert redeem(a, code).status == 200
    r = redeem(b, code)
    assert (r.status, r.body["code"]) == (409, "promo_exhausted")
    # the vault that used the last slot is told it already redeemed, not that it is used up
    assert redeem(a, code).body["code"] == "already_redeemed"


def test_promos_stack_onto_remaining_promo_time(device: Device, required: None, clock: Any) -> None:
    first, second = make_code(days=10), make_code(days=20)
    device.sign_in()
    end1 = redeem(device, first).body["expiresAt"]
    # WHEN a second code is redeemed 3 days later, while 7 days are left
    clock(3 * DAY)
    device.sign_in()
    end2 = redeem(device, second).body["expiresAt"]
    # THEN its 20 days are added to the end of the first, not to today
    assert end2 == end1 + 20 * DAY


def test_promo_after_lapse_starts_from_now(device: Device, required: None, clock: Any) -> None:
    first, second = make_code(days=1), make_code(days=2)
    device.sign_in()
    redeem(device, first)
    clock(5 * DAY)
    device.sign_in()
    assert device.call("GET", "/api/premium").body["active"] is False
    start = now_ms()
    end = redeem(device, second).body["expiresAt"]
    assert start + 2 * DAY <= end <= now_ms() + 2 * DAY


def test_codes_are_stored_hashed(aws: None) -> None:
    import boto3

    code = make_code()
    rows = boto3.client("dynamodb", region_name="us-east-1").scan(TableName="nt2-sync-test")
    dump = str(rows["Items"])
    assert code not in dump and code.replace("-", "") not in dump
    assert promo.code_hash(code) in dump


def _vaults(n: int) -> list[str]:
    table = Table()
    out = []
    for i in range(n):
        vault_id, _ = vault_id_for(table, did_for_seed(seed_for(100 + i)), allocate=True)
        assert vault_id is not None
        out.append(vault_id)
    return out


def _race(targets: list[Any]) -> list[Any]:
    """Run the callables at the same moment on real threads; each result or ApiError code."""
    results: list[Any] = [None] * len(targets)
    barrier = threading.Barrier(len(targets))

    def run(i: int) -> None:
        barrier.wait()
        try:
            results[i] = targets[i]()
        except ApiError as err:
            results[i] = err.code

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(targets))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    return results


def test_last_slot_race_exactly_one_wins(aws: None) -> None:
    # GIVEN a code with one redemption left and 8 vaults that want it at the same moment
    code = make_code(max_redemptions=3)
    vaults = _vaults(10)
    table = Table()
    promo.redeem(table, vaults[0], code)
    promo.redeem(table, vaults[1], code)
    contenders = vaults[2:]
    # WHEN they all redeem at once
    results = _race([lambda v=v: promo.redeem(Table(), v, code) for v in contenders])
    # THEN exactly one wins and the others are told it is used up
    winners = [r for r in results if isinstance(r, dict)]
    assert len(winners) == 1, results
    assert sorted(r for r in results if isinstance(r, str)) == ["promo_exhausted"] * 7
    (info,) = promo.list_codes(table)
    assert info.redemptions == 3
    marked = [v for v in contenders if table.get(keys.promo_use_key(v, promo.code_hash(code)))]
    assert len(marked) == 1


def test_same_vault_racing_itself_redeems_once(aws: None) -> None:
    code = make_code(days=10, max_redemptions=50)
    (vault_id,) = _vaults(1)
    results = _race([lambda: promo.redeem(Table(), vault_id, code) for _ in range(6)])
    assert sum(isinstance(r, dict) for r in results) == 1, results
    assert [r for r in results if isinstance(r, str)] == ["already_redeemed"] * 5
    (info,) = promo.list_codes(Table())
    assert info.redemptions == 1
    snap = load(Table(), vault_id)
    assert snap is not None
    ends = int(snap.rows[keys.PROMO_ENTITLEMENT_SK]["endsAt"])
    assert now_ms() + 9 * DAY < ends <= now_ms() + 10 * DAY  # one duration, not six


def test_concurrent_changes_never_lose_each_other(aws: None) -> None:
    # GIVEN one vault receiving promo redemptions and subscription events at the same time
    (vault_id,) = _vaults(1)
    key_did = did_for_seed(seed_for(100))
    codes = [make_code(days=d) for d in (1, 2, 3, 4)]
    t0 = now_ms()
    events = [
        SubscriptionEvent(
            "subscription_created", f"s{i}", "active", t0 + i * DAY, None, t0, key_did
        )
        for i in (5, 40, 7)
    ]
    targets: list[Any] = [lambda c=c: promo.redeem(Table(), vault_id, c) for c in codes]
    targets += [lambda e=e: apply_event(Table(), e) for e in events]
    # WHEN they all commit concurrently
    results = _race(targets)
    assert all(isinstance(r, dict) for r in results[: len(codes)]), results
    assert results[len(codes) :] == ["applied"] * len(events)
    # THEN every change landed, and the summary on META is the one computed from all rows
    snap = load(Table(), vault_id)
    assert snap is not None
    promo_end = int(snap.rows[keys.PROMO_ENTITLEMENT_SK]["endsAt"])
    assert t0 + 10 * DAY <= promo_end <= now_ms() + 10 * DAY  # 1+2+3+4 days, stacked
    assert {sk for sk in snap.rows if sk.startswith("ENT#SUB#")} == {
        "ENT#SUB#s5",
        "ENT#SUB#s40",
        "ENT#SUB#s7",
    }
    assert snap.meta["premiumUntil"] == t0 + 40 * DAY
    assert (snap.meta["premiumUntil"], snap.meta["premiumSource"]) == summarize(
        snap.rows.values(), None
    )
    assert snap.meta["entVersion"] == 7


# --- the gate --------------------------------------------------------------------------------


def test_gate_off_everything_open(device: Device) -> None:
    device.sign_in()
    assert device.register().status == 201
    assert (
        device.call("POST", "/api/sync/push", {"batchId": "b", "items": [item("a")]}).status == 200
    )


def test_gate_on_register_push_need_premium_reads_never_do(
    device: Device, required: None, clock: Any
) -> None:
    # GIVEN Premium is required and the vault has none
    device.sign_in("Laptop")
    r = device.register()
    assert (r.status, r.body["code"]) == (402, "premium_required")
    # WHEN a promo is redeemed
    assert redeem(device, make_code(days=1)).status == 200
    # THEN registration and push pass the gate
    assert device.register().status == 201
    r = device.call("POST", "/api/sync/push", {"batchId": "b1", "items": [item("a")]})
    assert r.status == 200, r.body
    # WHEN the promo lapses
    clock(DAY + 1000)
    device.sign_in()
    # THEN writes answer 402 ...
    r = device.call("POST", "/api/sync/push", {"batchId": "b2", "items": [item("b")]})
    assert (r.status, r.body["code"]) == (402, "premium_required")
    r = device.register()
    assert (r.status, r.body["code"]) == (402, "premium_required")
    # ... and nothing is held hostage: reads keep working
    pull = device.call("GET", "/api/sync/pull?since=0")
    assert pull.status == 200 and [i["id"] for i in pull.body["items"]] == ["a"]
    status = device.call("GET", "/api/sync/status")
    assert status.status == 200 and status.body["premium"]["active"] is False
    assert device.caller.call("GET", f"/api/vault/bootstrap?keyDid={device.key_did}").status == 200
    assert device.call("GET", f"/api/salt?keyDid={device.key_did}").status == 200
    assert device.call("GET", "/api/devices").status == 200
