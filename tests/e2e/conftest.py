"""End-to-end fixtures: the real local server (`python -m devserver`) on a free port.

Servers keep their backend in memory unless a test names a data directory: e2e tests never
touch the repository's .devdata/.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import re
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from devserver.ready import wait_healthy

ROOT = Path(__file__).resolve().parents[2]


_started = itertools.count(1)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class LocalServer:
    """A `make serve`-style server process; `url` is its base URL (the audience).

    `args` are devserver's flags (default `--in-memory`); it runs in a process group of its
    own (with its backend child), so `kill_group()` can kill -9 both at once.
    """

    def __init__(
        self,
        extra_env: dict[str, str] | None = None,
        args: tuple[str, ...] = ("--in-memory",),
        port: int | None = None,
    ) -> None:
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
        env.update(
            {
                "PORT": str(self.port),
                "PUBLIC_API_URL": self.url,
                "PYTHONUNBUFFERED": "1",
                "WEB_PORT": "0",
                **(extra_env or {}),
            }
        )
        (ROOT / "build").mkdir(exist_ok=True)
        name = f"e2e-server-{self.port}-{next(_started)}.log"  # a restart reuses the port
        self.log = open(ROOT / "build" / name, "w")  # noqa: SIM115
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "devserver", *args],
            cwd=ROOT,
            env=env,
            stdout=self.log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        if wait_healthy(self.url, self.proc):
            return
        if self.proc.poll() is not None:
            raise RuntimeError(f"server exited: see {self.log.name}")
        self.stop()
        raise RuntimeError("server did not become healthy")

    def backend_url(self) -> str:
        """The backend endpoint the server printed at start."""
        found = re.search(r"\(backend (http://[^)]+)\)", Path(self.log.name).read_text())
        assert found, "the server did not name its backend"
        return found.group(1)

    def web_url(self) -> str:
        """The web client's origin the server printed at start."""
        found = re.search(r"Web client on (http://\S+)", Path(self.log.name).read_text())
        assert found, "the server did not name its web origin"
        return found.group(1)

    def kill_group(self) -> None:
        """kill -9 the server and its backend at once (a crash)."""
        os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait()
        self.log.close()

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        with contextlib.suppress(ProcessLookupError):  # a backend left behind, if any
            os.killpg(self.proc.pid, signal.SIGKILL)
        self.log.close()


@pytest.fixture(scope="session")
def server_factory() -> Iterator[Any]:
    (ROOT / "build").mkdir(exist_ok=True)
    started: list[LocalServer] = []

    def start(**env: str) -> LocalServer:
        srv = LocalServer(env)
        started.append(srv)
        return srv

    yield start
    for srv in started:
        srv.stop()


@pytest.fixture(scope="session")
def server(server_factory: Any) -> LocalServer:
    """One shared local server per test worker (Premium off)."""
    return server_factory()
