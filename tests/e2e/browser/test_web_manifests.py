# ruff: noqa: E501 - the JavaScript evaluated in the page is kept as the page runs it
"""Per-device manifests in the browser (docs/CRYPTO.md, "Authenticated vault state"): the
page seals and opens the CLI's exact bytes, publishes its own manifest (an edit costs a root
and one shard), the CLI verifies it at join, the page verifies the CLI's, and a server that
replays what a manifest attests is refused in the CLI's words."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from chalicelib.shared.encoding import b64url_decode, b64url_encode
from nt2sync import manifests as m
from nt2sync.engine import Client
from nt2sync.sync import sync_now
from tests.e2e.browser.web_harness import evaluate_error, open_harness, web_context
from tests.e2e.client_cli import run
from tests.support.lying_proxy import LyingProxy
from tests.unit.test_manifests import (
    KEY,
    NONCE,
    REPLICA,
    ROOT_CT,
    ROOT_HASH,
    SALT,
    SHARD,
    SHARD_CT,
    root,
)

__all__ = ["web_context"]
pytestmark = pytest.mark.e2e
PULL = "/api/sync/pull"
UNVERIFIED = "async () => (await import('/js/core/manifests.js')).unverified()"
# the page's push requests, recorded from the page itself (count what it sends)
RECORD_PUSHES = """() => { if (window.pushes) return; window.pushes = []; const real = window.fetch;
  window.fetch = (url, init) => { if (String(url).includes('/sync/push') && init && init.body) window.pushes.push(JSON.parse(init.body)); return real(url, init); }; }"""


def js(page: Any, body: str, arg: dict[str, Any]) -> Any:
    """`body` in an async function of `arg`, with the format module as `f` and the vector's
    keys (arg.key, arg.salt) as `keys`."""
    prelude = (
        "const f = await import('/js/core/manifest-format.js'); const {bytes, crypto: c} = core;"
        "const keys = await c.vaultKeys(bytes.fromHex(arg.key), bytes.fromHex(arg.salt));"
    )
    return page.evaluate(
        f"async (arg) => {{ {prelude} {body} }}", {"key": KEY.hex(), "salt": SALT.hex(), **arg}
    )


def ok(vault: Path, *args: str, password: str = "pw-one", **env: str) -> Any:
    result = run(vault, *args, "--json", password=password, **env)
    assert result.code == 0, result.err
    return result.json()


def ids_of(page: Any) -> dict[str, str]:
    return {i["title"]: i["id"] for i in page.evaluate("() => nt2.listItems()")}


def cli_join(path: Path, kit: dict[str, Any], password: str) -> tuple[Client, list[str]]:
    """The CLI's join as `nt2sync join --kit` runs it, with the notices it gathered (the
    command line prints them on stderr; its --json answer leaves them out)."""
    client, summary = Client.join(path, kit["server"], kit["keyDid"], password, kit=kit)
    return client, summary.notices


def cli_sync(client: Client) -> list[str]:
    client.notices.clear()  # this sync's notices only
    return sync_now(client).notices


def web_items(page: Any) -> dict[str, str]:
    return {i["title"]: i["body"] for i in page.evaluate("() => nt2.listItems()")}


@pytest.fixture
def page(web_context: Any, web_server: Any) -> Iterator[Any]:
    page = open_harness(web_context, web_server.web_url())
    yield page
    page.close()


# -- the format: the CLI's vector, both ways -----------------------------------------------------
def test_the_page_seals_and_opens_the_clis_manifest_vector(page: Any) -> None:
    # GIVEN the CLI's documented key, salt, nonce and bodies (tests/unit/test_manifests.py)
    arg = {
        "nonce": NONCE.hex(),
        "replica": REPLICA,
        "shard": SHARD,
        "root": root(),
        "shardCt": SHARD_CT,
        "rootCt": ROOT_CT,
    }
    # WHEN the page seals them under that nonce, and opens the CLI's ciphertexts
    out = js(
        page,
        """const nonce = bytes.fromHex(arg.nonce);
        return {
          rootId: f.rootId(arg.replica), shard: await f.shardOf("item-1"),
          shardCt: f.seal(keys, f.shardId(arg.replica, "59"), arg.shard, {nonce}),
          rootCt: f.seal(keys, f.rootId(arg.replica), arg.root, {nonce}),
          shardHash: await f.digest(arg.shardCt), rootHash: await f.digest(arg.rootCt),
          openedRoot: f.open(keys, f.rootId(arg.replica), arg.rootCt),
          openedShard: await f.openChecked(keys, f.shardId(arg.replica, "59"), arg.shardCt),
          aad: bytes.fromUtf8(f.manifestAad(bytes.fromHex(arg.salt), "nt2.manifest:r-1:root")),
          moved: await f.openChecked(keys, f.rootId("r-other"), arg.rootCt).then(() => null, (e) => e.code),
          parsed: [f.parseId(f.shardId(arg.replica, "59")), f.parseId("nt2.manifest:r-1:zz"), f.parseId("item-1")],
        };""",
        arg,
    )
    # THEN every byte is the CLI's
    assert out["rootId"] == "nt2.manifest:r-0001020304050607:root" and out["shard"] == "59"
    assert out["shardCt"] == SHARD_CT and out["rootCt"] == ROOT_CT
    assert out["shardHash"] == m.digest(SHARD_CT) and out["rootHash"] == ROOT_HASH
    assert out["openedRoot"] == root() and out["openedShard"] == SHARD
    assert out["aad"] == m.manifest_aad(SALT, "nt2.manifest:r-1:root").decode()
    assert out["moved"] == "tampered"  # a root moved to another device's id does not open
    assert out["parsed"] == [[REPLICA, "59"], None, None]


@pytest.mark.parametrize(
    "entry",
    [
        ["item-2", 1, 1, 0, "00" * 32],  # an item of another shard
        ["nt2.manifest:x:root", 1, 1, 0, "00" * 32],  # a reserved id
        ["item-1", 0, 1, 0, "00" * 32],  # version 0
        ["item-1", 1, 1, 2, "00" * 32],
        ["item-1", 1, 1, 0, "00"],
    ],
)
def test_a_malformed_shard_sealed_by_python_is_refused_in_the_page(
    page: Any, entry: list[Any]
) -> None:
    # GIVEN a shard the CLI seals with one bad entry WHEN the page opens it THEN it is refused
    sid = m.shard_id(REPLICA, "59")
    sealed = m.seal(KEY, SALT, sid, {**SHARD, "entries": [entry]})
    code = js(
        page,
        "return f.openChecked(keys, arg.sid, arg.sealed).then(() => null, (e) => e.code);",
        {"sid": sid, "sealed": sealed},
    )
    assert code == "unsupported_format"


def test_a_manifest_sealed_in_the_page_opens_in_python(page: Any) -> None:
    # GIVEN a root and a shard the page seals with a random nonce
    body = {**root(), "counter": 7, "seen": {"r-b": [3, "ab" * 32]}}
    out = js(
        page,
        'return [f.seal(keys, f.rootId(arg.replica), arg.root), f.seal(keys, f.shardId(arg.replica, "59"), arg.shard)];',
        {"replica": REPLICA, "root": body, "shard": SHARD},
    )
    # THEN the CLI opens both to the same bodies
    assert m.open_manifest(KEY, SALT, m.root_id(REPLICA), out[0]) == body
    assert m.open_manifest(KEY, SALT, m.shard_id(REPLICA, "59"), out[1]) == SHARD


# -- interop with the CLI ------------------------------------------------------------------------
def manifest_items(pushes: list[dict[str, Any]]) -> list[str]:
    return [i["id"] for p in pushes for i in p["items"] if i["id"].startswith(m.PREFIX)]


def test_the_browsers_manifest_attests_its_items_at_a_cli_join_and_an_edit_costs_a_root_and_a_shard(
    tmp_path: Path, web_server: Any, page: Any
) -> None:
    # GIVEN a vault made in the browser with three items, synced
    page.evaluate(RECORD_PUSHES)
    kit = page.evaluate(
        """async (api) => { await nt2.createVault("pw-web");
        for (const t of ["alpha", "beta", "gamma"]) await nt2.saveItem({title: t, body: t + " body"});
        await nt2.enableSync(api); return (await nt2.exportKit()).text; }""",
        web_server.url,
    )
    published = manifest_items(page.evaluate("() => window.pushes"))
    replica = page.evaluate("() => core.vault.V.st.replicaId")
    assert m.root_id(replica) == published[-1]  # the root last, after its shards
    # WHEN the CLI joins a new vault from that kit
    b, notices = cli_join(tmp_path / "b.sqlite3", json.loads(kit), "pw-web")
    # THEN every item is attested by the browser's manifest, which opened and verified
    assert notices == [], notices
    assert m.unverified(b) == 0 and len(b.vault.get_items([i for i in ids_of(page).values()])) == 3
    # WHEN the browser edits one item and syncs
    page.evaluate("() => { window.pushes.length = 0; }")
    ids = ids_of(page)
    summary = page.evaluate(
        "async (id) => { await nt2.saveItem({id, title: 'alpha', body: 'edited'}); return nt2.syncNow(); }",
        ids["alpha"],
    )
    # THEN it pushed the item, then exactly its root and the one shard the item is in
    pushes = page.evaluate("() => window.pushes")
    assert [len(p["items"]) for p in pushes] == [1, 2]
    assert sorted(manifest_items(pushes)) == sorted(
        [m.shard_id(replica, m.shard_of(ids["alpha"])), m.root_id(replica)]
    )
    assert summary["notices"] == []
    # WHEN the CLI syncs (it applies the edit, verifies the new manifest, publishes a root)
    assert cli_sync(b) == []
    assert b.vault.get_items([ids["alpha"]])[ids["alpha"]].revision == 2
    # THEN the browser's next sync brings only that root and publishes nothing back
    page.evaluate("() => { window.pushes.length = 0; }")
    again = page.evaluate("() => nt2.syncNow()")
    assert again["notices"] == [] and page.evaluate("() => window.pushes") == []
    assert cli_sync(b) == [] and m.unverified(b) == 0
    b.close()
    assert page.errors == []


def test_the_clis_manifest_is_verified_when_the_browser_joins_and_pulls(
    tmp_path: Path, web_server: Any, page: Any
) -> None:
    # GIVEN a CLI vault with two items, synced (its manifest published)
    a = tmp_path / "a.sqlite3"
    ok(a, "init")
    ok(a, "item", "add", "alpha", "--body", "one")
    ok(a, "item", "add", "beta", "--body", "two")
    ok(a, "sync", "enable", "--server", web_server.url)
    # WHEN the browser joins from its kit
    page.evaluate(RECORD_PUSHES)
    joined = page.evaluate(
        "async (kit) => nt2.joinFromKit(kit, 'pw-one')", json.dumps(ok(a, "kit"))
    )
    # THEN every item is attested (nothing named as unverified), and the browser published a
    # root only (its view moved; it wrote nothing of its own)
    assert joined["notices"] == []
    assert web_items(page) == {"alpha": "one", "beta": "two"}
    replica = page.evaluate("() => core.vault.V.st.replicaId")
    assert manifest_items(page.evaluate("() => window.pushes")) == [m.root_id(replica)]
    # WHEN the CLI edits and deletes, and the browser pulls
    cli_ids = {i["title"]: i["id"] for i in ok(a, "item", "list")}
    ok(a, "item", "edit", cli_ids["alpha"], "--body", "one, edited")
    ok(a, "item", "rm", cli_ids["beta"])
    pulled = page.evaluate("() => nt2.syncNow()")
    # THEN the new manifest verifies in the browser, and the CLI sees the browser's root
    assert pulled["notices"] == [] and web_items(page) == {"alpha": "one, edited"}
    client = Client.open(a)
    client.unlock("pw-one")
    assert cli_sync(client) == [] and m.unverified(client) == 0
    client.close()
    assert page.errors == []


# -- a lying server that a manifest exposes --------------------------------------------------------
@pytest.fixture
def lied_to(web_context: Any, proxy: LyingProxy, tmp_path: Path) -> Iterator[dict[str, Any]]:
    """A CLI vault (alpha, beta) synced through the proxy, and a page on the proxy's origin."""
    proxy.lie = None
    a = tmp_path / "a.sqlite3"
    ok(a, "init")
    ok(a, "item", "add", "alpha", "--body", "one")
    ok(a, "item", "add", "beta", "--body", "two")
    ok(a, "sync", "enable", "--server", proxy.url)
    client = Client.open(a)
    client.unlock("pw-one")
    ids = {i["title"]: i["id"] for i in ok(a, "item", "list")}
    page = open_harness(web_context, proxy.web)  # type: ignore[attr-defined]
    yield {"a": a, "cli": client, "ids": ids, "page": page, "kit": json.dumps(ok(a, "kit"))}
    proxy.lie = None
    client.close()
    page.close()


