"""The local vault: one SQLite file, ciphertext at rest, one transaction per sync step."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from nt2sync.errors import ClientError

SCHEMA_VERSION = 1
_IDS_PER_QUERY = 500  # well under SQLite's bound-parameter limit

_SCHEMA = """
CREATE TABLE IF NOT EXISTS vault_meta (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    schema_version INTEGER NOT NULL,
    salt_hex TEXT NOT NULL,
    kdf TEXT NOT NULL,
    key_did TEXT NOT NULL,
    verifier TEXT NOT NULL,
    key_check TEXT NOT NULL,
    replica_id TEXT NOT NULL,
    device_name TEXT,
    server_url TEXT,
    sync_enabled INTEGER NOT NULL DEFAULT 0,
    watermark INTEGER NOT NULL DEFAULT 0,
    last_sync_at INTEGER,
    token TEXT,
    token_expires_at INTEGER,
    pending_rotation TEXT,
    created_at INTEGER NOT NULL,
    pending_rekey TEXT,
    retired_key TEXT
);
CREATE TABLE IF NOT EXISTS items (
    id TEXT PRIMARY KEY,
    version INTEGER NOT NULL DEFAULT 0,
    dirty INTEGER NOT NULL DEFAULT 0,
    deleted INTEGER NOT NULL DEFAULT 0,
    ciphertext TEXT,
    revision INTEGER NOT NULL DEFAULT 0,
    rev_floor INTEGER NOT NULL DEFAULT 0,
    updated_at INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS items_dirty ON items (dirty) WHERE dirty = 1;
CREATE TABLE IF NOT EXISTS pending_batches (
    batch_id TEXT PRIMARY KEY,
    body TEXT NOT NULL,
    created_at INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS attachments (
    id TEXT PRIMARY KEY,
    item_id TEXT NOT NULL,
    name TEXT NOT NULL,
    size INTEGER NOT NULL,
    sha256 TEXT NOT NULL,
    blob BLOB,
    committed INTEGER NOT NULL DEFAULT 0,
    deleted INTEGER NOT NULL DEFAULT 0
);
"""

META_COLUMNS = (
    "schema_version",
    "salt_hex",
    "kdf",
    "key_did",
    "verifier",
    "key_check",
    "replica_id",
    "device_name",
    "server_url",
    "sync_enabled",
    "watermark",
    "last_sync_at",
    "token",
    "token_expires_at",
    "pending_rotation",
    "created_at",
    "pending_rekey",
    "retired_key",
)
JSON_COLUMNS = ("pending_rotation", "pending_rekey", "retired_key")
# Columns added after version 1 files were made: added on open (ALTER TABLE … ADD COLUMN).
_ADDED_META_COLUMNS = ("pending_rekey", "retired_key")


@dataclass
class Meta:
    """The one row of vault_meta."""

    salt_hex: str
    kdf: dict[str, Any]
    key_did: str
    verifier: str
    key_check: str
    replica_id: str
    device_name: str | None
    server_url: str | None
    sync_enabled: bool
    watermark: int
    last_sync_at: int | None
    token: str | None
    token_expires_at: int | None
    pending_rotation: dict[str, Any] | None
    created_at: int
    pending_rekey: dict[str, Any] | None = None  # a re-key not finished yet (nt2sync/rekey.py)
    retired_key: dict[str, Any] | None = None  # the previous epoch's key, sealed under the current

    @property
    def salt(self) -> bytes:
        """The salt as bytes."""
        return bytes.fromhex(self.salt_hex)


def _json_or_none(text: str | None) -> Any:
    return json.loads(text) if text else None


@dataclass
class ItemRow:
    """One row of items (ciphertext as stored locally, the same envelope as on the wire)."""

    id: str
    version: int
    dirty: bool
    deleted: bool
    ciphertext: str | None
    revision: int
    rev_floor: int
    updated_at: int


class Vault:
    """A local vault file. Methods that write run inside ``transaction()``."""

    def __init__(self, path: Path, conn: sqlite3.Connection) -> None:
        self.path = path
        self.conn = conn

    # -- opening ---------------------------------------------------------------------------
    @staticmethod
    def exists(path: Path) -> bool:
        """True when a vault file with a vault in it is there."""
        if not path.exists():
            return False
        try:
            conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
            try:
                row = conn.execute("SELECT COUNT(*) FROM vault_meta").fetchone()
            finally:
                conn.close()
        except sqlite3.DatabaseError:
            return True  # something is there that is not ours: never overwrite it
        return bool(row and row[0])

    @classmethod
    def create(cls, path: Path, **meta: Any) -> Vault:
        """Create a new vault file with its meta row (refuses an existing vault)."""
        if cls.exists(path):
            raise ClientError(f"A vault already exists at {path}; choose another --vault path.")
        path.parent.mkdir(parents=True, exist_ok=True)
        vault = cls._connect(path)
        values = {
            "schema_version": SCHEMA_VERSION,
            "device_name": None,
            "server_url": None,
            "sync_enabled": 0,
            "watermark": 0,
            "last_sync_at": None,
            "token": None,
            "token_expires_at": None,
            "pending_rotation": None,
            **meta,
        }
        values["kdf"] = json.dumps(values["kdf"])
        cols = ", ".join(values)
        marks = ", ".join("?" for _ in values)
        with vault.transaction():
            vault.conn.execute(
                f"INSERT INTO vault_meta (id, {cols}) VALUES (1, {marks})",  # noqa: S608
                tuple(values.values()),
            )
        return vault

    @classmethod
    def open(cls, path: Path) -> Vault:
        """Open an existing vault or say there is none."""
        if not cls.exists(path):
            raise ClientError(f"No vault at {path}; run `nt2sync init` or `nt2sync join` first.")
        return cls._connect(path)

    @classmethod
    def _connect(cls, path: Path) -> Vault:
        conn = sqlite3.connect(str(path), isolation_level=None, timeout=30)
        conn.row_factory = sqlite3.Row
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=NORMAL")
        conn.executescript(_SCHEMA)
        have = {row["name"] for row in conn.execute("PRAGMA table_info(vault_meta)")}
        for column in _ADDED_META_COLUMNS:
            if column not in have:  # a vault made before re-keying existed
                conn.execute(f"ALTER TABLE vault_meta ADD COLUMN {column} TEXT")
        return cls(path, conn)

    def close(self) -> None:
        """Close the file."""
        self.conn.close()

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """BEGIN IMMEDIATE … COMMIT, or ROLLBACK on any exception (Ctrl-C included)."""
        if self.conn.in_transaction:  # nested: the outer transaction decides
            yield self.conn
            return
        self.conn.execute("BEGIN IMMEDIATE")
        try:
            yield self.conn
        except BaseException:
            self.conn.execute("ROLLBACK")
            raise
        self.conn.execute("COMMIT")

    # -- meta ------------------------------------------------------------------------------
    def meta(self) -> Meta:
        """The vault_meta row."""
        row = self.conn.execute("SELECT * FROM vault_meta WHERE id = 1").fetchone()
        return Meta(
            salt_hex=row["salt_hex"],
            kdf=json.loads(row["kdf"]),
            key_did=row["key_did"],
            verifier=row["verifier"],
            key_check=row["key_check"],
            replica_id=row["replica_id"],
            device_name=row["device_name"],
            server_url=row["server_url"],
            sync_enabled=bool(row["sync_enabled"]),
            watermark=row["watermark"],
            last_sync_at=row["last_sync_at"],
            token=row["token"],
            token_expires_at=row["token_expires_at"],
            pending_rotation=_json_or_none(row["pending_rotation"]),
            created_at=row["created_at"],
            pending_rekey=_json_or_none(row["pending_rekey"]),
            retired_key=_json_or_none(row["retired_key"]),
        )

    def set_meta(self, **values: Any) -> None:
        """Update vault_meta columns."""
        if not values:
            return
        for name in values:
            if name not in META_COLUMNS:
                raise KeyError(name)
        if "kdf" in values:
            values["kdf"] = json.dumps(values["kdf"])
        for name in JSON_COLUMNS:
            if values.get(name) is not None:
                values[name] = json.dumps(values[name])
        sets = ", ".join(f"{name} = ?" for name in values)
        with self.transaction():
            self.conn.execute(
                f"UPDATE vault_meta SET {sets} WHERE id = 1",  # noqa: S608
                tuple(values.values()),
            )

    # -- items -----------------------------------------------------------------------------
    @staticmethod
    def _item(row: sqlite3.Row) -> ItemRow:
        return ItemRow(
            id=row["id"],
            version=row["version"],
            dirty=bool(row["dirty"]),
            deleted=bool(row["deleted"]),
            ciphertext=row["ciphertext"],
            revision=row["revision"],
            rev_floor=row["rev_floor"],
            updated_at=row["updated_at"],
        )

    def get_item(self, item_id: str) -> ItemRow | None:
        """One item row (tombstones included)."""
        row = self.conn.execute("SELECT * FROM items WHERE id = ?", (item_id,)).fetchone()
        return self._item(row) if row else None

    def get_items(self, item_ids: list[str]) -> dict[str, ItemRow]:
        """The rows of these ids that exist, by id (a few queries for a whole page)."""
        found: dict[str, ItemRow] = {}
        for start in range(0, len(item_ids), _IDS_PER_QUERY):
            chunk = item_ids[start : start + _IDS_PER_QUERY]
            marks = ", ".join("?" * len(chunk))
            sql = f"SELECT * FROM items WHERE id IN ({marks})"  # noqa: S608 - placeholders only
            found.update((r["id"], self._item(r)) for r in self.conn.execute(sql, chunk))
        return found

    def items(self, *, include_deleted: bool = False) -> list[ItemRow]:
        """All item rows, live ones only unless asked."""
        where = "" if include_deleted else " WHERE deleted = 0"
        sql = f"SELECT * FROM items{where} ORDER BY updated_at, id"  # noqa: S608 - constant
        return [self._item(r) for r in self.conn.execute(sql)]

    def live_ciphertexts(self) -> list[tuple[str, str]]:
        """(id, ciphertext) of every live item, oldest first, in one query of plain tuples."""
        cursor = self.conn.cursor()
        cursor.row_factory = None  # tuples: no Row or ItemRow per item on the listing path
        return cursor.execute(
            "SELECT id, ciphertext FROM items WHERE deleted = 0 ORDER BY updated_at, id"
        ).fetchall()

    def dirty_items(self, limit: int) -> list[ItemRow]:
        """Items with local changes not yet accepted by the server."""
        rows = self.conn.execute(
            "SELECT * FROM items WHERE dirty = 1 ORDER BY rowid LIMIT ?", (limit,)
        )
        return [self._item(r) for r in rows]

    def count_dirty(self) -> int:
        """How many items wait to be pushed."""
        return int(self.conn.execute("SELECT COUNT(*) FROM items WHERE dirty = 1").fetchone()[0])

    def count_live(self) -> int:
        """How many live items there are locally."""
        return int(self.conn.execute("SELECT COUNT(*) FROM items WHERE deleted = 0").fetchone()[0])

    def put_item(self, row: ItemRow) -> None:
        """Insert or replace an item row."""
        with self.transaction():
            self.conn.execute(
                "INSERT OR REPLACE INTO items "
                "(id, version, dirty, deleted, ciphertext, revision, rev_floor, updated_at) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    row.id,
                    row.version,
                    int(row.dirty),
                    int(row.deleted),
                    row.ciphertext,
                    row.revision,
                    row.rev_floor,
                    row.updated_at,
                ),
            )

    def put_items(self, rows: list[ItemRow]) -> None:
        """Insert or replace many item rows in one statement batch."""
        with self.transaction():
            self.conn.executemany(
                "INSERT OR REPLACE INTO items "
                "(id, version, dirty, deleted, ciphertext, revision, rev_floor, updated_at) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                [
                    (
                        r.id,
                        r.version,
                        int(r.dirty),
                        int(r.deleted),
                        r.ciphertext,
                        r.revision,
                        r.rev_floor,
                        r.updated_at,
                    )
                    for r in rows
                ],
            )

    def reset_for_new_server(self) -> None:
        """Forget server versions (another server, or a resync): every live item is dirty."""
        with self.transaction():
            self.conn.execute("UPDATE items SET version = 0, dirty = 1 WHERE deleted = 0")
            self.conn.execute("DELETE FROM items WHERE deleted = 1")
            self.conn.execute("DELETE FROM pending_batches")
            self.conn.execute("UPDATE attachments SET committed = 0")
            self.conn.execute("UPDATE vault_meta SET watermark = 0 WHERE id = 1")

    # -- pending push batches ------------------------------------------------------------------
    def pending_batch(self) -> tuple[str, list[dict[str, Any]]] | None:
        """The batch that was sent (or about to be) and whose result was not applied."""
        row = self.conn.execute(
            "SELECT batch_id, body FROM pending_batches ORDER BY created_at LIMIT 1"
        ).fetchone()
        return (row["batch_id"], json.loads(row["body"])) if row else None

    def save_pending_batch(self, batch_id: str, items: list[dict[str, Any]], now: int) -> None:
        """Record a batch before it is sent, so a retry reuses its batchId."""
        with self.transaction():
            self.conn.execute(
                "INSERT INTO pending_batches (batch_id, body, created_at) VALUES (?, ?, ?)",
                (batch_id, json.dumps(items), now),
            )

    def drop_pending_batches(self) -> None:
        """Forget every recorded batch (their ciphertexts were sealed under a retired key)."""
        with self.transaction():
            self.conn.execute("DELETE FROM pending_batches")

    def drop_pending_batch(self, batch_id: str) -> None:
        """Forget a batch whose results were applied."""
        with self.transaction():
            self.conn.execute("DELETE FROM pending_batches WHERE batch_id = ?", (batch_id,))

    # -- attachments -----------------------------------------------------------------------
    def put_attachment(self, **row: Any) -> None:
        """Insert or replace an attachment row."""
        cols = ", ".join(row)
        marks = ", ".join("?" for _ in row)
        with self.transaction():
            self.conn.execute(
                f"INSERT OR REPLACE INTO attachments ({cols}) VALUES ({marks})",  # noqa: S608
                tuple(row.values()),
            )

    def attachment(self, attachment_id: str) -> sqlite3.Row | None:
        """One attachment row."""
        return self.conn.execute(
            "SELECT * FROM attachments WHERE id = ?", (attachment_id,)
        ).fetchone()

    def attachments(self) -> list[sqlite3.Row]:
        """All attachment rows not deleted."""
        return list(self.conn.execute("SELECT * FROM attachments WHERE deleted = 0 ORDER BY id"))

    def update_attachment(self, attachment_id: str, **values: Any) -> None:
        """Update some columns of an attachment row."""
        sets = ", ".join(f"{name} = ?" for name in values)
        with self.transaction():
            self.conn.execute(
                f"UPDATE attachments SET {sets} WHERE id = ?",  # noqa: S608
                (*values.values(), attachment_id),
            )

    def delete_attachment_row(self, attachment_id: str) -> None:
        """Remove an attachment row."""
        with self.transaction():
            self.conn.execute("DELETE FROM attachments WHERE id = ?", (attachment_id,))
