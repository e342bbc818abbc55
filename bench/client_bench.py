"""Client benchmark (issue 8): `sync enable` of 10 000 1 KiB notes, then `join` + full pull.

Starts the real local server (`python -m devserver`) on a free port, fills vault A through
the SDK (not timed), then times each CLI command as a whole, as a person runs it, with the
child's peak RSS from wait4(). Prints a table and a final JSON line.

    .venv/bin/python bench/client_bench.py [--items 10000] [--size 1024] [--server URL]
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from nt2sync.engine import Client  # noqa: E402

PASSWORD = "bench-password"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_server() -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update(PORT=str(port), PUBLIC_API_URL=url, PYTHONUNBUFFERED="1")
    log = open(ROOT / "build" / f"bench-server-{port}.log", "w")  # noqa: SIM115
    proc = subprocess.Popen(
        [sys.executable, "-m", "devserver", "--in-memory"],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=log,
    )
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        try:
            if httpx.get(url + "/api/health", timeout=1).status_code == 200:
                return proc, url
        except httpx.HTTPError:
            time.sleep(0.2)
    proc.terminate()
    raise SystemExit("the local server did not start")


def run_reaped(vault: Path, *args: str) -> tuple[float, float, str, float]:
    """Run one CLI command, reaped with wait4: (wall s, its peak RSS MiB, stdout, its CPU s)."""
    env = {**os.environ, "NT2_PASSWORD": PASSWORD}
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        start = time.perf_counter()
        proc = subprocess.Popen(
            [sys.executable, "-m", "nt2sync", "--vault", str(vault), *args],
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=err,
            stdin=subprocess.DEVNULL,
        )
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - start
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        if proc.returncode != 0:
            raise SystemExit(f"`nt2sync {' '.join(args)}` failed: {err.read().decode().strip()}")
        cpu = usage.ru_utime + usage.ru_stime  # the client's own CPU: the rest is waiting
        return wall, usage.ru_maxrss / 1024, out.read().decode(), cpu


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--items", type=int, default=10_000)
    parser.add_argument("--size", type=int, default=1024, help="note body bytes")
    parser.add_argument("--server", help="use a running server instead of starting one")
    args = parser.parse_args()
    (ROOT / "build").mkdir(exist_ok=True)
    proc = None
    if args.server:
        url = args.server.rstrip("/")
    else:
        proc, url = start_server()
    try:
        with tempfile.TemporaryDirectory() as tmp:
            a, b = Path(tmp) / "a.sqlite3", Path(tmp) / "b.sqlite3"
            client = Client.init(a, PASSWORD)
            key_did = client.meta.key_did
            fill = time.perf_counter()
            client.add_items_bulk(
                [
                    {"title": f"note {n}", "body": secrets.token_hex(args.size // 2)}
                    for n in range(args.items)
                ]
            )
            client.close()
            fill = time.perf_counter() - fill
            enable = run_reaped(a, "sync", "enable", "--server", url, "--json")
            join = run_reaped(b, "join", "--server", url, "--key-did", key_did, "--json")
            listed = run_reaped(b, "item", "list", "--json")
            pulled = json.loads(join[2])["pulled"]
            shown = len(json.loads(listed[2]))
    finally:
        if proc is not None:
            proc.terminate()
            proc.wait(timeout=30)
    rows = [
        ("sync enable (push all + pull)", enable, 8.0),
        ("join + full pull + decrypt", join, 6.0),
        ("item list (decrypt all)", listed, None),
    ]
    print(f"{args.items} notes of {args.size} B; local fill (not timed) {fill:.2f} s; server {url}")
    print(f"{'command':34} {'wall s':>8} {'client CPU s':>13} {'peak RSS MiB':>13} {'target s':>9}")
    for name, (wall, rss, _, cpu), target in rows:
        print(f"{name:34} {wall:8.2f} {cpu:13.2f} {rss:13.1f} {target if target else '-':>9}")
    assert pulled == shown == args.items, (pulled, shown)
    print(
        json.dumps(
            {
                "items": args.items,
                "itemBytes": args.size,
                "enableSeconds": round(enable[0], 3),
                "enableClientCpuSeconds": round(enable[3], 3),
                "enablePeakRssMiB": round(enable[1], 1),
                "joinSeconds": round(join[0], 3),
                "joinClientCpuSeconds": round(join[3], 3),
                "joinPeakRssMiB": round(join[1], 1),
                "listSeconds": round(listed[0], 3),
                "listPeakRssMiB": round(listed[1], 1),
            }
        )
    )


if __name__ == "__main__":
    main()
