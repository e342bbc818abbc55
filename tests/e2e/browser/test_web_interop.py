# ruff: noqa: E501 - the JavaScript evaluated in the page is kept as the page runs it
"""The web engine and the `nt2sync` CLI on one real local server: a vault made by either is
joined by the other, edits, deletions and conflicts converge, a password change on one is
adopted on the other, backups cross over, and a live change from the CLI reaches the page."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest

from nt2sync.backup import HEADER_FIELDS
from tests.e2e.browser.web_harness import evaluate_error, open_harness, web_context
from tests.e2e.client_cli import run

__all__ = ["web_context"]
pytestmark = pytest.mark.e2e


def ok(vault: Path, *args: str, password: str = "pw-one", **env: str) -> Any:
    """The CLI in-process, as a person runs it, with --json."""
    result = run(vault, *args, "--json", password=password, **env)
    assert result.code == 0, result.err
    return result.json()


def cli_items(vault: Path, password: str = "pw-one") -> dict[str, str]:
    return {i["title"]: i["body"] for i in ok(vault, "item", "list", password=password)}


def web_items(page: Any) -> dict[str, str]:
    return {i["title"]: i["body"] for i in page.evaluate("() => nt2.listItems()")}


def web_ids(page: Any) -> dict[str, str]:
    return {i["title"]: i["id"] for i in page.evaluate("() => nt2.listItems()")}


@pytest.fixture
def page(web_context: Any, web_server: Any) -> Any:
    page = open_harness(web_context, web_server.web_url())
    yield page
    page.close()


def test_a_cli_vault_joined_in_the_browser_converges_both_ways(
    tmp_path: Path, web_server: Any, page: Any
) -> None:
    # GIVEN a vault made by the CLI, synced, and its kit
    a = tmp_path / "a.sqlite3"
    ok(a, "init")
    ok(a, "item", "add", "alpha", "--body", "first")
    ok(a, "item", "add", "beta", "--body", "zweite ✓")
    ok(a, "sync", "enable", "--server", web_server.url)
    kit_file = tmp_path / "kit.json"
    ok(a, "kit", "--out", str(kit_file))
    # WHEN the browser joins from that kit with the master password
    summary = page.evaluate(
        "async (kit) => nt2.joinFromKit(await nt2.parseKit(kit), 'pw-one')", kit_file.read_text()
    )
    # THEN it holds the CLI's items
    assert summary["pulled"] >= 2  # the CLI's items, and its manifests (kept, never listed)
    assert web_items(page) == {"alpha": "first", "beta": "zweite ✓"}
    # WHEN the browser edits one, deletes one, adds one
    ids = web_ids(page)
    page.evaluate(
        """async (ids) => {
        await nt2.saveItem({id: ids.alpha, title: "alpha", body: "edited in the browser"});
        await nt2.deleteItem(ids.beta);
        await nt2.saveItem({title: "gamma", body: "from the web", username: "me", url: "https://x.example"});
        return nt2.syncNow(); }""",
        ids,
    )
    # THEN the CLI sees exactly that
    ok(a, "sync", "now")
    assert cli_items(a) == {"alpha": "edited in the browser", "gamma": "from the web"}
    # WHEN the CLI edits and deletes in turn THEN the browser converges
    cli_ids = {i["title"]: i["id"] for i in ok(a, "item", "list")}
    ok(a, "item", "edit", cli_ids["gamma"], "--body", "edited by the CLI")
    ok(a, "item", "rm", cli_ids["alpha"])
    page.evaluate("() => nt2.syncNow()")
    assert web_items(page) == {"gamma": "edited by the CLI"} == cli_items(a)
    status = page.evaluate("() => nt2.syncStatus()")
    assert status["registered"] is True and status["pending"] == 0
    assert status["counts"]["items"] == 1 and status["counts"]["tombstones"] == 2
    assert page.errors == []


def test_a_browser_vault_joined_by_the_cli_keeps_both_texts_of_a_conflict(
    tmp_path: Path, web_server: Any, page: Any
) -> None:
    # GIVEN a vault made in the browser, synced, and its kit
    kit = page.evaluate(
        """async (api) => {
        await nt2.createVault("pw-web");
        await nt2.saveItem({title: "alpha", body: "first"});
        await nt2.saveItem({title: "beta", body: "second"});
        await nt2.enableSync(api);
        return (await nt2.exportKit()).text; }""",
        web_server.url,
    )
    kit_file = tmp_path / "kit.json"
    kit_file.write_text(kit + "\n")
    # WHEN the CLI joins with that kit
    b = tmp_path / "b.sqlite3"
    assert ok(b, "join", "--kit", str(kit_file), password="pw-web")["pulled"] == 2
    assert cli_items(b, "pw-web") == {"alpha": "first", "beta": "second"}
    # WHEN both edit the same item before syncing (the browser's edit is the later one)
    ids = {i["title"]: i["id"] for i in ok(b, "item", "list", password="pw-web")}
    ok(b, "item", "edit", ids["alpha"], "--body", "the CLI's words", "--offline", password="pw-web")
    time.sleep(0.01)
    page.evaluate(
        "async (id) => nt2.saveItem({id, title: 'alpha', body: 'the browser words'})", ids["alpha"]
    )
    ok(b, "sync", "now", password="pw-web")
    summary = page.evaluate("() => nt2.syncNow()")
    ok(b, "sync", "now", password="pw-web")
    # THEN one conflict, and both texts survive on both sides, identically
    assert summary["conflicts"] == 1
    web = web_items(page)
    assert web == cli_items(b, "pw-web")
    assert web["alpha"] == "the browser words"
    copies = [t for t in web if "conflicted copy" in t]
    assert len(copies) == 1 and web[copies[0]] == "the CLI's words"
    # AND a deletion in the browser of the copy reaches the CLI
    page.evaluate(
        "async (id) => { await nt2.deleteItem(id); return nt2.syncNow(); }",
        web_ids(page)[copies[0]],
    )
    ok(b, "sync", "now", password="pw-web")
    assert cli_items(b, "pw-web") == {"alpha": "the browser words", "beta": "second"}
    assert page.errors == []


def test_a_password_change_on_either_side_is_adopted_on_the_other(
    tmp_path: Path, web_server: Any, page: Any
) -> None:
    # GIVEN a browser vault joined by the CLI (server + key DID)
    kit = page.evaluate(
        """async (api) => { await nt2.createVault("pw-web"); await nt2.saveItem({title: "n", body: "1"});
        await nt2.enableSync(api); return (await nt2.exportKit()).kit; }""",
        web_server.url,
    )
    b = tmp_path / "b.sqlite3"
    ok(b, "join", "--server", web_server.url, "--key-did", kit["keyDid"], password="pw-web")
    # WHEN the browser changes the master password
    page.evaluate("() => nt2.changePassword('pw-web', 'pw-new', {rekey: false})")
    # THEN the CLI is told to adopt it, and adopts it
    refused = run(b, "sync", "now", password="pw-web")
    assert refused.code != 0 and "adopt" in refused.err
    ok(b, "password", "adopt", password="pw-new")
    ok(b, "item", "add", "from-cli", "--body", "2", password="pw-new")
    # WHEN the CLI changes it in turn
    ok(b, "password", "change", password="pw-new", NT2_NEW_PASSWORD="pw-third")
    # THEN the browser is told, refuses a wrong one, adopts the right one and syncs again
    told = evaluate_error(page, "() => nt2.syncNow()")
    assert told["code"] == "password_changed"
    wrong = evaluate_error(page, "() => nt2.adoptPassword('pw-guess')")
    assert wrong["code"] == "wrong_password"
    page.evaluate("() => nt2.adoptPassword('pw-third')")
    page.evaluate("() => nt2.syncNow()")
    assert web_items(page) == {"n": "1", "from-cli": "2"}
    # AND the browser now unlocks with the new password only
    page.evaluate("() => nt2.lock()")
    assert evaluate_error(page, "() => nt2.unlock('pw-new')")["code"] == "wrong_password"
    page.evaluate("() => nt2.unlock('pw-third')")
    assert web_items(page) == {"n": "1", "from-cli": "2"}


def test_backups_cross_between_the_browser_and_the_cli(
    tmp_path: Path, web_server: Any, page: Any
) -> None:
    # GIVEN a CLI vault joined in the browser
    a = tmp_path / "a.sqlite3"
    ok(a, "init")
    ok(a, "item", "add", "kept", "--body", "one")
    ok(a, "item", "add", "gone", "--body", "two")
    ok(a, "sync", "enable", "--server", web_server.url)
    kit = ok(a, "kit")
    page.evaluate("async (kit) => nt2.joinFromKit(kit, 'pw-one')", kit)
    # WHEN the browser exports a backup THEN the CLI restores it into a new vault
    raw = page.evaluate("async () => Array.from(await nt2.exportBackup())")
    backup_file = tmp_path / "web.nt2backup"
    backup_file.write_bytes(bytes(raw))
    header = json.loads(backup_file.read_text())
    assert list(header) == [*HEADER_FIELDS, "payload"]  # the CLI's own header, in order
    restored = tmp_path / "restored.sqlite3"
    assert run(restored, "backup", "import", str(backup_file)).code == 0
    assert cli_items(restored) == {"kept": "one", "gone": "two"}
    # WHEN the CLI exports one and the browser, having deleted an item since, imports it
    cli_backup = tmp_path / "cli.nt2backup"
    ok(a, "backup", "export", str(cli_backup))
    page.evaluate("async (id) => nt2.deleteItem(id)", web_ids(page)["gone"])
    data = list(cli_backup.read_bytes())
    result = page.evaluate("async (b) => nt2.importBackup(new Uint8Array(b))", data)
    # THEN the deletion stands, unless asked to restore it
    assert result == {"imported": 0, "kept": 2}
    assert web_items(page) == {"kept": "one"}
    again = page.evaluate(
        "async (b) => nt2.importBackup(new Uint8Array(b), {restoreDeleted: true})", data
    )
    assert again["imported"] == 1 and web_items(page) == {"kept": "one", "gone": "two"}
    # AND a backup whose header was changed is refused
    doc = json.loads(cli_backup.read_text())
    doc["createdAt"] += 1
    altered = list(json.dumps(doc).encode())
    refused = evaluate_error(page, "async (b) => nt2.importBackup(new Uint8Array(b))", altered)
    assert refused["code"] == "backup_altered"


def test_a_live_change_from_the_cli_reaches_the_open_page_within_two_seconds(
    tmp_path: Path, web_server: Any, page: Any
) -> None:
    # GIVEN a CLI vault joined in the browser, with live sync on
    a = tmp_path / "a.sqlite3"
    ok(a, "init")
    ok(a, "item", "add", "first", "--body", "x")
    ok(a, "sync", "enable", "--server", web_server.url)
    page.evaluate("async (kit) => nt2.joinFromKit(kit, 'pw-one')", ok(a, "kit"))
    page.evaluate(
        """() => new Promise((resolve) => { window.titles = [];
        nt2.onChange(async () => { window.titles = (await nt2.listItems()).map((i) => i.title); });
        nt2.onLiveState((s) => { if (s === "live") resolve(); }); nt2.startLive(); })"""
    )
    # WHEN the CLI adds an item (it syncs at once)
    ok(a, "item", "add", "seen-live", "--body", "y")
    # THEN the page has it within 2 s of the server accepting it, without being asked to
    # sync (timed from the CLI's return: its own unlock and push are not the live path)
    start = time.monotonic()
    page.wait_for_function(
        "() => window.titles.includes('seen-live')",
        timeout=2_000,
        polling=50,
    )
    assert time.monotonic() - start < 2.0
    assert web_items(page)["seen-live"] == "y"
    assert page.evaluate("() => nt2.syncStatus()")["live"] == "live"
    page.evaluate("() => nt2.stopLive()")
    assert page.errors == []
