"""The SDK's one entry point: `Client`, a thin facade over modules named for what they own.

    unlock       creating a vault, master password → keys, a password changed elsewhere
    items        local items, encrypted at rest
    auth         the server connection, sessions, fresh proofs
    session      authenticated calls (renewal, fatal codes)
    sync         push and pull, merging server items
    enrol        sync enable / disable / status, a new device joining
    rotation     password change (key DID rotation)
    rekey        password change with a new data key and key epoch (real key rotation)
    account      enrolled devices, Premium
    attachments  encrypted files
    backup       .nt2backup files and the recovery kit

`Client` holds the state those modules share (the vault, the keys while unlocked, the
connection); each method below is one call into them.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from chalicelib.shared import crypto
from nt2sync import (
    account,
    attachments,
    auth,
    backup,
    enrol,
    items,
    rekey,
    rotation,
    session,
    sync,
    unlock,
)
from nt2sync.errors import ClientError, UsageProblem
from nt2sync.report import NoProgress, Progress, SyncSummary
from nt2sync.unlock import Keys, now_ms
from nt2sync.vault import Meta, Vault

if TYPE_CHECKING:
    import httpx

    from nt2sync.api import Api

__all__ = ["Client", "Keys", "NoProgress", "Progress", "SyncSummary", "now_ms", "opened"]


class Client:
    """One local vault and, when sync is on, its server."""

    def __init__(
        self,
        vault: Vault,
        *,
        transport: httpx.BaseTransport | None = None,
        clock: Callable[[], int] = now_ms,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.vault = vault
        self.transport = transport
        self.clock = clock
        self.sleep = sleep
        self.keys: Keys | None = None
        self._api: Api | None = None
        self._server_override: str | None = None
        self._salt: bytes | None = None
        self.notices: list[str] = []

    # -- the vault and its keys -----------------------------------------------------------
    @classmethod
    def init(
        cls,
        path: Path,
        password: str,
        *,
        iterations: int = crypto.DEFAULT_ITERATIONS,
        device_name: str | None = None,
        **kwargs: Any,
    ) -> Client:
        """A new vault: salt, data key and keyDid made here, once."""
        if not password:
            raise UsageProblem("The master password must not be empty.")
        vault, keys = unlock.create_vault(
            path, password, iterations=iterations, device_name=device_name
        )
        return cls.unlocked(vault, keys, **kwargs)

    @classmethod
    def open(cls, path: Path, **kwargs: Any) -> Client:
        """Open an existing vault (still locked)."""
        return cls(Vault.open(path), **kwargs)

    @classmethod
    def unlocked(cls, vault: Vault, keys: Keys, **kwargs: Any) -> Client:
        """A client for a vault whose keys were just derived (init, join, restore)."""
        client = cls(vault, **kwargs)
        client.keys = keys
        return client

    def close(self) -> None:
        """Release the file and connections."""
        if self._api:
            self._api.close()
        self.vault.close()

    @property
    def meta(self) -> Meta:
        """The vault_meta row."""
        return self.vault.meta()

    @property
    def salt(self) -> bytes:
        """The vault salt (it never changes, so it is read once)."""
        if self._salt is None:
            self._salt = self.meta.salt
        return self._salt

    def unlock(self, password: str) -> Keys:
        """Derive the keys from the master password (refusing a wrong one, locally)."""
        self.keys = unlock.unlock(self, password)
        return self.keys

    def adopt_password(
        self,
        password: str,
        *,
        kit_kdf: dict[str, Any] | None = None,
        old_password: str | None = None,
    ) -> Keys:
        """Adopt the master password changed on another device (the person says so).

        kit_kdf: the KDF of a new kit, for a password changed elsewhere with raised iterations.
        old_password: this device's previous password, needed when the change was a re-key
        (to re-seal what this device holds; not needed if the client is unlocked).
        """
        self.keys = unlock.adopt_password(self, password, kit_kdf, old_password)
        return self.keys

    def require_keys(self) -> Keys:
        """The keys, or a refusal while the vault is locked."""
        if self.keys is None:
            raise ClientError("The vault is locked.")
        return self.keys

    # -- local items ----------------------------------------------------------------------
    public_view = staticmethod(items.public_view)

    def add_item(self, title: str, **fields: str | None) -> str:
        """Add an item; returns its id."""
        return items.add_item(self, title, **fields)

    def add_items_bulk(self, entries: list[dict[str, str]]) -> list[str]:
        """Add many items in one transaction (imports, benchmarks)."""
        return items.add_items_bulk(self, entries)

    def get_item(self, item_id: str) -> dict[str, Any]:
        """Decrypted plaintext of a live item."""
        return items.get_item(self, item_id)

    def edit_item(self, item_id: str, **fields: str | None) -> None:
        """Change some fields of an item."""
        items.edit_item(self, item_id, **fields)

    def remove_item(self, item_id: str) -> None:
        """Delete an item (a tombstone, pushed like an edit)."""
        items.remove_item(self, item_id)

    def list_items(self) -> list[tuple[str, dict[str, Any]]]:
        """(id, plaintext) of every live item, oldest first."""
        return items.list_items(self)

    # -- the server -----------------------------------------------------------------------
    @property
    def api(self) -> Api:
        """The API client for the vault's server."""
        return auth.connection(self)

    def use_server(self, server: str) -> None:
        """Talk to this server for the command's length without enabling sync (Premium first)."""
        auth.use_server(self, server)

    def call(self, fn: Callable[[Api], Any]) -> Any:
        """Run one authenticated request; renew an expired session once; map fatal codes."""
        return session.call(self, fn)

    # -- sync -----------------------------------------------------------------------------
    def sync_now(self, progress: Progress | None = None) -> SyncSummary:
        """Push, pull, push what the pull produced; upload pending attachments (finishing an
        interrupted re-key first)."""
        if self.meta.pending_rekey:
            return rekey.finish_rekey(self, progress)
        return sync.sync_now(self, progress)

    def push(self, summary: SyncSummary, progress: Progress) -> None:
        """Push every dirty item, ≤ 500 a batch, each batchId stored before sending."""
        sync.push(self, summary, progress)

    def pull(self, summary: SyncSummary, progress: Progress) -> None:
        """Pull pages until hasMore is false; each page is applied in one transaction."""
        sync.pull(self, summary, progress)

    # -- enrolment ------------------------------------------------------------------------
    def enable(
        self, server: str, *, device_name: str | None = None, progress: Progress | None = None
    ) -> SyncSummary:
        """Authenticate, register with the existing salt, push everything, pull."""
        return enrol.enable(self, server, device_name=device_name, progress=progress)

    def disable(self) -> dict[str, Any]:
        """Stop syncing here and end the session; the server keeps the vault."""
        return enrol.disable(self)

    def status(self, *, offline: bool = False) -> dict[str, Any]:
        """Local and (when sync is on) remote state."""
        return enrol.status(self, offline=offline)

    @classmethod
    def join(
        cls,
        path: Path,
        server: str,
        key_did: str,
        password: str,
        *,
        kit_salt_hex: str | None = None,
        kit_kdf: dict[str, Any] | None = None,
        kit: dict[str, Any] | None = None,
        device_name: str | None = None,
        progress: Progress | None = None,
        **kwargs: Any,
    ) -> tuple[Client, SyncSummary]:
        """A new device: bootstrap, check everything, then pull the vault.

        kit: a whole setup kit; its MAC is checked with the password before any request.
        """
        return enrol.join(
            cls,
            path,
            server,
            key_did,
            password,
            kit_salt_hex=kit_salt_hex,
            kit_kdf=kit_kdf,
            kit=kit,
            device_name=device_name,
            progress=progress,
            **kwargs,
        )

    # -- password change ------------------------------------------------------------------
    def change_password(self, new_password: str, *, iterations: int | None = None) -> str:
        """Re-seal the data key under a new password; rotate the keyDid on the server."""
        return rotation.change_password(self, new_password, iterations=iterations)

    def rekey(
        self,
        new_password: str,
        *,
        iterations: int | None = None,
        progress: Progress | None = None,
    ) -> str:
        """A new master password and a new data key and epoch: every item re-encrypted."""
        return rekey.start_rekey(self, new_password, iterations=iterations, progress=progress)

    def finish_rekey(self, progress: Progress | None = None) -> SyncSummary:
        """Finish an interrupted re-key (nothing to do when there is none)."""
        return rekey.finish_rekey(self, progress)

    # -- devices and Premium --------------------------------------------------------------
    def devices(self) -> list[dict[str, Any]]:
        """Enrolled devices."""
        return account.devices(self)

    def rename_device(self, replica_id: str, name: str) -> dict[str, Any]:
        """Rename a device."""
        return account.rename_device(self, replica_id, name)

    def revoke_device(self, replica_id: str) -> dict[str, Any]:
        """Revoke a device."""
        return account.revoke_device(self, replica_id)

    def premium(self, action: str, code: str | None = None) -> dict[str, Any]:
        """premium status | redeem | checkout."""
        return account.premium(self, action, code)

    # -- attachments ----------------------------------------------------------------------
    def add_attachment(self, item_id: str, file: Path) -> str:
        """Encrypt a file, keep it locally, reference it from the item."""
        return attachments.add_attachment(self, item_id, file)

    def attachment_refs(self) -> list[dict[str, Any]]:
        """Every attachment referenced by a live item, with its local state."""
        return attachments.attachment_refs(self)

    def get_attachment(self, attachment_id: str, out: Path) -> int:
        """Decrypt an attachment into a file (downloading it when needed)."""
        return attachments.get_attachment(self, attachment_id, out)

    def remove_attachment(self, attachment_id: str) -> None:
        """Drop an attachment from its item, locally and (when syncing) on the server."""
        attachments.remove_attachment(self, attachment_id)

    def upload_attachments(self, progress: Progress | None = None) -> int:
        """Upload attachments not yet committed; delete those removed here. Returns uploads."""
        return attachments.upload_attachments(self, progress)

    def reconcile_attachments(self) -> int:
        """After (re-)enabling: re-upload local attachments the server does not hold."""
        return attachments.reconcile_attachments(self)

    # -- backup and kit -------------------------------------------------------------------
    def export_backup(self, path: Path) -> int:
        """Write an encrypted .nt2backup of every live item and attachment; returns items."""
        return backup.export_backup(self, path)

    read_backup = staticmethod(backup.read_backup)

    @classmethod
    def import_new(
        cls, path: Path, backup_file: Path, password: str, **kwargs: Any
    ) -> tuple[Client, int]:
        """Restore a backup into a path with no vault (sync off until enabled)."""
        return backup.import_new(cls, path, backup_file, password, **kwargs)

    def import_into(
        self, backup_file: Path, password: str, *, restore_deleted: bool = False
    ) -> int:
        """Merge a backup of this same vault by id, never over a newer local edit; local
        deletions stay unless restore_deleted."""
        return backup.import_into(self, backup_file, password, restore_deleted=restore_deleted)

    def kit(self) -> dict[str, Any]:
        """Setup/recovery kit with its MAC (needs the vault unlocked)."""
        return backup.kit(self)


@contextmanager
def opened(path: Path, **kwargs: Any) -> Iterator[Client]:
    """Open a vault for the length of a block."""
    client = Client.open(path, **kwargs)
    try:
        yield client
    finally:
        client.close()
