"""Server benchmark: DynamoDB requests per item pushed/pulled, delta pull cost, peak RSS.

In-process: moto (with our transaction patch) + chalice.test.Client, requests counted with a
botocore `before-call` hook. Request counts are deterministic and are what costs money.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import resource
import secrets
import subprocess
import sys
import time
from collections import Counter
from typing import Any

ITEMS = int(os.environ.get("BENCH_ITEMS", "10000"))
BATCH = 500
ITEM_BYTES = 1024


def _env() -> None:
    os.environ.update(
        {
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_DEFAULT_REGION": "us-east-1",
            "AWS_REGION": "us-east-1",
            "TABLE_NAME": "nt2-bench",
            "BUCKET_NAME": "nt2-bench-attachments",
            "PUBLIC_API_URL": "https://sync.example.test",
            "PREMIUM_SYNC_REQUIRED": "false",
        }
    )
    os.environ.pop("AWS_ENDPOINT_URL", None)


class Counting:
    """Counts DynamoDB requests (by operation) made through boto3's default session."""

    def __init__(self) -> None:
        import boto3

        self.calls: Counter[str] = Counter()
        boto3.setup_default_session()
        assert boto3.DEFAULT_SESSION is not None
        boto3.DEFAULT_SESSION.events.register("before-call.dynamodb", self._count)

    def _count(self, model: Any, **_: Any) -> None:
        self.calls[model.name] += 1

    def total(self) -> int:
        return sum(self.calls.values())

    def reset(self) -> Counter[str]:
        snapshot = Counter(self.calls)
        self.calls.clear()
        return snapshot


def _device(client: Any) -> Any:
    from tests.helpers import Caller, Device

    dev = Device(Caller(client), secrets.token_bytes(32), "bench")
    dev.sign_in("bench")
    assert dev.register().status == 201
    return dev


def _payload(n: int) -> str:
    from chalicelib.shared.encoding import b64url_encode

    return b64url_encode(os.urandom(ITEM_BYTES) if n >= 0 else b"")


def run() -> dict[str, Any]:
    _env()
    logging.disable(logging.INFO)  # one JSON line per request is right in Lambda, noise here
    from chalice.test import Client
    from moto import mock_aws

    import app as app_module
    from chalicelib.store.aws import reset_clients
    from devserver import moto_fidelity
    from devserver.backend import ensure_resources

    moto_fidelity.apply()
    out: dict[str, Any] = {}
    with mock_aws(), Client(app_module.app, stage_name="test") as client:
        reset_clients()
        counter = Counting()  # after mock_aws started: moto resets boto3's default session
        ensure_resources()
        dev = _device(client)
        counter.reset()
        started = time.perf_counter()
        for b in range(ITEMS // BATCH):
            items = [
                {
                    "id": f"item-{b * BATCH + i:06d}",
                    "baseVersion": 0,
                    "deleted": False,
                    "ciphertext": _payload(i),
                }
                for i in range(BATCH)
            ]
            r = dev.call("POST", "/api/sync/push", {"batchId": f"b{b}", "items": items})
            assert r.status == 200, r.body
        out["push_seconds"] = round(time.perf_counter() - started, 2)
        push_calls = counter.reset()
        out["push_requests"] = sum(push_calls.values())
        out["push_requests_per_1000"] = round(out["push_requests"] * 1000 / ITEMS, 1)
        out["push_by_operation"] = dict(push_calls)

        started = time.perf_counter()
        since, pulled = 0, 0
        while True:
            r = dev.call("GET", f"/api/sync/pull?since={since}&limit=1000")
            assert r.status == 200, r.body
            pulled += len(r.body["items"])
            since = r.body["watermark"]
            if not r.body["hasMore"]:
                break
        assert pulled == ITEMS
        out["pull_seconds"] = round(time.perf_counter() - started, 2)
        pull_calls = counter.reset()
        out["pull_requests"] = sum(pull_calls.values())
        out["pull_requests_per_1000"] = round(out["pull_requests"] * 1000 / ITEMS, 1)
        out["pull_by_operation"] = dict(pull_calls)

        changed = [
            {
                "id": f"item-{i:06d}",
                "baseVersion": i + 1,
                "deleted": False,
                "ciphertext": _payload(i),
            }
            for i in range(10)
        ]
        r = dev.call("POST", "/api/sync/push", {"batchId": "delta", "items": changed})
        assert all(x["status"] == "accepted" for x in r.body["results"]), r.body
        out["update_10_requests"] = counter.total()
        counter.reset()
        started = time.perf_counter()
        r = dev.call("GET", f"/api/sync/pull?since={since}&limit=1000")
        assert len(r.body["items"]) == 10
        out["delta_pull_seconds_moto"] = round(time.perf_counter() - started, 3)
        delta = counter.reset()
        out["delta_pull_requests"] = sum(delta.values())
        out["delta_pull_by_operation"] = dict(delta)
    reset_clients()
    out["items"] = ITEMS
    return out


def max_push_rss() -> dict[str, Any]:
    """Peak RSS of one process that serves a maximum-size (≈5 MiB) push, measured apart."""
    code = (
        "import json,resource,bench.server_bench as b;print(json.dumps(b._max_push_in_process()))"
    )
    res = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=os.getcwd()
    )
    return json.loads(res.stdout.strip().splitlines()[-1])


