"""The client's local vault without a server: backups (export, import, merge)."""

from __future__ import annotations

import json

import pytest

from nt2sync import errors
from nt2sync.engine import Client
from tests.support.client_clock import PASSWORD, Clock


def bodies(client: Client) -> dict[str, str]:
    return {p["title"]: p["body"] for _, p in client.list_items()}


def test_backup_export_import(make_client, tmp_path):
    a = make_client("a")
    first = a.add_item("one", body="1")
    a.add_item("two", body="2")
    a.export_backup(tmp_path / "v.nt2backup")
    restored, count = Client.import_new(
        tmp_path / "r.sqlite3", tmp_path / "v.nt2backup", PASSWORD, clock=Clock()
    )
    assert count == 2 and bodies(restored) == bodies(a)
    assert restored.meta.key_did == a.meta.key_did and restored.meta.sync_enabled is False
    # merging into the same vault never overwrites a newer local edit
    restored.clock.now += 10_000
    restored.edit_item(first, body="newer")
    assert restored.import_into(tmp_path / "v.nt2backup", PASSWORD) == 0
    assert restored.get_item(first)["body"] == "newer"
    other = make_client("other")
    with pytest.raises(errors.ClientError, match="another vault"):
        other.import_into(tmp_path / "v.nt2backup", PASSWORD)
    with pytest.raises(errors.WrongPassword):
        Client.read_backup(tmp_path / "v.nt2backup", "nope")
    restored.close()


def test_a_header_moved_onto_another_backups_payload_does_not_open(make_client, tmp_path):
    # GIVEN an old backup and a newer one of the same vault (issue 14 row 11)
    a = make_client("a")
    a.add_item("one", body="1")
    a.export_backup(tmp_path / "old.nt2backup")
    a.clock.now += 60_000
    a.add_item("two", body="2")
    a.export_backup(tmp_path / "new.nt2backup")
    old = json.loads((tmp_path / "old.nt2backup").read_text())
    new = json.loads((tmp_path / "new.nt2backup").read_text())
    # WHEN the newer file's header (its createdAt) is put on the old payload
    forged = {**new, "payload": old["payload"]}
    (tmp_path / "forged.nt2backup").write_text(json.dumps(forged))
    # THEN it is refused as altered, and nothing is imported
    with pytest.raises(errors.TamperedItem, match="was altered"):
        a.import_into(tmp_path / "forged.nt2backup", PASSWORD)
    # AND a changed createdAt alone is refused too
    (tmp_path / "dated.nt2backup").write_text(json.dumps({**new, "createdAt": 1}))
    with pytest.raises(errors.TamperedItem):
        a.import_into(tmp_path / "dated.nt2backup", PASSWORD)


def test_import_over_a_local_deletion_keeps_it_unless_asked(make_client, tmp_path):
    # GIVEN a backup, then a deletion here
    a = make_client("a")
    gone = a.add_item("gone", body="secret")
    a.add_item("kept", body="k")
    a.export_backup(tmp_path / "v.nt2backup")
    a.remove_item(gone)
    # WHEN the backup is imported THEN the deletion stands (it would be pushed everywhere)
    assert a.import_into(tmp_path / "v.nt2backup", PASSWORD) == 0
    assert sorted(bodies(a)) == ["kept"]
    # AND only when asked is the item brought back
    assert a.import_into(tmp_path / "v.nt2backup", PASSWORD, restore_deleted=True) == 1
    assert sorted(bodies(a)) == ["gone", "kept"]
