"""PROTOCOL v1.2 §2/§5 identifier and default rules (each failed on v1.1)."""

from __future__ import annotations

import pytest

from chalicelib.shared.encoding import b64url_encode
from tests.helpers import Caller, Device

DOT_IDS = [".", ".."]


@pytest.mark.parametrize("dot", DOT_IDS)
@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("POST", "/api/attachments/{id}/upload", {"size": 1, "sha256": "A" * 43}),
        ("POST", "/api/attachments/{id}/commit", None),
        ("GET", "/api/attachments/{id}/download", None),
        ("DELETE", "/api/attachments/{id}", None),
        ("PATCH", "/api/devices/{id}", {"name": "x"}),
        ("POST", "/api/devices/{id}/revoke", None),
    ],
)
def test_dot_segments_are_not_ids_on_any_id_route(
    registered: Device, dot: str, method: str, path: str, body: object
) -> None:
    # Sent as raw segments: API Gateway hands `{id}` = `.`/`..` to the route.
    encoded = dot
    r = registered.call(method, path.format(id=encoded), body)
    assert (r.status, r.body["code"]) == (400, "invalid_request"), r.body


@pytest.mark.parametrize("dot", DOT_IDS)
def test_dot_item_id_in_push_is_400(registered: Device, dot: str) -> None:
    item = {"id": dot, "baseVersion": 0, "deleted": False, "ciphertext": b64url_encode(b"x")}
    r = registered.call("POST", "/api/sync/push", {"batchId": "b1", "items": [item]})
    assert (r.status, r.body["code"]) == (400, "invalid_request")


@pytest.mark.parametrize("dot", DOT_IDS)
def test_dot_replica_id_cannot_open_a_session(device: Device, dot: str) -> None:
    body = device.session_body(device.challenge(), replicaId=dot)
    r = device.caller.call("POST", "/api/auth/session", body)
    assert (r.status, r.body["code"]) == (400, "invalid_request")


def test_dotted_ids_that_are_not_segments_still_work(registered: Device) -> None:
    item = {"id": "...", "baseVersion": 0, "deleted": False, "ciphertext": b64url_encode(b"x")}
    r = registered.call("POST", "/api/sync/push", {"batchId": "b1", "items": [item]})
    assert r.status == 200 and r.body["results"][0]["status"] == "accepted", r.body


def test_absent_base_version_means_zero(registered: Device) -> None:
    item = {"id": "new", "deleted": False, "ciphertext": b64url_encode(b"x")}
    r = registered.call("POST", "/api/sync/push", {"batchId": "b1", "items": [item]})
    assert r.status == 200 and r.body["results"][0]["status"] == "accepted", r.body
    again = {"id": "new", "deleted": False, "ciphertext": b64url_encode(b"y")}
    r = registered.call("POST", "/api/sync/push", {"batchId": "b2", "items": [again]})
    assert r.body["results"][0]["status"] == "conflict"


@pytest.mark.parametrize("length", [57, 129, 5000])
def test_a_long_key_did_string_is_invalid_key_did(caller: Caller, length: int) -> None:
    did = ("did:key:z6Mk" + "a" * length)[:length]
    r = caller.call("POST", "/api/auth/challenge", {"keyDid": did})
    assert (r.status, r.body["code"]) == (400, "invalid_key_did")
    r = caller.call("GET", f"/api/vault/bootstrap?keyDid={did}")
    assert (r.status, r.body["code"]) == (400, "invalid_key_did")


def test_a_non_string_key_did_is_invalid_request(caller: Caller) -> None:
    r = caller.call("POST", "/api/auth/challenge", {"keyDid": 12})
    assert (r.status, r.body["code"]) == (400, "invalid_request")
