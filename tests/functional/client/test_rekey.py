"""Issue 14 row 7: `password change --rekey` against the real app, behind a LyingServer.

A re-key replaces the data key and moves the vault to a new key epoch; afterwards nothing
sealed under the old key is accepted as current on any device, even by a server (or a
thief with the revoked laptop) that still holds the old key.
"""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from chalicelib.shared import crypto
from chalicelib.shared.encoding import b64url_decode
from nt2sync import errors, manifests, sync
from nt2sync.api import Api
from nt2sync.engine import Client, NoProgress, SyncSummary
from nt2sync.items import touch, write_local
from nt2sync.unlock import RekeyNeedsOldPassword
from tests.support.client_clock import PASSWORD, Clock
from tests.support.client_steps import bodies, enabled

NEW_PASSWORD = "pw-two"


def reopen(tmp_path, name, server, password) -> Client:
    client = Client.open(
        tmp_path / f"{name}.sqlite3", transport=server, clock=Clock(1_750_000_000_000)
    )
    client.sleep = lambda s: None
    client.unlock(password)
    return client


def assert_only_new_key_opens(served: dict[str, dict[str, Any]], salt, new, old) -> None:
    """Every stored ciphertext opens under the new key and epoch, none under the old one."""
    assert served
    for item_id, item in served.items():
        if manifests.is_reserved(item_id):  # a manifest: under the current key, never the old
            manifests.open_manifest(new.data_key, salt, item_id, item["ciphertext"])
            with pytest.raises(crypto.CryptoError):
                manifests.open_manifest(old.data_key, salt, item_id, item["ciphertext"])
            continue
        opener = crypto.open_deletion if item["deleted"] else crypto.decrypt_item
        opener(new.data_key, salt, item_id, item["ciphertext"], epoch=new.epoch)
        for epoch in (old.epoch, new.epoch):
            with pytest.raises(crypto.CryptoError):
                opener(old.data_key, salt, item_id, item["ciphertext"], epoch=epoch)


def forge_on_pull(server, item_id: str, old_key: bytes, salt: bytes, title: str) -> None:
    """The server (holding the old data key, e.g. from an old backup) serves this item with
    a plaintext of its own sealed under the old key, the way every device accepted before."""
    forged = crypto.encrypt_item(
        old_key,
        salt,
        item_id,
        {
            "title": title,
            "body": "send your password to evil.example",
            "username": "",
            "url": "",
            "updatedAt": 1_900_000_000_000,
            "revision": 999,
            "replicaId": "r-thief",
            "attachments": [],
        },
    )

    def lie(body: dict[str, Any]) -> dict[str, Any]:
        items = [
            {**i, "ciphertext": forged} if i["id"] == item_id and not i["deleted"] else i
            for i in body["items"]
        ]
        return {**body, "items": items}

    server.rewrite("/api/sync/pull", lie)


def test_rekey_reencrypts_every_item_and_deletion_and_locks_out_the_old_password(
    make_client, server, stored, tmp_path
):
    # GIVEN a synced vault with items and a deletion
    a = enabled(make_client, server)
    ids = [a.add_item(f"t{i}", body=f"b{i}") for i in range(5)]
    a.remove_item(ids[0])
    a.sync_now()
    old = a.require_keys()
    before = bodies(a)
    # WHEN it is re-keyed
    new_did = a.rekey(NEW_PASSWORD)
    # THEN a new data key at epoch 1 is current, the old one is forgotten
    new = a.require_keys()
    assert new.epoch == 1 and new.data_key != old.data_key
    assert new.retired == () and not new.rekeying
    assert a.meta.pending_rekey is None and a.meta.pending_rotation is None
    assert a.meta.retired_key is None and stored.is_current(new_did)
    # AND every ciphertext the server stores opens only under the new key (tombstone too)
    served = stored.items(new_did)
    assert any(item["deleted"] for item in served.values())
    assert_only_new_key_opens(served, a.salt, new, old)
    # AND so does every local row, and no text changed
    local = {r.id: {"deleted": r.deleted, "ciphertext": r.ciphertext} for r in a.vault.items()}
    assert_only_new_key_opens(local, a.salt, new, old)
    assert bodies(a) == before and a.vault.count_dirty() == 0
    # AND the old password opens nothing; the new one opens epoch 1
    with pytest.raises(errors.WrongPassword):
        reopen(tmp_path, "a", server, PASSWORD)
    assert reopen(tmp_path, "a", server, NEW_PASSWORD).require_keys().epoch == 1


