"""PROTOCOL.md over HTTP: one method per route, errors as ServerError, 429/503 backed off.

httpx is imported when the first Api is made: commands that never talk to a server
(`item list`, `item show`) start without it (≈ 0.15 s, with its own CLI's imports).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from nt2sync.errors import NetworkError, ServerError, UsageProblem

if TYPE_CHECKING:
    import httpx

MAX_RETRIES = 5
MAX_TRANSPORT_RETRIES = 3
MAX_BACKOFF_SECONDS = 30.0


def normalize_server(url: str) -> str:
    """The audience: the --server URL without trailing slash (and without a stray /api)."""
    url = url.strip().rstrip("/")
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise UsageProblem(f"--server must be an http(s) URL, not {url!r}.")
    return url


def _retry_after(response: httpx.Response) -> float | None:
    value = response.headers.get("Retry-After")
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        return None


# A Lambda answers at most 6 MB; a pull page holds ≤ 4 MiB of ciphertext (§5).
MAX_RESPONSE_BYTES = 8 * 1024 * 1024
MAX_DEVICE_PAGES = 100  # 10 000 devices: far past any honest vault (§7: 100 active)
MAX_ATTACHMENT_PAGES = 10_000  # 1 000 000 attachments of 100 a page

# The transport of an Api built without one; None is httpx's own (the network). Tests of the
# CLI point it at the app in-process (tests/support/app_transport.py).
default_transport: httpx.BaseTransport | None = None


class Api:
    """Thin HTTP client for one server (base URL = audience)."""

    def __init__(
        self,
        server: str,
        *,
        transport: httpx.BaseTransport | None = None,
        timeout: float = 60.0,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        import httpx

        self.audience = normalize_server(server)
        self.token: str | None = None
        self._sleep = sleep
        transport = transport if transport is not None else default_transport
        self._http = httpx.Client(
            base_url=self.audience,
            transport=transport,
            timeout=timeout,
            headers={"User-Agent": "nt2sync/0.1"},
        )
        # presigned object-storage URLs: another host, no API headers, long timeout
        self._blobs = httpx.Client(transport=transport, timeout=300)

    def close(self) -> None:
        """Close the connection pool."""
        self._http.close()
        self._blobs.close()

    # -- plumbing --------------------------------------------------------------------------
    def request(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        params: dict[str, Any] | None = None,
        auth: bool = True,
        retry_transport: bool = True,
    ) -> Any:
        """Send one request; return parsed JSON (None for 204) or raise ServerError."""
        headers = {}
        if auth and self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        import httpx

        attempt = 0
        while True:
            attempt += 1
            try:
                response = self._http.request(
                    method, "/api" + path, json=json, params=params, headers=headers
                )
            except httpx.TransportError as exc:
                if retry_transport and attempt < MAX_TRANSPORT_RETRIES:
                    self._sleep(min(MAX_BACKOFF_SECONDS, 0.2 * 2**attempt))
                    continue
                raise NetworkError(
                    f"Cannot reach the sync server at {self.audience} ({type(exc).__name__})."
                ) from exc
            if response.status_code in (429, 503) and attempt < MAX_RETRIES:
                wait = _retry_after(response)
                self._sleep(min(MAX_BACKOFF_SECONDS, wait if wait is not None else 2**attempt))
                continue
            return self._parse(response)

    @staticmethod
    def _parse(response: httpx.Response) -> Any:
        """JSON of a success; ServerError with the protocol's code otherwise."""
        if response.status_code == 204:
            return None
        if len(response.content) > MAX_RESPONSE_BYTES:
            raise ServerError(
                response.status_code,
                "bad_response",
                "The server's answer is larger than any honest answer; nothing was changed.",
            )
        try:
            body = response.json()
        except ValueError:
            body = None
        if response.is_success:
            if body is None:
                raise ServerError(
                    response.status_code, "bad_response", "The server answered with no JSON."
                )
            return body
        code = "http_error"
        request = response.request
        message = (
            f"The server answered HTTP {response.status_code} to {request.method} "
            f"{request.url.path} (is it an NT² sync server speaking protocol 1.2?)."
        )
        if isinstance(body, dict) and isinstance(body.get("code"), str):
            code = body["code"]
            message = str(body.get("message") or message)
        raise ServerError(response.status_code, code, message, _retry_after(response))

    # -- routes ----------------------------------------------------------------------------
    def health(self) -> dict[str, Any]:
        """GET /api/health."""
        return self.request("GET", "/health", auth=False)  # type: ignore[no-any-return]

    def challenge(self, key_did: str) -> dict[str, Any]:
        """POST /api/auth/challenge."""
        return self.request("POST", "/auth/challenge", json={"keyDid": key_did}, auth=False)  # type: ignore[no-any-return]

    def open_session(
        self,
        key_did: str,
        replica_id: str,
        nonce: str,
        signature: str,
        device_name: str | None = None,
    ) -> dict[str, Any]:
        """POST /api/auth/session (a nonce is single use: never retried on transport errors)."""
        body: dict[str, Any] = {
            "keyDid": key_did,
            "replicaId": replica_id,
            "nonce": nonce,
            "signature": signature,
        }
        if device_name:
            body["deviceName"] = device_name
        return self.request("POST", "/auth/session", json=body, auth=False, retry_transport=False)  # type: ignore[no-any-return]

    def end_session(self) -> None:
        """DELETE /api/auth/session."""
        self.request("DELETE", "/auth/session")

    def bootstrap(self, key_did: str) -> dict[str, Any]:
        """GET /api/vault/bootstrap (public)."""
        return self.request("GET", "/vault/bootstrap", params={"keyDid": key_did}, auth=False)  # type: ignore[no-any-return]

    def register(self, body: dict[str, Any]) -> dict[str, Any]:
        """POST /api/vault/register."""
        return self.request("POST", "/vault/register", json=body)  # type: ignore[no-any-return]

    def salt(self, key_did: str) -> dict[str, Any]:
        """GET /api/salt."""
        return self.request("GET", "/salt", params={"keyDid": key_did})  # type: ignore[no-any-return]

    def rotate(self, body: dict[str, Any]) -> dict[str, Any]:
        """POST /api/vault/rotate (its proof's nonce is single use: never retried)."""
        return self.request("POST", "/vault/rotate", json=body, retry_transport=False)  # type: ignore[no-any-return]

    def push(self, batch_id: str, items: list[dict[str, Any]]) -> dict[str, Any]:
        """POST /api/sync/push (idempotent by batchId: safe to retry)."""
        return self.request("POST", "/sync/push", json={"batchId": batch_id, "items": items})  # type: ignore[no-any-return]

    def pull(self, since: int, limit: int) -> dict[str, Any]:
        """GET /api/sync/pull."""
        return self.request("GET", "/sync/pull", params={"since": since, "limit": limit})  # type: ignore[no-any-return]

    def status(self) -> dict[str, Any]:
        """GET /api/sync/status."""
        return self.request("GET", "/sync/status")  # type: ignore[no-any-return]

    def devices(self) -> list[dict[str, Any]]:
        """GET /api/devices (every page)."""
        return self._every_page("/devices", "devices", "device list", MAX_DEVICE_PAGES)

    def rename_device(self, replica_id: str, name: str) -> dict[str, Any]:
        """PATCH /api/devices/{replicaId}."""
        return self.request("PATCH", f"/devices/{replica_id}", json={"name": name})  # type: ignore[no-any-return]

    def revoke_device(self, replica_id: str, proof: dict[str, str]) -> dict[str, Any]:
        """POST /api/devices/{replicaId}/revoke (the proof's nonce is single use: no retry)."""
        return self.request(
            "POST",
            f"/devices/{replica_id}/revoke",
            json={"proof": proof},
            retry_transport=False,
        )  # type: ignore[no-any-return]

    def attachment_upload(self, attachment_id: str, size: int, sha256: str) -> dict[str, Any]:
        """POST /api/attachments/{id}/upload."""
        return self.request(  # type: ignore[no-any-return]
            "POST", f"/attachments/{attachment_id}/upload", json={"size": size, "sha256": sha256}
        )

    def attachment_commit(self, attachment_id: str) -> dict[str, Any]:
        """POST /api/attachments/{id}/commit."""
        return self.request("POST", f"/attachments/{attachment_id}/commit")  # type: ignore[no-any-return]

    def attachment_download(self, attachment_id: str) -> dict[str, Any]:
        """GET /api/attachments/{id}/download."""
        return self.request("GET", f"/attachments/{attachment_id}/download")  # type: ignore[no-any-return]

    def attachment_delete(self, attachment_id: str) -> None:
        """DELETE /api/attachments/{id}."""
        self.request("DELETE", f"/attachments/{attachment_id}")

    def attachments(self) -> list[dict[str, Any]]:
        """Every committed attachment (all pages of GET /api/attachments)."""
        return self._every_page(
            "/attachments", "attachments", "attachment list", MAX_ATTACHMENT_PAGES
        )

    def _every_page(
        self, path: str, member: str, what: str, max_pages: int
    ) -> list[dict[str, Any]]:
        """All pages of a cursor-paged list; a cursor that repeats, a malformed page or more
        than `max_pages` pages is refused (a hostile server's list must end)."""
        out: list[dict[str, Any]] = []
        cursor: str | None = None
        seen: set[str] = set()
        for _page in range(max_pages):
            page = self.request("GET", path, params={"cursor": cursor} if cursor else None)
            rows = page.get(member) if isinstance(page, dict) else None
            if not isinstance(rows, list) or not all(isinstance(r, dict) for r in rows):
                break
            out += rows
            cursor = page.get("cursor")
            if not cursor:
                return out
            if not isinstance(cursor, str) or cursor in seen:
                break
            seen.add(cursor)
        raise ServerError(
            200, "bad_response", f"The server's {what} does not end; nothing was changed."
        )

    def premium(self) -> dict[str, Any]:
        """GET /api/premium."""
        return self.request("GET", "/premium")  # type: ignore[no-any-return]

    def redeem(self, code: str) -> dict[str, Any]:
        """POST /api/premium/redeem."""
        return self.request("POST", "/premium/redeem", json={"code": code})  # type: ignore[no-any-return]

    def checkout(self) -> dict[str, Any]:
        """POST /api/premium/checkout."""
        return self.request("POST", "/premium/checkout")  # type: ignore[no-any-return]

    # -- object storage (presigned URLs) -------------------------------------------------------
    def put_blob(self, url: str, headers: dict[str, str], data: bytes) -> None:
        """PUT bytes to a presigned URL with exactly the headers the server returned."""
        import httpx

        try:
            response = self._blobs.put(url, content=data, headers=headers)
        except httpx.TransportError as exc:
            raise NetworkError("Cannot reach the attachment storage.") from exc
        if response.status_code == 412:
            return  # the object is already there (an earlier PUT landed): commit verifies it
        if not response.is_success:
            raise ServerError(
                response.status_code,
                "storage_error",
                f"The attachment storage refused the upload (HTTP {response.status_code}).",
            )

    def get_blob(self, url: str) -> bytes:
        """GET bytes from a presigned URL."""
        import httpx

        try:
            response = self._blobs.get(url)
        except httpx.TransportError as exc:
            raise NetworkError("Cannot reach the attachment storage.") from exc
        if not response.is_success:
            raise ServerError(
                response.status_code,
                "storage_error",
                f"The attachment storage refused the download (HTTP {response.status_code}).",
            )
        return response.content
