"""§6 attachments through the routes (chalice.test.Client + moto in-process).

moto does not check presigned signatures, so a client's PUT is played here by `put_blob`:
the same bucket, key, checksum and tag the presigned URL names, through boto3.
"""

from __future__ import annotations

import base64
import hashlib
import threading
from typing import Any
from urllib.parse import unquote, urlsplit

import pytest

from chalicelib.shared.encoding import b64url_encode
from tests.helpers import Device, Resp, seed_for

BUCKET = "nt2-sync-test-attachments"


def sha(data: bytes) -> str:
    return b64url_encode(hashlib.sha256(data).digest())


def s3() -> Any:
    from chalicelib.store.aws import client

    return client("s3")


def object_key(url: str) -> str:
    path = unquote(urlsplit(url).path)
    bucket, _, key = path.lstrip("/").partition("/")
    assert bucket == BUCKET
    return key


def upload(dev: Device, att_id: str, data: bytes, size: int | None = None) -> Resp:
    body = {"size": len(data) if size is None else size, "sha256": sha(data)}
    return dev.call("POST", f"/api/attachments/{att_id}/upload", body)


def put_blob(grant: dict[str, Any], data: bytes, *, honest: bool = True) -> str:
    """What S3 stores for a PUT to the grant's URL (honest: with the signed checksum and tag)."""
    key = object_key(grant["url"])
    kwargs: dict[str, Any] = {"Bucket": BUCKET, "Key": key, "Body": data}
    if honest:
        kwargs["ChecksumSHA256"] = grant["headers"]["x-amz-checksum-sha256"]
        kwargs["Tagging"] = grant["headers"]["x-amz-tagging"]
        kwargs["ContentType"] = grant["headers"]["Content-Type"]
    s3().put_object(**kwargs)
    return key


def tags(key: str) -> dict[str, str]:
    resp = s3().get_object_tagging(Bucket=BUCKET, Key=key)
    return {t["Key"]: t["Value"] for t in resp["TagSet"]}


def exists(key: str) -> bool:
    return "Contents" in s3().list_objects_v2(Bucket=BUCKET, Prefix=key)


def store(dev: Device, att_id: str, data: bytes) -> str:
    """Upload + PUT + commit; returns the object key."""
    r = upload(dev, att_id, data)
    assert r.status == 200, r.body
    key = put_blob(r.body, data)
    c = dev.call("POST", f"/api/attachments/{att_id}/commit")
    assert c.status == 200, c.body
    return key


def counts(dev: Device) -> dict[str, int]:
    r = dev.call("GET", "/api/sync/status")
    assert r.status == 200, r.body
    return r.body["counts"]


@pytest.fixture
def other(caller: Any) -> Device:
    """A second, registered vault."""
    dev = Device(caller, seed_for(2), "replica-b")
    dev.sign_in("Other")
    assert dev.register().status == 201
    return dev


def test_round_trip_upload_commit_download_list_delete(registered: Device) -> None:
    # GIVEN a registered vault and some ciphertext
    data = b"ciphertext bytes" * 10
    # WHEN it asks to upload
    r = upload(registered, "att-1", data)
    # THEN it gets a PUT URL under its own vault prefix and the exact headers to send
    assert r.status == 200, r.body
    assert r.body["method"] == "PUT"
    assert r.body["headers"] == {
        "Content-Type": "application/octet-stream",
        "x-amz-checksum-sha256": base64.b64encode(hashlib.sha256(data).digest()).decode(),
        "x-amz-tagging": "nt2-state=pending",
        "If-None-Match": "*",
    }
    key = put_blob(r.body, data)
    assert key.startswith("vaults/") and key.endswith("/att-1")
    assert tags(key) == {"nt2-state": "pending"}
    # WHEN it commits
    c = registered.call("POST", "/api/attachments/att-1/commit")
    # THEN the attachment is recorded, counted, and no longer expires with the pending rule
    assert c.status == 200, c.body
    assert c.body == {
        "id": "att-1",
        "size": len(data),
        "sha256": sha(data),
        "committedAt": c.body["committedAt"],
    }
    assert tags(key) == {"nt2-state": "committed"}
    assert counts(registered)["attachments"] == 1
    assert counts(registered)["attachmentBytes"] == len(data)
    # AND a re-commit answers the same body
    again = registered.call("POST", "/api/attachments/att-1/commit")
    assert again.status == 200 and again.body == c.body
    assert counts(registered)["attachmentBytes"] == len(data)
    # AND download gives a GET URL for the same object
    d = registered.call("GET", "/api/attachments/att-1/download")
    assert d.status == 200, d.body
    assert object_key(d.body["url"]) == key
    assert "X-Amz-Expires=900" in d.body["url"]
    # AND list shows it
    lst = registered.call("GET", "/api/attachments")
    assert lst.status == 200
    assert lst.body == {"attachments": [c.body], "cursor": None}
    # WHEN it deletes (twice)
    assert registered.call("DELETE", "/api/attachments/att-1").status == 204
    assert registered.call("DELETE", "/api/attachments/att-1").status == 204
    # THEN blob, record and usage are gone
    assert not exists(key)
    assert counts(registered)["attachments"] == 0
    assert counts(registered)["attachmentBytes"] == 0
    assert registered.call("GET", "/api/attachments/att-1/download").status == 404
    assert registered.call("GET", "/api/attachments").body == {"attachments": [], "cursor": None}


