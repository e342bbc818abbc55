"""The CLI in-process against the real app (moto), including the malicious server of issue 8.

Every `Api` the CLI builds sends its requests through the LyingServer (nt2sync.api's
`default_transport`); the app's audience is the suite's PUBLIC_API_URL.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from chalicelib.shared import crypto
from nt2sync import api
from tests.e2e.client_cli import run, run_process
from tests.helpers import AUDIENCE
from tests.support.lying_server import LyingServer


@pytest.fixture(autouse=True)
def cli_talks_to(server: LyingServer, monkeypatch: pytest.MonkeyPatch) -> LyingServer:
    """Every Api the CLI builds (it passes no transport) reaches the app through `server`."""
    monkeypatch.setattr(api, "default_transport", server)
    return server


@pytest.fixture
def a(tmp_path: Path, server: LyingServer) -> Path:
    """Device A: a vault with two items, sync enabled."""
    vault = tmp_path / "a.sqlite3"
    assert run(vault, "init").code == 0
    run(vault, "item", "add", "alpha", "--body", "first")
    run(vault, "item", "add", "beta", "--body", "second")
    assert run(vault, "sync", "enable", "--server", server.audience + "/").code == 0
    return vault


def key_did(vault: Path) -> str:
    return run(vault, "kit", "--json").json()["keyDid"]


def snapshot(vault: Path) -> tuple:
    items = run(vault, "item", "list", "--json").json()
    status = run(vault, "sync", "status", "--offline", "--json").json()
    return items, status["watermark"]


def test_json_shapes_and_usage_errors(tmp_path, server, a):
    assert set(run(a, "kit", "--json").json()) >= {"server", "keyDid", "kdf"}
    items = run(a, "item", "list", "--json").json()
    assert {tuple(sorted(i)) for i in items} == {
        ("body", "id", "title", "updatedAt", "url", "username")
    }
    assert set(run(a, "item", "show", items[0]["id"], "--json").json()) == set(items[0])
    status = run(a, "sync", "status", "--json").json()
    assert {
        "registered",
        "server",
        "keyDid",
        "lastSyncAt",
        "watermark",
        "counts",
        "devices",
        "premium",
    } <= set(status)
    assert status["registered"] is True and status["counts"] == {"local": 2, "remote": 2}
    assert status["server"] == server.audience  # the trailing slash was dropped
    bad = run(a, "item", "show")
    assert bad.code == 2 and "Traceback" not in bad.err and len(bad.err.strip().splitlines()) == 1
    missing = run(a, "item", "show", "nope")
    assert missing.code == 1 and missing.err.strip() == "No item with id nope."
    wrong = run(a, "item", "list", password="nope")
    assert wrong.code == 1 and "master password is wrong" in wrong.err
    nopw = run(a, "item", "list", password=None)
    assert nopw.code == 1 and "NT2_PASSWORD" in nopw.err


def test_sync_on_change_and_offline(tmp_path, server, a):
    b = tmp_path / "b.sqlite3"
    assert run(b, "join", "--server", server.audience, "--key-did", key_did(a)).code == 0
    added = run(a, "item", "add", "gamma", "--json").json()["id"]  # pushed at once
    offline = run(a, "item", "add", "delta", "--offline", "--json").json()["id"]
    assert run(b, "sync", "now").code == 0
    titles = {i["title"] for i in run(b, "item", "list", "--json").json()}
    assert "gamma" in titles and "delta" not in titles
    assert run(a, "sync", "now", "--json").json()["pushed"] == 1
    assert run(b, "sync", "now", "--json").json()["pulled"] == 1
    assert {added, offline} <= {i["id"] for i in run(b, "item", "list", "--json").json()}


def test_disable_then_reenable(tmp_path, server, stored, a):
    disabled = run(a, "sync", "disable", "--json").json()
    assert disabled["syncEnabled"] is False and disabled["serverDataKept"] is True
    assert stored.sessions() == 0  # the session was ended
    run(a, "item", "add", "while off")
    assert run(a, "sync", "now").code == 1
    assert run(a, "sync", "enable", "--server", server.audience, "--json").json()["pushed"] == 1
    assert len([i for i in stored.items(key_did(a)) if not i.startswith("nt2.")]) == 3


def test_subprocess_entry_point(tmp_path, server, a):
    # the real `python -m nt2sync`: JSON out, one-sentence errors, exit codes
    listed = run_process(a, "item", "list", "--json")
    assert listed.code == 0 and len(listed.json()) == 2
    usage = run_process(a, "item", "frobnicate")
    assert usage.code == 2 and "Traceback" not in usage.err
    wrong = run_process(a, "item", "list", password="bad")
    assert wrong.code == 1 and "Traceback" not in wrong.err


# -- the malicious server ------------------------------------------------------------------
def test_wrong_password_at_join_fails_before_any_authenticated_request(tmp_path, server, a):
    b = tmp_path / "b.sqlite3"
    server.requests.clear()
    result = run(b, "join", "--server", server.audience, "--key-did", key_did(a), password="nope")
    assert result.code == 1 and "master password is wrong" in result.err
    assert not b.exists()
    assert all(not authed and not p.startswith("/api/auth") for _, p, authed in server.requests)


@pytest.mark.parametrize(
    ("lie", "message"),
    [
        (("weaken_kdf", {"iterations": 1000}), "weak key-derivation parameters"),
        (("weaken_kdf", {"algorithm": "PBKDF2-SHA1"}), "weak key-derivation parameters"),
        (("serve_salt", {"salt_hex": "ab" * 16}), "another salt than the one in your kit"),
        ("verifier", "sent a wrong verifier"),
        (("claim_audience", {"audience": "https://elsewhere.example"}), f"not '{AUDIENCE}"),
    ],
    ids=["weak-iterations", "weak-algorithm", "other-salt", "other-verifier", "other-audience"],
)
def test_join_refuses_a_lying_server(tmp_path, server, a, lie, message):
    kit = tmp_path / "kit.json"
    assert run(a, "kit", "--out", str(kit), "--json").code == 0
    if lie == "verifier":  # a well-formed verifier of another data key, under the right KEK
        meta = run(a, "kit", "--json").json()
        kek = crypto.derive_kek("pw-one", bytes.fromhex(meta["saltHex"]), 100_000)
        verifier = crypto.seal_data_key(kek, bytes(16), crypto.new_data_key())
        lie = ("serve_verifier", {"verifier": verifier})
    hook, arguments = lie
    getattr(server, hook)(**arguments)
    server.requests.clear()
    b = tmp_path / "b.sqlite3"
    result = run(b, "join", "--kit", str(kit))
    assert result.code == 1 and message in result.err, result.err
    assert "Traceback" not in result.err and not b.exists()
    assert all(not authed for _, _, authed in server.requests)


@pytest.fixture
def ab(tmp_path, server, a):
    """A and B both hold the two items; A then edits both (B has not pulled that yet)."""
    b = tmp_path / "b.sqlite3"
    assert run(b, "join", "--server", server.audience, "--key-did", key_did(a)).code == 0
    ids = {i["title"]: i["id"] for i in run(a, "item", "list", "--json").json()}
    run(a, "item", "edit", ids["alpha"], "--body", "first, edited")
    run(a, "item", "edit", ids["beta"], "--body", "second, edited")
    return b, ids


def test_swapped_ciphertexts_are_refused(server, ab):
    b, ids = ab
    before = snapshot(b)
    server.swap_ciphertexts(ids["alpha"], ids["beta"])
    result = run(b, "sync", "now")
    assert result.code == 1 and "altered, swapped or from another vault" in result.err
    assert snapshot(b) == before


def test_flipped_byte_is_refused(server, ab):
    b, ids = ab
    before = snapshot(b)
    server.flip_byte(ids["beta"])
    result = run(b, "sync", "now")
    assert result.code == 1 and "altered, swapped or from another vault" in result.err
    assert snapshot(b) == before


def test_forged_deletion_is_refused(server, ab):
    # GIVEN a server that invents a deletion nobody made (issue 14 row 1)
    b, ids = ab
    before = snapshot(b)
    server.forge_deletion(ids["alpha"])
    # WHEN B syncs THEN the deletion is refused in one sentence and B keeps the item
    result = run(b, "sync", "now")
    assert result.code == 1 and "cannot prove" in result.err and "item was kept" in result.err
    assert snapshot(b) == before


def test_a_real_deletion_is_sealed_and_accepted(server, ab):
    # GIVEN A deletes an item
    b, ids = ab
    a_vault = b.with_name("a.sqlite3")
    assert run(a_vault, "item", "rm", ids["alpha"]).code == 0
    # THEN the tombstone A pushed carries a sealed record, and B applies it
    assert run(b, "sync", "now").code == 0
    assert [i["title"] for i in run(b, "item", "list", "--json").json()] == ["beta"]


def test_replayed_older_ciphertext_is_refused(server, ab):
    b, ids = ab
    assert run(b, "sync", "now").code == 0  # B has seen the edited revision
    a_vault = b.with_name("a.sqlite3")
    run(a_vault, "item", "edit", ids["alpha"], "--body", "third")  # something new is due
    before = snapshot(b)
    server.replay_revision(ids["alpha"], 0)  # …served with the first ciphertext
    result = run(b, "sync", "now")
    assert result.code == 1 and "replayed an older version" in result.err
    assert snapshot(b) == before


def test_another_salt_at_sync_enable_is_refused(tmp_path, server, a):
    run(a, "sync", "disable")
    server.serve_salt("cd" * 16)
    result = run(a, "sync", "enable", "--server", server.audience)
    assert result.code == 1 and "another salt" in result.err


@pytest.mark.parametrize(
    "field, value",
    [
        ("server", "https://relay.attacker.example"),
        ("kdf", {"algorithm": "PBKDF2-SHA256", "iterations": 100_001}),
        ("saltHex", "cd" * 16),
        ("mac", None),
    ],
    ids=["other-server", "other-kdf", "other-salt", "no-mac"],
)
def test_join_refuses_an_altered_kit_before_sending_anything(tmp_path, server, a, field, value):
    # GIVEN a kit whose server (or KDF, salt, MAC) was changed (issue 14 row 10)
    kit = tmp_path / "kit.json"
    assert run(a, "kit", "--out", str(kit), "--json").code == 0
    data = json.loads(kit.read_text())
    data[field] = value
    kit.write_text(json.dumps(data))
    server.requests.clear()
    # WHEN a new device joins with it
    b = tmp_path / "b.sqlite3"
    result = run(b, "join", "--kit", str(kit))
    # THEN it is refused in one sentence, and nothing at all was sent anywhere
    assert result.code == 1 and "kit" in result.err and "Traceback" not in result.err
    assert server.requests == [] and not b.exists()


def test_join_with_an_intact_kit_works_and_a_wrong_password_sends_nothing(tmp_path, server, a):
    kit = tmp_path / "kit.json"
    assert run(a, "kit", "--out", str(kit), "--json").code == 0
    server.requests.clear()
    refused = run(tmp_path / "c.sqlite3", "join", "--kit", str(kit), password="not-it")
    assert refused.code == 1 and "does not match the master password" in refused.err
    assert server.requests == []
    assert run(tmp_path / "b.sqlite3", "join", "--kit", str(kit)).code == 0
