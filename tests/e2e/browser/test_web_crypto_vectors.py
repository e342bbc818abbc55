# ruff: noqa: E501 - the JavaScript evaluated in the page is kept as the page runs it
"""Every vector of docs/CRYPTO.md (and PROTOCOL §2–§4) computed by the web engine in the real
Chromium, on the app's own origin under its CSP, and the refusals of tampered data."""

from __future__ import annotations

import json
from typing import Any

import pytest

from chalicelib.shared import crypto, merge
from chalicelib.shared.encoding import b64url_decode, b64url_encode
from chalicelib.shared.messages import session_message, sign
from nt2sync.backup import _payload_name
from tests.e2e.browser.web_harness import evaluate_error, open_harness, web_context
from tests.unit.test_crypto import (
    DATA_KEY,
    ITEM,
    ITEM_CT,
    ITEM_CT_UNPADDED,
    KEK_HEX,
    KEY_DID,
    PASSWORD,
    SALT,
    SEED_HEX,
    VERIFIER,
)

__all__ = ["web_context"]
KIT = {
    "server": "https://sync.example",
    "keyDid": KEY_DID,
    "kdf": {"algorithm": "PBKDF2-SHA256", "iterations": 100_000},
    "saltHex": SALT.hex(),
}
KIT_MAC = "IebtulrsB7DSIq3GNC2ueS-08GjvFZEktnI9ncb_9fI"


@pytest.fixture(scope="module")
def page(web_context: Any, web_server: Any) -> Any:
    return open_harness(web_context, web_server.web_url())


def js(page: Any, body: str, arg: Any = None) -> Any:
    """Evaluate `async (arg) => { body }` with the harness's helpers in scope."""
    prelude = (
        "const {bytes, crypto: c, merge, pages, backup} = core;"
        "const hex = bytes.fromHex, b64 = bytes.b64url;"
        "const keysOf = (k, s, e = 0) => c.vaultKeys(hex(k), hex(s), e);"
    )
    return page.evaluate(f"async (arg) => {{ {prelude} {body} }}", arg)


def test_kek_seed_and_key_did_vectors(page: Any) -> None:
    # GIVEN the documented password and salt WHEN the page derives the key hierarchy
    out = js(
        page,
        """const kek = await c.deriveKek(arg.pw, hex(arg.salt), 100000);
        const {seed, keyDid} = await c.keyDidFromKek(kek);
        return {kek: bytes.hex(kek), seed: bytes.hex(seed), keyDid};""",
        {"pw": PASSWORD, "salt": SALT.hex()},
    )
    # THEN every value is the documented one
    assert out == {"kek": KEK_HEX, "seed": SEED_HEX, "keyDid": KEY_DID}


def test_protocol_did_and_session_signature_vectors(page: Any) -> None:
    # GIVEN PROTOCOL §2's seed 00..1f and §3's audience, replica and nonce
    seed = bytes(range(32))
    nonce = b64url_encode(bytes([7]) * 32)
    out = js(
        page,
        """const seed = hex(arg.seed);
        const msg = bytes.utf8(["nt2-sync/v1/session", "https://sync.example.test", arg.did, "replica-a", arg.nonce].join("\\n"));
        return {pub: bytes.hex(await c.publicKeyOfSeed(seed)), did: await c.keyDidOfSeed(seed), sig: b64(await c.sign(seed, msg))};""",
        {
            "seed": seed.hex(),
            "nonce": nonce,
            "did": "did:key:z6MkehRgf7yJbgaGfYsdoAsKdBPE3dj2CYhowQdcjqSJgvVd",
        },
    )
    assert out["pub"] == "03a107bff3ce10be1d70dd18e74bc09967e4d6309ba50d5f1ddc8664125531b8"
    assert out["did"] == "did:key:z6MkehRgf7yJbgaGfYsdoAsKdBPE3dj2CYhowQdcjqSJgvVd"
    expected = sign(
        seed, session_message("https://sync.example.test", out["did"], "replica-a", nonce)
    )
    assert out["sig"] == b64url_encode(expected)
    assert out["sig"] == (
        "3tzYda3GN98nE98ufCxIuASH44lOBJHnXJnT-C4tP245OjWHV80aClyJU_-dSzhdRvUpB9bTkbcyy9tCkJhYCw"
    )


