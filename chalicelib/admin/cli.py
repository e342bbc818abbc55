"""`nt2sync-admin`: operator commands against the deployment's table.

The table is the one the API uses: `TABLE_NAME`, the AWS credentials and region of the
environment, and `AWS_ENDPOINT_URL` for the local server's moto. To add a command group, write
a module with `add_commands(subparsers)` (each leaf sets `handler=fn(args) -> int`) and list
it in `GROUPS`.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from typing import Any

from chalicelib.admin import promo_commands, vault_commands

GROUPS: list[Callable[[Any], None]] = [promo_commands.add_commands, vault_commands.add_commands]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="nt2sync-admin",
        description="NT² Cloud Sync operator commands (uses TABLE_NAME / AWS_ENDPOINT_URL).",
    )
    parser.add_argument("--table", help="table name (default: the TABLE_NAME environment variable)")
    groups = parser.add_subparsers(dest="group", metavar="<group>", required=True)
    for add in GROUPS:
        add(groups)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command; the exit status is its return value (2 for usage errors)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    handler = getattr(args, "handler", None)
    if handler is None:
        parser.print_help(sys.stderr)
        return 2
    result: int = handler(args)
    return result


if __name__ == "__main__":
    sys.exit(main())
