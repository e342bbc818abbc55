"""A keyboard-only walk through the web client: Set up this device, create a vault, add an
item, enable cloud sync, then Enrolled devices, Recovery and Premium, with Tab, Shift+Tab,
Enter, Space (and the arrow keys in a radio group) only: no click, no fill, text is typed
into whatever has the focus. On every page each control is reached by Tab in document
order, and the focused control shows a visible focus ring."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import expect

from tests.e2e.browser.web_harness import open_harness
from tests.e2e.browser.web_ui import PASSWORD, PHONE, heading, said, status_value

pytestmark = pytest.mark.e2e

# What a person can operate: the elements Tab must reach (hidden and disabled ones aside).
CONTROLS = """() => [...document.querySelectorAll(
  "a[href], button, input, select, textarea, summary, [tabindex]:not([tabindex='-1'])")]
  .filter((el) => !el.disabled && el.getClientRects().length > 0
    && getComputedStyle(el).visibility !== "hidden"
    // a radio group is one Tab stop (its checked radio); the arrow keys move within it
    && !(el.type === "radio" && !el.checked && el.form
      && el.form.querySelector(`input[type=radio][name="${el.name}"]:checked`)))"""

# The focused element, named as a person hears it, whether its focus ring shows, and its
# place among the controls (computed afresh: a list the page re-renders keeps its places).
FOCUSED = (
    """() => {
  const el = document.activeElement;
  if (!el || el === document.body) return null;
  const label = el.labels && el.labels.length ? el.labels[0].textContent : "";
  const name = (el.getAttribute("aria-label") || label || el.textContent || "").trim();
  const style = getComputedStyle(el);
  const ring = style.outlineStyle !== "none" && parseFloat(style.outlineWidth) >= 2;
  const box = el.getBoundingClientRect();
  return {name, tag: el.tagName.toLowerCase(), ring, visible: box.width > 0 && box.height > 0,
    index: ("""
    + CONTROLS
    + """)().indexOf(el)};
}"""
)


def focused(page: Any) -> dict[str, Any] | None:
    return page.evaluate(FOCUSED)  # type: ignore[no-any-return]


def tab_to(page: Any, name: str, *, back: bool = False, limit: int = 60) -> None:
    """Tab (or Shift+Tab) until the control named `name` has the focus; each stop visible."""
    trail = []
    for _ in range(limit):
        page.keyboard.press("Shift+Tab" if back else "Tab")
        now = focused(page)
        if now is None:
            trail.append("(body)")
            continue
        assert now["visible"] and now["ring"], f"no visible focus on {now}"
        trail.append(now["name"])
        if now["name"] == name:
            return
    raise AssertionError(f"{name!r} is not reachable by keyboard; the focus went {trail}")


def type_into(page: Any, name: str, text: str) -> None:
    tab_to(page, name)
    page.keyboard.type(text)


def every_control_reachable(page: Any) -> None:
    """Tab from the page's heading reaches every visible control, in document order: down to
    the end of the page, then (round through the browser) from the skip link at the top."""
    count = page.evaluate(f"() => ({CONTROLS})().length")
    assert page.evaluate(
        "() => [...document.querySelectorAll('[tabindex]')].every((el) => el.tabIndex <= 0)"
    )
    page.evaluate("() => document.querySelector('main h1').focus()")
    seen: set[int] = set()
    last = -1
    for _ in range(2 * count + 10):
        page.keyboard.press("Tab")
        now = focused(page)
        if now is None:
            last = -1  # left the page: the next stop is its first control again
            continue
        assert now["visible"] and now["ring"], f"no visible focus on {now}"
        # (index 0, the skip link, is where Tab wraps round to, with or without the browser)
        assert now["index"] > last or now["index"] == 0, f"Tab went back up the page to {now}"
        last = now["index"]
        seen.add(now["index"])
        if len(seen) == count:
            break
    missing = page.evaluate(
        f"(seen) => ({CONTROLS})().filter((el, i) => !seen.includes(i))"
        ".map((el) => el.outerHTML.slice(0, 120))",
        sorted(seen),
    )
    assert missing == [], f"not reachable by Tab: {missing}"
    page.evaluate("() => document.querySelector('main h1').focus()")


def test_a_keyboard_only_walk(page: Any, new_page: Any, web_server: Any, page_errors: list) -> None:
    # GIVEN a fresh browser on /unlock: the heading has the focus
    page.goto(web_server.web_url() + "/unlock")
    heading(page, "Create a vault")
    # AND the skip link is the first stop from the top and lands on the main content
    tab_to(page, "Skip to content", back=True)
    page.keyboard.press("Enter")
    heading(page, "Create a vault")
    assert page.url == web_server.web_url() + "/unlock"
    # AND Set up this device is in reach, its method switched with the arrow keys
    tab_to(page, "Set up this device")
    page.keyboard.press("Enter")
    heading(page, "Set up this device")
    every_control_reachable(page)
    tab_to(page, "With a setup kit (from Recovery kit on your other device)")
    page.keyboard.press("ArrowDown")
    expect(page.get_by_role("radio", name="With the server URL and Key DID")).to_be_focused()
    expect(page.get_by_label("Key DID", exact=True)).to_be_visible()
    every_control_reachable(page)
    tab_to(page, "Create a vault")
    page.keyboard.press("Enter")
    heading(page, "Create a vault")
    # WHEN the vault is created by typing into the focused fields
    type_into(page, "Master password", PASSWORD)
    type_into(page, "Confirm master password", PASSWORD)
    tab_to(page, "Create vault")
    page.keyboard.press("Enter")
    heading(page, "Vault")
    # WHEN an item is added
    type_into(page, "Title", "Typed only")
    type_into(page, "Note", "no mouse was used")
    # (a fragment in the address bar fires popstate: the page must not re-render and lose this)
    page.evaluate("() => { location.hash = 'top'; }")
    expect(page.get_by_label("Note", exact=True)).to_have_value("no mouse was used")
    tab_to(page, "Save item")
    page.keyboard.press("Enter")
    said(page, "Added “Typed only”.")
    expect(page.get_by_text("no mouse was used")).to_be_visible()
    # THEN the item's Edit and Delete are in reach too
    every_control_reachable(page)
    # AND the delete confirmation takes the focus (on Cancel), keeps it, and gives it back
    tab_to(page, "Delete Typed only")
    page.keyboard.press("Enter")
    dialog = page.get_by_role("dialog", name="Delete “Typed only”?")
    expect(dialog.get_by_role("button", name="Cancel")).to_be_focused()
    page.keyboard.press("Shift+Tab")
    expect(dialog.get_by_role("button", name="Delete")).to_be_focused()
    page.keyboard.press("Tab")
    page.keyboard.press("Enter")
    expect(dialog).to_have_count(0)
    expect(page.get_by_role("button", name="Delete Typed only")).to_be_focused()
    expect(page.get_by_text("no mouse was used")).to_be_visible()

    # WHEN Settings → Cloud sync is opened from the header and sync enabled with Space
    tab_to(page, "Settings", back=True)
    page.keyboard.press("Enter")
    heading(page, "Vault & sync")
    every_control_reachable(page)
    tab_to(page, "Cloud sync")
    page.keyboard.press("Enter")
    heading(page, "Cloud sync")
    every_control_reachable(page)
    tab_to(page, "Enable cloud sync")
    page.keyboard.press("Space")
    expect(page.get_by_text("Sync complete", exact=True)).to_be_visible(timeout=30_000)
    expect(status_value(page, "Cloud sync")).to_have_text("Enabled on this device")

    # WHEN Enrolled devices is opened THEN this device is listed and every control reachable
    tab_to(page, "Enrolled devices", back=True)
    page.keyboard.press("Enter")
    heading(page, "Enrolled devices")
    expect(page.get_by_role("list", name="Devices").get_by_role("listitem")).to_have_count(1)
    every_control_reachable(page)
    # AND a rename is done from the keyboard: the name field takes the focus, Enter saves
    tab_to(page, "Rename Unnamed device")
    page.keyboard.press("Enter")
    expect(page.get_by_label("New name for Unnamed device")).to_be_focused()
    page.keyboard.type("Keyboard laptop")
    page.keyboard.press("Enter")
    said(page, "Renamed to “Keyboard laptop”.")
    # THEN the redrawn list gives the focus back to that device's Rename, live redraws too
    expect(page.get_by_role("button", name="Rename Keyboard laptop")).to_be_focused()
    every_control_reachable(page)

    # WHEN Recovery is opened and the kit shown with Enter THEN its download is reachable
    tab_to(page, "Recovery & backup", back=True)
    page.keyboard.press("Enter")
    heading(page, "Recovery kit and backups")
    every_control_reachable(page)
    tab_to(page, "Show recovery kit")
    page.keyboard.press("Enter")
    expect(page.get_by_role("img", name="Recovery kit QR code")).to_be_visible()
    with page.expect_download() as download:
        tab_to(page, "Download recovery kit")
        page.keyboard.press("Enter")
    assert download.value.suggested_filename == "nt2-setup-kit.json"
    every_control_reachable(page)

    # WHEN a rename is being typed on Enrolled devices and another device joins and names itself
    tab_to(page, "Enrolled devices", back=True)
    page.keyboard.press("Enter")
    heading(page, "Enrolled devices")
    tab_to(page, "Rename Keyboard laptop")
    page.keyboard.press("Enter")
    page.keyboard.type("Half typed")  # (the old name is selected: typing replaces it)
    expect(page.locator("#live-badge")).to_have_text("Live updates: on", timeout=10_000)
    phone = open_harness(new_page().context, web_server.web_url())
    phone.evaluate(
        """async ([kit, pw]) => { await nt2.joinFromKit(kit, pw);
        const me = (await nt2.listDevices()).find((d) => d.current);
        await nt2.renameDevice(me.deviceId, "Phone"); }""",
        [Path(download.value.path()).read_text(), PASSWORD],
    )
    # THEN the live news does not redraw the list under the typing ...
    page.wait_for_timeout(1_500)  # the live event reaches this page well within this
    expect(page.get_by_label("New name for Keyboard laptop")).to_have_value("Half typed")
    expect(page.get_by_label("New name for Keyboard laptop")).to_be_focused()
    # ... and once the rename is cancelled the list shows the new device
    tab_to(page, "Cancel")
    page.keyboard.press("Enter")
    devices = page.get_by_role("list", name="Devices")
    expect(devices.get_by_role("listitem")).to_have_count(2)
    expect(devices.get_by_text("Phone", exact=True)).to_be_visible()
    every_control_reachable(page)
    # AND the Premium page, reached the same way, has nothing out of reach either
    tab_to(page, "NT² Premium", back=True)
    page.keyboard.press("Enter")
    heading(page, "NT² Premium")
    every_control_reachable(page)
    # AND at phone width (the settings links above the page) too
    page.set_viewport_size(PHONE)
    every_control_reachable(page)
    assert page_errors == []
