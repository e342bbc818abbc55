"""Live notifications (§10) benchmark: latency on the local server, cost per push.

    python -m bench.live_bench      (also part of `make bench`)

- latency: `python -m devserver --in-memory` on a free port; device B holds a WebSocket
  connection, device A makes 100 pushes; for each, the time from A's push response to B's
  `changed` frame (negative: the frame came first, as the fan-out runs before the response
  is sent), and from the start of A's push request to the frame; p50 / p99.
- end to end: B runs `nt2sync sync watch`; A adds an item and syncs; the time until the
  item is in B's vault file; p50.
- cost: in-process (moto + chalice.test.Client): DynamoDB requests and management-API calls
  per push with 0, 1 and 5 open connections of the vault.
"""

from __future__ import annotations

import json
import os
import secrets
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from devserver.ready import wait_healthy

ROOT = Path(__file__).resolve().parent.parent
PUSHES = int(os.environ.get("BENCH_LIVE_PUSHES", "100"))
E2E_ROUNDS = int(os.environ.get("BENCH_LIVE_E2E", "20"))
PASSWORD = "bench-live-password"  # noqa: S105 - a throwaway local vault


def _ms(values: list[float]) -> dict[str, float]:
    ordered = sorted(values)
    p99 = ordered[min(len(ordered) - 1, round(0.99 * (len(ordered) - 1)))]
    return {"p50": round(statistics.median(ordered) * 1000, 1), "p99": round(p99 * 1000, 1)}


@contextmanager
def local_server() -> Iterator[str]:
    """`make serve` on a free port, in memory; its base URL."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    url = f"http://127.0.0.1:{port}"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "LIVE_"))}
    env.update({"PORT": str(port), "PUBLIC_API_URL": url, "PYTHONUNBUFFERED": "1", "WEB_PORT": "0"})
    proc = subprocess.Popen(
        [sys.executable, "-m", "devserver", "--in-memory"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        if not wait_healthy(url, proc):
            raise SystemExit("the local server did not start")
        yield url
    finally:
        proc.terminate()
        proc.wait(30)


def _pair(tmp: Path, url: str) -> tuple[Any, Any]:
    from chalicelib.shared.limits import MIN_KDF_ITERATIONS
    from nt2sync.engine import Client

    a = Client.init(tmp / "a.sqlite3", PASSWORD, iterations=MIN_KDF_ITERATIONS)
    a.enable(url, device_name="bench-a")
    b, _ = Client.join(tmp / "b.sqlite3", url, a.meta.key_did, PASSWORD, device_name="bench-b")
    return a, b


def end_to_end(a: Any, b_path: Path) -> dict[str, float]:
    """item add on A → in B's vault file, B running `nt2sync sync watch`."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("NT2_")}
    env["NT2_PASSWORD"] = PASSWORD
    cmd = [sys.executable, "-m", "nt2sync", "--vault", str(b_path), "sync", "watch", "--json"]
    watch = subprocess.Popen(
        cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True
    )
    try:
        assert watch.stdout is not None
        watch.stdout.readline()  # the start sync: connected next
        time.sleep(1.0)
        reader = sqlite3.connect(f"file:{b_path}?mode=ro", uri=True)
        times: list[float] = []
        for i in range(E2E_ROUNDS):
            started = time.perf_counter()
            item_id = a.add_item(f"e2e-{i}", body="x")
            a.sync_now()
            while not reader.execute("SELECT 1 FROM items WHERE id = ?", (item_id,)).fetchone():
                if time.perf_counter() - started > 10:
                    raise RuntimeError("the item never reached B")
                time.sleep(0.002)
            times.append(time.perf_counter() - started)
        reader.close()
        return {"p50": _ms(times)["p50"], "rounds": E2E_ROUNDS}
    finally:
        watch.terminate()
        watch.wait(15)


