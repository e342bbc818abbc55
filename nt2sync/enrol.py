"""Enrolment: turning sync on for a vault made here, off again, and a new device joining.

`enable` registers the vault's own salt and verifier (this device holds the key); `join`
trusts nothing the server sends until the master password has derived the same key DID.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from chalicelib.shared import crypto
from chalicelib.shared.codes import ErrorCode
from chalicelib.shared.encoding import EncodingError, hex_decode
from nt2sync import auth, manifests
from nt2sync.api import Api, normalize_server
from nt2sync.attachments import reconcile_attachments
from nt2sync.errors import (
    BadVerifier,
    ClientError,
    DeviceRevoked,
    PasswordChangedElsewhere,
    SaltMismatch,
    ServerError,
    TamperedKit,
    WeakKdfOffered,
    WrongPassword,
    explain,
)
from nt2sync.report import Progress, SyncSummary
from nt2sync.sync import sync_now
from nt2sync.unlock import Keys, new_replica_id, now_ms, refuse_weak
from nt2sync.vault import Vault

if TYPE_CHECKING:
    from nt2sync.engine import Client


def enable(
    client: Client, server: str, *, device_name: str | None, progress: Progress | None
) -> SyncSummary:
    """Authenticate, register with the existing salt, push everything, pull."""
    keys = client.require_keys()
    meta = client.meta
    server = normalize_server(server)
    api = auth.connect(client, server)
    auth.check_audience(api)
    name = device_name or meta.device_name
    session = auth.open_session(client, api, keys.seed, keys.key_did, name, persist=False)
    body = {
        "saltHex": meta.salt_hex,
        "kdf": meta.kdf,
        "verifier": meta.verifier,
        "publicKeys": {"keyDid": keys.key_did, "type": "Ed25519"},
        # This device holds the key, so its verifier is the one to keep (§4).
        "proof": auth.proof(api, keys.seed, keys.key_did, "register", keys.key_did),
    }
    try:
        api.register(body)
    except ServerError as exc:
        known = explain(exc)
        if known is None:
            raise
        raise known from exc
    escrow = api.salt(keys.key_did)
    if escrow.get("saltHex") != meta.salt_hex:
        raise SaltMismatch(
            "The server holds another salt for this vault than its own; nothing was changed."
        )
    if meta.server_url and meta.server_url != server:
        client.vault.reset_for_new_server()
        manifests.reset(client)  # the old server's manifests attest nothing here
    client.vault.set_meta(
        server_url=server,
        device_name=name,
        sync_enabled=1,
        token=session["token"],
        token_expires_at=session["expiresAt"],
    )
    client._api = api
    summary = sync_now(client, progress)
    try:
        summary.attachments_uploaded += reconcile_attachments(client)
    except (DeviceRevoked, PasswordChangedElsewhere):
        raise
    except ClientError as exc:  # items are synced; attachments wait for the next sync
        summary.notices.append(f"Attachments not reconciled yet: {exc.message}")
    return summary


def disable(client: Client) -> dict[str, Any]:
    """Stop syncing here and end the session; the server keeps the vault."""
    meta = client.meta
    if meta.server_url and meta.token:
        api = client.api
        api.token = meta.token
        try:
            api.end_session()
        except ClientError:
            pass  # an ended or unreachable session is already what we want
    client.vault.set_meta(sync_enabled=0, token=None, token_expires_at=None)
    return {"syncEnabled": False, "server": meta.server_url, "serverDataKept": True}


def status(client: Client, *, offline: bool) -> dict[str, Any]:
    """Local and (when sync is on) remote state."""
    meta = client.meta
    out: dict[str, Any] = {
        "registered": None,
        "syncEnabled": meta.sync_enabled,
        "server": meta.server_url,
        "keyDid": meta.key_did,
        "replicaId": meta.replica_id,
        "lastSyncAt": meta.last_sync_at,
        "watermark": meta.watermark,
        "counts": {"local": client.vault.count_live(), "remote": None},
        "pending": client.vault.count_dirty(),
        "devices": None,
        "premium": None,
    }
    if meta.sync_enabled and not offline:
        remote = client.call(lambda api: api.status())
        out["registered"] = bool(remote.get("registered"))
        if not remote.get("registered"):
            raise PasswordChangedElsewhere(
                "The server has no vault for this key: the master password was probably "
                "changed on another device; run `nt2sync password adopt` with the new one."
            )
        items = (remote.get("counts") or {}).get("items")
        if isinstance(items, int):  # the server counts manifests too: a person counts items
            items = max(0, items - manifests.known_items(client))
        out["counts"]["remote"] = items
        out["remoteWatermark"] = remote.get("watermark")
        out["devices"] = remote.get("devices")
        out["premium"] = remote.get("premium")
    return out


def join(
    cls: type[Client],
    path: Path,
    server: str,
    key_did: str,
    password: str,
    *,
    kit_salt_hex: str | None,
    kit_kdf: dict[str, Any] | None,
    device_name: str | None,
    progress: Progress | None,
    kit: dict[str, Any] | None = None,
    **kwargs: Any,
) -> tuple[Client, SyncSummary]:
    """A new device: bootstrap, check everything, then pull the vault."""
    if Vault.exists(path):
        raise ClientError(f"A vault already exists at {path}; join needs a path with none.")
    if kit is not None:
        check_kit(kit, password)
        kit_salt_hex, kit_kdf = str(kit["saltHex"]), kit["kdf"]
    api = Api(server, transport=kwargs.get("transport"), sleep=kwargs.get("sleep", time.sleep))
    auth.check_audience(api)
    try:
        boot = api.bootstrap(key_did)
    except ServerError as exc:
        if exc.code == ErrorCode.VAULT_NOT_FOUND:
            raise ClientError(f"The server has no vault for {key_did}.") from exc
        raise
    iterations = refuse_weak(boot.get("kdf"))
    if kit_kdf is not None and iterations != crypto.check_kdf(kit_kdf):
        raise WeakKdfOffered(
            "The server's key-derivation parameters differ from the kit's; refusing them."
        )
    try:
        salt = hex_decode(str(boot.get("saltHex")))
    except EncodingError as exc:
        raise SaltMismatch("The server sent a malformed salt; refusing it.") from exc
    if kit_salt_hex is not None and salt.hex() != kit_salt_hex:
        raise SaltMismatch(
            "The server sent another salt than the one in your kit; refusing it (nothing was sent)."
        )
    kek = crypto.derive_kek(password, salt, iterations)
    seed, derived = crypto.key_did_from_kek(kek)
    if derived != key_did:
        raise WrongPassword(
            "The master password is wrong for this vault (it does not derive its key DID); "
            "nothing was sent."
        )
    verifier = boot.get("verifier")
    try:
        data_key, epoch = crypto.open_verifier_epoch(kek, salt, str(verifier or ""))
    except crypto.VerifierMismatch as exc:
        raise BadVerifier(
            "The server's verifier does not open with the right master password: the server "
            "sent a wrong verifier; nothing was saved."
        ) from exc
    vault = Vault.create(
        path,
        salt_hex=salt.hex(),
        kdf=crypto.kdf_params(iterations),
        key_did=key_did,
        verifier=str(verifier),
        key_check=crypto.key_check(data_key),
        replica_id=new_replica_id(),
        device_name=device_name,
        server_url=api.audience,
        sync_enabled=1,
        created_at=now_ms(),
    )
    client = cls.unlocked(vault, Keys(data_key, seed, key_did, epoch), **kwargs)
    client._api = api
    try:
        summary = sync_now(client, progress)
    except BaseException:
        client.close()
        _remove_vault_files(path)  # a refused first pull leaves nothing behind
        raise
    return client, summary


def _remove_vault_files(path: Path) -> None:
    for suffix in ("", "-wal", "-shm"):
        candidate = path.with_name(path.name + suffix)
        if candidate.exists():
            candidate.unlink()


def check_kit(kit: dict[str, Any], password: str) -> None:
    """The kit's MAC, checked with the password before anything is sent anywhere: a kit whose
    server, key DID, KDF or salt was changed (or a wrong password) is refused here."""
    if not isinstance(kit.get("mac"), str):
        raise TamperedKit(
            "This kit has no integrity code (an older nt2sync made it): make a new one with "
            "`nt2sync kit` on a device that has the vault, or join with --server and --key-did."
        )
    try:
        salt = hex_decode(str(kit.get("saltHex")))
        iterations = refuse_weak(kit.get("kdf"))
    except (EncodingError, ClientError) as exc:
        raise TamperedKit("This kit is damaged; nothing was sent.") from exc
    seed = crypto.key_did_seed(crypto.derive_kek(password, salt, iterations))
    if not crypto.kit_mac_ok(seed, kit):
        raise TamperedKit(
            "This kit does not match the master password: either the password is wrong or "
            "the kit was altered (its server, key or KDF); nothing was sent."
        )