def test_delete_unknown_and_pending(registered: Device) -> None:
    assert registered.call("DELETE", "/api/attachments/never-seen").status == 204
    # A pending upload is deleted without touching usage.
    r = upload(registered, "pending-1", b"abc")
    key = put_blob(r.body, b"abc")
    assert registered.call("DELETE", "/api/attachments/pending-1").status == 204
    assert not exists(key)
    assert counts(registered)["attachmentBytes"] == 0
    assert registered.call("POST", "/api/attachments/pending-1/commit").status == 404


def test_validation_comes_first(caller: Any, registered: Device, monkeypatch: Any) -> None:
    monkeypatch.setenv("ATTACHMENT_MAX_BYTES", "1000")
    good = {"size": 10, "sha256": sha(b"x")}
    cases: list[tuple[str, dict[str, Any] | None, int, str]] = [
        ("ok-id", {"size": 1001, "sha256": sha(b"x")}, 413, "payload_too_large"),
        ("ok-id", {"size": 0, "sha256": sha(b"x")}, 400, "invalid_request"),
        ("ok-id", {"size": "10", "sha256": sha(b"x")}, 400, "invalid_request"),
        ("ok-id", {"size": 10, "sha256": b64url_encode(bytes(16))}, 400, "invalid_request"),
        ("ok-id", {"size": 10, "sha256": "*" * 43}, 400, "invalid_encoding"),
        ("ok-id", {"size": 10}, 400, "invalid_request"),
        ("ok-id", {**good, "extra": 1}, 400, "invalid_request"),
        ("x" * 129, good, 400, "invalid_request"),
        ("bad*id", good, 400, "invalid_request"),
    ]
    for att_id, body, status, code in cases:
        # Without a token: a malformed request is a 400/413 before authentication.
        r = caller.call("POST", f"/api/attachments/{att_id}/upload", body)
        assert (r.status, r.body["code"]) == (status, code), (att_id, body, r.body)
        r = registered.call("POST", f"/api/attachments/{att_id}/upload", body)
        assert (r.status, r.body["code"]) == (status, code), (att_id, body, r.body)
    for method, path in [
        ("POST", "/api/attachments/bad*id/commit"),
        ("GET", "/api/attachments/bad*id/download"),
        ("DELETE", "/api/attachments/bad*id"),
        ("GET", "/api/attachments?cursor=***"),
        ("GET", "/api/attachments?limit=5"),
    ]:
        r = caller.call(method, path)
        assert (r.status, r.body["code"]) == (400, "invalid_request"), (path, r.body)
    assert caller.call("POST", "/api/attachments/ok/commit").status == 401


def test_unregistered_vault_is_404(device: Device) -> None:
    device.sign_in()
    r = upload(device, "a", b"abc")
    assert (r.status, r.body["code"]) == (404, "vault_not_found")
    for method, path in [
        ("POST", "/api/attachments/a/commit"),
        ("GET", "/api/attachments/a/download"),
        ("GET", "/api/attachments"),
        ("DELETE", "/api/attachments/a"),
    ]:
        r = device.call(method, path)
        assert (r.status, r.body["code"]) == (404, "vault_not_found"), path


def test_commit_without_upload_is_404(registered: Device) -> None:
    r = registered.call("POST", "/api/attachments/nothing/commit")
    assert (r.status, r.body["code"]) == (404, "attachment_not_found")
    r = registered.call("GET", "/api/attachments/nothing/download")
    assert (r.status, r.body["code"]) == (404, "attachment_not_found")


