"""Password change: the data key re-sealed under a new password, the key DID rotated.

The rotation is recorded in the vault before the server hears of it, so a crash half-way
is finished by the next command that talks to the server (`finish_rotation` is idempotent).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

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
    if meta.pending_rotation:
        raise ClientError("A password change is still pending; run `nt2sync sync now` first.")
    if not new_password:
        raise UsageProblem("The new master password must not be empty.")
    current = crypto.check_kdf(meta.kdf)
    target = current if iterations is None else iterations
    if target < current:
        raise UsageProblem(f"--iterations can only go up (now {current}).")
    kdf = crypto.kdf_params(target)
    new_kek = crypto.derive_kek(new_password, meta.salt, target)
    new_seed, new_did = crypto.key_did_from_kek(new_kek)
    verifier = crypto.seal_data_key(new_kek, meta.salt, keys.data_key)
    if not (meta.sync_enabled and meta.server_url):
        client.vault.set_meta(key_did=new_did, verifier=verifier, kdf=kdf)
        client.keys = Keys(keys.data_key, new_seed, new_did)
        return new_did
    pending = {
        "oldKeyDid": keys.key_did,
        "newKeyDid": new_did,
        "verifier": verifier,
        "kdf": kdf,
        "oldSeed": crypto.seal_local_secret(keys.data_key, meta.salt, "oldSeed", keys.seed),
        "newSeed": crypto.seal_local_secret(keys.data_key, meta.salt, "newSeed", new_seed),
    }
    client.vault.set_meta(pending_rotation=pending)  # recorded before the server hears of it
    finish_rotation(client)
    return new_did


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
    client.vault.set_meta(
        key_did=pending["newKeyDid"],
        verifier=pending["verifier"],
        kdf=pending["kdf"],
        pending_rotation=None,
        token=None,
        token_expires_at=None,
    )
    api.token = None
    client.keys = Keys(keys.data_key, new_seed, pending["newKeyDid"])
    auth.open_session(client, api, new_seed, pending["newKeyDid"], meta.device_name)
