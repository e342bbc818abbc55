"""Authenticated vault state (issue 14 rows 2–3): per-device sealed manifests, through the real
app behind a LyingServer. A new device refuses an item served older than a manifest attests
(or served live after an attested deletion); any device does; a server that hides one
device's changes from another (a fork) or drops an accepted push is detected and named."""

from __future__ import annotations

from typing import Any

import pytest

from nt2sync import manifests, sync
from nt2sync.engine import Client
from nt2sync.fingerprint import fingerprint
from tests.support.lying_server import LyingServer


def told(client: Client, *words: str) -> list[str]:
    """The notices that contain every one of these words."""
    return [n for n in client.notices if all(w in n for w in words)]


def own_proxy(server: LyingServer) -> LyingServer:
    """A second proxy in front of the same app: lies told to one device only."""
    return LyingServer(server.honest)


def manifest_ids(push: list[str]) -> list[str]:
    return [i for i in push if manifests.is_reserved(i)]


# -- row 2: a joining device ----------------------------------------------------------------
@pytest.mark.parametrize("limit", [1000, 1], ids=["one-page", "manifest-pages-after-the-item"])
def test_join_refuses_an_old_revision_a_manifest_attests(
    make_client, join_client, server, monkeypatch, limit
):
    # GIVEN item x at revision 2, attested by A's manifest
    a = make_client("a")
    x = a.add_item("x", body="first")
    keep = a.add_item("keep", body="kept")
    a.enable(server.audience)
    a.edit_item(x, body="second")
    a.sync_now()
    # AND a server that serves a new device x's first revision
    server.replay_revision(x, 0)
    monkeypatch.setattr(sync, "PULL_LIMIT", limit)
    # WHEN B joins
    b = join_client("b", a.meta.key_did)
    # THEN x was refused, named, and nothing of it stored; the rest joined
    assert told(b, x, "revision 1", "attests revision 2", "refusing it")
    assert b.vault.get_item(x) is None
    assert [p["body"] for _, p in b.list_items()] == ["kept"] and b.get_item(keep)
    # AND the fingerprint says one attested item is not held
    assert fingerprint(b)["unverified"] == 1


def test_join_refuses_a_deleted_item_served_live(make_client, join_client, server):
    a = make_client("a")
    x = a.add_item("x", body="gone")
    a.enable(server.audience)
    a.remove_item(x)
    a.sync_now()
    server.serve_deleted_live(x, 0)
    b = join_client("b", a.meta.key_did)
    assert told(b, x, "revision 1", "attests its deletion at revision 2", "refusing it")
    assert b.vault.get_item(x) is None and b.list_items() == []


def test_join_names_items_no_manifest_attests(make_client, join_client, server, monkeypatch):
    # GIVEN a device that never published a manifest (an older nt2sync)
    a = make_client("a")
    x = a.add_item("x", body="unattested")
    with monkeypatch.context() as patch:
        patch.setattr(manifests, "publish", lambda client: 0)
        a.enable(server.audience)
    b = join_client("b", a.meta.key_did)
    assert told(b, "1 item(s) could not be verified", x)
    assert b.get_item(x)["body"] == "unattested"


# -- row 2: any device ----------------------------------------------------------------------
def test_any_device_refuses_a_revision_older_than_a_manifest_attests(
    make_client, join_client, server
):
    # GIVEN B holds x at revision 1; A then wrote revisions 2 and 3
    a = make_client("a")
    x = a.add_item("x", body="one")
    a.enable(server.audience)
    b = join_client("b", a.meta.key_did)
    for body in ("two", "three"):
        a.edit_item(x, body=body)
        a.sync_now()
    # WHEN the server serves B revision 2 (above B's own floor, below A's manifest)
    server.replay_revision(x, 1)
    b.sync_now()
    # THEN it is refused, and B still holds revision 1
    assert told(b, x, "revision 2", "attests revision 3")
    assert b.get_item(x)["body"] == "one"
    # AND once the server is honest again, the next change of x reaches B
    server.stop_lying()
    a.edit_item(x, body="four")
    a.sync_now()
    b.sync_now()
    assert b.get_item(x)["body"] == "four"


# -- row 3: forks and dropped pushes ------------------------------------------------------------
def test_an_item_hidden_from_one_device_is_detected_as_a_fork(make_client, join_client, server):
    a = make_client("a")
    a.add_item("first", body="1")
    a.enable(server.audience)
    b_proxy = own_proxy(server)
    b = join_client("b", a.meta.key_did, transport=b_proxy)
    # WHEN A adds y and the server hides y (not A's manifest) from B
    y = a.add_item("y", body="hidden")
    a.sync_now()
    b_proxy.hide(lambda item_id: item_id == y)
    b.sync_now()
    # THEN B is told, with the item named
    assert told(b, "withheld 1 change(s)", y, "fork", "vault fingerprint")
    assert fingerprint(b)["unverified"] == 1 and fingerprint(b) != fingerprint(a)


def test_a_device_whose_changes_were_hidden_from_another_is_told(make_client, join_client, server):
    # GIVEN B sees nothing of A's later state (its items and its manifest hidden)
    a = make_client("a")
    a.add_item("first", body="1")
    a.enable(server.audience)
    b_proxy = own_proxy(server)
    b = join_client("b", a.meta.key_did, transport=b_proxy)
    y = a.add_item("y", body="hidden")
    a.sync_now()
    mine = f"{manifests.PREFIX}{a.meta.replica_id}:"
    b_proxy.hide(lambda item_id: item_id == y or item_id.startswith(mine))
    # WHEN B writes and publishes (its view passed A's manifest without receiving it)
    b.add_item("z", body="from b")
    b.sync_now()
    assert not b.notices  # B cannot know yet: nothing of A's later state reached it
    a.sync_now()
    # THEN A is told as soon as B's manifest reaches it
    assert told(a, f"hid this device's changes from device {b.meta.replica_id}", "fork")


