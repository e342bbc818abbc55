# ruff: noqa: E501 - the JavaScript evaluated in the page is kept as the page runs it
"""Re-keying in the browser next to the `nt2sync` CLI on one real local server: a CLI re-key
adopted through the password page (an unpushed browser edit survives), a browser re-key
adopted by the CLI, an interrupted browser re-key finished later with nothing lost, the
refusal of a re-key the browser cannot do (legacy attachments), and the password page."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import expect

from tests.e2e.browser.web_harness import (
    evaluate_error,
    open_harness,
    serve_ciphertext,
    web_context,
)
from tests.e2e.browser.web_ui import (
    add_item,
    create_vault,
    enable_sync,
    go,
    heading,
    open_app,
    shot,
)
from tests.e2e.client_cli import run

__all__ = ["web_context"]
pytestmark = pytest.mark.e2e

OLD = "pw-one-old"
NEW = "pw-two-rekeyed"
FACADE = "(await import('/js/nt2.js'))"  # the app page's own module instance (same URL)
VAULT = "(await import('/js/core/vault.js'))"


def ok(vault: Path, *args: str, password: str = OLD, **env: str) -> Any:
    """The CLI in-process, as a person runs it, with --json."""
    result = run(vault, *args, "--json", password=password, **env)
    assert result.code == 0, result.err
    return result.json()


def cli_items(vault: Path, password: str) -> dict[str, str]:
    return {i["title"]: i["body"] for i in ok(vault, "item", "list", password=password)}


def items_of(page: Any) -> dict[str, str]:
    return {i["title"]: i["body"] for i in page.evaluate(f"async () => {FACADE}.listItems()")}


def key_state(page: Any) -> dict[str, Any]:
    """The unlocked vault's epoch, retired keys and recorded re-key (engine internals)."""
    return page.evaluate(
        f"async () => {{ const V = {VAULT}.V; return {{epoch: V.keys.epoch, retired: V.retired.length, pending: Boolean(V.st.pendingRekey), rotation: Boolean(V.st.pendingRotation)}}; }}"
    )


def fresh_join(tmp_path: Path, web_server: Any, key_did: str, password: str, name: str) -> Path:
    """A new CLI device joined after the re-key: it refuses anything still under the old key."""
    vault = tmp_path / f"{name}.sqlite3"
    ok(vault, "join", "--server", web_server.url, "--key-did", key_did, password=password)
    return vault


def unlock_ui(page: Any, web_server: Any, password: str) -> None:
    open_app(page, web_server, "/unlock")
    heading(page, "Unlock")
    page.get_by_label("Master password").fill(password)
    page.get_by_role("button", name="Unlock").click()
    heading(page, "Vault")


def password_page(page: Any) -> None:
    go(page, "Settings", "Vault & sync")
    go(page, "Master password", "Master password")


def change_ui(
    page: Any, current: str, new: str, *, again: str | None = None, rekey: bool = True
) -> Any:
    form = page.get_by_role("form", name="Change the master password")
    form.get_by_label("Current master password").fill(current)
    form.get_by_label("New master password", exact=True).fill(new)
    form.get_by_label("Confirm new master password").fill(new if again is None else again)
    form.get_by_label("Re-key the vault (recommended)").set_checked(rekey)
    form.get_by_role("button", name="Change master password").click()
    return form.get_by_role("status")


def adopt_ui(page: Any, password: str) -> Any:
    form = page.get_by_role("form", name="Adopt a password changed elsewhere")
    form.get_by_label("New master password").fill(password)
    form.get_by_role("button", name="Use the new password").click()
    return form.get_by_role("status")