def test_verifier_vector_and_epochs(page: Any) -> None:
    kek = bytes.fromhex(KEK_HEX)
    out = js(
        page,
        """const kek = hex(arg.kek), salt = hex(arg.salt), dk = hex(arg.dk);
        const v0 = await c.sealDataKey(kek, salt, dk, {nonce: new Uint8Array(24)});
        const o0 = await c.openVerifier(kek, salt, arg.verifier);
        const v3 = await c.sealDataKey(kek, salt, dk, {epoch: 3});
        const o3 = await c.openVerifier(kek, salt, v3);
        return {v0, o0: bytes.hex(o0.dataKey), e0: o0.epoch, o3: bytes.hex(o3.dataKey), e3: o3.epoch, v3};""",
        {"kek": kek.hex(), "salt": SALT.hex(), "dk": DATA_KEY.hex(), "verifier": VERIFIER},
    )
    assert out["v0"] == VERIFIER
    assert (out["o0"], out["e0"]) == (DATA_KEY.hex(), 0)
    assert (out["o3"], out["e3"]) == (DATA_KEY.hex(), 3)
    # an epoch-3 verifier holds data key ‖ 00000003 under the same associated data
    inner = crypto._open(
        crypto.hkdf(kek, crypto.VERIFIER_KEY_INFO),
        b64url_decode(out["v3"]),
        crypto._aad("verifier", SALT, "data-key"),
    )
    assert inner == DATA_KEY + (3).to_bytes(4, "big")
    # the CLI's own opener still reads an epoch-0 verifier made in the page
    assert crypto.open_verifier(kek, SALT, out["v0"]) == DATA_KEY


def test_item_vector_padding_and_deletion(page: Any) -> None:
    record = {"revision": 4, "updatedAt": 1_700_000_000_123, "replicaId": "r-1"}
    out = js(
        page,
        """const keys = await keysOf(arg.dk, arg.salt);
        const ct = c.encryptItem(keys, "item-1", arg.item, new Uint8Array(24).fill(7));
        const opened = c.decryptItem(keys, "item-1", arg.ct);
        const old = c.decryptItem(keys, "item-1", arg.unpadded);
        const del = c.sealDeletion(keys, "item-1", arg.record, new Uint8Array(24).fill(9));
        const lens = [];
        for (const n of [0, 1, 100, 127, 128, 129, 200, 1000, 1200, 5000, 65537]) lens.push(c.padme(Math.max(n, 128)));
        return {ct, opened, old, del, lens};""",
        {
            "dk": DATA_KEY.hex(),
            "salt": SALT.hex(),
            "item": ITEM,
            "ct": ITEM_CT,
            "unpadded": ITEM_CT_UNPADDED,
            "record": record,
        },
    )
    assert out["ct"] == ITEM_CT
    assert out["opened"] == {"v": 1, **ITEM} == out["old"]
    assert out["del"] == crypto.seal_deletion(
        DATA_KEY, SALT, "item-1", record, nonce=bytes([9]) * 24
    )
    sizes = [0, 1, 100, 127, 128, 129, 200, 1000, 1200, 5000, 65537]
    assert out["lens"] == [crypto.padme(max(n, 128)) for n in sizes]


