"""Client-side key hierarchy and encryption (docs/CRYPTO.md). Pure functions, no I/O.

KEK = PBKDF2-HMAC-SHA256(password, salt, iterations, 32)
Key DID seed = HKDF-SHA256(KEK, salt=None, info="nt2-sync/v1/key-did-seed")
verifier = the random 32-byte data key sealed under HKDF(KEK, "nt2-sync/v1/verifier-key")
items / attachments = XChaCha20-Poly1305 under keys derived from the data key, with
associated data binding the vault salt, the object id and the format version.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
from collections.abc import Mapping
from functools import lru_cache
from typing import Any

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from nacl.bindings import (
    crypto_aead_xchacha20poly1305_ietf_decrypt,
    crypto_aead_xchacha20poly1305_ietf_encrypt,
)
from nacl.exceptions import CryptoError as _NaclCryptoError
from nacl.signing import SigningKey

from chalicelib.shared.didkey import encode_did_key
from chalicelib.shared.encoding import EncodingError, b64url_decode, b64url_encode

KDF_ALGORITHM = "PBKDF2-SHA256"
MIN_ITERATIONS = 100_000
MAX_ITERATIONS = 10_000_000
DEFAULT_ITERATIONS = 100_000
SALT_BYTES = 16
KEY_BYTES = 32
NONCE_BYTES = 24
FORMAT_VERSION = 1  # first byte of every envelope, also bound in the associated data
MAX_EPOCH = 2**32 - 1  # key epochs are 4 bytes in the verifier

KEY_DID_SEED_INFO = b"nt2-sync/v1/key-did-seed"
VERIFIER_KEY_INFO = b"nt2-sync/v1/verifier-key"
ITEM_KEY_INFO = b"nt2-sync/v1/item-key"
ATTACHMENT_KEY_INFO = b"nt2-sync/v1/attachment-key"
LOCAL_KEY_INFO = b"nt2-sync/v1/local-secret-key"
KEY_CHECK_INFO = b"nt2-sync/v1/key-check"
KIT_MAC_INFO = b"nt2-sync/v1/kit-mac"
KIT_FIELDS = ("server", "keyDid", "kdf", "saltHex")

ITEM_FIELDS = ("title", "body", "username", "url")


class CryptoError(ValueError):
    """Base of every refusal raised here."""


class WeakKdf(CryptoError):
    """KDF parameters below the floor (or another algorithm)."""


class VerifierMismatch(CryptoError):
    """A verifier that does not open with this KEK (wrong password or wrong verifier)."""


class TamperedCiphertext(CryptoError):
    """Ciphertext that fails authentication: altered, swapped or from another vault."""


class UnsupportedFormat(CryptoError):
    """An envelope or plaintext of a format version this client does not know."""


def check_kdf(kdf: Mapping[str, Any] | None) -> int:
    """Return the iterations of acceptable KDF parameters, or raise WeakKdf."""
    if not isinstance(kdf, Mapping):
        raise WeakKdf("no KDF parameters")
    algorithm = kdf.get("algorithm")
    iterations = kdf.get("iterations")
    if algorithm != KDF_ALGORITHM:
        raise WeakKdf(f"KDF algorithm {algorithm!r} is not {KDF_ALGORITHM}")
    if not isinstance(iterations, int) or isinstance(iterations, bool):
        raise WeakKdf("KDF iterations are not an integer")
    if iterations < MIN_ITERATIONS:
        raise WeakKdf(f"{iterations} PBKDF2 iterations is below the minimum of {MIN_ITERATIONS}")
    if iterations > MAX_ITERATIONS:
        raise WeakKdf(f"{iterations} PBKDF2 iterations is above the maximum of {MAX_ITERATIONS}")
    return iterations


def kdf_params(iterations: int = DEFAULT_ITERATIONS) -> dict[str, Any]:
    """The wire form of the KDF parameters."""
    params = {"algorithm": KDF_ALGORITHM, "iterations": iterations}
    check_kdf(params)
    return params


def new_salt() -> bytes:
    """A fresh vault salt (made once, at init; never replaced)."""
    return secrets.token_bytes(SALT_BYTES)


def new_data_key() -> bytes:
    """A fresh vault data key (made once, at init)."""
    return secrets.token_bytes(KEY_BYTES)


def derive_kek(password: str, salt: bytes, iterations: int) -> bytes:
    """KEK = PBKDF2-HMAC-SHA256(UTF-8 password, salt, iterations, 32)."""
    check_kdf({"algorithm": KDF_ALGORITHM, "iterations": iterations})
    return hashlib.pbkdf2_hmac("sha256", password.encode("utf-8"), salt, iterations, KEY_BYTES)


def hkdf(ikm: bytes, info: bytes, length: int = KEY_BYTES) -> bytes:
    """HKDF-SHA256 with no salt (RFC 5869: a string of HashLen zeros)."""
    return HKDF(algorithm=hashes.SHA256(), length=length, salt=None, info=info).derive(ikm)


@lru_cache(maxsize=8)
def _subkey(key: bytes, info: bytes) -> bytes:
    # items and attachments derive the same subkey thousands of times in one sync
    return hkdf(key, info)


def key_did_seed(kek: bytes) -> bytes:
    """The 32-byte Ed25519 seed of the vault's Key DID."""
    return hkdf(kek, KEY_DID_SEED_INFO)


