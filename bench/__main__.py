"""`make bench`: server figures, then the reference client's; last line is one JSON object.

The client benchmark runs in its own small process: a child forked from this one (which
has just held moto and a 10 000-item vault) would inherit this process's peak RSS figure.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

from bench import import_bench, live_bench, server_bench

CLIENT_BENCH = Path(__file__).with_name("client_bench.py")
WEB_BENCH = Path(__file__).with_name("web_bench.py")


def main() -> None:
    figures: dict[str, object] = {"server": server_bench.main()}
    figures["import"] = import_bench.main()
    figures["live"] = live_bench.main()
    if CLIENT_BENCH.exists():
        run = subprocess.run(
            [sys.executable, str(CLIENT_BENCH)], capture_output=True, text=True, check=True
        )
        lines = run.stdout.strip().splitlines()
        print("\n".join(lines[:-1]))
        figures["client"] = json.loads(lines[-1])
    if shutil.which("chromium") or os.environ.get("NT2_CHROMIUM"):
        run = subprocess.run(
            [sys.executable, str(WEB_BENCH)], capture_output=True, text=True, check=True
        )
        print(run.stdout.strip())
        figures["web"] = json.loads(run.stdout.strip().splitlines()[-1])
    else:
        print("web bench skipped: apt-get install chromium (or set NT2_CHROMIUM)")
    print(json.dumps(figures, separators=(",", ":")))


if __name__ == "__main__":
    main()
