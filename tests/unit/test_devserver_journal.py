"""devserver.durable and the backend's journal: records survive, replay in order, compact safely."""

from __future__ import annotations

import io
import json
import os
import threading
from pathlib import Path
from typing import IO, Any

import pytest
from werkzeug.test import EnvironBuilder

from devserver.durable import MAGIC, DataDir, DataDirBusy, decode_records, encode_record
from devserver.moto_backend import Recorder, decode_request, encode_request, is_mutation, replay


def state_writer(state: Any) -> Any:
    def write(out: IO[bytes]) -> None:
        out.write(json.dumps(state).encode())

    return write


def test_records_survive_a_kill_and_replay_in_order(tmp_path: Path) -> None:
    # GIVEN a directory with a snapshot and appended records
    store = DataDir(tmp_path)
    assert store.recover().snapshot is None
    store.compact(state_writer({"n": 0}))
    for n in range(5):
        store.append(f"request {n}".encode())
    # WHEN the process dies without closing (the lock goes with it)
    store._lock_file.close()  # type: ignore[union-attr]
    # THEN a new process finds the snapshot and the records, in order
    again = DataDir(tmp_path).recover()
    assert json.loads(again.snapshot or b"") == {"n": 0}
    assert again.records == [f"request {n}".encode() for n in range(5)]
    assert not again.torn


def test_a_torn_last_record_is_dropped(tmp_path: Path) -> None:
    store = DataDir(tmp_path)
    store.recover()
    store.compact(state_writer({}))
    store.append(b"whole")
    store.append(b"torn in half")
    store.close()
    journal = next(tmp_path.glob("journal-*.log"))
    journal.write_bytes(journal.read_bytes()[:-4])  # the last write did not finish
    again = DataDir(tmp_path).recover()
    assert (again.records, again.torn) == ([b"whole"], True)


def test_a_corrupt_record_ends_the_replay() -> None:
    data = MAGIC + encode_record(b"one") + encode_record(b"two") + encode_record(b"three")
    flipped = data.replace(b"two", b"twx")
    assert decode_records(data) == ([b"one", b"two", b"three"], True)
    assert decode_records(flipped) == ([b"one"], False)


def test_compaction_interrupted_before_deleting_replays_nothing_twice(tmp_path: Path) -> None:
    # GIVEN records in journal 1, then a compaction that wrote its snapshot (through 1)
    store = DataDir(tmp_path)
    store.recover()
    store.compact(state_writer([]))
    store.append(b"a")
    old_journal = next(tmp_path.glob("journal-*.log")).read_bytes()
    store.compact(state_writer(["a"]))
    store.append(b"b")
    store.close()
    # WHEN the crash left the old journal behind (the deletion never happened)
    (tmp_path / "journal-00000001.log").write_bytes(old_journal)
    # THEN a restart applies the snapshot and only what came after it
    again = DataDir(tmp_path).recover()
    assert json.loads(again.snapshot or b"") == ["a"]
    assert again.records == [b"b"]
    assert not (tmp_path / "journal-00000001.log").exists()


def test_compaction_interrupted_before_the_snapshot_keeps_the_journal(tmp_path: Path) -> None:
    store = DataDir(tmp_path)
    store.recover()
    store.compact(state_writer([]))
    store.append(b"a")
    store.close()
    (tmp_path / "snapshot.tmp").write_bytes(b"half a snapshot")  # the crash came mid-write
    again = DataDir(tmp_path).recover()
    assert (json.loads(again.snapshot or b""), again.records) == ([], [b"a"])
    assert not (tmp_path / "snapshot.tmp").exists()


def test_the_journal_asks_for_compaction_past_its_size(tmp_path: Path) -> None:
    store = DataDir(tmp_path, compact_bytes=100)
    store.recover()
    store.compact(state_writer([]))
    store.append(b"x" * 50)
    assert not store.needs_compaction()
    store.append(b"x" * 50)
    assert store.needs_compaction()
    store.compact(state_writer([]))
    assert not store.needs_compaction()
    store.close()


def test_one_process_per_directory(tmp_path: Path) -> None:
    first = DataDir(tmp_path)
    first.recover()
    with pytest.raises(DataDirBusy, match=str(tmp_path)):
        DataDir(tmp_path).recover()
    first.close()
    DataDir(tmp_path).recover()  # free again once the first one closed


