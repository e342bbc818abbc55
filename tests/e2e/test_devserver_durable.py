"""`make serve` keeps its data: kill -9, a clean restart and --in-memory, over the real HTTP API."""

from __future__ import annotations

import secrets
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import boto3
import httpx
import pytest
from botocore.exceptions import ClientError

from chalicelib.shared.encoding import b64url_encode
from tests.e2e.conftest import ROOT, LocalServer
from tests.e2e.protocol_client import HttpDevice


def item(item_id: str, base: int = 0) -> dict[str, Any]:
    return {
        "id": item_id,
        "baseVersion": base,
        "deleted": False,
        "ciphertext": b64url_encode(f"secret {item_id}".encode()),
    }


def pull_all(dev: HttpDevice) -> dict[str, tuple[int, str]]:
    """id → (version, ciphertext), every page from 0."""
    out: dict[str, tuple[int, str]] = {}
    since = 0
    while True:
        r = dev.pull(since, 200)
        assert r.status_code == 200, r.text
        body = r.json()
        out.update({i["id"]: (i["version"], i["ciphertext"]) for i in body["items"]})
        since = body["watermark"]
        if not body["hasMore"]:
            return out


def fill(srv: LocalServer, seed: bytes) -> tuple[HttpDevice, dict[str, tuple[int, str]]]:
    """Register a vault and push 30 items (some updated); returns what the server acknowledged."""
    dev = HttpDevice(srv.url, seed, "laptop")
    dev.sign_in("Laptop")
    assert dev.register().status_code == 201
    acked: dict[str, tuple[int, str]] = {}
    for batch in range(3):
        items = [item(f"item-{batch}-{n}") for n in range(10)]
        r = dev.push(items)
        assert r.status_code == 200, r.text
        for sent, res in zip(items, r.json()["results"], strict=True):
            assert res["status"] == "accepted"
            acked[sent["id"]] = (res["version"], sent["ciphertext"])
    update = item("item-0-0", base=acked["item-0-0"][0]) | {"ciphertext": "dXBkYXRlZA"}
    res = dev.push([update]).json()["results"][0]
    assert res["status"] == "accepted"
    acked["item-0-0"] = (res["version"], "dXBkYXRlZA")
    return dev, acked


def restarted(dev: HttpDevice, srv: LocalServer) -> HttpDevice:
    """The same device, talking to the restarted server (same port: same audience)."""
    again = HttpDevice(srv.url, dev.seed, dev.replica_id)
    again.sign_in()
    return again


@pytest.mark.parametrize("crash", [True, False], ids=["kill-9", "clean-stop"])
def test_restart_serves_everything_acknowledged(tmp_path: Path, crash: bool) -> None:
    # GIVEN a server keeping its data in a temporary directory, with a vault pushed to it
    data = tmp_path / "data"
    args = ("--data-dir", str(data))
    srv = LocalServer(args=args)
    dev, acked = fill(srv, secrets.token_bytes(32))
    assert pull_all(dev) == acked
    # WHEN it is killed at once (server and backend: kill -9 of the process group), or stopped
    if crash:
        srv.kill_group()
    else:
        srv.stop()
    assert (data / "snapshot").exists()
    # AND started again on the same directory
    srv2 = LocalServer(args=args, port=srv.port)
    try:
        # THEN the session tokens, the vault and every acknowledged write are there
        assert pull_all(dev) == acked
        assert pull_all(restarted(dev, srv2)) == acked
        # AND the vault goes on: the next version follows the last acknowledged one
        top = max(v for v, _ in acked.values())
        res = dev.push([item("after-restart")]).json()["results"][0]
        assert (res["status"], res["version"]) == ("accepted", top + 1)
    finally:
        srv2.stop()


def test_in_memory_keeps_nothing(tmp_path: Path) -> None:
    # GIVEN an --in-memory server with a registered vault
    srv = LocalServer(args=("--in-memory",), extra_env={"NT2_DATA_DIR": str(tmp_path)})
    seed = secrets.token_bytes(32)
    fill(srv, seed)
    srv.stop()
    # WHEN it is started again
    srv2 = LocalServer(args=("--in-memory",), port=srv.port)
    try:
        # THEN the device's key knows no vault, and nothing was written to disk
        dev = HttpDevice(srv2.url, seed, "laptop")
        dev.sign_in()
        assert dev.pull().status_code == 404
        assert list(tmp_path.iterdir()) == []
    finally:
        srv2.stop()


