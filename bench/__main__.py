"""`make bench`: server figures, then the reference client's; last line is one JSON object."""

from __future__ import annotations

import importlib.util
import json

from bench import server_bench


def main() -> None:
    figures: dict[str, object] = {"server": server_bench.main()}
    if importlib.util.find_spec("bench.client_bench") is not None:
        client_bench = importlib.import_module("bench.client_bench")  # the reference client's
        figures["client"] = client_bench.main()
    print(json.dumps(figures, separators=(",", ":")))


if __name__ == "__main__":
    main()
