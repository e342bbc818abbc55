"""`make serve` behaviour: an external endpoint via AWS_ENDPOINT_URL; SIGTERM stops it all."""

from __future__ import annotations

import signal
import time
from typing import Any

import boto3
import httpx
import pytest
from moto.server import ThreadedMotoServer

from tests.e2e.conftest import LocalServer
from tests.e2e.protocol_client import HttpDevice


def test_uses_an_existing_endpoint_and_creates_what_is_missing(server_factory: Any) -> None:
    # GIVEN a backend already running elsewhere (here: a moto server of the test's own)
    backend = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    backend.start()
    host, port = backend.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    try:
        # WHEN the local server starts with AWS_ENDPOINT_URL pointing at it
        srv = server_factory(
            AWS_ENDPOINT_URL=endpoint,
            AWS_ACCESS_KEY_ID="testing",
            AWS_SECRET_ACCESS_KEY="testing",
            AWS_DEFAULT_REGION="us-east-1",
            TABLE_NAME="ext-table",
            BUCKET_NAME="ext-bucket",
        )
        # THEN it created the table and bucket there, and the API works on them
        ddb = boto3.client(
            "dynamodb",
            endpoint_url=endpoint,
            region_name="us-east-1",
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
        )
        assert "ext-table" in ddb.list_tables()["TableNames"]
        dev = HttpDevice.new(srv.url, "ext")
        dev.sign_in()
        assert dev.register().status_code == 201
        assert ddb.scan(TableName="ext-table")["Count"] > 0
    finally:
        backend.stop()


def test_sigterm_stops_the_server() -> None:
    srv = LocalServer()
    assert httpx.get(srv.url + "/api/health").status_code == 200
    backend = srv.backend_url()
    assert httpx.get(backend + "/moto-api/").status_code == 200  # its own process
    srv.proc.send_signal(signal.SIGTERM)
    assert srv.proc.wait(timeout=15) == 0
    # THEN the backend process stopped too
    with pytest.raises(httpx.ConnectError):
        httpx.get(backend + "/moto-api/", timeout=2)
    srv.stop()


def test_keep_alive_requests_do_not_wait_for_delayed_acks(server: LocalServer) -> None:
    # Both servers write a response's headers and body in two sends: with Nagle's algorithm
    # on, each response on a kept-alive connection waits ~40 ms for the client's delayed ACK.
    ddb = boto3.client(
        "dynamodb",
        endpoint_url=server.backend_url(),
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",  # noqa: S106 - moto's fake credentials
    )
    with httpx.Client(base_url=server.url) as http:
        http.get("/api/health")
        ddb.list_tables()
        started = time.perf_counter()
        for _ in range(20):
            assert http.get("/api/health").status_code == 200
        api = time.perf_counter() - started
        started = time.perf_counter()
        for _ in range(20):
            ddb.list_tables()
        backend = time.perf_counter() - started
    assert api < 0.5, f"20 API requests took {api:.2f} s"  # ~0.8 s with Nagle on
    assert backend < 0.5, f"20 backend requests took {backend:.2f} s"
