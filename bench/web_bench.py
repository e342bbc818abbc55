"""The web client in headless Chromium: unlock, enable sync and join of N notes, page memory.

    python bench/web_bench.py [--items 10000]

Runs against a fresh in-memory `make serve` (its own web origin), through the test harness
page (web/test/harness.html: the facade on window, under the app's CSP). Needs Chromium.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from devserver.ready import wait_healthy  # noqa: E402

ARGS = ["--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking"]
BODY = "x" * 1024


def _server() -> tuple[subprocess.Popen[bytes], str, str]:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    url = f"http://127.0.0.1:{port}"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "LIVE_"))}
    env.update(PORT=str(port), PUBLIC_API_URL=url, PYTHONUNBUFFERED="1", WEB_PORT="0")
    (ROOT / "build").mkdir(exist_ok=True)
    log = ROOT / "build" / f"web-bench-{port}.log"
    proc = subprocess.Popen(
        [sys.executable, "-m", "devserver", "--in-memory"],
        cwd=ROOT,
        env=env,
        stdout=log.open("w"),
        stderr=subprocess.STDOUT,
    )
    if not wait_healthy(url, proc):
        raise SystemExit("the local server did not start")
    found = re.search(r"Web client on (http://\S+)", log.read_text())
    assert found, "the server did not name its web origin"
    return proc, url, found.group(1)


def _timed(page: Any, script: str, arg: Any = None) -> float:
    started = time.perf_counter()
    page.evaluate(script, arg)
    return round(time.perf_counter() - started, 2)


def _heap_mib(page: Any) -> float:
    cdp = page.context.new_cdp_session(page)
    cdp.send("HeapProfiler.collectGarbage")
    used = cdp.send("Runtime.getHeapUsage")["usedSize"]
    return round(used / 2**20, 1)


def main() -> dict[str, Any]:
    parser = argparse.ArgumentParser()
    parser.add_argument("--items", type=int, default=10_000)
    items = parser.parse_args().items
    chromium = os.environ.get("NT2_CHROMIUM") or shutil.which("chromium")
    if chromium is None:
        raise SystemExit("web bench needs Chromium: apt-get install chromium")
    from playwright.sync_api import sync_playwright

    proc, api, web = _server()
    figures: dict[str, Any] = {"items": items}
    try:
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=chromium, args=ARGS)
            page = browser.new_page()
            page.set_default_timeout(600_000)
            page.goto(f"{web}/test/harness.html?db=a")
            page.wait_for_function("window.nt2Ready === true")
            page.evaluate("() => nt2.createVault('bench password one')")
            page.evaluate("() => nt2.lock()")
            figures["unlockSeconds"] = _timed(page, "() => nt2.unlock('bench password one')")
            page.evaluate(
                "([n, body]) => core.vault.addItemsBulk("
                "Array.from({length: n}, (_, i) => ({title: 'note ' + i, body})))",
                [items, BODY],
            )
            figures["enableSeconds"] = _timed(page, "(api) => nt2.enableSync(api)", api)
            kit = page.evaluate("async () => (await nt2.exportKit()).text")
            other = browser.new_page()
            other.set_default_timeout(600_000)
            other.goto(f"{web}/test/harness.html?db=b")
            other.wait_for_function("window.nt2Ready === true")
            figures["joinSeconds"] = _timed(
                other,
                "async (kit) => { await nt2.joinFromKit(await nt2.parseKit(kit), "
                "'bench password one'); return (await nt2.listItems()).length; }",
                kit,
            )
            figures["listed"] = other.evaluate("async () => (await nt2.listItems()).length")
            figures["heapAfterJoinMiB"] = _heap_mib(other)
            browser.close()
    finally:
        proc.terminate()
        proc.wait(30)
    print(json.dumps(figures))
    return figures


if __name__ == "__main__":
    main()
