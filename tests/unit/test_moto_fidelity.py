"""devserver.moto_fidelity: one call installs every moto patch, on the pinned moto only."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import moto
import pytest
from moto.dynamodb.models import DynamoDBBackend
from moto.dynamodb.models.table import LocalSecondaryIndex, Table
from moto.dynamodb.responses import DynamoHandler
from moto.s3.responses import S3Response

from devserver import moto_fidelity

ROOT = Path(__file__).resolve().parents[2]


def patched() -> dict[str, object]:
    return {
        "transact": DynamoDBBackend.transact_write_items,
        "lock": DynamoHandler.call_action,
        "lsi_query": DynamoHandler.query,
        "lsi_project": LocalSecondaryIndex.project,
        "query": Table.query,
        "all_items": Table.all_items,
        "s3": S3Response._get_checksum,
    }


def test_the_pin_is_pyprojects() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    extras = project["optional-dependencies"].values()
    deps = project["dependencies"] + [d for group in extras for d in group]
    pins = [m.group(1) for d in deps if (m := re.fullmatch(r"moto\[[^]]*\]==(\S+)", d))]
    assert pins == [moto_fidelity.PINNED_MOTO]


def test_apply_installs_every_patch_once() -> None:
    moto_fidelity.apply()
    first = patched()
    assert all(hasattr(f, "__wrapped__") for f in first.values()), first
    moto_fidelity.apply()
    assert patched() == first


def test_refuses_another_moto_naming_both_versions(monkeypatch: pytest.MonkeyPatch) -> None:
    # GIVEN a moto other than the pinned one
    monkeypatch.setattr(moto, "__version__", "5.3.0")
    # WHEN the patches are applied THEN they refuse, naming both versions
    with pytest.raises(moto_fidelity.MotoVersionError) as info:
        moto_fidelity.apply()
    assert f"moto {moto_fidelity.PINNED_MOTO}" in str(info.value)
    assert "moto 5.3.0 is installed" in str(info.value)
