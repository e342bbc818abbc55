"""The watch loop's rules (nt2sync/live.py), without a server: bursts, own writes, ended."""

from __future__ import annotations

import json
import sqlite3
import threading
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from nt2sync import live


@dataclass
class FakeSocket:
    """Frames to hand out, then timeouts; setting `stop` once they are gone."""

    frames: list[str]
    stop: threading.Event
    sent: list[str] = field(default_factory=list)

    def recv(self, timeout: float) -> str:
        if self.frames:
            return self.frames.pop(0)
        self.stop.set()
        raise TimeoutError

    def send(self, data: str) -> None:
        self.sent.append(data)


def fake_client(path: Path, watermark: int = 0) -> Any:
    conn = sqlite3.connect(str(path), isolation_level=None)
    meta = SimpleNamespace(replica_id="me", watermark=watermark)
    return SimpleNamespace(vault=SimpleNamespace(conn=conn), meta=meta)


def changed(watermark: int, replica: str = "other") -> str:
    return json.dumps({"type": "changed", "watermark": watermark, "replicaId": replica})


def run_session(client: Any, frames: list[str]) -> list[str]:
    stop = threading.Event()
    syncs: list[str] = []
    live._session(client, FakeSocket(frames, stop), stop, syncs.append)
    return syncs


def test_a_burst_of_changed_frames_is_one_pull(tmp_path: Path) -> None:
    client = fake_client(tmp_path / "v.sqlite3")
    assert run_session(client, [changed(n) for n in range(1, 11)]) == ["remote"]


def test_own_changed_frames_at_our_watermark_pull_nothing(tmp_path: Path) -> None:
    client = fake_client(tmp_path / "v.sqlite3", watermark=5)
    assert run_session(client, [changed(5, "me"), json.dumps({"type": "devices"})]) == []
    assert run_session(client, [changed(6, "me")]) == ["remote"]


def test_a_commit_by_another_connection_is_a_local_sync(tmp_path: Path) -> None:
    path = tmp_path / "v.sqlite3"
    client = fake_client(path)
    other = sqlite3.connect(str(path), isolation_level=None)
    stop = threading.Event()
    syncs: list[str] = []

    class Socket(FakeSocket):
        def recv(self, timeout: float) -> str:
            if not syncs and not self.frames:
                other.execute("CREATE TABLE IF NOT EXISTS t (x)")
                self.frames.append("not json")  # one more round, then stop
                raise TimeoutError
            return super().recv(timeout)

    live._session(client, Socket([], stop), stop, syncs.append)
    assert syncs == ["local"]


@pytest.mark.parametrize(("reason", "text"), [("revoked", "revoked"), ("rotated", "password")])
def test_ended_stops_with_its_reason(tmp_path: Path, reason: str, text: str) -> None:
    client = fake_client(tmp_path / "v.sqlite3")
    with pytest.raises(live.Ended) as ended:
        run_session(client, [json.dumps({"type": "ended", "reason": reason})])
    assert text in str(ended.value)