def test_a_cli_rekey_is_adopted_in_the_password_page_and_an_unpushed_edit_survives(
    tmp_path: Path, web_server: Any, new_page: Any, page_errors: Any
) -> None:
    # GIVEN a CLI vault joined in the browser, which then edits an item without syncing
    a = tmp_path / "a.sqlite3"
    ok(a, "init")
    ok(a, "item", "add", "alpha", "--body", "first")
    ok(a, "item", "add", "beta", "--body", "second")
    ok(a, "sync", "enable", "--server", web_server.url)
    kit = ok(a, "kit")
    page = new_page()
    open_app(page, web_server, "/unlock")
    page.evaluate(
        f"""async (kit) => {{ const nt2 = {FACADE}; await nt2.joinFromKit(kit, "{OLD}");
        const alpha = (await nt2.listItems()).find((i) => i.title === "alpha");
        await nt2.saveItem({{id: alpha.id, title: "alpha", body: "edited in the browser, unpushed"}}); }}""",
        kit,
    )
    # WHEN the CLI re-keys the vault (new password, new data key, epoch 1)
    rekeyed = ok(a, "password", "change", "--rekey", NT2_NEW_PASSWORD=NEW)
    assert rekeyed["rekeyed"] is True
    ok(a, "item", "add", "gamma", "--body", "after the re-key", password=NEW)
    # THEN the browser, told to adopt, adopts it in the password page
    told = page.evaluate(
        f"async () => {{ try {{ await {FACADE}.syncNow(); }} catch (e) {{ return e.code; }} }}"
    )
    assert told == "password_changed"
    page.goto(web_server.web_url() + "/items")  # a reload locks: unlock with the old password
    unlock_ui(page, web_server, OLD)
    password_page(page)
    status = adopt_ui(page, NEW)
    expect(status).to_have_text(
        "This device now uses the new master password and the vault's new key; what it held was re-encrypted and synced.",
        timeout=30_000,
    )
    assert key_state(page) == {"epoch": 1, "retired": 1, "pending": False, "rotation": False}
    # AND both converge: the browser's unpushed edit survives, the CLI's new item arrived
    ok(a, "sync", "now", password=NEW)
    web = items_of(page)
    assert web["alpha"] == "edited in the browser, unpushed"
    assert {"beta": "second", "gamma": "after the re-key"}.items() <= web.items()
    assert cli_items(a, NEW) == web
    # AND a device joining now reads it all (so nothing was left under the old key)
    assert cli_items(fresh_join(tmp_path, web_server, rekeyed["keyDid"], NEW, "c"), NEW) == web
    # AND the old password opens and authenticates nothing any more
    page.evaluate(f"async () => {FACADE}.lock()")
    assert (
        page.evaluate(
            f"async () => {{ try {{ await {FACADE}.unlock('{OLD}'); }} catch (e) {{ return e.code; }} }}"
        )
        == "wrong_password"
    )
    assert run(a, "item", "list", password=OLD).code != 0
    old_join = run(
        tmp_path / "d.sqlite3",
        "join",
        "--server",
        web_server.url,
        "--key-did",
        kit["keyDid"],
        password=OLD,
    )
    assert old_join.code != 0
    assert page_errors == []


def test_a_browser_rekey_from_the_password_page_is_adopted_by_the_cli(
    tmp_path: Path, web_server: Any, new_page: Any, page_errors: Any
) -> None:
    # GIVEN a browser vault with sync on, joined by the CLI, which attaches a file to an item
    page = new_page()
    create_vault(page, web_server, OLD)
    add_item(page, "mail", body="imap")
    add_item(page, "bank", body="1234")
    enable_sync(page, web_server)
    kit = page.evaluate(f"async () => (await {FACADE}.exportKit()).kit")
    b = tmp_path / "b.sqlite3"
    ok(b, "join", "--server", web_server.url, "--key-did", kit["keyDid"])
    ids = {i["title"]: i["id"] for i in ok(b, "item", "list")}
    file = tmp_path / "note.txt"
    file.write_text("attached by the CLI")
    attachment = ok(b, "attach", "add", ids["mail"], str(file))["id"]
    page.evaluate(f"async () => {FACADE}.syncNow()")
    # WHEN the browser changes the password with re-key (the checkbox's default)
    go(page, "Master password", "Master password")
    expect(page.get_by_label("Re-key the vault (recommended)")).to_be_checked()
    status = change_ui(page, OLD, NEW)
    expect(status).to_have_text("Master password changed and the vault re-keyed.", timeout=30_000)
    # THEN it holds only the new key, every row re-encrypted and pushed
    assert key_state(page) == {"epoch": 1, "retired": 0, "pending": False, "rotation": False}
    assert page.evaluate(f"async () => (await {FACADE}.syncStatus()).pending") == 0
    page.evaluate(f"async () => {FACADE}.saveItem({{title: 'after', body: 'written at epoch 1'}})")
    page.evaluate(f"async () => {FACADE}.syncNow()")
    # WHEN the CLI adopts it, with the previous password to re-seal what it holds
    refused = run(b, "sync", "now")
    assert refused.code != 0 and "adopt" in refused.err
    ok(b, "password", "adopt", password=NEW, NT2_OLD_PASSWORD=OLD)
    ok(b, "sync", "now", password=NEW)
    # THEN the CLI reads everything, its attachment intact, and a new device does too
    expected = {"mail": "imap", "bank": "1234", "after": "written at epoch 1"}
    assert cli_items(b, NEW) == expected == items_of(page)
    out = tmp_path / "out.txt"
    ok(b, "attach", "get", attachment, str(out), password=NEW)
    assert out.read_text() == "attached by the CLI"
    assert cli_items(fresh_join(tmp_path, web_server, kit_did(page), NEW, "c"), NEW) == expected
    assert page_errors == []


