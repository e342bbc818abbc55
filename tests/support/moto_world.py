"""One moto world, many tables: the app's storage for a module of client tests.

Starting moto and building boto3 clients costs 0.2-0.5 s, more than most client tests
themselves; the client tests therefore share one world per module, and each test gets its
own table and bucket in it (created from infra/template.json, like every other test's).
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from contextlib import contextmanager

import pytest

_NAMES = itertools.count(1)


@contextmanager
def moto_world() -> Iterator[None]:
    """moto in-process with our pinned fidelity patches (the one way the suite starts it)."""
    from moto import mock_aws

    from chalicelib.store.aws import reset_clients
    from devserver import moto_fidelity

    moto_fidelity.apply()
    reset_clients()
    with mock_aws():
        yield
    reset_clients()


def fresh_resources(monkeypatch: pytest.MonkeyPatch) -> None:
    """A new table and bucket in the running world, named in this test's settings."""
    from devserver.backend import ensure_resources

    n = next(_NAMES)
    monkeypatch.setenv("TABLE_NAME", f"nt2-sync-test-{n}")
    monkeypatch.setenv("BUCKET_NAME", f"nt2-sync-test-attachments-{n}")
    ensure_resources()