def test_an_accepted_push_that_never_comes_back_is_reported(make_client, join_client, server):
    # GIVEN another device wrote since A's watermark (so A's next pull covers A's push)
    a = make_client("a")
    a.enable(server.audience)
    b = join_client("b", a.meta.key_did)
    b.add_item("w", body="from b")
    b.sync_now()
    z = a.add_item("z", body="dropped")
    server.drop_after_accepting(z)
    # WHEN the server answers A's push "accepted" and never serves z
    summary = a.sync_now()
    # THEN A's pull passed z's version without it, and A says so
    assert summary.pushed == 1
    assert told(a, "accepted 1 change(s) from this device but never returned them", z)


def test_a_dropped_push_the_watermark_skips_is_caught_by_a_spot_check(make_client, server):
    # GIVEN A alone: its push is the only write since its watermark (nothing to pull there)
    a = make_client("a")
    a.enable(server.audience)
    z = a.add_item("z", body="dropped")
    server.drop_after_accepting(z)
    summary = a.sync_now()
    assert summary.pushed == 1
    assert told(a, "accepted 1 change(s) from this device but never returned them", z)


def test_an_honest_server_raises_no_alarm(tmp_path, make_client, join_client, server):
    a = make_client("a")
    ids = [a.add_item(f"n{i}", body=str(i)) for i in range(6)]
    a.enable(server.audience)
    b = join_client("b", a.meta.key_did)
    c = join_client("c", a.meta.key_did)
    for round_ in range(3):
        a.edit_item(ids[round_], body=f"a{round_}")
        b.remove_item(ids[3 + round_])
        c.add_item(f"c{round_}", body="c")
        for client in (a, b, c, a, b, c):
            client.sync_now()
    for client in (a, b, c):
        assert client.notices == [], client.notices
        assert fingerprint(client)["unverified"] == 0
    assert (
        fingerprint(a)["fingerprint"]
        == fingerprint(b)["fingerprint"]
        == fingerprint(c)["fingerprint"]
    )


# -- cost and no ping-pong --------------------------------------------------------------------
def test_one_edit_republishes_the_root_and_one_shard_and_nothing_ping_pongs(
    make_client, join_client, server
):
    a = make_client("a")
    ids = [a.add_item(f"n{i}", body=str(i)) for i in range(40)]
    a.enable(server.audience)
    first = manifest_ids(server.pushed[-1])
    assert first[-1] == manifests.root_id(a.meta.replica_id) and len(first) > 2  # all shards
    b = join_client("b", a.meta.key_did)
    assert server.pushed[-1] == [manifests.root_id(b.meta.replica_id)]  # B attests its view

    def pushes_during(client: Client) -> list[list[str]]:
        start = len(server.pushed)
        client.sync_now()
        return server.pushed[start:]

    a.edit_item(ids[7], body="edited")
    pushed = pushes_during(a)
    shard = manifests.shard_id(a.meta.replica_id, manifests.shard_of(ids[7]))
    assert pushed == [[ids[7]], [shard, manifests.root_id(a.meta.replica_id)]]
    # B applied A's change: it attests its new view with a root only
    assert pushes_during(b) == [[manifests.root_id(b.meta.replica_id)]]
    # and a pull that brings only manifests publishes nothing, on either side
    assert pushes_during(a) == [] and pushes_during(b) == []


# -- manifests are not user items ---------------------------------------------------------------
def test_manifests_are_never_shown_counted_or_backed_up(tmp_path, make_client, join_client, server):
    a = make_client("a")
    a.add_item("only", body="one")
    a.enable(server.audience)
    b = join_client("b", a.meta.key_did)
    assert [p["title"] for _, p in b.list_items()] == ["only"]
    a.sync_now()  # A learns of B's manifest (a count can only leave out the manifests it knows)
    status: dict[str, Any] = a.status()
    assert status["counts"] == {"local": 1, "remote": 1}
    assert a.export_backup(tmp_path / "a.nt2backup") == 1
    with pytest.raises(Exception, match="reserved item id"):
        from nt2sync.items import write_local

        write_local(a, manifests.root_id("x"), a.get_item(a.list_items()[0][0]), None)
    with pytest.raises(Exception, match="No item"):
        a.get_item(manifests.root_id(a.meta.replica_id))
    assert fingerprint(a)["fingerprint"] == fingerprint(b)["fingerprint"]


def test_an_altered_manifest_is_ignored_as_if_withheld_and_said(make_client, join_client, server):
    a = make_client("a")
    x = a.add_item("x", body="one")
    a.enable(server.audience)
    server.flip_byte(manifests.root_id(a.meta.replica_id))
    b = join_client("b", a.meta.key_did)  # the join is not stopped by a manifest
    assert told(b, f"device {a.meta.replica_id}'s manifest", "altered", "ignored")
    assert b.get_item(x)["body"] == "one"


def test_after_republish_all_every_shard_is_sealed_again(make_client, server):
    a = make_client("a")
    for n in range(12):
        a.add_item(f"n{n}", body=str(n))
    a.enable(server.audience)
    shards = len(manifest_ids(server.pushed[-1])) - 1
    manifests.republish_all(a)  # what a re-key calls
    a.sync_now()
    assert len(manifest_ids(server.pushed[-1])) == shards + 1
