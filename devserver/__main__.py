"""`make serve`: a moto backend process (unless AWS_ENDPOINT_URL is set) + chalice local.

    python -m devserver                      state kept in .devdata/ (or $NT2_DATA_DIR)
    python -m devserver --data-dir PATH      state kept in PATH
    python -m devserver --in-memory          nothing kept

The backend (devserver/moto_backend.py) runs in its own process, so moto and the app each
get a core instead of sharing one GIL; the app reaches it through AWS_ENDPOINT_URL, as it
reaches AWS in production. SIGINT/SIGTERM stop both; if this process dies, the backend sees
its stdin close and stops cleanly too.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import subprocess
import sys
import threading
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DATA_DIR_ENV = "NT2_DATA_DIR"
DEFAULT_DATA_DIR = ROOT / ".devdata"
_BACKEND_STOP_SECONDS = 60  # a clean stop writes a snapshot of the whole state


def _defaults(port: int) -> None:
    env = os.environ
    env.setdefault("AWS_ACCESS_KEY_ID", "testing")
    env.setdefault("AWS_SECRET_ACCESS_KEY", "testing")  # noqa: S105 - moto's fake credentials
    env.setdefault("AWS_DEFAULT_REGION", "us-east-1")
    env.setdefault("AWS_REGION", env["AWS_DEFAULT_REGION"])
    env.setdefault("PUBLIC_API_URL", f"http://127.0.0.1:{port}")
    env.setdefault("PREMIUM_SYNC_REQUIRED", "false")
    env.setdefault("ALLOWED_ORIGINS", "*")
    env.setdefault("TABLE_NAME", "nt2-sync-local")
    env.setdefault("BUCKET_NAME", "nt2-sync-local-attachments")


def _parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m devserver", description=__doc__.split("\n")[0])
    where = parser.add_mutually_exclusive_group()
    where.add_argument(
        "--data-dir",
        type=Path,
        help=f"keep the backend's state here (default: ${DATA_DIR_ENV}, else .devdata/)",
    )
    where.add_argument("--in-memory", action="store_true", help="keep nothing across restarts")
    return parser.parse_args(argv)


def data_dir(args: argparse.Namespace) -> Path | None:
    """Where the backend keeps its state: --in-memory, --data-dir, NT2_DATA_DIR, .devdata/."""
    if args.in_memory:
        return None
    if args.data_dir is not None:
        return Path(args.data_dir).resolve()
    return Path(os.environ.get(DATA_DIR_ENV) or DEFAULT_DATA_DIR).resolve()


class Backend:
    """The moto backend child process; `endpoint` is its URL."""

    def __init__(self, data: Path | None) -> None:
        where = ["--data-dir", str(data)] if data is not None else ["--in-memory"]
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "devserver.moto_backend", "--exit-with-stdin", *where],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
        )
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline().decode()
        self.proc.stdout.close()
        if not line.startswith("endpoint "):
            self.proc.wait()
            raise SystemExit(
                f"the backend process exited ({self.proc.returncode}) before serving: "
                "see its message above"
            )
        self.endpoint = line.split()[1]

    def stop(self) -> int:
        """Ask for a clean stop (stdin closed: it writes its snapshot), kill if it hangs."""
        if self.proc.stdin is not None and not self.proc.stdin.closed:
            self.proc.stdin.close()
        try:
            return self.proc.wait(timeout=_BACKEND_STOP_SECONDS)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            return self.proc.wait()


def _announce(port: int, data: Path | None, external: bool) -> None:
    print(
        f"NT² Cloud Sync API ready on http://127.0.0.1:{port} "
        f"(backend {os.environ['AWS_ENDPOINT_URL']})",
        flush=True,
    )
    if external:
        print("Data: kept by that backend (--data-dir/--in-memory do not apply)", flush=True)
    elif data is None:
        print("Data: in memory only (--in-memory): everything goes when it stops", flush=True)
    else:
        print(
            f"Data: {data} (kept across restarts). To start from empty: stop, then "
            f"`rm -rf {data}`, or run with --in-memory",
            flush=True,
        )


def main(argv: list[str] | None = None) -> int:
    args = _parse(argv)
    port = int(os.environ.get("PORT", "8000"))
    _defaults(port)
    external = bool(os.environ.get("AWS_ENDPOINT_URL"))
    data = None if external else data_dir(args)
    try:
        backend = None if external else Backend(data)
    except KeyboardInterrupt:  # Ctrl-C while the backend replays: it stops by itself
        return 130
    if backend is not None:
        os.environ["AWS_ENDPOINT_URL"] = backend.endpoint
    code = 1
    try:
        code = _serve(port, data, external, backend)
    finally:
        if backend is not None and (stopped := backend.stop()) != 0:
            print(f"the backend process stopped with status {stopped}", file=sys.stderr)
            code = code or 1
    return code


def _serve(port: int, data: Path | None, external: bool, backend: Backend | None) -> int:
    from chalice.config import Config
    from chalice.local import ChaliceRequestHandler, ThreadedHTTPServer, create_local_server

    # The default listen backlog (5) resets connections under a burst of parallel clients.
    ThreadedHTTPServer.request_queue_size = 128
    # chalice writes a response's headers and body in two sends: with Nagle's algorithm on,
    # the body waits for the client's delayed ACK of the headers, 40 ms per request.
    ChaliceRequestHandler.disable_nagle_algorithm = True

    from devserver.backend import ensure_resources

    ensure_resources()
    import app as app_module
    from devserver.live_ws import LiveServer
    from devserver.web_origin import WebOrigin

    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    # §10: the WebSocket API and its management API, calling the app's own handlers.
    live = LiveServer(app_module.ws_connect, app_module.ws_message, app_module.ws_disconnect)
    live.start(int(os.environ.get("LIVE_WS_PORT") or 0))
    # the page PUTs/GETs attachments at the S3 endpoint's presigned URLs (moto here)
    storage = [os.environ["AWS_ENDPOINT_URL"]] if os.environ.get("AWS_ENDPOINT_URL") else []
    web = WebOrigin(os.environ["PUBLIC_API_URL"], live.url, storage_urls=storage)
    web.start(int(os.environ.get("WEB_PORT", "8080")))
    config = Config.create(chalice_stage="dev", app_name="nt2-sync", project_dir=str(ROOT))
    server = create_local_server(app_module.app, config, "127.0.0.1", port)
    stopping = threading.Event()
    status = {"code": 0}

    def stop(*_: object) -> None:
        if not stopping.is_set():
            stopping.set()
            threading.Thread(target=server.shutdown, daemon=True).start()

    def watch_backend() -> None:
        assert backend is not None
        code = backend.proc.wait()
        if not stopping.is_set():
            print(f"the backend process exited ({code}): stopping", file=sys.stderr, flush=True)
            status["code"] = 1 if code else 0
            stop()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    if backend is not None:
        threading.Thread(target=watch_backend, name="backend-watch", daemon=True).start()
    _announce(port, data, external)
    print(f"Live notifications on {live.url} (management API {live.management_url})", flush=True)
    print(f"Web client on {web.url} (its own origin, as in production)", flush=True)
    try:
        server.server.serve_forever()
    finally:
        server.server.server_close()
        web.stop()
        live.stop()
    return status["code"]


if __name__ == "__main__":
    sys.exit(main())