def test_the_data_dir_is_taken_by_one_server(tmp_path: Path) -> None:
    # GIVEN a server using a data directory
    srv = LocalServer(args=("--data-dir", str(tmp_path)))
    try:
        # WHEN a second one is started on it THEN it refuses, naming the directory
        with pytest.raises(RuntimeError, match="server exited: see ") as info:
            LocalServer(args=("--data-dir", str(tmp_path)))
        log = Path(str(info.value).rpartition("see ")[2]).read_text()
        assert f"{tmp_path} is in use by another backend" in log
        assert httpx.get(srv.url + "/api/health").status_code == 200
    finally:
        srv.stop()


class Backend:
    """`python -m devserver.moto_backend` on its own, with a data directory."""

    def __init__(self, data: Path) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "devserver.moto_backend", "--data-dir", str(data)],
            cwd=ROOT,
            stdout=subprocess.PIPE,
        )
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline().decode()
        assert line.startswith("endpoint "), line
        self.url = line.split()[1]

    def client(self, service: str) -> Any:
        return boto3.client(
            service,
            endpoint_url=self.url,
            region_name="us-east-1",
            aws_access_key_id="testing",
            aws_secret_access_key="testing",  # noqa: S106 - moto's fake credentials
        )


def backend_state(b: Backend) -> dict[str, Any]:
    ddb, s3 = b.client("dynamodb"), b.client("s3")
    items = sorted(ddb.scan(TableName="t")["Items"], key=lambda i: (i["pk"]["S"], i["sk"]["S"]))
    obj = s3.get_object(Bucket="bkt", Key="blob", ChecksumMode="ENABLED")
    tags = s3.get_object_tagging(Bucket="bkt", Key="blob")["TagSet"]
    return {
        "items": items,
        "blob": (obj["Body"].read(), obj.get("ChecksumSHA256"), obj["LastModified"], tags),
    }


def test_the_backend_replays_conditional_outcomes(tmp_path: Path) -> None:
    from devserver.backend import create_table_kwargs

    # GIVEN a backend that took writes whose outcome depends on the state they met
    b = Backend(tmp_path)
    ddb, s3 = b.client("dynamodb"), b.client("s3")
    ddb.create_table(**create_table_kwargs("t"))
    key = {"pk": {"S": "p"}, "sk": {"S": "counter"}}
    ddb.put_item(TableName="t", Item={**key, "ver": {"N": "1"}, "n": {"N": "0"}})
    for _ in range(3):  # not idempotent: a double replay would count 6
        ddb.update_item(
            TableName="t",
            Key=key,
            UpdateExpression="ADD n :one",
            ExpressionAttributeValues={":one": {"N": "1"}},
        )
    with pytest.raises(ClientError, match="ConditionalCheckFailed"):
        ddb.put_item(
            TableName="t",
            Item={**key, "ver": {"N": "9"}},
            ConditionExpression="attribute_not_exists(pk)",
        )
    with pytest.raises(ClientError, match="TransactionCanceled"):
        ddb.transact_write_items(
            TransactItems=[
                {"Put": {"TableName": "t", "Item": {"pk": {"S": "p"}, "sk": {"S": "new"}}}},
                {
                    "ConditionCheck": {
                        "TableName": "t",
                        "Key": key,
                        "ConditionExpression": "ver = :v",
                        "ExpressionAttributeValues": {":v": {"N": "2"}},
                    }
                },
            ]
        )
    s3.create_bucket(Bucket="bkt")
    s3.put_object(
        Bucket="bkt",
        Key="blob",
        Body=b"\x00ciphertext",
        Tagging="nt2-state=pending",
        ChecksumAlgorithm="SHA256",
    )
    s3.put_object_tagging(
        Bucket="bkt", Key="blob", Tagging={"TagSet": [{"Key": "nt2-state", "Value": "committed"}]}
    )
    before = backend_state(b)
    assert before["items"][0]["n"] == {"N": "3"}
    # WHEN it is killed, then restarted (journal replay), then stopped and restarted (snapshot)
    b.proc.send_signal(signal.SIGKILL)
    b.proc.wait()
    b = Backend(tmp_path)
    after_kill = backend_state(b)
    b.proc.send_signal(signal.SIGTERM)
    assert b.proc.wait(timeout=30) == 0
    b = Backend(tmp_path)
    try:
        # THEN both restarts serve exactly the state before (the snapshot even the dates)
        assert after_kill["items"] == before["items"]
        assert after_kill["blob"][:2] == before["blob"][:2]
        assert after_kill["blob"][3] == before["blob"][3]
        assert backend_state(b) == after_kill
    finally:
        b.proc.send_signal(signal.SIGTERM)
        b.proc.wait(timeout=30)