def test_the_journal_is_fsynced_within_a_second(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    synced = threading.Event()
    real_fsync = os.fsync

    def fsync(fd: int) -> None:
        real_fsync(fd)
        synced.set()

    store = DataDir(tmp_path, sync_interval=0.05)
    store.recover()
    store.compact(state_writer([]))
    monkeypatch.setattr(os, "fsync", fsync)
    store.append(b"a")
    assert synced.wait(1.0)
    store.close()


# -- the backend's request journal --------------------------------------------------------


def environ(method: str, path: str, body: bytes = b"", **headers: str) -> dict[str, Any]:
    return EnvironBuilder(method=method, path=path, data=body, headers=headers).get_environ()


def test_what_counts_as_a_mutation() -> None:
    ddb = "DynamoDB_20120810."
    assert is_mutation(environ("POST", "/", X_Amz_Target=ddb + "TransactWriteItems"))
    assert is_mutation(environ("POST", "/", X_Amz_Target=ddb + "UpdateTimeToLive"))
    assert not is_mutation(environ("POST", "/", X_Amz_Target=ddb + "Query"))
    assert is_mutation(environ("PUT", "/bucket/key"))
    assert is_mutation(environ("POST", "/bucket?delete"))
    assert not is_mutation(environ("GET", "/bucket/key"))
    assert not is_mutation(environ("HEAD", "/bucket/key"))


def test_a_request_replays_as_received() -> None:
    env = environ("PUT", "/b/k%20x?tagging=1", b"\x00body\xff", X_Amz_Checksum_Sha256="abc=")
    payload = encode_request(env, b"\x00body\xff")
    again = decode_request(payload)
    for name in ("REQUEST_METHOD", "PATH_INFO", "QUERY_STRING", "HTTP_X_AMZ_CHECKSUM_SHA256"):
        assert again[name] == env[name]
    assert again["wsgi.input"].read() == b"\x00body\xff"


class ConditionalStore:
    """A WSGI app with a conditional write: PUT /k?if=v sets k unless it holds another value."""

    def __init__(self) -> None:
        self.data: dict[str, str] = {}

    def __call__(self, environ: dict[str, Any], start_response: Any) -> list[bytes]:
        key = environ["PATH_INFO"].strip("/")
        expect = environ["QUERY_STRING"].removeprefix("if=")
        if environ["REQUEST_METHOD"] == "GET":
            start_response("200 OK", [])
            return [self.data.get(key, "").encode()]
        if self.data.get(key, "") != expect:
            start_response("412 Precondition Failed", [])
            return [b"conflict"]
        self.data[key] = environ["wsgi.input"].read().decode()
        start_response("200 OK", [])
        return [b"ok"]


def test_replay_reproduces_conditional_outcomes(tmp_path: Path) -> None:
    # GIVEN a recorded app that took writes, one of them refused by its condition
    store = DataDir(tmp_path)
    store.recover()
    store.compact(state_writer({}))
    live = ConditionalStore()
    app = Recorder(live, store, threading.RLock(), {})
    answers = []
    for path, body in [("/k", b"v1"), ("/k?if=v1", b"v2"), ("/k", b"lost race"), ("/j", b"x")]:
        out = io.BytesIO()

        def start_response(status: str, headers: Any, out: io.BytesIO = out) -> None:
            out.write(status.encode())

        b"".join(app(environ("PUT", path, body), start_response))
        answers.append(out.getvalue().decode())
    b"".join(app(environ("GET", "/k"), lambda *_: None))  # a read: not journaled
    assert answers == ["200 OK", "200 OK", "412 Precondition Failed", "200 OK"]
    store.close()
    # WHEN a fresh app replays the journal
    recovered = DataDir(tmp_path).recover()
    fresh = ConditionalStore()
    assert replay(fresh, recovered.records) == 0
    # THEN it holds exactly the live state (the refused write refused again)
    assert len(recovered.records) == 4
    assert fresh.data == live.data == {"k": "v2", "j": "x"}


def test_a_long_journal_is_compacted_into_the_snapshot(tmp_path: Path) -> None:
    # GIVEN a recorder whose journal may hold only about one request
    store = DataDir(tmp_path, compact_bytes=len(MAGIC) + 1)
    store.recover()
    store.compact(state_writer({}))
    live = ConditionalStore()
    app = Recorder(live, store, threading.RLock(), {}, lambda out: state_writer(live.data)(out))
    # WHEN it takes writes
    for key in ("a", "b", "c"):
        b"".join(app(environ("PUT", f"/{key}", key.encode()), lambda *_: None))
    store.close()
    # THEN each went into a new snapshot, and the journal starts over
    recovered = DataDir(tmp_path).recover()
    assert json.loads(recovered.snapshot or b"") == {"a": "a", "b": "b", "c": "c"}
    assert recovered.records == []
    assert recovered.snapshot_meta["through"] == 3  # one compaction per write
