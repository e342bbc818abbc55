# ruff: noqa: E501 - the JavaScript evaluated in the page is kept as the page runs it
"""A lying server, refused in the page with the right code: the web engine against the real
local server behind a proxy that rewrites its answers (tests/support/lying_proxy.py), with
the app served from that server's own web origin (its CSP names the proxy as the API)."""

from __future__ import annotations

from typing import Any

import pytest

from chalicelib.shared.encoding import b64url_decode, b64url_encode
from tests.e2e.browser.web_harness import evaluate_error, open_harness, web_context
from tests.support.lying_proxy import LyingProxy

__all__ = ["web_context"]
pytestmark = pytest.mark.e2e
PULL = "/api/sync/pull"
BOOT = "/api/vault/bootstrap"


@pytest.fixture
def honest(proxy: LyingProxy) -> LyingProxy:
    proxy.lie = None
    return proxy


@pytest.fixture(scope="module")
def synced(web_context: Any, proxy: LyingProxy) -> dict[str, Any]:
    """Device A (made the vault, two items, synced) and device B (joined from A's kit)."""
    proxy.lie = None
    a = open_harness(web_context, proxy.web)  # type: ignore[attr-defined]
    kit = a.evaluate(
        """async (api) => { await nt2.createVault("pw-one");
        await nt2.saveItem({title: "alpha", body: "one"}); await nt2.saveItem({title: "beta", body: "two"});
        await nt2.enableSync(api); return (await nt2.exportKit()).text; }""",
        proxy.url,
    )
    b = open_harness(web_context, proxy.web)  # type: ignore[attr-defined]
    b.evaluate("async (kit) => nt2.joinFromKit(kit, 'pw-one')", kit)
    return {"a": a, "b": b, "kit": kit}


def titles(page: Any) -> dict[str, str]:
    return {i["title"]: i["body"] for i in page.evaluate("() => nt2.listItems()")}


def edit(page: Any, title: str, body: str) -> None:
    page.evaluate(
        """async ([title, body]) => { const it = (await nt2.listItems()).find((i) => i.title === title);
        await nt2.saveItem({id: it.id, title, body}); return nt2.syncNow(); }""",
        [title, body],
    )


def rewrite_items(fn: Any) -> Any:
    def lie(method: str, path: str, answer: Any) -> Any:
        if path == PULL and isinstance(answer, dict):
            answer["items"] = [fn(item) for item in answer.get("items", [])]
        return answer

    return lie


def refused_pull(synced: dict[str, Any], proxy: LyingProxy, lie: Any) -> dict[str, Any]:
    """B syncs against the lie: the refusal, and proof that nothing of the page was stored."""
    b = synced["b"]
    before = (titles(b), b.evaluate("async () => (await nt2.syncStatus()).watermark"))
    proxy.lie = lie
    try:
        out = evaluate_error(b, "() => nt2.syncNow()")
    finally:
        proxy.lie = None
    after = (titles(b), b.evaluate("async () => (await nt2.syncStatus()).watermark"))
    assert after == before, "a refused page changed the vault"
    return out


def test_a_tampered_item_is_refused_and_nothing_stored(
    synced: dict[str, Any], proxy: LyingProxy
) -> None:
    # GIVEN A edits an item WHEN the server flips a bit of its ciphertext for B
    edit(synced["a"], "alpha", "one, edited")

    def flip(item: dict[str, Any]) -> dict[str, Any]:
        if item.get("ciphertext") and not item.get("deleted"):
            raw = bytearray(b64url_decode(item["ciphertext"]))
            raw[-1] ^= 1
            item["ciphertext"] = b64url_encode(bytes(raw))
        return item

    out = refused_pull(synced, proxy, rewrite_items(flip))
    # THEN B refuses it as altered; honest again, B gets the edit
    assert out["code"] == "tampered" and "altered" in out["message"]
    synced["b"].evaluate("() => nt2.syncNow()")
    assert titles(synced["b"])["alpha"] == "one, edited"


def test_a_swapped_item_is_refused(synced: dict[str, Any], proxy: LyingProxy) -> None:
    edit(synced["a"], "beta", "two, edited")
    out = refused_pull(
        synced,
        proxy,
        rewrite_items(
            lambda i: {**i, "id": "swapped-" + i["id"]} | {"id": i["id"].replace("-", "_")}
        ),
    )
    assert out["code"] == "tampered"
    synced["b"].evaluate("() => nt2.syncNow()")


def test_a_replayed_older_revision_is_refused(synced: dict[str, Any], proxy: LyingProxy) -> None:
    # GIVEN B holds alpha at some revision; the server keeps its older ciphertext
    b = synced["b"]
    old: dict[str, str] = {}

    def keep(method: str, path: str, answer: Any) -> Any:
        if path == PULL:
            for item in answer.get("items", []):
                if item.get("ciphertext"):
                    old.setdefault(item["id"], item["ciphertext"])
        return answer

    edit(synced["a"], "alpha", "rev A")
    proxy.lie = keep
    b.evaluate("() => nt2.syncNow()")
    proxy.lie = None
    edit(synced["a"], "alpha", "rev B")
    b.evaluate("() => nt2.syncNow()")
    edit(synced["a"], "alpha", "rev C")
    # WHEN the server serves the older ciphertext as the newest
    out = refused_pull(
        synced,
        proxy,
        rewrite_items(lambda i: {**i, "ciphertext": old.get(i["id"], i["ciphertext"])}),
    )
    # THEN B refuses the replay
    assert out["code"] == "rollback" and "replayed an older version" in out["message"]
    b.evaluate("() => nt2.syncNow()")
    assert titles(b)["alpha"] == "rev C"


