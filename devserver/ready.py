"""Waiting for a started local server: the one health poll benches, tools and tests share."""

from __future__ import annotations

import subprocess
import time

import httpx


def wait_healthy(
    url: str, proc: subprocess.Popen[bytes] | None = None, timeout: float = 60, poll: float = 0.1
) -> bool:
    """True once `GET <url>/api/health` answers 200; False if `proc` exits or time runs out."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            return False
        try:
            if httpx.get(url + "/api/health", timeout=1).status_code == 200:
                return True
        except httpx.HTTPError:
            pass
        time.sleep(poll)
    return False
