"""The identity flow over real HTTP against the local server, as `make serve` runs it."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import httpx

from tests.e2e.protocol_client import HttpDevice


def test_identity_flow_over_http(server: object) -> None:
    base = server.url  # type: ignore[attr-defined]
    # GIVEN a new device
    dev = HttpDevice.new(base, "laptop")
    health = httpx.get(base + "/api/health").json()
    assert health["audience"] == base
    # WHEN it signs in and registers
    dev.sign_in("Laptop")
    r = dev.register()
    assert r.status_code == 201
    # THEN bootstrap serves the salt publicly and the session salt matches
    boot = httpx.get(base + "/api/vault/bootstrap", params={"keyDid": dev.key_did})
    assert boot.status_code == 200 and boot.json()["saltHex"] == "00" * 16
    assert boot.headers["cache-control"] == "no-store"
    salt = dev.call("GET", "/api/salt", params={"keyDid": dev.key_did})
    assert salt.json() == {"saltHex": "00" * 16, "verifier": None}
    status = dev.call("GET", "/api/sync/status").json()
    assert status["registered"] is True and status["devices"] == 1
    assert dev.call("DELETE", "/api/auth/session").status_code == 204
    assert dev.call("GET", "/api/sync/status").status_code == 401


def test_fifty_concurrent_sessions_one_nonce_exactly_one_wins(server: object) -> None:
    base = server.url  # type: ignore[attr-defined]
    dev = HttpDevice.new(base, "racer")
    body = dev.session_body(dev.challenge())

    def attempt(_: int) -> int:
        with httpx.Client(base_url=base, timeout=30) as http:
            return http.post("/api/auth/session", json=body).status_code

    with ThreadPoolExecutor(max_workers=50) as pool:
        statuses = list(pool.map(attempt, range(50)))
    assert statuses.count(200) == 1
    assert statuses.count(401) == 49
