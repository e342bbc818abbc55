"""The real app in-process behind an httpx transport: what the reference client's tests talk to.

API requests (the audience's host) go to `app.py`'s Chalice app through `chalice.test.Client`
(tests/conftest.py's `client` fixture), over a moto world with our patches and the table and
bucket of infra/template.json (tests/support/moto_world.py). Requests to presigned
object-storage URLs are played by
moto's S3, the same handler `mock_aws` gives boto3, so checksums, tags and `If-None-Match`
behave as moto's S3 does. Nothing here leaves the process.

The app writes its log lines and metrics to whatever `sys.stdout` is; a CLI under test
captures its own stdout, so the app's go to `AppTransport.log` instead, as a server process
would write them to its own log.
"""

from __future__ import annotations

import io
from contextlib import redirect_stdout
from typing import Any
from urllib.parse import urlsplit

import httpx

# Per-connection headers: meaningful to a socket, not to the app or to S3.
_HOP_BY_HOP = frozenset({"host", "connection", "content-length", "accept-encoding"})


class AppTransport(httpx.BaseTransport):
    """httpx requests to `audience` → the Chalice app; any other host → moto's S3."""

    def __init__(self, app_client: Any, audience: str) -> None:
        parts = urlsplit(audience)
        if parts.path.strip("/"):
            raise ValueError(f"an audience with a path is not supported here: {audience!r}")
        self.app_client = app_client  # a chalice.test.Client of app.py's app
        self.audience = audience.rstrip("/")
        self._api_host = parts.netloc
        self.log = io.StringIO()  # the app's stdout: one JSON line per request, EMF metrics

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        """Answer one request as the deployed API (or its bucket) would."""
        if request.url.netloc.decode("ascii") == self._api_host:
            return self._app(request)
        return self._storage(request)

    def _app(self, request: httpx.Request) -> httpx.Response:
        with redirect_stdout(self.log):
            answer = self.app_client.http.request(
                request.method,
                request.url.raw_path.decode("ascii"),
                headers=_forwarded(request),
                body=request.read(),
            )
        return httpx.Response(
            answer.status_code, headers=answer.headers, content=answer.body, request=request
        )

    @staticmethod
    def _storage(request: httpx.Request) -> httpx.Response:
        # moto's stubber is what `mock_aws` hooks into botocore; called directly it never
        # touches the network, and it is disabled (None) outside `mock_aws`.
        from botocore.awsrequest import AWSPreparedRequest
        from botocore.compat import HTTPHeaders
        from moto.core.models import botocore_stubber

        headers = HTTPHeaders()
        for name, value in _forwarded(request).items():
            headers[name] = value
        body = request.read()
        headers["Content-Length"] = str(len(body))
        prepared = AWSPreparedRequest(
            method=request.method,
            url=str(request.url),
            headers=headers,
            body=body,
            stream_output=False,
        )
        answer = botocore_stubber("before-send.s3", prepared)
        if answer is None:
            raise RuntimeError(f"moto is not running or does not serve {request.url.host}")
        kept = {k: v for k, v in answer.headers.items() if k.lower() in {"content-type", "etag"}}
        return httpx.Response(
            answer.status_code, headers=kept, content=answer.content, request=request
        )


def _forwarded(request: httpx.Request) -> dict[str, str]:
    return {k: v for k, v in request.headers.items() if k.lower() not in _HOP_BY_HOP}
