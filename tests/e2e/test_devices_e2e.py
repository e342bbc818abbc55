"""§7 over real HTTP against the local server: revocation cuts a device off, rotation moves
the vault, and neither loses data nor leaves a way back in."""

from __future__ import annotations

import secrets
import threading
import time
from dataclasses import dataclass, field
from typing import Any

import httpx

from chalicelib.shared.encoding import b64url_encode
from tests.e2e.protocol_client import HttpDevice


def _live(item_id: str) -> dict[str, Any]:
    return {
        "id": item_id,
        "baseVersion": 0,
        "deleted": False,
        "ciphertext": b64url_encode(secrets.token_bytes(24)),
    }


def _pull_all(dev: HttpDevice) -> tuple[list[dict[str, Any]], int]:
    """Everything the server holds, page by page, and the final watermark."""
    items: list[dict[str, Any]] = []
    since = 0
    while True:
        r = dev.pull(since, 1000)
        assert r.status_code == 200, r.text
        body = r.json()
        items.extend(body["items"])
        since = body["watermark"]
        if not body["hasMore"]:
            return items, since


def _sign_in_status(dev: HttpDevice) -> httpx.Response:
    return dev.http.post("/api/auth/session", json=dev.session_body(dev.challenge()))


def _bootstrap(base: str, key_did: str) -> httpx.Response:
    return httpx.get(base + "/api/vault/bootstrap", params={"keyDid": key_did})


@dataclass
class _Seen:
    """What a looping pull thread observed: (started, finished, status, code, item ids)."""

    calls: list[tuple[float, float, int, str | None, list[str]]] = field(default_factory=list)


def test_revoked_device_is_cut_off_while_pulling(server: Any) -> None:
    base = server.url
    seed = secrets.token_bytes(32)
    # GIVEN device A with a registered vault and one item, and device B of the same vault
    a = HttpDevice(base, seed, "laptop")
    a.sign_in("Laptop")
    assert a.register().status_code == 201
    assert a.push([_live("before")]).status_code == 200
    b = HttpDevice(base, seed, "phone")
    b.sign_in("Phone")
    assert [i["id"] for i in _pull_all(b)[0]] == ["before"]

    # AND B pulling in a loop in a thread, until it has failed a few times
    seen = _Seen()
    stop = threading.Event()

    def pull_loop() -> None:
        with httpx.Client(base_url=base, timeout=30) as http:
            failures = 0
            while not stop.is_set() and failures < 5:
                started = time.monotonic()
                r = http.get(
                    "/api/sync/pull",
                    params={"since": 0},
                    headers={"Authorization": f"Bearer {b.token}"},
                )
                body = r.json()
                ids = [i["id"] for i in body.get("items", [])] if r.status_code == 200 else []
                seen.calls.append((started, time.monotonic(), r.status_code, body.get("code"), ids))
                failures += r.status_code != 200

    puller = threading.Thread(target=pull_loop)
    puller.start()
    try:
        while not any(c[2] == 200 for c in seen.calls):
            time.sleep(0.01)
        # WHEN A revokes B (and then writes something new)
        r = a.revoke("phone")
        revoked_at = time.monotonic()
        assert r.status_code == 200, r.text
        revoked = r.json()
        assert isinstance(revoked["revokedAt"], int) and revoked["current"] is False
        assert a.push([_live("after")]).status_code == 200
        puller.join(timeout=60)
    finally:
        stop.set()
        puller.join(timeout=60)

    # THEN every pull that started after the revoke answered 401 session_revoked
    after = [c for c in seen.calls if c[0] >= revoked_at]
    assert len(after) >= 1
    assert all((c[2], c[3]) == (401, "session_revoked") for c in after)
    # AND once B got its first failure it never got data again
    first_fail = next(i for i, c in enumerate(seen.calls) if c[2] != 200)
    assert all(c[2] == 401 for c in seen.calls[first_fail:])
    assert all("after" not in c[4] for c in seen.calls)
    # AND B can neither push nor sign in again
    r = b.push([_live("sneaky")])
    assert (r.status_code, r.json()["code"]) == (401, "session_revoked")
    r = _sign_in_status(b)
    assert (r.status_code, r.json()["code"]) == (403, "device_revoked")
    # AND A's vault is intact, counts one device, and lists B as revoked
    assert sorted(i["id"] for i in _pull_all(a)[0]) == ["after", "before"]
    assert a.call("GET", "/api/sync/status").json()["devices"] == 1
    devices = {d["replicaId"]: d for d in a.call("GET", "/api/devices").json()["devices"]}
    assert devices["phone"]["revokedAt"] == revoked["revokedAt"]
    assert devices["laptop"]["revokedAt"] is None


