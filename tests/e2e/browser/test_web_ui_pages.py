"""Set up this device (a pasted kit, a kit file, server + Key DID; every refusal in its own
sentence, a lying bootstrap included) and .nt2backup files carried between browsers, in a
real browser against the real local server behind tests/support/lying_proxy.py."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import expect

from tests.e2e.browser.web_harness import open_harness, web_context
from tests.e2e.browser.web_ui import go, heading, open_app, said, shot
from tests.support.lying_proxy import LyingProxy

__all__ = ["web_context"]
pytestmark = pytest.mark.e2e
PASSWORD = "pw-one"
BOOT = "/api/vault/bootstrap"


@pytest.fixture
def honest(proxy: LyingProxy) -> Iterator[LyingProxy]:
    proxy.lie = None
    yield proxy
    proxy.lie = None


@pytest.fixture(scope="module")
def source(web_context: Any, proxy: LyingProxy) -> dict[str, Any]:
    """The vault's first device (made in the engine, two items, synced): its kit and Key DID."""
    a = open_harness(web_context, proxy.web_url())  # type: ignore[attr-defined]
    kit = a.evaluate(
        """async ([api, pw]) => { await nt2.createVault(pw);
        await nt2.saveItem({title: "alpha", body: "first note"});
        await nt2.saveItem({title: "beta", body: "second note"});
        await nt2.enableSync(api); return (await nt2.exportKit()).text; }""",
        [proxy.url, PASSWORD],
    )
    return {"page": a, "kit": kit, "keyDid": json.loads(kit)["keyDid"]}


def setup_page(new_page: Any, proxy: LyingProxy) -> Any:
    page = new_page()
    open_app(page, proxy, "/setup")
    heading(page, "Set up this device")
    return page


def submit(page: Any, password: str = PASSWORD) -> None:
    page.get_by_label("Master password").fill(password)
    page.get_by_role("button", name="Set up this device").click()


def refused(page: Any, title: str, message: str) -> None:
    """The page's alert names the failure and says what to do; the browser kept no vault."""
    alert = page.get_by_role("alert").filter(has=page.get_by_role("heading", name=title))
    expect(alert).to_contain_text(message)
    expect(page.get_by_role("button", name="Set up this device")).to_be_enabled()
    assert page.evaluate("async () => (await import('/js/nt2.js')).state()")["exists"] is False


def by_server(page: Any, key_did: str) -> None:
    page.get_by_label("With the server URL and Key DID").check()
    page.get_by_label("Key DID", exact=True).fill(key_did)


def test_set_up_from_a_pasted_kit_and_from_server_and_key_did(
    new_page: Any, honest: LyingProxy, source: dict[str, Any], page_errors: list
) -> None:
    # GIVEN a cold browser on /setup WHEN the kit's text is pasted with the master password
    page = setup_page(new_page, honest)
    shot(page, "setup")
    page.get_by_label("Setup kit", exact=True).fill(source["kit"])
    submit(page)
    # THEN it lands in the vault with the first device's items
    heading(page, "Vault")
    expect(page.get_by_role("list", name="Items (2)")).to_be_visible()
    expect(page.get_by_text("second note")).to_be_visible()
    # AND the setup page now refuses to replace that vault (locked by the reload or not)
    open_app(page, honest, "/setup")
    heading(page, "Set up this device")
    expect(page.get_by_text("This browser already holds a vault.")).to_be_visible()
    expect(page.get_by_label("Master password")).to_have_count(0)

    # WHEN another browser uses the server URL (prefilled from /config.json) and the Key DID
    other = setup_page(new_page, honest)
    by_server(other, source["keyDid"])
    expect(other.get_by_label("Server URL", exact=True)).to_have_value(honest.url)
    expect(other.get_by_label("Setup kit", exact=True)).to_be_hidden()
    submit(other)
    # THEN it lands in the same vault
    heading(other, "Vault")
    expect(other.get_by_text("first note")).to_be_visible()
    assert page_errors == []


