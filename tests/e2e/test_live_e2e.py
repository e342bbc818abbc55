"""§10 end to end: two `nt2sync sync watch` processes against the real local server."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.client_cli import ROOT, run
from tests.e2e.test_cli_server import ok

pytestmark = pytest.mark.e2e
CONVERGE_S = 2.0


class Watch:
    """`nt2sync sync watch --json` as a child process; its lines are collected."""

    def __init__(self, vault: Path) -> None:
        env = {k: v for k, v in os.environ.items() if not k.startswith("NT2_")}
        env["NT2_PASSWORD"] = "pw-one"
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "nt2sync", "--vault", str(vault), "sync", "watch", "--json"],
            cwd=ROOT,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.lines: list[dict[str, Any]] = []
        self.err: list[str] = []
        self._threads = [
            threading.Thread(target=self._read, args=(self.proc.stdout, True), daemon=True),
            threading.Thread(target=self._read, args=(self.proc.stderr, False), daemon=True),
        ]
        for t in self._threads:
            t.start()
        self.wait_for(lambda: any("connected" in e for e in self.err), 30)

    def _read(self, stream: Any, out: bool) -> None:
        for line in stream:
            if out:
                self.lines.append(json.loads(line))
            else:
                self.err.append(line.strip())

    def wait_for(self, check: Any, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if check():
                return
            if self.proc.poll() is not None and not check():
                break
            time.sleep(0.02)
        raise AssertionError(f"timed out: out={self.lines} err={self.err}")

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        code = self.proc.wait(timeout=15)
        for t in self._threads:
            t.join(5)
        return code


def titles(vault: Path) -> set[str]:
    result = run(vault, "item", "list", "--json")  # local only: list never syncs
    assert result.code == 0, result.err
    return {i["title"] for i in json.loads(result.out)}


def converges(vault: Path, title: str, timeout: float = CONVERGE_S) -> float:
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        if title in titles(vault):
            return time.monotonic() - started
        time.sleep(0.05)
    raise AssertionError(f"{title!r} did not reach {vault.name} within {timeout} s")


@pytest.fixture
def pair(tmp_path: Path, server: Any) -> tuple[Path, Path]:
    a, b = tmp_path / "a.sqlite3", tmp_path / "b.sqlite3"
    key_did = ok(a, "init")["keyDid"]
    ok(a, "sync", "enable", "--server", server.url, "--device-name", "laptop")
    ok(b, "join", "--server", server.url, "--key-did", key_did, "--device-name", "phone")
    return a, b


def test_two_watches_converge_survive_a_restart_and_stop_when_revoked(pair: Any) -> None:
    a, b = pair
    wa, wb = Watch(a), Watch(b)
    try:
        # WHEN an item is added on A (its own sync pushes it) THEN B has it within 2 s
        assert run(a, "item", "add", "from-a", "--body", "x").code == 0
        converges(b, "from-a")
        # WHEN an item is added on B offline (only B's watch can push it) THEN A has it
        assert run(b, "item", "add", "from-b", "--body", "y", "--offline").code == 0
        converges(a, "from-b")
        # WHEN B's watch restarts THEN it stops cleanly and catches up on what it missed
        assert wb.stop() == 0
        assert run(a, "item", "add", "while-away", "--body", "z").code == 0
        wb = Watch(b)
        converges(b, "while-away")
        assert wb.lines[0]["reason"] == "start"
        assert run(a, "item", "add", "after-restart", "--body", "w").code == 0
        converges(b, "after-restart")
        # WHEN A revokes B THEN B's watch stops with a clear message
        phone = next(d for d in ok(a, "devices", "list") if d["name"] == "phone")["replicaId"]
        assert run(a, "devices", "revoke", phone).code == 0
        wb.wait_for(lambda: wb.proc.poll() is not None, 5)
        assert wb.proc.returncode == 3
        assert any("revoked" in line for line in wb.err), wb.err
        # AND A's watch keeps running
        assert wa.proc.poll() is None
    finally:
        wa.stop()
        wb.stop()


def test_the_local_websocket_api_speaks_section_10(pair: Any, server: Any) -> None:
    import httpx
    from websockets.exceptions import InvalidStatus
    from websockets.sync.client import connect

    from nt2sync import live
    from nt2sync.engine import Client

    a, _ = pair
    client = Client.open(a)
    client.unlock("pw-one")
    try:
        ticket = live.open_ticket(client)
        # THEN the ticket names the loopback WebSocket server
        assert ticket["url"].startswith("ws://127.0.0.1:")
        # WHEN a made-up ticket is presented THEN the handshake is refused with 403
        with pytest.raises(InvalidStatus) as refused:
            connect(f"{ticket['url']}?ticket=bm90LWEtdGlja2V0", open_timeout=5)
        assert refused.value.response.status_code == 403
        # WHEN the real one is used THEN ping → pong, and a push → changed
        with connect(f"{ticket['url']}?ticket={ticket['ticket']}", open_timeout=5) as ws:
            ws.send(json.dumps({"type": "ping"}))
            assert json.loads(ws.recv(timeout=2)) == {"type": "pong"}
            assert run(a, "item", "add", "seen-live", "--body", "x").code == 0
            frame = json.loads(ws.recv(timeout=2))
            assert frame["type"] == "changed" and frame["replicaId"] == client.meta.replica_id
            assert set(frame) == {"type", "watermark", "replicaId"}
        # AND it opened once only
        with pytest.raises(InvalidStatus):
            connect(f"{ticket['url']}?ticket={ticket['ticket']}", open_timeout=5)
        # AND the management API answers a post to an unknown connection as API Gateway does
        log = Path(server.log.name).read_text()
        found = re.search(r"management API (http://[^)]+)\)", log)
        assert found, log
        r = httpx.post(found.group(1) + "/@connections/nope", content=b"{}", timeout=5)
        assert r.status_code == 410 and r.headers["x-amzn-ErrorType"] == "GoneException"
    finally:
        client.close()
