"""The NT² Premium page in a real browser: the status as each server reports it, promo codes
made with `nt2sync-admin`, and the Lemon Squeezy checkout link (missing, https, not https)."""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from playwright.sync_api import expect

from tests.e2e.browser.web_ui import create_vault, go, said, shot, status_value
from tests.e2e.test_premium_e2e import TABLE, admin

pytestmark = pytest.mark.e2e
CHECKOUT = "https://nt2.lemonsqueezy.com/buy/ui-test"


# Started by module fixtures, before the suite's autouse settings (tests/conftest.py) are in
# the environment: a server started inside a test would inherit their CORS origin and checkout.
@pytest.fixture(scope="module")
def gated(server_factory: Any) -> Any:
    """Premium required, a checkout link configured, a table `nt2sync-admin` can reach."""
    return server_factory(
        PREMIUM_SYNC_REQUIRED="true", LEMONSQUEEZY_CHECKOUT_URL=CHECKOUT, TABLE_NAME=TABLE
    )


@pytest.fixture(scope="module")
def plain(server_factory: Any) -> Any:
    """A checkout link configured as plain http."""
    return server_factory(LEMONSQUEEZY_CHECKOUT_URL="http://shop.example/buy/x")


def premium_page(new_page: Any, server: Any) -> Any:
    """A fresh vault (sync off) on `server`'s web origin, on the Premium page."""
    page = new_page()
    create_vault(page, server)
    go(page, "Settings", "Vault & sync")
    go(page, "NT² Premium", "NT² Premium")
    return page


def test_dev_server_opens_sync_to_all_and_has_no_checkout(
    new_page: Any, web_server: Any, page_errors: list
) -> None:
    # GIVEN the dev server (Premium off) WHEN the Premium page opens
    page = premium_page(new_page, web_server)
    # THEN it says what that server reports
    expect(status_value(page, "Plan")).to_have_text("Free (dev: sync open to all)")
    expect(status_value(page, "Premium required")).to_have_text(
        "No (this server runs with Premium off)"
    )
    # WHEN the checkout is asked for on a server without one THEN it says so, with no link
    page.get_by_role("button", name="Subscribe with Lemon Squeezy").click()
    said(
        page,
        "This server has no Lemon Squeezy checkout set up: ask its operator, or redeem a "
        "promo code above.",
    )
    expect(page.get_by_role("link", name="Open the Lemon Squeezy checkout")).to_have_count(0)
    assert page_errors == []


def test_premium_required_redeem_a_code_and_open_the_checkout(
    new_page: Any, gated: Any, page_errors: list
) -> None:
    # GIVEN a server that requires Premium, with a checkout link configured
    page = premium_page(new_page, gated)
    # THEN the page says Premium is required and not active
    expect(status_value(page, "Plan")).to_have_text("Free")
    expect(status_value(page, "Premium required")).to_have_text(
        "Yes, to register, push and upload attachments"
    )
    expect(status_value(page, "Source")).to_have_text("None yet")
    expect(
        page.get_by_text("This server requires Premium before cloud sync can be enabled")
    ).to_be_visible()
    shot(page, "premium")

    # WHEN an unknown promo code is redeemed THEN it says so and nothing changes
    page.get_by_label("Promo code", exact=True).fill("NOT-A-CODE")
    page.get_by_role("button", name="Redeem").click()
    said(page, "That promo code is unknown or expired.")
    expect(status_value(page, "Plan")).to_have_text("Free")
    # WHEN a code made with nt2sync-admin is redeemed
    (code,) = admin(gated, "promo", "create", "--days", "14", "--max-redemptions", "1")
    page.get_by_label("Promo code", exact=True).fill(code)
    page.get_by_role("button", name="Redeem").click()
    # THEN Premium is active, from that code, until a date in two weeks
    expect(page.get_by_role("status").filter(has_text="Promo code redeemed")).to_contain_text(
        "Premium is active until"
    )
    expect(status_value(page, "Plan")).to_have_text("NT² Premium: active")
    expect(status_value(page, "Source")).to_have_text("Promo code")
    in_two_weeks = page.evaluate(
        "() => new Date(Date.now() + 14 * 86400e3).toLocaleDateString(undefined, "
        "{dateStyle: 'medium'})"
    )
    expect(status_value(page, "Expires")).to_contain_text(in_two_weeks)
    expect(page.get_by_text("Cloud sync is available to this vault.")).to_be_visible()
    expect(page.get_by_label("Promo code", exact=True)).to_have_value("")
    # AND a reload of the status (the server's word) agrees
    page.get_by_role("button", name="Refresh status").click()
    expect(status_value(page, "Plan")).to_have_text("NT² Premium: active")
    # WHEN the same code is redeemed again THEN it has its own message
    page.get_by_label("Promo code", exact=True).fill(code)
    page.get_by_role("button", name="Redeem").click()
    said(page, "This vault already redeemed that promo code.")
    # AND another vault finds the single-use code used up
    other = premium_page(new_page, gated)
    other.get_by_label("Promo code", exact=True).fill(code)
    other.get_by_role("button", name="Redeem").click()
    said(other, "That promo code has no redemptions left.")
    expect(status_value(other, "Plan")).to_have_text("Free")

    # WHEN the checkout is asked for THEN the link opens the configured https checkout,
    # carrying this vault's Key DID (the shop itself is stubbed: the network is closed)
    page.context.route(
        CHECKOUT + "*",
        lambda route: route.fulfill(body="<h1>Checkout</h1>", content_type="text/html"),
    )
    page.get_by_role("button", name="Subscribe with Lemon Squeezy").click()
    link = page.get_by_role("link", name="Open the Lemon Squeezy checkout")
    expect(link).to_be_focused()
    with page.expect_popup() as popup:
        link.press("Enter")
    opened = urlsplit(popup.value.url)
    assert f"{opened.scheme}://{opened.netloc}{opened.path}" == CHECKOUT
    assert parse_qs(opened.query)["checkout[custom][key_did]"][0].startswith("did:key:z")
    assert link.get_attribute("rel") == "noopener noreferrer"
    assert page_errors == []


def test_a_checkout_link_that_is_not_https_is_refused(
    new_page: Any, plain: Any, page_errors: list
) -> None:
    # GIVEN a server configured with a plain-http checkout link
    page = premium_page(new_page, plain)
    # WHEN the checkout is asked for THEN the page refuses to show it
    page.get_by_role("button", name="Subscribe with Lemon Squeezy").click()
    said(page, "The server's checkout link is not an https:// address; not showing it.")
    expect(page.get_by_role("link", name="Open the Lemon Squeezy checkout")).to_have_count(0)
    assert page.locator("a[href^='http://shop.example']").count() == 0
    assert page_errors == []
