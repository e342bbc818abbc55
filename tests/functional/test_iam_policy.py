"""Least privilege: the stage policies grant exactly the AWS actions the code calls.

Every boto3 operation is recorded (botocore's `before-parameter-build` event, which presigned
URLs emit too) while a flow drives every registered route, and while the daily purge runs.
A static scan of `chalicelib/` for client calls cross-checks that the flows reached every
kind of call the code can make. The test fails when a policy lacks an action or grants one
that nothing uses, and when a resource is not this stage's table, index, bucket or log group.
"""

from __future__ import annotations

import ast
import base64
import hashlib
import hmac
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from tests.helpers import Device, seed_for

ROOT = Path(__file__).resolve().parents[2]
CHALICE = ROOT / ".chalice"
TEMPLATE = ROOT / "infra" / "template.json"
STAGES = ("dev", "test", "prod")
WS_FUNCTIONS = ("websocket_connect", "websocket_message", "websocket_disconnect")
DAY_MS = 86_400_000

# The Lambda runtime writes logs with the role; no boto3 call of ours does.
LOG_ACTIONS = {"logs:CreateLogGroup", "logs:CreateLogStream", "logs:PutLogEvents"}
TRANSACT_ACTIONS = {
    "Put": "dynamodb:PutItem",
    "Update": "dynamodb:UpdateItem",
    "Delete": "dynamodb:DeleteItem",
    "ConditionCheck": "dynamodb:ConditionCheckItem",
}


def iam_actions(service: str, operation: str, params: dict[str, Any]) -> set[str]:
    """The IAM actions one API call needs (service authorization reference)."""
    if service == "dynamodb" and operation == "TransactWriteItems":
        return {TRANSACT_ACTIONS[kind] for item in params["TransactItems"] for kind in item}
    if service == "execute-api":  # the management API of a WebSocket API: one action
        return {"execute-api:ManageConnections"}
    if service == "s3" and operation == "HeadObject":
        return {"s3:GetObject"}
    if service == "s3" and operation == "PutObject" and params.get("Tagging"):
        return {"s3:PutObject", "s3:PutObjectTagging"}  # x-amz-tagging needs both
    return {f"{service}:{operation}"}


@dataclass
class Recorder:
    """Collects (service, operation, actions) of every boto3 call made while active."""

    active: bool = False
    calls: list[tuple[str, str]] = field(default_factory=list)
    actions: set[str] = field(default_factory=set)

    def __call__(self, params: dict[str, Any], model: Any, **_: Any) -> None:
        if not self.active:
            return
        service = model.service_model.endpoint_prefix
        self.calls.append((service, model.name))
        self.actions |= iam_actions(service, model.name, params)


@pytest.fixture
def recorder(client: Any, monkeypatch: pytest.MonkeyPatch) -> Iterator[Recorder]:
    """A recorder on boto3's default session; cached clients are rebuilt to carry it.

    Live notifications go to moto's management API, so their calls are recorded too.
    """
    import boto3

    from chalicelib.store import live_rows
    from chalicelib.store.aws import reset_clients

    rec = Recorder()
    session = boto3._get_default_session()
    session.events.register("before-parameter-build", rec)
    monkeypatch.setenv("LIVE_MANAGEMENT_URL", MANAGEMENT_URL)
    reset_clients()
    live_rows._MANAGEMENT.clear()
    try:
        yield rec
    finally:
        session.events.unregister("before-parameter-build", rec)
        reset_clients()
        live_rows._MANAGEMENT.clear()


# --- the flow -------------------------------------------------------------------------


@dataclass
class Flow:
    """What a drive through every route touched, and the secret values it sent or got."""

    routes: set[tuple[str, str]] = field(default_factory=set)
    secrets: dict[str, str] = field(default_factory=dict)


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _ok(flow: Flow, dev: Device, method: str, route: str, path: str, body: Any = None) -> Any:
    flow.routes.add((method, route))
    r = dev.call(method, path, body)
    assert 200 <= r.status < 300, (method, path, r.status, r.body)
    return r