def serve(proxy: LyingProxy, fn: Any) -> None:
    """Rewrite (or drop: fn returns None) the items of every pull page."""

    def lie(method: str, path: str, answer: Any) -> Any:
        if path == PULL and isinstance(answer, dict):
            answer["items"] = [
                out for out in (fn(i) for i in answer.get("items", [])) if out is not None
            ]
        return answer

    proxy.lie = lie


def test_a_join_served_an_item_older_than_the_clis_manifest_attests_refuses_it(
    lied_to: dict[str, Any], proxy: LyingProxy
) -> None:
    # GIVEN alpha's first ciphertext, then an edit the CLI pushed and attested (revision 2)
    alpha = lied_to["ids"]["alpha"]
    old = lied_to["cli"].vault.get_items([alpha])[alpha].ciphertext
    ok(lied_to["a"], "item", "edit", alpha, "--body", "one, edited")
    cli_replica = lied_to["cli"].meta.replica_id
    # WHEN the server replays the old ciphertext to a browser joining
    serve(proxy, lambda i: {**i, "ciphertext": old} if i["id"] == alpha else i)
    joined = lied_to["page"].evaluate(
        "async (kit) => nt2.joinFromKit(kit, 'pw-one')", lied_to["kit"]
    )
    # THEN the browser refuses it in the CLI's words, and keeps only what is attested
    assert (
        f"The server served item {alpha} at revision 1, but device {cli_replica}'s manifest attests revision 2; "
        "refusing it as a replay (the item stays as it was)."
    ) in joined["notices"]
    assert web_items(lied_to["page"]) == {"beta": "two"}
    # WHEN the server is honest again THEN alpha stays unverified (as in the CLI: the pull
    # passed it) until its next change, which arrives
    proxy.lie = None
    assert lied_to["page"].evaluate("() => nt2.syncNow()")["notices"] == []
    assert lied_to["page"].evaluate(UNVERIFIED) == 1
    ok(lied_to["a"], "item", "edit", alpha, "--body", "one, again")
    assert lied_to["page"].evaluate("() => nt2.syncNow()")["notices"] == []
    assert web_items(lied_to["page"]) == {"alpha": "one, again", "beta": "two"}
    assert lied_to["page"].evaluate(UNVERIFIED) == 0
    assert lied_to["page"].errors == []


