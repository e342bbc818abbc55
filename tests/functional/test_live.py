"""§10 live change notifications: tickets, the WebSocket handlers, the frames of each change."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest

from tests.helpers import Device, seed_for

CIPHERTEXT = "c2VjcmV0LWl0ZW0tY2lwaGVydGV4dA"
ITEM_ID = "item-secret-id"


@dataclass
class FakeManagement:
    """Stands in for the `apigatewaymanagementapi` client: records posts and closes."""

    posts: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    closed: list[str] = field(default_factory=list)
    gone: set[str] = field(default_factory=set)

    def post_to_connection(self, ConnectionId: str, Data: bytes) -> None:  # noqa: N803
        if ConnectionId in self.gone:
            from botocore.exceptions import ClientError

            raise ClientError({"Error": {"Code": "GoneException"}}, "PostToConnection")
        self.posts.append((ConnectionId, json.loads(Data)))

    def delete_connection(self, ConnectionId: str) -> None:  # noqa: N803
        self.closed.append(ConnectionId)

    def frames(self, connection_id: str) -> list[dict[str, Any]]:
        return [frame for cid, frame in self.posts if cid == connection_id]


@pytest.fixture
def management(client: Any) -> Iterator[FakeManagement]:
    from chalicelib import live

    fake = FakeManagement()
    live.management_override = fake
    try:
        yield fake
    finally:
        live.management_override = None


def ws_event(route_key: str, connection_id: str, **extra: Any) -> dict[str, Any]:
    """An API Gateway WebSocket event as Lambda receives it."""
    event_type = {"$connect": "CONNECT", "$disconnect": "DISCONNECT"}.get(route_key, "MESSAGE")
    return {
        "requestContext": {
            "routeKey": route_key,
            "eventType": event_type,
            "connectionId": connection_id,
            "apiId": "abc123",
            "stage": "test",
            "domainName": "abc123.execute-api.us-east-1.amazonaws.com",
        },
        "isBase64Encoded": False,
        **extra,
    }


def connect(ticket: str | None, connection_id: str) -> int:
    import app as app_module

    query = {"ticket": ticket} if ticket is not None else None
    out = app_module.ws_connect(
        ws_event("$connect", connection_id, queryStringParameters=query), None
    )
    return int(out["statusCode"])


def ticket(dev: Device) -> dict[str, Any]:
    r = dev.call("POST", "/api/live/ticket")
    assert r.status == 200, r.body
    return dict(r.body)


def rows(vault_id: str) -> list[dict[str, Any]]:
    from chalicelib.store import live_rows
    from chalicelib.store.table import Table

    return live_rows.connections(Table(), vault_id)


def vault_id_of(dev: Device) -> str:
    assert dev.token is not None
    return dev.token.split("~")[0]


def push(dev: Device, batch: str, base: int = 0) -> dict[str, Any]:
    item = {"id": ITEM_ID, "baseVersion": base, "deleted": False, "ciphertext": CIPHERTEXT}
    r = dev.call("POST", "/api/sync/push", {"batchId": batch, "items": [item]})
    assert r.status == 200, r.body
    return dict(r.body)


# --- tickets --------------------------------------------------------------------------


def test_ticket_needs_a_session(caller: Any) -> None:
    # WHEN no token is sent THEN 401
    assert caller.call("POST", "/api/live/ticket").status == 401


def test_ticket_before_registration_is_404(device: Device) -> None:
    # GIVEN a session whose vault is not registered
    device.sign_in("Laptop")
    # THEN no ticket
    r = device.call("POST", "/api/live/ticket")
    assert r.status == 404 and r.body["code"] == "vault_not_found"


def test_ticket_shape_and_never_premium_gated(
    registered: Device, monkeypatch: pytest.MonkeyPatch
) -> None:
    from chalicelib.clock import now_ms
    from chalicelib.shared.encoding import b64url_decode

    # GIVEN a Premium-gated deployment and a vault without Premium
    monkeypatch.setenv("PREMIUM_SYNC_REQUIRED", "true")
    monkeypatch.setenv("LIVE_WS_URL", "wss://live.example.test")
    body = ticket(registered)
    # THEN a 32-byte ticket, valid 30 s, naming the WebSocket URL
    assert len(b64url_decode(body["ticket"])) == 32
    assert body["url"] == "wss://live.example.test"
    assert 29_000 <= body["expiresAt"] - now_ms() <= 30_000


def test_ticket_is_stored_hashed(registered: Device) -> None:
    from chalicelib.settings import get_settings
    from chalicelib.store.aws import client

    value = ticket(registered)["ticket"]
    dump = json.dumps(client("dynamodb").scan(TableName=get_settings().table_name)["Items"])
    assert value not in dump


def test_a_ticket_opens_one_connection_once(registered: Device, management: FakeManagement) -> None:
    t = ticket(registered)["ticket"]
    # WHEN the ticket is used twice
    assert connect(t, "conn-1") == 200
    assert connect(t, "conn-2") == 403
    # THEN one connection row, bound to the vault and replica
    (row,) = rows(vault_id_of(registered))
    assert row["connectionId"] == "conn-1" and row["replicaId"] == "replica-a"
    assert row["ttl"] - row["at"] // 1000 == 2 * 3600


@pytest.mark.parametrize("value", [None, "", "bm90LWEtdGlja2V0", "x" * 500])
def test_connect_refuses_unknown_tickets(
    registered: Device, management: FakeManagement, value: str | None
) -> None:
    assert connect(value, "conn-x") == 403
    assert rows(vault_id_of(registered)) == []


def test_connect_refuses_an_expired_ticket(
    registered: Device, management: FakeManagement, clock: Any
) -> None:
    t = ticket(registered)["ticket"]
    clock(30_001)
    assert connect(t, "conn-1") == 403
    assert rows(vault_id_of(registered)) == []


def test_a_ticket_just_within_30_s_still_opens(
    registered: Device, management: FakeManagement, clock: Any
) -> None:
    t = ticket(registered)["ticket"]
    clock(29_000)
    assert connect(t, "conn-1") == 200


# --- frames ---------------------------------------------------------------------------


def test_ping_pong_and_anything_else_closes(registered: Device, management: FakeManagement) -> None:
    import app as app_module

    assert connect(ticket(registered)["ticket"], "conn-1") == 200
    app_module.ws_message(ws_event("$default", "conn-1", body='{"type":"ping"}'), None)
    assert management.frames("conn-1") == [{"type": "pong"}]
    app_module.ws_message(ws_event("$default", "conn-1", body="hello"), None)
    assert management.closed == ["conn-1"]


def test_changed_after_a_push_to_every_connection(
    registered: Device, management: FakeManagement
) -> None:
    # GIVEN two connections of the vault, one of them the writer's, and another replica
    other = Device(registered.caller, registered.seed, "replica-b")
    other.sign_in("Phone")
    assert connect(ticket(registered)["ticket"], "conn-a") == 200
    assert connect(ticket(other)["ticket"], "conn-b") == 200
    management.posts.clear()
    # WHEN A pushes a write
    result = push(registered, "b1")
    # THEN both get changed with the new head and the writer
    frame = {"type": "changed", "watermark": result["watermark"], "replicaId": "replica-a"}
    assert management.frames("conn-a") == [frame]
    assert management.frames("conn-b") == [frame]
    # AND a push of only conflicts sends nothing
    management.posts.clear()
    stale = {"id": ITEM_ID, "baseVersion": 0, "deleted": False, "ciphertext": CIPHERTEXT}
    r = registered.call("POST", "/api/sync/push", {"batchId": "b2", "items": [stale]})
    assert r.body["results"][0]["status"] == "conflict"
    assert management.posts == []


def test_other_vaults_hear_nothing(registered: Device, management: FakeManagement) -> None:
    stranger = Device(registered.caller, seed_for(7), "replica-z")
    stranger.sign_in("Other")
    assert stranger.register().status == 201
    assert connect(ticket(stranger)["ticket"], "conn-z") == 200
    management.posts.clear()
    push(registered, "b1")
    assert management.frames("conn-z") == []


def test_devices_after_enrol_and_rename(registered: Device, management: FakeManagement) -> None:
    assert connect(ticket(registered)["ticket"], "conn-a") == 200
    # WHEN a new device enrols
    other = Device(registered.caller, registered.seed, "replica-b")
    other.sign_in("Phone")
    # THEN devices
    assert management.frames("conn-a") == [{"type": "devices"}]
    # AND a sign-in of an enrolled device is not an enrolment
    other.sign_in()
    assert management.frames("conn-a") == [{"type": "devices"}]
    # WHEN a device is renamed THEN devices again
    r = registered.call("PATCH", "/api/devices/replica-b", {"name": "Tablet"})
    assert r.status == 200
    assert management.frames("conn-a") == [{"type": "devices"}, {"type": "devices"}]


def test_revoke_ends_that_replicas_connections(
    registered: Device, management: FakeManagement
) -> None:
    # GIVEN a connection of A and one of B
    other = Device(registered.caller, registered.seed, "replica-b")
    other.sign_in("Phone")
    assert connect(ticket(registered)["ticket"], "conn-a") == 200
    assert connect(ticket(other)["ticket"], "conn-b") == 200
    later = ticket(other)["ticket"]
    management.posts.clear()
    # WHEN A revokes B
    body = {"proof": registered.proof("revoke", "replica-b")}
    assert registered.call("POST", "/api/devices/replica-b/revoke", body).status == 200
    # THEN B's connection gets ended and is closed, A's gets devices
    assert management.frames("conn-b") == [{"type": "ended", "reason": "revoked"}]
    assert management.closed == ["conn-b"]
    assert management.frames("conn-a") == [{"type": "devices"}]
    assert [r["connectionId"] for r in rows(vault_id_of(registered))] == ["conn-a"]
    # AND a ticket B got before the revoke no longer opens a connection
    assert connect(later, "conn-b2") == 403


def test_rotation_ends_every_connection(registered: Device, management: FakeManagement) -> None:
    other = Device(registered.caller, registered.seed, "replica-b")
    other.sign_in("Phone")
    assert connect(ticket(registered)["ticket"], "conn-a") == 200
    assert connect(ticket(other)["ticket"], "conn-b") == 200
    later = ticket(other)["ticket"]
    management.posts.clear()
    # WHEN the vault rotates
    r = registered.call("POST", "/api/vault/rotate", registered.rotate_body(seed_for(42)))
    assert r.status == 200, r.body
    # THEN every connection gets ended (rotated) and is closed
    ended = {"type": "ended", "reason": "rotated"}
    assert management.frames("conn-a") == [ended] and management.frames("conn-b") == [ended]
    assert sorted(management.closed) == ["conn-a", "conn-b"]
    assert rows(vault_id_of(registered)) == []
    # AND a ticket of the old key opens nothing
    assert connect(later, "conn-c") == 403


def test_gone_connections_are_deleted(registered: Device, management: FakeManagement) -> None:
    assert connect(ticket(registered)["ticket"], "conn-a") == 200
    assert connect(ticket(registered)["ticket"], "conn-gone") == 200
    management.gone.add("conn-gone")
    push(registered, "b1")
    assert [r["connectionId"] for r in rows(vault_id_of(registered))] == ["conn-a"]
    assert len(management.frames("conn-a")) == 1


def test_a_failing_management_api_never_fails_the_push(
    registered: Device, management: FakeManagement, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert connect(ticket(registered)["ticket"], "conn-a") == 200

    def broken(**_: Any) -> None:
        raise RuntimeError("endpoint down")

    monkeypatch.setattr(management, "post_to_connection", broken)
    push(registered, "b1")  # 200, asserted inside


def test_disconnect_deletes_the_rows(registered: Device, management: FakeManagement) -> None:
    import app as app_module

    assert connect(ticket(registered)["ticket"], "conn-a") == 200
    app_module.ws_disconnect(ws_event("$disconnect", "conn-a"), None)
    assert rows(vault_id_of(registered)) == []
    push(registered, "b1")
    assert management.frames("conn-a") == []


def test_no_frame_carries_ciphertext_or_an_item_id(
    registered: Device, management: FakeManagement
) -> None:
    other = Device(registered.caller, registered.seed, "replica-b")
    other.sign_in("Phone")
    assert connect(ticket(registered)["ticket"], "conn-a") == 200
    assert connect(ticket(other)["ticket"], "conn-b") == 200
    push(registered, "b1")
    push(registered, "b2", base=1)
    registered.call("PATCH", "/api/devices/replica-b", {"name": "Tablet"})
    body = {"proof": registered.proof("revoke", "replica-b")}
    registered.call("POST", "/api/devices/replica-b/revoke", body)
    registered.call("POST", "/api/vault/rotate", registered.rotate_body(seed_for(42)))
    sent = json.dumps(management.posts)
    assert {f["type"] for _, f in management.posts} == {"changed", "devices", "ended"}
    assert CIPHERTEXT not in sent and ITEM_ID not in sent
    for _, frame in management.posts:
        assert set(frame) <= {"type", "watermark", "replicaId", "reason"}


def test_without_a_management_endpoint_a_push_reads_no_connections(
    registered: Device, monkeypatch: pytest.MonkeyPatch
) -> None:
    from chalicelib.store import live_rows

    calls: list[str] = []
    monkeypatch.setattr(live_rows, "connections", lambda *a: calls.append("q") or [])
    push(registered, "b1")
    assert calls == []


def test_the_real_client_posts_through_the_management_endpoint(
    registered: Device, monkeypatch: pytest.MonkeyPatch
) -> None:
    import boto3

    from chalicelib.store import live_rows

    # GIVEN a management endpoint (moto's apigatewaymanagementapi) and a recorder on boto3
    url = "https://abc123.execute-api.us-east-1.amazonaws.com/test"
    monkeypatch.setenv("LIVE_MANAGEMENT_URL", url)
    live_rows._MANAGEMENT.clear()
    seen: list[tuple[str, str]] = []

    def record(params: dict[str, Any], model: Any, **_: Any) -> None:
        seen.append((model.name, params.get("ConnectionId", "")))

    session = boto3._get_default_session()
    session.events.register("before-parameter-build.apigatewaymanagementapi", record)
    try:
        assert connect(ticket(registered)["ticket"], "conn-a") == 200
        push(registered, "b1")
    finally:
        session.events.unregister("before-parameter-build.apigatewaymanagementapi", record)
        live_rows._MANAGEMENT.clear()
    assert seen == [("PostToConnection", "conn-a")]
