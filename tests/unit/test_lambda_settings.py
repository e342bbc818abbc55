"""On Lambda the API refuses to start without its required settings (no loopback defaults)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from chalicelib.settings import (
    REQUIRED_ON_LAMBDA,
    MissingSettings,
    missing_on_lambda,
    require_lambda_settings,
)

ROOT = Path(__file__).resolve().parents[2]
COMPLETE = {
    "AWS_LAMBDA_FUNCTION_NAME": "nt2-sync-prod",
    "PUBLIC_API_URL": "https://sync.example.test",
    "TABLE_NAME": "nt2-sync-prod",
    "BUCKET_NAME": "nt2-sync-prod-attachments",
}


def test_off_lambda_the_local_defaults_apply() -> None:
    assert missing_on_lambda({}) == []


def test_on_lambda_each_required_variable_is_named_when_missing_or_blank() -> None:
    assert missing_on_lambda(COMPLETE) == []
    for name in REQUIRED_ON_LAMBDA:
        assert missing_on_lambda({**COMPLETE, name: " "}) == [name]
        absent = {k: v for k, v in COMPLETE.items() if k != name}
        assert missing_on_lambda(absent) == [name]


def test_require_raises_one_sentence_naming_what_is_missing(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("AWS_LAMBDA_FUNCTION_NAME", "nt2-sync-prod")
    monkeypatch.delenv("TABLE_NAME", raising=False)
    monkeypatch.setenv("PUBLIC_API_URL", "https://sync.example.test")
    monkeypatch.setenv("BUCKET_NAME", "b")
    with pytest.raises(MissingSettings, match="missing TABLE_NAME: set them"):
        require_lambda_settings()


def test_a_cold_start_without_table_name_fails_with_one_log_line() -> None:
    env = {k: v for k, v in os.environ.items() if k not in REQUIRED_ON_LAMBDA}
    env.update(COMPLETE)
    del env["TABLE_NAME"]
    proc = subprocess.run(
        [sys.executable, "-c", "import app"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode != 0
    assert "Lambda environment is missing TABLE_NAME" in proc.stderr
