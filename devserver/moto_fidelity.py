"""The one entry point for our moto patches: `apply()` installs them all, on the pinned moto only.

Each patch reaches into moto's internals (a swapped module global, a positional argument,
private methods), so each is written for exactly one moto release. On another release a patch
could silently stop working, or patch the wrong thing, and the local server and the tests
would drift from DynamoDB and S3 without anyone noticing. So `apply()` refuses to run on any
moto but `PINNED_MOTO` (the pin in pyproject.toml): upgrading moto means re-checking each
module's upstream issue (named in its docstring), then moving both pins together.

Call it in every process that hosts a moto backend (`mock_aws` in tests, the backend process
of `make serve`), before the first request. It is idempotent and patches moto's classes, so
backends that already exist are covered too.
"""

from __future__ import annotations

import moto

__all__ = ["PINNED_MOTO", "MotoVersionError", "apply"]

PINNED_MOTO = "5.2.5"  # == pyproject.toml's moto pin ([dev]; test_moto_fidelity.py)


class MotoVersionError(RuntimeError):
    """The installed moto is not the release our patches were written for."""


def check_version(found: str | None = None) -> None:
    """Raise MotoVersionError unless the installed moto is the pinned release."""
    found = moto.__version__ if found is None else found
    if found != PINNED_MOTO:
        raise MotoVersionError(
            f"devserver's moto patches are written for moto {PINNED_MOTO} (the pin in "
            f"pyproject.toml) but moto {found} is installed. Install the pin "
            f"(`make clean serve`), or, to upgrade moto, re-check each devserver/moto_*.py "
            f"against its upstream issue and move both pins together."
        )


def apply() -> None:
    """Install every patch (idempotent); refuses to run on any moto but PINNED_MOTO."""
    check_version()
    from devserver import (
        moto_conditions,
        moto_json,
        moto_lock,
        moto_lsi,
        moto_patch,
        moto_query,
        moto_s3,
    )

    moto_s3.apply()  # PutObject reads a lone x-amz-checksum-* header, as S3 does
    moto_lsi.apply()  # LSI Query with Select=ALL_ATTRIBUTES fetches unprojected attributes
    moto_query.apply()  # Query reads one partition, not the whole table
    moto_patch.apply()  # TransactWriteItems backs up touched items, not table copies
    moto_lock.apply()  # each DynamoDB request is atomic, as in DynamoDB
    moto_json.apply()  # item reads answer in DynamoDB's JSON, without the slow serializer
    moto_conditions.apply()  # each distinct condition expression is parsed once
