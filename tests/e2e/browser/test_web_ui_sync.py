"""Cloud sync, the recovery kit, a second device set up from it, live changes, enrolled
devices (rename, revoke, then the password change) and disabling sync, in a real browser."""

from __future__ import annotations

import json
from typing import Any

import pytest
from playwright.sync_api import expect

from tests.e2e.browser.web_ui import (
    PASSWORD,
    add_item,
    create_vault,
    enable_sync,
    go,
    heading,
    open_app,
    said,
    shot,
    status_value,
)

pytestmark = pytest.mark.e2e


def test_two_devices_sync_live_and_are_managed(
    new_page: Any, web_server: Any, page_errors: list, tmp_path: Any
) -> None:
    # GIVEN a vault with one note, sync off
    laptop = new_page()
    create_vault(laptop, web_server)
    add_item(laptop, "Shared note", body="from the laptop")
    go(laptop, "Settings", "Vault & sync")
    go(laptop, "Cloud sync", "Cloud sync")
    expect(status_value(laptop, "Cloud sync")).to_have_text("Off on this device")
    # WHEN cloud sync is enabled (the server URL comes from /config.json)
    enable_sync(laptop, web_server)
    # THEN the status names the registered vault, its remote items and the live connection
    expect(status_value(laptop, "Cloud registered")).to_have_text("Yes")
    expect(status_value(laptop, "Remote items")).to_have_text("1")
    expect(status_value(laptop, "Cloud sync")).to_have_text("Enabled on this device")
    expect(laptop.locator(".card p.live")).to_have_text("Live updates: on", timeout=10_000)
    expect(laptop.get_by_role("button", name="Sync now")).to_be_visible()
    shot(laptop, "cloud-sync")

    # WHEN the recovery kit is shown THEN it is a QR code and a file
    go(laptop, "Recovery & backup", "Recovery kit and backups")
    laptop.get_by_role("button", name="Show recovery kit").click()
    qr = laptop.get_by_role("img", name="Recovery kit QR code")
    expect(qr).to_be_visible()
    assert int(qr.get_attribute("data-modules") or 0) >= 21
    kit_text = laptop.get_by_label("Kit text").input_value()
    kit = json.loads(kit_text)
    assert kit["server"] == web_server.url and kit["keyDid"].startswith("did:key:z")
    with laptop.expect_download() as download:
        laptop.get_by_role("button", name="Download recovery kit").click()
    kit_file = tmp_path / "kit.json"
    download.value.save_as(kit_file)
    assert json.loads(kit_file.read_text()) == kit
    shot(laptop, "recovery")

    # WHEN a second browser sets itself up from the kit file and the master password
    phone = new_page()
    open_app(phone, web_server, "/setup")
    heading(phone, "Set up this device")
    phone.get_by_label("Setup kit file").set_input_files(str(kit_file))
    expect(phone.get_by_label("Setup kit", exact=True)).to_have_value(kit_text)
    phone.get_by_label("Master password").fill(PASSWORD)
    phone.get_by_role("button", name="Set up this device").click()
    # THEN it opens the vault with the laptop's note
    heading(phone, "Vault")
    expect(phone.get_by_text("from the laptop")).to_be_visible()

    # WHEN the phone adds a note THEN the open laptop shows it without a reload (live)
    go(laptop, "Vault", "Vault")
    laptop.evaluate("window.__sameDocument = true")
    expect(laptop.locator("#live-badge")).to_have_text("Live updates: on", timeout=10_000)
    add_item(phone, "From the phone", body="typed on the phone")
    expect(laptop.get_by_text("typed on the phone")).to_be_visible(timeout=10_000)
    assert laptop.evaluate("window.__sameDocument") is True

    # WHEN the laptop manages the enrolled devices
    go(laptop, "Settings", "Vault & sync")
    go(laptop, "Manage enrolled devices", "Enrolled devices")
    devices = laptop.get_by_role("list", name="Devices")
    expect(devices.get_by_role("listitem")).to_have_count(2)
    this_one = devices.get_by_role("listitem").filter(has_text="This device")
    expect(this_one).to_have_count(1)
    expect(this_one).to_contain_text("Last seen")
    other = devices.get_by_role("listitem").filter(has_not_text="This device")
    # THEN the other one can be renamed ...
    other.get_by_role("button", name="Rename").click()
    laptop.get_by_label("New name for Unnamed device").fill("Phone <b>1</b>")
    laptop.get_by_role("button", name="Save name").click()
    said(laptop, "Renamed to “Phone <b>1</b>”.")
    expect(devices.get_by_text("Phone <b>1</b>", exact=True)).to_be_visible()
    shot(laptop, "devices")
    # ... and revoked, after a confirmation, which then offers the password change
    laptop.get_by_role("button", name="Revoke Phone <b>1</b>").click()
    dialog = laptop.get_by_role("dialog", name="Revoke “Phone <b>1</b>”?")
    expect(dialog).to_contain_text("can still enrol another device until you change it")
    dialog.get_by_role("button", name="Revoke device").click()
    said(laptop, "Revoked “Phone <b>1</b>”.")
    expect(devices.get_by_role("listitem").filter(has_text="Revoked")).to_have_count(1)
    laptop.get_by_role("link", name="Change the master password now").click()
    heading(laptop, "Master password")
    expect(laptop.get_by_text("You revoked a device")).to_be_visible()
    expect(laptop.get_by_label("Re-key the vault (recommended)")).to_be_checked()
    # AND the revoked phone hears that it was revoked
    expect(phone.get_by_role("alert")).to_contain_text("revoked", timeout=10_000)

    # WHEN the laptop syncs now THEN it reports what moved
    go(laptop, "Cloud sync", "Cloud sync")
    laptop.get_by_role("button", name="Sync now").click()
    expect(laptop.get_by_role("status").filter(has_text="Sync complete:")).to_be_visible()
    expect(status_value(laptop, "Remote items")).to_have_text("2")
    # WHEN sync is disabled THEN the confirmation says plainly that the server keeps the ciphertext
    laptop.get_by_role("button", name="Disable cloud sync").click()
    dialog = laptop.get_by_role("dialog", name="Disable cloud sync on this device?")
    expect(dialog).to_contain_text("The server keeps the encrypted copy (ciphertext)")
    dialog.get_by_role("button", name="Disable cloud sync").click()
    expect(laptop.get_by_role("status").filter(has_text="Cloud sync is off")).to_have_text(
        "Cloud sync is off on this device. The server still keeps the ciphertext."
    )
    expect(status_value(laptop, "Cloud sync")).to_have_text("Off on this device")
    expect(laptop.get_by_role("button", name="Enable cloud sync")).to_be_visible()
    assert page_errors == []
