"""`make serve`'s emulation of the API Gateway WebSocket API (PROTOCOL.md §10).

Chalice's local server has no WebSockets, so this serves them on loopback:
- a WebSocket server (library `websockets`): a handshake becomes a `$connect` event for the
  app's own handler (a non-2xx answer refuses it with HTTP 403), each text frame a
  `$default` event, a close a `$disconnect` event: API-Gateway-shaped, as Lambda gets them;
- the management API on an HTTP port: `POST /@connections/{id}` sends a frame, `DELETE`
  closes the connection, an unknown id is `410 GoneException`. The app reaches it through
  its boto3 `apigatewaymanagementapi` client and LIVE_MANAGEMENT_URL, so the production
  code path is the one exercised.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import re
import threading
import uuid
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

log = logging.getLogger("nt2-sync.live-ws")
Handler = Callable[[dict[str, Any], Any], Any]
_CONNECTION_PATH = re.compile(r"^(?:/[^@]*)?/@connections/([^/]+)$")
_STAGE = "local"


def ws_event(route_key: str, connection_id: str, domain: str, **extra: Any) -> dict[str, Any]:
    """An API Gateway WebSocket event as Lambda receives it."""
    event_type = {"$connect": "CONNECT", "$disconnect": "DISCONNECT"}.get(route_key, "MESSAGE")
    return {
        "requestContext": {
            "routeKey": route_key,
            "eventType": event_type,
            "connectionId": connection_id,
            "apiId": "local",
            "stage": _STAGE,
            "domainName": domain,
        },
        "isBase64Encoded": False,
        **extra,
    }


class LiveServer:
    """The WebSocket server and the management API, each on its own loopback port."""

    def __init__(self, connect: Handler, message: Handler, disconnect: Handler) -> None:
        self.connect, self.message, self.disconnect = connect, message, disconnect
        self.loop = asyncio.new_event_loop()
        self.connections: dict[str, Any] = {}
        self.ready: dict[str, asyncio.Event] = {}
        self.ws_port = 0
        self.http: ThreadingHTTPServer | None = None
        self._server: Any = None
        self._started = threading.Event()
        self._thread = threading.Thread(target=self._run, name="live-ws", daemon=True)

    # --- lifecycle --------------------------------------------------------------------

    def start(self, ws_port: int = 0, http_port: int = 0) -> None:
        """Listen on both ports (0: any free one) and set LIVE_WS_URL / LIVE_MANAGEMENT_URL."""
        self._ws_port_wanted = ws_port
        self._thread.start()
        self._started.wait(10)
        self.http = ThreadingHTTPServer(("127.0.0.1", http_port), _management_handler(self))
        self.http.daemon_threads = True
        threading.Thread(target=self.http.serve_forever, name="live-mgmt", daemon=True).start()
        os.environ["LIVE_WS_URL"] = self.url
        os.environ["LIVE_MANAGEMENT_URL"] = self.management_url

    @property
    def url(self) -> str:
        return f"ws://127.0.0.1:{self.ws_port}"

    @property
    def management_url(self) -> str:
        assert self.http is not None
        return f"http://127.0.0.1:{self.http.server_address[1]}"

    def stop(self) -> None:
        if self.http is not None:
            self.http.shutdown()
            self.http.server_close()
        if self._server is not None:
            self.loop.call_soon_threadsafe(self._server.close)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(5)

    def _run(self) -> None:
        from websockets.asyncio.server import serve

        asyncio.set_event_loop(self.loop)

        async def begin() -> None:
            self._server = await serve(
                self._session,
                "127.0.0.1",
                self._ws_port_wanted,
                process_request=self._handshake,
                ping_interval=None,  # clients ping with frames (§10); API Gateway does not
            )
            self.ws_port = self._server.sockets[0].getsockname()[1]
            self._started.set()

        self.loop.run_until_complete(begin())
        self.loop.run_forever()

    # --- WebSocket side ---------------------------------------------------------------

    async def _handshake(self, connection: Any, request: Any) -> Any:
        """$connect before the handshake completes: refused unless the app says 2xx."""
        cid = _connection_id(connection)
        query = {k: v[0] for k, v in parse_qs(urlsplit(request.path).query).items()}
        self.ready[cid] = asyncio.Event()
        self.connections[cid] = connection
        event = ws_event("$connect", cid, self._domain(), queryStringParameters=query or None)
        out = await asyncio.to_thread(self.connect, event, None)
        status = int((out or {}).get("statusCode", 500))
        if not 200 <= status < 300:
            self.connections.pop(cid, None)
            self.ready.pop(cid, None)
            return connection.respond(403, "Forbidden\n")
        return None

    async def _session(self, connection: Any) -> None:
        cid = _connection_id(connection)
        self.ready[cid].set()
        try:
            async for frame in connection:
                body = frame if isinstance(frame, str) else frame.decode("utf-8", "replace")
                event = ws_event("$default", cid, self._domain(), body=body)
                await asyncio.to_thread(self.message, event, None)
        except Exception:  # noqa: BLE001 - a broken socket is a disconnect like any other
            log.debug("connection %s dropped", cid)
        finally:
            self.connections.pop(cid, None)
            self.ready.pop(cid, None)
            event = ws_event("$disconnect", cid, self._domain())
            await asyncio.to_thread(self.disconnect, event, None)

    def _domain(self) -> str:
        return f"127.0.0.1:{self.ws_port}"

    # --- management API side ----------------------------------------------------------

    async def _ready(self, cid: str) -> Any:
        """The open connection of `cid` (waiting for a handshake in progress), else None.

        A client that went away after $connect said yes but before the handshake completed
        never reaches `_session`: it is forgotten here at once (a $disconnect for the app),
        not waited for, or every later post to it would stall the request that makes it."""
        ready = self.ready.get(cid)
        if ready is None:
            return None
        deadline = self.loop.time() + 2
        while not ready.is_set():
            transport = getattr(self.connections.get(cid), "transport", None)
            if transport is None or transport.is_closing():
                self.connections.pop(cid, None)
                self.ready.pop(cid, None)
                event = ws_event("$disconnect", cid, self._domain())
                await asyncio.to_thread(self.disconnect, event, None)
                return None
            if self.loop.time() > deadline:
                return None
            await asyncio.sleep(0.02)
        return self.connections.get(cid)

    async def _post(self, cid: str, data: bytes) -> bool:
        connection = await self._ready(cid)
        if connection is None:
            return False
        try:
            await connection.send(data.decode("utf-8"))
        except Exception:  # noqa: BLE001 - closed meanwhile: gone
            return False
        return True

    async def _close(self, cid: str) -> bool:
        connection = await self._ready(cid)
        if connection is None:
            return False
        await connection.close()
        return True

    def run(self, coro: Any) -> bool:
        result: bool = asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout=5)
        return result


def _connection_id(connection: Any) -> str:
    return uuid.UUID(str(connection.id)).hex


def _management_handler(live: LiveServer) -> type[BaseHTTPRequestHandler]:
    class Management(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        disable_nagle_algorithm = True

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
            pass

        def _answer(self, ok: bool) -> None:
            if ok:
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            body = json.dumps({"message": "The connection is gone."}).encode()
            self.send_response(410)
            self.send_header("x-amzn-ErrorType", "GoneException")
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def _cid(self) -> str | None:
            match = _CONNECTION_PATH.match(urlsplit(self.path).path)
            return match.group(1) if match else None

        def do_POST(self) -> None:  # noqa: N802
            data = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            cid = self._cid()
            self._answer(cid is not None and live.run(live._post(cid, data)))

        def do_DELETE(self) -> None:  # noqa: N802
            cid = self._cid()
            self._answer(cid is not None and live.run(live._close(cid)))

    return Management
