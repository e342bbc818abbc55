"""The facade's auto-lock counts the person's input, not the page's own calls: a vault kept
busy by background work (live pulls, status refreshes) still locks when nobody touches it."""

from __future__ import annotations

from typing import Any

import pytest

from tests.e2e.browser.web_harness import open_harness, web_context  # noqa: F401

pytestmark = pytest.mark.e2e


def test_background_calls_do_not_keep_the_vault_open(web_context: Any, web_server: Any) -> None:  # noqa: F811
    page = open_harness(web_context, web_server.web_url())
    # GIVEN an unlocked vault with a 1 s auto-lock
    page.evaluate(
        "async () => { await nt2.createVault('pw-one', {iterations: 100000});"
        " nt2.setAutoLock(1000); }"
    )
    # WHEN the page keeps calling the facade every 100 ms for 4 s, with no input
    calls = page.evaluate(
        """async () => {
            let n = 0;
            const end = performance.now() + 4000;
            while (performance.now() < end) {
                try { await nt2.listItems(); n++; }
                catch (e) { if (e.code === 'locked') return {n, locked: true}; throw e; }
                await new Promise((r) => setTimeout(r, 100));
            }
            return {n, locked: false};
        }"""
    )
    # THEN it locked while the calls went on (after about 1 s)
    assert calls["locked"] and calls["n"] >= 2, calls
    assert page.evaluate("async () => (await nt2.state()).unlocked") is False
    # AND the person's input does keep it open: a key press every 200 ms for 2 s
    page.evaluate("async () => { await nt2.unlock('pw-one'); nt2.setAutoLock(1000); }")
    for _ in range(10):
        page.keyboard.press("Shift")
        page.wait_for_timeout(200)
    assert page.evaluate("async () => (await nt2.state()).unlocked") is True
    page.wait_for_timeout(2500)
    assert page.evaluate("async () => (await nt2.state()).unlocked") is False