def key_did_of_seed(seed: bytes) -> str:
    """did:key of the Ed25519 key with this seed."""
    return encode_did_key(bytes(SigningKey(seed).verify_key))


def key_did_from_kek(kek: bytes) -> tuple[bytes, str]:
    """(seed, did:key) derived from the KEK."""
    seed = key_did_seed(kek)
    return seed, key_did_of_seed(seed)


def key_check(data_key: bytes) -> str:
    """A non-secret fingerprint of the data key (hex), to recognise it after a password change."""
    return hkdf(data_key, KEY_CHECK_INFO, 16).hex()


def _seal(key: bytes, plaintext: bytes, aad: bytes, nonce: bytes | None = None) -> bytes:
    nonce = secrets.token_bytes(NONCE_BYTES) if nonce is None else nonce
    if len(nonce) != NONCE_BYTES:
        raise ValueError("XChaCha20-Poly1305 nonces are 24 bytes")
    body = crypto_aead_xchacha20poly1305_ietf_encrypt(plaintext, aad, nonce, key)
    return bytes([FORMAT_VERSION]) + nonce + body


def _open(key: bytes, envelope: bytes, aad: bytes) -> bytes:
    if len(envelope) < 1 + NONCE_BYTES + 16:
        raise TamperedCiphertext("ciphertext too short")
    if envelope[0] != FORMAT_VERSION:
        raise UnsupportedFormat(f"unknown ciphertext format version {envelope[0]}")
    nonce, body = envelope[1 : 1 + NONCE_BYTES], envelope[1 + NONCE_BYTES :]
    try:
        return bytes(crypto_aead_xchacha20poly1305_ietf_decrypt(body, aad, nonce, key))
    except _NaclCryptoError as exc:
        raise TamperedCiphertext("ciphertext failed authentication") from exc


def _aad(kind: str, salt: bytes, object_id: str, epoch: int = 0) -> bytes:
    # Newline-joined text: ids cannot contain a newline (PROTOCOL §2), salt is hex. Epoch 0
    # (every vault before its first re-key) keeps exactly the format it always had.
    lines = [f"nt2-sync/v1/{kind}", salt.hex(), object_id, str(FORMAT_VERSION)]
    if check_epoch(epoch):
        lines.append(f"epoch:{epoch}")
    return "\n".join(lines).encode()


def check_epoch(epoch: int) -> int:
    """A key epoch (0 .. 2^32 - 1), or ValueError."""
    if not isinstance(epoch, int) or isinstance(epoch, bool) or not 0 <= epoch <= MAX_EPOCH:
        raise ValueError(f"key epoch {epoch!r} is not an integer in 0..{MAX_EPOCH}")
    return epoch


