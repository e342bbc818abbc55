"""A lying server over real HTTP, for clients that cannot take an in-process transport (the
browser): a proxy on 127.0.0.1 in front of the real local server, honest until a test sets
`lie`, which rewrites the JSON the server really answered (tests/support/lying_server.py
does the same in-process). It records every request, so a test can tell whether anything
authenticated was sent. It never changes what the server stores.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, NamedTuple

import httpx

Lie = Callable[[str, str, Any], Any]  # (method, API path, the server's JSON) -> JSON served
HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "content-length", "date", "server"}


class Seen(NamedTuple):
    """One request as it reached the proxy."""

    method: str
    path: str
    authenticated: bool


class LyingProxy:
    """`url` is the proxy's origin; point the server's PUBLIC_API_URL at it so that
    signatures made for it verify upstream."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.url = f"http://127.0.0.1:{port}"
        self.upstream = ""
        self.lie: Lie | None = None
        self.lie_status: int | None = None  # with `lie`: the status the lie is answered with
        self.seen: list[Seen] = []
        self._http = httpx.Client(timeout=30)
        self._httpd: ThreadingHTTPServer | None = None

    def start(self, upstream: str) -> None:
        """Listen on 127.0.0.1:port and forward to upstream."""
        self.upstream = upstream.rstrip("/")
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _any(self) -> None:
                proxy._forward(self)

            do_GET = do_POST = do_PATCH = do_DELETE = do_OPTIONS = _any  # noqa: N815

            def log_message(self, *_: object) -> None:
                return

        self._httpd = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self._httpd.daemon_threads = True
        threading.Thread(target=self._httpd.serve_forever, name="lying-proxy", daemon=True).start()

    def stop(self) -> None:
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._httpd = None
        self._http.close()

    def authenticated_since(self, mark: int) -> list[Seen]:
        """Requests with a bearer token after the first `mark` requests."""
        return [s for s in self.seen[mark:] if s.authenticated]

    def _forward(self, handler: BaseHTTPRequestHandler) -> None:
        length = int(handler.headers.get("Content-Length") or 0)
        body = handler.rfile.read(length) if length else b""
        headers = {
            k: v for k, v in handler.headers.items() if k.lower() not in HOP_BY_HOP | {"host"}
        }
        path = handler.path.split("?", 1)[0]
        if handler.command != "OPTIONS":
            self.seen.append(
                Seen(handler.command, path, "authorization" in map(str.lower, headers))
            )
        answer = self._http.request(
            handler.command, self.upstream + handler.path, content=body, headers=headers
        )
        content = answer.content
        lie = self.lie
        if lie is not None and handler.command != "OPTIONS" and content:
            try:
                parsed = json.loads(content)
            except ValueError:
                parsed = None
            if parsed is not None:
                content = json.dumps(lie(handler.command, path, parsed)).encode()
        status = answer.status_code
        if lie is not None and self.lie_status is not None:
            status = self.lie_status
        handler.send_response(status)
        for name, value in answer.headers.items():
            if name.lower() not in HOP_BY_HOP | {"content-encoding"}:
                handler.send_header(name, value)
        handler.send_header("Content-Length", str(len(content)))
        handler.end_headers()
        handler.wfile.write(content)
