"""Two tabs on the same vault: a writer first takes in what the other tab wrote (its copy
in memory would otherwise write a stale device state over the newer one), a tab shows the
other's edits without a reload, and a password changed in one tab locks the other."""

from __future__ import annotations

from typing import Any

import pytest

from tests.e2e.browser.web_harness import open_harness, web_context  # noqa: F401

pytestmark = pytest.mark.e2e

TITLES = "async () => (await nt2.listItems()).map((i) => i.title).sort()"
STATE = "async () => (await import('/js/core/vault.js')).V.st"


def test_two_tabs_of_one_vault_stay_coherent(web_context: Any, web_server: Any) -> None:  # noqa: F811
    # GIVEN a synced vault open in two tabs of one browser
    one = open_harness(web_context, web_server.web_url(), db="shared")
    one.evaluate(
        "async (api) => { await nt2.createVault('pw-one'); await nt2.enableSync(api); }",
        web_server.url,
    )
    two = open_harness(web_context, web_server.web_url(), db="shared")
    two.evaluate("async () => { await nt2.unlock('pw-one'); }")
    heard = two.evaluate_handle(
        "() => { const seen = []; nt2.onChange((d) => seen.push(d)); return seen; }"
    )
    # WHEN the first tab adds an item and syncs
    one.evaluate("async () => { await nt2.saveItem({title: 'from one'}); await nt2.syncNow(); }")
    # THEN the second tab is told and lists it, without a reload
    two.wait_for_function("(seen) => seen.some((d) => d.otherTab)", arg=heard)
    assert two.evaluate(TITLES) == ["from one"]
    # AND a sync in the second tab starts from the first tab's device state, not its own
    # stale copy: nothing is pushed or pulled again, the watermark is the stored one
    mark = one.evaluate(STATE)["watermark"]
    summary = two.evaluate("async () => nt2.syncNow()")
    assert (summary["pushed"], summary["pulled"]) == (0, 0)
    assert two.evaluate(STATE)["watermark"] == mark
    # AND edits from both tabs are all kept
    two.evaluate("async () => { await nt2.saveItem({title: 'from two'}); }")
    one.evaluate("async () => { await nt2.saveItem({title: 'one again'}); await nt2.syncNow(); }")
    assert one.evaluate(TITLES) == two.evaluate(TITLES) == ["from one", "from two", "one again"]
    assert one.evaluate("async () => (await nt2.syncStatus()).pending") == 0
    # WHEN the password is changed in the first tab THEN the second locks at its next write
    one.evaluate("async () => nt2.changePassword('pw-one', 'pw-two', {rekey: false})")
    refused = two.evaluate(
        "async () => { try { await nt2.saveItem({title: 'late'}); return null; }"
        " catch (e) { return [e.code, e.message]; } }"
    )
    assert refused is not None and refused[0] in {"vault_changed", "locked"}, refused
    assert two.evaluate("async () => (await nt2.state()).unlocked") is False
    two.evaluate("async () => nt2.unlock('pw-two')")
    assert "late" not in two.evaluate(TITLES)
    assert one.errors == [] and two.errors == []
