"""The client's local vault without a server: backups (export, import, merge)."""

from __future__ import annotations

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