def drive_every_route(device: Device, recorder: Recorder | None = None) -> Flow:
    """Sign in, register, push, pull, status, devices, attachments, premium, rotate, logout."""
    from chalicelib.premium import promo
    from chalicelib.settings import get_settings
    from chalicelib.store.aws import client as aws_client
    from chalicelib.store.table import Table

    flow = Flow()
    dev = device
    # meta
    _ok(flow, dev, "GET", "/api/health", "/api/health")
    _ok(flow, dev, "GET", "/api/openapi.json", "/api/openapi.json")
    # identity: challenge + session (Device.sign_in does both)
    nonce = dev.challenge()
    body = dev.session_body(nonce, deviceName="Laptop")
    flow.routes |= {("POST", "/api/auth/challenge"), ("POST", "/api/auth/session")}
    r = dev.caller.call("POST", "/api/auth/session", body)
    assert r.status == 200, r.body
    dev.token = r.body["token"]
    flow.secrets |= {"token": dev.token, "signature": body["signature"], "nonce": nonce}
    # vault
    salt = "c0ffee" * 6
    verifier = _b64url(b"verifier-ciphertext-only-the-password-opens" * 2)
    flow.secrets |= {"salt": salt, "verifier": verifier}
    flow.routes.add(("POST", "/api/vault/register"))
    r = dev.register(salt=salt, verifier=verifier, publicKeys={"sign": "pk-material"})
    assert r.status == 201, r.body
    _ok(flow, dev, "GET", "/api/vault/bootstrap", f"/api/vault/bootstrap?keyDid={dev.key_did}")
    _ok(flow, dev, "GET", "/api/salt", f"/api/salt?keyDid={dev.key_did}")
    # live: a ticket, and a connection open through the WebSocket API's own Lambda (its
    # calls are its own policy's), so every change below fans out through the management API
    r = _ok(flow, dev, "POST", "/api/live/ticket", "/api/live/ticket")
    flow.secrets["live_ticket"] = r.body["ticket"]
    if recorder is not None:
        recorder.active = False
    live_connect(r.body["ticket"], "conn-flow")
    if recorder is not None:
        recorder.active = True
    # sync: a push, a conflicting push, a tombstone, pull, status
    ciphertext = _b64url(b"\x8a\x01secret item ciphertext\xff" * 3)
    flow.secrets["ciphertext"] = ciphertext
    items = [
        {"id": "item-1", "baseVersion": 0, "deleted": False, "ciphertext": ciphertext},
        {"id": "item-2", "baseVersion": 0, "deleted": False, "ciphertext": ciphertext},
    ]
    _ok(flow, dev, "POST", "/api/sync/push", "/api/sync/push", {"batchId": "b1", "items": items})
    stale = {"id": "item-1", "baseVersion": 0, "deleted": False, "ciphertext": ciphertext}
    tomb = {"id": "item-2", "baseVersion": 2, "deleted": True}
    r = _ok(
        flow,
        dev,
        "POST",
        "/api/sync/push",
        "/api/sync/push",
        {"batchId": "b2", "items": [stale, tomb]},
    )
    assert [x["status"] for x in r.body["results"]] == ["conflict", "accepted"]
    _ok(flow, dev, "GET", "/api/sync/pull", "/api/sync/pull?since=0")
    _ok(flow, dev, "GET", "/api/sync/status", "/api/sync/status")
    # devices: a second replica, rename, list, revoke
    other = Device(dev.caller, dev.seed, "replica-b")
    other.sign_in("Phone")
    _ok(flow, dev, "GET", "/api/devices", "/api/devices")
    _ok(
        flow, dev, "PATCH", "/api/devices/{replicaId}", "/api/devices/replica-b", {"name": "Tablet"}
    )
    _ok(flow, dev, "POST", "/api/devices/{replicaId}/revoke", "/api/devices/replica-b/revoke")
    # attachments: upload grant, the client's PUT, commit, list, download, delete
    blob = b"attachment ciphertext" * 10
    sha = _b64url(hashlib.sha256(blob).digest())
    r = _ok(
        flow,
        dev,
        "POST",
        "/api/attachments/{id}/upload",
        "/api/attachments/att-1/upload",
        {"size": len(blob), "sha256": sha},
    )
    flow.secrets["upload_url"] = r.body["url"]
    if recorder is not None:
        recorder.active = False  # the client's own PUT is not the Lambda's call
    aws_client("s3").put_object(
        Bucket=get_settings().bucket_name,
        Key=_object_key(r.body["url"]),
        Body=blob,
        ContentType=r.body["headers"]["Content-Type"],
        ChecksumSHA256=r.body["headers"]["x-amz-checksum-sha256"],
        Tagging=r.body["headers"]["x-amz-tagging"],
    )
    if recorder is not None:
        recorder.active = True
    _ok(flow, dev, "POST", "/api/attachments/{id}/commit", "/api/attachments/att-1/commit")
    _ok(flow, dev, "GET", "/api/attachments", "/api/attachments")
    r = _ok(flow, dev, "GET", "/api/attachments/{id}/download", "/api/attachments/att-1/download")
    flow.secrets["download_url"] = r.body["url"]
    _ok(flow, dev, "DELETE", "/api/attachments/{id}", "/api/attachments/att-1")
    # premium: status, checkout, a promo code, a signed webhook
    _ok(flow, dev, "GET", "/api/premium", "/api/premium")
    _ok(flow, dev, "POST", "/api/premium/checkout", "/api/premium/checkout", {})
    if recorder is not None:
        recorder.active = False  # codes are created by the operator command, not the Lambda
    (code,) = promo.create_codes(Table(), duration_days=30, max_redemptions=2)
    if recorder is not None:
        recorder.active = True
    flow.secrets["promo_code"] = code
    _ok(flow, dev, "POST", "/api/premium/redeem", "/api/premium/redeem", {"code": code})
    event = {
        "meta": {"event_name": "subscription_created", "custom_data": {"key_did": dev.key_did}},
        "data": {
            "type": "subscriptions",
            "id": "sub-1",
            "attributes": {
                "status": "active",
                "renews_at": "2099-01-01T00:00:00.000000Z",
                "ends_at": None,
                "updated_at": "2030-01-01T00:00:00.000000Z",
            },
        },
    }
    raw = json.dumps(event).encode()
    signature = hmac.new(b"whsec-test", raw, hashlib.sha256).hexdigest()
    flow.secrets["webhook_signature"] = signature
    flow.routes.add(("POST", "/api/premium/webhook"))
    r = dev.caller.call("POST", "/api/premium/webhook", raw=raw, headers={"X-Signature": signature})
    assert r.status == 200, r.body
    # rotate onto a new key, then log out
    rotate = dev.rotate_body(seed_for(42))
    flow.secrets["rotate_signature"] = rotate["signature"]
    _ok(flow, dev, "POST", "/api/vault/rotate", "/api/vault/rotate", rotate)
    dev.seed = seed_for(42)
    dev.sign_in()
    flow.secrets["token2"] = dev.token or ""
    _ok(flow, dev, "DELETE", "/api/auth/session", "/api/auth/session")
    return flow


