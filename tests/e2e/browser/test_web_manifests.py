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

from nt2sync import manifests as m
from tests.e2e.browser.web_harness import open_harness, web_context
from tests.e2e.client_cli import run
from tests.e2e.conftest import free_port
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
UNATTESTED = "could not be verified against any device's manifest"
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
    return page.evaluate(f"async (arg) => {{ {prelude} {body} }}", {"key": KEY.hex(), "salt": SALT.hex(), **arg})


def ok(vault: Path, *args: str, password: str = "pw-one", **env: str) -> Any:
    result = run(vault, *args, "--json", password=password, **env)
    assert result.code == 0, result.err
    return result.json()


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
def test_a_malformed_shard_sealed_by_python_is_refused_in_the_page(page: Any, entry: list[Any]) -> None:
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