def test_non_ascii_item_is_sealed_like_the_cli(page: Any) -> None:
    # GIVEN text with accents, an emoji, controls and quotes (Python escapes all of them)
    item = {**ITEM, "title": 'wörld ✓ 😀 "q" \\ \n\t\x01\x7f', "body": "ü" * 300}
    out = js(
        page,
        """const keys = await keysOf(arg.dk, arg.salt);
        return {ct: c.encryptItem(keys, "i:2", arg.item, new Uint8Array(24).fill(1)), canon: bytes.canonicalJson(arg.item), py: bytes.pythonJson(arg.item)};""",
        {"dk": DATA_KEY.hex(), "salt": SALT.hex(), "item": item},
    )
    assert out["canon"] == json.dumps(item, sort_keys=True, separators=(",", ":"))
    assert out["py"] == json.dumps(item)
    assert out["ct"] == crypto.encrypt_item(DATA_KEY, SALT, "i:2", item, nonce=bytes([1]) * 24)


def test_epoch_items_bind_the_epoch_line(page: Any) -> None:
    # GIVEN an item sealed at epoch 2 in the page
    out = js(
        page,
        """const k2 = await keysOf(arg.dk, arg.salt, 2), k0 = await keysOf(arg.dk, arg.salt, 0);
        const ct = c.encryptItem(k2, "item-1", arg.item);
        let refused = null;
        try { c.decryptItem(k0, "item-1", ct); } catch (e) { refused = e.code; }
        return {ct, opened: c.decryptItem(k2, "item-1", ct), refused};""",
        {"dk": DATA_KEY.hex(), "salt": SALT.hex(), "item": ITEM},
    )
    # THEN it opens at epoch 2 only, under AAD lines ... / 1 / epoch:2
    assert out["refused"] == "tampered"
    assert out["opened"]["title"] == "t"
    aad = crypto.item_aad(SALT, "item-1") + b"\nepoch:2"
    key = crypto.hkdf(DATA_KEY, crypto.ITEM_KEY_INFO)
    raw = crypto._open(key, b64url_decode(out["ct"]), aad)
    assert json.loads(raw)["title"] == "t"


def test_kit_mac_and_backup_header_name(page: Any) -> None:
    doc = {
        "format": "nt2backup",
        "formatVersion": 1,
        "backupVersion": 2,
        "kdf": KIT["kdf"],
        "saltHex": SALT.hex(),
        "keyDid": KEY_DID,
        "verifier": VERIFIER,
        "createdAt": 1_700_000_000_000,
    }
    out = js(
        page,
        """const seed = hex(arg.seed);
        const mac = await c.kitMac(seed, arg.kit);
        const ok = await c.kitMacOk(seed, {...arg.kit, mac});
        const swapped = await c.kitMacOk(seed, {...arg.kit, server: "https://relay.example", mac});
        return {mac, ok, swapped, name: await backup.payloadName(arg.doc), v1: await backup.payloadName({format: "nt2backup"})};""",
        {"seed": SEED_HEX, "kit": KIT, "doc": doc},
    )
    assert out["mac"] == KIT_MAC
    assert out["ok"] is True and out["swapped"] is False
    assert out["name"] == _payload_name(doc)
    assert out["v1"] == "backup"


def test_merge_digest_and_copy_title_match_the_cli(page: Any) -> None:
    a = {**ITEM, "title": "Ä", "attachments": [{"id": "b"}, {"id": "a"}]}
    b = {**ITEM, "updatedAt": ITEM["updatedAt"], "replicaId": "replica-b", "body": "other"}
    out = js(
        page,
        """return {d: await merge.contentDigest(arg.a), r: await merge.resolveLive(arg.a, arg.b),
        t: merge.conflictedCopyTitle("x", "r-9", 1700000000000)};""",
        {"a": a, "b": b},
    )
    assert out["d"] == merge.content_digest(a)
    expected = merge.resolve_live(a, b)
    assert out["r"] == {
        "keep": expected.keep,
        "copy": expected.copy,
        "nextRevision": expected.next_revision,
    }
    assert out["t"] == merge.conflicted_copy_title("x", "r-9", 1_700_000_000_000)