def _max_push_in_process() -> dict[str, Any]:
    _env()
    from chalice.test import Client
    from moto import mock_aws

    import app as app_module
    from chalicelib.shared.encoding import b64url_encode
    from devserver import moto_fidelity
    from devserver.backend import ensure_resources

    moto_fidelity.apply()
    with mock_aws(), Client(app_module.app, stage_name="test") as client:
        ensure_resources()
        dev = _device(client)
        before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        blob = 240 * 1024  # 20 items × 240 KiB ≈ 4.7 MiB decoded, ~6.3 MB of base64 text: cap
        items = [
            {
                "id": f"max-{i}",
                "baseVersion": 0,
                "deleted": False,
                "ciphertext": b64url_encode(os.urandom(blob)),
            }
            for i in range(15)
        ]
        body = json.dumps({"batchId": "max", "items": items})
        assert len(body) <= 5 * 1024 * 1024, len(body)
        r = dev.call("POST", "/api/sync/push", raw=body)
        assert r.status == 200, r.body
        after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return {
        "max_push_body_bytes": len(body),
        "rss_before_mb": round(before / 1024, 1),
        "peak_rss_mb": round(after / 1024, 1),
    }


def unknown_fields_cpu() -> dict[str, Any]:
    """CPU to refuse a 5 MB unauthenticated body of 430 000 unknown fields (v1.2 §1)."""
    from types import SimpleNamespace

    from chalicelib.errors import ApiError
    from chalicelib.routes.http import parse_body
    from chalicelib.shared.models.identity import ChallengeRequest

    fields = ",".join(f'"k{i:06d}":0' for i in range(430_000))
    raw = ('{"keyDid":"did:key:z6Mkx",' + fields + "}").encode()
    request: Any = SimpleNamespace(raw_body=raw)  # parse_body reads only the raw body
    best = float("inf")
    for _ in range(3):
        start = time.process_time()
        try:
            parse_body(request, ChallengeRequest)
        except ApiError:
            pass
        best = min(best, time.process_time() - start)
    return {"unknown_fields_body_bytes": len(raw), "unknown_fields_cpu_ms": round(best * 1000, 1)}


def main() -> dict[str, Any]:
    with open(os.devnull, "w") as sink, contextlib.redirect_stdout(sink):
        figures = run()  # EMF metric lines go to stdout in Lambda; not here
    figures.update(max_push_rss())
    figures.update(unknown_fields_cpu())
    rows = [
        ("items pushed (1 KiB, 500/batch)", figures["items"]),
        ("push: DynamoDB requests", figures["push_requests"]),
        ("push: requests per 1 000 items (target ≤ 25)", figures["push_requests_per_1000"]),
        ("push: wall time s (moto in-process)", figures["push_seconds"]),
        ("pull from 0, limit=1000: requests", figures["pull_requests"]),
        ("pull: requests per 1 000 items (target ≤ 15)", figures["pull_requests_per_1000"]),
        ("pull: wall time s (moto in-process)", figures["pull_seconds"]),
        ("update 10 items: requests", figures["update_10_requests"]),
        ("delta pull of 10: requests (target ≤ 3)", figures["delta_pull_requests"]),
        ("max-size push body bytes", figures["max_push_body_bytes"]),
        ("max-size push: peak RSS MB (target ≤ 200)", figures["peak_rss_mb"]),
        ("430 000 unknown fields: CPU ms to refuse (≤ 200)", figures["unknown_fields_cpu_ms"]),
    ]
    width = max(len(r[0]) for r in rows)
    print("Server benchmark")
    for name, value in rows:
        print(f"  {name:<{width}}  {value}")
    print("  push by operation:", figures["push_by_operation"])
    print("  pull by operation:", figures["pull_by_operation"])
    print("  delta pull by operation:", figures["delta_pull_by_operation"])
    return figures
