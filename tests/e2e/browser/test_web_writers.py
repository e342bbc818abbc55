"""Facade calls that may open a session wait for the vault's writer lock: opening a session
can finish an interrupted password change (which re-seals and stores the whole vault), so it
must never interleave with an item being saved."""

from __future__ import annotations

from typing import Any

import pytest

from tests.e2e.browser.web_harness import open_harness, web_context  # noqa: F401

pytestmark = pytest.mark.e2e

CALLS = ["listDevices", "renameDevice", "revokeDevice", "syncStatus", "premiumStatus"]


def test_session_opening_calls_wait_for_the_writer(web_context: Any, web_server: Any) -> None:  # noqa: F811
    page = open_harness(web_context, web_server.web_url())
    page.evaluate(
        "async (api) => { await nt2.createVault('pw-one', {iterations: 100000});"
        " await nt2.enableSync(api); }",
        web_server.url,
    )
    for name in CALLS:
        # GIVEN a writer holding the vault (the hook: a save that has not committed yet)
        # WHEN the call is made meanwhile, THEN it has not run when the writer lets go
        order = page.evaluate(
            """async (name) => {
                const order = [];
                let release;
                const held = core.vault.exclusive(() => new Promise((r) => { release = r; }));
                await new Promise((r) => setTimeout(r, 0));
                const done = nt2[name]('nobody', 'x').catch(() => null)
                    .then(() => order.push('call'));
                for (let i = 0; i < 20; i++) await new Promise((r) => setTimeout(r, 10));
                order.push('writer');
                release();
                await held;
                await done;
                return order;
            }""",
            name,
        )
        assert order == ["writer", "call"], name