def test_commit_checks_object_against_declaration(registered: Device) -> None:
    # GIVEN an upload requested but nothing PUT
    upload(registered, "a", b"hello")
    r = registered.call("POST", "/api/attachments/a/commit")
    # THEN commit says the object is missing
    assert (r.status, r.body["code"]) == (409, "attachment_mismatch")
    # GIVEN 'hello' stored, then a new upload request declaring other content of another size
    put_blob(upload(registered, "a", b"hello").body, b"hello")
    assert upload(registered, "a", b"hello!").status == 200
    r = registered.call("POST", "/api/attachments/a/commit")
    assert (r.status, r.body["code"]) == (409, "attachment_mismatch")
    # AND of the same size but another checksum
    assert upload(registered, "a", b"world").status == 200
    r = registered.call("POST", "/api/attachments/a/commit")
    assert (r.status, r.body["code"]) == (409, "attachment_mismatch")
    # GIVEN bytes of the right size stored without any checksum
    grant = upload(registered, "b", b"12345").body
    put_blob(grant, b"12345", honest=False)
    r = registered.call("POST", "/api/attachments/b/commit")
    assert (r.status, r.body["code"]) == (409, "attachment_mismatch")
    # Nothing was counted.
    assert counts(registered)["attachments"] == 0
    assert registered.call("GET", "/api/attachments").body["attachments"] == []
    # The right bytes make it commit.
    put_blob(upload(registered, "a", b"world").body, b"world")
    assert registered.call("POST", "/api/attachments/a/commit").status == 200


def test_committed_attachment_is_immutable(registered: Device) -> None:
    key = store(registered, "a", b"hello")
    # An identical re-upload is granted, with a URL that keeps the blob committed.
    r = upload(registered, "a", b"hello")
    assert r.status == 200
    assert r.body["headers"]["x-amz-tagging"] == "nt2-state=committed"
    put_blob(r.body, b"hello")
    assert tags(key) == {"nt2-state": "committed"}
    # Other content under the same id is refused.
    r = upload(registered, "a", b"other")
    assert (r.status, r.body["code"]) == (409, "attachment_mismatch")
    assert counts(registered) == {**counts(registered), "attachments": 1, "attachmentBytes": 5}
    assert registered.call("POST", "/api/attachments/a/commit").status == 200


def test_recommit_clears_a_left_over_pending_tag(registered: Device, monkeypatch: Any) -> None:
    from chalicelib.errors import unavailable
    from chalicelib.store.blobs import Blobs

    # GIVEN a commit whose tag change fails after the transaction
    r = upload(registered, "a", b"hello")
    key = put_blob(r.body, b"hello")
    real = Blobs.set_state

    def failing(self: Blobs, k: str, state: str) -> bool:
        raise unavailable()

    monkeypatch.setattr(Blobs, "set_state", failing)
    c = registered.call("POST", "/api/attachments/a/commit")
    assert c.status == 503 and c.headers.get("Retry-After")
    assert tags(key) == {"nt2-state": "pending"}  # the lifecycle rule would expire it
    # WHEN the client retries
    monkeypatch.setattr(Blobs, "set_state", real)
    c = registered.call("POST", "/api/attachments/a/commit")
    # THEN the commit is idempotent, counted once, and the tag is cleared
    assert c.status == 200
    assert tags(key) == {"nt2-state": "committed"}
    assert counts(registered)["attachmentBytes"] == 5
    assert counts(registered)["attachments"] == 1


def test_quota_and_file_limit(registered: Device, monkeypatch: Any) -> None:
    monkeypatch.setenv("ATTACHMENT_QUOTA_BYTES", "100")
    monkeypatch.setenv("ATTACHMENT_MAX_BYTES", "80")
    r = upload(registered, "big", b"x" * 81)
    assert (r.status, r.body["code"]) == (413, "payload_too_large")
    store(registered, "a", b"x" * 60)
    r = upload(registered, "b", b"y" * 41)
    assert (r.status, r.body["code"]) == (413, "quota_exceeded")
    assert upload(registered, "b", b"y" * 40).status == 200
    # Deleting frees the space.
    assert registered.call("DELETE", "/api/attachments/a").status == 204
    assert upload(registered, "b", b"y" * 41).status == 200


