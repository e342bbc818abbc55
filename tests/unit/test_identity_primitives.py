"""did:key, the signed messages, encodings and token hashing (no AWS)."""

from __future__ import annotations

import pytest
from nacl.signing import SigningKey

from chalicelib.identity import hash_token
from chalicelib.shared.didkey import InvalidDidKey, encode_did_key, parse_did_key
from chalicelib.shared.encoding import EncodingError, b64url_decode, b64url_encode, hex_decode
from chalicelib.shared.messages import rotate_message, session_message, sign, verify

SEED = bytes(range(32))
PUB_HEX = "03a107bff3ce10be1d70dd18e74bc09967e4d6309ba50d5f1ddc8664125531b8"
DID = "did:key:z6MkehRgf7yJbgaGfYsdoAsKdBPE3dj2CYhowQdcjqSJgvVd"


def test_protocol_vector_seed_to_did() -> None:
    pub = bytes(SigningKey(SEED).verify_key)
    assert pub.hex() == PUB_HEX
    assert encode_did_key(pub) == DID
    assert parse_did_key(DID) == pub


def test_w3c_vector_zero_seed() -> None:
    pub = bytes(SigningKey(bytes(32)).verify_key)
    assert encode_did_key(pub) == "did:key:z6MkiTBz1ymuepAQ4HEHYSF1H8quG5GLVVQR3djdX3mDooWp"


@pytest.mark.parametrize(
    "bad",
    [
        "",
        "did:key:",
        "did:key:6MkehRgf7yJbgaGfYsdoAsKdBPE3dj2CYhowQdcjqSJgvVd",  # no multibase 'z'
        "did:web:z6MkehRgf7yJbgaGfYsdoAsKdBPE3dj2CYhowQdcjqSJgvVd",
        "did:key:z6MkehRgf7yJbgaGfYsdoAsKdBPE3dj2CYhowQdcjqSJgvV",  # one char short
        "did:key:z6MkehRgf7yJbgaGfYsdoAsKdBPE3dj2CYhowQdcjqSJgvVdd",  # too long
        "did:key:zQ3shokFTS3brHcDQrn82RUDfCZESWL1ZdCEJwekUDPQiYBme",  # secp256k1
        "did:key:z6MkehRgf7yJbgaGfYsdoAsKdBPE3dj2CYhowQdcjqSJgv0d",  # '0' not base58
    ],
)
def test_parse_rejects(bad: str) -> None:
    with pytest.raises(InvalidDidKey):
        parse_did_key(bad)


def test_session_signature_vector() -> None:
    nonce = b64url_encode(b"\x07" * 32)
    assert nonce == "BwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwc"
    msg = session_message("https://sync.example.test", DID, "replica-a", nonce)
    assert msg == (
        b"nt2-sync/v1/session\nhttps://sync.example.test\n"
        + DID.encode()
        + b"\nreplica-a\n"
        + nonce.encode()
    )
    sig = sign(SEED, msg)
    assert b64url_encode(sig) == (
        "3tzYda3GN98nE98ufCxIuASH44lOBJHnXJnT-C4tP245OjWHV80aClyJU_-dSzhdRvUpB9bTkbcyy9tCkJhYCw"
    )
    pub = parse_did_key(DID)
    assert verify(pub, msg, sig)
    other_audience = session_message("https://other.example", DID, "replica-a", nonce)
    assert not verify(pub, other_audience, sig)
    assert not verify(pub, msg, sig[:-1] + bytes([sig[-1] ^ 1]))
    assert not verify(pub, msg, sig[:10])


def test_rotate_message_is_domain_separated() -> None:
    msg = rotate_message("https://a", "did:key:old", "did:key:new")
    assert msg == b"nt2-sync/v1/rotate\nhttps://a\ndid:key:old\ndid:key:new"
    assert not msg.startswith(b"nt2-sync/v1/session")


@pytest.mark.parametrize("bad", ["a", "ab=c", "AAA=", "a+b/", "AB", "ä"])
def test_b64url_rejects(bad: str) -> None:
    with pytest.raises(EncodingError):
        b64url_decode(bad)


def test_b64url_round_trip() -> None:
    for n in range(0, 40):
        data = bytes(range(n))
        assert b64url_decode(b64url_encode(data)) == data


def test_hex_rejects_upper_and_odd() -> None:
    with pytest.raises(EncodingError):
        hex_decode("0A")
    with pytest.raises(EncodingError):
        hex_decode("abc")
    assert hex_decode("0a") == b"\n"


def test_token_hash_is_sha256_hex_and_not_the_token() -> None:
    token = b64url_encode(b"\x01" * 32)
    digest = hash_token(token)
    assert len(digest) == 64 and token not in digest
    assert digest == hash_token(token)
    assert digest != hash_token(token[:-1] + "B")
