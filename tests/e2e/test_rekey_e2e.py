"""A lost laptop, end to end through the `nt2sync` CLI against the real local server: the
person revokes it, re-keys the vault (interrupted once, then resumed), the phone adopts the
new password, and the laptop's thief can neither read what is written afterwards nor get
back in with the old password."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from nt2sync import rekey
from nt2sync.errors import NetworkError
from tests.e2e.client_cli import Result, run, run_process

pytestmark = pytest.mark.e2e


def ok(vault: Path, *args: str, process: bool = False, **kw: Any) -> Any:
    result = (run_process if process else run)(vault, *args, "--json", **kw)
    assert result.code == 0, result.err
    return result.json()


def titles(vault: Path, **kw: Any) -> dict[str, str]:
    return {i["title"]: i["body"] for i in ok(vault, "item", "list", **kw)}


@pytest.fixture
def three(tmp_path: Path, server: Any) -> tuple[Path, Path, Path, str]:
    """desk (made the vault), phone and laptop (joined), all with two items."""
    desk, phone, laptop = (tmp_path / f"{n}.sqlite3" for n in ("desk", "phone", "laptop"))
    key_did = ok(desk, "init")["keyDid"]
    ok(desk, "item", "add", "bank", "--body", "pin 1234")
    ok(desk, "item", "add", "mail", "--body", "hunter2")
    ok(desk, "sync", "enable", "--server", server.url, "--device-name", "desk")
    for vault, name in ((phone, "phone"), (laptop, "laptop")):
        ok(vault, "join", "--server", server.url, "--key-did", key_did, "--device-name", name)
    return desk, phone, laptop, key_did


def test_revoke_then_interrupted_rekey_resumed_and_adopted(
    three: tuple[Path, Path, Path, str], server: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    desk, phone, laptop, old_did = three
    laptop_id = {d["name"]: d["replicaId"] for d in ok(desk, "devices", "list")}["laptop"]

    # the person revokes the lost laptop: the CLI says what to do next, in words
    revoked = run(desk, "devices", "revoke", laptop_id)
    assert revoked.code == 0, revoked.err
    assert "password change --rekey" in revoked.out

    # the re-key is interrupted after the rotation, during its first push (network gone)
    real_sync = rekey.sync.sync_now
    calls = {"n": 0}

    def flaky(client: Any, progress: Any = None) -> Any:
        calls["n"] += 1
        if calls["n"] == 1:
            raise NetworkError(f"Cannot reach the sync server at {server.url} (ConnectError).")
        return real_sync(client, progress)

    monkeypatch.setattr(rekey.sync, "sync_now", flaky)
    broken: Result = run(desk, "password", "change", "--rekey", NT2_NEW_PASSWORD="pw-two")
    assert broken.code != 0 and "Cannot reach the sync server" in broken.err
    monkeypatch.setattr(rekey.sync, "sync_now", real_sync)

    # the old password no longer opens the desk: the rotation went through before the push
    assert run(desk, "item", "list", password="pw-one").code != 0
    resumed = run(desk, "password", "change", "--resume", password="pw-two")
    assert resumed.code == 0, resumed.err
    assert "Finished the interrupted re-key" in resumed.out
    again = ok(desk, "password", "change", "--resume", password="pw-two")
    assert again["rekeyFinished"] is False  # nothing left to finish
    ok(desk, "item", "add", "after", "--body", "written under the new key", password="pw-two")
    ok(desk, "sync", "now", password="pw-two")

    # the phone, told by its next sync, adopts with the new and the previous password
    told = run_process(phone, "sync", "now")
    assert told.code != 0 and "changed on another device" in told.err
    no_old = run_process(phone, "password", "adopt", password="pw-two")
    assert no_old.code != 0 and "previous master password" in no_old.err.lower()
    adopted = ok(
        phone, "password", "adopt", process=True, password="pw-two", NT2_OLD_PASSWORD="pw-one"
    )
    assert adopted["keyDid"] != old_did
    # no false alarm: the desk's roots under the old key open nowhere, so none claims them
    for vault in (phone, desk, phone):
        synced = run(vault, "sync", "now", password="pw-two")
        assert synced.code == 0 and "fork" not in synced.err and "hid" not in synced.err, synced.err
    expected = {"bank": "pin 1234", "mail": "hunter2", "after": "written under the new key"}
    assert titles(phone, password="pw-two") == expected == titles(desk, password="pw-two")

    # the laptop's thief: the old key DID no longer signs in, and what the laptop holds
    # stays what it was before the re-key
    stolen = run_process(laptop, "sync", "now")
    assert stolen.code != 0 and "changed on another device" in stolen.err
    assert titles(laptop) == {"bank": "pin 1234", "mail": "hunter2"}
    rejoin = run(
        laptop.with_name("thief.sqlite3"), "join", "--server", server.url, "--key-did", old_did
    )
    assert rejoin.code != 0 and "has no vault" in rejoin.err
    # even with the new password (say the thief learnt it) the revoked laptop gets nothing
    later = run(laptop, "password", "adopt", password="pw-two", NT2_OLD_PASSWORD="pw-one")
    assert later.code == 0, later.err  # adoption only checks the server's bootstrap
    synced = run(laptop, "sync", "now", password="pw-two")
    assert synced.code != 0 and "revoked" in synced.err
    assert "after" not in titles(laptop, password="pw-two")