def seal_data_key(
    kek: bytes, salt: bytes, data_key: bytes, *, epoch: int = 0, nonce: bytes | None = None
) -> str:
    """The verifier: the data key sealed under a key derived from the KEK (base64url). From
    key epoch 1 on, the plaintext is data key ‖ epoch (4 bytes, big-endian), so the epoch a
    device adopts is sealed with the key and a server cannot change it."""
    if len(data_key) != KEY_BYTES:
        raise ValueError("data keys are 32 bytes")
    plaintext = data_key + (check_epoch(epoch).to_bytes(4, "big") if epoch else b"")
    key = hkdf(kek, VERIFIER_KEY_INFO)
    return b64url_encode(_seal(key, plaintext, _aad("verifier", salt, "data-key"), nonce))


def open_verifier_epoch(kek: bytes, salt: bytes, verifier: str) -> tuple[bytes, int]:
    """(data key, key epoch) inside a verifier, or VerifierMismatch: 32 bytes is epoch 0,
    36 bytes is data key ‖ epoch ≥ 1; anything else (epoch 0 in the long form) is refused."""
    try:
        envelope = b64url_decode(verifier)
        inner = _open(hkdf(kek, VERIFIER_KEY_INFO), envelope, _aad("verifier", salt, "data-key"))
    except (EncodingError, TamperedCiphertext, UnsupportedFormat) as exc:
        raise VerifierMismatch("the verifier does not open with this key") from exc
    if len(inner) == KEY_BYTES:
        return inner, 0
    if len(inner) == KEY_BYTES + 4:
        epoch = int.from_bytes(inner[KEY_BYTES:], "big")
        if epoch >= 1:
            return inner[:KEY_BYTES], epoch
    raise VerifierMismatch("the verifier does not hold a 32-byte key and a valid key epoch")


def open_verifier(kek: bytes, salt: bytes, verifier: str) -> bytes:
    """The data key inside a verifier (of any epoch), or VerifierMismatch."""
    return open_verifier_epoch(kek, salt, verifier)[0]


def seal_local_secret(data_key: bytes, salt: bytes, name: str, secret: bytes) -> str:
    """Seal a local-only secret (e.g. a pending rotation's seeds) under the data key."""
    return b64url_encode(_seal(hkdf(data_key, LOCAL_KEY_INFO), secret, _aad("local", salt, name)))


def open_local_secret(data_key: bytes, salt: bytes, name: str, sealed: str) -> bytes:
    """Open what seal_local_secret sealed."""
    return _open(hkdf(data_key, LOCAL_KEY_INFO), b64url_decode(sealed), _aad("local", salt, name))


def item_aad(salt: bytes, item_id: str, epoch: int = 0) -> bytes:
    """Associated data of an item: vault salt, item id, format version (and key epoch ≥ 1)."""
    return _aad("item", salt, item_id, epoch)


def encode_item_plaintext(fields: Mapping[str, Any]) -> bytes:
    """Canonical JSON of an item's plaintext."""
    return json.dumps(dict(fields), sort_keys=True, separators=(",", ":")).encode("utf-8")


MIN_PADDED = 128  # bytes: the smallest item plaintext a server can see


def padme(length: int) -> int:
    """Padmé (Nikitin et al., PETS 2019): round up to a length whose low bits are zero, so
    that at most O(log log n) bits of the size leak; the overhead is at most 12 %."""
    if length < 2:
        return length
    exponent = length.bit_length() - 1
    low_bits = exponent - exponent.bit_length()
    mask = (1 << low_bits) - 1
    return (length + mask) & ~mask


def pad_item_plaintext(raw: bytes) -> bytes:
    """The JSON plaintext followed by spaces up to its padded length (JSON allows trailing
    whitespace, so any reader of the unpadded format reads it unchanged)."""
    return raw + b" " * (padme(max(len(raw), MIN_PADDED)) - len(raw))


def validate_item_plaintext(data: Any) -> dict[str, Any]:
    """Check the shape of a decrypted item; raise UnsupportedFormat otherwise."""
    if not isinstance(data, dict) or data.get("v") != FORMAT_VERSION:
        raise UnsupportedFormat("unknown item format")
    for name in ITEM_FIELDS:
        if not isinstance(data.get(name), str):
            raise UnsupportedFormat(f"item field {name} is not text")
    _check_stamp(data, "item")
    attachments = data.setdefault("attachments", [])
    if not isinstance(attachments, list) or not all(
        isinstance(a, dict) and isinstance(a.get("id"), str) for a in attachments
    ):
        raise UnsupportedFormat("item attachments are malformed")
    return data


