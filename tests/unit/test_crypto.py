"""Crypto vectors and refusals (docs/CRYPTO.md)."""

from __future__ import annotations

import hashlib
import hmac

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from chalicelib.shared import crypto
from chalicelib.shared.encoding import b64url_decode, b64url_encode

PASSWORD = "correct horse battery staple"
SALT = bytes(range(16))
KEK_HEX = "49d49c25f597846209f0d92e7770ab64e1c75e94b4ce6c509265ee67175d2a1e"
SEED_HEX = "77add9da411ea22f863841d62d394a0f47d06e509171ebaad15d4dd31a154711"
KEY_DID = "did:key:z6MkfQLu3jii3f77NhUkT3pxCZkqNtcA5fLHxMkCNvQZJ39T"
DATA_KEY = bytes(range(32, 64))
VERIFIER = (
    "AQAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAJMUxObYJT5wXJULSpa0pv28ogw5nUPm4XZPZ2xaBkEcXXERMXU0A7CDZoea"
    "Yjx90g"
)
ITEM = {
    "title": "t",
    "body": "b",
    "username": "u",
    "url": "https://x",
    "updatedAt": 1700000000000,
    "revision": 1,
    "replicaId": "replica-a",
    "attachments": [],
}
ITEM_CT = (
    "AQcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHB6qZIYv9CFKc5HWiNrq1uLB4gvjz-hMpR-X8rX8ENvjosKp0mTw_5QNO4GLW"
    "IWlAG04CSFpckUvQoE4wy_FiWS257f4xq1hrFMgyJsjOYBGzNe-_dh4Yo7Q4_cnQQlR39Lh5WWZRnYXWC7QixL7nAscZ"
    "t8PLB8IVEcRaH-wmuO1atob-IR4vNcy7QPux-WB1JfqhpLehHz4vx2DRUf7_Cus"
)
ITEM_CT_UNPADDED = (  # made before padding: still opens
    "AQcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHB6qZIYv9CFKc5HWiNrq1uLB4gvjz-hMpR-X8rX8ENvjosKp0mTw_5QNO4GLW"
    "IWlAG04CSFpckUvQoE4wy_FiWS257f4xq1hrFMgyJsjOYBGzNe-_dh4Yo7Q4_cnQQlR39Lh5WWZRnYXWC7QixL7nAscZ"
    "t8PLB8IVEcRaH-wmuO1atob-IR4vNcy7QPux-WB1Ekm470ld8E5BYLsz_U2O9Q"
)


@pytest.fixture(scope="module")
def kek() -> bytes:
    return crypto.derive_kek(PASSWORD, SALT, 100_000)


def _hkdf_reference(ikm: bytes, info: bytes) -> bytes:
    # RFC 5869 by hand, salt absent = 32 zero bytes
    prk = hmac.new(b"\0" * 32, ikm, hashlib.sha256).digest()
    return hmac.new(prk, info + b"\x01", hashlib.sha256).digest()


def test_protocol_kdf_vector(kek):
    # GIVEN the PROTOCOL §4 vector THEN our KEK is the same bytes
    assert kek.hex() == KEK_HEX


def test_key_did_seed_is_hkdf_of_kek(kek):
    seed, did = crypto.key_did_from_kek(kek)
    assert seed == _hkdf_reference(kek, b"nt2-sync/v1/key-did-seed")
    assert seed.hex() == SEED_HEX
    assert did == KEY_DID


def test_protocol_did_vector():
    assert crypto.key_did_of_seed(bytes(range(32))) == (
        "did:key:z6MkehRgf7yJbgaGfYsdoAsKdBPE3dj2CYhowQdcjqSJgvVd"
    )


def test_verifier_vector_and_round_trip(kek):
    assert crypto.seal_data_key(kek, SALT, DATA_KEY, nonce=bytes(24)) == VERIFIER
    assert crypto.open_verifier(kek, SALT, VERIFIER) == DATA_KEY
    assert len(crypto.seal_data_key(kek, SALT, crypto.new_data_key())) <= 1024


