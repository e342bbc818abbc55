"""A malicious (or merely failing) server: the real app, with its answers rewritten.

`LyingServer` wraps the honest transport (`AppTransport`) like a proxy in front of the API.
It is honest until a named hook is called; each hook rewrites what the real app really
answered (issue 8: a server that lies about the KDF, salt or verifier at bootstrap, swaps or
alters ciphertexts, replays an older revision, forges a deletion, claims another audience),
or answers one request itself with a protocol error, as a throttling proxy or a failing
Lambda would.
It never changes what the app stores: a lie is only in what the client is served.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any, NamedTuple

import httpx

from chalicelib.errors import ApiError, ErrorCode
from chalicelib.shared.encoding import b64url_decode, b64url_encode
from tests.support.app_transport import AppTransport

Lie = Callable[[str, Any], Any]  # (API path, the app's JSON answer) -> the JSON served


class Seen(NamedTuple):
    """One request as it reached the server."""

    method: str
    path: str
    authenticated: bool


class LyingServer(httpx.BaseTransport):
    """The real app behind a proxy whose named hooks rewrite its responses."""

    def __init__(self, honest: AppTransport) -> None:
        self.honest = honest
        self.audience = honest.audience
        self.requests: list[Seen] = []
        # Every ciphertext the app accepted for an item, oldest first (what a replay serves).
        self.revisions: dict[str, list[str]] = {}
        self.pushed: list[list[str]] = []  # the ids of every push the app answered, in order
        self._lies: list[Lie] = []
        self._answers: list[tuple[str, ApiError]] = []

    # -- the hooks ---------------------------------------------------------------------------
    def claim_audience(self, audience: str) -> None:
        """GET /api/health names another public URL."""
        self._lie_on("/api/health", lambda body: {**body, "audience": audience})

    def rewrite(self, path: str, change: Callable[[dict[str, Any]], Any]) -> None:
        """Any other lie: the app's JSON answer on `path`, changed by `change`."""
        self._lie_on(path, change)

    def weaken_kdf(self, *, iterations: int | None = None, algorithm: str | None = None) -> None:
        """The bootstrap's kdf is weaker than the vault's (a cheaper offline guess)."""

        def weaker(body: dict[str, Any]) -> dict[str, Any]:
            kdf = dict(body["kdf"])
            if iterations is not None:
                kdf["iterations"] = iterations
            if algorithm is not None:
                kdf["algorithm"] = algorithm
            return {**body, "kdf": kdf}

        self._lie_on("/api/vault/bootstrap", weaker)

    def serve_salt(self, salt_hex: str) -> None:
        """Bootstrap and GET /api/salt serve another salt than the stored one."""
        for path in ("/api/vault/bootstrap", "/api/salt"):
            self._lie_on(path, lambda body: {**body, "saltHex": salt_hex})

    def serve_verifier(self, verifier: str) -> None:
        """The bootstrap serves another verifier than the stored one."""
        self._lie_on("/api/vault/bootstrap", lambda body: {**body, "verifier": verifier})

    def swap_ciphertexts(self, first: str, second: str) -> None:
        """Each of two items is served with the other's current ciphertext."""
        other = {first: second, second: first}

        def swapped(item: dict[str, Any]) -> dict[str, Any]:
            if item["id"] not in other:
                return item
            return {**item, "ciphertext": self.revisions[other[item["id"]]][-1]}

        self._lie_on_items(swapped)

    def flip_byte(self, item_id: str) -> None:
        """One byte in the middle of this item's ciphertext is flipped."""

        def flipped(item: dict[str, Any]) -> dict[str, Any]:
            if item["id"] != item_id:
                return item
            raw = bytearray(b64url_decode(item["ciphertext"]))
            raw[len(raw) // 2] ^= 0x01
            return {**item, "ciphertext": b64url_encode(bytes(raw))}

        self._lie_on_items(flipped)

    def replay_revision(self, item_id: str, index: int) -> None:
        """This item is served (at its current version) with an older accepted ciphertext."""

        def replayed(item: dict[str, Any]) -> dict[str, Any]:
            if item["id"] != item_id:
                return item
            return {**item, "ciphertext": self.revisions[item_id][index]}

        self._lie_on_items(replayed)

    def forge_deletion(self, item_id: str) -> None:
        """A pull serves this item as a tombstone with no ciphertext (a deletion nobody made)."""

        def forged(body: Any) -> Any:
            if not isinstance(body, dict) or "items" not in body:
                return body
            items = [
                {**item, "deleted": True, "ciphertext": None} if item["id"] == item_id else item
                for item in body["items"]
            ]
            return {**body, "items": items}

        self._lies.append(lambda at, body: forged(body) if at == "/api/sync/pull" else body)

    def hide(self, match: Callable[[str], bool]) -> None:
        """Items whose id matches are left out of every pull page and push conflict (a server
        that withholds them, or forks this device's view from another's)."""

        def hidden(at: str, body: Any) -> Any:
            if at == "/api/sync/pull" and isinstance(body, dict) and "items" in body:
                return {**body, "items": [i for i in body["items"] if not match(i["id"])]}
            return body

        self._lies.append(hidden)

    def drop_after_accepting(self, item_id: str) -> None:
        """Pushes of this item are answered "accepted" (the app stores them), and the item
        is never served again: to the pusher it is a write the server dropped."""
        self.hide(lambda at: at == item_id)

    def serve_deleted_live(self, item_id: str, index: int) -> None:
        """This item's tombstone is served as the live item it was (an older ciphertext)."""

        def undeleted(body: Any) -> Any:
            if not isinstance(body, dict) or "items" not in body:
                return body
            items = [
                {**i, "deleted": False, "ciphertext": self.revisions[item_id][index]}
                if i["id"] == item_id and i.get("deleted")
                else i
                for i in body["items"]
            ]
            return {**body, "items": items}

        self._lies.append(lambda at, body: undeleted(body) if at == "/api/sync/pull" else body)

    def stop_lying(self) -> None:
        """Honest again from the next request (the hooks so far are dropped)."""
        self._lies.clear()

    def answer_once(self, path: str, code: ErrorCode, *, retry_after: int | None = None) -> None:
        """The next request under `path` is answered with this error; the app never sees it."""
        headers = {"Retry-After": str(retry_after)} if retry_after is not None else None
        self._answers.append((path, ApiError(code, f"injected {code}", headers)))

    # -- the proxy ---------------------------------------------------------------------------
    def handle_request(self, request: httpx.Request) -> httpx.Response:
        """Record the request, answer it or pass it on, then rewrite the app's answer."""
        path = request.url.path
        self.requests.append(Seen(request.method, path, "authorization" in request.headers))
        api = str(request.url).startswith(self.audience + "/api/")
        if api:
            for index, (prefix, error) in enumerate(self._answers):
                if path.startswith(prefix):
                    del self._answers[index]
                    return httpx.Response(
                        error.status, headers=error.headers, json=error.body(), request=request
                    )
        response = self.honest.handle_request(request)
        json_type = response.headers.get("content-type", "").startswith("application/json")
        if not api or not json_type or not response.content:
            return response
        answer = json.loads(response.content)
        if request.method == "POST" and path == "/api/sync/push" and response.is_success:
            self._remember(json.loads(request.content), answer)
        served = answer
        for lie in self._lies:
            served = lie(path, served)
        if served is answer:
            return response
        headers = {k: v for k, v in response.headers.items() if k.lower() != "content-length"}
        return httpx.Response(response.status_code, headers=headers, json=served, request=request)

    def _remember(self, pushed: dict[str, Any], answer: dict[str, Any]) -> None:
        sent = {item["id"]: item for item in pushed["items"]}
        self.pushed.append(list(sent))
        for result in answer["results"]:
            item = sent[result["id"]]
            if result["status"] == "accepted" and item.get("ciphertext"):
                self.revisions.setdefault(item["id"], []).append(item["ciphertext"])

    def _lie_on(self, path: str, rewrite: Callable[[dict[str, Any]], Any]) -> None:
        def lie(at: str, body: Any) -> Any:
            return rewrite(body) if at == path and isinstance(body, dict) else body

        self._lies.append(lie)

    def _lie_on_items(self, rewrite: Callable[[dict[str, Any]], dict[str, Any]]) -> None:
        """Rewrite every live item served: pull pages and a push conflict's `current`."""

        def one(item: Any) -> Any:
            if isinstance(item, dict) and item.get("ciphertext") and not item.get("deleted"):
                return rewrite(item)
            return item

        def lie(at: str, body: Any) -> Any:
            if at == "/api/sync/pull" and isinstance(body, dict) and "items" in body:
                return {**body, "items": [one(item) for item in body["items"]]}
            if at == "/api/sync/push" and isinstance(body, dict) and "results" in body:
                results = [
                    {**r, "current": one(r["current"])} if r.get("current") else r
                    for r in body["results"]
                ]
                return {**body, "results": results}
            return body

        self._lies.append(lie)
