"""§6 over HTTP against the real local server: bytes go to the (moto) S3 endpoint directly."""

from __future__ import annotations

import hashlib
import secrets
from typing import Any

import httpx

from chalicelib.shared.encoding import b64url_encode
from tests.e2e.protocol_client import HttpDevice


def registered(server: Any, replica: str = "r1") -> HttpDevice:
    dev = HttpDevice.new(server.url, replica)
    dev.sign_in("e2e")
    assert dev.register().status_code == 201
    return dev


def test_attachment_round_trip_over_http(server: Any) -> None:
    dev = registered(server)
    data = secrets.token_bytes(70_000)
    digest = b64url_encode(hashlib.sha256(data).digest())
    # GIVEN an upload grant
    r = dev.call(
        "POST", "/api/attachments/photo-1/upload", json={"size": len(data), "sha256": digest}
    )
    assert r.status_code == 200, r.text
    grant = r.json()
    assert grant["method"] == "PUT"
    assert grant["headers"]["Content-Type"] == "application/octet-stream"
    # WHEN the client PUTs other bytes of the same size with the returned headers
    bad = httpx.put(grant["url"], content=secrets.token_bytes(len(data)), headers=grant["headers"])
    # THEN the storage refuses them (checksum), and commit finds nothing to record
    assert bad.status_code == 400, bad.text
    c = dev.call("POST", "/api/attachments/photo-1/commit")
    assert (c.status_code, c.json()["code"]) == (409, "attachment_mismatch")
    # WHEN it PUTs the declared bytes with exactly the returned headers
    put = httpx.put(grant["url"], content=data, headers=grant["headers"])
    assert put.status_code == 200, put.text
    c = dev.call("POST", "/api/attachments/photo-1/commit")
    assert c.status_code == 200, c.text
    assert c.json()["size"] == len(data) and c.json()["sha256"] == digest
    # AND replaying the pending-era URL cannot overwrite (or re-tag) the committed blob
    replay = httpx.put(grant["url"], content=data, headers=grant["headers"])
    assert replay.status_code == 412, replay.text
    assert dev.call("POST", "/api/attachments/photo-1/commit").json() == c.json()
    # THEN the presigned GET returns the same bytes
    d = dev.call("GET", "/api/attachments/photo-1/download")
    assert d.status_code == 200, d.text
    got = httpx.get(d.json()["url"])
    assert got.status_code == 200
    assert got.content == data
    # AND it is listed and counted
    lst = dev.call("GET", "/api/attachments").json()
    assert lst == {"attachments": [c.json()], "cursor": None}
    counts = dev.call("GET", "/api/sync/status").json()["counts"]
    assert (counts["attachments"], counts["attachmentBytes"]) == (1, len(data))
    # WHEN another vault tries the same id
    intruder = registered(server, "r2")
    assert intruder.call("GET", "/api/attachments/photo-1/download").status_code == 404
    assert intruder.call("DELETE", "/api/attachments/photo-1").status_code == 204
    assert (
        httpx.get(dev.call("GET", "/api/attachments/photo-1/download").json()["url"]).content
        == data
    )
    # WHEN the owner deletes it
    assert dev.call("DELETE", "/api/attachments/photo-1").status_code == 204
    # THEN the blob is gone too
    assert httpx.get(d.json()["url"]).status_code == 404
    assert dev.call("GET", "/api/attachments/photo-1/download").status_code == 404
    counts = dev.call("GET", "/api/sync/status").json()["counts"]
    assert (counts["attachments"], counts["attachmentBytes"]) == (0, 0)
