"""The sync engine: unlock, local items, enable/sync/disable, join, rotation, attachments."""

from __future__ import annotations

import json
import secrets
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any, Protocol

import httpx

from chalicelib.shared import crypto, merge
from chalicelib.shared.encoding import EncodingError, b64url_encode, hex_decode
from chalicelib.shared.messages import confirm_message, rotate_message, session_message, sign
from nt2sync.api import Api, normalize_server
from nt2sync.errors import (
    AudienceMismatch,
    BadVerifier,
    ClientError,
    DeviceRevoked,
    PasswordChangedElsewhere,
    RollbackRefused,
    SaltMismatch,
    ServerError,
    TamperedItem,
    UsageProblem,
    WeakKdfOffered,
    WrongPassword,
)
from nt2sync.vault import ItemRow, Meta, Vault

PUSH_BATCH = 500
PULL_LIMIT = 1000
SESSION_MARGIN_MS = 120_000
FIELDS = merge.CONTENT_FIELDS


def now_ms() -> int:
    """Wall-clock time in epoch milliseconds."""
    return int(time.time() * 1000)


class Progress(Protocol):
    """What the engine reports long work to (the CLI draws a rich progress bar)."""

    def start(self, label: str, total: int | None) -> None: ...
    def advance(self, n: int) -> None: ...
    def stop(self) -> None: ...


class NoProgress:
    """Progress that shows nothing."""

    def start(self, label: str, total: int | None) -> None:
        """Ignore."""

    def advance(self, n: int) -> None:
        """Ignore."""

    def stop(self) -> None:
        """Ignore."""


@dataclass
class Keys:
    """Secrets held in memory while a command runs."""

    data_key: bytes
    seed: bytes
    key_did: str


@dataclass
class SyncSummary:
    """What one sync did."""

    pushed: int = 0
    pulled: int = 0
    conflicts: int = 0
    attachments_uploaded: int = 0
    notices: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        """JSON form."""
        return {
            "pushed": self.pushed,
            "pulled": self.pulled,
            "conflicts": self.conflicts,
            "attachmentsUploaded": self.attachments_uploaded,
        }


def new_replica_id() -> str:
    """A random replicaId (PROTOCOL §2 pattern)."""
    return "r-" + secrets.token_hex(8)


def _refuse_weak(kdf: Any) -> int:
    try:
        return crypto.check_kdf(kdf)
    except crypto.WeakKdf as exc:
        raise WeakKdfOffered(
            f"The server offered weak key-derivation parameters ({exc}); refusing to use them."
        ) from exc