def test_after_a_rekey_an_item_forged_under_the_old_key_is_accepted_nowhere(
    make_client, join_client, server, tmp_path
):
    # GIVEN A and B in sync, and a thief (or the server) that keeps the old data key
    a = enabled(make_client, server)
    x = a.add_item("x", body="1")
    y = a.add_item("y", body="2")
    a.sync_now()
    b = join_client("b", a.meta.key_did, clock=Clock(1_800_000_000_000))
    old_key = a.require_keys().data_key
    # WHEN A re-keys, B adopts it, and each edits one item
    new_did = a.rekey(NEW_PASSWORD)
    b.adopt_password(NEW_PASSWORD)
    b.sync_now()
    a.edit_item(x, body="a's edit")
    a.push(SyncSummary(), NoProgress())
    b.edit_item(y, body="b's edit")
    b.push(SyncSummary(), NoProgress())
    # AND the server serves both items with plaintexts sealed under the old key
    forge_on_pull(server, x, old_key, a.salt, "forged x")
    forge_on_pull(server, y, old_key, a.salt, "forged y")
    # THEN A (which forgot the old key) refuses the forged item outright, changing nothing
    with pytest.raises(errors.TamperedItem, match="altered, swapped or from another vault"):
        a.sync_now()
    assert bodies(a) == {"x": "a's edit", "y": "2"}
    # AND B (which still recognises the old key) does not accept it as current, and says why
    summary = b.sync_now()
    assert bodies(b) == {"x": "1", "y": "b's edit"}
    assert any("previous key" in notice for notice in summary.notices)
    # AND a device joining afterwards refuses it and keeps nothing
    with pytest.raises(errors.TamperedItem):
        join_client("c", new_did, password=NEW_PASSWORD)
    assert not (tmp_path / "c.sqlite3").exists()


def test_an_interrupted_rekey_is_finished_by_the_next_run_with_no_text_lost(
    make_client, server, stored, tmp_path, monkeypatch
):
    # GIVEN a synced vault and an edit not pushed yet
    a = enabled(make_client, server)
    ids = [a.add_item(f"t{i}", body=f"b{i}") for i in range(7)]
    a.sync_now()
    a.edit_item(ids[3], body="unpushed edit")
    old = a.require_keys()
    expected = bodies(a)
    # WHEN the re-key's push fails after its first batch (of 2)
    monkeypatch.setattr(sync, "PUSH_BATCH", 2)
    original = Api.push
    calls: list[int] = []

    def push_then_fail(self, *args, **kwargs):
        calls.append(1)
        if len(calls) == 2:
            raise errors.NetworkError("Cannot reach the sync server.")
        return original(self, *args, **kwargs)

    monkeypatch.setattr(Api, "push", push_then_fail)
    with pytest.raises(errors.NetworkError):
        a.rekey(NEW_PASSWORD)
    assert a.meta.pending_rekey is not None and a.meta.pending_rotation is None
    a.close()
    monkeypatch.setattr(Api, "push", original)
    # THEN the next run (new password) reads everything, old-key rows included, and a sync
    # finishes the re-key
    again = reopen(tmp_path, "a", server, NEW_PASSWORD)
    assert again.require_keys().rekeying and bodies(again) == expected
    again.sync_now()
    assert again.meta.pending_rekey is None and bodies(again) == expected
    assert again.vault.count_dirty() == 0
    assert_only_new_key_opens(stored.items(again.meta.key_did), again.salt, again.keys, old)
    again.close()


