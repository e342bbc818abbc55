"""Helpers for the web client's UI tests: open the app, the common flows, screenshots.

Selectors are roles and labels on purpose: a control a test cannot find by its label or role
is one a screen reader cannot name either.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from playwright.sync_api import expect

ROOT = Path(__file__).resolve().parents[3]
SHOTS = ROOT / "docs" / "web"
DESKTOP = {"width": 1280, "height": 800}
PHONE = {"width": 375, "height": 812}
PASSWORD = "correct horse battery staple"


def open_app(page: Any, web_server: Any, path: str = "/") -> Any:
    """The page at `path` of the web origin, once its heading is on screen."""
    page.goto(web_server.web_url() + path)
    expect(page.get_by_role("heading", level=1)).to_be_visible()
    return page


def heading(page: Any, name: str) -> None:
    """The page's h1 is `name` and has the focus (moved there on every navigation)."""
    h1 = page.get_by_role("heading", level=1, name=name)
    expect(h1).to_be_visible()
    expect(h1).to_be_focused()


def create_vault(page: Any, web_server: Any, password: str = PASSWORD) -> None:
    """A fresh vault in this page's browser context, left unlocked on /items."""
    open_app(page, web_server, "/unlock")
    heading(page, "Create a vault")
    page.get_by_label("Master password", exact=True).fill(password)
    page.get_by_label("Confirm master password").fill(password)
    page.get_by_role("button", name="Create vault").click()
    heading(page, "Vault")


def add_item(page: Any, title: str, *, username: str = "", url: str = "", body: str = "") -> None:
    """Add an item through the vault page's form."""
    page.get_by_label("Title", exact=True).fill(title)
    page.get_by_label("Username", exact=True).fill(username)
    page.get_by_label("URL", exact=True).fill(url)
    page.get_by_label("Note", exact=True).fill(body)
    page.get_by_role("button", name="Save item").click()
    expect(page.get_by_role("status").filter(has_text=f"Added “{title}”.")).to_be_visible()


def go(page: Any, link: str, title: str) -> None:
    """Follow a navigation link by its name; the new page's heading gets the focus."""
    page.get_by_role("link", name=link, exact=True).first.click()
    heading(page, title)


def enable_sync(page: Any, web_server: Any) -> None:
    """Enable cloud sync from the Cloud sync page (server prefilled from /config.json).

    Navigation goes through the app's links: a reload would lock the vault (its keys live in
    the page's memory only).
    """
    if not page.url.endswith("/settings/vault/sync"):
        go(page, "Settings", "Vault & sync")
        go(page, "Cloud sync", "Cloud sync")
    expect(page.get_by_label("Server URL")).to_have_value(web_server.url)
    page.get_by_role("button", name="Enable cloud sync").click()
    expect(page.get_by_text("Sync complete", exact=True)).to_be_visible(timeout=30_000)


def shot(page: Any, name: str) -> None:
    """docs/web/<name>-desktop.png and -phone.png; the page fits a 375 px screen."""
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.set_viewport_size(DESKTOP)
    page.screenshot(path=str(SHOTS / f"{name}-desktop.png"), full_page=True)
    page.set_viewport_size(PHONE)
    fits_phone(page)
    page.screenshot(path=str(SHOTS / f"{name}-phone.png"), full_page=True)
    page.set_viewport_size(DESKTOP)


def fits_phone(page: Any) -> None:
    """Nothing scrolls sideways at 375 px (every control reachable without panning)."""
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= PHONE["width"], f"{page.url} is {width} px wide at phone width"


def status_value(page: Any, term: str) -> Any:
    """The <dd> after the <dt> named `term` in a status list."""
    return page.locator("dl.status dt", has_text=re.compile(f"^{re.escape(term)}$")).locator(
        "xpath=following-sibling::dd[1]"
    )


def said(page: Any, text: str, timeout: float = 5_000) -> None:
    """A live status region (role=status) says exactly `text`."""
    region = page.get_by_role("status").filter(has_text=text)
    expect(region).to_have_text(text, timeout=timeout)