MANAGEMENT_URL = "https://abc123.execute-api.us-east-1.amazonaws.com/test"


def ws_event(route_key: str, connection_id: str, **extra: Any) -> dict[str, Any]:
    """An API Gateway WebSocket event as Lambda receives it."""
    return {
        "requestContext": {
            "routeKey": route_key,
            "connectionId": connection_id,
            "apiId": "abc123",
            "stage": "test",
            "domainName": "abc123.execute-api.us-east-1.amazonaws.com",
        },
        **extra,
    }


def live_connect(ticket: str, connection_id: str) -> None:
    import app as app_module

    event = ws_event("$connect", connection_id, queryStringParameters={"ticket": ticket})
    assert app_module.ws_connect(event, None)["statusCode"] == 200


def _object_key(url: str) -> str:
    """The object key of a path-style presigned URL (/bucket/key)."""
    from urllib.parse import unquote, urlsplit

    path = urlsplit(url).path.lstrip("/")
    return unquote(path.split("/", 1)[1])


SCHEDULED_EVENT = {
    "version": "0",
    "id": "event-1",
    "detail-type": "Scheduled Event",
    "source": "aws.events",
    "account": "123456789012",
    "time": "2030-01-01T00:00:00Z",
    "region": "us-east-1",
    "resources": [],
    "detail": {},
}


def run_purge(device: Device, clock: Any) -> None:
    """Old tombstones for the daily job to remove."""
    items = [{"id": "p1", "baseVersion": 0, "deleted": False, "ciphertext": _b64url(b"x")}]
    assert device.call("POST", "/api/sync/push", {"batchId": "p1", "items": items}).status == 200
    tomb = [{"id": "p1", "baseVersion": 1, "deleted": True}]
    assert device.call("POST", "/api/sync/push", {"batchId": "p2", "items": tomb}).status == 200
    clock(200 * DAY_MS)


# --- static scan ----------------------------------------------------------------------


