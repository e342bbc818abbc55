"""Attachments: encrypted here, kept in the vault, uploaded through presigned URLs.

An item references its attachments by id; the local `attachments` table says whether each
blob is held here and whether the server has committed it.
"""

from __future__ import annotations

import uuid
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

from chalicelib.shared import crypto
from nt2sync.api import Api
from nt2sync.errors import ClientError, TamperedItem
from nt2sync.items import decrypt_row, list_items, live_row, touch, write_local
from nt2sync.report import NoProgress, Progress

if TYPE_CHECKING:
    from nt2sync.engine import Client


def add_attachment(client: Client, item_id: str, file: Path) -> str:
    """Encrypt a file, keep it locally, reference it from the item."""
    keys = client.require_keys()
    row = live_row(client, item_id)
    data = file.read_bytes()
    attachment_id = str(uuid.uuid4())
    blob = crypto.encrypt_attachment(keys.data_key, client.meta.salt, attachment_id, data)
    sha = crypto.sha256_b64url(blob)
    plaintext = decrypt_row(client, row)
    ref = {"id": attachment_id, "name": file.name, "size": len(data), "sha256": sha}
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


def get_attachment(client: Client, attachment_id: str, out: Path) -> int:
    """Decrypt an attachment into a file (downloading it when needed)."""
    keys = client.require_keys()
    item_id, ref = _find_ref(client, attachment_id)
    row = client.vault.attachment(attachment_id)
    blob = row["blob"] if row is not None else None
    if blob is None:
        url = client.call(lambda api: api.attachment_download(attachment_id))["url"]
        blob = client.api.get_blob(url)
    try:
        data = crypto.decrypt_attachment(keys.data_key, client.meta.salt, attachment_id, blob)
    except crypto.CryptoError as exc:
        raise TamperedItem(
            f"Attachment {attachment_id} was altered or swapped; refusing it."
        ) from exc
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