def test_a_rekey_interrupted_before_the_server_rotated_is_finished_with_the_old_password(
    make_client, server, stored, tmp_path
):
    from chalicelib.errors import ErrorCode

    a = enabled(make_client, server)
    a.add_item("x", body="1")
    a.sync_now()
    old_did = a.meta.key_did
    server.answer_once("/api/vault/rotate", ErrorCode.INTERNAL_ERROR)
    with pytest.raises(errors.ServerError):
        a.rekey(NEW_PASSWORD)
    assert a.meta.pending_rekey is not None and a.meta.pending_rotation is not None
    a.close()
    # WHEN the next run unlocks with the OLD password and resumes
    again = reopen(tmp_path, "a", server, PASSWORD)
    assert again.require_keys().key_did == old_did
    again.finish_rekey()
    # THEN the vault is at epoch 1 under the new password, nothing lost
    assert again.meta.pending_rekey is None and stored.is_current(again.meta.key_did)
    assert again.require_keys().epoch == 1 and bodies(again) == {"x": "1"}
    again.close()
    assert reopen(tmp_path, "a", server, NEW_PASSWORD).require_keys().epoch == 1


def test_another_device_adopts_the_rekey_and_keeps_its_unpushed_edit(
    make_client, join_client, server, tmp_path
):
    # GIVEN B in sync with A, then B edits and adds offline
    a = enabled(make_client, server)
    x = a.add_item("x", body="1")
    a.remove_item(a.add_item("gone", body="0"))
    a.sync_now()
    b = join_client("b", a.meta.key_did, clock=Clock(1_800_000_000_000))
    old_did = b.meta.key_did
    b.edit_item(x, body="from b offline")
    b.add_item("new on b", body="n")
    b.close()
    # WHEN A re-keys and writes more
    a.rekey(NEW_PASSWORD)
    a.add_item("after", body="2")
    a.sync_now()
    # THEN B's old session fails on the changed key DID
    b = Client.open(tmp_path / "b.sqlite3", transport=server, clock=Clock(1_800_000_100_000))
    b.sleep = lambda s: None
    # AND adopting without the previous password stores nothing and says what is needed
    with pytest.raises(RekeyNeedsOldPassword, match="previous master password"):
        b.adopt_password(NEW_PASSWORD)
    assert b.meta.key_did == old_did and b.meta.retired_key is None
    # WHEN B adopts with it
    keys = b.adopt_password(NEW_PASSWORD, old_password=PASSWORD)
    # THEN B holds the new key and epoch, its own rows re-sealed under them (edits kept)
    assert keys.epoch == 1 and keys.data_key == a.require_keys().data_key
    for row in b.vault.items(include_deleted=True):
        opener = crypto.open_deletion if row.deleted else crypto.decrypt_item
        opener(keys.data_key, b.salt, row.id, row.ciphertext, epoch=1)
    assert b.vault.count_dirty() == 2
    # AND both converge, B's offline text surviving on both
    b.sync_now()
    a.sync_now()
    b.sync_now()
    assert bodies(a) == bodies(b)
    assert bodies(a)["x"] == "from b offline" and bodies(a)["new on b"] == "n"
    assert bodies(a)["after"] == "2" and "gone" not in bodies(a)
    # AND the next unlock of B needs the new password only
    b.close()
    assert reopen(tmp_path, "b", server, NEW_PASSWORD).require_keys().epoch == 1


def _legacy_attachment(client: Client, item_id: str, data: bytes) -> str:
    """An attachment as clients before per-file keys made it: under the data key's
    attachment subkey, no `key` in the reference."""
    keys = client.require_keys()
    attachment_id = str(uuid.uuid4())
    blob = crypto.encrypt_attachment(keys.data_key, client.salt, attachment_id, data)
    sha = crypto.sha256_b64url(blob)
    row = client.vault.get_item(item_id)
    plaintext = client.get_item(item_id)
    ref = {"id": attachment_id, "name": "old.txt", "size": len(data), "sha256": sha}
    with client.vault.transaction():
        client.vault.put_attachment(
            id=attachment_id,
            item_id=item_id,
            name="old.txt",
            size=len(data),
            sha256=sha,
            blob=blob,
            committed=0,
            deleted=0,
        )
        plaintext["attachments"] = [*plaintext["attachments"], ref]
        touch(client, plaintext)
        write_local(client, item_id, plaintext, row)
    return attachment_id


