"""The dev server's WebSocket side: a client that leaves after $connect said yes but before
the handshake completed is forgotten at the next post (a $disconnect for the app), at once:
waiting for it stalled every request that fanned out to its vault by 2 s per post."""

from __future__ import annotations

import socket
import threading
import time
from typing import Any

from devserver.live_ws import LiveServer


def test_a_client_gone_during_the_handshake_is_dropped_at_once() -> None:
    connected: list[str] = []
    disconnected: list[str] = []
    client = socket.create_connection
    holder: dict[str, Any] = {}
    accepted = threading.Event()

    def on_connect(event: dict[str, Any], _ctx: Any) -> dict[str, Any]:
        # the hook between $connect and the handshake's end: the client goes away here
        connected.append(event["requestContext"]["connectionId"])
        holder["sock"].close()
        time.sleep(0.2)  # the server's loop sees the EOF before the 101 is written
        accepted.set()
        return {"statusCode": 200}

    def on_disconnect(event: dict[str, Any], _ctx: Any) -> dict[str, Any]:
        disconnected.append(event["requestContext"]["connectionId"])
        return {"statusCode": 200}

    live = LiveServer(on_connect, lambda e, c: {"statusCode": 200}, on_disconnect)
    live.start()
    try:
        sock = client(("127.0.0.1", live.ws_port))
        holder["sock"] = sock
        sock.sendall(
            b"GET /?ticket=t HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n"
            b"Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
            b"Sec-WebSocket-Version: 13\r\n\r\n"
        )
        assert accepted.wait(5)
        time.sleep(0.2)
        cid = connected[0]
        start = time.monotonic()
        assert live.run(live._post(cid, b'{"type":"changed"}')) is False  # gone: a 410
        assert time.monotonic() - start < 1.0
        assert disconnected == [cid] and cid not in live.connections
        assert cid not in live.ready
    finally:
        live.stop()