def static_operations() -> set[tuple[str, str]]:
    """(service, Operation) of every boto3 client call spelled in chalicelib/ (admin aside)."""
    import boto3

    mapping: dict[str, set[tuple[str, str]]] = {}
    for service in ("dynamodb", "s3", "apigatewaymanagementapi"):
        c = boto3.client(service, region_name="us-east-1", endpoint_url="https://x.test")
        for method, op in c.meta.method_to_api_mapping.items():
            mapping.setdefault(method, set()).add((c.meta.service_model.endpoint_prefix, op))
    found: set[tuple[str, str]] = set()
    for path in (ROOT / "chalicelib").rglob("*.py"):
        if "admin" in path.relative_to(ROOT).parts or path.name == "bulk.py":
            continue  # the operator's tool runs with the operator's credentials
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            if not isinstance(node, ast.Call) or not isinstance(node.func, ast.Attribute):
                continue
            name = node.func.attr
            if name == "generate_presigned_url" and node.args:
                arg = node.args[0]
                if isinstance(arg, ast.Constant) and isinstance(arg.value, str):
                    found |= mapping.get(arg.value, set())
            elif name in mapping and _is_client_call(node.func):
                found |= mapping[name]
    return found


def _is_client_call(func: ast.Attribute) -> bool:
    """`self.ddb.x(...)`, `self.s3.x(...)`, `client("s3").x(...)`: a boto3 client call."""
    target = func.value
    if isinstance(target, ast.Attribute):
        return target.attr in {"ddb", "s3", "dynamodb", "_ddb", "_s3"}
    if isinstance(target, ast.Name):
        return target.id in {"ddb", "s3", "dynamodb", "management"}
    return isinstance(target, ast.Call)


def static_transact_actions() -> set[str]:
    """Transaction action kinds the code builds ({"Put": ...}, {"ConditionCheck": ...})."""
    kinds = "|".join(TRANSACT_ACTIONS)
    pattern = re.compile(r"""\{\s*["'](""" + kinds + r""")["']\s*:""")
    out: set[str] = set()
    for path in (ROOT / "chalicelib").rglob("*.py"):
        if "admin" in path.relative_to(ROOT).parts:
            continue
        out |= {TRANSACT_ACTIONS[m] for m in pattern.findall(path.read_text())}
    return out


# --- policies -------------------------------------------------------------------------


def policy(name: str) -> dict[str, Any]:
    doc: dict[str, Any] = json.loads((CHALICE / name).read_text())
    return doc


def granted(doc: dict[str, Any]) -> set[str]:
    out: set[str] = set()
    for st in doc["Statement"]:
        assert st["Effect"] == "Allow" and "NotAction" not in st and "NotResource" not in st
        actions = st["Action"] if isinstance(st["Action"], list) else [st["Action"]]
        out |= set(actions)
    return out


def resources(doc: dict[str, Any]) -> list[tuple[str, Any]]:
    out = []
    for st in doc["Statement"]:
        res = st["Resource"] if isinstance(st["Resource"], list) else [st["Resource"]]
        actions = st["Action"] if isinstance(st["Action"], list) else [st["Action"]]
        out += [(a, r) for a in actions for r in res]
    return out


def function_policy_files(stage: str) -> dict[str, str]:
    """Policy file per function of a stage: "api" and each lambda_functions entry."""
    config = json.loads((CHALICE / "config.json").read_text())
    st = config["stages"][stage]
    files = {"api": st["iam_policy_file"]}
    for fn, cfg in st.get("lambda_functions", {}).items():
        files[fn] = cfg["iam_policy_file"]
    return files


def test_policy_files_are_generated_from_one_source() -> None:
    from infra import policies

    # GIVEN the six policy files Chalice reads, WHEN compared with their one source,
    # THEN none differs (edit infra/policies.py and run `python -m infra.policies`)
    assert {p.name for p in policies.rendered()} == {p.name for p in CHALICE.glob("policy-*.json")}
    assert policies.main(["--check"]) == 0


def test_config_keeps_policies_reviewed() -> None:
    config = json.loads((CHALICE / "config.json").read_text())
    assert config["autogen_policy"] is False
    for stage in STAGES:
        assert set(function_policy_files(stage)) == {"api", "purge_tombstones", *WS_FUNCTIONS}


