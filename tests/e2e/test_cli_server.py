"""Issue 8 end to end: the `nt2sync` CLI as a subprocess against the real local server."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.e2e.client_cli import Result, run, run_process

pytestmark = pytest.mark.e2e


def cli(vault: Path, *args: str, process: bool = True, **kw: Any) -> Result:
    """A subprocess, as a person runs it; process=False runs the same main() in-process
    (used for the secondary flows, to keep the suite fast on a 2-core machine)."""
    return (run_process if process else run)(vault, *args, **kw)


def ok(vault: Path, *args: str, **kw: Any) -> Any:
    result = cli(vault, *args, "--json", **kw)
    assert result.code == 0, result.err
    return result.json()


def okq(vault: Path, *args: str, **kw: Any) -> Any:
    return ok(vault, *args, process=False, **kw)


def cliq(vault: Path, *args: str, **kw: Any) -> Result:
    return cli(vault, *args, process=False, **kw)


def items(vault: Path, **kw: Any) -> dict[str, str]:
    return {i["title"]: i["body"] for i in ok(vault, "item", "list", **kw)}


def has_route(server: Any, method: str, path: str) -> bool:
    # API Gateway (chalice local) answers a route that does not exist with 403, not JSON
    response = httpx.request(method, server.url + path, timeout=10)
    return response.headers.get("content-type", "").startswith("application/json")


@pytest.fixture
def pair(tmp_path: Path, server: Any) -> tuple[Path, Path, str]:
    """A (init, two items, sync enabled) and B (joined with the master password)."""
    a, b = tmp_path / "a.sqlite3", tmp_path / "b.sqlite3"
    key_did = ok(a, "init")["keyDid"]
    ok(a, "item", "add", "alpha", "--body", "first")
    ok(a, "item", "add", "beta", "--body", "second")
    enabled = ok(a, "sync", "enable", "--server", server.url + "/", "--device-name", "laptop")
    assert enabled["pushed"] == 2 and enabled["keyDid"] == key_did
    assert enabled["pulled"] == 0  # nothing but its own writes: not downloaded again
    joined = ok(b, "join", "--server", server.url, "--key-did", key_did, "--device-name", "phone")
    assert joined["pulled"] == 2
    return a, b, key_did


def test_two_devices_conflict_deletion_and_status(pair):
    a, b, _ = pair
    assert items(a) == items(b) == {"alpha": "first", "beta": "second"}
    ids = {i["title"]: i["id"] for i in ok(a, "item", "list")}
    # both edit the same item offline; B's edit is later
    ok(a, "item", "edit", ids["alpha"], "--body", "A's words", "--offline")
    ok(b, "item", "edit", ids["alpha"], "--body", "B's words", "--offline")
    ok(a, "sync", "now")
    assert ok(b, "sync", "now")["conflicts"] == 1
    ok(a, "sync", "now")
    assert items(a) == items(b)
    assert ok(a, "item", "show", ids["alpha"])["body"] == "B's words"
    copies = [t for t, body in items(a).items() if "conflicted copy" in t]
    assert len(copies) == 1 and items(a)[copies[0]] == "A's words"
    # a deletion propagates
    ok(b, "item", "rm", ids["beta"])
    ok(a, "sync", "now")
    assert "beta" not in items(a)
    status = ok(a, "sync", "status")
    assert status["registered"] is True and status["devices"] == 2
    assert status["counts"]["local"] == status["counts"]["remote"] == 2
    assert status["premium"]["active"] is True


def test_wrong_password_at_join_fails_before_any_session(tmp_path, pair, server):
    a, _, key_did = pair
    c = tmp_path / "c.sqlite3"
    result = cli(c, "join", "--server", server.url, "--key-did", key_did, password="not it")
    assert result.code == 1 and "master password is wrong" in result.err
    assert "Traceback" not in result.err and not c.exists()
    assert len(ok(a, "devices", "list")) == 2  # nobody enrolled
    mismatch = cli(
        c, "join", "--server", server.url.replace("127.0.0.1", "localhost"), "--key-did", key_did
    )
    assert mismatch.code == 1 and "public URL" in mismatch.err and not c.exists()


def test_disable_then_reenable_reconciles(pair):
    a, b, _ = pair
    assert okq(a, "sync", "disable")["serverDataKept"] is True
    okq(a, "item", "add", "offline note", "--body", "kept")
    okq(b, "item", "add", "from b", "--body", "meanwhile")
    again = okq(a, "sync", "enable", "--server", cli_server(a))
    assert again["pushed"] == 1 and again["pulled"] >= 1
    okq(b, "sync", "now")
    assert items(a, process=False) == items(b, process=False) and {"offline note", "from b"} <= set(
        items(a, process=False)
    )


def cli_server(vault: Path) -> str:
    return str(okq(vault, "kit")["server"])


def test_backup_export_import_identical(tmp_path, pair):
    a, _, _ = pair
    backup = tmp_path / "a.nt2backup"
    assert okq(a, "backup", "export", str(backup))["items"] == 2
    restored = tmp_path / "restored.sqlite3"
    assert okq(restored, "backup", "import", str(backup))["imported"] == 2
    assert okq(restored, "item", "list") == okq(a, "item", "list")
    assert okq(restored, "kit")["keyDid"] == okq(a, "kit")["keyDid"]
    other = tmp_path / "other.sqlite3"
    okq(other, "init")
    refused = cliq(other, "backup", "import", str(backup))
    assert refused.code == 1 and "another vault" in refused.err


def test_password_change_locks_out_old_password(pair):
    a, b, old_did = pair
    changed = ok(a, "password", "change", NT2_NEW_PASSWORD="pw-two")
    assert changed["keyDid"] != old_did
    ok(a, "item", "add", "after change", "--body", "new key", password="pw-two")
    # B, still on the old password, is locked out with a clear message
    locked = cli(b, "sync", "now")
    assert locked.code == 1 and "changed on another device" in locked.err
    assert cli(a, "item", "list", password="pw-one").code == 1
    # B with the new password is refused locally until the person adopts it
    assert "password adopt" in cli(b, "sync", "now", password="pw-two").err
    assert ok(b, "password", "adopt", password="pw-two")["keyDid"] == changed["keyDid"]
    assert ok(b, "sync", "now", password="pw-two")["pulled"] >= 1
    assert items(b, password="pw-two") == items(a, password="pw-two")
    assert ok(b, "kit", password="pw-two")["keyDid"] == changed["keyDid"]


def test_devices_rename_and_revoke(pair):
    a, b, _ = pair
    devices = {d["name"]: d for d in okq(a, "devices", "list")}
    phone = devices["phone"]["replicaId"]
    assert okq(a, "devices", "rename", phone, "old phone")["name"] == "old phone"
    human = cliq(a, "devices", "revoke", phone)
    assert human.code == 0 and "password change" in human.out
    refused = cliq(b, "sync", "now")
    assert refused.code == 1 and "revoked" in refused.err


def test_attachments_round_trip(tmp_path, pair, server):
    if not has_route(server, "GET", "/api/attachments"):
        pytest.skip("the server has no attachment routes yet")
    a, b, _ = pair
    src = tmp_path / "scan.pdf"
    src.write_bytes(b"%PDF-1.7 secret" * 1000)
    item = {i["title"]: i["id"] for i in okq(a, "item", "list")}["alpha"]
    att = okq(a, "attach", "add", item, str(src))["id"]
    okq(b, "sync", "now")
    out = tmp_path / "out.pdf"
    assert okq(b, "attach", "get", att, str(out))["size"] == src.stat().st_size
    assert out.read_bytes() == src.read_bytes()
    okq(a, "attach", "rm", att)
    assert okq(a, "attach", "list") == []


def test_premium_status(pair):
    a, _, _ = pair
    premium = okq(a, "premium", "status")
    assert set(premium) == {"required", "active", "source", "expiresAt"}
    assert premium["required"] is False and premium["source"] == "dev"
