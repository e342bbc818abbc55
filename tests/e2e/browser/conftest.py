"""Browser fixtures: the system Chromium driven by Playwright, against the real local server.

Chromium comes from the system (`apt-get install chromium`), never a Playwright download.
Without it a developer sees these tests skipped with one line saying how to get it; in CI
(`CI` set, as `.ci/run` does) they fail instead, so a browser test can never silently vanish.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

CHROMIUM_ENV = "NT2_CHROMIUM"
HOW_TO_GET = "browser tests need Chromium: `apt-get install chromium` (or set NT2_CHROMIUM)"
# A closed network: no background connections, no component updates, no first-run UI.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
]


def chromium_path() -> str | None:
    """$NT2_CHROMIUM, else `chromium` on PATH, else None."""
    named = os.environ.get(CHROMIUM_ENV)
    if named:
        return named if Path(named).is_file() else None
    return shutil.which("chromium") or shutil.which("chromium-browser")


def require_chromium() -> str:
    """The Chromium to drive; a skip (developer) or a failure (CI) when there is none."""
    path = chromium_path()
    if path is None:
        if os.environ.get("CI"):
            pytest.fail(f"CI must run the browser tests: {HOW_TO_GET}")
        pytest.skip(HOW_TO_GET)
    return path


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    """One headless Chromium per test worker."""
    executable = require_chromium()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        launched = pw.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        yield launched
        launched.close()


class PageErrors(list[str]):
    """Uncaught page errors and CSP violations seen by one page."""


@pytest.fixture
def page_errors() -> PageErrors:
    return PageErrors()


@pytest.fixture
def new_page(browser: Any, page_errors: PageErrors) -> Iterator[Any]:
    """A factory of pages, each in a fresh context (its own IndexedDB), closed afterwards."""
    contexts: list[Any] = []

    def make(**context_args: Any) -> Any:
        context = browser.new_context(**context_args)
        contexts.append(context)
        page = context.new_page()
        page.set_default_timeout(15_000)
        page.on("pageerror", lambda exc: page_errors.append(f"pageerror: {exc}"))

        def console(msg: Any) -> None:
            if msg.type == "error" and "Content-Security-Policy" in msg.text:
                page_errors.append(f"csp: {msg.text}")

        page.on("console", console)
        return page

    yield make
    for context in contexts:
        context.close()


@pytest.fixture
def page(new_page: Any) -> Any:
    """One fresh page."""
    return new_page()


@pytest.fixture(scope="session")
def web_server(server_factory: Any) -> Any:
    """A local server (API, live endpoint, web origin) for the browser tests of a worker."""
    return server_factory()


@pytest.fixture(scope="module")
def proxy(server_factory: Any) -> Iterator[Any]:
    """A server behind tests/support/lying_proxy.py whose public URL (and the web origin's
    API) is the proxy's, so signatures made for it verify; `proxy.web` is its web origin."""
    from tests.e2e.conftest import free_port
    from tests.support.lying_proxy import LyingProxy

    lying = LyingProxy(free_port())
    server = server_factory(PUBLIC_API_URL=lying.url)
    lying.start(server.url)
    lying.web = server.web_url()  # type: ignore[attr-defined]
    lying.web_url = lambda: lying.web  # type: ignore[attr-defined]  # as a web_server
    yield lying
    lying.stop()