@pytest.mark.parametrize("stage", STAGES)
def test_policy_resources_are_this_stages_only(stage: str) -> None:
    name = f"nt2-sync-{stage}"
    allowed = {
        "dynamodb": {
            f"arn:aws:dynamodb:*:*:table/{name}",
            f"arn:aws:dynamodb:*:*:table/{name}/index/byVersion",
            f"arn:aws:dynamodb:*:*:table/{name}/index/byPurge",
        },
        "s3": {f"arn:aws:s3:::{name}-attachments/*"},
        "execute-api": {
            f"arn:aws:execute-api:*:*:*/{stage}/POST/@connections/*",
            f"arn:aws:execute-api:*:*:*/{stage}/DELETE/@connections/*",
        },
    }
    for fn, file in function_policy_files(stage).items():
        lambda_name = f"{name}" if fn == "api" else f"{name}-{fn}"
        allowed["logs"] = {
            f"arn:aws:logs:*:*:log-group:/aws/lambda/{lambda_name}",
            f"arn:aws:logs:*:*:log-group:/aws/lambda/{lambda_name}:*",
        }
        for action, res in resources(policy(file)):
            assert "*" not in action, action
            assert res in allowed[action.split(":")[0]], (file, action, res)


def test_api_policy_is_exactly_what_every_route_calls(recorder: Recorder, device: Device) -> None:
    from chalicelib.routes.http import REGISTRY

    # GIVEN a recorder on every boto3 call
    # WHEN a client drives every registered route
    recorder.active = True
    flow = drive_every_route(device, recorder)
    recorder.active = False
    # THEN the flow did reach every route there is (a new route must join the flow)
    registered = {(op.method, op.path) for op in REGISTRY.operations}
    assert registered - flow.routes == set()
    # AND each stage's API policy grants exactly the recorded actions (plus its logs)
    for stage in STAGES:
        doc = policy(function_policy_files(stage)["api"])
        assert granted(doc) - LOG_ACTIONS == recorder.actions, stage
        assert granted(doc) & LOG_ACTIONS == LOG_ACTIONS
    # AND the packaged stack's role (infra/template.json) grants the same actions
    role = json.loads(TEMPLATE.read_text())["Resources"]["ApiHandlerRole"]["Properties"]
    doc = role["Policies"][0]["PolicyDocument"]
    assert granted(doc) - LOG_ACTIONS == recorder.actions


def test_purge_policy_is_exactly_what_the_daily_job_calls(
    recorder: Recorder, registered: Device, clock: Any
) -> None:
    from chalicelib.routes import maintenance

    # GIVEN old tombstones
    run_purge(registered, clock)
    # WHEN the scheduled job runs
    recorder.active = True
    maintenance.purge_tombstones(SCHEDULED_EVENT, None)
    recorder.active = False
    # THEN it removed something, and its policy grants exactly what it called
    assert ("dynamodb", "TransactWriteItems") in recorder.calls
    for stage in STAGES:
        doc = policy(function_policy_files(stage)["purge_tombstones"])
        assert granted(doc) - LOG_ACTIONS == recorder.actions, stage
    role = json.loads(TEMPLATE.read_text())["Resources"]["PurgeTombstonesRole"]["Properties"]
    assert granted(role["Policies"][0]["PolicyDocument"]) - LOG_ACTIONS == recorder.actions


def test_static_scan_finds_nothing_the_policies_miss() -> None:
    # GIVEN every client call spelled in the server code
    ops = static_operations()
    assert ("dynamodb", "TransactWriteItems") in ops and ("s3", "PutObject") in ops
    needed: set[str] = set()
    for service, op in ops:
        if op == "TransactWriteItems":
            needed |= static_transact_actions()
        else:
            needed |= iam_actions(service, op, {"Tagging": "x"} if op == "PutObject" else {})
    # THEN some function of each stage is granted each of them, and nothing else
    for stage in STAGES:
        union: set[str] = set()
        for file in function_policy_files(stage).values():
            union |= granted(policy(file)) - LOG_ACTIONS
        assert needed - union == set(), stage
        assert union - needed == set(), stage


def test_websocket_policies_are_exactly_what_each_handler_calls(
    recorder: Recorder, registered: Device
) -> None:
    import app as app_module

    # GIVEN a ticket
    ticket = registered.call("POST", "/api/live/ticket").body["ticket"]
    handlers = {
        "websocket_connect": lambda: live_connect(ticket, "conn-1"),
        "websocket_message": lambda: app_module.ws_message(
            ws_event("$default", "conn-1", body='{"type":"ping"}'), None
        ),
        "websocket_disconnect": lambda: app_module.ws_disconnect(
            ws_event("$disconnect", "conn-1"), None
        ),
    }
    for function, run in handlers.items():
        # WHEN each handler runs on its own
        recorder.actions = set()
        recorder.active = True
        run()
        recorder.active = False
        # THEN its policy grants exactly what it called
        assert recorder.actions, function
        for stage in STAGES:
            doc = policy(function_policy_files(stage)[function])
            assert granted(doc) - LOG_ACTIONS == recorder.actions, (stage, function)
