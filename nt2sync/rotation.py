"""Password change: the data key re-sealed under a new password, the key DID rotated.

The rotation is recorded in the vault before the server hears of it, so a crash half-way
is finished by the next command that talks to the server (`finish_rotation` is idempotent).
A re-key (nt2sync/rekey.py) rotates the same way, with a verifier that seals a new data key
and epoch; once the server agrees, that key becomes current and the old one is held, sealed,
until every row is re-encrypted.
"""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING, Any

from chalicelib.shared import crypto
from chalicelib.shared.codes import ErrorCode
from chalicelib.shared.encoding import b64url_encode
from chalicelib.shared.messages import rotate_message, sign
from nt2sync import auth
from nt2sync.errors import ClientError, ServerError, UsageProblem
from nt2sync.unlock import Keys, pending_secret

if TYPE_CHECKING:
    from nt2sync.engine import Client


def change_password(client: Client, new_password: str, *, iterations: int | None) -> str:
    """Re-seal the data key under a new password; rotate the keyDid on the server."""
    keys = client.require_keys()
    meta = client.meta
    refuse_unfinished(client)
    kdf, new_kek = new_kek_for(client, new_password, iterations)
    new_seed, new_did = crypto.key_did_from_kek(new_kek)
    verifier = crypto.seal_data_key(new_kek, meta.salt, keys.data_key, epoch=keys.epoch)
    if not (meta.sync_enabled and meta.server_url):
        client.vault.set_meta(key_did=new_did, verifier=verifier, kdf=kdf)
        client.keys = replace(keys, seed=new_seed, key_did=new_did)
        return new_did
    pending = pending_record(client, new_seed, new_did, verifier, kdf)
    client.vault.set_meta(pending_rotation=pending)  # recorded before the server hears of it
    finish_rotation(client)
    return new_did


def refuse_unfinished(client: Client) -> None:
    """A new password change waits until the one recorded here is finished."""
    meta = client.meta
    if meta.pending_rotation or meta.pending_rekey:
        raise ClientError(
            "A password change is still pending; run `nt2sync password change --resume` first."
        )


def new_kek_for(
    client: Client, new_password: str, iterations: int | None
) -> tuple[dict[str, Any], bytes]:
    """(kdf, KEK) of the new master password; iterations never go down."""
    meta = client.meta
    if not new_password:
        raise UsageProblem("The new master password must not be empty.")
    current = crypto.check_kdf(meta.kdf)
    target = current if iterations is None else iterations
    if target < current:
        raise UsageProblem(f"--iterations can only go up (now {current}).")
    return crypto.kdf_params(target), crypto.derive_kek(new_password, meta.salt, target)


def pending_record(
    client: Client, new_seed: bytes, new_did: str, verifier: str, kdf: dict[str, Any]
) -> dict[str, Any]:
    """The rotation as recorded before the server hears of it (seeds sealed under the
    current data key, so either password can finish it)."""
    keys = client.require_keys()
    salt = client.salt
    return {
        "oldKeyDid": keys.key_did,
        "newKeyDid": new_did,
        "verifier": verifier,
        "kdf": kdf,
        "oldSeed": crypto.seal_local_secret(keys.data_key, salt, "oldSeed", keys.seed),
        "newSeed": crypto.seal_local_secret(keys.data_key, salt, "newSeed", new_seed),
    }


def rekey_keys_after_rotation(
    client: Client, keys: Keys, rekey: dict[str, Any], seed: bytes, key_did: str
) -> Keys:
    """The keys once the server holds a re-key's verifier: the new data key and epoch current,
    the old ones retired (held only until the re-key is done)."""
    epoch = int(rekey["epoch"])
    new_key = crypto.open_local_secret(
        keys.data_key, client.salt, f"rekey/next/{epoch}", rekey["next"]
    )
    return Keys(new_key, seed, key_did, epoch, ((keys.data_key, keys.epoch),), rekeying=True)


def finish_rotation(client: Client) -> None:
    """Finish a recorded rotation (idempotent: also after a crash half-way)."""
    keys = client.require_keys()
    meta = client.meta
    pending = meta.pending_rotation
    if not pending:
        return
    old_seed = pending_secret(client, keys.data_key, "oldSeed")
    new_seed = pending_secret(client, keys.data_key, "newSeed")
    api = client.api
    api.token = None
    signature = sign(
        new_seed, rotate_message(api.audience, pending["oldKeyDid"], pending["newKeyDid"])
    )
    body = {
        "newKeyDid": pending["newKeyDid"],
        "signature": b64url_encode(signature),
        "verifier": pending["verifier"],
        "publicKeys": {"keyDid": pending["newKeyDid"], "type": "Ed25519"},
        "kdf": pending["kdf"],
    }
    try:
        auth.open_session(client, api, old_seed, pending["oldKeyDid"], meta.device_name)
        body["proof"] = auth.proof(
            api, old_seed, pending["oldKeyDid"], "rotate", pending["newKeyDid"]
        )
        api.rotate(body)
    except ServerError as exc:
        if exc.code in (ErrorCode.DEVICE_REVOKED, ErrorCode.SESSION_REVOKED):
            raise auth.revoked(client) from exc
        if exc.code not in (ErrorCode.KEY_DID_TAKEN, ErrorCode.VAULT_NOT_FOUND):
            raise
        # Maybe the first attempt went through: does the new key own the vault?
        auth.open_session(client, api, new_seed, pending["newKeyDid"], meta.device_name)
        if not api.status().get("registered"):
            raise ClientError(
                "The password change could not be finished: neither key owns the vault."
            ) from exc
    rekey = meta.pending_rekey
    if rekey:  # the new data key becomes current; the old one is held until the re-key ends
        new_keys = rekey_keys_after_rotation(client, keys, rekey, new_seed, pending["newKeyDid"])
    else:
        new_keys = replace(keys, seed=new_seed, key_did=pending["newKeyDid"])
    client.vault.set_meta(
        key_did=pending["newKeyDid"],
        verifier=pending["verifier"],
        kdf=pending["kdf"],
        key_check=crypto.key_check(new_keys.data_key),
        pending_rotation=None,
        token=None,
        token_expires_at=None,
    )
    api.token = None
    client.keys = new_keys
    auth.open_session(client, api, new_seed, pending["newKeyDid"], meta.device_name)
