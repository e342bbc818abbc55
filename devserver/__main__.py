"""`make serve`: embedded moto backend (unless AWS_ENDPOINT_URL is set) + chalice local."""

from __future__ import annotations

import logging
import os
import signal
import sys
import threading
from typing import Any


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


def start_moto() -> Any:
    """Start moto on a free loopback port with our patches; returns the server."""
    from moto.server import ThreadedMotoServer

    from devserver import moto_fidelity

    moto_fidelity.apply()
    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # one line per moto call is noise
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    os.environ["AWS_ENDPOINT_URL"] = f"http://{host}:{port}"
    return server


def main() -> int:
    port = int(os.environ.get("PORT", "8000"))
    _defaults(port)
    moto = None if os.environ.get("AWS_ENDPOINT_URL") else start_moto()

    from chalice.config import Config
    from chalice.local import ThreadedHTTPServer, create_local_server

    # The default listen backlog (5) resets connections under a burst of parallel clients.
    ThreadedHTTPServer.request_queue_size = 128

    from devserver.backend import ensure_resources

    ensure_resources()
    import app as app_module

    config = Config.create(chalice_stage="dev", app_name="nt2-sync", project_dir=os.getcwd())
    server = create_local_server(app_module.app, config, "127.0.0.1", port)
    stopping = threading.Event()

    def stop(*_: object) -> None:
        if not stopping.is_set():
            stopping.set()
            threading.Thread(target=server.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    print(
        f"NT² Cloud Sync API ready on http://127.0.0.1:{port} "
        f"(backend {os.environ['AWS_ENDPOINT_URL']})",
        flush=True,
    )
    try:
        server.server.serve_forever()
    finally:
        server.server.server_close()
        if moto is not None:
            moto.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
