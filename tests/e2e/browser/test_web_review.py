# ruff: noqa: E501 - the JavaScript evaluated in the page is kept as the page runs it
"""Review of re-key and adoption in the browser against the CLI: what a lying server can make
the page store, the CLI's sentences, and keys left in memory once forgotten."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from nt2sync.keyring import STILL_OLD_KEY
from tests.e2e.browser.web_harness import (
    evaluate_error,
    open_harness,
    serve_ciphertext,
    web_context,
)
from tests.e2e.client_cli import run

__all__ = ["web_context"]
pytestmark = pytest.mark.e2e

OLD = "pw-one-old"
NEW = "pw-two-new"


def ok(vault: Path, *args: str, password: str = OLD, **env: str) -> Any:
    result = run(vault, *args, "--json", password=password, **env)
    assert result.code == 0, result.err
    return result.json()


@pytest.fixture
def joined(tmp_path: Path, web_server: Any, web_context: Any) -> Iterator[dict[str, Any]]:
    """A CLI vault (alpha) synced, joined in a page with its own database."""
    a = tmp_path / "a.sqlite3"
    ok(a, "init")
    alpha = ok(a, "item", "add", "alpha", "--body", "first")["id"]
    ok(a, "sync", "enable", "--server", web_server.url)
    db = f"review-{tmp_path.name}"
    page = open_harness(web_context, web_server.web_url(), db)
    page.evaluate(f"async (kit) => nt2.joinFromKit(kit, '{OLD}')", ok(a, "kit"))
    yield {"a": a, "alpha": alpha, "page": page, "db": db}
    page.close()


def wrap_verifier(route: Any) -> None:
    """The server's own bootstrap, its verifier served inside a list."""
    response = route.fetch()
    body = response.json()
    body["verifier"] = [body["verifier"]]
    route.fulfill(response=response, json=body)


@pytest.mark.parametrize("rekey", [False, True])
def test_a_verifier_served_in_another_shape_at_adopt_never_bricks_the_vault(
    joined: dict[str, Any], rekey: bool
) -> None:
    # GIVEN the CLI changed the password (or re-keyed)
    page = joined["page"]
    ok(joined["a"], "password", "change", *(["--rekey"] if rekey else []), NT2_NEW_PASSWORD=NEW)
    # WHEN the browser adopts it from a bootstrap whose verifier is a list holding the real one
    page.route("**/vault/bootstrap*", wrap_verifier)
    outcome = evaluate_error(page, f"() => nt2.adoptPassword('{NEW}')")
    page.unroute("**/vault/bootstrap*")
    # THEN it is refused as a lie and nothing is stored: the previous password still unlocks
    # (stored as served, the list opened nowhere and neither password unlocked the vault)
    assert outcome["code"] == "server_lied"
    page.evaluate("() => nt2.lock()")
    assert evaluate_error(page, f"() => nt2.unlock('{OLD}')")["code"] is None
    assert page.evaluate("() => nt2.listItems()")[0]["title"] == "alpha"
    assert page.errors == []


def test_an_item_still_under_the_old_key_is_refused_in_the_clis_words(
    joined: dict[str, Any],
) -> None:
    # GIVEN the CLI re-keyed, the browser adopted, and the CLI edited alpha under the new key
    page, alpha, a = joined["page"], joined["alpha"], joined["a"]
    old_ct = page.evaluate("(id) => core.vault.V.rows.get(id).ciphertext", alpha)
    ok(a, "password", "change", "--rekey", NT2_NEW_PASSWORD=NEW)
    assert page.evaluate(f"() => nt2.adoptPassword('{NEW}')")["rekeyed"] is True
    ok(a, "item", "edit", alpha, "--body", "edited at epoch 1", password=NEW)

    # WHEN the server serves that edit with the old key's ciphertext
    serve_ciphertext(page, alpha, old_ct)
    notices = page.evaluate("() => nt2.syncNow()")["notices"]
    page.unroute("**/sync/pull*")
    # THEN the page says so in the CLI's sentence (nt2sync/keyring.py)
    assert STILL_OLD_KEY.format(id=alpha) in notices
    assert page.errors == []


KEY_PARTS = (
    "(k) => [k.dataKey, k.item, k.local, k.attachment].every((p) => p.every((b) => b === 0))"
)


