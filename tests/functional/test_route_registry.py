"""Every route does what its declaration (and so the OpenAPI document) says.

The operations come from the registry, never a hand list: a route added tomorrow is driven by
`drive_every_route` (test_iam_policy insists on that), recorded here at the decorator, and held
to its declared auth and response model the same day.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

import pytest
from chalice import Blueprint, Chalice, Response
from chalice.app import Request as ChaliceRequest
from chalice.test import Client

from chalicelib.errors import ErrorCode
from chalicelib.identity import Principal
from chalicelib.routes.operations import REGISTRY, Operation, Registry, operation
from chalicelib.shared.models import ErrorBody
from chalicelib.shared.models.identity import Health
from tests.functional.test_iam_policy import drive_every_route
from tests.helpers import Caller, Device


@dataclass(frozen=True)
class Seen:
    """One request an operation answered, as the client sent it, and the answer."""

    op: Operation
    method: str
    path: str
    headers: dict[str, str]
    body: bytes
    status: int
    response: str

    def replay(self, caller: Caller, token: str | None) -> Any:
        headers = {k: v for k, v in self.headers.items() if k.lower() != "authorization"}
        return caller.call(self.method, self.path, token=token, headers=headers, raw=self.body)


def _seen(op: Operation, request: ChaliceRequest, resp: Response) -> Seen:
    path = op.path.format(**(request.uri_params or {}))
    query: Any = request.query_params or {}
    if query:
        path += "?" + urlencode({name: query[name] for name in query})
    raw = request.raw_body or b""
    body = resp.body if isinstance(resp.body, str) else resp.body.decode()
    return Seen(
        op,
        request.method,
        path,
        dict(request.headers.items()),
        raw.encode() if isinstance(raw, str) else raw,
        resp.status_code,
        body,
    )


@pytest.fixture
def seen(device: Device, monkeypatch: pytest.MonkeyPatch) -> Iterator[list[Seen]]:
    """Every request of a drive through every route, recorded by the operation decorator."""
    records: list[Seen] = []
    monkeypatch.setattr(REGISTRY, "observer", lambda *a: records.append(_seen(*a)))
    drive_every_route(device)
    monkeypatch.setattr(REGISTRY, "observer", None)
    yield records


def _first_success(seen: list[Seen]) -> dict[Operation, Seen]:
    first: dict[Operation, Seen] = {}
    for s in seen:
        if 200 <= s.status < 300:
            first.setdefault(s.op, s)
    return first


def _id(op: Operation) -> str:
    return f"{op.method} {op.path}"


def test_every_operation_answers_with_its_declared_model(seen: list[Seen]) -> None:
    # GIVEN every request a drive through every route made (recorded at the decorator)
    ok = [s for s in seen if 200 <= s.status < 300]
    # THEN every registered operation answered at least once with success
    answered = {s.op for s in ok}
    assert [_id(op) for op in REGISTRY.operations if op not in answered] == []
    # AND every success is the declared status and the declared model, exactly (extra="forbid")
    for s in ok:
        assert s.status in ({s.op.status, 200} if s.op.status == 201 else {s.op.status}), _id(s.op)
        if s.op.response is not None:
            s.op.response.model_validate_json(s.response)
        elif s.op.status == 204:
            assert s.response == "", _id(s.op)
        else:  # only the OpenAPI document itself has no model
            assert isinstance(json.loads(s.response), dict), _id(s.op)


def test_every_authenticated_operation_refuses_no_token_and_a_garbage_token(
    seen: list[Seen], caller: Caller
) -> None:
    # GIVEN a request each operation declared with auth accepted during the drive
    first = _first_success(seen)
    guarded = [op for op in REGISTRY.operations if op.auth]
    assert guarded and all(op in first for op in guarded)
    assert not any(op.auth for op in REGISTRY.operations if op.path == "/api/health")
    for op in guarded:
        for token in (None, "garbage-not-a-session-token"):
            # WHEN it is sent again, the same bytes, without a token or with a garbage one
            r = first[op].replay(caller, token)
            # THEN it is refused with the protocol's error shape, before the view runs
            assert r.status == 401, (_id(op), token, r.status, r.body)
            assert ErrorBody.model_validate(r.body).code == ErrorCode.UNAUTHORIZED, _id(op)
            assert set(r.body) == {"code", "message"}


# --- by construction: what a throwaway operation gets ---------------------------------------


@dataclass
class Throwaway:
    registry: Registry
    client: Any
    calls: list[Principal]


@pytest.fixture
def throwaway(aws: None) -> Iterator[Throwaway]:
    """An operation with auth=True on its own Blueprint, registry and app."""
    registry = Registry()
    bp = Blueprint("throwaway")
    calls: list[Principal] = []

    @operation(bp, "/api/throwaway", "GET", summary="t", tag="t", registry=registry)
    def view(caller: Principal) -> None:
        calls.append(caller)

    app = Chalice(app_name="throwaway")
    app.register_blueprint(bp)
    with Client(app, stage_name="test") as client:
        yield Throwaway(registry, client, calls)


def test_an_operation_with_auth_authenticates_before_its_view_runs(
    throwaway: Throwaway, device: Device
) -> None:
    # GIVEN a throwaway operation declared with auth, registered nowhere else
    assert [op.auth for op in throwaway.registry.operations] == [True]
    assert "/api/throwaway" not in {op.path for op in REGISTRY.operations}
    http = throwaway.client.http
    # WHEN it is called without a token, or with a garbage one
    for headers in ({}, {"Authorization": "Bearer garbage"}, {"Authorization": "Basic x"}):
        r = http.request("GET", "/api/throwaway", headers=headers, body=b"")
        # THEN the decorator answers 401 and the view never runs
        assert r.status_code == 401
        assert json.loads(r.body)["code"] == ErrorCode.UNAUTHORIZED
    assert throwaway.calls == []
    # AND with a real session the view runs with the authenticated caller
    token = device.sign_in("Laptop")
    r = http.request("GET", "/api/throwaway", headers={"Authorization": f"Bearer {token}"})
    assert r.status_code == 200
    assert [c.key_did for c in throwaway.calls] == [device.key_did]


def test_a_declaration_its_view_does_not_match_fails_at_import() -> None:
    bp, registry = Blueprint("throwaway"), Registry()
    # a view with auth that does not take the caller could not use it: refused
    with pytest.raises(TypeError, match="caller"):

        @operation(bp, "/api/t1", "GET", summary="t", tag="t", registry=registry)
        def no_caller() -> None: ...

    # a view that asks for a body its operation does not declare: refused
    with pytest.raises(TypeError, match="body"):

        @operation(bp, "/api/t2", "GET", summary="t", tag="t", auth=False, registry=registry)
        def stray_body(body: Any) -> None: ...

    # an error code that is not an ErrorCode member (a typo, a bare string): refused
    with pytest.raises(TypeError, match="ErrorCode"):
        operation(
            bp, "/api/t3", "GET", summary="t", tag="t", errors=("unauthorised",), registry=registry
        )  # type: ignore[arg-type]
    # a path parameter without a model to validate it: refused
    with pytest.raises(TypeError, match="params"):
        operation(bp, "/api/t4/{id}", "GET", summary="t", tag="t", registry=registry)
    assert not hasattr(ErrorCode, "UNAUTHORISED")
    assert registry.operations == []  # nothing refused was registered


@pytest.mark.parametrize(("validate", "status"), [("true", 500), ("false", 200)])
def test_a_response_that_breaks_its_model_is_caught_when_validation_is_on(
    aws: None, monkeypatch: pytest.MonkeyPatch, validate: str, status: int
) -> None:
    # GIVEN a view that returns a dict its declared model (Health) does not accept
    bp = Blueprint("throwaway")

    @operation(
        bp, "/api/t", "GET", summary="t", tag="t", response=Health, auth=False, registry=Registry()
    )
    def view() -> dict[str, Any]:
        return {"status": "ok", "audience": "x", "protocol": "1.2", "extra": True}

    app = Chalice(app_name="throwaway")
    app.register_blueprint(bp)
    monkeypatch.setenv("VALIDATE_RESPONSES", validate)
    # WHEN it is called
    with Client(app, stage_name="test") as client:
        r = client.http.request("GET", "/api/t")
    # THEN with validation on (the test suite) it is a 500, never a body OpenAPI does not promise
    assert r.status_code == status
    if status == 500:
        assert json.loads(r.body)["code"] == ErrorCode.INTERNAL_ERROR