def test_a_withheld_change_and_a_deletion_served_live_are_named(
    lied_to: dict[str, Any], proxy: LyingProxy
) -> None:
    # GIVEN the browser joined honestly
    page, ids, a = lied_to["page"], lied_to["ids"], lied_to["a"]
    assert (
        page.evaluate("async (kit) => nt2.joinFromKit(kit, 'pw-one')", lied_to["kit"])["notices"]
        == []
    )
    live_beta = lied_to["cli"].vault.get_items([ids["beta"]])[ids["beta"]].ciphertext
    # WHEN the CLI edits alpha and deletes beta, and the server withholds alpha's edit and
    # serves beta live (its old ciphertext) where it holds the deletion
    ok(a, "item", "edit", ids["alpha"], "--body", "one, edited")
    ok(a, "item", "rm", ids["beta"])

    def lie(item: dict[str, Any]) -> dict[str, Any] | None:
        if item["id"] == ids["alpha"]:
            return None
        if item["id"] == ids["beta"]:
            return {**item, "deleted": False, "ciphertext": live_beta}
        return item

    serve(proxy, lie)
    summary = page.evaluate("() => nt2.syncNow()")
    proxy.lie = None
    # THEN both are named in the CLI's words, and nothing of them was applied
    replica = lied_to["cli"].meta.replica_id
    assert (
        f"The server served item {ids['beta']} at revision 1, but device {replica}'s manifest attests its deletion "
        "at revision 2; refusing it as a replay (the item stays as it was)."
    ) in summary["notices"]
    withheld = [n for n in summary["notices"] if n.startswith("The server withheld 1 change(s)")]
    assert withheld and ids["alpha"] in withheld[0] and "(a fork)" in withheld[0]
    assert web_items(page) == {"alpha": "one", "beta": "two"}
    assert page.evaluate(UNVERIFIED) == 2  # both attested at a later state than held
    assert page.errors == []


