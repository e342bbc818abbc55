"""Key epochs (docs/CRYPTO.md, "Re-keying"): the verifier seals data key ‖ epoch, items and
deletions bind `epoch:<E>` in their associated data from epoch 1 on, attachments have
per-file keys. The vectors here are the ones CRYPTO.md gives for other clients."""

from __future__ import annotations

import pytest

from chalicelib.shared import crypto
from chalicelib.shared.encoding import b64url_decode, b64url_encode
from tests.unit.test_crypto import ITEM, ITEM_CT, PASSWORD, SALT, VERIFIER

NEW_KEY = bytes(range(64, 96))
FILE_KEY = bytes(range(96, 128))
VERIFIER_E3 = (  # KEK of the §4 vector, salt 00..0f, data key 64..95, epoch 3, nonce 24×00
    "AQAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAPN0pIa4RV4QPPVrKvbUxp3cwmxZ_SOGgRYvBww6ZiF8IYgVpKcA9O9lNjV2"
    "bd8xicCFhqI"
)
ITEM_CT_E3 = (  # data key 64..95, id item-1, epoch 3, nonce 24×07, ITEM
    "AQcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHB0wEqIH-hXeh4VxW450DVZ3NmNUfO7W-_GnWEcQ7WUdZ-nEbvsQWG9LF4-Bb"
    "HqYnv2FMdZs38J-7KlIdp_3N3V8bJXijy565JK-WCdHo0Sm3hjGf89KLNbM-jk3XfCUQv9JrTWtOSAWRtqOabaiIWXja"
    "VQeNMDnLYVmDxcpZzlcaUQCg1nJG2HDICSVJObXPnaWFHAC5mf_N-1zwq8ToWsU"
)
DELETION = {"revision": 4, "updatedAt": 1_700_000_000_000, "replicaId": "r-0001"}
DELETION_CT_E3 = (  # data key 64..95, id item-1, epoch 3, nonce 24×09
    "AQkJCQkJCQkJCQkJCQkJCQkJCQkJCQkJCVu1b8SffzUCpao0387M931a4941UluB_E97xx-N3pEjFU9fKb6gOMhUotzk"
    "7AQUDBdu8Vq0pM1cZpWeDzrVKuWMWytcDiCirOSYSsYx9lZYzc43Com4iy-jZFZ-coq8InAp"
)
ATTACHMENT_E = (
    "AQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBaabKGtlYC-zlJc68JvmzF_eCG4t7oY"  # "hello", att-1, 24×05
)


@pytest.fixture(scope="module")
def kek() -> bytes:
    return crypto.derive_kek(PASSWORD, SALT, 100_000)


def test_verifier_vector_seals_the_key_and_its_epoch(kek):
    # GIVEN the new data key at epoch 3 WHEN sealed with the fixed nonce THEN the vector
    assert crypto.seal_data_key(kek, SALT, NEW_KEY, epoch=3, nonce=bytes(24)) == VERIFIER_E3
    assert crypto.open_verifier_epoch(kek, SALT, VERIFIER_E3) == (NEW_KEY, 3)
    assert crypto.open_verifier(kek, SALT, VERIFIER_E3) == NEW_KEY


def test_an_epoch_0_verifier_is_exactly_todays(kek):
    assert crypto.seal_data_key(kek, SALT, bytes(range(32, 64)), nonce=bytes(24)) == VERIFIER
    assert crypto.open_verifier_epoch(kek, SALT, VERIFIER) == (bytes(range(32, 64)), 0)


@pytest.mark.parametrize(
    "inner",
    [NEW_KEY + bytes(4), NEW_KEY + b"\x01", NEW_KEY[:31], NEW_KEY + bytes([0, 0, 0, 1, 0])],
    ids=["epoch-0-in-long-form", "33-bytes", "31-bytes", "37-bytes"],
)
def test_a_verifier_of_any_other_shape_is_refused(kek, inner):
    # GIVEN a correctly sealed verifier whose plaintext is not 32 B nor key ‖ epoch ≥ 1
    key = crypto.hkdf(kek, crypto.VERIFIER_KEY_INFO)
    envelope = crypto._seal(key, inner, crypto._aad("verifier", SALT, "data-key"))
    # THEN it is refused (no epoch 0 in the long form, no other lengths)
    with pytest.raises(crypto.VerifierMismatch):
        crypto.open_verifier_epoch(kek, SALT, b64url_encode(envelope))


def test_the_item_associated_data_gains_the_epoch_line():
    assert crypto.item_aad(SALT, "item-1", 3) == (
        b"nt2-sync/v1/item\n000102030405060708090a0b0c0d0e0f\nitem-1\n1\nepoch:3"
    )
    assert crypto.item_aad(SALT, "item-1", 0) == crypto.item_aad(SALT, "item-1")
    assert crypto.deletion_aad(SALT, "item-1", 3).endswith(b"\n1\nepoch:3")
    with pytest.raises(ValueError, match="epoch"):
        crypto.item_aad(SALT, "item-1", -1)


def test_item_vector_at_epoch_3_opens_only_at_epoch_3():
    sealed = crypto.encrypt_item(NEW_KEY, SALT, "item-1", ITEM, epoch=3, nonce=bytes([7]) * 24)
    assert sealed == ITEM_CT_E3
    assert crypto.decrypt_item(NEW_KEY, SALT, "item-1", ITEM_CT_E3, epoch=3)["body"] == "b"
    for epoch in (0, 2, 4):  # another epoch's associated data: refused
        with pytest.raises(crypto.TamperedCiphertext):
            crypto.decrypt_item(NEW_KEY, SALT, "item-1", ITEM_CT_E3, epoch=epoch)
    # and an epoch-0 item (today's vector) does not pass as an epoch-1 one
    with pytest.raises(crypto.TamperedCiphertext):
        crypto.decrypt_item(bytes(range(32, 64)), SALT, "item-1", ITEM_CT, epoch=1)


def test_deletion_vector_at_epoch_3():
    sealed = crypto.seal_deletion(NEW_KEY, SALT, "item-1", DELETION, epoch=3, nonce=bytes([9]) * 24)
    assert sealed == DELETION_CT_E3
    assert crypto.open_deletion(NEW_KEY, SALT, "item-1", sealed, epoch=3)["revision"] == 4
    with pytest.raises(crypto.TamperedCiphertext):
        crypto.open_deletion(NEW_KEY, SALT, "item-1", sealed)


def test_per_file_attachment_key_vector_and_refusals():
    blob = crypto.seal_attachment(FILE_KEY, SALT, "att-1", b"hello", nonce=bytes([5]) * 24)
    assert b64url_encode(blob) == ATTACHMENT_E
    assert crypto.open_attachment(FILE_KEY, SALT, "att-1", b64url_decode(ATTACHMENT_E)) == b"hello"
    with pytest.raises(crypto.TamperedCiphertext):
        crypto.open_attachment(NEW_KEY, SALT, "att-1", blob)  # another key
    with pytest.raises(crypto.TamperedCiphertext):
        crypto.open_attachment(FILE_KEY, SALT, "att-2", blob)  # another id
    with pytest.raises(crypto.TamperedCiphertext):
        crypto.open_attachment(FILE_KEY[:16], SALT, "att-1", blob)  # not a 32-byte key
    # the same envelope as a legacy attachment, only the key differs
    legacy_key = crypto.hkdf(NEW_KEY, crypto.ATTACHMENT_KEY_INFO)
    assert (
        crypto.decrypt_attachment(
            NEW_KEY, SALT, "att-1", crypto.seal_attachment(legacy_key, SALT, "att-1", b"x")
        )
        == b"x"
    )  # noqa: E501
