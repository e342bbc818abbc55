"""Creating a vault and unlocking it: the master password becomes the keys held in memory.

A wrong password is refused locally (the local verifier), before any request: nothing
derived from an unverified password is ever sent. A password changed on another device is
adopted only when the person says so (`nt2sync password adopt`), derived with exactly the
parameters the server then announces, and checked against its key DID and verifier.
"""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from chalicelib.shared import crypto
from chalicelib.shared.codes import ErrorCode
from nt2sync import keyring
from nt2sync.errors import (
    BadVerifier,
    ClientError,
    SaltMismatch,
    ServerError,
    WeakKdfOffered,
    WrongPassword,
)
from nt2sync.vault import Vault

if TYPE_CHECKING:
    from nt2sync.engine import Client

NOT_THIS_VAULT = "The master password is wrong for this vault."
ADOPT_HINT = " If it was changed on another device, run `nt2sync password adopt` with the new one."


@dataclass
class Keys:
    """Secrets held in memory while a command runs."""

    data_key: bytes
    seed: bytes
    key_did: str
    epoch: int = 0  # the key epoch (from the verifier); 0 until the first re-key
    retired: tuple[tuple[bytes, int], ...] = ()  # (key, epoch) of the previous epoch, if held
    rekeying: bool = False  # a re-key is being finished here (nt2sync/rekey.py)


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


def unlock(client: Client, password: str) -> Keys:
    """Derive the keys from the master password (refusing a wrong one)."""
    meta = client.meta
    kek = crypto.derive_kek(password, meta.salt, crypto.check_kdf(meta.kdf))
    try:
        data_key, epoch = crypto.open_verifier_epoch(kek, meta.salt, meta.verifier)
        seed, key_did = crypto.key_did_from_kek(kek)
    except crypto.VerifierMismatch:
        pending = meta.pending_rotation
        if pending:
            kek = crypto.derive_kek(password, meta.salt, crypto.check_kdf(pending["kdf"]))
            try:
                data_key, epoch = crypto.open_verifier_epoch(kek, meta.salt, pending["verifier"])
            except crypto.VerifierMismatch:
                raise WrongPassword(NOT_THIS_VAULT) from None
            seed, key_did = crypto.key_did_from_kek(kek)
        else:
            hint = ADOPT_HINT if meta.sync_enabled and meta.server_url else ""
            raise WrongPassword(NOT_THIS_VAULT + hint) from None
    rekey = meta.pending_rekey
    if rekey and meta.pending_rotation and crypto.key_check(data_key) == rekey["newKeyCheck"]:
        # the new password of a re-key the server has not confirmed: keep using the old key
        old_epoch = int(rekey["oldEpoch"])
        name = f"rekey/retired/{old_epoch}"
        data_key = crypto.open_local_secret(data_key, meta.salt, name, rekey["retired"])
        epoch = old_epoch
    if crypto.key_check(data_key) != meta.key_check:
        raise WrongPassword("The master password opens a different vault's key.")
    if meta.pending_rotation:  # keep using the current (old) key until the server agrees
        seed = pending_secret(client, data_key, "oldSeed")
        key_did = meta.pending_rotation["oldKeyDid"]
        return Keys(data_key, seed, key_did, epoch, rekeying=bool(rekey))
    if rekey:  # rotated: the new key is current, the old one held until the re-key is done
        name = f"rekey/retired/{int(rekey['oldEpoch'])}"
        old_key = crypto.open_local_secret(data_key, meta.salt, name, rekey["retired"])
        return Keys(data_key, seed, key_did, epoch, ((old_key, int(rekey["oldEpoch"])),), True)
    retired = keyring.open_retired(data_key, meta.salt, meta.retired_key)
    return Keys(data_key, seed, key_did, epoch, retired)


def pending_secret(client: Client, data_key: bytes, name: str) -> bytes:
    """One seed of the recorded (unfinished) rotation, opened with the data key."""
    pending = client.meta.pending_rotation or {}
    return crypto.open_local_secret(data_key, client.meta.salt, name, pending[name])


