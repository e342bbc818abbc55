"""The storage layer boundary: domain modules speak in the domain's words.

No module above `chalicelib/store/` imports botocore, builds a DynamoDB expression or an
attribute value, or spells a key prefix: those live in the store's repositories and in
`store/keys.py`. A new domain module is covered the day it is added.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
STORE = ROOT / "chalicelib" / "store"
DOMAIN = sorted(p for p in (ROOT / "chalicelib").rglob("*.py") if STORE not in p.parents)
EXPRESSION_WORDS = re.compile(r"(Condition|Update|KeyCondition|Projection|Filter)Expression")
KEY_PREFIX = re.compile(r"^[A-Z]{3,}#")  # VAULT#, ITEM#, SESSION#, ... (keys.py spells them)
STORE_HELPERS = {"to_av", "to_item", "from_item"}


def _findings(path: Path) -> list[str]:
    tree = ast.parse(path.read_text())
    out: list[str] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import | ast.ImportFrom):
            names = [a.name for a in node.names]
            module = node.module if isinstance(node, ast.ImportFrom) else None
            for name in [module or "", *names]:
                if name.split(".")[0] in {"botocore", "boto3"}:
                    out.append(f"line {node.lineno}: imports {name}")
            if module == "chalicelib.store.table":
                out += [f"line {node.lineno}: imports {n}" for n in names if n in STORE_HELPERS]
        elif isinstance(node, ast.Constant) and isinstance(node.value, str):
            if EXPRESSION_WORDS.search(node.value):
                out.append(f"line {node.lineno}: spells {node.value!r}")
            if KEY_PREFIX.match(node.value):
                out.append(f"line {node.lineno}: spells the key prefix {node.value!r}")
    return out


def test_the_domain_is_what_this_test_walks() -> None:
    names = {p.relative_to(ROOT).as_posix() for p in DOMAIN}
    assert {"chalicelib/sync/push.py", "chalicelib/identity.py", "chalicelib/devices.py"} <= names
    assert not any(n.startswith("chalicelib/store/") for n in names)


@pytest.mark.parametrize("path", DOMAIN, ids=lambda p: p.relative_to(ROOT).as_posix())
def test_no_storage_detail_above_the_store(path: Path) -> None:
    assert _findings(path) == []


def test_the_check_catches_what_it_forbids(tmp_path: Path) -> None:
    # GIVEN a module that does everything the boundary forbids
    bad = tmp_path / "bad.py"
    bad.write_text(
        "from botocore.exceptions import ClientError\n"
        "from chalicelib.store.table import to_av\n"
        'x = {"ConditionExpression": "attribute_exists(pk)", "pk": "VAULT#1"}\n'
    )
    # THEN each is reported
    assert len(_findings(bad)) == 4
