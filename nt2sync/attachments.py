"""Attachments: encrypted here, kept in the vault, uploaded through presigned URLs.

An item references its attachments by id; the local `attachments` table says whether each
blob is held here and whether the server has committed it. Each new file is sealed under
its own random key, carried in the item's reference (`key`), so re-keying the vault
re-encrypts only the item; a legacy file (sealed under the data key's attachment subkey,
no `key`) is re-sealed under a new file key, under a new id, by the re-key.
"""

from __future__ import annotations

import uuid
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

from chalicelib.shared import crypto
from chalicelib.shared.codes import ErrorCode
from chalicelib.shared.encoding import EncodingError, b64url_decode, b64url_encode
from nt2sync import keyring
from nt2sync.api import Api
from nt2sync.errors import ClientError, ServerError, TamperedItem
from nt2sync.items import decrypt_row, list_items, live_row, touch, write_local
from nt2sync.report import NoProgress, Progress

if TYPE_CHECKING:
    from nt2sync.engine import Client


def add_attachment(client: Client, item_id: str, file: Path) -> str:
    """Encrypt a file under its own key, keep it locally, reference it from the item."""
    client.require_keys()
    row = live_row(client, item_id)
    data = file.read_bytes()
    attachment_id = str(uuid.uuid4())
    file_key = crypto.new_file_key()
    blob = crypto.seal_attachment(file_key, client.salt, attachment_id, data)
    sha = crypto.sha256_b64url(blob)
    plaintext = decrypt_row(client, row)
    ref = {
        "id": attachment_id,
        "name": file.name,
        "size": len(data),
        "sha256": sha,
        "key": b64url_encode(file_key),
    }
    with client.vault.transaction():
        client.vault.put_attachment(
            id=attachment_id,
            item_id=item_id,
            name=file.name,
            size=len(data),
            sha256=sha,
            blob=blob,
            committed=0,
            deleted=0,
        )
        plaintext["attachments"] = [*plaintext.get("attachments", []), ref]
        touch(client, plaintext)
        write_local(client, item_id, plaintext, row)
    return attachment_id


def attachment_refs(client: Client) -> list[dict[str, Any]]:
    """Every attachment referenced by a live item, with its local state."""
    out = []
    for item_id, plaintext in list_items(client):
        for ref in plaintext.get("attachments", []):
            row = client.vault.attachment(ref["id"])
            out.append(
                {
                    "id": ref["id"],
                    "itemId": item_id,
                    "name": ref.get("name"),
                    "size": ref.get("size"),
                    "local": bool(row is not None and row["blob"] is not None),
                    "uploaded": bool(row is not None and row["committed"]),
                }
            )
    return out


def _find_ref(client: Client, attachment_id: str) -> tuple[str, dict[str, Any]]:
    for item_id, plaintext in list_items(client):
        for ref in plaintext.get("attachments", []):
            if ref["id"] == attachment_id:
                return item_id, ref
    raise ClientError(f"No attachment with id {attachment_id}.")


def open_blob(client: Client, ref: dict[str, Any], blob: bytes) -> bytes:
    """The file inside an attachment blob: under the reference's own key, or (legacy) under
    the attachment subkey of the current or retired data key."""
    attachment_id = str(ref["id"])
    try:
        if "key" in ref:
            try:
                file_key = b64url_decode(str(ref["key"]))
            except EncodingError as exc:
                raise crypto.TamperedCiphertext("the file key is not base64url") from exc
            return crypto.open_attachment(file_key, client.salt, attachment_id, blob)
        for data_key in keyring.legacy_attachment_keys(client.require_keys()):
            try:
                return crypto.decrypt_attachment(data_key, client.salt, attachment_id, blob)
            except crypto.CryptoError:
                continue
        raise crypto.TamperedCiphertext("no key this device holds opens the attachment")
    except crypto.CryptoError as exc:
        raise TamperedItem(
            f"Attachment {attachment_id} was altered or swapped; refusing it."
        ) from exc


def _fetch_blob(client: Client, attachment_id: str) -> bytes:
    url = client.call(lambda api: api.attachment_download(attachment_id))["url"]
    blob: bytes = client.api.get_blob(url)
    return blob


def get_attachment(client: Client, attachment_id: str, out: Path) -> int:
    """Decrypt an attachment into a file (downloading it when needed)."""
    client.require_keys()
    item_id, ref = _find_ref(client, attachment_id)
    row = client.vault.attachment(attachment_id)
    blob = row["blob"] if row is not None else None
    if blob is None:
        blob = _fetch_blob(client, attachment_id)
    data = open_blob(client, ref, blob)
    if row is None:
        client.vault.put_attachment(
            id=attachment_id,
            item_id=item_id,
            name=str(ref.get("name", "")),
            size=len(data),
            sha256=crypto.sha256_b64url(blob),
            blob=blob,
            committed=1,
            deleted=0,
        )
    out.write_bytes(data)
    return len(data)


