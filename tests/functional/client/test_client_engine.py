"""The sync engine against the real app in-process (moto), behind a LyingServer."""

from __future__ import annotations

import pytest

from chalicelib.errors import ErrorCode
from chalicelib.premium import promo
from chalicelib.shared import crypto
from chalicelib.shared.encoding import b64url_encode
from chalicelib.shared.limits import SESSION_TTL_MS
from chalicelib.store.table import Table
from nt2sync import errors, manifests, sync
from nt2sync.api import Api
from nt2sync.engine import Client
from tests.support.client_clock import PASSWORD
from tests.support.client_steps import bodies, enabled


def test_enable_push_join_pull(make_client, join_client, server, stored):
    # GIVEN a vault with two items, one deleted later
    a = make_client("a")
    keep = a.add_item("one", body="1")
    gone = a.add_item("two", body="2")
    # WHEN sync is enabled
    summary = a.enable(server.audience, device_name="laptop")
    # THEN the server holds ciphertext only, under the vault's own salt
    vault = stored.vault(a.meta.key_did)
    assert vault["saltHex"] == a.meta.salt_hex and vault["kdf"]["iterations"] == 100_000
    assert summary.pushed == 2 and a.vault.count_dirty() == 0
    assert all("1" != i["ciphertext"] for i in stored.items(a.meta.key_did).values())
    a.remove_item(gone)
    a.sync_now()
    # WHEN B joins with the password THEN it holds the same live items
    b = join_client("b", a.meta.key_did)
    assert bodies(b) == {"one": "1"}
    assert b.get_item(keep)["body"] == "1"
    assert b.meta.salt_hex == a.meta.salt_hex and b.meta.replica_id != a.meta.replica_id


def test_concurrent_edits_converge_with_conflicted_copy(make_client, join_client, server):
    a = enabled(make_client, server)
    item = a.add_item("note", body="base")
    a.sync_now()
    b = join_client("b", a.meta.key_did)
    # GIVEN both edit the same item offline (B later)
    a.edit_item(item, body="from A")
    b.clock.now += 10_000
    b.edit_item(item, body="from B")
    # WHEN both sync (A first, then B, then A again)
    a.sync_now()
    summary_b = b.sync_now()
    a.sync_now()
    # THEN both hold the same items: B's later edit under the id, A's as a copy
    assert summary_b.conflicts == 1
    assert sorted(bodies(a).values()) == sorted(bodies(b).values()) == ["from A", "from B"]
    assert a.get_item(item)["body"] == b.get_item(item)["body"] == "from B"
    copies = [p for _, p in a.list_items() if "conflicted copy" in p["title"]]
    assert len(copies) == 1 and copies[0]["body"] == "from A"


def test_remote_delete_vs_unpushed_edit_keeps_the_edit(make_client, join_client, server):
    a = enabled(make_client, server)
    item = a.add_item("note", body="base")
    a.sync_now()
    b = join_client("b", a.meta.key_did)
    a.remove_item(item)
    a.sync_now()
    b.edit_item(item, body="typed on B")
    b.sync_now()
    a.sync_now()
    for client in (a, b):
        assert [p["body"] for _, p in client.list_items()] == ["typed on B"]
        assert client.vault.get_item(item).deleted


def test_local_delete_vs_remote_edit_keeps_the_edit(make_client, join_client, server):
    a = enabled(make_client, server)
    item = a.add_item("note", body="base")
    a.sync_now()
    b = join_client("b", a.meta.key_did)
    b.edit_item(item, body="edited on B")
    b.sync_now()
    a.remove_item(item)
    a.sync_now()
    assert a.get_item(item)["body"] == "edited on B"