def test_a_local_rekey_wipes_the_previous_key_from_memory(
    web_server: Any, web_context: Any
) -> None:
    # GIVEN a vault without sync, its keys held
    page = open_harness(web_context, web_server.web_url())
    page.evaluate(
        f"""async () => {{ await nt2.createVault("{OLD}"); await nt2.saveItem({{title: "one", body: "1"}});
        window.before = core.vault.V.keys; }}"""
    )
    # WHEN it re-keys THEN the previous key is wiped (nothing holds it any more), the new one kept
    page.evaluate(f"() => nt2.changePassword('{OLD}', '{NEW}')")
    assert page.evaluate(f"() => ({KEY_PARTS})(window.before)") is True
    assert page.evaluate(f"() => ({KEY_PARTS})(core.vault.V.keys)") is False
    assert page.evaluate("() => nt2.listItems()")[0]["title"] == "one"
    page.close()


def test_a_finished_rekey_and_a_second_adoption_wipe_the_keys_they_forget(
    joined: dict[str, Any],
) -> None:
    # GIVEN a page that re-keys the vault with sync on (the old key retired while it finishes)
    page, a = joined["page"], joined["a"]
    page.evaluate("() => { window.before = core.vault.V.keys; }")
    page.evaluate(f"() => nt2.changePassword('{OLD}', '{NEW}')")
    # THEN once the re-key is done the retired key is wiped
    assert page.evaluate("() => core.vault.V.retired.length") == 0
    assert page.evaluate(f"() => ({KEY_PARTS})(window.before)") is True
    # GIVEN the CLI adopts, and re-keys twice more; the page adopts the first
    third, fourth = "pw-three", "pw-four"
    ok(a, "password", "adopt", password=NEW, NT2_OLD_PASSWORD=OLD)
    ok(a, "password", "change", "--rekey", password=NEW, NT2_NEW_PASSWORD=third)
    page.evaluate(f"() => nt2.adoptPassword('{third}')")
    page.evaluate("() => { window.held = core.vault.V.retired[0]; }")
    ok(a, "password", "change", "--rekey", password=third, NT2_NEW_PASSWORD=fourth)
    # WHEN it adopts the second THEN the key it held from the first adoption is wiped
    page.evaluate(f"() => nt2.adoptPassword('{fourth}')")
    assert page.evaluate(f"() => ({KEY_PARTS})(window.held)") is True
    assert page.evaluate("() => nt2.listItems()")[0]["title"] == "alpha"
    assert page.errors == []


OWN_ROOT_SHARDS = """async () => { const f = await import('/js/core/manifest-format.js'); const V = core.vault.V;
  const row = V.rows.get(f.rootId(V.st.replicaId)); return Object.keys(f.open(V.keys, row.id, row.ciphertext).shards); }"""


def test_an_adoption_cut_off_at_its_manifest_push_keeps_this_devices_manifest_whole(
    joined: dict[str, Any], web_server: Any, web_context: Any
) -> None:
    # GIVEN the page wrote an item its manifest attests, and the CLI re-keyed
    page, a = joined["page"], joined["a"]
    web = page.evaluate(
        "async () => { const id = await nt2.saveItem({title: 'web', body: 'w'}); await nt2.syncNow(); return id; }"
    )
    shard = page.evaluate(
        "async (id) => (await import('/js/core/manifest-format.js')).shardOf(id)", web
    )
    assert shard in page.evaluate(OWN_ROOT_SHARDS)
    ok(a, "sync", "now")
    ok(a, "password", "change", "--rekey", NT2_NEW_PASSWORD=NEW)
    # WHEN the page adopts but the server cannot be reached for its pushes
    page.route("**/sync/push", lambda route: route.abort())
    adopted = page.evaluate(f"() => nt2.adoptPassword('{NEW}')")
    page.unroute("**/sync/push")
    # THEN the adoption (stored) is said as done, the sync left for later
    assert adopted["rekeyed"] is True
    assert adopted["notices"] == [
        "The server could not be reached; this device's edits are sent at the next sync."
    ]
    # AND after a reload its next sync sends its republished manifest, every shard it had in it
    page.close()
    page = open_harness(web_context, web_server.web_url(), joined["db"])
    page.evaluate(f"() => nt2.unlock('{NEW}')")
    page.evaluate("() => nt2.syncNow()")
    assert shard in page.evaluate(OWN_ROOT_SHARDS)
    assert page.errors == []
    page.close()


WIPED = "(s) => s.every((b) => b === 0)"