def test_rotation_with_two_devices(server: Any) -> None:
    base = server.url
    old_seed, new_seed = secrets.token_bytes(32), secrets.token_bytes(32)
    # GIVEN a laptop and a phone on one vault, both having pushed
    laptop = HttpDevice(base, old_seed, "laptop")
    laptop.sign_in("Laptop")
    assert laptop.register().status_code == 201
    phone = HttpDevice(base, old_seed, "phone")
    phone.sign_in("Phone")
    assert laptop.push([_live("l1"), _live("l2")]).status_code == 200
    assert phone.push([_live("p1")]).status_code == 200
    items_before, watermark_before = _pull_all(laptop)
    status_before = laptop.call("GET", "/api/sync/status").json()
    devices_before = laptop.call("GET", "/api/devices").json()["devices"]
    old_did = laptop.key_did

    # WHEN the laptop changes the master password and rotates to the new key
    body = laptop.rotate_body(new_seed)
    r = laptop.call("POST", "/api/vault/rotate", json=body)
    assert r.status_code == 200, r.text
    new_did = r.json()["keyDid"]

    # THEN both old sessions are over
    for dev in (laptop, phone):
        r = dev.call("GET", "/api/sync/status")
        assert (r.status_code, r.json()["code"]) == (401, "unauthorized")
    # AND the laptop, which knows the new key, continues on the same data
    laptop2 = HttpDevice(base, new_seed, "laptop")
    laptop2.sign_in()
    items_after, watermark_after = _pull_all(laptop2)
    assert items_after == items_before and watermark_after == watermark_before
    status_after = laptop2.call("GET", "/api/sync/status").json()
    assert status_after["keyDid"] == new_did
    for key in ("registered", "registeredAt", "watermark", "counts", "devices"):
        assert status_after[key] == status_before[key]
    devices_after = laptop2.call("GET", "/api/devices").json()["devices"]
    strip = ("lastSeenAt", "current")
    assert [{k: v for k, v in d.items() if k not in strip} for d in devices_after] == [
        {k: v for k, v in d.items() if k not in strip} for d in devices_before
    ]
    assert laptop2.push([_live("l3")]).status_code == 200
    # AND the phone, which only knows the old key, is locked out of the vault
    phone_old = HttpDevice(base, old_seed, "phone")
    phone_old.sign_in()
    status = phone_old.call("GET", "/api/sync/status").json()
    assert status["registered"] is False and status["watermark"] == 0
    r = phone_old.pull()
    assert (r.status_code, r.json()["code"]) == (404, "vault_not_found")
    r = phone_old.push([_live("p2")])
    assert (r.status_code, r.json()["code"]) == (404, "vault_not_found")
    r = phone_old.register()
    assert (r.status_code, r.json()["code"]) == (409, "key_did_retired")
    assert _bootstrap(base, old_did).status_code == 404
    boot = _bootstrap(base, new_did)
    assert boot.status_code == 200 and boot.json()["saltHex"] == "00" * 16
    # AND once the phone learns the new password it continues too, as the same device
    phone_new = HttpDevice(base, new_seed, "phone")
    phone_new.sign_in()
    ids = sorted(i["id"] for i in _pull_all(phone_new)[0])
    assert ids == ["l1", "l2", "l3", "p1"]
    assert phone_new.call("GET", "/api/sync/status").json()["devices"] == 2


def test_rotate_racing_with_pushes_loses_nothing(server: Any) -> None:
    base = server.url
    old_seed, new_seed = secrets.token_bytes(32), secrets.token_bytes(32)
    owner = HttpDevice(base, old_seed, "owner")
    owner.sign_in()
    assert owner.register().status_code == 201
    pushers = [HttpDevice(base, old_seed, f"pusher-{n}") for n in range(2)]
    for p in pushers:
        p.sign_in()

    accepted: dict[str, int] = {}
    final: list[tuple[int, str | None]] = []
    lock = threading.Lock()
    started = threading.Event()

    def push_loop(dev: HttpDevice) -> None:
        with httpx.Client(base_url=base, timeout=30) as http:
            for n in range(200):
                batch = [_live(f"{dev.replica_id}-{n}-{k}") for k in range(3)]
                r = http.post(
                    "/api/sync/push",
                    json={"batchId": secrets.token_hex(8), "items": batch},
                    headers={"Authorization": f"Bearer {dev.token}"},
                )
                if r.status_code != 200:
                    with lock:
                        final.append((r.status_code, r.json().get("code")))
                    return
                with lock:
                    for res in r.json()["results"]:
                        assert res["status"] == "accepted"
                        accepted[res["id"]] = res["version"]
                started.set()

    threads = [threading.Thread(target=push_loop, args=(p,)) for p in pushers]
    for t in threads:
        t.start()
    try:
        # WHEN the owner rotates while both pushers are mid-stream
        assert started.wait(timeout=30)
        time.sleep(0.05)
        r = owner.call("POST", "/api/vault/rotate", json=owner.rotate_body(new_seed))
        assert r.status_code == 200, r.text
    finally:
        for t in threads:
            t.join(timeout=120)

    # THEN each pusher was stopped by the rotation with 401 (not a 5xx, not silently)
    assert final == [(401, "unauthorized")] * 2
    # AND every accepted item is in the vault under the new key, at its accepted version
    dev = HttpDevice(base, new_seed, "checker")
    dev.sign_in()
    items, watermark = _pull_all(dev)
    stored = {i["id"]: i["version"] for i in items}
    assert stored == accepted
    assert watermark == max(accepted.values())
    status = dev.call("GET", "/api/sync/status").json()
    assert status["counts"]["items"] == len(accepted)
    # AND the vault answers to exactly one key
    assert _bootstrap(base, dev.key_did).status_code == 200
    assert _bootstrap(base, owner.key_did).status_code == 404
    old = HttpDevice(base, old_seed, "late")
    old.sign_in()
    assert old.call("GET", "/api/sync/status").json()["registered"] is False