def encrypt_item(
    data_key: bytes,
    salt: bytes,
    item_id: str,
    plaintext: Mapping[str, Any],
    *,
    epoch: int = 0,
    nonce: bytes | None = None,
) -> str:
    """Encrypt an item's plaintext dict; base64url envelope."""
    data = validate_item_plaintext({"v": FORMAT_VERSION, **plaintext})
    padded = pad_item_plaintext(encode_item_plaintext(data))
    return _seal_text(data_key, padded, item_aad(salt, item_id, epoch), nonce)


def decrypt_item(
    data_key: bytes, salt: bytes, item_id: str, ciphertext: str, *, epoch: int = 0
) -> dict[str, Any]:
    """Decrypt and validate an item; TamperedCiphertext when it was altered or moved, or
    sealed under another key epoch."""
    data = _open_json(data_key, ciphertext, item_aad(salt, item_id, epoch), "item plaintext")
    return validate_item_plaintext(data)


def _seal_text(data_key: bytes, plaintext: bytes, aad: bytes, nonce: bytes | None) -> str:
    """An envelope under the item key, as base64url text (items and deletion records)."""
    return b64url_encode(_seal(_subkey(data_key, ITEM_KEY_INFO), plaintext, aad, nonce))


def _open_json(data_key: bytes, ciphertext: str, aad: bytes, what: str) -> Any:
    """The JSON inside a base64url envelope under the item key."""
    try:
        envelope = b64url_decode(ciphertext)
    except EncodingError as exc:
        raise TamperedCiphertext(f"{what} is not base64url") from exc
    raw = _open(_subkey(data_key, ITEM_KEY_INFO), envelope, aad)
    try:
        return json.loads(raw)
    except ValueError as exc:
        raise UnsupportedFormat(f"{what} is not JSON") from exc


def deletion_aad(salt: bytes, item_id: str, epoch: int = 0) -> bytes:
    """Associated data of a sealed deletion record: never confused with a live item's."""
    return _aad("deletion", salt, item_id, epoch)


def seal_deletion(
    data_key: bytes,
    salt: bytes,
    item_id: str,
    record: Mapping[str, Any],
    *,
    epoch: int = 0,
    nonce: bytes | None = None,
) -> str:
    """A tombstone's ciphertext (PROTOCOL v1.2 §5): `{v, deleted, revision, updatedAt,
    replicaId}` under the item key with the deletion's associated data, so only a holder of
    the data key can delete an item."""
    data = validate_deletion({"v": FORMAT_VERSION, "deleted": True, **record})
    aad = deletion_aad(salt, item_id, epoch)
    return _seal_text(data_key, encode_item_plaintext(data), aad, nonce)


def open_deletion(
    data_key: bytes, salt: bytes, item_id: str, ciphertext: str, *, epoch: int = 0
) -> dict[str, Any]:
    """Open and validate a sealed deletion record; TamperedCiphertext if it is not one."""
    aad = deletion_aad(salt, item_id, epoch)
    return validate_deletion(_open_json(data_key, ciphertext, aad, "deletion record"))


def validate_deletion(data: Any) -> dict[str, Any]:
    """Check the shape of an opened deletion record; raise UnsupportedFormat otherwise."""
    if (
        not isinstance(data, dict)
        or data.get("v") != FORMAT_VERSION
        or data.get("deleted") is not True
    ):
        raise UnsupportedFormat("unknown deletion record format")
    _check_stamp(data, "deletion")
    return data


def _check_stamp(data: dict[str, Any], what: str) -> None:
    """The revision, time and writer every item and deletion record carries."""
    for name in ("updatedAt", "revision"):
        value = data.get(name)
        if not isinstance(value, int) or isinstance(value, bool) or value < 0:
            raise UnsupportedFormat(f"{what} field {name} is not a non-negative integer")
    if not isinstance(data.get("replicaId"), str):
        raise UnsupportedFormat(f"{what} field replicaId is not text")


def attachment_aad(salt: bytes, attachment_id: str) -> bytes:
    """Associated data of an attachment: vault salt, attachment id, format version."""
    return _aad("attachment", salt, attachment_id)