@pytest.mark.parametrize(
    ("what", "call"),
    [
        (
            "flipped bit",
            'const r = bytes.fromB64url(arg.ct); r[40] ^= 1; c.decryptItem(k, "item-1", b64(r));',
        ),
        ("other id", 'c.decryptItem(k, "item-2", arg.ct);'),
        ("other salt", 'c.decryptItem(await keysOf(arg.dk, "00".repeat(16)), "item-1", arg.ct);'),
        ("other key", 'c.decryptItem(await keysOf("11".repeat(32), arg.salt), "item-1", arg.ct);'),
        ("item as deletion", 'c.openDeletion(k, "item-1", arg.ct);'),
        ("non-canonical base64", 'c.decryptItem(k, "item-1", arg.ct.slice(0, -1) + "h");'),
    ],
)
def test_tampered_ciphertext_is_refused(page: Any, what: str, call: str) -> None:
    # WHEN any part of a sealed item is changed THEN the page refuses it
    out = evaluate_error(
        page,
        "async (arg) => { const {bytes, crypto: c} = core; const hex = bytes.fromHex, b64 = bytes.b64url;"
        " const keysOf = (k, s, e = 0) => c.vaultKeys(hex(k), hex(s), e);"
        " const k = await keysOf(arg.dk, arg.salt); " + call + " }",
        {"dk": DATA_KEY.hex(), "salt": SALT.hex(), "ct": ITEM_CT},
    )
    assert out["code"] in ("tampered", "invalid_encoding"), what


def test_wrong_password_and_weak_kdf_are_refused(page: Any) -> None:
    out = js(
        page,
        """const r = {};
        try { await c.openVerifier(await c.deriveKek("wrong", hex(arg.salt), 100000), hex(arg.salt), arg.v); } catch (e) { r.wrong = e.code; }
        for (const [name, kdf] of Object.entries({low: {algorithm: "PBKDF2-SHA256", iterations: 99999},
             other: {algorithm: "scrypt", iterations: 100000}, high: {algorithm: "PBKDF2-SHA256", iterations: 10000001},
             text: {algorithm: "PBKDF2-SHA256", iterations: "100000"}})) {
          try { c.checkKdf(kdf); r[name] = "accepted"; } catch (e) { r[name] = e.code; }
        }
        return r;""",
        {"salt": SALT.hex(), "v": VERIFIER},
    )
    assert out == {
        "wrong": "verifier_mismatch",
        "low": "weak_kdf",
        "other": "weak_kdf",
        "high": "weak_kdf",
        "text": "weak_kdf",
    }


def test_hostile_pull_pages_are_refused(page: Any) -> None:
    # GIVEN pages that break nt2sync/pages.py's rules THEN each is refused as a lie
    bad = [
        {"items": [], "watermark": 4, "hasMore": False, "_since": 5},  # goes back
        {"items": [], "watermark": 5, "hasMore": True, "_since": 5},  # more without progress
        {"items": [{"id": "a", "version": 3}, {"id": "b", "version": 2}], "watermark": 9},
        {"items": [{"id": "a", "version": 2}, {"id": "a", "version": 3}], "watermark": 9},
        {"items": [{"id": "a", "version": 11}], "watermark": 10},
        {"items": [{"id": "a", "version": 2, "deleted": "no"}], "watermark": 9},
        {"items": [{"id": "a", "version": 2, "ciphertext": 5}], "watermark": 9},
        {"items": [{"version": 2}], "watermark": 9},
        {"items": [{"id": "a", "version": 2}] * 3, "watermark": 9, "_limit": 2},
        {"items": "x", "watermark": 9},
        [],
    ]
    out = js(
        page,
        """return arg.map((p) => { try { pages.checkPullPage(p, p._since ?? 1, p._limit ?? 1000); return "accepted"; }
        catch (e) { return e.code; } });""",
        bad,
    )
    assert out == ["server_lied"] * len(bad)
    assert page.errors == []
