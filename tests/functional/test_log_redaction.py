"""Logs: one JSON line per request, EMF metrics, and never a secret in anything logged."""

from __future__ import annotations

import json
from typing import Any

import pytest

from chalicelib.observability import key_hash
from tests.functional.test_iam_policy import drive_every_route
from tests.helpers import Caller, Device, seed_for


def _captured(capsys: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture) -> str:
    out = capsys.readouterr()
    records = "\n".join(
        f"{r.name} {r.getMessage()} {r.exc_text or ''} {vars(r)}" for r in caplog.records
    )
    return "\n".join([out.out, out.err, caplog.text, records])


def _json_lines(text: str) -> list[dict[str, Any]]:
    docs = []
    for line in text.splitlines():
        line = line.strip()
        if line.startswith("{"):
            try:
                docs.append(json.loads(line))
            except ValueError:
                continue
    return docs


@pytest.fixture
def counted(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, str]]:
    """Every request the test client sends, in order."""
    sent: list[tuple[str, str]] = []
    original = Caller.call

    def call(self: Caller, method: str, path: str, *args: Any, **kwargs: Any) -> Any:
        sent.append((method, path))
        return original(self, method, path, *args, **kwargs)

    monkeypatch.setattr(Caller, "call", call)
    return sent


def test_full_flow_logs_one_line_per_request_and_no_secret(
    device: Device,
    counted: list[tuple[str, str]],
    capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    # GIVEN everything logged at any level captured
    caplog.set_level("DEBUG")
    capsys.readouterr()
    first_key = device.key_did  # the flow ends by rotating to another key
    # WHEN a client signs in, registers with a verifier, pushes ciphertext, pulls, and uses
    # every other route (attachments, premium, webhook, rotate, logout)
    flow = drive_every_route(device)
    text = _captured(capsys, caplog)
    # THEN no token, signature, nonce, salt, verifier, ciphertext, code or URL appears
    assert {"token", "signature", "salt", "verifier", "ciphertext"} <= set(flow.secrets)
    for name, value in flow.secrets.items():
        assert value and value not in text, f"{name} leaked into the logs"
    # AND each request produced exactly one JSON request line, in order
    lines = [d for d in _json_lines(text) if d.get("message") == "request"]
    assert len(lines) == len(counted)
    for line, (method, path) in zip(lines, counted, strict=True):
        assert line["method"] == method
        assert path.split("?")[0].startswith(line["route"].split("{")[0].rstrip("/"))
        assert isinstance(line["status"], int) and line["latencyMs"] >= 0
        assert "did:key:" not in json.dumps(line)
    # AND an authenticated request names its vault's key by hash only
    pushes = [d for d in lines if d["route"] == "/api/sync/push"]
    assert {d["keyHash"] for d in pushes} == {key_hash(first_key)}
    assert [(d["items"], d["conflicts"]) for d in pushes] == [(2, 0), (2, 1)]
    # AND the push/pull metrics were written in CloudWatch embedded metric format
    emf = [d for d in _json_lines(text) if "_aws" in d]
    assert all(d["_aws"]["CloudWatchMetrics"][0]["Namespace"] == "NT2Sync" for d in emf)
    total = {name: 0.0 for name in ("Pushes", "PushedItems", "Conflicts", "Pulls")}
    for doc in emf:
        for name in total:
            total[name] += sum(doc.get(name, []))
    assert total == {"Pushes": 2, "PushedItems": 4, "Conflicts": 1, "Pulls": 1}


def test_premium_required_is_counted(
    caller: Caller,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    # GIVEN Premium required and a vault without it
    monkeypatch.setenv("PREMIUM_SYNC_REQUIRED", "true")
    dev = Device(caller, seed_for(7), "replica-x")
    dev.sign_in()
    capsys.readouterr()
    # WHEN it tries to register
    assert dev.register().status == 402
    # THEN the 402 is a metric
    (emf,) = [d for d in _json_lines(capsys.readouterr().out) if "_aws" in d]
    assert emf["PremiumRequired"] == [1.0]
