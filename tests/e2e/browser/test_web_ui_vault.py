"""The vault pages in a real browser: create, unlock, add/edit/delete, lock, auto-lock."""

from __future__ import annotations

from typing import Any

import pytest
from playwright.sync_api import expect

from tests.e2e.browser.web_ui import PASSWORD, add_item, create_vault, heading, open_app, said, shot

pytestmark = pytest.mark.e2e


def test_create_add_edit_delete_lock_and_unlock(
    page: Any, web_server: Any, page_errors: list
) -> None:
    # GIVEN a fresh browser: the app offers to create a vault
    open_app(page, web_server)
    heading(page, "Create a vault")
    shot(page, "create-vault")
    # WHEN the two passwords differ THEN it says so and creates nothing
    page.get_by_label("Master password", exact=True).fill(PASSWORD)
    page.get_by_label("Confirm master password").fill(PASSWORD + "!")
    page.get_by_role("button", name="Create vault").click()
    said(page, "The two passwords differ: type the same master password twice.")
    # WHEN they match THEN the (empty) vault opens
    page.get_by_label("Confirm master password").fill(PASSWORD)
    page.get_by_role("button", name="Create vault").click()
    heading(page, "Vault")
    expect(page.get_by_text("Your vault is empty")).to_be_visible()

    # WHEN a login and a note are added (a title that looks like markup stays text)
    add_item(page, "GitHub", username="octo", url="https://github.com", body="2FA on")
    add_item(page, '<img src=x onerror="document.title=1">', body="not markup")
    items = page.get_by_role("list", name="Items (2)")
    expect(items.get_by_role("listitem")).to_have_count(2)
    expect(items.get_by_text("octo · https://github.com")).to_be_visible()
    expect(items.get_by_text('<img src=x onerror="document.title=1">')).to_be_visible()
    assert page.locator(".items img").count() == 0
    # WHEN one is edited
    page.get_by_role("button", name="Edit GitHub").click()
    expect(page.get_by_role("heading", name="Edit “GitHub”")).to_be_visible()
    expect(page.get_by_label("Title", exact=True)).to_be_focused()
    page.get_by_label("Username", exact=True).fill("octocat")
    page.get_by_role("button", name="Save changes").click()
    said(page, "Saved changes to “GitHub”.")
    expect(items.get_by_text("octocat · https://github.com")).to_be_visible()
    shot(page, "vault")
    # WHEN the other is deleted: a confirmation first, Cancel keeps it
    name = '<img src=x onerror="document.title=1">'
    page.get_by_role("button", name=f"Delete {name}").click()
    dialog = page.get_by_role("dialog")
    expect(dialog.get_by_role("heading")).to_have_text(f"Delete “{name}”?")
    dialog.get_by_role("button", name="Cancel").click()
    expect(items.get_by_role("listitem")).to_have_count(2)
    page.get_by_role("button", name=f"Delete {name}").click()
    page.get_by_role("dialog").get_by_role("button", name="Delete").click()
    expect(page.get_by_role("list", name="Items (1)").get_by_role("listitem")).to_have_count(1)
    # AND the search filters what is shown
    page.get_by_label("Search the vault").fill("nothing like it")
    expect(page.get_by_text("No item matches the search.")).to_be_visible()
    page.get_by_label("Search the vault").fill("git")
    expect(page.get_by_role("list", name="Items (1 of 1)")).to_be_visible()

    # WHEN the vault is locked THEN the unlock page replaces it
    page.get_by_role("button", name="Lock", exact=True).click()
    heading(page, "Unlock your vault")
    said(page, "Vault locked.")
    expect(page.get_by_role("button", name="Lock", exact=True)).to_be_hidden()
    shot(page, "unlock")
    # AND a locked vault's pages send back to unlock, then on to where the person was going
    page.goto(web_server.web_url() + "/settings/vault/sync")
    heading(page, "Unlock your vault")
    # WHEN the password is wrong THEN it says so (checked locally: nothing is sent)
    requests: list[str] = []
    page.on("request", lambda r: requests.append(r.url))
    page.get_by_label("Master password").fill("not it")
    page.get_by_role("button", name="Unlock").click()
    said(page, "Wrong master password. Check it and try again; nothing was sent to any server.")
    assert not [u for u in requests if u.startswith(web_server.url)]
    # WHEN it is right THEN the page asked for opens, and the items survived (IndexedDB)
    page.get_by_label("Master password").fill(PASSWORD)
    page.get_by_role("button", name="Unlock").click()
    heading(page, "Cloud sync")
    page.get_by_role("link", name="Vault", exact=True).click()
    heading(page, "Vault")
    expect(page.get_by_text("octocat · https://github.com")).to_be_visible()
    assert page.title() == "Vault · NT²"
    assert page_errors == []


def test_auto_lock_after_inactivity_default_five_minutes_and_configurable(
    page: Any, web_server: Any, page_errors: list
) -> None:
    # GIVEN a fake clock and an open vault
    page.clock.install()
    create_vault(page, web_server)
    # WHEN 4 minutes pass with activity at the end THEN it stays open
    page.clock.fast_forward("04:00")
    page.keyboard.press("Shift")
    page.clock.fast_forward("04:00")
    expect(page.get_by_role("heading", level=1, name="Vault")).to_be_visible()
    # WHEN 5 minutes pass without activity THEN it locks and says why
    page.clock.fast_forward("01:01")
    heading(page, "Unlock your vault")
    said(page, "Vault locked after 5 minutes without activity.")
    # WHEN the period is set to 1 minute in Settings
    page.get_by_label("Master password").fill(PASSWORD)
    page.get_by_role("button", name="Unlock").click()
    heading(page, "Vault")
    page.get_by_role("link", name="Settings", exact=True).click()
    heading(page, "Vault & sync")
    page.get_by_label("Lock the vault after").select_option("1")
    said(page, "The vault now locks after 1 minute without activity.")
    shot(page, "settings")
    page.clock.fast_forward("01:01")
    heading(page, "Unlock your vault")
    said(page, "Vault locked after 1 minute without activity.")
    assert page_errors == []