def kit_did(page: Any) -> str:
    return page.evaluate(f"async () => (await {FACADE}.exportKit()).kit.keyDid")  # type: ignore[no-any-return]


@pytest.fixture
def harness(web_context: Any, web_server: Any) -> Any:
    page = open_harness(web_context, web_server.web_url())
    yield page
    page.close()


def test_an_interrupted_browser_rekey_is_finished_later_and_nothing_is_lost(
    tmp_path: Path, web_server: Any, web_context: Any
) -> None:
    db = f"rekey-interrupted-{tmp_path.name}"
    page = open_harness(web_context, web_server.web_url(), db)
    kit = page.evaluate(
        f"""async (api) => {{ await nt2.createVault("{OLD}"); await nt2.saveItem({{title: "one", body: "1"}});
        const doomed = await nt2.saveItem({{title: "doomed", body: "x"}}); await nt2.enableSync(api);
        await nt2.deleteItem(doomed); await nt2.syncNow(); return (await nt2.exportKit()).kit; }}""",
        web_server.url,
    )
    # GIVEN the CLI joined and pushed an item the browser has not pulled yet (old key)
    b = tmp_path / "b.sqlite3"
    ok(b, "join", "--server", web_server.url, "--key-did", kit["keyDid"])
    ok(b, "item", "add", "from-cli", "--body", "old key")
    # WHEN the browser's re-key never reaches the server (the rotation fails) and the tab closes
    page.route("**/vault/rotate", lambda route: route.abort())
    assert (
        evaluate_error(page, f"() => nt2.changePassword('{OLD}', '{NEW}')")["code"]
        == "rekey_pending"
    )
    page.close()
    # THEN the new password unlocks it (the old key still current), nothing is lost
    page = open_harness(web_context, web_server.web_url(), db)
    page.evaluate(f"() => nt2.unlock('{NEW}')")
    assert {i["title"] for i in page.evaluate("() => nt2.listItems()")} == {"one"}
    # WHEN the next sync rotates but its push fails, and the tab closes again
    page.route("**/sync/push", lambda route: route.abort())
    assert evaluate_error(page, "() => nt2.syncNow()")["code"] == "network"
    state = page.evaluate(
        "() => ({epoch: core.vault.V.keys.epoch, pending: Boolean(core.vault.V.st.pendingRekey)})"
    )
    assert state == {"epoch": 1, "pending": True}
    page.close()
    # THEN only the new password unlocks, and the next sync finishes the re-key
    page = open_harness(web_context, web_server.web_url(), db)
    assert evaluate_error(page, f"() => nt2.unlock('{OLD}')")["code"] == "wrong_password"
    page.evaluate(f"() => nt2.unlock('{NEW}')")
    page.evaluate("() => nt2.syncNow()")
    state = page.evaluate(
        "() => ({epoch: core.vault.V.keys.epoch, retired: core.vault.V.retired.length, pending: core.vault.V.st.pendingRekey})"
    )
    assert state == {"epoch": 1, "retired": 0, "pending": None}
    assert {i["title"]: i["body"] for i in page.evaluate("() => nt2.listItems()")} == {
        "one": "1",
        "from-cli": "old key",
    }
    # AND the CLI adopts it; a device joining now reads everything, the deletion included
    ok(b, "password", "adopt", password=NEW, NT2_OLD_PASSWORD=OLD)
    ok(b, "sync", "now", password=NEW)
    assert cli_items(b, NEW) == {"one": "1", "from-cli": "old key"}
    fresh = fresh_join(tmp_path, web_server, kit_did_of(page), NEW, "c")
    assert cli_items(fresh, NEW) == {"one": "1", "from-cli": "old key"}
    # AND the deletion was re-sealed under the new key and pushed (a join verifies it too)
    tomb = page.evaluate(
        """() => { const V = core.vault.V; const row = [...V.rows.values()].find((r) => r.deleted);
        return {opens: Boolean(core.crypto.openDeletion(V.keys, row.id, row.ciphertext)), dirty: row.dirty}; }"""
    )
    assert tomb == {"opens": True, "dirty": False}
    assert page.evaluate("() => nt2.syncStatus()")["counts"]["tombstones"] == 1
    assert page.errors == []
    page.close()


def kit_did_of(page: Any) -> str:
    return page.evaluate("async () => (await nt2.exportKit()).kit.keyDid")  # type: ignore[no-any-return]


