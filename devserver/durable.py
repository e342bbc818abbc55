"""A data directory that keeps the local backend's state: snapshot + append-only journal.

The backend applies requests one mutation at a time; each mutating request it applies is
appended to the journal before its response leaves. A restart loads the snapshot and replays
the journal in order: replaying the same requests in the same order on the same state gives
the same outcomes, conditional writes included. Now and then (at start, at a clean stop, and
when the journal outgrows `compact_bytes`) the state is written as a new snapshot and the
journal starts over.

Layout:
    snapshot       header line {"through": N, ...}, then the state (an opaque blob)
    journal-N.log  MAGIC, then records [u32 length][u32 crc32][payload] with generation N > the
                   snapshot's "through"; a torn or corrupt record ends the replay
    lock           flock'd by the one process that uses the directory

Durability: each record is written with one `os.write` (a killed process loses nothing it
wrote; the OS has it) and the journal is fsync'd at most once a second, so a machine crash
loses at most the last second. Compaction never loses a record: the new snapshot names the
last generation it contains, and journals up to that generation are deleted only after it
is durably in place; a crash in between replays them against the older snapshot instead.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import re
import struct
import threading
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

__all__ = ["DataDir", "DataDirBusy", "Recovered"]

MAGIC = b"NT2-JOURNAL-1\n"
_RECORD = struct.Struct(">II")  # payload length, crc32(payload)
_JOURNAL = re.compile(r"journal-(\d{8})\.log")
SNAPSHOT = "snapshot"


class DataDirBusy(RuntimeError):
    """Another backend process holds the data directory."""


@dataclass
class Recovered:
    """What a restart starts from: the last snapshot and the journal records after it."""

    snapshot: bytes | None
    snapshot_meta: dict[str, Any]
    records: list[bytes] = field(default_factory=list)
    torn: bool = False  # a torn or corrupt record ended the replay (an unfinished write)


def encode_record(payload: bytes) -> bytes:
    return _RECORD.pack(len(payload), zlib.crc32(payload)) + payload


def decode_records(data: bytes) -> tuple[list[bytes], bool]:
    """The journal's records in order, and whether the file ended cleanly (not torn)."""
    if not data.startswith(MAGIC):
        return [], bool(data)
    out: list[bytes] = []
    pos = len(MAGIC)
    while pos < len(data):
        if pos + _RECORD.size > len(data):
            return out, False
        length, crc = _RECORD.unpack_from(data, pos)
        start = pos + _RECORD.size
        payload = data[start : start + length]
        if len(payload) != length or zlib.crc32(payload) != crc:
            return out, False
        out.append(payload)
        pos = start + length
    return out, True


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class _Journal:
    """One generation's append-only file."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_APPEND, 0o600)
        os.write(self.fd, MAGIC)
        os.fsync(self.fd)
        _fsync_dir(path.parent)
        self.size = len(MAGIC)
        self.dirty = False

    def append(self, payload: bytes) -> None:
        record = encode_record(payload)
        written = os.write(self.fd, record)  # one write: whole in the page cache, or torn
        if written != len(record):
            raise OSError(f"short write to {self.path}")
        self.size += written
        self.dirty = True

    def sync(self) -> None:
        if self.dirty:
            self.dirty = False
            os.fsync(self.fd)

    def close(self) -> None:
        self.sync()
        os.close(self.fd)


class DataDir:
    """The backend's data directory. Callers serialize `append` and `compact` (one lock)."""

    def __init__(
        self, path: Path, *, sync_interval: float = 1.0, compact_bytes: int = 8 << 20
    ) -> None:
        self.path = path
        self.sync_interval = sync_interval
        self.compact_bytes = compact_bytes
        self._lock_file: IO[bytes] | None = None
        self._journal: _Journal | None = None
        self._generation = 0
        self._io = threading.Lock()  # the journal's fd, between appends and the sync thread
        self._closed = threading.Event()
        self._syncer: threading.Thread | None = None

    def _journal_path(self, generation: int) -> Path:
        return self.path / f"journal-{generation:08d}.log"

    def _generations(self) -> list[int]:
        found = (_JOURNAL.fullmatch(p.name) for p in self.path.iterdir())
        return sorted(int(m.group(1)) for m in found if m)

    def recover(self) -> Recovered:
        """Take the directory (one process at a time) and read what a restart replays."""
        self.path.mkdir(parents=True, exist_ok=True)
        self._lock_file = open(self.path / "lock", "ab")  # noqa: SIM115 - held while we run
        try:
            fcntl.flock(self._lock_file, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError as exc:
            raise DataDirBusy(
                f"{self.path} is in use by another backend (another `make serve`?)"
            ) from exc
        (self.path / f"{SNAPSHOT}.tmp").unlink(missing_ok=True)
        snapshot, meta = None, {"through": 0}
        snap_path = self.path / SNAPSHOT
        if snap_path.exists():
            header, _, snapshot = snap_path.read_bytes().partition(b"\n")
            meta = json.loads(header)
        through = int(meta["through"])
        recovered = Recovered(snapshot, meta)
        generations = self._generations()
        for generation in generations:
            journal = self._journal_path(generation)
            if generation <= through:
                journal.unlink()  # already in the snapshot (a compaction ended before this)
                continue
            if recovered.torn:
                continue  # after a torn record, later records would be out of order
            records, clean = decode_records(journal.read_bytes())
            recovered.records.extend(records)
            recovered.torn = not clean
        self._generation = max([through, *generations])
        return recovered

    def compact(self, write_state: Callable[[IO[bytes]], None], **meta: Any) -> None:
        """Write the current state as the snapshot and start a new, empty journal."""
        with self._io:
            if self._journal is not None:
                self._journal.close()
                self._journal = None
        through = self._generation
        tmp = self.path / f"{SNAPSHOT}.tmp"
        with open(tmp, "wb") as f:
            f.write(json.dumps({**meta, "through": through}).encode() + b"\n")
            write_state(f)
            f.flush()
            os.fsync(f.fileno())
        tmp.replace(self.path / SNAPSHOT)
        _fsync_dir(self.path)
        for generation in self._generations():
            if generation <= through:
                self._journal_path(generation).unlink()
        self._generation = through + 1
        journal = _Journal(self._journal_path(self._generation))
        with self._io:
            self._journal = journal
        if self._syncer is None:
            self._syncer = threading.Thread(target=self._sync_loop, name="fsync", daemon=True)
            self._syncer.start()

    def append(self, payload: bytes) -> None:
        """Record one applied request (durable against a kill now, against a crash within 1 s)."""
        with self._io:
            if self._journal is None:
                raise RuntimeError("the data directory is closed")
            self._journal.append(payload)

    def needs_compaction(self) -> bool:
        journal = self._journal
        return journal is not None and journal.size > self.compact_bytes

    def journal_bytes(self) -> int:
        journal = self._journal
        return journal.size if journal is not None else 0

    def _sync_loop(self) -> None:
        while not self._closed.wait(self.sync_interval):
            with self._io:
                if self._journal is not None:
                    self._journal.sync()

    def close(self) -> None:
        """Sync and close the journal, release the directory."""
        self._closed.set()
        with self._io:
            if self._journal is not None:
                self._journal.close()
                self._journal = None
        if self._lock_file is not None:
            with contextlib.suppress(OSError):
                fcntl.flock(self._lock_file, fcntl.LOCK_UN)
            self._lock_file.close()
            self._lock_file = None
