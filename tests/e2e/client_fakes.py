"""An in-memory server that follows PROTOCOL.md v1.1, for the client's tests.

`FakeServer.handle()` answers one request; `serve()` puts it behind a real HTTP port (so
the CLI can be driven as a subprocess), `transport()` behind an httpx.MockTransport.
Switches on `FakeServer.evil` turn it into the malicious server of issue 8.
"""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx

from chalicelib.shared.didkey import InvalidDidKey, parse_did_key
from chalicelib.shared.encoding import EncodingError, b64url_decode, b64url_encode
from chalicelib.shared.messages import rotate_message, session_message, verify


class Fail(Exception):
    def __init__(self, status: int, code: str, message: str = "", headers: dict | None = None):
        super().__init__(code)
        self.status, self.code, self.message = status, code, message or code
        self.headers = headers or {}


def now_ms() -> int:
    return int(time.time() * 1000)


@dataclass
class FakeVault:
    key_did: str
    salt_hex: str
    kdf: dict[str, Any]
    verifier: str | None
    public_keys: Any
    registered_at: int
    head: int = 0
    items: dict[str, dict[str, Any]] = field(default_factory=dict)
    history: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    batches: dict[tuple[str, str], tuple[Any, dict[str, Any]]] = field(default_factory=dict)
    devices: dict[str, dict[str, Any]] = field(default_factory=dict)
    attachments: dict[str, dict[str, Any]] = field(default_factory=dict)
    blobs: dict[str, bytes] = field(default_factory=dict)
    premium_active: bool = False
    redeemed: set[str] = field(default_factory=set)


@dataclass
class Evil:
    """Malicious switches (each affects what the server *returns*, never what it stores)."""

    kdf_iterations: int | None = None
    kdf_algorithm: str | None = None
    salt_hex: str | None = None
    verifier: str | None = None
    swap: tuple[str, str] | None = None  # serve these two items' ciphertexts crossed
    replay: dict[str, int] = field(default_factory=dict)  # id -> index in history to serve
    flip: set[str] = field(default_factory=set)  # flip one byte of these items' ciphertexts
    audience: str | None = None