def check_audience(api: Api) -> None:
    """Refuse a --server URL that is not the API's public URL (PROTOCOL §3)."""
    health = api.health()
    audience = health.get("audience") if isinstance(health, dict) else None
    if audience != api.audience:
        raise AudienceMismatch(
            f"The server says its public URL is {audience!r}, not {api.audience!r}; "
            "use exactly that URL with --server."
        )


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

    # == creating and unlocking ==============================================================
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
        salt = crypto.new_salt()
        data_key = crypto.new_data_key()
        kek = crypto.derive_kek(password, salt, iterations)
        seed, key_did = crypto.key_did_from_kek(kek)
        vault = Vault.create(
            path,
            salt_hex=salt.hex(),
            kdf=crypto.kdf_params(iterations),
            key_did=key_did,
            verifier=crypto.seal_data_key(kek, salt, data_key),
            key_check=crypto.key_check(data_key),
            replica_id=new_replica_id(),
            device_name=device_name,
            created_at=now_ms(),
        )
        client = cls(vault, **kwargs)
        client.keys = Keys(data_key, seed, key_did)
        return client

    @classmethod
    def open(cls, path: Path, **kwargs: Any) -> Client:
        """Open an existing vault (still locked)."""
        return cls(Vault.open(path), **kwargs)

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

    def unlock(self, password: str, *, kit_kdf: dict[str, Any] | None = None) -> Keys:
        """Derive the keys from the master password (refusing a wrong one).

        kit_kdf: the KDF of a new kit, for a password changed elsewhere with raised iterations.
        """
        meta = self.meta
        kek = crypto.derive_kek(password, meta.salt, crypto.check_kdf(meta.kdf))
        try:
            data_key = crypto.open_verifier(kek, meta.salt, meta.verifier)
            seed, key_did = crypto.key_did_from_kek(kek)
        except crypto.VerifierMismatch:
            pending = meta.pending_rotation
            if pending:
                kek = crypto.derive_kek(password, meta.salt, crypto.check_kdf(pending["kdf"]))
                try:
                    data_key = crypto.open_verifier(kek, meta.salt, pending["verifier"])
                except crypto.VerifierMismatch:
                    raise WrongPassword("The master password is wrong for this vault.") from None
                seed, key_did = crypto.key_did_from_kek(kek)
            elif meta.sync_enabled and meta.server_url:
                if kit_kdf is not None:
                    iterations = _refuse_weak(kit_kdf)
                    if iterations < crypto.check_kdf(meta.kdf):
                        raise WeakKdfOffered(
                            "The kit lowers the key-derivation iterations; refusing it."
                        ) from None
                    kek = crypto.derive_kek(password, meta.salt, iterations)
                self.keys = self._adopt_rotation(kek)
                return self.keys
            else:
                raise WrongPassword("The master password is wrong for this vault.") from None
        if crypto.key_check(data_key) != meta.key_check:
            raise WrongPassword("The master password opens a different vault's key.")
        if meta.pending_rotation:  # keep using the current (old) key until the server agrees
            seed = self._pending_secret(data_key, "oldSeed")
            key_did = meta.pending_rotation["oldKeyDid"]
        self.keys = Keys(data_key, seed, key_did)
        return self.keys

    def _require_keys(self) -> Keys:
        if self.keys is None:
            raise ClientError("The vault is locked.")
        return self.keys

    def _pending_secret(self, data_key: bytes, name: str) -> bytes:
        pending = self.meta.pending_rotation or {}
        return crypto.open_local_secret(data_key, self.meta.salt, name, pending[name])

    def _adopt_rotation(self, kek: bytes) -> Keys:
        """The password was changed on another device: check the new key through bootstrap."""
        meta = self.meta
        seed, key_did = crypto.key_did_from_kek(kek)
        api = self.api
        try:
            boot = api.bootstrap(key_did)
        except ServerError as exc:
            if exc.code == "vault_not_found":
                raise WrongPassword("The master password is wrong for this vault.") from exc
            raise
        if boot.get("saltHex") != meta.salt_hex:
            raise SaltMismatch(
                "The server names another salt for this vault than the one it was made with; "
                "refusing to use it."
            )
        if _refuse_weak(boot.get("kdf")) < crypto.check_kdf(meta.kdf):
            raise WeakKdfOffered(
                "The server offered weaker key-derivation parameters than this vault's; refusing."
            )
        try:
            data_key = crypto.open_verifier(kek, meta.salt, str(boot.get("verifier") or ""))
        except crypto.VerifierMismatch as exc:
            raise BadVerifier(
                "The server's verifier does not open with this password although the key DID "
                "matches: the server sent a wrong verifier."
            ) from exc
        if crypto.key_check(data_key) != meta.key_check:
            raise BadVerifier(
                "The server's verifier holds another data key than this vault's; refusing it."
            )
        self.vault.set_meta(
            key_did=key_did,
            verifier=boot["verifier"],
            kdf=boot["kdf"],
            token=None,
            token_expires_at=None,
        )
        self.notices.append("The master password was changed on another device; now using it.")
        return Keys(data_key, seed, key_did)

    # == local items =========================================================================
    def _decrypt_row(self, row: ItemRow) -> dict[str, Any]:
        keys = self._require_keys()
        if row.ciphertext is None:
            raise ClientError(f"Item {row.id} was deleted.")
        try:
            return crypto.decrypt_item(keys.data_key, self.salt, row.id, row.ciphertext)
        except crypto.CryptoError as exc:
            raise TamperedItem(f"The local copy of item {row.id} is damaged.") from exc

    def _encrypt(self, item_id: str, plaintext: dict[str, Any]) -> str:
        keys = self._require_keys()
        return crypto.encrypt_item(keys.data_key, self.salt, item_id, plaintext)

    @staticmethod
    def public_view(item_id: str, plaintext: dict[str, Any]) -> dict[str, Any]:
        """The item as the CLI shows it."""
        view: dict[str, Any] = {"id": item_id}
        view.update({name: plaintext[name] for name in FIELDS})
        view["updatedAt"] = plaintext["updatedAt"]
        return view

    def _write_local(
        self, item_id: str, plaintext: dict[str, Any], previous: ItemRow | None
    ) -> None:
        """Store a local edit: new revision, dirty, same server version."""
        floor = previous.rev_floor if previous else 0
        revision = max(previous.revision if previous else 0, floor) + 1
        plaintext = {**plaintext, "revision": revision}
        row = ItemRow(
            id=item_id,
            version=previous.version if previous else 0,
            dirty=True,
            deleted=False,
            ciphertext=self._encrypt(item_id, plaintext),
            revision=revision,
            rev_floor=floor,
            updated_at=plaintext["updatedAt"],
        )
        self.vault.put_item(row)

    def add_item(self, title: str, **fields: str | None) -> str:
        """Add an item; returns its id."""
        item_id = str(uuid.uuid4())
        plaintext: dict[str, Any] = {name: "" for name in FIELDS}
        plaintext.update({k: v for k, v in fields.items() if v is not None})
        plaintext.update(
            title=title,
            updatedAt=self.clock(),
            replicaId=self.meta.replica_id,
            attachments=[],
        )
        self._write_local(item_id, plaintext, None)
        return item_id

    def add_items_bulk(self, entries: list[dict[str, str]]) -> list[str]:
        """Add many items in one transaction (imports, benchmarks)."""
        ids: list[str] = []
        rows: list[ItemRow] = []
        replica = self.meta.replica_id
        for entry in entries:
            item_id = str(uuid.uuid4())
            plaintext: dict[str, Any] = {name: entry.get(name, "") for name in FIELDS}
            plaintext.update(updatedAt=self.clock(), replicaId=replica, attachments=[], revision=1)
            rows.append(
                ItemRow(item_id, 0, True, False, self._encrypt(item_id, plaintext), 1, 0, 0)
            )
            ids.append(item_id)
        self.vault.put_items(rows)
        return ids

    def _live_row(self, item_id: str) -> ItemRow:
        row = self.vault.get_item(item_id)
        if row is None or row.deleted:
            raise ClientError(f"No item with id {item_id}.")
        return row

    def get_item(self, item_id: str) -> dict[str, Any]:
        """Decrypted plaintext of a live item."""
        return self._decrypt_row(self._live_row(item_id))

    def edit_item(self, item_id: str, **fields: str | None) -> None:
        """Change some fields of an item."""
        row = self._live_row(item_id)
        plaintext = self._decrypt_row(row)
        plaintext.update({k: v for k, v in fields.items() if v is not None})
        plaintext.update(updatedAt=max(self.clock(), plaintext["updatedAt"] + 1))
        plaintext["replicaId"] = self.meta.replica_id
        self._write_local(item_id, plaintext, row)

    def remove_item(self, item_id: str) -> None:
        """Delete an item (a tombstone, pushed like an edit)."""
        row = self._live_row(item_id)
        row.deleted = True
        row.dirty = True
        row.ciphertext = None
        self.vault.put_item(row)

    def list_items(self) -> list[tuple[str, dict[str, Any]]]:
        """(id, plaintext) of every live item, oldest first."""
        return [(row.id, self._decrypt_row(row)) for row in self.vault.items()]

    # == server plumbing =====================================================================
    @property
    def api(self) -> Api:
        """The API client for the vault's server."""
        server = self.meta.server_url or self._server_override
        if not server:
            raise ClientError("Cloud sync is not enabled; run `nt2sync sync enable --server URL`.")
        if self._api is None or self._api.audience != server:
            self._api = Api(server, transport=self.transport, sleep=self.sleep)
        return self._api

    def use_server(self, server: str) -> None:
        """Talk to this server for the command's length without enabling sync (Premium first)."""
        meta = self.meta
        normalized = normalize_server(server)
        if meta.server_url and meta.server_url != normalized:
            raise UsageProblem(f"This vault syncs with {meta.server_url}, not {normalized}.")
        if not meta.server_url:
            self._server_override = normalized
            self._api = Api(normalized, transport=self.transport, sleep=self.sleep)
            keys = self._require_keys()
            self._open_session(self._api, keys.seed, keys.key_did, meta.device_name, persist=False)

    def _open_session(
        self,
        api: Api,
        seed: bytes,
        key_did: str,
        device_name: str | None,
        *,
        persist: bool = True,
    ) -> dict[str, Any]:
        replica = self.meta.replica_id
        challenge = api.challenge(key_did)
        nonce = challenge["nonce"]
        signature = b64url_encode(
            sign(seed, session_message(api.audience, key_did, replica, nonce))
        )
        try:
            session = api.open_session(key_did, replica, nonce, signature, device_name)
        except ServerError as exc:
            if exc.code == "device_revoked":
                raise self._revoked() from exc
            if exc.code == "device_limit":
                raise ClientError(
                    "This vault already has 100 active devices; revoke one on another device "
                    "(`nt2sync devices revoke REPLICA_ID`), then run this again."
                ) from exc
            raise
        api.token = session["token"]
        if persist and key_did == self.meta.key_did:
            self.vault.set_meta(token=session["token"], token_expires_at=session["expiresAt"])
        return session  # type: ignore[no-any-return]

    @staticmethod
    def _proof(api: Api, seed: bytes, key_did: str, action: str, target: str) -> dict[str, str]:
        """§3: a fresh proof that this device holds key_did now, for one action on one target."""
        nonce = api.challenge(key_did)["nonce"]
        message = confirm_message(api.audience, key_did, action, target, nonce)
        return {"nonce": nonce, "signature": b64url_encode(sign(seed, message))}

    def _revoked(self) -> DeviceRevoked:
        self.vault.set_meta(sync_enabled=0, token=None, token_expires_at=None)
        return DeviceRevoked(
            "This device was revoked from the vault's enrolled devices; sync is stopped here."
        )

    def _ensure_session(self) -> Api:
        api = self.api
        meta = self.meta
        if meta.pending_rotation:
            self._finish_rotation()
            meta = self.meta
        if api.token is None:
            if meta.token and (meta.token_expires_at or 0) > self.clock() + SESSION_MARGIN_MS:
                api.token = meta.token
            else:
                keys = self._require_keys()
                self._open_session(api, keys.seed, keys.key_did, meta.device_name)
        return api

    def call(self, fn: Callable[[Api], Any]) -> Any:
        """Run one authenticated request; renew an expired session once; map fatal codes."""
        api = self._ensure_session()
        try:
            return fn(api)
        except ServerError as exc:
            if exc.status == 401 and exc.code in ("session_expired", "unauthorized"):
                keys = self._require_keys()
                self._open_session(api, keys.seed, keys.key_did, self.meta.device_name)
                try:
                    return fn(api)
                except ServerError as again:
                    self._map_fatal(again)
                    raise
            self._map_fatal(exc)
            raise

    def _map_fatal(self, exc: ServerError) -> None:
        if exc.code in ("session_revoked", "device_revoked"):
            raise self._revoked() from exc
        if exc.code == "vault_not_found" and self.meta.sync_enabled:
            raise PasswordChangedElsewhere(
                "The master password was changed on another device; run this again with the "
                "new master password in NT2_PASSWORD."
            ) from exc

    # == remote item checks ==================================================================
    def _verify_remote(self, remote: dict[str, Any], local: ItemRow | None) -> dict[str, Any]:
        """Decrypt a server item and refuse tampering and rollback."""
        keys = self._require_keys()
        item_id = remote["id"]
        try:
            plaintext = crypto.decrypt_item(
                keys.data_key, self.salt, item_id, remote["ciphertext"] or ""
            )
        except crypto.UnsupportedFormat as exc:
            raise TamperedItem(
                f"Item {item_id} from the server has a format this client does not know; "
                "update nt2sync. Nothing was changed locally."
            ) from exc
        except crypto.CryptoError as exc:
            raise TamperedItem(
                f"The server sent item {item_id} altered, swapped or from another vault; "
                "refusing it. Nothing was changed locally."
            ) from exc
        floor = local.rev_floor if local else 0
        if plaintext["revision"] < floor:
            raise RollbackRefused(
                f"The server replayed an older version of item {item_id} (revision "
                f"{plaintext['revision']}, this device has seen {floor}); refusing it. "
                "Nothing was changed locally."
            )
        return plaintext

    def _clean_row(self, remote: dict[str, Any], plaintext: dict[str, Any]) -> ItemRow:
        return ItemRow(
            id=remote["id"],
            version=int(remote["version"]),
            dirty=False,
            deleted=False,
            ciphertext=remote["ciphertext"],
            revision=plaintext["revision"],
            rev_floor=plaintext["revision"],
            updated_at=plaintext["updatedAt"],
        )

    def _new_copy(self, plaintext: dict[str, Any]) -> None:
        copy = merge.conflicted_copy(
            plaintext, now_ms=self.clock(), replica_id=self.meta.replica_id
        )
        self._write_local(str(uuid.uuid4()), copy, None)

    def _apply_remote(
        self, remote: dict[str, Any], plaintext: dict[str, Any] | None, local: ItemRow | None
    ) -> int:
        """Merge one server item into the local vault (inside a transaction); returns conflicts."""
        version = int(remote["version"])
        if local is not None and version <= local.version:
            return 0  # already held (our own write coming back, or an older state)
        if remote["deleted"]:
            seen = max(local.revision, local.rev_floor) if local else 0
            tomb = ItemRow(remote["id"], version, False, True, None, seen, seen + 1, 0)
            conflicts = 0
            if local is not None and local.dirty and not local.deleted:
                self._new_copy(self._decrypt_row(local))  # an unpushed edit survives
                conflicts = 1
            self.vault.put_item(tomb)
            return conflicts
        assert plaintext is not None
        if local is None or not local.dirty or local.deleted:
            self.vault.put_item(self._clean_row(remote, plaintext))
            return 0
        mine = self._decrypt_row(local)
        decision = merge.resolve_live(mine, plaintext)
        if decision.keep == "remote":
            self.vault.put_item(self._clean_row(remote, plaintext))
            if decision.copy == "local":
                self._new_copy(mine)
                return 1
            return 0
        kept = {**mine, "revision": decision.next_revision}
        self.vault.put_item(
            ItemRow(
                id=local.id,
                version=version,
                dirty=True,
                deleted=False,
                ciphertext=self._encrypt(local.id, kept),
                revision=decision.next_revision,
                rev_floor=plaintext["revision"],
                updated_at=kept["updatedAt"],
            )
        )
        self._new_copy(plaintext)
        return 1

    # == push / pull =========================================================================
    def push(self, summary: SyncSummary, progress: Progress) -> None:
        """Push every dirty item, ≤ 500 a batch, each batchId stored before sending."""
        total = self.vault.count_dirty()
        if total == 0 and self.vault.pending_batch() is None:
            return
        progress.start("Pushing", total)
        rounds = 0
        try:
            while True:
                rounds += 1
                if rounds > total // PUSH_BATCH + 50:
                    raise ClientError("Sync keeps conflicting with another device; try again.")
                pending = self.vault.pending_batch()
                if pending is None:
                    rows = self.vault.dirty_items(PUSH_BATCH)
                    if not rows:
                        return
                    items = [_wire_item(r) for r in rows]
                    batch_id = "b-" + uuid.uuid4().hex
                    self.vault.save_pending_batch(batch_id, items, self.clock())
                else:
                    batch_id, items = pending
                try:
                    response = self.call(partial(Api.push, batch_id=batch_id, items=items))
                except ServerError as exc:
                    if exc.code == "batch_mismatch":  # stale record: rebuild from dirty rows
                        self.vault.drop_pending_batch(batch_id)
                        continue
                    raise
                self._apply_push(batch_id, items, response, summary)
                progress.advance(len(items))
        finally:
            progress.stop()

    def _apply_push(
        self,
        batch_id: str,
        items: list[dict[str, Any]],
        response: dict[str, Any],
        summary: SyncSummary,
    ) -> None:
        results = response.get("results")
        if not isinstance(results, list) or len(results) != len(items):
            raise ClientError("The server answered a push with the wrong number of results.")
        # When the new head is the old watermark plus exactly our accepted writes, every
        # version in between is ours: there is nothing to pull there (a first `sync enable`
        # does not download what it just uploaded).
        mark = self.meta.watermark
        ours = sorted(
            int(r["version"])
            for r in results
            if r.get("status") == "accepted" and isinstance(r.get("version"), int)
        )
        head = response.get("watermark")
        skip_to = (
            head
            if ours
            and ours == list(range(mark + 1, mark + len(ours) + 1))
            and (head == mark + len(ours))
            else None
        )
        checked: list[dict[str, Any] | None] = []
        for sent, result in zip(items, results, strict=True):
            current = result.get("current") if result.get("status") == "conflict" else None
            if current and not current.get("deleted") and current.get("ciphertext") is not None:
                checked.append(self._verify_remote(current, self.vault.get_item(sent["id"])))
            else:
                checked.append(None)
        with self.vault.transaction():
            for sent, result, plaintext in zip(items, results, checked, strict=True):
                local = self.vault.get_item(sent["id"])
                if local is None or result.get("id") != sent["id"]:
                    continue
                if result.get("status") == "accepted":
                    summary.pushed += 1
                    local.version = int(result["version"])
                    unchanged = local.deleted == sent["deleted"] and local.ciphertext == sent.get(
                        "ciphertext"
                    )
                    if unchanged:
                        local.dirty = False
                        local.rev_floor = local.revision + (1 if local.deleted else 0)
                    self.vault.put_item(local)
                    continue
                current = result.get("current")
                if current is None:  # the server never had it: push again from 0
                    local.version = 0
                    self.vault.put_item(local)
                    continue
                if not current.get("deleted") and current.get("ciphertext") is None:
                    continue  # sent without its ciphertext (large response): the pull brings it

                summary.conflicts += self._apply_remote(current, plaintext, local)
            if skip_to is not None:
                self.vault.set_meta(watermark=skip_to)
            self.vault.drop_pending_batch(batch_id)

    def pull(self, summary: SyncSummary, progress: Progress) -> None:
        """Pull pages until hasMore is false; each page is applied in one transaction."""
        since = self.meta.watermark
        resynced = False
        progress.start("Pulling", None)
        try:
            while True:
                try:
                    page = self.call(partial(Api.pull, since=since, limit=PULL_LIMIT))
                except ServerError as exc:
                    if exc.code == "resync_required" and not resynced:
                        resynced = True
                        since = 0
                        self.notices.append("The server asked for a full resync; pulled from 0.")
                        continue
                    raise
                items = page.get("items", [])
                checked: list[dict[str, Any] | None] = []
                for remote in items:  # every check before any write: a bad page changes nothing
                    local = self.vault.get_item(remote["id"])
                    held = local is not None and int(remote["version"]) <= local.version
                    if remote.get("deleted") or held:  # held: never applied, so not decrypted
                        checked.append(None)
                    else:
                        checked.append(self._verify_remote(remote, local))
                with self.vault.transaction():
                    for remote, plaintext in zip(items, checked, strict=True):
                        local = self.vault.get_item(remote["id"])
                        summary.conflicts += self._apply_remote(remote, plaintext, local)
                    self.vault.set_meta(watermark=int(page["watermark"]))
                summary.pulled += len(items)
                progress.advance(len(items))
                since = int(page["watermark"])
                if not page.get("hasMore"):
                    return
        finally:
            progress.stop()

    def sync_now(self, progress: Progress | None = None) -> SyncSummary:
        """Push, pull, push what the pull produced; upload pending attachments."""
        progress = progress or NoProgress()
        meta = self.meta
        if not meta.sync_enabled:
            raise ClientError("Cloud sync is not enabled; run `nt2sync sync enable --server URL`.")
        summary = SyncSummary()
        self.push(summary, progress)
        self.pull(summary, progress)
        if self.vault.count_dirty():
            self.push(summary, progress)
        summary.attachments_uploaded = self.upload_attachments(progress)
        self.vault.set_meta(last_sync_at=self.clock())
        summary.notices = self.notices
        return summary

    # == enable / disable / status ===========================================================
    def enable(
        self, server: str, *, device_name: str | None = None, progress: Progress | None = None
    ) -> SyncSummary:
        """Authenticate, register with the existing salt, push everything, pull."""
        keys = self._require_keys()
        meta = self.meta
        server = normalize_server(server)
        api = Api(server, transport=self.transport, sleep=self.sleep)
        check_audience(api)
        name = device_name or meta.device_name
        session = self._open_session(api, keys.seed, keys.key_did, name, persist=False)
        body = {
            "saltHex": meta.salt_hex,
            "kdf": meta.kdf,
            "verifier": meta.verifier,
            "publicKeys": {"keyDid": keys.key_did, "type": "Ed25519"},
            # This device holds the key, so its verifier is the one to keep (§4).
            "proof": self._proof(api, keys.seed, keys.key_did, "register", keys.key_did),
        }
        try:
            api.register(body)
        except ServerError as exc:
            raise _explain_register(exc) from exc
        escrow = api.salt(keys.key_did)
        if escrow.get("saltHex") != meta.salt_hex:
            raise SaltMismatch(
                "The server holds another salt for this vault than its own; nothing was changed."
            )
        if meta.server_url and meta.server_url != server:
            self.vault.reset_for_new_server()
        self.vault.set_meta(
            server_url=server,
            device_name=name,
            sync_enabled=1,
            token=session["token"],
            token_expires_at=session["expiresAt"],
        )
        self._api = api
        summary = self.sync_now(progress)
        try:
            summary.attachments_uploaded += self.reconcile_attachments()
        except (DeviceRevoked, PasswordChangedElsewhere):
            raise
        except ClientError as exc:  # items are synced; attachments wait for the next sync
            summary.notices.append(f"Attachments not reconciled yet: {exc.message}")
        return summary

    def disable(self) -> dict[str, Any]:
        """Stop syncing here and end the session; the server keeps the vault."""
        meta = self.meta
        if meta.server_url and meta.token:
            api = self.api
            api.token = meta.token
            try:
                api.end_session()
            except ClientError:
                pass  # an ended or unreachable session is already what we want
        self.vault.set_meta(sync_enabled=0, token=None, token_expires_at=None)
        return {"syncEnabled": False, "server": meta.server_url, "serverDataKept": True}

    def status(self, *, offline: bool = False) -> dict[str, Any]:
        """Local and (when sync is on) remote state."""
        meta = self.meta
        out: dict[str, Any] = {
            "registered": None,
            "syncEnabled": meta.sync_enabled,
            "server": meta.server_url,
            "keyDid": meta.key_did,
            "replicaId": meta.replica_id,
            "lastSyncAt": meta.last_sync_at,
            "watermark": meta.watermark,
            "counts": {"local": self.vault.count_live(), "remote": None},
            "pending": self.vault.count_dirty(),
            "devices": None,
            "premium": None,
        }
        if meta.sync_enabled and not offline:
            remote = self.call(lambda api: api.status())
            out["registered"] = bool(remote.get("registered"))
            if not remote.get("registered"):
                raise PasswordChangedElsewhere(
                    "The server has no vault for this key: the master password was probably "
                    "changed on another device; run again with the new one in NT2_PASSWORD."
                )
            out["counts"]["remote"] = (remote.get("counts") or {}).get("items")
            out["remoteWatermark"] = remote.get("watermark")
            out["devices"] = remote.get("devices")
            out["premium"] = remote.get("premium")
        return out

    # == join ================================================================================
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
        device_name: str | None = None,
        progress: Progress | None = None,
        **kwargs: Any,
    ) -> tuple[Client, SyncSummary]:
        """A new device: bootstrap, check everything, then pull the vault."""
        if Vault.exists(path):
            raise ClientError(f"A vault already exists at {path}; join needs a path with none.")
        transport = kwargs.get("transport")
        api = Api(server, transport=transport, sleep=kwargs.get("sleep", time.sleep))
        check_audience(api)
        try:
            boot = api.bootstrap(key_did)
        except ServerError as exc:
            if exc.code == "vault_not_found":
                raise ClientError(f"The server has no vault for {key_did}.") from exc
            raise
        iterations = _refuse_weak(boot.get("kdf"))
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
                "The server sent another salt than the one in your kit; refusing it (nothing was "
                "sent)."
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
            data_key = crypto.open_verifier(kek, salt, str(verifier or ""))
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
        client = cls(vault, **kwargs)
        client.keys = Keys(data_key, seed, key_did)
        client._api = api
        try:
            summary = client.sync_now(progress)
        except BaseException:
            client.close()
            _remove_vault_files(path)  # a refused first pull leaves nothing behind
            raise
        return client, summary

    # == password change / rotation ==========================================================
    def change_password(self, new_password: str, *, iterations: int | None = None) -> str:
        """Re-seal the data key under a new password; rotate the keyDid on the server."""
        keys = self._require_keys()
        meta = self.meta
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
            self.vault.set_meta(key_did=new_did, verifier=verifier, kdf=kdf)
            self.keys = Keys(keys.data_key, new_seed, new_did)
            return new_did
        pending = {
            "oldKeyDid": keys.key_did,
            "newKeyDid": new_did,
            "verifier": verifier,
            "kdf": kdf,
            "oldSeed": crypto.seal_local_secret(keys.data_key, meta.salt, "oldSeed", keys.seed),
            "newSeed": crypto.seal_local_secret(keys.data_key, meta.salt, "newSeed", new_seed),
        }
        self.vault.set_meta(pending_rotation=pending)  # recorded before the server hears of it
        self._finish_rotation()
        return new_did

    def _finish_rotation(self) -> None:
        """Finish a recorded rotation (idempotent: also after a crash half-way)."""
        keys = self._require_keys()
        meta = self.meta
        pending = meta.pending_rotation
        if not pending:
            return
        old_seed = self._pending_secret(keys.data_key, "oldSeed")
        new_seed = self._pending_secret(keys.data_key, "newSeed")
        api = self.api
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
            self._open_session(api, old_seed, pending["oldKeyDid"], meta.device_name)
            body["proof"] = self._proof(
                api, old_seed, pending["oldKeyDid"], "rotate", pending["newKeyDid"]
            )
            api.rotate(body)
        except ServerError as exc:
            if exc.code in ("device_revoked", "session_revoked"):
                raise self._revoked() from exc
            if exc.code not in ("key_did_taken", "vault_not_found"):
                raise
            # Maybe the first attempt went through: does the new key own the vault?
            self._open_session(api, new_seed, pending["newKeyDid"], meta.device_name)
            if not api.status().get("registered"):
                raise ClientError(
                    "The password change could not be finished: neither key owns the vault."
                ) from exc
        self.vault.set_meta(
            key_did=pending["newKeyDid"],
            verifier=pending["verifier"],
            kdf=pending["kdf"],
            pending_rotation=None,
            token=None,
            token_expires_at=None,
        )
        api.token = None
        self.keys = Keys(keys.data_key, new_seed, pending["newKeyDid"])
        self._open_session(api, new_seed, pending["newKeyDid"], meta.device_name)

    # == devices / premium ===================================================================
    def devices(self) -> list[dict[str, Any]]:
        """Enrolled devices."""
        return self.call(lambda api: api.devices())  # type: ignore[no-any-return]

    def rename_device(self, replica_id: str, name: str) -> dict[str, Any]:
        """Rename a device."""
        return self.call(lambda api: api.rename_device(replica_id, name))  # type: ignore[no-any-return]

    def revoke_device(self, replica_id: str) -> dict[str, Any]:
        """Revoke a device."""
        keys = self._require_keys()

        def revoke(api: Api) -> dict[str, Any]:
            proof = self._proof(api, keys.seed, keys.key_did, "revoke", replica_id)
            return api.revoke_device(replica_id, proof)

        return self.call(revoke)  # type: ignore[no-any-return]

    def premium(self, action: str, code: str | None = None) -> dict[str, Any]:
        """premium status | redeem | checkout."""
        if action == "redeem":
            return self.call(lambda api: api.redeem(code or ""))  # type: ignore[no-any-return]
        if action == "checkout":
            return self.call(lambda api: api.checkout())  # type: ignore[no-any-return]
        return self.call(lambda api: api.premium())  # type: ignore[no-any-return]

    # == attachments =========================================================================
    def add_attachment(self, item_id: str, file: Path) -> str:
        """Encrypt a file, keep it locally, reference it from the item."""
        keys = self._require_keys()
        row = self._live_row(item_id)
        data = file.read_bytes()
        attachment_id = str(uuid.uuid4())
        blob = crypto.encrypt_attachment(keys.data_key, self.meta.salt, attachment_id, data)
        sha = crypto.sha256_b64url(blob)
        plaintext = self._decrypt_row(row)
        ref = {"id": attachment_id, "name": file.name, "size": len(data), "sha256": sha}
        with self.vault.transaction():
            self.vault.put_attachment(
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
            plaintext["updatedAt"] = max(self.clock(), plaintext["updatedAt"] + 1)
            plaintext["replicaId"] = self.meta.replica_id
            self._write_local(item_id, plaintext, row)
        return attachment_id

    def attachment_refs(self) -> list[dict[str, Any]]:
        """Every attachment referenced by a live item, with its local state."""
        out = []
        for item_id, plaintext in self.list_items():
            for ref in plaintext.get("attachments", []):
                row = self.vault.attachment(ref["id"])
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

    def _find_ref(self, attachment_id: str) -> tuple[str, dict[str, Any]]:
        for item_id, plaintext in self.list_items():
            for ref in plaintext.get("attachments", []):
                if ref["id"] == attachment_id:
                    return item_id, ref
        raise ClientError(f"No attachment with id {attachment_id}.")

    def get_attachment(self, attachment_id: str, out: Path) -> int:
        """Decrypt an attachment into a file (downloading it when needed)."""
        keys = self._require_keys()
        item_id, ref = self._find_ref(attachment_id)
        row = self.vault.attachment(attachment_id)
        blob = row["blob"] if row is not None else None
        if blob is None:
            url = self.call(lambda api: api.attachment_download(attachment_id))["url"]
            blob = self.api.get_blob(url)
        try:
            data = crypto.decrypt_attachment(keys.data_key, self.meta.salt, attachment_id, blob)
        except crypto.CryptoError as exc:
            raise TamperedItem(
                f"Attachment {attachment_id} was altered or swapped; refusing it."
            ) from exc
        if row is None:
            self.vault.put_attachment(
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

    def remove_attachment(self, attachment_id: str) -> None:
        """Drop an attachment from its item, locally and (when syncing) on the server."""
        item_id, _ = self._find_ref(attachment_id)
        row = self._live_row(item_id)
        plaintext = self._decrypt_row(row)
        plaintext["attachments"] = [
            a for a in plaintext.get("attachments", []) if a["id"] != attachment_id
        ]
        plaintext["updatedAt"] = max(self.clock(), plaintext["updatedAt"] + 1)
        plaintext["replicaId"] = self.meta.replica_id
        with self.vault.transaction():
            self._write_local(item_id, plaintext, row)
            if self.vault.attachment(attachment_id) is not None:
                self.vault.update_attachment(attachment_id, deleted=1)
            else:
                self.vault.put_attachment(
                    id=attachment_id, item_id=item_id, name="", size=0, sha256="", deleted=1
                )

    def upload_attachments(self, progress: Progress | None = None) -> int:
        """Upload attachments not yet committed; delete those removed here. Returns uploads."""
        progress = progress or NoProgress()
        uploaded = 0
        for row in list(self.vault.conn.execute("SELECT * FROM attachments")):
            if row["deleted"]:
                self.call(partial(Api.attachment_delete, attachment_id=row["id"]))
                self.vault.delete_attachment_row(row["id"])
            elif not row["committed"] and row["blob"] is not None:
                blob = bytes(row["blob"])
                progress.start(f"Uploading {row['name']}", len(blob))
                try:
                    ticket = self.call(
                        partial(
                            Api.attachment_upload,
                            attachment_id=row["id"],
                            size=len(blob),
                            sha256=crypto.sha256_b64url(blob),
                        )
                    )
                    self.api.put_blob(ticket["url"], ticket.get("headers") or {}, blob)
                    self.call(partial(Api.attachment_commit, attachment_id=row["id"]))
                    progress.advance(len(blob))
                finally:
                    progress.stop()
                self.vault.update_attachment(row["id"], committed=1)
                uploaded += 1
        return uploaded

    def reconcile_attachments(self) -> int:
        """After (re-)enabling: re-upload local attachments the server does not hold."""
        remote = {a["id"] for a in self.call(lambda api: api.attachments())}
        for row in self.vault.attachments():
            if row["committed"] and row["id"] not in remote:
                self.vault.update_attachment(row["id"], committed=0)
        return self.upload_attachments()

    # == backup ==============================================================================
    def export_backup(self, path: Path) -> int:
        """Write an encrypted .nt2backup of every live item and attachment; returns items."""
        keys = self._require_keys()
        meta = self.meta
        items = [
            {"id": row.id, "ciphertext": row.ciphertext, "revision": row.revision}
            for row in self.vault.items()
        ]
        attachments = [
            {
                "id": r["id"],
                "itemId": r["item_id"],
                "name": r["name"],
                "blob": b64url_encode(r["blob"]),
            }
            for r in self.vault.attachments()
            if r["blob"] is not None
        ]
        payload = json.dumps({"items": items, "attachments": attachments}).encode()
        sealed = crypto.seal_local_secret(keys.data_key, meta.salt, "backup", payload)
        doc = {
            "format": "nt2backup",
            "formatVersion": crypto.FORMAT_VERSION,
            "kdf": meta.kdf,
            "saltHex": meta.salt_hex,
            "keyDid": meta.key_did,
            "verifier": meta.verifier,
            "createdAt": self.clock(),
            "payload": sealed,
        }
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_text(json.dumps(doc))
        tmp.replace(path)
        return len(items)

    @staticmethod
    def read_backup(path: Path, password: str) -> tuple[dict[str, Any], bytes, dict[str, Any]]:
        """(header, data key, payload) of a backup file, opened with its password."""
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
            data_key = crypto.open_verifier(kek, salt, doc["verifier"])
            payload = crypto.open_local_secret(data_key, salt, "backup", doc["payload"])
        except crypto.CryptoError as exc:
            raise WrongPassword(
                "The master password does not open this backup (it opens with the password it "
                "was made under)."
            ) from exc
        return doc, data_key, json.loads(payload)

    @classmethod
    def import_new(
        cls, path: Path, backup: Path, password: str, **kwargs: Any
    ) -> tuple[Client, int]:
        """Restore a backup into a path with no vault (sync off until enabled)."""
        doc, data_key, payload = cls.read_backup(backup, password)
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
        client = cls(vault, **kwargs)
        client.keys = Keys(data_key, seed, key_did)
        return client, client._merge_backup(payload)

    def import_into(self, backup: Path, password: str) -> int:
        """Merge a backup of this same vault by id, never over a newer local edit."""
        keys = self._require_keys()
        doc, data_key, payload = self.read_backup(backup, password)
        if doc["saltHex"] != self.meta.salt_hex or crypto.key_check(data_key) != crypto.key_check(
            keys.data_key
        ):
            raise ClientError("This backup belongs to another vault; nothing was imported.")
        return self._merge_backup(payload)

    def _merge_backup(self, payload: dict[str, Any]) -> int:
        keys = self._require_keys()
        salt = self.meta.salt
        changed = 0
        with self.vault.transaction():
            for entry in payload.get("items", []):
                try:
                    theirs = crypto.decrypt_item(
                        keys.data_key, salt, entry["id"], entry["ciphertext"]
                    )
                except crypto.CryptoError as exc:
                    raise TamperedItem(f"Item {entry['id']} in the backup is damaged.") from exc
                local = self.vault.get_item(entry["id"])
                if local is not None and not local.deleted:
                    mine = self._decrypt_row(local)
                    if merge.same_content(mine, theirs) or mine["updatedAt"] >= theirs["updatedAt"]:
                        continue
                theirs["replicaId"] = self.meta.replica_id
                self._write_local(entry["id"], theirs, local)
                changed += 1
            for att in payload.get("attachments", []):
                if self.vault.attachment(att["id"]) is None:
                    blob = _b64(att["blob"])
                    self.vault.put_attachment(
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

    # == kit =================================================================================
    def kit(self) -> dict[str, Any]:
        """Setup/recovery kit: no secret in it."""
        meta = self.meta
        return {
            "server": meta.server_url,
            "keyDid": meta.key_did,
            "kdf": meta.kdf,
            "saltHex": meta.salt_hex,
        }


def _b64(text: str) -> bytes:
    from chalicelib.shared.encoding import b64url_decode

    return b64url_decode(text)


def _wire_item(row: ItemRow) -> dict[str, Any]:
    item: dict[str, Any] = {"id": row.id, "baseVersion": row.version, "deleted": row.deleted}
    if not row.deleted:
        item["ciphertext"] = row.ciphertext
    return item


def _explain_register(exc: ServerError) -> ClientError:
    if exc.code == "salt_conflict":
        return SaltMismatch(
            "The server already holds another salt for this key DID; this vault keeps its own "
            "salt and nothing was changed."
        )
    if exc.code == "kdf_conflict":
        return ClientError(
            "The server holds other key-derivation parameters for this vault; nothing changed."
        )
    if exc.code == "premium_required":
        return ClientError(
            "Cloud sync on this server needs NT² Premium: run `nt2sync premium checkout` or "
            "`nt2sync premium redeem CODE`, then enable again."
        )
    if exc.code == "key_did_retired":
        return ClientError(
            "This vault's key was retired by a password change on another device; join again "
            "with the new master password."
        )
    return exc


def _remove_vault_files(path: Path) -> None:
    for suffix in ("", "-wal", "-shm"):
        candidate = path.with_name(path.name + suffix)
        if candidate.exists():
            candidate.unlink()


@contextmanager
def opened(path: Path, **kwargs: Any) -> Iterator[Client]:
    """Open a vault for the length of a block."""
    client = Client.open(path, **kwargs)
    try:
        yield client
    finally:
        client.close()