def test_every_refusal_has_its_own_sentence_and_keeps_nothing(
    new_page: Any, honest: LyingProxy, source: dict[str, Any], page_errors: list, tmp_path: Path
) -> None:
    page = setup_page(new_page, honest)
    kit = json.loads(source["kit"])
    # no password: the browser's own validation stops the form at the empty field
    page.get_by_role("button", name="Set up this device").click()
    expect(page.get_by_label("Master password")).to_be_focused()
    assert page.get_by_label("Master password").evaluate("(el) => el.validity.valueMissing")
    # no kit, then text that is not a kit
    submit(page)
    refused(page, "This is not a setup kit", "Paste the setup kit or choose its file.")
    page.get_by_label("Setup kit", exact=True).fill("hello")
    submit(page)
    refused(page, "This is not a setup kit", "it is not the JSON that `nt2sync kit` writes")
    # a wrong password with the kit: its MAC does not verify (nothing reaches the network)
    mark = len(honest.seen)
    page.get_by_label("Setup kit", exact=True).fill(source["kit"])
    submit(page, "pw-guess")
    refused(
        page,
        "Wrong master password, or an altered kit",
        "either the password is wrong or the kit was altered",
    )
    expect(page.get_by_label("Master password")).to_be_focused()
    # an altered kit file (its server swapped for a relay): the same MAC refusal
    altered = tmp_path / "altered-kit.json"
    altered.write_text(json.dumps({**kit, "server": "http://127.0.0.1:9"}))
    page.get_by_label("Setup kit file").set_input_files(str(altered))
    expect(page.get_by_label("Setup kit", exact=True)).to_have_value(altered.read_text())
    submit(page)
    refused(page, "Wrong master password, or an altered kit", "nothing was sent")
    # a kit edited down to a weak KDF: refused before the password is even tried
    page.get_by_label("Setup kit", exact=True).fill(
        json.dumps({**kit, "kdf": {**kit["kdf"], "iterations": 1000}})
    )
    submit(page)
    refused(page, "The vault's key derivation is too weak", "This kit names weak key-derivation")
    assert honest.seen[mark:] == []
    # a file too large to be a kit
    big = tmp_path / "big.json"
    big.write_text("x" * (65 * 1024))
    page.get_by_label("Setup kit file").set_input_files(str(big))
    refused(page, "This is not a setup kit", "That file is too large to be a setup kit")

    # with the server and Key DID: a wrong password ends at the Key DID check
    by_server(page, source["keyDid"])
    submit(page, "pw-guess")
    refused(page, "Wrong master password", "does not derive its key DID")
    assert honest.authenticated_since(mark) == []
    # a Key DID no vault on that server has
    page.get_by_label("Key DID", exact=True).fill(
        "did:key:z6MkehRgf7yJbgaGfYsdoAsKdBPE3dj2CYhowQdcjqSJgvVd"
    )
    submit(page)
    refused(
        page,
        "No vault on that server for this Key DID",
        "The server has no vault for this key DID.",
    )
    # something that is not a Key DID
    page.get_by_label("Key DID", exact=True).fill("z6Mk-not-a-did")
    submit(page)
    refused(page, "That is not a Key DID", "The key DID must look like did:key:z6Mk")
    # the server lies about the KDF in its bootstrap (weak parameters)
    page.get_by_label("Key DID", exact=True).fill(source["keyDid"])
    honest.lie = lambda m, p, a: (
        {**a, "kdf": {"algorithm": "PBKDF2-SHA256", "iterations": 1000}} if p == BOOT else a
    )
    submit(page)
    refused(page, "The vault's key derivation is too weak", "The server offered weak")
    honest.lie = None
    assert honest.authenticated_since(mark) == []
    # the server cannot be reached (every request to it fails)
    page.route(honest.url + "/**", lambda route: route.abort())
    submit(page)
    refused(
        page,
        "The server could not be reached",
        f"Cannot reach the sync server at {honest.url}.",
    )
    page.unroute(honest.url + "/**")
    # a server the page may not talk to (its Content-Security-Policy names only its own API)
    page.get_by_label("Server URL", exact=True).fill("http://127.0.0.1:9")
    submit(page)
    refused(
        page,
        "That server URL cannot be used",
        f"This web client can reach only its own server, {honest.url}: set up with that "
        "server, or use the nt2sync CLI for http://127.0.0.1:9.",
    )
    assert [e for e in page_errors if not e.startswith("csp:")] == []


def import_backup(page: Any, path: Path, *, restore: bool = False) -> None:
    page.get_by_label("Backup file").set_input_files(str(path))
    page.get_by_label("Restore deleted items").set_checked(restore)
    page.get_by_role("button", name="Import backup").click()


def to_recovery(page: Any) -> None:
    go(page, "Settings", "Vault & sync")
    go(page, "Recovery & backup", "Recovery kit and backups")


def titles_shown(page: Any) -> list[str]:
    """The vault page's item titles (reached through the app's links: a reload locks)."""
    go(page, "Vault", "Vault")
    titles = page.locator(".items li.item .item-title")
    expect(titles.first).to_be_visible()
    return sorted(titles.evaluate_all("(els) => els.map((el) => el.firstChild.textContent)"))


