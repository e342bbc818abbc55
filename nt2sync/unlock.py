"""Creating a vault and unlocking it: the master password becomes the keys held in memory.

A password changed on another device is noticed here (the verifier no longer opens) and
checked against the server's bootstrap before it is adopted.
"""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from chalicelib.shared import crypto
from chalicelib.shared.codes import ErrorCode
from nt2sync.errors import BadVerifier, SaltMismatch, ServerError, WeakKdfOffered, WrongPassword
from nt2sync.vault import Vault

if TYPE_CHECKING:
    from nt2sync.engine import Client

NOT_THIS_VAULT = "The master password is wrong for this vault."


@dataclass
class Keys:
    """Secrets held in memory while a command runs."""

    data_key: bytes
    seed: bytes
    key_did: str


def now_ms() -> int:
    """Wall-clock time in epoch milliseconds."""
    return int(time.time() * 1000)


def new_replica_id() -> str:
    """A random replicaId (PROTOCOL §2 pattern)."""
    return "r-" + secrets.token_hex(8)


def refuse_weak(kdf: Any) -> int:
    """The iterations of offered KDF parameters, refusing any below the floor."""
    try:
        return crypto.check_kdf(kdf)
    except crypto.WeakKdf as exc:
        raise WeakKdfOffered(
            f"The server offered weak key-derivation parameters ({exc}); refusing to use them."
        ) from exc


def create_vault(
    path: Path, password: str, *, iterations: int, device_name: str | None
) -> tuple[Vault, Keys]:
    """A new vault: salt, data key and keyDid made here, once."""
    salt = crypto.new_salt()
    data_key = crypto.new_data_key()
    kek = crypto.derive_kek(password, salt, iterations)
    seed, key_did = crypto.key_did_from_kek(kek)
    vault = Vault.create(
        path,
        salt_hex=salt.hex(),
        kdf=crypto.kdf_params(iterations),
        key_did=key_did,
        verifier=crypto.seal_data_key(kek, salt, data_key),
        key_check=crypto.key_check(data_key),
        replica_id=new_replica_id(),
        device_name=device_name,
        created_at=now_ms(),
    )
    return vault, Keys(data_key, seed, key_did)


def unlock(client: Client, password: str, kit_kdf: dict[str, Any] | None) -> Keys:
    """Derive the keys from the master password (refusing a wrong one)."""
    meta = client.meta
    kek = crypto.derive_kek(password, meta.salt, crypto.check_kdf(meta.kdf))
    try:
        data_key = crypto.open_verifier(kek, meta.salt, meta.verifier)
        seed, key_did = crypto.key_did_from_kek(kek)
    except crypto.VerifierMismatch:
        pending = meta.pending_rotation
        if pending:
            kek = crypto.derive_kek(password, meta.salt, crypto.check_kdf(pending["kdf"]))
            try:
                data_key = crypto.open_verifier(kek, meta.salt, pending["verifier"])
            except crypto.VerifierMismatch:
                raise WrongPassword(NOT_THIS_VAULT) from None
            seed, key_did = crypto.key_did_from_kek(kek)
        elif meta.sync_enabled and meta.server_url:
            if kit_kdf is not None:
                iterations = refuse_weak(kit_kdf)
                if iterations < crypto.check_kdf(meta.kdf):
                    raise WeakKdfOffered(
                        "The kit lowers the key-derivation iterations; refusing it."
                    ) from None
                kek = crypto.derive_kek(password, meta.salt, iterations)
            return adopt_rotation(client, kek)
        else:
            raise WrongPassword(NOT_THIS_VAULT) from None
    if crypto.key_check(data_key) != meta.key_check:
        raise WrongPassword("The master password opens a different vault's key.")
    if meta.pending_rotation:  # keep using the current (old) key until the server agrees
        seed = pending_secret(client, data_key, "oldSeed")
        key_did = meta.pending_rotation["oldKeyDid"]
    return Keys(data_key, seed, key_did)


def pending_secret(client: Client, data_key: bytes, name: str) -> bytes:
    """One seed of the recorded (unfinished) rotation, opened with the data key."""
    pending = client.meta.pending_rotation or {}
    return crypto.open_local_secret(data_key, client.meta.salt, name, pending[name])


def adopt_rotation(client: Client, kek: bytes) -> Keys:
    """The password was changed on another device: check the new key through bootstrap."""
    meta = client.meta
    seed, key_did = crypto.key_did_from_kek(kek)
    try:
        boot = client.api.bootstrap(key_did)
    except ServerError as exc:
        if exc.code == ErrorCode.VAULT_NOT_FOUND:
            raise WrongPassword(NOT_THIS_VAULT) from exc
        raise
    if boot.get("saltHex") != meta.salt_hex:
        raise SaltMismatch(
            "The server names another salt for this vault than the one it was made with; "
            "refusing to use it."
        )
    if refuse_weak(boot.get("kdf")) < crypto.check_kdf(meta.kdf):
        raise WeakKdfOffered(
            "The server offered weaker key-derivation parameters than this vault's; refusing."
        )
    try:
        data_key = crypto.open_verifier(kek, meta.salt, str(boot.get("verifier") or ""))
    except crypto.VerifierMismatch as exc:
        raise BadVerifier(
            "The server's verifier does not open with this password although the key DID "
            "matches: the server sent a wrong verifier."
        ) from exc
    if crypto.key_check(data_key) != meta.key_check:
        raise BadVerifier(
            "The server's verifier holds another data key than this vault's; refusing it."
        )
    client.vault.set_meta(
        key_did=key_did,
        verifier=boot["verifier"],
        kdf=boot["kdf"],
        token=None,
        token_expires_at=None,
    )
    client.notices.append("The master password was changed on another device; now using it.")
    return Keys(data_key, seed, key_did)