def remove_attachment(client: Client, attachment_id: str) -> None:
    """Drop an attachment from its item, locally and (when syncing) on the server."""
    item_id, _ = _find_ref(client, attachment_id)
    row = live_row(client, item_id)
    plaintext = decrypt_row(client, row)
    plaintext["attachments"] = [
        a for a in plaintext.get("attachments", []) if a["id"] != attachment_id
    ]
    touch(client, plaintext)
    with client.vault.transaction():
        write_local(client, item_id, plaintext, row)
        if client.vault.attachment(attachment_id) is not None:
            client.vault.update_attachment(attachment_id, deleted=1)
        else:
            client.vault.put_attachment(
                id=attachment_id, item_id=item_id, name="", size=0, sha256="", deleted=1
            )


def upload_attachments(client: Client, progress: Progress | None = None) -> int:
    """Upload attachments not yet committed; delete those removed here. Returns uploads."""
    progress = progress or NoProgress()
    vault = client.vault
    uploaded = 0
    for row in list(vault.conn.execute("SELECT * FROM attachments")):
        if row["deleted"]:
            client.call(partial(Api.attachment_delete, attachment_id=row["id"]))
            vault.delete_attachment_row(row["id"])
        elif not row["committed"] and row["blob"] is not None:
            blob = bytes(row["blob"])
            progress.start(f"Uploading {row['name']}", len(blob))
            try:
                ticket = client.call(
                    partial(
                        Api.attachment_upload,
                        attachment_id=row["id"],
                        size=len(blob),
                        sha256=crypto.sha256_b64url(blob),
                    )
                )
                client.api.put_blob(ticket["url"], ticket.get("headers") or {}, blob)
                client.call(partial(Api.attachment_commit, attachment_id=row["id"]))
                progress.advance(len(blob))
            finally:
                progress.stop()
            vault.update_attachment(row["id"], committed=1)
            uploaded += 1
    return uploaded


def reconcile_attachments(client: Client) -> int:
    """After (re-)enabling: re-upload local attachments the server does not hold."""
    remote = {a["id"] for a in client.call(lambda api: api.attachments())}
    for row in client.vault.attachments():
        if row["committed"] and row["id"] not in remote:
            client.vault.update_attachment(row["id"], committed=0)
    return upload_attachments(client)


class StagedAttachments:
    """Attachment rows a re-key writes in the same transaction as the items referencing them."""

    def __init__(self) -> None:
        self.new_rows: list[dict[str, Any]] = []
        self.retired: list[tuple[str, str]] = []  # (attachment id, item id)

    def apply(self, client: Client) -> None:
        """Store the re-keyed files; drop (or mark for deletion on the server) the old ones."""
        vault = client.vault
        for row in self.new_rows:
            vault.put_attachment(**row)
        for attachment_id, item_id in self.retired:
            old = vault.attachment(attachment_id)
            if old is not None and not old["committed"]:
                vault.delete_attachment_row(attachment_id)  # never reached the server
            elif old is not None:
                vault.update_attachment(attachment_id, deleted=1)
            else:
                vault.put_attachment(
                    id=attachment_id, item_id=item_id, name="", size=0, sha256="", deleted=1
                )


def rekey_legacy_refs(
    client: Client, item_id: str, refs: list[dict[str, Any]], staged: StagedAttachments
) -> list[dict[str, Any]] | None:
    """The item's attachment references with each legacy file re-sealed under a new file key
    and a new id (staged, not stored), or None when none is legacy. A legacy file neither
    held here nor on the server is left as it is, with a notice."""
    if all("key" in ref for ref in refs):
        return None
    vault = client.vault
    out: list[dict[str, Any]] = []
    changed = False
    for ref in refs:
        if "key" in ref:
            out.append(ref)
            continue
        row = vault.attachment(ref["id"])
        blob = bytes(row["blob"]) if row is not None and row["blob"] is not None else None
        if blob is None:
            if not client.meta.sync_enabled:
                raise ClientError(
                    f"Attachment {ref['id']} is not held here and sync is off: enable sync so "
                    "the re-key can download it and re-key it, then run `nt2sync password "
                    "change --resume`."
                )
            try:
                blob = _fetch_blob(client, ref["id"])
            except ServerError as exc:
                if exc.code != ErrorCode.ATTACHMENT_NOT_FOUND:
                    raise
                client.notices.append(
                    f"Attachment {ref['id']} ({ref.get('name', '')}) is neither here nor on "
                    "the server, so it could not be re-keyed; its reference was kept."
                )
                out.append(ref)
                continue
        data = open_blob(client, ref, blob)
        new_id = str(uuid.uuid4())
        file_key = crypto.new_file_key()
        sealed = crypto.seal_attachment(file_key, client.salt, new_id, data)
        sha = crypto.sha256_b64url(sealed)
        name = str(ref.get("name", ""))
        staged.new_rows.append(
            {
                "id": new_id,
                "item_id": item_id,
                "name": name,
                "size": len(data),
                "sha256": sha,
                "blob": sealed,
                "committed": 0,
                "deleted": 0,
            }
        )
        staged.retired.append((str(ref["id"]), item_id))
        out.append(
            {**ref, "id": new_id, "size": len(data), "sha256": sha, "key": b64url_encode(file_key)}
        )
        changed = True
    return out if changed else None
