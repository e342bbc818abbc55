"""The web client's own loopback origin: `web/` as static files, with the production headers.

The app lives on another origin than the API (as behind CloudFront in production), so the
browser's CORS checks run as they will for real. The page learns where the API is from
`/config.json` (no inline script: the Content-Security-Policy forbids it). Paths under
`/settings/` and `/setup` are the app's own routes and answer with `index.html`.
"""

from __future__ import annotations

import json
import mimetypes
import threading
from collections.abc import Sequence
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import urlsplit

WEB_ROOT = Path(__file__).resolve().parent.parent / "web"
APP_ROUTES = ("/settings/", "/setup", "/items", "/unlock")
_TYPES = {".js": "text/javascript", ".mjs": "text/javascript", ".css": "text/css"}


def origin_of(url: str) -> str:
    """scheme://host[:port] of a URL."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


def content_security_policy(
    api_url: str, live_url: str | None, storage_urls: Sequence[str] = ()
) -> str:
    """The policy the app is served with here and (as a CloudFront policy) in production.

    `storage_urls` are the attachment bucket's endpoints: the page PUTs and GETs the
    presigned URLs the API hands out there (moto here; in production S3's regional endpoint,
    and its global one, which boto3 signs for in us-east-1).
    """
    connect = ["'self'", origin_of(api_url)]
    if live_url:
        connect.append(origin_of(live_url))
    connect.extend(origin_of(url) for url in storage_urls)
    return "; ".join(
        [
            "default-src 'none'",
            "script-src 'self'",
            "style-src 'self'",
            "img-src 'self' data: blob:",
            f"connect-src {' '.join(connect)}",
            "manifest-src 'self'",
            "form-action 'none'",
            "frame-ancestors 'none'",
            "base-uri 'none'",
        ]
    )


def security_headers(
    api_url: str, live_url: str | None, storage_urls: Sequence[str] = ()
) -> dict[str, str]:
    """Every response's headers besides the content type."""
    return {
        "Content-Security-Policy": content_security_policy(api_url, live_url, storage_urls),
        "X-Content-Type-Options": "nosniff",
        "Referrer-Policy": "no-referrer",
        "Cross-Origin-Opener-Policy": "same-origin",
        "Permissions-Policy": "camera=(), microphone=(), geolocation=()",
        "Cache-Control": "no-cache",
    }


class WebOrigin:
    """A threaded static server for `web/` on 127.0.0.1; `url` is its origin."""

    def __init__(
        self,
        api_url: str,
        live_url: str | None = None,
        root: Path = WEB_ROOT,
        storage_urls: Sequence[str] = (),
    ) -> None:
        self.api_url = api_url
        self.live_url = live_url
        self.storage_urls = tuple(storage_urls)
        self.root = root.resolve()
        self._httpd: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self.url = ""

    def config(self) -> bytes:
        """`/config.json`: where the API is (the page never guesses it)."""
        return json.dumps({"api": self.api_url}).encode()

    def start(self, port: int = 0) -> str:
        """Listen on 127.0.0.1:port (0: any free port); returns the origin URL."""
        origin = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 - http.server's name
                origin._answer(self, head=False)

            def do_HEAD(self) -> None:  # noqa: N802
                origin._answer(self, head=True)

            def log_message(self, *_: object) -> None:
                return

        self._httpd = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self._httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._httpd.server_address[1]}"
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, name="web-origin", daemon=True
        )
        self._thread.start()
        return self.url

    def stop(self) -> None:
        """Stop listening."""
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._httpd = None

    def _resolve(self, path: str) -> Path | None:
        if path == "/" or path.startswith(APP_ROUTES):
            return self.root / "index.html"
        candidate = (self.root / path.lstrip("/")).resolve()
        if not candidate.is_relative_to(self.root) or not candidate.is_file():
            return None
        return candidate

    def _answer(self, handler: BaseHTTPRequestHandler, *, head: bool) -> None:
        path = urlsplit(handler.path).path
        if path == "/config.json":
            body, kind, status = self.config(), "application/json", 200
        elif (file := self._resolve(path)) is not None:
            body = file.read_bytes()
            guessed = _TYPES.get(file.suffix) or mimetypes.guess_type(file.name)[0]
            kind = guessed or "application/octet-stream"
            status = 200
        else:
            body, kind, status = b"not found\n", "text/plain", 404
        handler.send_response(status)
        handler.send_header("Content-Type", f"{kind}; charset=utf-8" if "text" in kind else kind)
        handler.send_header("Content-Length", str(len(body)))
        for name, value in security_headers(self.api_url, self.live_url, self.storage_urls).items():
            handler.send_header(name, value)
        handler.end_headers()
        if not head:
            handler.wfile.write(body)