def test_quota_race_two_commits_cannot_pass_it(
    registered: Device, monkeypatch: Any, clock: Any
) -> None:
    from chalicelib import attachments
    from chalicelib.errors import ApiError
    from chalicelib.identity import authenticate
    from chalicelib.settings import get_settings
    from chalicelib.store.blobs import Blobs
    from chalicelib.store.table import Table

    # GIVEN two uploads that each fit the quota but not together, PUT in time, whose
    # reservations have both ended (so neither commit holds its bytes already)
    monkeypatch.setenv("ATTACHMENT_QUOTA_BYTES", "100")
    for n, (att_id, data) in enumerate([("a", b"a" * 60), ("b", b"b" * 60)]):
        put_blob(upload(registered, att_id, data).body, data)
        clock((n + 1) * 16 * 60_000)
    vault_id = authenticate(Table(), registered.token or "").vault_id
    assert vault_id and attachments.release_ended(Table(), vault_id)[0] == 1
    # Both commits have checked their object before either writes.
    barrier = threading.Barrier(2, timeout=10)
    real_head = Blobs.head

    def head(self: Blobs, key: str) -> Any:
        info = real_head(self, key)
        barrier.wait()
        return info

    monkeypatch.setattr(Blobs, "head", head)
    assert registered.token
    results: dict[str, Any] = {}

    def run(att_id: str) -> None:
        try:
            caller = authenticate(Table(), registered.token or "")
            results[att_id] = attachments.commit(Table(), Blobs(), get_settings(), caller, att_id)
        except ApiError as err:
            results[att_id] = err.code

    # WHEN they commit concurrently
    threads = [threading.Thread(target=run, args=(i,)) for i in ("a", "b")]
    for t in threads:
        t.start()
    for t in threads:
        t.join(20)
    # THEN exactly one wins; the other is over quota, and usage never passed it
    outcomes = sorted(str(type(v).__name__ if isinstance(v, dict) else v) for v in results.values())
    assert outcomes == ["dict", "quota_exceeded"], results
    assert counts(registered)["attachmentBytes"] == 60
    assert counts(registered)["attachments"] == 1
    assert len(registered.call("GET", "/api/attachments").body["attachments"]) == 1


def test_another_vault_cannot_reach_your_attachment(registered: Device, other: Device) -> None:
    # GIVEN vault A's committed attachment and pending upload
    key = store(registered, "shared-id", b"secret")
    pending_key = put_blob(upload(registered, "pend", b"abc").body, b"abc")
    # WHEN vault B uses the same ids
    for path in ("/api/attachments/shared-id/commit", "/api/attachments/pend/commit"):
        r = other.call("POST", path)
        assert (r.status, r.body["code"]) == (404, "attachment_not_found")
    r = other.call("GET", "/api/attachments/shared-id/download")
    assert (r.status, r.body["code"]) == (404, "attachment_not_found")
    assert other.call("DELETE", "/api/attachments/shared-id").status == 204
    assert other.call("DELETE", "/api/attachments/pend").status == 204
    assert other.call("GET", "/api/attachments").body == {"attachments": [], "cursor": None}
    # AND B's own upload of that id lands under B's prefix
    grant = upload(other, "shared-id", b"mine").body
    assert object_key(grant["url"]) != key
    assert object_key(grant["url"]).split("/")[1] != key.split("/")[1]
    # THEN A's blobs and records survive
    assert exists(key) and exists(pending_key)
    assert registered.call("GET", "/api/attachments/shared-id/download").status == 200
    assert registered.call("POST", "/api/attachments/pend/commit").status == 200
    assert counts(registered)["attachments"] == 2


def test_premium_gates_uploads_not_downloads(registered: Device, monkeypatch: Any) -> None:
    store(registered, "a", b"hello")
    put_blob(upload(registered, "b", b"later").body, b"later")
    # WHEN Premium is required and this vault has none
    monkeypatch.setenv("PREMIUM_SYNC_REQUIRED", "true")
    r = upload(registered, "c", b"new")
    assert (r.status, r.body["code"]) == (402, "premium_required")
    # THEN reading, committing an earlier grant, listing and deleting still work
    assert registered.call("GET", "/api/attachments/a/download").status == 200
    assert registered.call("POST", "/api/attachments/b/commit").status == 200
    assert len(registered.call("GET", "/api/attachments").body["attachments"]) == 2
    assert registered.call("DELETE", "/api/attachments/a").status == 204


