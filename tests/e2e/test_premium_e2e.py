"""§9 over real HTTP: the gate on and off, signed webhooks, the admin command, a redemption race."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from chalicelib.clock import now_ms
from tests.e2e.protocol_client import HttpDevice
from tests.functional.test_webhook import DAY, sign, subscription_event

pytestmark = pytest.mark.e2e

SECRET = "whsec-e2e"
TABLE = "nt2-premium-e2e"
ROOT = Path(__file__).resolve().parents[2]


def gated_server(server_factory: Any) -> Any:
    """A server of its own with Premium required and a known signing secret."""
    return server_factory(
        PREMIUM_SYNC_REQUIRED="true",
        LEMONSQUEEZY_SIGNING_SECRET=SECRET,
        LEMONSQUEEZY_CHECKOUT_URL="https://nt2.lemonsqueezy.com/buy/e2e",
        TABLE_NAME=TABLE,
    )


def deliver(base: str, doc: Any) -> httpx.Response:
    raw = json.dumps(doc).encode()
    return httpx.post(
        base + "/api/premium/webhook",
        content=raw,
        headers={"Content-Type": "application/json", "X-Signature": sign(raw, SECRET)},
    )


def admin(srv: Any, *argv: str) -> list[str]:
    """Run `nt2sync-admin` against the server's own backend (its embedded moto)."""
    backend = re.search(r"\(backend (http://[^)]+)\)", Path(srv.log.name).read_text())
    assert backend, "the server did not name its backend"
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update(
        AWS_ENDPOINT_URL=backend.group(1),
        AWS_ACCESS_KEY_ID="testing",
        AWS_SECRET_ACCESS_KEY="testing",  # noqa: S106 - moto's fake credentials
        AWS_DEFAULT_REGION="us-east-1",
        AWS_REGION="us-east-1",
        TABLE_NAME=TABLE,
    )
    done = subprocess.run(
        [sys.executable, "-m", "chalicelib.admin.cli", *argv],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return [line for line in done.stdout.splitlines() if line]


def item(item_id: str) -> dict[str, Any]:
    return {"id": item_id, "baseVersion": 0, "deleted": False, "ciphertext": "eHh4"}


def test_gate_off_everyone_syncs(server: Any) -> None:
    dev = HttpDevice.new(server.url, "free")
    dev.sign_in()
    premium = dev.call("GET", "/api/premium").json()
    assert premium == {"required": False, "active": True, "source": "dev", "expiresAt": None}
    assert dev.register().status_code == 201
    assert dev.push([item("a")]).status_code == 200


def test_gate_on(server_factory: Any) -> None:
    """One gated server (starting one is the slow part) for both halves."""
    gated = gated_server(server_factory)
    subscription_lifecycle(gated)
    admin_codes_and_last_slot_race(gated)


def subscription_lifecycle(gated: Any) -> None:
    base = gated.url
    dev = HttpDevice.new(base, "laptop")
    dev.sign_in("Laptop")
    # GIVEN no Premium: registration is refused
    r = dev.register()
    assert (r.status_code, r.json()["code"]) == (402, "premium_required")
    # the checkout link names this key for the webhooks to come
    url = dev.call("POST", "/api/premium/checkout").json()["url"]
    assert parse_qs(urlsplit(url).query)["checkout[custom][key_did]"] == [dev.key_did]
    # WHEN Lemon Squeezy reports the subscription (signed)
    t0 = now_ms()
    created = subscription_event(
        "subscription_created", dev.key_did, renews_at=t0 + 30 * DAY, updated_at=t0
    )
    assert deliver(base, created).json() == {"status": "applied"}
    # an unsigned copy is refused
    r = httpx.post(base + "/api/premium/webhook", json=created)
    assert (r.status_code, r.json()["code"]) == (401, "invalid_signature")
    # THEN the vault registers and pushes
    assert dev.register().status_code == 201
    assert dev.push([item("a")]).status_code == 200
    # WHEN the subscription is cancelled and its end date has passed (a newer event)
    lapsed = subscription_event(
        "subscription_cancelled",
        dev.key_did,
        status="cancelled",
        ends_at=t0 - 1000,
        updated_at=t0 + 1000,
    )
    assert deliver(base, lapsed).json() == {"status": "applied"}
    # and the older "created" is delivered again: it changes nothing
    assert deliver(base, created).json() == {"status": "stale"}
    # THEN writes answer 402 ...
    r = dev.push([item("b")])
    assert (r.status_code, r.json()["code"]) == (402, "premium_required")
    assert dev.register().status_code == 402
    # ... and the data is never held hostage
    pull = dev.pull()
    assert pull.status_code == 200 and [i["id"] for i in pull.json()["items"]] == ["a"]
    status = dev.call("GET", "/api/sync/status")
    assert status.status_code == 200
    assert status.json()["premium"] == {
        "required": True,
        "active": False,
        "source": "subscription",
        "expiresAt": None,
    }
    boot = httpx.get(base + "/api/vault/bootstrap", params={"keyDid": dev.key_did})
    assert boot.status_code == 200
    assert dev.call("GET", "/api/salt", params={"keyDid": dev.key_did}).status_code == 200
    assert dev.call("GET", "/api/devices").status_code == 200


def admin_codes_and_last_slot_race(gated: Any) -> None:
    base = gated.url
    # GIVEN the operator made one code with a single redemption
    (code,) = admin(gated, "promo", "create", "--days", "14", "--max-redemptions", "1")
    devices = [HttpDevice.new(base, f"racer-{i}") for i in range(6)]
    for dev in devices:
        dev.sign_in()

    def attempt(dev: HttpDevice) -> httpx.Response:
        return dev.call("POST", "/api/premium/redeem", json={"code": code})

    # WHEN six vaults redeem it at the same moment
    with ThreadPoolExecutor(max_workers=6) as pool:
        results = list(pool.map(attempt, devices))
    # THEN exactly one wins
    statuses = sorted(r.status_code for r in results)
    assert statuses == [200, 409, 409, 409, 409, 409], [r.text for r in results]
    assert {r.json()["code"] for r in results if r.status_code == 409} == {"promo_exhausted"}
    winner = next(d for d, r in zip(devices, results, strict=True) if r.status_code == 200)
    assert winner.register().status_code == 201
    (listing,) = [line for line in admin(gated, "promo", "list", "--json")]
    assert json.loads(listing)["redemptions"] == 1