def padded_attachment_aad(salt: bytes, attachment_id: str) -> bytes:
    """Associated data of a padded attachment (its plaintext ends in 0x80 00…)."""
    return _aad("attachment-padded", salt, attachment_id)


def encrypt_attachment(
    data_key: bytes, salt: bytes, attachment_id: str, data: bytes, *, nonce: bytes | None = None
) -> bytes:
    """Encrypt a file's bytes (one AEAD envelope), padded to a Padmé length: the bytes, then
    0x80, then zeros (ISO/IEC 7816-4), so the server sees a size class, not the size.
    Legacy form: sealed under the data key's attachment subkey (a re-key re-uploads it)."""
    key = hkdf(data_key, ATTACHMENT_KEY_INFO)
    return seal_attachment(key, salt, attachment_id, data, nonce=nonce)


def new_file_key() -> bytes:
    """A fresh per-file attachment key (its base64url form goes in the item's reference)."""
    return secrets.token_bytes(KEY_BYTES)


def seal_attachment(
    file_key: bytes, salt: bytes, attachment_id: str, data: bytes, *, nonce: bytes | None = None
) -> bytes:
    """An attachment sealed directly under its own 32-byte file key (same padded envelope and
    associated data as encrypt_attachment): re-keying the vault re-wraps only the item."""
    if len(file_key) != KEY_BYTES:
        raise ValueError("attachment file keys are 32 bytes")
    padded = data + b"\x80" + bytes(padme(len(data) + 1) - len(data) - 1)
    return _seal(file_key, padded, padded_attachment_aad(salt, attachment_id), nonce)


def open_attachment(file_key: bytes, salt: bytes, attachment_id: str, blob: bytes) -> bytes:
    """Open what seal_attachment sealed; TamperedCiphertext when altered or swapped."""
    if len(file_key) != KEY_BYTES:
        raise TamperedCiphertext("the attachment's file key is not 32 bytes")
    return _open_padded(file_key, salt, attachment_id, blob)


def decrypt_attachment(data_key: bytes, salt: bytes, attachment_id: str, blob: bytes) -> bytes:
    """Decrypt an attachment; TamperedCiphertext when altered or swapped. Attachments sealed
    before padding (their own associated data) still open."""
    return _open_padded(hkdf(data_key, ATTACHMENT_KEY_INFO), salt, attachment_id, blob)


def _open_padded(key: bytes, salt: bytes, attachment_id: str, blob: bytes) -> bytes:
    try:
        padded = _open(key, blob, padded_attachment_aad(salt, attachment_id))
    except TamperedCiphertext:
        return _open(key, blob, attachment_aad(salt, attachment_id))
    end = padded.rstrip(b"\x00")
    if not end.endswith(b"\x80"):
        raise TamperedCiphertext("attachment padding is malformed")
    return end[:-1]


def sha256_b64url(data: bytes) -> str:
    """sha256 of bytes, base64url (the wire form of attachment checksums)."""
    return b64url_encode(hashlib.sha256(data).digest())


def constant_time_equal(a: str, b: str) -> bool:
    """Compare two strings without leaking where they differ."""
    return hmac.compare_digest(a.encode(), b.encode())


def kit_mac(seed: bytes, kit: Mapping[str, Any]) -> str:
    """The setup kit's integrity code: HMAC-SHA256 under HKDF(Key DID seed, "kit-mac") over
    the canonical JSON of (server, keyDid, kdf, saltHex). Only the master password makes the
    key, so a kit whose server, key, KDF or salt was changed is caught before anything is
    sent to where it points."""
    canonical = json.dumps(
        {name: kit.get(name) for name in KIT_FIELDS}, sort_keys=True, separators=(",", ":")
    ).encode("utf-8")
    return b64url_encode(hmac.new(hkdf(seed, KIT_MAC_INFO), canonical, hashlib.sha256).digest())


def kit_mac_ok(seed: bytes, kit: Mapping[str, Any]) -> bool:
    mac = kit.get("mac")
    return isinstance(mac, str) and hmac.compare_digest(mac, kit_mac(seed, kit))