class FakeServer:
    def __init__(self, audience: str = "http://fake.invalid", *, premium_required: bool = False):
        self.audience = audience
        self.premium_required = premium_required
        self.lock = threading.RLock()
        self.vaults: dict[str, FakeVault] = {}  # current keyDid -> vault
        self.retired: dict[str, FakeVault] = {}
        self.nonces: dict[str, tuple[str, int]] = {}
        self.sessions: dict[str, dict[str, Any]] = {}
        self.promos: dict[str, int] = {}
        self.evil = Evil()
        self.requests: list[tuple[str, str, bool]] = []  # (method, path, authenticated)
        self.fail_next: list[
            tuple[str, int, str, dict]
        ] = []  # (path prefix, status, code, headers)

    # -- transports ------------------------------------------------------------------------
    def transport(self) -> httpx.MockTransport:
        def handler(request: httpx.Request) -> httpx.Response:
            status, headers, body = self.handle(
                request.method,
                request.url.path,
                request.url.query.decode(),
                dict(request.headers),
                request.content,
            )
            return httpx.Response(status, headers=headers, content=body)

        return httpx.MockTransport(handler)

    # -- dispatch ---------------------------------------------------------------------------
    def handle(self, method: str, path: str, query: str, headers: dict[str, str], raw: bytes):
        headers = {k.lower(): v for k, v in headers.items()}
        params = {k: v[0] for k, v in parse_qs(query, keep_blank_values=True).items()}
        self.requests.append((method, path, "authorization" in headers))
        with self.lock:
            try:
                for i, (prefix, status, code, extra) in enumerate(self.fail_next):
                    if path.startswith(prefix):
                        del self.fail_next[i]
                        raise Fail(status, code, code, extra)
                if path.startswith("/_blob/"):
                    return self._blob(method, path, headers, raw)
                body = None
                if raw:
                    try:
                        body = json.loads(raw)
                    except ValueError:
                        raise Fail(400, "invalid_request", "bad JSON") from None
                result = self._route(method, path, params, headers, body)
                if result is None:
                    return 204, {}, b""
                status, payload = result
                return status, {"content-type": "application/json"}, json.dumps(payload).encode()
            except Fail as f:
                out = json.dumps({"code": f.code, "message": f.message}).encode()
                return f.status, {"content-type": "application/json", **f.headers}, out

    def _route(self, method, path, params, headers, body):
        routes = {
            ("GET", "/api/health"): lambda: (
                200,
                {
                    "status": "ok",
                    "audience": self.evil.audience or self.audience,
                    "protocol": "1.1",
                },
            ),
            ("POST", "/api/auth/challenge"): lambda: self.challenge(body),
            ("POST", "/api/auth/session"): lambda: self.open_session(body),
            ("DELETE", "/api/auth/session"): lambda: self.end_session(headers),
            ("GET", "/api/vault/bootstrap"): lambda: self.bootstrap(params),
            ("POST", "/api/vault/register"): lambda: self.register(self.auth(headers), body),
            ("POST", "/api/vault/rotate"): lambda: self.rotate(self.auth(headers), body),
            ("GET", "/api/salt"): lambda: self.salt(self.auth(headers), params),
            ("POST", "/api/sync/push"): lambda: self.push(self.auth(headers), body),
            ("GET", "/api/sync/pull"): lambda: self.pull(self.auth(headers), params),
            ("GET", "/api/sync/status"): lambda: self.status(self.auth(headers)),
            ("GET", "/api/devices"): lambda: self.devices(self.auth(headers)),
            ("GET", "/api/attachments"): lambda: self.att_list(self.auth(headers)),
            ("GET", "/api/premium"): lambda: (200, self.premium(self.auth(headers))),
            ("POST", "/api/premium/redeem"): lambda: self.redeem(self.auth(headers), body),
            ("POST", "/api/premium/checkout"): lambda: self.checkout(self.auth(headers)),
        }
        if (method, path) in routes:
            return routes[(method, path)]()
        parts = path.split("/")
        if path.startswith("/api/devices/") and method == "PATCH":
            return self.rename(self.auth(headers), parts[3], body)
        if path.startswith("/api/devices/") and path.endswith("/revoke"):
            return self.revoke(self.auth(headers), parts[3])
        if path.startswith("/api/attachments/"):
            return self.attachment(method, self.auth(headers), parts[3], parts[4:], body)
        raise Fail(404, "not_found", "no such route")

    # -- identity ---------------------------------------------------------------------------
    @staticmethod
    def _did(value):
        if not isinstance(value, str):
            raise Fail(400, "invalid_request")
        try:
            return parse_did_key(value)
        except InvalidDidKey:
            raise Fail(400, "invalid_key_did") from None

    def challenge(self, body):
        self._did((body or {}).get("keyDid"))
        nonce = b64url_encode(secrets.token_bytes(32))
        self.nonces[nonce] = (body["keyDid"], now_ms() + 120_000)
        return 200, {"nonce": nonce, "expiresAt": now_ms() + 120_000}

    def open_session(self, body):
        body = body or {}
        pub = self._did(body.get("keyDid"))
        entry = self.nonces.pop(body.get("nonce"), None)
        if entry is None or entry[0] != body["keyDid"]:
            raise Fail(401, "challenge_invalid")
        msg = session_message(self.audience, body["keyDid"], body["replicaId"], body["nonce"])
        if not verify(pub, msg, b64url_decode(body["signature"])):
            raise Fail(401, "invalid_signature")
        vault = self.vaults.get(body["keyDid"])
        if vault is not None:
            device = vault.devices.get(body["replicaId"])
            if device and device["revokedAt"]:
                raise Fail(403, "device_revoked")
            if device is None:
                self._enrol(vault, body["replicaId"], body.get("deviceName"))
        token = secrets.token_urlsafe(24)
        self.sessions[token] = {
            "keyDid": body["keyDid"],
            "replicaId": body["replicaId"],
            "deviceName": body.get("deviceName"),
            "expiresAt": now_ms() + 3_600_000,
        }
        return 200, {"token": token, "expiresAt": self.sessions[token]["expiresAt"]}

    @staticmethod
    def _enrol(vault, replica_id, name):
        vault.devices[replica_id] = {
            "replicaId": replica_id,
            "name": name,
            "enrolledAt": now_ms(),
            "lastSeenAt": now_ms(),
            "revokedAt": None,
        }

    def auth(self, headers) -> dict[str, Any]:
        token = headers.get("authorization", "").removeprefix("Bearer ")
        session = self.sessions.get(token)
        if session is None:
            raise Fail(401, "unauthorized")
        if session["expiresAt"] < now_ms():
            raise Fail(401, "session_expired")
        vault = self.vaults.get(session["keyDid"])
        if vault is not None:
            device = vault.devices.get(session["replicaId"])
            if device and device["revokedAt"]:
                raise Fail(401, "session_revoked")
        return {**session, "token": token}

    def end_session(self, headers):
        self.sessions.pop(self.auth(headers)["token"], None)

    def _vault(self, session) -> FakeVault:
        vault = self.vaults.get(session["keyDid"])
        if vault is None:
            raise Fail(404, "vault_not_found")
        if session["replicaId"] not in vault.devices:
            self._enrol(vault, session["replicaId"], session.get("deviceName"))
        return vault

    # -- vault ------------------------------------------------------------------------------
    def bootstrap(self, params):
        self._did(params.get("keyDid"))
        vault = self.vaults.get(params["keyDid"])
        if vault is None:
            raise Fail(404, "vault_not_found")
        kdf = dict(vault.kdf)
        if self.evil.kdf_iterations is not None:
            kdf["iterations"] = self.evil.kdf_iterations
        if self.evil.kdf_algorithm is not None:
            kdf["algorithm"] = self.evil.kdf_algorithm
        return 200, {
            "keyDid": vault.key_did,
            "saltHex": self.evil.salt_hex or vault.salt_hex,
            "verifier": self.evil.verifier or vault.verifier,
            "publicKeys": vault.public_keys,
            "kdf": kdf,
        }

    def register(self, session, body):
        if not isinstance(body, dict) or set(body) - {
            "saltHex",
            "kdf",
            "verifier",
            "publicKeys",
            "proof",
        }:
            raise Fail(400, "invalid_request")
        did = session["keyDid"]
        if did in self.retired:
            raise Fail(409, "key_did_retired")
        kdf = body.get("kdf") or {"algorithm": "PBKDF2-SHA256", "iterations": 100_000}
        if kdf.get("iterations", 0) < 100_000:
            raise Fail(400, "invalid_request")
        vault = self.vaults.get(did)
        if self.premium_required and not (vault and vault.premium_active):
            if not self.promos.get("__pending__" + did):
                raise Fail(402, "premium_required")
        if vault is None:
            vault = FakeVault(
                did, body["saltHex"], kdf, body.get("verifier"), body.get("publicKeys"), now_ms()
            )
            vault.premium_active = bool(self.promos.get("__pending__" + did))
            self.vaults[did] = vault
            self._enrol(vault, session["replicaId"], session.get("deviceName"))
            return 201, {"keyDid": did, "registeredAt": vault.registered_at}
        if vault.salt_hex != body["saltHex"]:
            raise Fail(409, "salt_conflict")
        if body.get("kdf") and body["kdf"] != vault.kdf:
            raise Fail(409, "kdf_conflict")
        if body.get("verifier") is not None:
            vault.verifier = body["verifier"]
        return 200, {"keyDid": did, "registeredAt": vault.registered_at}

    def salt(self, session, params):
        if params.get("keyDid") != session["keyDid"]:
            raise Fail(403, "key_did_mismatch")
        vault = self._vault(session)
        return 200, {"saltHex": self.evil.salt_hex or vault.salt_hex, "verifier": vault.verifier}

    def rotate(self, session, body):
        vault = self._vault(session)
        new = body["newKeyDid"]
        pub = self._did(new)
        msg = rotate_message(self.audience, session["keyDid"], new)
        if not verify(pub, msg, b64url_decode(body["signature"])):
            raise Fail(401, "invalid_signature")
        if new in self.vaults:
            raise Fail(409, "key_did_taken")
        if new in self.retired:
            raise Fail(409, "key_did_retired")
        if body.get("kdf") and body["kdf"]["iterations"] < vault.kdf["iterations"]:
            raise Fail(409, "kdf_conflict")
        old = session["keyDid"]
        del self.vaults[old]
        self.retired[old] = vault
        vault.key_did = new
        vault.kdf = body.get("kdf") or vault.kdf
        if body.get("verifier") is not None:
            vault.verifier = body["verifier"]
        self.vaults[new] = vault
        for token in [t for t, s in self.sessions.items() if s["keyDid"] == old]:
            del self.sessions[token]
        return 200, {"keyDid": new, "rotatedAt": now_ms()}

    # -- sync -------------------------------------------------------------------------------
    def _served(self, vault: FakeVault, item: dict[str, Any]) -> dict[str, Any]:
        item = dict(item)
        if item["deleted"]:
            return item
        evil = self.evil
        if evil.swap and item["id"] in evil.swap:
            other = evil.swap[1] if item["id"] == evil.swap[0] else evil.swap[0]
            item["ciphertext"] = vault.items[other]["ciphertext"]
        if item["id"] in evil.replay:
            item["ciphertext"] = vault.history[item["id"]][evil.replay[item["id"]]]["ciphertext"]
        if item["id"] in evil.flip:
            raw = bytearray(b64url_decode(item["ciphertext"]))
            raw[len(raw) // 2] ^= 0x01
            item["ciphertext"] = b64url_encode(bytes(raw))
        return item

    def push(self, session, body):
        if not isinstance(body, dict) or set(body) != {"batchId", "items"}:
            raise Fail(400, "invalid_request")
        items = body["items"]
        if not isinstance(items, list) or not 1 <= len(items) <= 500:
            raise Fail(400, "invalid_request")
        ids = [i["id"] for i in items]
        if len(set(ids)) != len(ids):
            raise Fail(400, "duplicate_item")
        for item in items:
            if item.get("deleted") and item.get("ciphertext") is not None:
                raise Fail(400, "invalid_request")
            if not item.get("deleted") and not item.get("ciphertext"):
                raise Fail(400, "invalid_request")
        vault = self._vault(session)
        if self.premium_required and not vault.premium_active:
            raise Fail(402, "premium_required")
        key = (session["replicaId"], body["batchId"])
        if key in vault.batches:
            stored, response = vault.batches[key]
            if stored != items:
                raise Fail(409, "batch_mismatch")
            return 200, response
        results = []
        for item in items:
            current = vault.items.get(item["id"])
            stored_version = current["version"] if current else 0
            if stored_version != item.get("baseVersion", 0):
                results.append(
                    {
                        "id": item["id"],
                        "status": "conflict",
                        "current": self._served(vault, current) if current else None,
                    }
                )
                continue
            vault.head += 1
            new = {
                "id": item["id"],
                "version": vault.head,
                "deleted": bool(item.get("deleted")),
                "ciphertext": None if item.get("deleted") else item["ciphertext"],
                "replicaId": session["replicaId"],
                "updatedAt": now_ms(),
            }
            vault.items[item["id"]] = new
            vault.history.setdefault(item["id"], []).append(new)
            results.append({"id": item["id"], "status": "accepted", "version": vault.head})
        response = {"watermark": vault.head, "results": results}
        vault.batches[key] = (items, response)
        return 200, response

    def pull(self, session, params):
        vault = self._vault(session)
        try:
            since = int(params.get("since", "0"))
            limit = int(params.get("limit", "200"))
        except ValueError:
            raise Fail(400, "invalid_request") from None
        if not 1 <= limit <= 1000 or since < 0:
            raise Fail(400, "invalid_request")
        if since > vault.head:
            raise Fail(410, "resync_required")
        due = sorted(
            (i for i in vault.items.values() if i["version"] > since), key=lambda i: i["version"]
        )
        page, size = [], 0
        for item in due:
            ct = len(item["ciphertext"] or "")
            if page and (len(page) == limit or size + ct > 4 * 1024 * 1024):
                break
            page.append(self._served(vault, item))
            size += ct
        has_more = len(page) < len(due)
        watermark = page[-1]["version"] if has_more else vault.head
        return 200, {"items": page, "watermark": watermark, "hasMore": has_more}

    def status(self, session):
        vault = self.vaults.get(session["keyDid"])
        if vault is None:
            return 200, {
                "registered": False,
                "keyDid": session["keyDid"],
                "registeredAt": None,
                "watermark": 0,
                "lastPushAt": None,
                "lastPullAt": None,
                "counts": {"items": 0, "tombstones": 0, "attachments": 0, "attachmentBytes": 0},
                "devices": 0,
                "premium": self.premium(session),
            }
        live = [i for i in vault.items.values() if not i["deleted"]]
        committed = [a for a in vault.attachments.values() if a.get("committedAt")]
        return 200, {
            "registered": True,
            "keyDid": vault.key_did,
            "registeredAt": vault.registered_at,
            "watermark": vault.head,
            "lastPushAt": None,
            "lastPullAt": None,
            "counts": {
                "items": len(live),
                "tombstones": len(vault.items) - len(live),
                "attachments": len(committed),
                "attachmentBytes": sum(a["size"] for a in committed),
            },
            "devices": sum(1 for d in vault.devices.values() if not d["revokedAt"]),
            "premium": self.premium(session),
        }

    # -- devices ----------------------------------------------------------------------------
    def _device_view(self, device, session):
        return {**device, "current": device["replicaId"] == session["replicaId"]}

    def devices(self, session):
        vault = self._vault(session)
        return 200, {"devices": [self._device_view(d, session) for d in vault.devices.values()]}

    def rename(self, session, replica_id, body):
        vault = self._vault(session)
        if replica_id not in vault.devices:
            raise Fail(404, "device_not_found")
        vault.devices[replica_id]["name"] = body["name"]
        return 200, self._device_view(vault.devices[replica_id], session)

    def revoke(self, session, replica_id):
        vault = self._vault(session)
        if replica_id not in vault.devices:
            raise Fail(404, "device_not_found")
        device = vault.devices[replica_id]
        device["revokedAt"] = device["revokedAt"] or now_ms()
        return 200, self._device_view(device, session)

    # -- attachments ------------------------------------------------------------------------
    def attachment(self, method, session, att_id, rest, body):
        vault = self._vault(session)
        action = rest[0] if rest else ""
        if method == "POST" and action == "upload":
            vault.attachments[att_id] = {
                "id": att_id,
                "size": body["size"],
                "sha256": body["sha256"],
            }
            sha = base64.b64encode(b64url_decode(body["sha256"])).decode()
            return 200, {
                "url": f"{self.audience}/_blob/{vault.key_did}/{att_id}",
                "method": "PUT",
                "headers": {
                    "Content-Type": "application/octet-stream",
                    "x-amz-checksum-sha256": sha,
                },
                "expiresAt": now_ms() + 900_000,
            }
        record = vault.attachments.get(att_id)
        if method == "POST" and action == "commit":
            if record is None:
                raise Fail(404, "attachment_not_found")
            blob = vault.blobs.get(att_id)
            if (
                blob is None
                or len(blob) != record["size"]
                or b64url_encode(hashlib.sha256(blob).digest()) != record["sha256"]
            ):
                raise Fail(409, "attachment_mismatch")
            record.setdefault("committedAt", now_ms())
            return 200, record
        if method == "GET" and action == "download":
            if record is None or "committedAt" not in record:
                raise Fail(404, "attachment_not_found")
            return 200, {"url": f"{self.audience}/_blob/{vault.key_did}/{att_id}", "expiresAt": 0}
        if method == "DELETE" and not action:
            vault.attachments.pop(att_id, None)
            vault.blobs.pop(att_id, None)
            return None
        raise Fail(404, "not_found")

    def att_list(self, session):
        vault = self._vault(session)
        return 200, {
            "attachments": [a for a in vault.attachments.values() if "committedAt" in a],
            "cursor": None,
        }

    def _blob(self, method, path, headers, raw):
        _, _, did, att_id = path.split("/", 3)
        vault = self.vaults.get(did)
        if vault is None:
            return 403, {}, b"<Error/>"
        if method == "PUT":
            record = vault.attachments.get(att_id)
            expected = base64.b64encode(hashlib.sha256(raw).digest()).decode()
            if record is None or headers.get("x-amz-checksum-sha256") != expected:
                return 400, {}, b"<Error>BadDigest</Error>"
            vault.blobs[att_id] = raw
            return 200, {}, b""
        blob = vault.blobs.get(att_id)
        return (200, {}, blob) if blob is not None else (404, {}, b"")

    # -- premium ----------------------------------------------------------------------------
    def premium(self, session):
        vault = self.vaults.get(session["keyDid"])
        active = (
            bool(vault.premium_active)
            if vault
            else bool(self.promos.get("__pending__" + session["keyDid"]))
        )
        if not self.premium_required:
            return {"required": False, "active": True, "source": "dev", "expiresAt": None}
        return {
            "required": True,
            "active": active,
            "source": "promo" if active else None,
            "expiresAt": now_ms() + 86_400_000 if active else None,
        }

    def redeem(self, session, body):
        code = body["code"]
        if code not in self.promos:
            raise Fail(404, "promo_not_found")
        if self.promos[code] <= 0:
            raise Fail(409, "promo_exhausted")
        self.promos[code] -= 1
        vault = self.vaults.get(session["keyDid"])
        if vault:
            vault.premium_active = True
        else:
            self.promos["__pending__" + session["keyDid"]] = 1
        return 200, self.premium(session)

    def checkout(self, session):
        return 200, {
            "url": f"https://shop.example/checkout?checkout[custom][key_did]={session['keyDid']}"
        }


class _Handler(BaseHTTPRequestHandler):
    server: Any
    protocol_version = "HTTP/1.1"

    def _do(self):
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        parts = urlsplit(self.path)
        status, headers, body = self.server.fake.handle(
            self.command, parts.path, parts.query, dict(self.headers), raw
        )
        self.send_response(status)
        for k, v in headers.items():
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _do

    def log_message(self, *args):
        pass


def serve(fake: FakeServer | None = None) -> tuple[FakeServer, ThreadingHTTPServer, str]:
    """Start a fake on 127.0.0.1:<free port>; its audience is that URL."""
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    url = f"http://127.0.0.1:{httpd.server_address[1]}"
    fake = fake or FakeServer()
    fake.audience = url
    httpd.fake = fake  # type: ignore[attr-defined]
    threading.Thread(
        target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
    ).start()
    return fake, httpd, url


__all__ = ["EncodingError", "Evil", "FakeServer", "FakeVault", "Fail", "serve"]
