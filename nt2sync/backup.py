"""Encrypted .nt2backup files (export, restore, merge) and the setup/recovery kit.

A backup opens with the master password it was made under; importing it merges by item id,
never overwrites a newer local edit, and keeps a local deletion unless asked to restore it.
Its clear header (salt, kdf, keyDid, verifier, createdAt) is bound into the payload's
associated data (backup version 2): a header moved onto another payload does not open.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from chalicelib.shared import crypto, merge
from chalicelib.shared.encoding import b64url_decode, b64url_encode, hex_decode
from nt2sync.errors import ClientError, TamperedItem, WrongPassword
from nt2sync.items import decrypt_row, write_local
from nt2sync.manifests import is_reserved
from nt2sync.unlock import Keys, new_replica_id, now_ms
from nt2sync.vault import Vault

if TYPE_CHECKING:
    from nt2sync.engine import Client


def kit(client: Client) -> dict[str, Any]:
    """Setup/recovery kit: no secret in it, but with the master password it opens the vault;
    its MAC (keyed from the password) proves at `join` that nobody changed where it points."""
    meta = client.meta
    keys = client.require_keys()
    data: dict[str, Any] = {
        "server": meta.server_url,
        "keyDid": meta.key_did,
        "kdf": meta.kdf,
        "saltHex": meta.salt_hex,
    }
    data["mac"] = crypto.kit_mac(keys.seed, data)
    return data


def export_backup(client: Client, path: Path) -> int:
    """Write an encrypted .nt2backup of every live item and attachment; returns items."""
    keys = client.require_keys()
    meta = client.meta
    items = [
        {"id": row.id, "ciphertext": row.ciphertext, "revision": row.revision}
        for row in client.vault.items()
    ]
    attachments = [
        {
            "id": r["id"],
            "itemId": r["item_id"],
            "name": r["name"],
            "blob": b64url_encode(r["blob"]),
        }
        for r in client.vault.attachments()
        if r["blob"] is not None
    ]
    payload = json.dumps({"items": items, "attachments": attachments}).encode()
    doc: dict[str, Any] = {
        "format": "nt2backup",
        "formatVersion": crypto.FORMAT_VERSION,
        "backupVersion": BACKUP_VERSION,
        "kdf": meta.kdf,
        "saltHex": meta.salt_hex,
        "keyDid": meta.key_did,
        "verifier": meta.verifier,
        "createdAt": client.clock(),
    }
    doc["payload"] = crypto.seal_local_secret(keys.data_key, meta.salt, _payload_name(doc), payload)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(doc))
    tmp.replace(path)
    return len(items)


def read_backup(path: Path, password: str) -> tuple[dict[str, Any], bytes, dict[str, Any]]:
    """(header, data key, payload) of a backup file, opened with its password; the header's
    `epoch` is set to the key epoch its verifier seals."""
    try:
        doc = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise ClientError(f"{path} is not a readable .nt2backup file.") from exc
    if not isinstance(doc, dict) or doc.get("format") != "nt2backup":
        raise ClientError(f"{path} is not a .nt2backup file.")
    if doc.get("formatVersion") != crypto.FORMAT_VERSION:
        raise ClientError(f"{path} has a backup format this client does not know.")
    salt = hex_decode(doc["saltHex"])
    kek = crypto.derive_kek(password, salt, crypto.check_kdf(doc["kdf"]))
    try:
        data_key, epoch = crypto.open_verifier_epoch(kek, salt, doc["verifier"])
    except crypto.CryptoError as exc:
        raise WrongPassword(
            "The master password does not open this backup (it opens with the password it "
            "was made under)."
        ) from exc
    try:
        payload = crypto.open_local_secret(data_key, salt, _payload_name(doc), doc["payload"])
    except crypto.CryptoError as exc:
        raise TamperedItem(
            f"{path} was altered: its header does not belong to its contents; nothing was imported."
        ) from exc
    return {**doc, "epoch": epoch}, data_key, json.loads(payload)


BACKUP_VERSION = 2
HEADER_FIELDS: tuple[str, ...] = (
    "format",
    "formatVersion",
    "backupVersion",
    "kdf",
    "saltHex",
    "keyDid",
    "verifier",
    "createdAt",
)


def _payload_name(doc: dict[str, Any]) -> str:
    """The associated-data name of the payload: version 2 binds the whole clear header; a
    version 1 file (no backupVersion) was sealed as "backup" with nothing bound."""
    if doc.get("backupVersion") is None:
        return "backup"
    header = {name: doc.get(name) for name in HEADER_FIELDS}
    canonical = json.dumps(header, sort_keys=True, separators=(",", ":")).encode("utf-8")
    return "backup/" + hashlib.sha256(canonical).hexdigest()


def import_new(
    cls: type[Client], path: Path, backup: Path, password: str, **kwargs: Any
) -> tuple[Client, int]:
    """Restore a backup into a path with no vault (sync off until enabled)."""
    doc, data_key, payload = read_backup(backup, password)
    salt = bytes.fromhex(doc["saltHex"])
    kek = crypto.derive_kek(password, salt, crypto.check_kdf(doc["kdf"]))
    seed, key_did = crypto.key_did_from_kek(kek)
    vault = Vault.create(
        path,
        salt_hex=doc["saltHex"],
        kdf=doc["kdf"],
        key_did=key_did,
        verifier=doc["verifier"],
        key_check=crypto.key_check(data_key),
        replica_id=new_replica_id(),
        created_at=now_ms(),
    )
    client = cls.unlocked(vault, Keys(data_key, seed, key_did, doc["epoch"]), **kwargs)
    return client, _merge_backup(client, payload, (data_key, doc["epoch"]))


def import_into(
    client: Client, backup: Path, password: str, *, restore_deleted: bool = False
) -> int:
    """Merge a backup of this same vault by id, never over a newer local edit; an item
    deleted here stays deleted unless restore_deleted."""
    keys = client.require_keys()
    doc, data_key, payload = read_backup(backup, password)
    if doc["saltHex"] != client.meta.salt_hex:
        raise ClientError("This backup belongs to another vault; nothing was imported.")
    # Only a key this device holds (current, or retired during a re-key) is trusted: a backup
    # made under a key the vault re-keyed away from could be the work of whoever still knows
    # the old password (the thief the re-key was for).
    held = [(keys.data_key, keys.epoch), *keys.retired]
    if not any(crypto.key_check(data_key) == crypto.key_check(key) for key, _ in held):
        if doc["epoch"] >= keys.epoch:
            raise ClientError("This backup belongs to another vault; nothing was imported.")
        raise ClientError(
            "This backup was made under an earlier key of this vault (before it was re-keyed), "
            "which this device no longer holds, so its items cannot be told from forgeries; "
            "nothing was imported."
        )
    return _merge_backup(client, payload, (data_key, doc["epoch"]), restore_deleted=restore_deleted)


def _merge_backup(
    client: Client,
    payload: dict[str, Any],
    sealed_under: tuple[bytes, int],
    *,
    restore_deleted: bool = False,
) -> int:
    """Merge the backup's items (opened under the key and epoch it was made with) by id;
    whatever is written is sealed under the current key."""
    data_key, epoch = sealed_under
    vault = client.vault
    salt = client.meta.salt
    changed = 0
    with vault.transaction():
        for entry in payload.get("items", []):
            if is_reserved(str(entry.get("id"))):
                continue  # a manifest is never a user item (a crafted backup): not imported
            try:
                theirs = crypto.decrypt_item(
                    data_key, salt, entry["id"], entry["ciphertext"], epoch=epoch
                )
            except crypto.CryptoError as exc:
                raise TamperedItem(f"Item {entry['id']} in the backup is damaged.") from exc
            local = vault.get_item(entry["id"])
            if local is not None and local.deleted and not restore_deleted:
                continue  # deleted here after the backup was made: the deletion stands
            if local is not None and not local.deleted:
                mine = decrypt_row(client, local)
                if merge.same_content(mine, theirs) or mine["updatedAt"] >= theirs["updatedAt"]:
                    continue
            theirs["replicaId"] = client.meta.replica_id
            write_local(client, entry["id"], theirs, local)
            changed += 1
        for att in payload.get("attachments", []):
            if vault.attachment(att["id"]) is None:
                blob = b64url_decode(att["blob"])
                vault.put_attachment(
                    id=att["id"],
                    item_id=att["itemId"],
                    name=att["name"],
                    size=len(blob),
                    sha256=crypto.sha256_b64url(blob),
                    blob=blob,
                    committed=0,
                    deleted=0,
                )
    return changed