def test_wrong_password_or_salt_does_not_open_verifier(kek):
    other = crypto.derive_kek("wrong", SALT, 100_000)
    with pytest.raises(crypto.VerifierMismatch):
        crypto.open_verifier(other, SALT, VERIFIER)
    with pytest.raises(crypto.VerifierMismatch):  # salt is bound in the AAD too
        crypto.open_verifier(kek, bytes(16), VERIFIER)
    with pytest.raises(crypto.VerifierMismatch):
        crypto.open_verifier(kek, SALT, "not base64!")


def test_item_vector():
    assert crypto.encrypt_item(DATA_KEY, SALT, "item-1", ITEM, nonce=bytes([7]) * 24) == ITEM_CT
    assert crypto.decrypt_item(DATA_KEY, SALT, "item-1", ITEM_CT) == {"v": 1, **ITEM}
    assert crypto.decrypt_item(DATA_KEY, SALT, "item-1", ITEM_CT_UNPADDED) == {"v": 1, **ITEM}


def test_item_plaintexts_are_padded_to_padme_lengths():
    # GIVEN two items whose bodies differ in length (issue 14 row 12: 8 vs 16 characters)
    def size(body: str) -> int:
        envelope = crypto.encrypt_item(DATA_KEY, SALT, "i", {**ITEM, "body": body})
        return len(b64url_decode(envelope))

    # THEN the server sees one padded size for both, and the padding stays within 12 %
    assert size("b" * 8) == size("b" * 16)
    assert [crypto.padme(n) for n in (128, 129, 159, 171, 1000, 65537)] == [
        128,
        144,
        160,
        176,
        1024,
        67584,
    ]
    assert max((crypto.padme(n) - n) / n for n in range(128, 70_000)) < 0.12


@pytest.mark.parametrize(
    ("key", "salt", "item_id"),
    [
        (DATA_KEY, SALT, "item-2"),  # swapped onto another item
        (DATA_KEY, bytes(16), "item-1"),  # moved to another vault (other salt)
        (bytes(32), SALT, "item-1"),  # another data key
    ],
)
def test_item_aad_binds_salt_and_id(key, salt, item_id):
    with pytest.raises(crypto.TamperedCiphertext):
        crypto.decrypt_item(key, salt, item_id, ITEM_CT)


def test_item_format_version_is_bound():
    raw = bytearray(b64url_decode(ITEM_CT))
    raw[0] = 2
    with pytest.raises(crypto.UnsupportedFormat):
        crypto.decrypt_item(DATA_KEY, SALT, "item-1", b64url_encode(bytes(raw)))


@settings(max_examples=60, deadline=None)
@given(position=st.integers(min_value=1), bit=st.integers(min_value=0, max_value=7))
def test_any_flipped_bit_is_refused(position, bit):
    raw = bytearray(b64url_decode(ITEM_CT))
    raw[position % (len(raw) - 1) + 1] ^= 1 << bit
    with pytest.raises(crypto.TamperedCiphertext):
        crypto.decrypt_item(DATA_KEY, SALT, "item-1", b64url_encode(bytes(raw)))


@pytest.mark.parametrize(
    "kdf",
    [
        {"algorithm": "PBKDF2-SHA256", "iterations": 99_999},
        {"algorithm": "PBKDF2-SHA256", "iterations": 1},
        {"algorithm": "PBKDF2-SHA1", "iterations": 100_000},
        {"algorithm": "argon2id", "iterations": 3},
        {"algorithm": "PBKDF2-SHA256", "iterations": "100000"},
        {"algorithm": "PBKDF2-SHA256", "iterations": True},
        {"algorithm": "PBKDF2-SHA256"},
        None,
    ],
)
def test_weak_kdf_is_refused(kdf):
    with pytest.raises(crypto.WeakKdf):
        crypto.check_kdf(kdf)


def test_derive_kek_refuses_low_iterations():
    with pytest.raises(crypto.WeakKdf):
        crypto.derive_kek(PASSWORD, SALT, 1000)