def test_a_rekey_the_browser_cannot_do_is_refused_before_anything_changes(harness: Any) -> None:
    # GIVEN an item (from the CLI) referencing an attachment in the old format (no file key)
    harness.evaluate(
        f"""async () => {{ await nt2.createVault("{OLD}"); const v = core.vault;
        const plain = {{title: "old file", body: "", username: "", url: "", updatedAt: 1, replicaId: "r-0001", attachments: [{{id: "att-1", name: "a.txt"}}]}};
        await v.persist({{rows: [v.localEdit("item-legacy", plain, null)]}}); }}"""
    )
    # WHEN the browser is asked to re-key THEN it refuses, naming what to do, and nothing changed
    refused = evaluate_error(harness, f"() => nt2.changePassword('{OLD}', '{NEW}')")
    assert refused["code"] == "legacy_attachments"
    assert "nt2sync password change --rekey" in refused["message"]
    harness.evaluate("() => nt2.lock()")
    harness.evaluate(f"() => nt2.unlock('{OLD}')")
    assert harness.evaluate("() => core.vault.V.keys.epoch") == 0
    # AND a plain password change is still possible
    harness.evaluate(f"() => nt2.changePassword('{OLD}', '{NEW}', {{rekey: false}})")
    harness.evaluate("() => nt2.lock()")
    harness.evaluate(f"() => nt2.unlock('{NEW}')")
    assert [i["title"] for i in harness.evaluate("() => nt2.listItems()")] == ["old file"]


def test_the_password_page_rekeys_a_local_vault_changes_plainly_and_explains_refusals(
    web_server: Any, new_page: Any, page_errors: Any
) -> None:
    page = new_page()
    create_vault(page, web_server, OLD)
    add_item(page, "kept", body="through every change")
    go(page, "Settings", "Vault & sync")
    go(page, "Master password", "Master password")
    shot(page, "password")
    # a short password, two that differ, a wrong current one: each said, nothing changed
    expect(change_ui(page, OLD, "short")).to_have_text(
        "The new master password needs at least 8 characters."
    )
    expect(change_ui(page, OLD, NEW, again=NEW + "!")).to_have_text(
        "The two new passwords differ: type the same one twice."
    )
    expect(change_ui(page, "not the password", NEW)).to_have_text(
        "The current master password is wrong; nothing was changed."
    )
    assert key_state(page)["epoch"] == 0
    # a re-key of a vault that does not sync: a new key at once, the item still there
    expect(change_ui(page, OLD, NEW)).to_have_text(
        "Master password changed and the vault re-keyed.", timeout=20_000
    )
    assert key_state(page) == {"epoch": 1, "retired": 0, "pending": False, "rotation": False}
    # a plain change (checkbox off): the new password, the same key
    third = "pw-three-plain"
    expect(change_ui(page, NEW, third, rekey=False)).to_have_text(
        "Master password changed.", timeout=20_000
    )
    assert key_state(page)["epoch"] == 1
    page.evaluate(f"async () => {FACADE}.lock()")
    unlock_ui(page, web_server, third)
    assert items_of(page) == {"kept": "through every change"}
    # adopting a password that is not the new one (sync on) is refused in one sentence
    enable_sync(page, web_server)
    go(page, "Master password", "Master password")
    expect(adopt_ui(page, "not-the-new-one")).to_have_text(
        "That is not the new master password; nothing was changed.", timeout=20_000
    )
    assert page_errors == []


def test_after_adopting_an_item_still_under_the_old_key_is_not_accepted_and_said(
    tmp_path: Path, web_server: Any, harness: Any
) -> None:
    # GIVEN a CLI vault joined in the browser; the browser's copy of alpha is under the old key
    a = tmp_path / "a.sqlite3"
    ok(a, "init")
    alpha = ok(a, "item", "add", "alpha", "--body", "first")["id"]
    ok(a, "sync", "enable", "--server", web_server.url)
    harness.evaluate(f"async (kit) => nt2.joinFromKit(kit, '{OLD}')", ok(a, "kit"))
    old_ct = harness.evaluate("(id) => core.vault.V.rows.get(id).ciphertext", alpha)
    # WHEN the CLI re-keys, the browser adopts, and the CLI edits alpha under the new key
    ok(a, "password", "change", "--rekey", NT2_NEW_PASSWORD=NEW)
    adopted = harness.evaluate(f"() => nt2.adoptPassword('{NEW}')")
    assert adopted["rekeyed"] is True and adopted["notices"] == []
    ok(a, "item", "edit", alpha, "--body", "edited at epoch 1", password=NEW)

    # ... but the server serves that new version with the old key's ciphertext
    serve_ciphertext(harness, alpha, old_ct)
    summary = harness.evaluate("() => nt2.syncNow()")
    # THEN it is not accepted: the browser keeps its own copy and says why
    assert any("still sealed under the vault's previous key" in n for n in summary["notices"])
    assert {i["title"]: i["body"] for i in harness.evaluate("() => nt2.listItems()")} == {
        "alpha": "first"
    }
    harness.unroute("**/sync/pull*")
    assert harness.errors == []
