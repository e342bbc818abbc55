"""Lambda cold start: `import app` against the bare dependencies it cannot avoid.

Each figure is the minimum of five fresh interpreters (the least-disturbed run), measured
inside the child with `perf_counter` around the import only, so interpreter start-up is
not counted. The budget (issue 16) is `import app` ≤ 1.2 × the bare dependencies.
"""

from __future__ import annotations

import py_compile
import subprocess
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
RUNS = 5
BARE = (
    "import chalice.app, boto3, aws_lambda_powertools.logging, nacl.signing\n"
    "from pydantic import BaseModel\n"
)
APP = "import app\n"


def _seconds(statement: str) -> float:
    code = "import time\nt = time.perf_counter()\n" + statement + "print(time.perf_counter() - t)\n"
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True
    )
    return float(out.stdout.strip().splitlines()[-1])


def _compile_like_the_package() -> None:
    """The deployment zip ships pycs of every module (infra/package.py), and the installed
    dependencies have theirs: compile ours too, so that both sides of the ratio load
    bytecode (with PYTHONDONTWRITEBYTECODE set, nothing else writes it). Checked-hash pycs
    here, not the package's unchecked ones: in a working tree an unchecked pyc would
    shadow every later edit of its source."""
    import compileall

    for target in (ROOT / "app.py", ROOT / "chalicelib"):
        if target.is_dir():
            compileall.compile_dir(
                str(target),
                quiet=1,
                invalidation_mode=py_compile.PycInvalidationMode.CHECKED_HASH,
            )
        else:
            compileall.compile_file(
                str(target),
                quiet=1,
                invalidation_mode=py_compile.PycInvalidationMode.CHECKED_HASH,
            )


def main() -> dict[str, Any]:
    _compile_like_the_package()
    bare = min(_seconds(BARE) for _ in range(RUNS))
    app = min(_seconds(APP) for _ in range(RUNS))
    figures = {
        "import_bare_deps_ms": round(bare * 1000, 1),
        "import_app_ms": round(app * 1000, 1),
        "import_app_ratio": round(app / bare, 2),
    }
    print("Lambda cold start (min of 5 interpreters)")
    print(f"  import of bare dependencies ms   {figures['import_bare_deps_ms']}")
    print(f"  import app ms                    {figures['import_app_ms']}")
    print(f"  ratio (budget ≤ 1.2)             {figures['import_app_ratio']}")
    return figures


if __name__ == "__main__":
    main()