def test_push_retry_after_crash_reuses_batch_id(make_client, server, stored, monkeypatch):
    a = enabled(make_client, server)
    a.add_item("x", body="1")
    monkeypatch.setattr(manifests, "publish", lambda client: 0)  # only item batches count here
    # GIVEN the server accepted a batch but the client died before applying the result
    original = sync._apply_push

    def crash(client, *args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(sync, "_apply_push", crash)
    with pytest.raises(KeyboardInterrupt):
        a.sync_now()
    pending = a.vault.pending_batch()
    assert pending is not None and a.vault.count_dirty() == 1
    head = stored.watermark(a.meta.key_did)
    # WHEN the next sync runs
    monkeypatch.setattr(sync, "_apply_push", original)
    a.sync_now()
    # THEN the same batchId was replayed: nothing written twice, the item is clean
    assert stored.watermark(a.meta.key_did) == head
    assert a.vault.pending_batch() is None and a.vault.count_dirty() == 0


def test_resync_required_pulls_from_zero(make_client, join_client, server, stored):
    a = enabled(make_client, server)
    a.add_item("x", body="1")
    a.sync_now()
    b = join_client("b", a.meta.key_did)
    b.vault.set_meta(watermark=999)  # beyond the head: the server answers 410
    b.add_item("y", body="2")
    summary = b.sync_now()
    assert summary.pushed == 1
    assert b.meta.watermark == stored.watermark(a.meta.key_did)
    assert sorted(bodies(b)) == ["x", "y"]


def test_rate_limit_is_backed_off_with_retry_after(make_client, server):
    a = enabled(make_client, server)
    slept: list[float] = []
    a.sleep = slept.append
    a._api = Api(server.audience, transport=server, sleep=slept.append)
    a.add_item("x")
    server.answer_once("/api/sync/push", ErrorCode.RATE_LIMITED, retry_after=3)
    server.answer_once("/api/sync/pull", ErrorCode.UNAVAILABLE, retry_after=1)
    a.sync_now()
    assert slept == [3.0, 1.0] and a.vault.count_dirty() == 0


def test_expired_session_is_renewed(make_client, server, clock):
    a = enabled(make_client, server)
    clock(SESSION_TTL_MS + 60_000)  # the server's clock passes the session's expiry
    a.add_item("x")
    a.sync_now()
    assert a.vault.count_dirty() == 0


def test_salt_conflict_changes_nothing(make_client, server, stored):
    a = make_client("a")
    a.enable(server.audience)
    stored.overwrite_salt(a.meta.key_did, "00" * 16)
    b = Client.open(a.vault.path, transport=server)
    b.unlock(PASSWORD)
    b.vault.set_meta(sync_enabled=0, server_url=None, token=None)
    with pytest.raises(errors.SaltMismatch, match="another salt"):
        b.enable(server.audience)
    assert b.meta.sync_enabled is False and b.meta.server_url is None
    b.close()


def test_audience_mismatch_is_refused(make_client, server, stored):
    a = make_client("a")
    server.claim_audience("https://other.example")
    with pytest.raises(errors.AudienceMismatch, match="public URL"):
        a.enable(server.audience)
    assert stored.vault(a.meta.key_did) is None


def test_password_change_locks_out_old_password(make_client, join_client, server, stored, tmp_path):
    a = enabled(make_client, server)
    a.add_item("x", body="1")
    a.sync_now()
    b = join_client("b", a.meta.key_did)
    old_did = a.meta.key_did
    # WHEN A changes the master password
    new_did = a.change_password("pw-two")
    assert new_did != old_did and a.meta.key_did == new_did and a.meta.pending_rotation is None
    assert stored.is_current(new_did) and stored.is_retired(old_did)
    a.add_item("after", body="2")
    a.sync_now()
    # THEN B with the old password is told so
    b.add_item("from b", body="3")
    with pytest.raises(errors.PasswordChangedElsewhere, match="changed on another device"):
        b.sync_now()
    b.close()
    # AND B's unlock with the new password is refused locally: nothing derived from it is sent
    b2 = Client.open(tmp_path / "b.sqlite3", transport=server, sleep=lambda s: None)
    sent = len(server.requests)
    with pytest.raises(errors.WrongPassword, match="password adopt"):
        b2.unlock("pw-two")
    assert len(server.requests) == sent
    # AND B adopts the new password when told to, and carries on (nothing lost)
    b2.adopt_password("pw-two")
    assert b2.meta.key_did == new_did
    b2.sync_now()
    a.sync_now()
    assert sorted(bodies(a)) == sorted(bodies(b2)) == ["after", "from b", "x"]
    # AND the old password no longer opens A's vault
    with pytest.raises(errors.WrongPassword):
        Client.open(tmp_path / "a.sqlite3", transport=server).unlock(PASSWORD)
    b2.close()


def test_interrupted_rotation_is_finished_by_next_run(
    make_client, server, stored, tmp_path, monkeypatch
):
    a = enabled(make_client, server)
    old_did = a.meta.key_did
    original = Api.rotate

    def rotate_then_lose_answer(self, body):
        original(self, body)
        raise errors.NetworkError("Cannot reach the sync server.")

    monkeypatch.setattr(Api, "rotate", rotate_then_lose_answer)
    with pytest.raises(errors.NetworkError):
        a.change_password("pw-two")
    assert a.meta.pending_rotation is not None and a.meta.key_did == old_did
    a.close()
    monkeypatch.setattr(Api, "rotate", original)
    # WHEN the next run unlocks with the new password
    again = Client.open(tmp_path / "a.sqlite3", transport=server)
    again.unlock("pw-two")
    again.add_item("x")
    again.sync_now()
    # THEN the rotation is recognised as done and recorded locally
    assert again.meta.pending_rotation is None and stored.is_current(again.meta.key_did)
    assert again.meta.key_did != old_did
    again.close()


def test_interrupted_rotation_before_server_is_retried(make_client, server, stored, tmp_path):
    a = enabled(make_client, server)
    server.answer_once("/api/vault/rotate", ErrorCode.INTERNAL_ERROR)
    with pytest.raises(errors.ServerError):
        a.change_password("pw-two")
    assert a.meta.pending_rotation is not None
    a.close()
    # the old password also finishes it (the pending record is sealed under the data key)
    again = Client.open(tmp_path / "a.sqlite3", transport=server)
    again.unlock(PASSWORD)
    again.sync_now()
    assert again.meta.pending_rotation is None and stored.is_current(again.meta.key_did)
    again.close()
    with pytest.raises(errors.WrongPassword):
        Client.open(tmp_path / "a.sqlite3", transport=server).unlock(PASSWORD)


def test_revoked_device_is_told_and_stops(make_client, join_client, server):
    a = enabled(make_client, server)
    b = join_client("b", a.meta.key_did)
    a.revoke_device(b.meta.replica_id)
    b.add_item("x")
    with pytest.raises(errors.DeviceRevoked, match="revoked"):
        b.sync_now()
    assert b.meta.sync_enabled is False


def test_devices_and_premium(make_client, join_client, server):
    a = enabled(make_client, server)
    b = join_client("b", a.meta.key_did)
    devices = {d["replicaId"]: d for d in a.devices()}
    assert set(devices) == {a.meta.replica_id, b.meta.replica_id}
    assert devices[a.meta.replica_id]["current"] is True
    assert a.rename_device(b.meta.replica_id, "phone")["name"] == "phone"
    assert a.premium("status")["source"] == "dev"


def test_premium_required_then_redeem(make_client, server, monkeypatch):
    monkeypatch.setenv("PREMIUM_SYNC_REQUIRED", "true")  # the stage variable prod sets
    (code,) = promo.create_codes(Table(), duration_days=30, max_redemptions=5)
    a = make_client("a")
    with pytest.raises(errors.ClientError, match="Premium"):
        a.enable(server.audience)
    a.use_server(server.audience)
    assert a.premium("redeem", code)["active"] is True
    a.enable(server.audience)
    assert a.meta.sync_enabled


def test_attachments_round_trip_and_reconcile(make_client, join_client, server, stored, tmp_path):
    a = enabled(make_client, server)
    item = a.add_item("with file")
    src = tmp_path / "photo.bin"
    src.write_bytes(b"\x00secret bytes" * 100)
    att = a.add_attachment(item, src)
    a.sync_now()
    did = a.meta.key_did
    assert b"secret" not in stored.blob(did, att)
    b = join_client("b", a.meta.key_did)
    assert b.get_attachment(att, tmp_path / "out.bin") == src.stat().st_size
    assert (tmp_path / "out.bin").read_bytes() == src.read_bytes()
    # disable, the server loses the blob, re-enable reconciles by re-uploading it
    a.disable()
    b.call(lambda api: api.attachment_delete(att))  # the server's copy is gone
    assert stored.blob(did, att) is None
    summary = a.enable(server.audience)
    assert summary.attachments_uploaded == 1 and stored.blob(did, att) is not None
    a.remove_attachment(att)
    a.sync_now()
    assert stored.blob(did, att) is None and a.attachment_refs() == []


def test_password_change_with_raised_iterations_needs_the_new_kit(
    make_client, join_client, server, stored, tmp_path
):
    a = enabled(make_client, server)
    b = join_client("b", a.meta.key_did)
    b.close()
    a.change_password("pw-two", iterations=120_000)
    assert stored.vault(a.meta.key_did)["kdf"]["iterations"] == 120_000
    again = Client.open(tmp_path / "b.sqlite3", transport=server)
    with pytest.raises(errors.WrongPassword):  # local iterations derive another keyDid
        again.adopt_password("pw-two")
    again.adopt_password("pw-two", kit_kdf=a.kit()["kdf"])
    assert again.meta.key_did == a.meta.key_did and again.meta.kdf["iterations"] == 120_000
    again.sync_now()
    again.close()


def test_device_limit_is_explained(make_client, server):
    # GIVEN a vault whose server answers that 100 devices are active (v1.2 §7)
    client = make_client("a")
    server.answer_once("/api/auth/session", ErrorCode.DEVICE_LIMIT)
    # WHEN sync is enabled THEN the person is told what to do, and nothing is enabled
    with pytest.raises(errors.ClientError, match="revoke one on another device"):
        client.enable(server.audience, device_name="a")
    assert not client.meta.sync_enabled


def test_a_wrong_password_sends_nothing_even_when_the_server_says_the_vault_is_gone(
    make_client, server
):
    # GIVEN a synced vault whose server pretends the vault is gone (the oracle attack, row 6)
    a = enabled(make_client, server)
    path = a.vault.path
    a.close()
    server.answer_once("/api/sync/pull", ErrorCode.VAULT_NOT_FOUND)
    # WHEN someone types password guesses
    sent = len(server.requests)
    for guess in ("guess-1", "guess-2"):
        with pytest.raises(errors.WrongPassword):
            Client.open(path, transport=server).unlock(guess)
    # THEN nothing derived from a guess ever reached the server
    assert len(server.requests) == sent


def test_adoption_refuses_kdf_parameters_other_than_the_ones_it_derived_with(
    make_client, join_client, server, tmp_path
):
    # GIVEN B, and a password change on A
    a = enabled(make_client, server)
    b = join_client("b", a.meta.key_did)
    b.close()
    a.change_password("pw-two")
    # WHEN the server announces 200 000 iterations at B's adoption (row 5)
    server.weaken_kdf(iterations=200_000)
    again = Client.open(tmp_path / "b.sqlite3", transport=server)
    before = (again.meta.key_did, again.meta.kdf, again.meta.verifier)
    with pytest.raises(errors.WeakKdfOffered, match="other key-derivation parameters"):
        again.adopt_password("pw-two")
    # THEN nothing was stored: the old password still opens B's vault
    assert (again.meta.key_did, again.meta.kdf, again.meta.verifier) == before
    again.unlock(PASSWORD)
    again.close()


@pytest.mark.parametrize(
    "url",
    ["http://checkout.example/buy", "javascript:alert(1)", "https://shop.example/\x1b]0;x\x07"],
)
def test_a_checkout_link_that_is_not_https_is_not_shown(make_client, server, url):
    # GIVEN a server that hands over a checkout link that is not plain https (row 9)
    a = enabled(make_client, server)
    server.rewrite("/api/premium/checkout", lambda body: {**body, "url": url})
    # WHEN the person asks for it THEN it is refused in one sentence
    with pytest.raises(errors.UntrustedAnswer, match="not an https"):
        a.premium("checkout")


def _lie_on_pull(server, change):
    server.rewrite("/api/sync/pull", change)


def _first_item(body):
    return body["items"][0] if body.get("items") else None


@pytest.mark.parametrize(
    "lie, says",
    [
        (lambda b: {**b, "hasMore": True, "items": [], "watermark": 0}, "without moving forward"),
        (lambda b: {**b, "watermark": -5}, "moves the watermark"),
        (lambda b: {**b, "items": b["items"] * 3}, "at most"),
        (lambda b: {**b, "items": [{**b["items"][0], "version": 2**62}]}, "at version"),
        (lambda b: {**b, "items": [{**b["items"][0], "version": 0}]}, "at version"),
        (lambda b: {**b, "items": list(reversed(b["items"]))}, "out of order"),
        (lambda b: {**b, "items": [b["items"][0], b["items"][0]]}, "out of order"),
        (lambda b: [b], "is not an object"),
    ],
    ids=[
        "more-forever",
        "negative-watermark",
        "page-over-limit",
        "version-above-page",
        "version-zero",
        "descending",
        "same-item-twice",
        "not-an-object",
    ],
)
def test_a_hostile_pull_page_stops_the_sync_and_stores_nothing(
    make_client, join_client, server, monkeypatch, lie, says
):
    # GIVEN B, and two new items from A (issue 14 row 8)
    a = enabled(make_client, server)
    b = join_client("b", a.meta.key_did)
    a.add_item("x", body="1")
    a.add_item("y", body="2")
    a.sync_now()
    monkeypatch.setattr(sync, "PULL_LIMIT", 2)
    before = (bodies(b), b.meta.watermark)
    # WHEN the server's pull page lies
    _lie_on_pull(server, lie)
    with pytest.raises(errors.UntrustedAnswer, match=says):
        b.sync_now()
    # THEN nothing of it was stored
    assert (bodies(b), b.meta.watermark) == before


def test_an_attachment_list_whose_cursor_repeats_is_refused(make_client, server):
    # GIVEN a server whose attachment list never ends (row 8)
    a = enabled(make_client, server)
    cursor = b64url_encode(b"ATT#same")  # a cursor the server accepts, handed out forever
    server.rewrite("/api/attachments", lambda b: {**b, "cursor": cursor})
    # WHEN the client lists them THEN it stops with one sentence
    with pytest.raises(errors.ServerError, match="does not end"):
        a.api.attachments()


def test_the_same_revision_with_other_content_is_a_conflict_not_a_replacement(make_client, server):
    # GIVEN C's accepted edit of x at revision 2
    c = enabled(make_client, server, "c")
    item = c.add_item("x", body="1")
    c.sync_now()
    c.edit_item(item, body="from C")
    c.sync_now()
    assert c.vault.get_item(item).revision == 2
    # AND another writer's ciphertext of x, also at revision 2 (a lying server accepted both)
    keys = c.require_keys()
    theirs = {**c.get_item(item), "body": "from D", "revision": 2, "replicaId": "d"}
    theirs.pop("id", None)
    forged = crypto.encrypt_item(keys.data_key, c.salt, item, theirs)

    def serve_theirs(body):
        version = body["watermark"] + 1
        wire = {
            "id": item,
            "version": version,
            "deleted": False,
            "ciphertext": forged,
            "replicaId": "d",
            "updatedAt": 1,
        }
        return {**body, "items": [wire], "watermark": version, "hasMore": False}

    server.rewrite("/api/sync/pull", serve_theirs)
    # WHEN C pulls it (issue 14 row 4)
    summary = c.sync_now()
    # THEN C's text stays and theirs is kept as a conflicted copy: nothing silently replaced
    texts = sorted(bodies(c).values())
    assert summary.conflicts == 1 and texts == ["from C", "from D"]
    assert c.get_item(item)["body"] == "from C"


def test_two_devices_in_sync_share_a_fingerprint_and_a_withheld_item_changes_it(
    make_client, join_client, server
):
    from nt2sync.fingerprint import fingerprint

    # GIVEN two devices in sync
    a = enabled(make_client, server)
    a.add_item("x", body="1")
    a.sync_now()
    b = join_client("b", a.meta.key_did)
    assert fingerprint(a)["fingerprint"] == fingerprint(b)["fingerprint"]
    # WHEN the server withholds A's next item from B (a fork nothing else can see)
    a.add_item("hidden", body="2")
    a.sync_now()
    server.rewrite("/api/sync/pull", lambda body: {**body, "items": []})
    b.sync_now()
    # THEN a person comparing the two codes sees that they differ
    assert fingerprint(a)["fingerprint"] != fingerprint(b)["fingerprint"]
    assert len(fingerprint(a)["fingerprint"]) == 19
