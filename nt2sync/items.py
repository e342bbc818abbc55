"""Local items: each one encrypted at rest, every edit a new revision marked dirty for push."""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING, Any

from chalicelib.shared import crypto, merge
from nt2sync import keyring
from nt2sync.errors import ClientError
from nt2sync.manifests import is_reserved
from nt2sync.vault import ItemRow

if TYPE_CHECKING:
    from nt2sync.engine import Client

FIELDS = merge.CONTENT_FIELDS


def decrypt_row(client: Client, row: ItemRow) -> dict[str, Any]:
    """The plaintext of a stored item (refusing a damaged one)."""
    if row.ciphertext is None:
        raise ClientError(f"Item {row.id} was deleted.")
    return keyring.open_local_item(client, row.id, row.ciphertext)


def encrypt(client: Client, item_id: str, plaintext: dict[str, Any]) -> str:
    """The ciphertext of an item, bound to its id, the vault's salt and the key epoch."""
    return keyring.seal_item(client, item_id, plaintext)


def public_view(item_id: str, plaintext: dict[str, Any]) -> dict[str, Any]:
    """The item as the CLI shows it."""
    view: dict[str, Any] = {"id": item_id}
    view.update({name: plaintext[name] for name in FIELDS})
    view["updatedAt"] = plaintext["updatedAt"]
    return view


def write_local(
    client: Client, item_id: str, plaintext: dict[str, Any], previous: ItemRow | None
) -> None:
    """Store a local edit: new revision, dirty, same server version."""
    if is_reserved(item_id):  # the client's own manifests are never user items
        raise ClientError(f"{item_id} is a reserved item id (nt2sync's own); choose another.")
    floor = previous.rev_floor if previous else 0
    revision = max(previous.revision if previous else 0, floor) + 1
    plaintext = {**plaintext, "revision": revision}
    row = ItemRow(
        id=item_id,
        version=previous.version if previous else 0,
        dirty=True,
        deleted=False,
        ciphertext=encrypt(client, item_id, plaintext),
        revision=revision,
        rev_floor=floor,
        updated_at=plaintext["updatedAt"],
    )
    client.vault.put_item(row)


def touch(client: Client, plaintext: dict[str, Any]) -> None:
    """Mark a plaintext as edited here, now (never earlier than its last edit)."""
    plaintext["updatedAt"] = max(client.clock(), plaintext["updatedAt"] + 1)
    plaintext["replicaId"] = client.meta.replica_id


def add_item(client: Client, title: str, **fields: str | None) -> str:
    """Add an item; returns its id."""
    item_id = str(uuid.uuid4())
    plaintext: dict[str, Any] = {name: "" for name in FIELDS}
    plaintext.update({k: v for k, v in fields.items() if v is not None})
    plaintext.update(
        title=title,
        updatedAt=client.clock(),
        replicaId=client.meta.replica_id,
        attachments=[],
    )
    write_local(client, item_id, plaintext, None)
    return item_id


def add_items_bulk(client: Client, entries: list[dict[str, str]]) -> list[str]:
    """Add many items in one transaction (imports, benchmarks)."""
    ids: list[str] = []
    rows: list[ItemRow] = []
    replica = client.meta.replica_id
    for entry in entries:
        item_id = str(uuid.uuid4())
        plaintext: dict[str, Any] = {name: entry.get(name, "") for name in FIELDS}
        plaintext.update(updatedAt=client.clock(), replicaId=replica, attachments=[], revision=1)
        rows.append(ItemRow(item_id, 0, True, False, encrypt(client, item_id, plaintext), 1, 0, 0))
        ids.append(item_id)
    client.vault.put_items(rows)
    return ids


def live_row(client: Client, item_id: str) -> ItemRow:
    """The stored row of an item that is not deleted."""
    row = None if is_reserved(item_id) else client.vault.get_item(item_id)
    if row is None or row.deleted:
        raise ClientError(f"No item with id {item_id}.")
    return row


def get_item(client: Client, item_id: str) -> dict[str, Any]:
    """Decrypted plaintext of a live item."""
    return decrypt_row(client, live_row(client, item_id))


def edit_item(client: Client, item_id: str, **fields: str | None) -> None:
    """Change some fields of an item."""
    row = live_row(client, item_id)
    plaintext = decrypt_row(client, row)
    plaintext.update({k: v for k, v in fields.items() if v is not None})
    touch(client, plaintext)
    write_local(client, item_id, plaintext, row)


def remove_item(client: Client, item_id: str) -> None:
    """Delete an item (a tombstone, pushed like an edit)."""
    row = live_row(client, item_id)
    revision = max(row.revision, row.rev_floor) + 1
    record = {
        "revision": revision,
        "updatedAt": client.clock(),
        "replicaId": client.meta.replica_id,
    }
    row.deleted = True
    row.dirty = True
    # Sealed (v1.2 §5): other devices accept the deletion only because it opens with the key.
    row.ciphertext = keyring.seal_deletion(client, item_id, record)
    client.vault.put_item(row)


def list_items(client: Client) -> list[tuple[str, dict[str, Any]]]:
    """(id, plaintext) of every live item, oldest first (keys and salt looked up once)."""
    keys = client.require_keys()
    data_key, salt, epoch = keys.data_key, client.salt, keys.epoch
    listed = []
    for item_id, ciphertext in client.vault.live_ciphertexts():
        try:
            plaintext = crypto.decrypt_item(data_key, salt, item_id, ciphertext, epoch=epoch)
        except crypto.CryptoError:  # sealed under the retired key while a re-key finishes
            plaintext = keyring.open_local_item(client, item_id, ciphertext)
        listed.append((item_id, plaintext))
    return listed