def test_a_join_whose_manifests_were_withheld_names_the_items_no_manifest_attests(
    lied_to: dict[str, Any], proxy: LyingProxy
) -> None:
    # GIVEN the server withholds every manifest WHEN the browser joins
    serve(proxy, lambda i: None if i["id"].startswith(m.PREFIX) else i)
    joined = lied_to["page"].evaluate(
        "async (kit) => nt2.joinFromKit(kit, 'pw-one')", lied_to["kit"]
    )
    # THEN it says so, in the CLI's words, and keeps the items as served
    assert [
        n
        for n in joined["notices"]
        if n.startswith("2 item(s) could not be verified against any device's manifest")
    ]
    assert web_items(lied_to["page"]) == {"alpha": "one", "beta": "two"}


def test_an_older_root_replayed_is_ignored_and_named(
    lied_to: dict[str, Any], proxy: LyingProxy
) -> None:
    # GIVEN the browser joined (and the server kept the CLI's first root)
    page, ids, a = lied_to["page"], lied_to["ids"], lied_to["a"]
    roots: dict[str, Any] = {}
    replica = lied_to["cli"].meta.replica_id

    def keep(item: dict[str, Any]) -> dict[str, Any]:
        if item["id"] == m.root_id(replica):
            roots.setdefault("first", item)
        return item

    serve(proxy, keep)
    assert (
        page.evaluate("async (kit) => nt2.joinFromKit(kit, 'pw-one')", lied_to["kit"])["notices"]
        == []
    )
    ok(a, "item", "edit", ids["alpha"], "--body", "edited")
    assert page.evaluate("() => nt2.syncNow()")["notices"] == []  # the CLI's second root, seen
    ok(a, "item", "edit", ids["alpha"], "--body", "edited again")
    # WHEN the server serves the first root again in place of the third
    first = roots["first"]
    serve(
        proxy, lambda i: {**i, "ciphertext": first["ciphertext"]} if i["id"] == first["id"] else i
    )
    notices = page.evaluate("() => nt2.syncNow()")["notices"]
    # THEN the browser ignores it and says so, as the CLI does
    counter = m.open_manifest(
        lied_to["cli"].require_keys().data_key,
        lied_to["cli"].salt,
        first["id"],
        first["ciphertext"],
    )["counter"]
    assert (
        f"The server replayed an older manifest of device {replica} (number {counter}; this device has seen {counter + 1}); it was ignored."
        in notices
    )


