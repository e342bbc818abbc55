"""`nt2sync-admin promo create|list`: promo codes are made here and nowhere else (§9)."""

from __future__ import annotations

import argparse
import json
import sys
from datetime import UTC, datetime
from typing import Any

from chalicelib.premium import promo
from chalicelib.premium.webhook import parse_time
from chalicelib.store.table import Table

HASH_PREFIX = 12


def add_commands(groups: Any) -> None:
    """Register the `promo` group on the top-level subparsers."""
    group = groups.add_parser("promo", help="promo codes: create, list")
    commands = group.add_subparsers(dest="command", metavar="<command>", required=True)

    create = commands.add_parser(
        "create", help="create codes and print them (the only time they are shown)"
    )
    create.add_argument("--days", type=_positive, required=True, help="Premium days per code")
    create.add_argument(
        "--max-redemptions",
        type=_positive,
        required=True,
        help="how many vaults may redeem each code",
    )
    create.add_argument(
        "--expires-at",
        type=_iso_time,
        default=None,
        help="ISO-8601 time after which the code cannot be redeemed (UTC unless stated)",
    )
    create.add_argument("--count", type=_positive, default=1, help="how many codes to create")
    create.set_defaults(handler=_create)

    listing = commands.add_parser("list", help="list codes: hash prefix, usage, expiry")
    listing.add_argument("--json", action="store_true", help="one JSON object per line")
    listing.set_defaults(handler=_list)


def _positive(value: str) -> int:
    try:
        number = int(value)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"{value!r} is not an integer") from exc
    if number < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return number


def _iso_time(value: str) -> int:
    try:
        parsed = parse_time(value)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"{value!r} is not an ISO-8601 time") from exc
    assert parsed is not None
    return parsed


def _iso(ms: int | None) -> str:
    if ms is None:
        return "never"
    return datetime.fromtimestamp(ms / 1000, tz=UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _table(args: argparse.Namespace) -> Table:
    return Table(args.table) if args.table else Table()


def _create(args: argparse.Namespace) -> int:
    codes = promo.create_codes(
        _table(args),
        duration_days=args.days,
        max_redemptions=args.max_redemptions,
        expires_at=args.expires_at,
        count=args.count,
    )
    print(
        f"{len(codes)} code(s): {args.days} day(s), up to {args.max_redemptions} "
        f"redemption(s) each, expires {_iso(args.expires_at)}. Store them now: only their "
        "hashes are kept.",
        file=sys.stderr,
    )
    for code in codes:
        print(code)
    return 0


def _list(args: argparse.Namespace) -> int:
    infos = promo.list_codes(_table(args))
    if args.json:
        for info in infos:
            print(
                json.dumps(
                    {
                        "hash": info.code_hash[:HASH_PREFIX],
                        "days": info.duration_days,
                        "redemptions": info.redemptions,
                        "maxRedemptions": info.max_redemptions,
                        "expiresAt": info.expires_at,
                        "createdAt": info.created_at,
                    }
                )
            )
        return 0
    print(f"{'HASH':<{HASH_PREFIX}}  {'DAYS':>5}  {'USED':>11}  {'EXPIRES':<20}  CREATED")
    for info in infos:
        used = f"{info.redemptions}/{info.max_redemptions}"
        print(
            f"{info.code_hash[:HASH_PREFIX]:<{HASH_PREFIX}}  {info.duration_days:>5}  "
            f"{used:>11}  {_iso(info.expires_at):<20}  {_iso(info.created_at)}"
        )
    return 0
