"""Client benchmark (issues 8, 16): the client's figures, before and after, in one run.

For each tree (this one and, unless `--before none`, the commit before the issue-16 client
work checked out into a temporary git worktree), `--runs` times: a fresh local server
(`python -m devserver --in-memory`, always this tree's: the server is the same for both),
vault A filled through that tree's SDK (not timed), then each CLI command timed as a whole,
as a person runs it, with the child's CPU (wait4) and its own peak RSS:

    --help (cold start), sync enable of N, join + full pull of N, item list --json, item list

Children keep their bytecode (in a temporary PYTHONPYCACHEPREFIX, warmed before timing), as
an installed client does. Prints a min/median/max table per tree and a final JSON line.

    .venv/bin/python bench/client_bench.py [--items 10000] [--size 1024] [--runs 3]
        [--before COMMIT|none] [--quick]
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from devserver.ready import wait_healthy

ROOT = Path(__file__).resolve().parents[1]
PASSWORD = "bench-password"
# The commit the issue-16 client speed work started from (`git merge-base` of its branch).
BEFORE_COMMIT = "61d903f9cec762b69b058e4cb2287785005a9221"

FILL = """
import secrets, sys
from pathlib import Path
from nt2sync.engine import Client
client = Client.init(Path(sys.argv[1]), sys.argv[2])
n, size = int(sys.argv[3]), int(sys.argv[4])
client.add_items_bulk(
    [{"title": f"note {i}", "body": secrets.token_hex(size // 2)} for i in range(n)]
)
print(client.meta.key_did)
client.close()
"""
# The CLI as `python -m nt2sync` runs it, reporting its own peak RSS (VmHWM) at exit: wait4's
# ru_maxrss also counts the bench's pages the child held between fork and exec.
RUN_CLI = """
import atexit, os, runpy, sys
def peak():
    with open("/proc/self/status") as status:
        kib = next(line.split()[1] for line in status if line.startswith("VmHWM:"))
    with open(os.environ["NT2_BENCH_PEAK_FILE"], "w") as out:
        out.write(kib)
atexit.register(peak)
sys.argv[0] = "nt2sync"
runpy.run_module("nt2sync", run_name="__main__", alter_sys=True)
"""
WARM = "import nt2sync.cli.root, nt2sync.engine, httpx, rich.table, rich.progress\n"

# (key in the JSON, label, target seconds or None)
FIGURES = (
    ("help", "nt2sync --help (cold start)", 0.25),
    ("enable", "sync enable (push all + pull)", None),
    ("join", "join + full pull + decrypt", None),
    ("listJson", "item list --json (decrypt all)", 0.6),
    ("list", "item list (table)", 0.6),
)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def local_server() -> Iterator[str]:
    """A fresh in-memory devserver of this tree on a free port; its URL."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update(PORT=str(port), PUBLIC_API_URL=url, PYTHONUNBUFFERED="1", WEB_PORT="0")
    (ROOT / "build").mkdir(exist_ok=True)
    with open(ROOT / "build" / f"bench-server-{port}.log", "w") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "devserver", "--in-memory"],
            cwd=ROOT,
            env=env,
            stdout=log,
            stderr=log,
        )
        try:
            if not wait_healthy(url, proc, timeout=90, poll=0.2):
                raise SystemExit("the local server did not start")
            yield url
        finally:
            proc.terminate()
            proc.wait(timeout=60)


class Tree:
    """A checkout of the client: where its CLI runs from, with its own bytecode cache."""

    def __init__(self, name: str, path: Path, pycache: Path) -> None:
        self.name = name
        self.path = path
        self.env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
        self.env.update(
            PYTHONPATH=str(path), PYTHONPYCACHEPREFIX=str(pycache), NT2_PASSWORD=PASSWORD
        )

    def python(self, *args: str) -> str:
        """Run this tree's Python (untimed); its stdout."""
        done = subprocess.run(
            [sys.executable, *args], cwd=self.path, env=self.env, capture_output=True, text=True
        )
        if done.returncode != 0:
            raise SystemExit(f"{self.name}: {' '.join(args)[:60]} failed: {done.stderr.strip()}")
        return done.stdout

    def cli(self, vault: Path | None, *args: str) -> tuple[float, float, float, str]:
        """One CLI command, reaped with wait4: (wall s, its CPU s, its peak RSS MiB, stdout)."""
        argv = [
            sys.executable,
            "-c",
            RUN_CLI,
            *(["--vault", str(vault)] if vault is not None else []),
            *args,
        ]
        with (
            tempfile.TemporaryFile() as out,
            tempfile.TemporaryFile() as err,
            tempfile.NamedTemporaryFile("r") as peak,
        ):
            env = {**self.env, "NT2_BENCH_PEAK_FILE": peak.name}
            start = time.perf_counter()
            proc = subprocess.Popen(
                argv, cwd=self.path, env=env, stdout=out, stderr=err, stdin=subprocess.DEVNULL
            )
            _, status, usage = os.wait4(proc.pid, 0)
            wall = time.perf_counter() - start
            out.seek(0)
            err.seek(0)
            if os.waitstatus_to_exitcode(status) != 0:
                raise SystemExit(f"{self.name}: `nt2sync {' '.join(args)}` failed: {err.read()!r}")
            cpu = usage.ru_utime + usage.ru_stime  # the client's own CPU: the rest is waiting
            return wall, cpu, int(peak.read()) / 1024, out.read().decode()


def one_run(tree: Tree, items: int, size: int) -> dict[str, tuple[float, float, float]]:
    """Every figure once, against a fresh server: {key: (wall, cpu, rss)}."""
    with local_server() as url, tempfile.TemporaryDirectory() as tmp:
        a, b = Path(tmp) / "a.sqlite3", Path(tmp) / "b.sqlite3"
        key_did = tree.python("-c", FILL, str(a), PASSWORD, str(items), str(size)).strip()
        got: dict[str, tuple[float, float, float]] = {}
        got["help"] = tree.cli(None, "--help")[:3]
        got["enable"] = tree.cli(a, "sync", "enable", "--server", url, "--json")[:3]
        *join, joined = tree.cli(b, "join", "--server", url, "--key-did", key_did, "--json")
        got["join"] = (join[0], join[1], join[2])
        *listed, shown = tree.cli(b, "item", "list", "--json")
        got["listJson"] = (listed[0], listed[1], listed[2])
        got["list"] = tree.cli(b, "item", "list")[:3]
    pulled, count = json.loads(joined)["pulled"], len(json.loads(shown))
    if not pulled == count == items:
        raise SystemExit(f"{tree.name}: pulled {pulled}, listed {count}, expected {items}")
    return got


def spread(values: list[float]) -> dict[str, float]:
    """min / median / max, rounded for the JSON line."""
    return {
        "min": round(min(values), 3),
        "median": round(statistics.median(values), 3),
        "max": round(max(values), 3),
    }


def summarize(runs: list[dict[str, tuple[float, float, float]]]) -> dict[str, Any]:
    """{key: {seconds, cpuSeconds, peakRssMiB: {min, median, max}}}."""
    return {
        key: {
            "seconds": spread([r[key][0] for r in runs]),
            "cpuSeconds": spread([r[key][1] for r in runs]),
            "peakRssMiB": spread([round(r[key][2], 1) for r in runs]),
        }
        for key, _, _ in FIGURES
    }


def print_table(name: str, figures: dict[str, Any]) -> None:
    print(f"-- {name}: wall s and client CPU s as min / median / max")
    print(f"{'command':32} {'wall s':>20} {'client CPU s':>20} {'RSS MiB':>8} {'target':>7}")
    for key, label, target in FIGURES:
        wall, cpu = figures[key]["seconds"], figures[key]["cpuSeconds"]
        w = f"{wall['min']:.2f}/{wall['median']:.2f}/{wall['max']:.2f}"
        c = f"{cpu['min']:.2f}/{cpu['median']:.2f}/{cpu['max']:.2f}"
        rss = figures[key]["peakRssMiB"]["median"]
        print(f"{label:32} {w:>20} {c:>20} {rss:8.1f} {target if target else '-':>7}")


@contextmanager
def before_tree(commit: str) -> Iterator[Path]:
    """`commit` checked out into a temporary worktree (removed afterwards)."""
    path = Path(tempfile.mkdtemp(prefix="nt2-before-"))
    subprocess.run(
        ["git", "worktree", "add", "--detach", "--quiet", str(path), commit],
        cwd=ROOT,
        check=True,
    )
    try:
        yield path
    finally:
        subprocess.run(["git", "worktree", "remove", "--force", str(path)], cwd=ROOT, check=False)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--items", type=int, default=10_000)
    parser.add_argument("--size", type=int, default=1024, help="note body bytes")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--before", default=BEFORE_COMMIT, help="a commit, or none")
    parser.add_argument("--quick", action="store_true", help="1 000 items, one run (a check)")
    args = parser.parse_args()
    if args.quick:
        args.items, args.runs = 1000, 1
    with tempfile.TemporaryDirectory() as pycache, _trees(args, pycache) as trees:
        for tree in trees:
            tree.python("-c", WARM)  # bytecode written once, before anything is timed
        runs: dict[str, list[dict[str, tuple[float, float, float]]]] = {t.name: [] for t in trees}
        for _ in range(args.runs):  # interleaved: machine noise falls on both trees alike
            for tree in trees:
                runs[tree.name].append(one_run(tree, args.items, args.size))
    print(f"{args.items} notes of {args.size} B, {args.runs} runs, a fresh local server each")
    figures = {name: summarize(r) for name, r in runs.items()}
    for name, figure in figures.items():
        print_table(name, figure)
    after = figures["after"]
    med = {k: {m: v["median"] for m, v in after[k].items()} for k in after}
    result: dict[str, Any] = {
        "items": args.items,
        "itemBytes": args.size,
        "enableSeconds": med["enable"]["seconds"],
        "enableClientCpuSeconds": med["enable"]["cpuSeconds"],
        "enablePeakRssMiB": med["enable"]["peakRssMiB"],
        "joinSeconds": med["join"]["seconds"],
        "joinClientCpuSeconds": med["join"]["cpuSeconds"],
        "joinPeakRssMiB": med["join"]["peakRssMiB"],
        "listSeconds": med["listJson"]["seconds"],
        "listPeakRssMiB": med["listJson"]["peakRssMiB"],
        "runs": args.runs,
        "after": after,
    }
    if "before" in figures:
        before = figures["before"]
        result["beforeCommit"] = args.before
        result["before"] = before
        result["ratio"] = {  # after / before, medians of wall time
            key: round(after[key]["seconds"]["median"] / before[key]["seconds"]["median"], 2)
            for key, _, _ in FIGURES
        }
        print("after / before (median wall): " + json.dumps(result["ratio"]))
    print(json.dumps(result, separators=(",", ":")))


@contextmanager
def _trees(args: argparse.Namespace, pycache: str) -> Iterator[list[Tree]]:
    after = Tree("after", ROOT, Path(pycache))
    if args.before == "none":
        yield [after]
        return
    with before_tree(args.before) as path:
        yield [Tree("before", path, Path(pycache)), after]


if __name__ == "__main__":
    main()
