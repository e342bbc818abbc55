"""Re-keying the vault (`nt2sync password change --rekey`): a new data key and key epoch.

The steps (docs/CRYPTO.md, "Re-keying"), each one resumable:
1. a new random data key K' and epoch E+1 are made; the pending re-key is recorded
   locally before anything else (K' sealed under the old key, the old key under K'), with
   the password rotation whose verifier seals K' ‖ E+1 under the new password's KEK;
2. the server rotates the key DID (the v1.2 rotate proof, as for any password change);
   from then on K' is current here and the old key is held only to read what is not yet
   re-encrypted;
3. every local item and deletion not under K' (and every item referencing a legacy
   attachment, whose file is re-sealed under a new file key) is re-encrypted with its
   revision bumped and pushed; pulled items still under the old key are re-encrypted too;
4. when a sync leaves nothing under the old key and nothing unpushed, the record and the
   old key are forgotten.
An interrupted run is finished by the next `password change`, `sync now` or
`password change --resume`, with either password: nothing it wrote is lost.
"""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING

from chalicelib.shared import crypto
from nt2sync import manifests, rotation, sync
from nt2sync.errors import ClientError
from nt2sync.report import Progress, SyncSummary
from nt2sync.reseal import reseal_for_rekey
from nt2sync.unlock import Keys

if TYPE_CHECKING:
    from nt2sync.engine import Client

MAX_ROUNDS = 8  # syncs before giving up on a server that keeps serving old-key items


def start_rekey(
    client: Client,
    new_password: str,
    *,
    iterations: int | None,
    progress: Progress | None = None,
) -> str:
    """Record a re-key under a new master password and finish it; returns the new key DID."""
    keys = client.require_keys()
    meta = client.meta
    rotation.refuse_unfinished(client)
    kdf, new_kek = rotation.new_kek_for(client, new_password, iterations)
    new_seed, new_did = crypto.key_did_from_kek(new_kek)
    new_key = crypto.new_data_key()
    epoch = keys.epoch + 1
    crypto.check_epoch(epoch)
    verifier = crypto.seal_data_key(new_kek, meta.salt, new_key, epoch=epoch)
    record = {
        "epoch": epoch,
        "oldEpoch": keys.epoch,
        "newKeyCheck": crypto.key_check(new_key),
        "next": crypto.seal_local_secret(keys.data_key, meta.salt, f"rekey/next/{epoch}", new_key),
        "retired": crypto.seal_local_secret(
            new_key, meta.salt, f"rekey/retired/{keys.epoch}", keys.data_key
        ),
    }
    if meta.sync_enabled and meta.server_url:
        pending = rotation.pending_record(client, new_seed, new_did, verifier, kdf)
        # one write: the re-key and its rotation are recorded before the server hears of them
        client.vault.set_meta(pending_rekey=record, pending_rotation=pending, retired_key=None)
        client.keys = replace(keys, rekeying=True)
    else:
        client.vault.set_meta(
            pending_rekey=record,
            key_did=new_did,
            verifier=verifier,
            kdf=kdf,
            key_check=record["newKeyCheck"],
            retired_key=None,
        )
        client.keys = Keys(new_key, new_seed, new_did, epoch, ((keys.data_key, keys.epoch),), True)
    finish_rekey(client, progress)
    return new_did


def finish_rekey(client: Client, progress: Progress | None = None) -> SyncSummary:
    """Finish a recorded re-key (idempotent): rotate, re-encrypt, push, forget the old key."""
    summary = SyncSummary()
    if not client.meta.pending_rekey:
        return summary
    if client.meta.pending_rotation:
        rotation.finish_rotation(client)
    manifests.republish_all(client)  # the old key's manifests stop opening on every device
    synced = False
    for _ in range(MAX_ROUNDS):
        changed = reseal_for_rekey(client)
        if not client.meta.sync_enabled:
            break  # nothing to push: the local vault is all under the new key
        if synced and changed == 0 and client.vault.count_dirty() == 0:
            break  # a whole sync left nothing under the old key and nothing unpushed
        summary = _merged(summary, sync.sync_now(client, progress))
        synced = True
    else:
        raise ClientError(
            "The re-key is not finished: the server keeps serving items under the old key. "
            "Run `nt2sync password change --resume` again."
        )
    keys = client.require_keys()
    client.vault.set_meta(pending_rekey=None)
    client.keys = replace(keys, retired=(), rekeying=False)
    return summary


def _merged(total: SyncSummary, one: SyncSummary) -> SyncSummary:
    total.pushed += one.pushed
    total.pulled += one.pulled
    total.conflicts += one.conflicts
    total.attachments_uploaded += one.attachments_uploaded
    total.notices = one.notices
    return total