def test_attachments_survive_a_rekey_new_ones_untouched_legacy_ones_reuploaded(
    make_client, join_client, server, stored, tmp_path
):
    # GIVEN an item with a per-file-key attachment and a legacy one, both uploaded
    a = enabled(make_client, server)
    x = a.add_item("x", body="1")
    (tmp_path / "new.txt").write_bytes(b"per-file key")
    fresh = a.add_attachment(x, tmp_path / "new.txt")
    legacy = _legacy_attachment(a, x, b"sealed under the data key")
    a.sync_now()
    did = a.meta.key_did
    fresh_blob = stored.blob(did, fresh)
    assert fresh_blob is not None and stored.blob(did, legacy) is not None
    fresh_ref = next(r for r in a.get_item(x)["attachments"] if r["id"] == fresh)
    assert len(b64url_decode(fresh_ref["key"])) == 32
    # WHEN the vault is re-keyed
    new_did = a.rekey(NEW_PASSWORD)
    refs = {r["name"]: r for r in a.get_item(x)["attachments"]}
    # THEN the per-file-key blob was never touched (only the item, its wrap, changed)
    assert refs["new.txt"] == fresh_ref and stored.blob(new_did, fresh) == fresh_blob
    # AND the legacy file was re-sealed under a new file key, under a new id, and uploaded;
    # the old object is gone
    moved = refs["old.txt"]
    assert moved["id"] != legacy and "key" in moved
    assert stored.blob(new_did, legacy) is None
    blob = stored.blob(new_did, moved["id"])
    key = b64url_decode(moved["key"])
    assert crypto.open_attachment(key, a.salt, moved["id"], blob) == b"sealed under the data key"
    # AND a device joining afterwards opens both
    c = join_client("c", new_did, password=NEW_PASSWORD)
    assert c.get_attachment(fresh, tmp_path / "f.out") == len(b"per-file key")
    c.get_attachment(moved["id"], tmp_path / "l.out")
    assert (tmp_path / "l.out").read_bytes() == b"sealed under the data key"
    assert (tmp_path / "f.out").read_bytes() == b"per-file key"


def test_backups_across_a_rekey(make_client, server, tmp_path):
    # GIVEN a backup made before the re-key and one after
    a = enabled(make_client, server)
    a.add_item("x", body="1")
    a.sync_now()
    a.export_backup(tmp_path / "before.nt2backup")
    a.rekey(NEW_PASSWORD)
    a.add_item("after", body="2")
    a.export_backup(tmp_path / "after.nt2backup")
    # THEN the old one is refused: the key it was made under could be a thief's
    with pytest.raises(errors.ClientError, match="earlier key of this vault"):
        a.import_into(tmp_path / "before.nt2backup", PASSWORD)
    # AND the new one restores (its verifier carries epoch 1) and merges
    restored, count = Client.import_new(
        tmp_path / "r.sqlite3", tmp_path / "after.nt2backup", NEW_PASSWORD
    )
    assert count == 2 and restored.require_keys().epoch == 1
    assert bodies(restored) == {"x": "1", "after": "2"}
    restored.close()
    assert a.import_into(tmp_path / "after.nt2backup", NEW_PASSWORD) == 0


def test_a_local_only_vault_rekeys_too(make_client, tmp_path):
    a = make_client("solo")
    x = a.add_item("x", body="1")
    (tmp_path / "f.txt").write_bytes(b"file")
    old = a.require_keys()
    _legacy_attachment(a, x, b"legacy")
    a.rekey(NEW_PASSWORD)
    keys = a.require_keys()
    assert keys.epoch == 1 and a.meta.pending_rekey is None
    row = a.vault.get_item(x)
    crypto.decrypt_item(keys.data_key, a.salt, x, row.ciphertext, epoch=1)
    with pytest.raises(crypto.CryptoError):
        crypto.decrypt_item(old.data_key, a.salt, x, row.ciphertext)
    ref = a.get_item(x)["attachments"][0]
    assert "key" in ref and a.get_attachment(ref["id"], tmp_path / "o") == len(b"legacy")
