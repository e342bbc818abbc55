"""The manifest format (docs/CRYPTO.md, "Authenticated vault state"): ids, associated data,
the envelope, and the refusal of anything that is not a manifest of this vault."""

from __future__ import annotations

import pytest

from chalicelib.shared import crypto
from nt2sync import manifests as m

KEY = bytes(range(32, 64))
SALT = bytes(range(16))
REPLICA = "r-0001020304050607"
NONCE = bytes([7]) * 24
SHARD = {
    "v": 1,
    "kind": "shard",
    "replicaId": REPLICA,
    "shard": "59",
    "counter": 1,
    "entries": [["item-1", 1, 1, 0, "00" * 32]],
}
SHARD_CT = (
    "AQcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHB6qZI5D8B0WR-zL2c-W154VR3LP05lVqPoT8pilNeae84uos1mxasQ1W8iC"
    "DYTUZSB8fGUhAgwmF5hdzkq48Sye48ex18hw3Qdo4NIzcfAP2dbvuMktM0vAq98jXQlR39Lh5WWZRnYXKGeMN9bD_S8YD"
    "p5GCH55SCJQSH7V3r_pEu4L4Ym1pYtS1EKCj82E5NWV4dbAG6Y6VmE2s5F-maYZENDaKfjxbSlK9WxI9JZgm0UpYvKD8h"
    "fkm4va2MSYOTw"
)
ROOT_CT = (
    "AQcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHB6qZI5D8B0WR-zL2c-W16YJLyvirtwU_Cqv8439YZu_74vw_2HFU80QErnnQ"
    "MExNWhUNW1VAgwmE5hVzka44SyK49-xy4AAlAo9tap7WN07qZ_i2YwkYkeIgvNrSS0Z95u5-XmQHntbKGaJpyq_oGM0I8"
    "YSAW94JWoNEDKoxuaZQ5dL_YBc-eYv0Ur3x8mFqMTFxIrlX7t2SmEWjpBbme9wHO36KMjxUQlyzDgVrets297OEIjZKVKy"
    "G1k1v_31zyXHf-EgEbzk"
)
ROOT_HASH = "cf83b4fcef78a546ea7f9eaef1a17ec7f671f8193034111116fb29e5d90550a3"


def root() -> dict:
    return {
        "v": 1,
        "kind": "root",
        "replicaId": REPLICA,
        "counter": 1,
        "watermark": 1,
        "prev": "",
        "shards": {"59": m.digest(SHARD_CT)},
        "seen": {},
    }


def test_ids_and_shards():
    assert m.root_id(REPLICA) == "nt2.manifest:r-0001020304050607:root"
    assert m.shard_of("item-1") == "59"  # sha256("item-1") starts 59…
    assert m.parse_id(m.shard_id(REPLICA, "59")) == (REPLICA, "59")
    assert m.parse_id("nt2.manifest:r-1:zz") is None and m.parse_id("item-1") is None
    assert m.is_reserved("nt2.manifest:x:root") and not m.is_reserved("0b9e-uuid")


def test_the_format_vector():
    assert m.digest(SHARD_CT) == "f772f3c00c9b358be278f333e213dd9d29dc339ec00b10b4f9d9e7f7688beba2"
    assert m.seal(KEY, SALT, m.shard_id(REPLICA, "59"), SHARD, nonce=NONCE) == SHARD_CT
    assert m.seal(KEY, SALT, m.root_id(REPLICA), root(), nonce=NONCE) == ROOT_CT
    assert m.digest(ROOT_CT) == ROOT_HASH
    assert m.open_manifest(KEY, SALT, m.root_id(REPLICA), ROOT_CT) == root()
    assert m.open_manifest(KEY, SALT, m.shard_id(REPLICA, "59"), SHARD_CT) == SHARD


def test_associated_data_binds_salt_id_version_and_an_epoch_line():
    assert m.manifest_aad(SALT, "nt2.manifest:r-1:root") == (
        b"nt2-sync/v1/manifest\n000102030405060708090a0b0c0d0e0f\nnt2.manifest:r-1:root\n1"
    )
    assert m.manifest_aad(SALT, "x", epoch=2).endswith(b"\n1\nepoch:2")
    sealed = m.seal(KEY, SALT, m.root_id(REPLICA), root(), epoch=2)
    assert m.open_manifest(KEY, SALT, m.root_id(REPLICA), sealed, epoch=2)["counter"] == 1
    with pytest.raises(crypto.TamperedCiphertext):
        m.open_manifest(KEY, SALT, m.root_id(REPLICA), sealed)  # another epoch


@pytest.mark.parametrize(
    ("key", "salt", "object_id"),
    [
        (bytes(32), SALT, m.root_id(REPLICA)),  # another vault's key
        (KEY, bytes(16), m.root_id(REPLICA)),  # another vault's salt
        (KEY, SALT, m.root_id("r-other")),  # moved to another device's id
        (KEY, SALT, m.shard_id(REPLICA, "59")),  # a root passed off as a shard
    ],
)
def test_a_manifest_opens_only_where_it_was_sealed(key, salt, object_id):
    with pytest.raises(crypto.TamperedCiphertext):
        m.open_manifest(key, salt, object_id, ROOT_CT)


def test_an_item_ciphertext_is_not_a_manifest():
    item = crypto.encrypt_item(
        KEY,
        SALT,
        m.root_id(REPLICA),
        {
            "title": "t",
            "body": "",
            "username": "",
            "url": "",
            "updatedAt": 1,
            "revision": 1,
            "replicaId": REPLICA,
            "attachments": [],
        },
    )
    with pytest.raises(crypto.TamperedCiphertext):
        m.open_manifest(KEY, SALT, m.root_id(REPLICA), item)


@pytest.mark.parametrize(
    "change",
    [
        {"replicaId": "r-other"},  # claims another device than its id
        {"counter": 0},
        {"watermark": -1},
        {"prev": "xyz"},
        {"shards": {"5": "00" * 32}},
        {"seen": {"r-b": [1]}},
        {"kind": "shard"},
    ],
)
def test_a_malformed_root_is_refused(change):
    sealed = m.seal(KEY, SALT, m.root_id(REPLICA), {**root(), **change})
    with pytest.raises(crypto.UnsupportedFormat):
        m.open_manifest(KEY, SALT, m.root_id(REPLICA), sealed)


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
def test_a_malformed_shard_is_refused(entry):
    sid = m.shard_id(REPLICA, "59")
    sealed = m.seal(KEY, SALT, sid, {**SHARD, "entries": [entry]})
    with pytest.raises(crypto.UnsupportedFormat):
        m.open_manifest(KEY, SALT, sid, sealed)