def test_a_password_change_and_an_adoption_wipe_the_key_did_seed_they_replace(
    joined: dict[str, Any],
) -> None:
    # GIVEN a synced page; WHEN it changes the password plainly THEN the old signing seed is wiped
    page, a = joined["page"], joined["a"]
    page.evaluate("() => { window.seed = core.vault.V.seed; }")
    page.evaluate(f"() => nt2.changePassword('{OLD}', '{NEW}', {{rekey: false}})")
    assert page.evaluate(f"() => ({WIPED})(window.seed)") is True
    assert page.evaluate(f"() => ({WIPED})(core.vault.V.seed)") is False
    # WHEN the CLI adopts and changes it again, and the page adopts THEN the same
    third = "pw-three"
    ok(a, "password", "adopt", password=NEW)
    ok(a, "password", "change", password=NEW, NT2_NEW_PASSWORD=third)
    page.evaluate("() => { window.seed = core.vault.V.seed; }")
    page.evaluate(f"() => nt2.adoptPassword('{third}')")
    assert page.evaluate(f"() => ({WIPED})(window.seed)") is True
    assert page.evaluate("() => nt2.syncNow()")["notices"] == []
    assert page.errors == []


def lie_bootstrap(change: dict[str, Any]) -> Any:
    def route_it(route: Any) -> None:
        response = route.fetch()
        route.fulfill(response=response, json={**response.json(), **change})

    return route_it


@pytest.mark.parametrize(
    ("change", "said"),
    [
        (
            {"saltHex": "00" * 16},
            "The server names another salt for this vault than the one it was made with; refusing to use it.",
        ),
        (
            {"kdf": {"algorithm": "PBKDF2-SHA256", "iterations": 1000}},
            "The server offered weak key-derivation parameters (1000 PBKDF2 iterations is below the minimum of 100000); refusing to use them.",
        ),
    ],
)
def test_a_lying_bootstrap_at_adopt_is_refused_in_the_clis_words(
    joined: dict[str, Any], change: dict[str, Any], said: str
) -> None:
    # GIVEN the CLI changed the password; WHEN the bootstrap lies about the salt or the KDF
    page = joined["page"]
    ok(joined["a"], "password", "change", NT2_NEW_PASSWORD=NEW)
    page.route("**/vault/bootstrap*", lie_bootstrap(change))
    refused = evaluate_error(page, f"() => nt2.adoptPassword('{NEW}')")
    page.unroute("**/vault/bootstrap*")
    # THEN it is refused in the CLI's sentence (nt2sync/unlock.py), and nothing was stored
    assert refused["message"] == said
    assert page.evaluate("() => nt2.listItems()")[0]["title"] == "alpha"


def test_a_rekey_in_one_tab_is_not_undone_by_a_save_in_another(
    web_server: Any, web_context: Any, tmp_path: Path
) -> None:
    # GIVEN one vault unlocked in two tabs
    db = f"two-tabs-{tmp_path.name}"
    first = open_harness(web_context, web_server.web_url(), db)
    first.evaluate(
        f"async () => {{ await nt2.createVault('{OLD}'); await nt2.saveItem({{title: 'one', body: '1'}}); }}"
    )
    # (the second without BroadcastChannel: it does not hear the first tab's writes, so the
    # writer's check of the stored record before its write is what stops it)
    second = web_context.new_page()
    second.add_init_script("delete window.BroadcastChannel")
    second.goto(f"{web_server.web_url()}/test/harness.html?db={db}")
    second.wait_for_function("window.nt2Ready === true")
    second.evaluate(f"() => nt2.unlock('{OLD}')")
    # WHEN the first re-keys, and the second (still holding the old key) then saves an edit
    first.evaluate(f"() => nt2.changePassword('{OLD}', '{NEW}')")
    saved = evaluate_error(second, "() => nt2.saveItem({title: 'two', body: '2'})")
    # THEN the second tab's stale write is refused, and it is locked to be unlocked again
    assert saved["code"] == "vault_changed"
    assert evaluate_error(second, "() => nt2.listItems()")["code"] == "locked"
    # AND the vault still opens with the new password, the re-key intact
    for page in (first, second):
        page.evaluate("() => nt2.lock()")
    assert evaluate_error(second, f"() => nt2.unlock('{NEW}')")["code"] is None
    assert [i["title"] for i in second.evaluate("() => nt2.listItems()")] == ["one"]
    assert second.evaluate("() => core.vault.V.keys.epoch") == 1
    first.close()
    second.close()