def test_republish_all_reseals_every_shard_and_the_root(
    tmp_path: Path, web_server: Any, page: Any
) -> None:
    # GIVEN a browser vault of five items, synced
    page.evaluate(RECORD_PUSHES)
    kit = page.evaluate(
        """async (api) => { await nt2.createVault("pw-web");
        for (const t of ["a", "b", "c", "d", "e"]) await nt2.saveItem({title: t, body: t});
        await nt2.enableSync(api); return (await nt2.exportKit()).text; }""",
        web_server.url,
    )
    first = manifest_items(page.evaluate("() => window.pushes"))
    page.evaluate("() => { window.pushes.length = 0; }")
    # WHEN it republishes everything (what a re-key does)
    pushed = page.evaluate("async () => (await import('/js/core/manifests.js')).republishAll()")
    # THEN the same shards and the root went out again, and the CLI verifies them all
    assert pushed == len(first) and sorted(
        manifest_items(page.evaluate("() => window.pushes"))
    ) == sorted(first)
    client, notices = cli_join(tmp_path / "b.sqlite3", json.loads(kit), "pw-web")
    assert notices == [] and m.unverified(client) == 0
    client.close()


def test_an_altered_manifest_is_ignored_as_if_withheld_and_named(
    lied_to: dict[str, Any], proxy: LyingProxy
) -> None:
    # GIVEN the server flips a bit of the CLI's root WHEN the browser joins
    replica = lied_to["cli"].meta.replica_id

    def flip(item: dict[str, Any]) -> dict[str, Any]:
        if item["id"] == m.root_id(replica):
            raw = bytearray(b64url_decode(item["ciphertext"]))
            raw[-1] ^= 1
            return {**item, "ciphertext": b64url_encode(bytes(raw))}
        return item

    serve(proxy, flip)
    joined = lied_to["page"].evaluate(
        "async (kit) => nt2.joinFromKit(kit, 'pw-one')", lied_to["kit"]
    )
    # THEN the join goes on, the root is ignored and named in the CLI's words
    assert (
        f"The server sent device {replica}'s manifest ({m.root_id(replica)}) altered, from another vault or under "
        "an older key; it was ignored, and what it attests is not verified."
    ) in joined["notices"]
    assert web_items(lied_to["page"]) == {"alpha": "one", "beta": "two"}


