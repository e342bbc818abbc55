"""`python -m devserver.loadcheck`: where `make serve`'s time goes under parallel clients.

Starts `python -m devserver --in-memory` (or `--data-dir DIR`) on a free port and drives it
with N client threads: GET /api/health (the chalice local server and the app's routing only)
and POST /api/sync/push of 10 items (app + backend). For each phase it prints requests per
second and the CPU each process used (Linux /proc), so one can see which one saturates a core.
"""

from __future__ import annotations

import argparse
import os
import secrets
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import httpx

from devserver.ready import wait_healthy

ROOT = Path(__file__).resolve().parent.parent


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _children(pid: int) -> list[int]:
    out = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            if int(stat.read_text().rpartition(")")[2].split()[1]) == pid:
                out.append(int(stat.parent.name))
        except (OSError, ValueError):
            continue
    return out


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _device(url: str) -> Any:
    sys.path.insert(0, str(ROOT))
    from tests.e2e.protocol_client import HttpDevice

    dev = HttpDevice.new(url, "load")
    dev.sign_in()
    assert dev.register().status_code == 201
    return dev


def _phase(name: str, work: Any, threads: int, seconds: float, pids: dict[str, int]) -> None:
    count = [0] * threads
    stop = time.monotonic() + seconds
    before = {k: _cpu_seconds(p) for k, p in pids.items()}
    started = time.monotonic()

    def run(n: int) -> None:
        state = work.setup()
        while time.monotonic() < stop:
            work.call(state)
            count[n] += 1

    pool = [threading.Thread(target=run, args=(n,)) for n in range(threads)]
    for t in pool:
        t.start()
    for t in pool:
        t.join()
    wall = time.monotonic() - started
    cpu = {k: (_cpu_seconds(p) - before[k]) / wall for k, p in pids.items()}
    shares = ", ".join(f"{k} {100 * v:.0f}% of a core" for k, v in cpu.items())
    print(f"{name:>8} x{threads}: {sum(count) / wall:7.1f} req/s   {shares}", flush=True)


class Health:
    def __init__(self, url: str) -> None:
        self.url = url

    def setup(self) -> httpx.Client:
        return httpx.Client(base_url=self.url)

    def call(self, http: httpx.Client) -> None:
        assert http.get("/api/health").status_code == 200


class Push:
    def __init__(self, url: str) -> None:
        self.url = url

    def setup(self) -> Any:
        return _device(self.url)

    def call(self, dev: Any) -> None:
        items = [
            {"id": secrets.token_hex(8), "baseVersion": 0, "deleted": False, "ciphertext": "eHh4"}
            for _ in range(10)
        ]
        r = dev.push(items)
        assert r.status_code == 200, r.text


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m devserver.loadcheck")
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 8])
    parser.add_argument("--data-dir", help="measure with a durable backend (default: in memory)")
    args = parser.parse_args()
    where = ["--data-dir", args.data_dir] if args.data_dir else ["--in-memory"]
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update(PORT=str(port), PUBLIC_API_URL=url, WEB_PORT="0")  # any free port
    server = subprocess.Popen(
        [sys.executable, "-m", "devserver", *where],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        if not wait_healthy(url, server, poll=0.2):
            raise SystemExit("the local server did not start")
        pids = {"app": server.pid}
        for n, child in enumerate(_children(server.pid)):
            pids[f"backend{n or ''}"] = child
        for work in (Health(url), Push(url)):
            for threads in args.threads:
                _phase(type(work).__name__.lower(), work, threads, args.seconds, pids)
    finally:
        server.terminate()
        server.wait(timeout=60)
    return 0


if __name__ == "__main__":
    sys.exit(main())