def test_attachment_round_trip_and_binding():
    blob = crypto.encrypt_attachment(DATA_KEY, SALT, "att-1", b"hello file")
    assert crypto.decrypt_attachment(DATA_KEY, SALT, "att-1", blob) == b"hello file"
    with pytest.raises(crypto.TamperedCiphertext):
        crypto.decrypt_attachment(DATA_KEY, SALT, "att-2", blob)


def test_malformed_plaintext_shape_is_refused():
    with pytest.raises(crypto.UnsupportedFormat):
        crypto.validate_item_plaintext({"v": 1, "title": 3})


def test_kit_mac_vector_and_what_it_covers() -> None:
    # GIVEN the KEK vector's seed and a kit (docs/CRYPTO.md, "Setup kit")
    kek = crypto.derive_kek("correct horse battery staple", bytes(range(16)), 100_000)
    seed, did = crypto.key_did_from_kek(kek)
    kit = {
        "server": "https://sync.example",
        "keyDid": did,
        "kdf": {"algorithm": "PBKDF2-SHA256", "iterations": 100_000},
        "saltHex": bytes(range(16)).hex(),
    }
    # THEN its MAC is the documented one, and any changed field no longer verifies
    assert crypto.kit_mac(seed, kit) == "IebtulrsB7DSIq3GNC2ueS-08GjvFZEktnI9ncb_9fI"
    signed = {**kit, "mac": crypto.kit_mac(seed, kit)}
    assert crypto.kit_mac_ok(seed, signed)
    for field, value in [("server", "https://relay.example"), ("saltHex", "00" * 16)]:
        assert not crypto.kit_mac_ok(seed, {**signed, field: value})
    assert not crypto.kit_mac_ok(crypto.key_did_seed(bytes(32)), signed)


def test_a_deletion_record_opens_only_as_a_deletion_of_its_item():
    # GIVEN a sealed deletion record of item-1
    record = {"revision": 2, "updatedAt": 1700000000001, "replicaId": "replica-a"}
    sealed = crypto.seal_deletion(DATA_KEY, SALT, "item-1", record)
    # THEN it opens as that deletion
    assert crypto.open_deletion(DATA_KEY, SALT, "item-1", sealed) == {
        "v": 1,
        "deleted": True,
        **record,
    }
    # AND not for another item, nor with another key; a live item is not a deletion
    with pytest.raises(crypto.CryptoError):
        crypto.open_deletion(DATA_KEY, SALT, "item-2", sealed)
    with pytest.raises(crypto.CryptoError):
        crypto.open_deletion(bytes(32), SALT, "item-1", sealed)
    with pytest.raises(crypto.CryptoError):
        crypto.open_deletion(DATA_KEY, SALT, "item-1", ITEM_CT)
    with pytest.raises(crypto.CryptoError):
        crypto.decrypt_item(DATA_KEY, SALT, "item-1", sealed)


def test_attachments_are_padded_and_old_ones_still_open():
    # GIVEN two files whose sizes differ (issue 14 row 12: exact attachment sizes)
    small = crypto.encrypt_attachment(DATA_KEY, SALT, "att-1", b"x" * 1000)
    larger = crypto.encrypt_attachment(DATA_KEY, SALT, "att-1", b"x" * 1010)
    # THEN the server sees one size class, and each opens to exactly its bytes
    assert len(small) == len(larger)
    assert crypto.decrypt_attachment(DATA_KEY, SALT, "att-1", small) == b"x" * 1000
    for data in (b"", b"\x00\x00", b"ends in 80\x80", b"\x80\x00"):
        blob = crypto.encrypt_attachment(DATA_KEY, SALT, "att-2", data)
        assert crypto.decrypt_attachment(DATA_KEY, SALT, "att-2", blob) == data
    # AND an attachment sealed before padding (its own associated data) still opens
    key = crypto.hkdf(DATA_KEY, crypto.ATTACHMENT_KEY_INFO)
    legacy = crypto._seal(key, b"old file", crypto.attachment_aad(SALT, "att-3"))
    assert crypto.decrypt_attachment(DATA_KEY, SALT, "att-3", legacy) == b"old file"