def test_a_backup_exported_in_one_browser_restores_items_in_another(
    new_page: Any,
    honest: LyingProxy,
    source: dict[str, Any],
    web_context: Any,
    page_errors: list,
    tmp_path: Path,
) -> None:
    # GIVEN a browser set up from the kit, with alpha and beta
    a = setup_page(new_page, honest)
    a.get_by_label("Setup kit", exact=True).fill(source["kit"])
    submit(a)
    heading(a, "Vault")
    # WHEN it downloads a backup from the recovery page
    to_recovery(a)
    with a.expect_download() as download:
        a.get_by_role("button", name="Download backup (.nt2backup)").click()
    name = download.value.suggested_filename
    assert re.fullmatch(r"nt2-\d{4}-\d{2}-\d{2}\.nt2backup", name), name
    backup = tmp_path / name
    download.value.save_as(backup)
    # THEN the file is an encrypted .nt2backup of this vault (no title in clear)
    doc = json.loads(backup.read_text())
    assert doc["format"] == "nt2backup" and doc["keyDid"] == source["keyDid"]
    assert "alpha" not in backup.read_text() and "first note" not in backup.read_text()
    expect(a.get_by_role("status").filter(has_text="Backup downloaded as")).to_have_text(
        f"Backup downloaded as {name} ({backup.stat().st_size} bytes, encrypted)."
    )
    # WHEN alpha is then deleted (and the deletion synced)
    go(a, "Vault", "Vault")
    a.get_by_role("button", name="Delete alpha").click()
    a.get_by_role("dialog").get_by_role("button", name="Delete").click()
    expect(a.get_by_role("list", name="Items (1)")).to_be_visible()
    go(a, "Settings", "Vault & sync")
    go(a, "Cloud sync", "Cloud sync")
    a.get_by_role("button", name="Sync now").click()
    expect(a.get_by_role("status").filter(has_text="Sync complete:")).to_be_visible()
    # AND another browser joins the vault: it has beta only
    b = setup_page(new_page, honest)
    by_server(b, source["keyDid"])
    submit(b)
    heading(b, "Vault")
    expect(b.get_by_role("list", name="Items (1)")).to_be_visible()
    to_recovery(b)

    # WHEN damaged files are imported THEN each says why and nothing is imported
    damaged = tmp_path / "damaged.nt2backup"
    payload = doc["payload"]
    flipped = payload[:-5] + ("A" if payload[-5] != "A" else "B") + payload[-4:]
    damaged.write_text(json.dumps({**doc, "payload": flipped}))
    import_backup(b, damaged)
    said(
        b,
        "This backup was altered (its header does not belong to its contents) or was made "
        "under another data key; nothing was imported.",
    )
    truncated = tmp_path / "truncated.nt2backup"
    truncated.write_bytes(backup.read_bytes()[:100])
    import_backup(b, truncated)
    said(b, "This is not a readable .nt2backup file.")
    stranger = open_harness(web_context, honest.web_url())  # type: ignore[attr-defined]
    foreign = tmp_path / "other-vault.nt2backup"
    foreign.write_text(
        stranger.evaluate(
            """async () => { await nt2.createVault("another password");
            await nt2.saveItem({title: "theirs", body: "not yours"});
            return new TextDecoder().decode(await nt2.exportBackup()); }"""
        )
    )
    stranger.close()
    import_backup(b, foreign, restore=True)
    said(b, "This backup belongs to another vault; nothing was imported.")
    assert titles_shown(b) == ["beta"]

    # WHEN the real backup is imported, deletions kept THEN alpha stays deleted
    to_recovery(b)
    import_backup(b, backup)
    said(b, "Backup imported: 0 items added or updated, 2 kept as they were.")
    assert titles_shown(b) == ["beta"]
    # WHEN it is imported with "Restore deleted items" THEN alpha is back, with its note
    to_recovery(b)
    import_backup(b, backup, restore=True)
    said(b, "Backup imported: 1 item added or updated, 1 kept as they were.")
    assert titles_shown(b) == ["alpha", "beta"]
    expect(b.get_by_text("first note")).to_be_visible()
    assert [e for e in page_errors if not e.startswith("csp:")] == []


def test_a_syncs_warnings_stay_on_screen_until_dismissed(
    new_page: Any, honest: LyingProxy, source: dict[str, Any], page_errors: list
) -> None:
    # GIVEN a server that withholds every device's manifest from its pull pages
    def withhold(method: str, path: str, answer: Any) -> Any:
        if path == "/api/sync/pull" and isinstance(answer, dict):
            answer["items"] = [i for i in answer.get("items", []) if not i["id"].startswith("nt2.")]
        return answer

    honest.lie = withhold
    # WHEN a person sets this device up from the kit
    page = setup_page(new_page, honest)
    page.get_by_label("Setup kit", exact=True).fill(source["kit"])
    submit(page)
    heading(page, "Vault")
    # THEN the vault opens, and a warning names what could not be verified, in the CLI's words
    warnings = page.get_by_role("region", name="Warnings from sync")
    expect(warnings).to_contain_text(
        "2 item(s) could not be verified against any device's manifest"
    )
    # AND it stays across pages and a clean sync, until the person dismisses it
    honest.lie = None
    go(page, "Settings", "Vault & sync")
    go(page, "Cloud sync", "Cloud sync")
    page.get_by_role("button", name="Sync now").click()
    expect(page.get_by_role("status").filter(has_text="Sync complete:")).to_be_visible()
    expect(warnings.get_by_role("listitem")).to_have_count(1)
    warnings.get_by_role("button", name="Dismiss").click()
    expect(warnings).to_be_hidden()
    assert page_errors == []
