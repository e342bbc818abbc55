"""Edge inputs and limits: each was a 500, a silent acceptance or an oversize answer once."""

from __future__ import annotations

import json
from typing import Any

import pytest

from chalicelib.shared.encoding import b64url_encode
from tests.functional.sync_helpers import batch, live, tomb
from tests.helpers import SALT, Caller, Device


@pytest.mark.parametrize("raw", ["[" * 3000, '{"keyDid":' + "[" * 3000 + "]" * 3000 + "}"])
def test_deeply_nested_json_is_400(caller: Caller, raw: str) -> None:
    r = caller.call("POST", "/api/auth/challenge", raw=raw)
    assert (r.status, r.body["code"]) == (400, "invalid_request")


@pytest.mark.parametrize(
    "keys", [{"a": 1.5}, {"a": 10**40}, {"a": json.loads("[" * 40 + "]" * 40)}]
)
def test_public_keys_dynamodb_cannot_store_are_400(device: Device, keys: Any) -> None:
    device.sign_in()
    r = device.register(publicKeys=keys)
    assert (r.status, r.body["code"]) == (400, "invalid_request")


def test_trailing_newline_is_not_hex_or_an_integer(registered: Device) -> None:
    r = registered.call("POST", "/api/vault/register", {"saltHex": SALT + "\n"})
    assert (r.status, r.body["code"]) == (400, "invalid_encoding")
    r = registered.call("GET", "/api/sync/pull?since=0%0A")
    assert (r.status, r.body["code"]) == (400, "invalid_request")


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("DELETE", "/api/auth/session"),
        ("GET", "/api/sync/status"),
        ("POST", "/api/attachments/a1/commit"),
    ],
)
def test_routes_without_a_body_reject_one(registered: Device, method: str, path: str) -> None:
    r = registered.call(method, path, {"bogus": 1})
    assert (r.status, r.body["code"]) == (400, "invalid_request")
    r = registered.call(method, path, raw="not json")
    assert (r.status, r.body["code"]) == (400, "invalid_request")


def test_replay_after_premium_lapse_still_answers(registered: Device, monkeypatch: Any) -> None:
    body = batch([live("a")], "before-lapse")
    first = registered.call("POST", "/api/sync/push", body)
    monkeypatch.setenv("PREMIUM_SYNC_REQUIRED", "true")
    again = registered.call("POST", "/api/sync/push", body)
    assert again.status == 200 and again.body == first.body
    fresh = registered.call("POST", "/api/sync/push", batch([live("b")]))
    assert (fresh.status, fresh.body["code"]) == (402, "premium_required")


def test_many_large_conflicts_keep_the_response_under_lambdas_limit(registered: Device) -> None:
    big = b64url_encode(b"\2" * (256 * 1024))
    for part in range(2):
        items = [
            {"id": f"big{part}-{n}", "baseVersion": 0, "deleted": False, "ciphertext": big}
            for n in range(10)
        ]
        assert registered.call("POST", "/api/sync/push", batch(items)).status == 200
    # 20 stale tombstones: every one conflicts with a 256 KiB current item
    stale = [tomb(f"big{p}-{n}", 0) for p in range(2) for n in range(10)]
    r = registered.call("POST", "/api/sync/push", batch(stale, "stale"))
    assert r.status == 200
    assert len(json.dumps(r.body)) < 5 * 1024 * 1024
    currents = [x["current"] for x in r.body["results"]]
    assert all(c is not None and c["deleted"] is False for c in currents)
    full = [c for c in currents if c["ciphertext"] is not None]
    assert len(full) == 11 and all(c["ciphertext"] == big for c in full)  # 11 × 349 526 ≤ 4 MiB
    again = registered.call("POST", "/api/sync/push", batch(stale, "stale"))
    assert again.body == r.body