def test_a_forged_deletion_is_refused(synced: dict[str, Any], proxy: LyingProxy) -> None:
    edit(synced["a"], "beta", "about to be forged away")
    out = refused_pull(
        synced, proxy, rewrite_items(lambda i: {**i, "deleted": True, "ciphertext": None})
    )
    assert out["code"] == "unproven_deletion"
    synced["b"].evaluate("() => nt2.syncNow()")
    assert "beta" in titles(synced["b"])


def test_a_hostile_page_is_refused(synced: dict[str, Any], proxy: LyingProxy) -> None:
    edit(synced["a"], "beta", "page test")

    def back(method: str, path: str, answer: Any) -> Any:
        if path == PULL:
            answer["watermark"] = 0
        return answer

    assert refused_pull(synced, proxy, back)["code"] == "server_lied"
    synced["b"].evaluate("() => nt2.syncNow()")


def test_a_checkout_link_that_is_not_https_is_not_shown(
    synced: dict[str, Any], proxy: LyingProxy
) -> None:
    proxy.lie = lambda m, p, a: (
        {"url": "javascript:alert(1)"} if p == "/api/premium/checkout" else a
    )
    proxy.lie_status = 200  # the dev server has no checkout configured: it answers 503
    try:
        out = evaluate_error(synced["a"], "() => nt2.checkoutUrl()")
    finally:
        proxy.lie, proxy.lie_status = None, None
    assert out["code"] == "untrusted_link"


@pytest.mark.parametrize(
    ("lie", "code"),
    [
        (lambda b: {**b, "kdf": {"algorithm": "PBKDF2-SHA256", "iterations": 1000}}, "weak_kdf"),
        (lambda b: {**b, "kdf": {"algorithm": "PBKDF2-SHA1", "iterations": 100000}}, "weak_kdf"),
        (lambda b: {**b, "saltHex": "00" * 16}, "server_lied"),
        (
            lambda b: {
                **b,
                "verifier": b["verifier"][:-2] + ("AA" if b["verifier"][-2:] != "AA" else "BA"),
            },
            "server_lied",
        ),
        (
            lambda b: {**b, "keyDid": "did:key:z6MkehRgf7yJbgaGfYsdoAsKdBPE3dj2CYhowQdcjqSJgvVd"},
            "server_lied",
        ),
    ],
)
def test_a_lying_bootstrap_is_refused_before_anything_authenticated(
    web_context: Any, synced: dict[str, Any], proxy: LyingProxy, lie: Any, code: str
) -> None:
    # GIVEN a new device setting up from the kit WHEN the bootstrap lies
    page = open_harness(web_context, proxy.web)  # type: ignore[attr-defined]
    mark = len(proxy.seen)
    proxy.lie = lambda m, p, a: lie(a) if p == BOOT else a
    try:
        out = evaluate_error(page, "async (kit) => nt2.joinFromKit(kit, 'pw-one')", synced["kit"])
    finally:
        proxy.lie = None
    # THEN it is refused with its own code, nothing authenticated was sent, nothing kept
    assert out["code"] == code, out
    assert proxy.authenticated_since(mark) == []
    assert not any(s.path == "/api/auth/challenge" for s in proxy.seen[mark:])
    assert page.evaluate("() => nt2.state()")["exists"] is False
    page.close()


def test_a_wrong_password_or_altered_kit_sends_nothing(
    web_context: Any, synced: dict[str, Any], honest: LyingProxy
) -> None:
    page = open_harness(web_context, honest.web)  # type: ignore[attr-defined]
    mark = len(honest.seen)
    # a wrong password with a kit: the MAC does not verify, nothing reaches the network
    assert (
        evaluate_error(page, "async (kit) => nt2.joinFromKit(kit, 'pw-guess')", synced["kit"])[
            "code"
        ]
        == "kit_altered"
    )
    # a kit whose server was swapped to a relay
    relayed = synced["kit"].replace(honest.url, "http://127.0.0.1:9")
    assert (
        evaluate_error(page, "async (kit) => nt2.joinFromKit(kit, 'pw-one')", relayed)["code"]
        == "kit_altered"
    )
    assert honest.seen[mark:] == []
    # without a kit, a wrong password ends at the key DID check: no challenge, no session
    kit = page.evaluate("(t) => nt2.parseKit(t)", synced["kit"])
    out = evaluate_error(
        page, "async (k) => nt2.joinFromServer(k.server, k.keyDid, 'pw-guess')", kit
    )
    assert out["code"] == "wrong_password"
    assert honest.authenticated_since(mark) == []
    assert [s.path for s in honest.seen[mark:]] == ["/api/health", BOOT]
    page.close()


def test_a_server_claiming_another_audience_is_refused(
    web_context: Any, synced: dict[str, Any], proxy: LyingProxy
) -> None:
    page = open_harness(web_context, proxy.web)  # type: ignore[attr-defined]
    proxy.lie = lambda m, p, a: (
        {**a, "audience": "https://other.example"} if p == "/api/health" else a
    )
    try:
        out = evaluate_error(page, "async (kit) => nt2.joinFromKit(kit, 'pw-one')", synced["kit"])
    finally:
        proxy.lie = None
    assert out["code"] == "audience_mismatch"
    page.close()


def test_a_wrong_password_is_refused_locally(synced: dict[str, Any], honest: LyingProxy) -> None:
    # GIVEN an unlocked device WHEN it is locked and a wrong password typed
    a = synced["a"]
    a.evaluate("() => nt2.lock()")
    mark = len(honest.seen)
    assert evaluate_error(a, "() => nt2.unlock('pw-guess')")["code"] == "wrong_password"
    # THEN nothing was sent, and the right password still opens it
    assert honest.seen[mark:] == []
    a.evaluate("() => nt2.unlock('pw-one')")
    assert "alpha" in titles(a)