def adopt_password(
    client: Client,
    password: str,
    kit_kdf: dict[str, Any] | None,
    old_password: str | None = None,
) -> Keys:
    """The person says the password was changed on another device: derive with this vault's
    parameters (or a new kit's, never lower), and adopt only if the server's bootstrap for
    the derived key DID announces exactly those parameters, this vault's salt and a verifier
    that opens to this vault's data key, or (a re-key) to a new data key of a later epoch;
    then this device's own state is re-sealed under it with the previous key, which the
    previous password opens here. Nothing is stored otherwise."""
    meta = client.meta
    if not (meta.sync_enabled and meta.server_url):
        raise ClientError("Cloud sync is not enabled for this vault: there is nothing to adopt.")
    if meta.pending_rotation or meta.pending_rekey:
        raise ClientError(
            "A password change made here is not finished; run `nt2sync password change "
            "--resume` (or `nt2sync sync now`) first."
        )
    iterations = crypto.check_kdf(meta.kdf)
    if kit_kdf is not None:
        iterations = refuse_weak(kit_kdf)
        if iterations < crypto.check_kdf(meta.kdf):
            raise WeakKdfOffered("The kit lowers the key-derivation iterations; refusing it.")
    kek = crypto.derive_kek(password, meta.salt, iterations)
    try:
        crypto.open_verifier(kek, meta.salt, meta.verifier)
    except crypto.VerifierMismatch:
        pass
    else:
        raise ClientError("That is this vault's current master password: nothing to adopt.")
    seed, key_did = crypto.key_did_from_kek(kek)
    try:
        boot = client.api.bootstrap(key_did)
    except ServerError as exc:
        if exc.code == ErrorCode.VAULT_NOT_FOUND:
            raise WrongPassword(
                "The server has no vault for this password: it is not the new master password "
                "(or the new kit's parameters are needed: `--kit FILE`)."
            ) from exc
        raise
    if boot.get("keyDid") != key_did:
        raise BadVerifier("The server answered for another key DID than asked; refusing it.")
    if boot.get("saltHex") != meta.salt_hex:
        raise SaltMismatch(
            "The server names another salt for this vault than the one it was made with; "
            "refusing to use it."
        )
    if refuse_weak(boot.get("kdf")) != iterations:
        raise WeakKdfOffered(
            "The server announces other key-derivation parameters than the ones this password "
            "was derived with; refusing them (nothing was stored)."
        )
    try:
        data_key, epoch = crypto.open_verifier_epoch(
            kek, meta.salt, str(boot.get("verifier") or "")
        )
    except crypto.VerifierMismatch as exc:
        raise BadVerifier(
            "The server's verifier does not open with this password although the key DID "
            "matches: the server sent a wrong verifier."
        ) from exc
    if crypto.key_check(data_key) != meta.key_check:
        return _adopt_rekey(client, old_password, kek, data_key, epoch, boot, iterations)
    previous = client.keys
    retired = keyring.open_retired(data_key, meta.salt, meta.retired_key)
    client.vault.set_meta(
        key_did=key_did,
        verifier=boot["verifier"],
        kdf=crypto.kdf_params(iterations),
        token=None,
        token_expires_at=None,
    )
    client.notices.append("Now using the master password changed on another device.")
    rekeying = previous.rekeying if previous else False
    return Keys(data_key, seed, key_did, epoch, retired, rekeying)


class RekeyNeedsOldPassword(ClientError):
    """Adopting a re-key needs the previous master password (to open this device's state)."""


def _adopt_rekey(
    client: Client,
    old_password: str | None,
    kek: bytes,
    new_key: bytes,
    new_epoch: int,
    boot: dict[str, Any],
    iterations: int,
) -> Keys:
    """Another device re-keyed the vault: re-seal everything held here (unpushed edits too)
    under the new key, with the previous key that this device's own verifier still opens."""
    meta = client.meta
    old = client.keys
    if old is None:
        if not old_password:
            raise RekeyNeedsOldPassword(
                "The vault was re-keyed on another device: adopting it also needs the previous "
                "master password, to re-seal what this device holds (set NT2_OLD_PASSWORD, or "
                "enter it when asked). Nothing was stored."
            )
        old = unlock(client, old_password)
    if new_epoch <= old.epoch:
        raise BadVerifier(
            "The server's verifier holds another data key of an epoch that is not newer than "
            "this vault's; refusing it."
        )
    from nt2sync.reseal import reseal_for_adoption  # the re-sealing needs the item modules

    seed, key_did = crypto.key_did_from_kek(kek)
    new_keys = Keys(new_key, seed, key_did, new_epoch, ((old.data_key, old.epoch),))
    with client.vault.transaction():
        reseal_for_adoption(client, old, new_keys)
        client.vault.set_meta(
            key_did=key_did,
            verifier=boot["verifier"],
            kdf=crypto.kdf_params(iterations),
            key_check=crypto.key_check(new_key),
            retired_key=keyring.retired_record(new_key, meta.salt, old.data_key, old.epoch),
            token=None,
            token_expires_at=None,
        )
    from nt2sync.manifests import republish_all

    republish_all(client)  # this device's manifests under the old key no longer open
    client.notices.append(
        "Now using the master password and the new vault key made on another device; what "
        "this device holds was re-sealed under it."
    )
    return new_keys