def test_a_push_the_server_accepted_and_never_returns_is_caught_by_a_spot_check(
    web_context: Any, proxy: LyingProxy
) -> None:
    # GIVEN a browser vault synced through the proxy (the watermark at the head)
    proxy.lie = None
    page = open_harness(web_context, proxy.web)  # type: ignore[attr-defined]
    item = page.evaluate(
        """async (api) => { await nt2.createVault("pw-web"); const id = await nt2.saveItem({title: "a", body: "1"});
        await nt2.enableSync(api); return id; }""",
        proxy.url,
    )
    # WHEN it pushes an edit (the only write since its watermark) and the server hides it
    serve(proxy, lambda i: None if i["id"] == item else i)
    summary = page.evaluate(
        "async (id) => { await nt2.saveItem({id, title: 'a', body: '2'}); return nt2.syncNow(); }",
        item,
    )
    proxy.lie = None
    # THEN the spot check names it, in the CLI's words
    assert (
        f"The server accepted 1 change(s) from this device but never returned them ({item}): it may have dropped "
        "them; they are still here. If this repeats, do not trust this server with your changes."
    ) in summary["notices"]
    page.close()


def test_a_push_conflict_answered_with_an_older_item_than_attested_is_refused(
    lied_to: dict[str, Any], proxy: LyingProxy
) -> None:
    # GIVEN the browser joined; the CLI edits alpha (revision 2, attested) and the server
    # withholds that edit from the browser, but not the CLI's manifest
    page, ids, a = lied_to["page"], lied_to["ids"], lied_to["a"]
    alpha = ids["alpha"]
    old = lied_to["cli"].vault.get_items([alpha])[alpha].ciphertext
    page.evaluate("async (kit) => nt2.joinFromKit(kit, 'pw-one')", lied_to["kit"])
    ok(a, "item", "edit", alpha, "--body", "one, edited")
    serve(proxy, lambda i: None if i["id"] == alpha else i)
    page.evaluate("() => nt2.syncNow()")

    # WHEN the browser edits alpha too, and the server answers its push's conflict with the
    # old revision as the current one
    def lie(method: str, path: str, answer: Any) -> Any:
        if path == "/api/sync/push" and isinstance(answer, dict):
            for result in answer.get("results", []):
                if (
                    result.get("status") == "conflict"
                    and (result.get("current") or {}).get("id") == alpha
                ):
                    result["current"] = {**result["current"], "ciphertext": old, "deleted": False}
        return answer

    proxy.lie = lie
    out = evaluate_error(
        page,
        "(id) => nt2.saveItem({id, title: 'alpha', body: 'mine'}).then(() => nt2.syncNow())",
        alpha,
    )
    proxy.lie = None
    # THEN the batch is refused in the CLI's words (the sentence the CLI raises there)
    replica = lied_to["cli"].meta.replica_id
    assert out["code"] == "rollback"
    assert out["message"] == (
        f"The server served item {alpha} at revision 1, but device {replica}'s manifest attests revision 2; "
        "refusing it as a replay (the item stays as it was). Nothing was changed locally."
    )


