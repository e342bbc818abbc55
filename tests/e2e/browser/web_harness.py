"""Shared by the web engine's browser tests: one harness page per module, on the web origin
(so the app's Content-Security-Policy applies), with the facade and core modules on window."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from typing import Any

import pytest

_db = itertools.count(1)


def open_harness(context: Any, web_url: str, db: str | None = None) -> Any:
    """A harness page with its own IndexedDB database name (several vaults per context)."""
    page = context.new_page()
    page.set_default_timeout(20_000)
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.on(
        "console",
        lambda msg: (
            errors.append(msg.text)
            if msg.type == "error" and "Content-Security-Policy" in msg.text
            else None
        ),
    )
    page.errors = errors
    name = db or f"t{next(_db)}"
    page.goto(f"{web_url}/test/harness.html?db={name}")
    page.wait_for_function("window.nt2Ready === true")
    return page


@pytest.fixture(scope="module")
def web_context(browser: Any) -> Iterator[Any]:
    """One browser context per test module (pages get their own database names)."""
    context = browser.new_context()
    yield context
    context.close()


def evaluate_error(page: Any, script: str, arg: Any = None) -> dict[str, Any]:
    """Run an async function that should fail in the page; its Nt2Error's code and message."""
    wrapped = (
        "async (arg) => { try { await (" + script + ")(arg); return {code: null}; }"
        " catch (e) { return {code: e.code ?? e.name, message: String(e.message)}; } }"
    )
    return page.evaluate(wrapped, arg)  # type: ignore[no-any-return]


def serve_ciphertext(page: Any, item_id: str, ciphertext: str) -> None:
    """From now on the page's pulls bring `item_id` with `ciphertext` (a server that lies)."""

    def served(route: Any) -> None:
        response = route.fetch()
        body = response.json()
        for item in body["items"]:
            if item["id"] == item_id:
                item["ciphertext"] = ciphertext
        route.fulfill(response=response, json=body)

    page.route("**/sync/pull*", served)
