"""`nt2sync-admin promo create|list` against the same table (moto in-process)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from chalicelib.admin.cli import main
from chalicelib.premium import promo
from tests.helpers import Caller, Device, seed_for


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, list[str], str]:
    capsys.readouterr()  # drop what earlier API calls logged
    code = main(list(argv))
    out = capsys.readouterr()
    return code, [line for line in out.out.splitlines() if line], out.err


def test_create_prints_codes_once_and_they_redeem(
    caller: Caller, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PREMIUM_SYNC_REQUIRED", "true")
    # WHEN the operator creates three 30-day codes with two redemptions each
    status, codes, err = run(
        capsys, "promo", "create", "--days", "30", "--max-redemptions", "2", "--count", "3"
    )
    # THEN the codes are printed (stdout, one a line) and work through the API
    assert status == 0 and len(codes) == 3 and len(set(codes)) == 3
    assert "only their hashes are kept" in err
    dev = Device(caller, seed_for(1))
    dev.sign_in()
    r = dev.call("POST", "/api/premium/redeem", {"code": codes[0]})
    assert r.status == 200 and r.body["active"] is True and r.body["source"] == "promo"
    # AND the listing shows hash prefixes and usage, never a code
    status, lines, _ = run(capsys, "promo", "list")
    assert status == 0
    assert lines[0].split()[:3] == ["HASH", "DAYS", "USED"]
    body = "\n".join(lines[1:])
    assert promo.code_hash(codes[0])[:12] in body
    assert "1/2" in body and body.count("0/2") == 2
    assert not any(c in "\n".join(lines) for c in codes)


def test_list_json_and_expiry(
    caller: Caller, capsys: pytest.CaptureFixture[str], clock: Any
) -> None:
    status, (code,), _ = run(
        capsys,
        "promo",
        "create",
        "--days",
        "7",
        "--max-redemptions",
        "1",
        "--expires-at",
        "2031-01-02T03:04:05Z",
    )
    assert status == 0
    status, lines, _ = run(capsys, "promo", "list", "--json")
    (row,) = [json.loads(line) for line in lines]
    assert row["hash"] == promo.code_hash(code)[:12]
    assert (row["days"], row["redemptions"], row["maxRedemptions"]) == (7, 0, 1)
    assert row["expiresAt"] == 1_925_089_445_000
    # past its expiry the code is unknown to the API
    from chalicelib.clock import now_ms

    clock(1_925_089_445_000 - now_ms() + 1)
    dev = Device(caller, seed_for(2))
    dev.sign_in()
    r = dev.call("POST", "/api/premium/redeem", {"code": code})
    assert (r.status, r.body["code"]) == (404, "promo_not_found")


@pytest.mark.parametrize(
    "argv",
    [
        ["promo", "create", "--days", "0", "--max-redemptions", "1"],
        ["promo", "create", "--days", "3"],
        ["promo", "create", "--days", "3", "--max-redemptions", "x"],
        ["promo", "create", "--days", "3", "--max-redemptions", "1", "--expires-at", "soon"],
        ["promo"],
        [],
    ],
)
def test_usage_errors_exit_2(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(argv)
    assert exit_.value.code == 2
    capsys.readouterr()


def test_table_option_names_the_table(aws: None, capsys: pytest.CaptureFixture[str]) -> None:
    status, codes, _ = run(
        capsys,
        "--table",
        "nt2-sync-test",
        "promo",
        "create",
        "--days",
        "1",
        "--max-redemptions",
        "1",
    )
    assert status == 0 and len(codes) == 1
    status, lines, _ = run(capsys, "promo", "list")
    assert len(lines) == 2