def latency(a: Any, b: Any) -> dict[str, Any]:
    """A's push response (and request start) → B's changed frame, PUSHES times."""
    from websockets.sync.client import connect

    from chalicelib.shared.encoding import b64url_encode
    from nt2sync import live

    ticket = live.open_ticket(b)
    frames: list[tuple[float, int]] = []
    with connect(f"{ticket['url']}?ticket={ticket['ticket']}", ping_interval=None) as ws:

        def receive() -> None:
            for raw in ws:
                frame = json.loads(raw)
                if frame.get("type") == "changed":
                    frames.append((time.perf_counter(), int(frame["watermark"])))

        reader = threading.Thread(target=receive, daemon=True)
        reader.start()
        sent: dict[int, tuple[float, float]] = {}
        for i in range(PUSHES):
            item = {
                "id": f"bench-{i}",
                "baseVersion": 0,
                "deleted": False,
                "ciphertext": b64url_encode(secrets.token_bytes(256)),
            }
            started = time.perf_counter()
            result = a.call(lambda api, item=item, i=i: api.push(f"live-{i}", [item]))
            sent[int(result["watermark"])] = (started, time.perf_counter())
            time.sleep(0.01)
        deadline = time.monotonic() + 5
        while len(frames) < PUSHES and time.monotonic() < deadline:
            time.sleep(0.01)
    after_response = [at - sent[w][1] for at, w in frames if w in sent]
    after_request = [at - sent[w][0] for at, w in frames if w in sent]
    return {
        "pushes": PUSHES,
        "frames": len(frames),
        "responseToFrameMs": _ms(after_response),
        "requestToFrameMs": _ms(after_request),
    }


def cost() -> dict[str, Any]:
    """DynamoDB requests and management-API calls per push with 0, 1 and 5 connections."""
    import logging

    from chalice.test import Client
    from moto import mock_aws

    import app as app_module
    from bench.server_bench import Counting, _device, _env
    from chalicelib import live
    from chalicelib.store.aws import reset_clients
    from devserver import moto_fidelity
    from devserver.backend import ensure_resources
    from devserver.live_ws import ws_event

    class Management:
        calls = 0

        def post_to_connection(self, **_: Any) -> None:
            Management.calls += 1

        def delete_connection(self, **_: Any) -> None:
            Management.calls += 1

    _env()
    logging.disable(logging.INFO)
    moto_fidelity.apply()
    out: dict[str, Any] = {}
    with mock_aws(), Client(app_module.app, stage_name="test") as client:
        reset_clients()
        counter = Counting()
        ensure_resources()
        dev = _device(client)
        off = _push_cost(dev, counter, "off")  # no management endpoint: no fan-out at all
        live.management_override = Management()
        try:
            open_now = 0
            for want in (0, 1, 5):
                while open_now < want:
                    t = dev.call("POST", "/api/live/ticket").body["ticket"]
                    event = ws_event(
                        "$connect", f"c{open_now}", "x", queryStringParameters={"ticket": t}
                    )
                    assert app_module.ws_connect(event, None)["statusCode"] == 200
                    open_now += 1
                Management.calls = 0
                out[f"{want}conn"] = _push_cost(dev, counter, str(want))
                out[f"{want}conn"]["managementApi"] = Management.calls
        finally:
            live.management_override = None
    out["off"] = off
    for n in (0, 1, 5):
        out[f"added{n}"] = {
            "dynamodb": out[f"{n}conn"]["dynamodb"] - off["dynamodb"],
            "managementApi": out[f"{n}conn"]["managementApi"],
        }
    return out


def _push_cost(dev: Any, counter: Any, name: str) -> dict[str, Any]:
    """DynamoDB requests of one accepted one-item push."""
    counter.reset()
    item = {"id": f"cost-{name}", "baseVersion": 0, "deleted": False, "ciphertext": "eA"}
    r = dev.call("POST", "/api/sync/push", {"batchId": f"c-{name}", "items": [item]})
    assert r.status == 200, r.body
    calls = counter.reset()
    return {"dynamodb": sum(calls.values()), "byOperation": dict(sorted(calls.items()))}


def main() -> dict[str, Any]:
    figures: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as tmp, local_server() as url:
        a, b = _pair(Path(tmp), url)
        figures["endToEnd"] = end_to_end(a, Path(tmp) / "b.sqlite3")
        figures["latency"] = latency(a, b)
        a.close()
        b.close()
    figures["costPerPush"] = cost()
    lat = figures["latency"]
    print(
        f"live: push response → changed frame p50 {lat['responseToFrameMs']['p50']} ms, "
        f"p99 {lat['responseToFrameMs']['p99']} ms; push request → frame p50 "
        f"{lat['requestToFrameMs']['p50']} ms, p99 {lat['requestToFrameMs']['p99']} ms "
        f"({lat['frames']}/{lat['pushes']} frames)"
    )
    print(f"live: item add on A → in B's vault file p50 {figures['endToEnd']['p50']} ms")
    c = figures["costPerPush"]
    print(
        f"live: added per push: 0 connections {c['added0']['dynamodb']} DynamoDB; "
        f"1 connection {c['added1']['dynamodb']} DynamoDB + "
        f"{c['added1']['managementApi']} management; 5 connections {c['added5']['dynamodb']} "
        f"DynamoDB + {c['added5']['managementApi']} management"
    )
    return figures


if __name__ == "__main__":
    print(json.dumps(main(), separators=(",", ":")))
