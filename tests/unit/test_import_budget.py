"""The Lambda cold start imports the server and its runtime dependencies, nothing else.

Asserted on `sys.modules` in a fresh interpreter, not on time (`make bench` reports the
time against the bare dependencies). A development or client package slipping into
`import app` would also be missing from the Lambda bundle and fail in production.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
NOT_ON_LAMBDA = ("httpx", "moto", "devserver", "nt2sync", "rich", "typer", "pytest", "bench")


def test_import_app_loads_no_development_or_client_package() -> None:
    code = "import json, sys, app; print(json.dumps(sorted(sys.modules)))"
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True
    )
    loaded = json.loads(out.stdout)
    offenders = [m for m in loaded if m.split(".")[0] in NOT_ON_LAMBDA]
    assert offenders == []
    assert "chalicelib.routes.sync" in loaded  # the probe really imported the app
