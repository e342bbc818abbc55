"""`nt2sync item list` (issue 16): no network stack or rich loaded, and a table drawn here.

The import set is asserted on `sys.modules` in a fresh interpreter, as for `--help`.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from nt2sync.cli import render
from tests.support.client_clock import PASSWORD

ROOT = Path(__file__).resolve().parents[3]
NOT_FOR_LISTING = ("httpx", "rich", "boto3", "botocore", "moto")

PROBE = """
import contextlib, io, json, sys
from nt2sync.cli import main
shown = io.StringIO()
with contextlib.redirect_stdout(shown):
    code = main(sys.argv[1:])
print(json.dumps({"code": code, "out": shown.getvalue(), "modules": sorted(sys.modules)}))
"""


@pytest.mark.parametrize("as_json", [True, False], ids=["json", "table"])
def test_item_list_loads_neither_the_network_stack_nor_rich(make_client, tmp_path, as_json):
    # GIVEN a vault with two items
    client = make_client("a")
    client.add_item("alpha", body="first")
    client.add_item("beta", body="second")
    vault = client.vault.path
    # WHEN `item list` runs in a fresh interpreter
    argv = ["--vault", str(vault), "item", "list", *(["--json"] if as_json else [])]
    out = subprocess.run(
        [sys.executable, "-c", PROBE, *argv],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
        env={"NT2_PASSWORD": PASSWORD, "PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT)},
    )
    probe = json.loads(out.stdout)
    # THEN it listed both items
    assert probe["code"] == 0
    if as_json:
        assert sorted(i["title"] for i in json.loads(probe["out"])) == ["alpha", "beta"]
    else:
        assert "│ alpha " in probe["out"] and "│ beta " in probe["out"]
    # AND it imported no HTTP client, no rich, nothing of AWS
    assert [m for m in probe["modules"] if m.split(".")[0] in NOT_FOR_LISTING] == []


def test_grid_draws_rich_default_box():
    # WHEN a two-column table is drawn without a width
    lines = render.grid(("id", "title"), [("1", "alpha"), ("22", "b")])
    # THEN it is rich's heavy-head box, each column as wide as its widest cell
    assert lines == [
        "┏━━━━┳━━━━━━━┓",
        "┃ id ┃ title ┃",
        "┡━━━━╇━━━━━━━┩",
        "│ 1  │ alpha │",
        "│ 22 │ b     │",
        "└────┴───────┘",
    ]


def test_grid_fits_the_width_by_clipping_and_never_prints_controls():
    # GIVEN a title too long for the terminal, with a newline and an escape in it
    rows = [("id-1", "a very long title\nwith \x1b[2Jcontrols", "x")]
    # WHEN it is drawn 30 columns wide, only the title allowed to shrink
    lines = render.grid(("id", "title", "u"), rows, 30, shrink=(1,))
    # THEN every line fits, the title ends with an ellipsis, and no control is printed
    assert {len(line) for line in lines} == {30}
    assert lines[3] == "│ id-1 │ a very long ti… │ x │"
    assert not any(ch < " " for line in lines for ch in line)


def test_grid_counts_wide_characters_as_two_columns():
    lines = render.grid(("t",), [("日本",), ("ab",)])
    assert lines[3] == "│ 日本 │" and lines[4] == "│ ab   │"
