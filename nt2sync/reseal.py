"""Re-sealing what this device holds under a new data key and key epoch.

Two callers: the device that re-keys the vault (every row not under the new key is
re-encrypted with its revision bumped and marked for push, legacy attachments re-keyed),
and a device adopting a re-key made elsewhere (its rows are re-sealed in place: revisions,
versions and unpushed edits kept, so nothing it has not pushed is lost or pushed twice).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from chalicelib.shared import crypto
from nt2sync import keyring
from nt2sync.attachments import StagedAttachments, rekey_legacy_refs
from nt2sync.errors import TamperedItem
from nt2sync.vault import ItemRow

if TYPE_CHECKING:
    from nt2sync.engine import Client
    from nt2sync.unlock import Keys


def reseal_for_adoption(client: Client, old: Keys, new: Keys) -> None:
    """Every local row re-sealed under `new` (in the caller's transaction); recorded push
    batches are dropped (their ciphertexts are under the old key; the rows stay dirty)."""
    salt = client.salt
    held = [(old.data_key, old.epoch), *old.retired, (new.data_key, new.epoch)]
    staged: list[ItemRow] = []
    for row in client.vault.items(include_deleted=True):
        if row.ciphertext is None:
            continue
        opener = crypto.open_deletion if row.deleted else crypto.decrypt_item
        sealer = crypto.seal_deletion if row.deleted else crypto.encrypt_item
        opened = _open_with(held, opener, salt, row.id, row.ciphertext)
        row.ciphertext = sealer(new.data_key, salt, row.id, opened, epoch=new.epoch)
        staged.append(row)
    client.vault.put_items(staged)
    client.vault.drop_pending_batches()


def _open_with(
    held: list[tuple[bytes, int]], opener: Any, salt: bytes, item_id: str, ciphertext: str
) -> dict[str, Any]:
    for data_key, epoch in held:
        try:
            opened: dict[str, Any] = opener(data_key, salt, item_id, ciphertext, epoch=epoch)
        except crypto.CryptoError:
            continue
        return opened
    raise TamperedItem(f"The local copy of item {item_id} is damaged; nothing was changed.")


def reseal_for_rekey(client: Client) -> int:
    """Re-encrypt every row not sealed under the current key (and every item referencing a
    legacy attachment, whose file is re-keyed) with its revision bumped, dirty; one
    transaction. Returns how many rows changed."""
    staged: list[ItemRow] = []
    attachments = StagedAttachments()
    for row in client.vault.items(include_deleted=True):
        if row.ciphertext is None:
            continue  # a tombstone from before sealed deletions: nothing to re-key
        if row.deleted:
            record, current = keyring.open_local_deletion(client, row.id, row.ciphertext)
            if current:
                continue
            revision = max(row.revision, row.rev_floor, record["revision"]) + 1
            row.ciphertext = keyring.seal_deletion(client, row.id, {**record, "revision": revision})
        else:
            plaintext = keyring.open_local_item(client, row.id, row.ciphertext)
            current = keyring.is_current_item(client, row.id, row.ciphertext)
            refs = rekey_legacy_refs(client, row.id, plaintext["attachments"], attachments)
            if current and refs is None:
                continue
            revision = max(row.revision, row.rev_floor) + 1
            plaintext = {**plaintext, "revision": revision}
            if refs is not None:
                plaintext["attachments"] = refs
            row.ciphertext = keyring.seal_item(client, row.id, plaintext)
        row.revision = revision
        row.dirty = True
        staged.append(row)
    with client.vault.transaction():
        client.vault.put_items(staged)
        attachments.apply(client)
    return len(staged)