def test_a_push_of_several_batches_is_attested_whole(
    tmp_path: Path, web_server: Any, page: Any
) -> None:
    # GIVEN 1 200 items, pushed in three batches, then one published manifest
    page.evaluate(RECORD_PUSHES)
    kit = page.evaluate(
        """async (api) => { await nt2.createVault("pw-web");
        await core.vault.addItemsBulk(Array.from({length: 1200}, (_, i) => ({title: "n" + i, body: "b" + i})));
        await nt2.enableSync(api); return (await nt2.exportKit()).text; }""",
        web_server.url,
    )
    pushes = page.evaluate("() => window.pushes.map((p) => p.items.map((i) => i.id))")
    assert [len(p) for p in pushes[:3]] == [500, 500, 200] and len(pushes) == 4
    replica = page.evaluate("() => core.vault.V.st.replicaId")
    shards = sorted({m.shard_of(i) for p in pushes[:3] for i in p})
    # every shard its items fall in, then the root
    assert pushes[3] == [m.shard_id(replica, s) for s in shards] + [m.root_id(replica)]
    # WHEN the CLI joins THEN it verifies every item against the browser's manifest
    client, notices = cli_join(tmp_path / "b.sqlite3", json.loads(kit), "pw-web")
    assert notices == [] and m.unverified(client) == 0 and client.vault.count_live() == 1200
    client.close()


def test_a_forked_root_of_another_device_is_named_three_ways(
    lied_to: dict[str, Any], proxy: LyingProxy
) -> None:
    # GIVEN the browser joined (its root 1) and edited (its root 2), and the CLI synced that
    # (its root 2, which saw the browser's root 2)
    page, ids, cli = lied_to["page"], lied_to["ids"], lied_to["cli"]
    page.evaluate("async (kit) => nt2.joinFromKit(kit, 'pw-one')", lied_to["kit"])
    page.evaluate(
        "async (id) => { await nt2.saveItem({id, title: 'beta', body: 'web'}); return nt2.syncNow(); }",
        ids["beta"],
    )
    assert cli_sync(cli) == []
    me, other = page.evaluate("() => core.vault.V.st.replicaId"), cli.meta.replica_id
    key, salt, rid = cli.require_keys().data_key, cli.salt, m.root_id(other)

    # WHEN the server serves, as the CLI's root 2, one a forked device wrote: another chain,
    # and a view that saw another version of the browser's root 1 and never its root 2
    def fork(item: dict[str, Any]) -> dict[str, Any]:
        if item["id"] != rid:
            return item
        body = m.open_manifest(key, salt, rid, item["ciphertext"])
        body.update(prev="00" * 32, seen={me: [1, "ab" * 32]})
        return {**item, "ciphertext": m.seal(key, salt, rid, body)}

    serve(proxy, fork)
    notices = page.evaluate("() => nt2.syncNow()")["notices"]
    proxy.lie = None
    # THEN the browser names the fork each way, in the CLI's words
    advice = (
        "The server is withholding or replaying changes; compare `nt2sync vault fingerprint` on your devices "
        "and do not trust this server until they agree."
    )
    head = f"Your devices were shown different versions of the vault (a fork): device {other}'s manifest"
    assert f"{head} number 2 does not follow 1. {advice}" in notices
    assert f"{head} saw this device's manifest 1 in another version. {advice}" in notices
    hid = [
        n
        for n in notices
        if n.startswith(f"The server hid this device's changes from device {other}")
    ]
    assert hid and "passed this device's manifest 2 without receiving it (it saw 1)" in hid[0]
