"""PROTOCOL v1.2 §3: nothing a key leaves without ever registering outlives 24 hours.

moto never expires a TTL, so these tests read the `ttl` the app writes and move the clock
past it (the app must then treat the row as gone, as DynamoDB deletes expired rows late).
Each failed on v1.1, whose KEY/META/device rows of an unregistered key lived for ever.
"""

from __future__ import annotations

from typing import Any

from chalicelib.store import keys
from chalicelib.store.table import Table
from tests.helpers import Caller, Device

DAY_MS = 86_400_000


def row(key: dict[str, dict[str, str]]) -> dict[str, Any]:
    found = Table().get(key)
    assert found is not None
    return found


def vault_of(dev: Device) -> str:
    return str(row(keys.key_pk(dev.key_did))["vaultId"])


def test_rows_of_a_key_that_never_registers_expire_within_a_day(device: Device) -> None:
    device.sign_in("Laptop")
    vault = vault_of(device)
    created = int(row(keys.meta_key(vault))["createdAt"]) // 1000
    for key in (
        keys.key_pk(device.key_did),
        keys.meta_key(vault),
        keys.device_key(vault, "replica-a"),
    ):
        assert 0 < int(row(key)["ttl"]) - created <= 24 * 3600, key
    session = row(
        keys.session_key(__import__("chalicelib.identity").identity.hash_token(device.token))
    )
    assert int(session["ttl"]) - created <= 24 * 3600


def test_registration_keeps_them(device: Device) -> None:
    device.sign_in("Laptop")
    assert device.register().status == 201
    vault = vault_of(device)
    for key in (
        keys.key_pk(device.key_did),
        keys.meta_key(vault),
        keys.device_key(vault, "replica-a"),
    ):
        assert "ttl" not in row(key), key


def test_other_devices_enrolled_before_registration_are_kept(
    device: Device, caller: Caller
) -> None:
    device.sign_in("Laptop")
    phone = Device(caller, device.seed, "replica-b")
    phone.sign_in("Phone")
    assert device.register().status == 201
    assert "ttl" not in row(keys.device_key(vault_of(device), "replica-b"))
    assert phone.call("GET", "/api/sync/status").body["devices"] == 2


def test_after_a_day_the_key_starts_afresh(device: Device, clock: Any) -> None:
    device.sign_in("Laptop")
    old_vault = vault_of(device)
    clock(DAY_MS + 1000)
    # WHEN the old session (expired anyway) is gone and the key signs in again
    device.sign_in("Laptop")
    # THEN it gets a new empty vault, and registering it works
    assert vault_of(device) != old_vault
    assert device.register().status == 201


def test_a_registration_after_the_lifetime_is_refused(device: Device, clock: Any) -> None:
    device.sign_in("Laptop")
    clock(DAY_MS - 60_000)
    device.sign_in("Laptop")  # a session opened just before the vault's 24 h end
    clock(DAY_MS + 60_000)
    r = device.register()
    assert (r.status, r.body["code"]) == (401, "unauthorized")
    device.sign_in("Laptop")
    assert device.register().status == 201


def test_an_entitlement_keeps_an_unregistered_vault(
    device: Device, caller: Caller, clock: Any
) -> None:
    device.sign_in("Laptop")
    vault = vault_of(device)
    from chalicelib.premium.summary import change_entitlements

    def nothing(snap: Any) -> Any:
        from chalicelib.premium.summary import Change
        from chalicelib.store.txn import Transaction

        return Change(Transaction(), {})

    change_entitlements(Table(), vault, nothing)
    assert "ttl" not in row(keys.meta_key(vault)) and "ttl" not in row(keys.key_pk(device.key_did))
    clock(2 * DAY_MS)
    device.sign_in("Laptop")
    assert vault_of(device) == vault