def test_list_pages_skip_pending_rows(registered: Device) -> None:
    from chalicelib.identity import authenticate
    from chalicelib.store import keys
    from chalicelib.store.table import Table

    unkey = keys.plain

    # GIVEN 160 rows, every third one pending (written directly: the paging is under test)
    table = Table()
    vault_id = authenticate(table, registered.token or "").vault_id
    assert vault_id
    committed = []
    for n in range(160):
        att_id = f"att-{n:03d}"
        row = {**unkey(keys.attachment_key(vault_id, att_id)), "size": 1, "sha256": sha(b"x")}
        if n % 3 == 0:
            table.put({**row, "state": "pending", "createdAt": 1})
        else:
            table.put({**row, "state": "committed", "createdAt": 1, "committedAt": 2})
            committed.append(att_id)
    # WHEN a client pages through
    seen: list[str] = []
    cursor = None
    pages = 0
    while True:
        path = "/api/attachments" + (f"?cursor={cursor}" if cursor else "")
        r = registered.call("GET", path)
        assert r.status == 200, r.body
        pages += 1
        assert len(r.body["attachments"]) <= 100
        seen += [a["id"] for a in r.body["attachments"]]
        cursor = r.body["cursor"]
        if cursor is None:
            break
        # A page with a cursor is full.
        assert len(r.body["attachments"]) == 100
    # THEN every committed attachment comes once, in order, and no pending one
    assert seen == committed
    assert pages == 2
    # AND a cursor stays valid after its attachment is deleted
    first = registered.call("GET", "/api/attachments").body
    assert registered.call("DELETE", f"/api/attachments/{first['attachments'][-1]['id']}").status
    nxt = registered.call("GET", f"/api/attachments?cursor={first['cursor']}").body
    assert [a["id"] for a in nxt["attachments"]] == committed[100:]


def test_cursor_garbage_is_400(registered: Device) -> None:
    for cursor in ("%2A%2A", b64url_encode(b"ITEM#a"), b64url_encode(b"ATT#bad/id"), "QQ="):
        r = registered.call("GET", f"/api/attachments?cursor={cursor}")
        assert (r.status, r.body["code"]) == (400, "invalid_request"), cursor
    assert registered.call("GET", "/api/attachments?cursor=").status == 200


def test_stale_pending_upload_cannot_be_committed(registered: Device, clock: Any) -> None:
    from chalicelib.identity import authenticate
    from chalicelib.store import keys
    from chalicelib.store.table import Table

    table = Table()
    vault_id = authenticate(table, registered.token or "").vault_id
    assert vault_id
    # GIVEN a pending upload: its row carries a TTL, like its blob carries the pending tag
    put_blob(upload(registered, "old", b"hello").body, b"hello")
    put_blob(upload(registered, "fresh", b"hello").body, b"hello")
    pending = table.get(keys.attachment_key(vault_id, "old"))
    assert pending and pending["state"] == "pending" and pending["ttl"] > 0
    # WHEN it is committed in time, the row loses its TTL
    assert registered.call("POST", "/api/attachments/fresh/commit").status == 200
    fresh = table.get(keys.attachment_key(vault_id, "fresh"))
    assert fresh and "ttl" not in fresh and "expiresAt" not in fresh
    # WHEN 12 hours pass without a commit (a new session: the old one expired)
    clock(12 * 3_600_000)
    registered.sign_in()
    r = registered.call("POST", "/api/attachments/old/commit")
    # THEN the stale upload counts as absent; a new grant makes it committable again
    assert (r.status, r.body["code"]) == (404, "attachment_not_found")
    put_blob(upload(registered, "old", b"hello").body, b"hello")
    assert registered.call("POST", "/api/attachments/old/commit").status == 200
    # AND the committed one is untouched by time
    assert registered.call("GET", "/api/attachments/fresh/download").status == 200


def test_attachments_follow_the_vault_through_rotation(registered: Device, caller: Any) -> None:
    # GIVEN a committed attachment
    key = store(registered, "a", b"hello")
    # WHEN the vault rotates to a new key
    r = registered.call("POST", "/api/vault/rotate", registered.rotate_body(seed_for(9)))
    assert r.status == 200, r.body
    new = Device(caller, seed_for(9), "replica-a")
    new.sign_in()
    # THEN the new key's session reaches the same blob; the old key sees no vault
    d = new.call("GET", "/api/attachments/a/download")
    assert d.status == 200 and object_key(d.body["url"]) == key
    assert [a["id"] for a in new.call("GET", "/api/attachments").body["attachments"]] == ["a"]
    registered.sign_in()
    r = registered.call("GET", "/api/attachments/a/download")
    assert (r.status, r.body["code"]) == (404, "vault_not_found")
