"""`nt2sync-admin vault show|delete --key-did` against moto in-process.

Two vaults are built through the API (items, a tombstone, a conflict, two devices, a committed
attachment, a promo redemption, a rotation that abandons the new key's empty vault, a session
of the retired key); deleting vault A must leave nothing of it and everything of vault B.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import pytest
from botocore.exceptions import ClientError

from chalicelib.admin.cli import main
from chalicelib.premium import promo
from chalicelib.store import bulk
from chalicelib.store import table as table_module
from chalicelib.store.aws import client
from chalicelib.store.table import Table, from_item
from tests.functional.sync_helpers import batch, live, tomb
from tests.functional.test_attachments import BUCKET, store
from tests.helpers import Caller, Device, did_for_seed, seed_for

A_OLD, A_NEW, B_SEED, STRANGER = seed_for(1), seed_for(2), seed_for(5), seed_for(9)


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    capsys.readouterr()  # drop what earlier API calls logged
    code = main(list(argv))
    out = capsys.readouterr()
    return code, out.out, out.err


def run_json(capsys: pytest.CaptureFixture[str], *argv: str) -> dict[str, Any]:
    code, out, err = run(capsys, *argv, "--json")
    assert code == 0, err
    result: dict[str, Any] = json.loads(out)
    return result


def table_rows() -> dict[tuple[str, str], str]:
    """Every row of the table, (pk, sk) → its full content as text."""
    rows: dict[tuple[str, str], str] = {}
    kwargs: dict[str, Any] = {"TableName": Table().name, "ConsistentRead": True}
    while True:
        resp = client("dynamodb").scan(**kwargs)
        for raw in resp["Items"]:
            item = from_item(raw)
            assert item is not None
            rows[(item["pk"], item["sk"])] = repr(sorted(item.items()))
        if "LastEvaluatedKey" not in resp:
            return rows
        kwargs["ExclusiveStartKey"] = resp["LastEvaluatedKey"]


def objects(prefix: str = "") -> dict[str, tuple[int, str]]:
    out: dict[str, tuple[int, str]] = {}
    for page in (
        client("s3").get_paginator("list_objects_v2").paginate(Bucket=BUCKET, Prefix=prefix)
    ):
        for obj in page.get("Contents", []):
            out[obj["Key"]] = (obj["Size"], obj["ETag"])
    return out


def push(dev: Device, items: list[dict[str, Any]]) -> Any:
    r = dev.call("POST", "/api/sync/push", batch(items))
    assert r.status == 200, r.body
    return r.body


def vault_id_of(key_did: str) -> str:
    row = Table().get({"pk": {"S": f"KEY#{key_did}"}, "sk": {"S": "KEY"}})
    assert row is not None
    return str(row["vaultId"])


@dataclass
class World:
    a_laptop: Device  # vault A, new key, after rotation
    a_phone: Device  # vault A's second device (its session ended with the rotation)
    a_retired: Device  # a session of A's retired key (no vault)
    b: Device
    a_vault: str
    a_abandoned: str
    b_vault: str
    code: str
    att_size: int
    tokens: list[str] = field(default_factory=list)

    @property
    def a_marks(self) -> list[str]:
        """Strings that name vault A: no row may contain one after the deletion."""
        return [self.a_vault, self.a_abandoned, did_for_seed(A_OLD), did_for_seed(A_NEW)]


def build(caller: Caller) -> World:
    (code,) = promo.create_codes(Table(), duration_days=30, max_redemptions=5, expires_at=None)
    # Vault A: laptop registers, pushes 3 items, tombstones one, loses a conflict
    laptop = Device(caller, A_OLD, "a-laptop")
    laptop.sign_in("Laptop")
    assert laptop.register().status == 201
    assert laptop.call("POST", "/api/premium/redeem", {"code": code}).status == 200
    push(laptop, [live("a1"), live("a2"), live("a3")])
    res = push(laptop, [tomb("a1", 1), live("a2", base=0, text="stale")])["results"]
    assert [r["status"] for r in res] == ["accepted", "conflict"]
    phone = Device(caller, A_OLD, "a-phone")
    phone.sign_in("Phone")
    data = b"vault A attachment" * 7
    store(laptop, "att-a", data)
    # the new key signed in once before the rotation: an empty vault that rotation abandons
    early = Device(caller, A_NEW, "a-early")
    early.sign_in("Early")
    a_abandoned = vault_id_of(did_for_seed(A_NEW))
    r = laptop.call("POST", "/api/vault/rotate", laptop.rotate_body(A_NEW))
    assert r.status == 200, r.body
    a_laptop = Device(caller, A_NEW, "a-laptop")
    a_laptop.sign_in()
    retired = Device(caller, A_OLD, "a-laptop")
    retired.sign_in()  # a retired key may still sign in: its session has no vault
    # Vault B: its own items, attachment and redemption of the same code
    b = Device(caller, B_SEED, "b-desk")
    b.sign_in("Desk")
    assert b.register().status == 201
    assert b.call("POST", "/api/premium/redeem", {"code": code}).status == 200
    push(b, [live("b1"), live("b2")])
    store(b, "att-b", b"vault B bytes")
    a_vault = vault_id_of(did_for_seed(A_NEW))
    assert a_vault != a_abandoned
    return World(
        a_laptop,
        phone,
        retired,
        b,
        a_vault,
        a_abandoned,
        vault_id_of(b.key_did),
        code,
        len(data),
    )


def test_show_reports_the_vault_without_secrets(
    caller: Caller, capsys: pytest.CaptureFixture[str]
) -> None:
    # GIVEN two vaults; A rotated once
    w = build(caller)
    # WHEN the operator shows A by its current key
    view = run_json(capsys, "vault", "show", "--key-did", w.a_laptop.key_did)
    # THEN the figures are A's
    assert view["vaultId"] == w.a_vault and view["keyDid"] == w.a_laptop.key_did
    assert view["givenKeyRetiredAt"] is None
    assert view["registered"] is True and view["registeredAt"] > 0 and view["rotatedAt"] > 0
    assert view["kdf"]["iterations"] == 100_000
    assert view["watermark"] == 4
    assert view["counts"] == {
        "items": 2,
        "tombstones": 1,
        "attachments": 1,
        "attachmentBytes": w.att_size,
        "devices": 2,
    }
    assert view["premium"]["active"] is True and view["premium"]["source"] == "promo"
    assert {(d["replicaId"], d["name"]) for d in view["devices"]} == {
        ("a-laptop", "Laptop"),
        ("a-phone", "Phone"),
    }
    assert all(d["enrolledAt"] > 0 and d["revokedAt"] is None for d in view["devices"])
    # AND the retired key resolves the same vault and says it is retired
    old = run_json(capsys, "vault", "show", "--key-did", did_for_seed(A_OLD))
    assert old["vaultId"] == w.a_vault and old["givenKeyRetiredAt"] == view["rotatedAt"]
    assert old["keyDid"] == w.a_laptop.key_did
    # AND the text form names the same things, and no output carries a token
    status, text, _ = run(capsys, "vault", "show", "--key-did", w.a_laptop.key_did)
    assert status == 0
    assert w.a_vault in text and "a-phone" in text and "tombstones 1" in text
    tokens = [w.a_laptop.token, w.a_phone.token, w.a_retired.token, w.b.token]
    assert not any(t and t in text + json.dumps(view) for t in tokens)
    # AND an unknown keyDid is one sentence on stderr, exit 1
    status, out, err = run(capsys, "vault", "show", "--key-did", did_for_seed(STRANGER))
    assert (status, out) == (1, "")
    assert err.strip() == f"No vault: keyDid {did_for_seed(STRANGER)} is unknown to this table."


def test_delete_dry_run_then_delete_leaves_nothing_of_a_and_all_of_b(
    caller: Caller, capsys: pytest.CaptureFixture[str]
) -> None:
    w = build(caller)
    rows_before, objects_before = table_rows(), objects()
    a_prefix = f"vaults/{w.a_vault}/"
    assert len(objects(a_prefix)) == 1
    # WHEN the operator runs delete without --yes
    dry = run_json(capsys, "vault", "delete", "--key-did", w.a_laptop.key_did)
    # THEN it counts everything of A and deletes nothing
    assert dry["dryRun"] is True and dry["vaultId"] == w.a_vault
    rows = dry["vaultRows"]
    assert (rows["meta"], rows["items"], rows["tombstones"]) == (2, 2, 1)  # A's + abandoned
    assert (rows["devices"], rows["attachments"]) == (3, 1)  # laptop, phone + early
    assert (rows["entitlements"], rows["promoRedemptions"]) == (1, 1)
    assert rows["pushChunks"] == 2 and rows["other"] == 0
    assert "conflictSnapshots" not in rows  # v1.2: a push stores no copies of other items
    assert dry["abandonedVaults"] == [w.a_abandoned]
    assert {p["keyDid"]: p["retiredAt"] is None for p in dry["keyPointers"]} == {
        did_for_seed(A_OLD): False,
        did_for_seed(A_NEW): True,
    }
    assert dry["sessions"] == 5  # laptop ×2 (old, new key), phone, early, retired
    assert (dry["objects"], dry["objectBytes"]) == (1, w.att_size)
    assert table_rows() == rows_before and objects() == objects_before
    status, text, _ = run(capsys, "vault", "delete", "--key-did", w.a_laptop.key_did)
    assert status == 0 and text.startswith("DRY RUN, nothing deleted.")
    assert "--yes" in text and table_rows() == rows_before

    # WHEN it runs with --yes
    done = run_json(capsys, "vault", "delete", "--key-did", w.a_laptop.key_did, "--yes")
    # THEN it reports what it removed: what the dry run counted
    assert done["dryRun"] is False
    assert {k: v for k, v in done.items() if k != "dryRun"} == {
        k: v for k, v in dry.items() if k != "dryRun"
    }
    # AND no row names A's vaults or keys, and every other row is untouched
    after = table_rows()
    assert not [k for k, v in after.items() if any(m in v for m in w.a_marks)]
    kept = {k: v for k, v in rows_before.items() if not any(m in v for m in w.a_marks)}
    assert after == kept
    assert any(k[0] == f"VAULT#{w.b_vault}" for k in kept)  # B is in there, whole
    # AND the promo code still counts both redemptions
    assert promo.list_codes(Table())[0].redemptions == 2
    # AND no object is left under A's prefix; B's objects are the same objects
    assert objects(a_prefix) == {}
    assert objects() == {k: v for k, v in objects_before.items() if not k.startswith(a_prefix)}
    assert objects(f"vaults/{w.b_vault}/")
    # AND no token of A works, and A's keys bootstrap nothing
    for dev in (w.a_laptop, w.a_phone, w.a_retired):
        assert dev.call("GET", "/api/sync/status").status == 401
    for seed in (A_OLD, A_NEW):
        r = caller.call("GET", f"/api/vault/bootstrap?keyDid={did_for_seed(seed)}")
        assert r.status == 404, r.body
    # AND B still syncs
    status_b = w.b.call("GET", "/api/sync/status")
    assert status_b.status == 200 and status_b.body["counts"]["items"] == 2

    # WHEN it runs again (with or without --yes)
    for extra in (["--yes"], []):
        status, text, _ = run(capsys, "vault", "delete", "--key-did", w.a_laptop.key_did, *extra)
        # THEN it finds nothing, says so, and exits 0
        assert status == 0
        assert text.strip() == (
            f"Nothing stored for keyDid {w.a_laptop.key_did}: no vault points to it "
            "(deleted already, or never seen)."
        )
    assert table_rows() == after


def test_delete_through_a_retired_key_and_the_text_report(
    caller: Caller, capsys: pytest.CaptureFixture[str]
) -> None:
    # GIVEN a vault with items and an attachment that rotated away from its first key
    laptop = Device(caller, A_OLD, "a-laptop")
    laptop.sign_in("Laptop")
    assert laptop.register().status == 201
    push(laptop, [live("x"), live("y")])
    store(laptop, "att-1", b"blob")
    assert laptop.call("POST", "/api/vault/rotate", laptop.rotate_body(A_NEW)).status == 200
    vault = vault_id_of(did_for_seed(A_NEW))
    # WHEN the operator deletes it naming the retired key
    status, text, err = run(
        capsys, "vault", "delete", "--key-did", did_for_seed(A_OLD), "--execute"
    )
    # THEN the whole vault is gone, current key included, and the report says what went
    assert status == 0, err
    assert text.splitlines()[0] == f"Deleted vault {vault} (keyDid {did_for_seed(A_OLD)}):"
    assert "removed 6 vault row(s): meta 1, items 2, devices 1, attachments 1, pushChunks 1" in (
        text
    )
    assert f"{did_for_seed(A_NEW)} (current)" in text and "S3 object(s), 4 bytes" in text
    assert not [k for k, v in table_rows().items() if vault in v or "did:key" in v]
    assert objects() == {}
    status, _, err = run(capsys, "vault", "show", "--key-did", did_for_seed(A_NEW))
    assert status == 1 and "unknown" in err


def test_a_failed_run_locks_the_vault_and_a_rerun_finishes(
    caller: Caller, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN a vault with more rows and objects than one batch of each
    dev = Device(caller, A_OLD, "a-laptop")
    dev.sign_in("Laptop")
    assert dev.register().status == 201
    push(dev, [live(f"i{n:02d}") for n in range(30)])
    vault = vault_id_of(dev.key_did)
    for n in range(5):
        client("s3").put_object(Bucket=BUCKET, Key=f"vaults/{vault}/extra-{n}", Body=b"12345")
    monkeypatch.setattr(bulk, "DELETE_OBJECTS_MAX", 2)
    monkeypatch.setattr(bulk, "LIST_PAGE", 2)
    # AND DynamoDB fails the second BatchWriteItem for good
    calls: list[str] = []

    def fault(operation: str) -> None:
        if operation == "BatchWriteItem":
            calls.append(operation)
            if len(calls) == 2:
                raise ClientError(
                    {"Error": {"Code": "ValidationException", "Message": "injected"}},
                    "BatchWriteItem",
                )

    monkeypatch.setattr(table_module, "fault_hook", fault)
    # WHEN the deletion runs
    status, _, err = run(capsys, "vault", "delete", "--key-did", dev.key_did, "--yes")
    # THEN it stops with exit 1 and says to run it again
    assert status == 1 and "AWS error ValidationException" in err and "again" in err
    # AND the vault is locked already: the token is refused, objects are gone, the head stays
    assert dev.call("GET", "/api/sync/status").status == 401
    assert objects() == {}
    view = run_json(capsys, "vault", "show", "--key-did", dev.key_did)
    assert view["keyDid"] is None and view["deletionStartedAt"] > 0
    # WHEN it runs again, with BatchWriteItem answering half of each call as unprocessed
    monkeypatch.setattr(table_module, "fault_hook", None)
    ddb = client("dynamodb")
    real = ddb.batch_write_item
    deferred: list[int] = []

    def half(**kwargs: Any) -> Any:
        (name, requests), *_ = kwargs["RequestItems"].items()
        if len(requests) > 1:
            keep, later = requests[: len(requests) // 2], requests[len(requests) // 2 :]
            deferred.append(len(later))
            resp = real(RequestItems={name: keep})
            return {**resp, "UnprocessedItems": {name: later}}
        return real(**kwargs)

    monkeypatch.setattr(ddb, "batch_write_item", half)
    done = run_json(capsys, "vault", "delete", "--key-did", dev.key_did, "--yes")
    # THEN it finishes: nothing of the vault is left
    assert deferred and done["vaultRows"]["items"] > 0
    assert not [k for k, v in table_rows().items() if vault in v or dev.key_did in v]
    status, text, _ = run(capsys, "vault", "delete", "--key-did", dev.key_did)
    assert status == 0 and text.startswith("Nothing stored")


@pytest.mark.parametrize(
    "argv",
    [
        ["vault", "show"],
        ["vault", "show", "--key-did", "did:key:nope"],
        ["vault", "delete", "--key-did", "alice"],
        ["vault"],
    ],
)
def test_usage_errors_exit_2(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(argv)
    assert exit_.value.code == 2
    capsys.readouterr()
