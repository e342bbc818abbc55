"""`nt2sync-admin vault show|delete --key-did`: support's view of a vault, and its deletion.

The domain logic is chalicelib/admin/vault_data.py; this module only parses and prints.
"""

from __future__ import annotations

import argparse
import json
import sys
from datetime import UTC, datetime
from typing import Any

from chalicelib.admin import vault_data
from chalicelib.errors import ApiError
from chalicelib.shared.didkey import InvalidDidKey, parse_did_key
from chalicelib.store.blobs import Blobs
from chalicelib.store.errors import AwsError, aws_code
from chalicelib.store.table import Table

DELETE_HELP = """\
Delete everything of the vault a keyDid points to (current or retired key): every row of
its partition, every key pointer (current and retired), its sessions (no token keeps
working), abandoned empty vaults a rotation left for it, and every S3 object under
vaults/<vaultId>/. Promo codes keep their redemption counts; nonces expire by themselves.
Without --yes this is a dry run that only counts. Finding the key pointers and sessions
uses a Scan of the whole table with a filter (operator use only). Safe to rerun: a second
run finds nothing, says so and exits 0.
"""


def add_commands(groups: Any) -> None:
    """Register the `vault` group on the top-level subparsers."""
    group = groups.add_parser("vault", help="a vault's data: show, delete (support)")
    commands = group.add_subparsers(dest="command", metavar="<command>", required=True)

    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--key-did",
        required=True,
        type=_key_did,
        help="the vault's current keyDid, or any key it rotated away from",
    )
    common.add_argument(
        "--bucket", help="attachment bucket (default: the BUCKET_NAME environment variable)"
    )
    common.add_argument("--json", action="store_true", help="print one JSON object")

    show = commands.add_parser(
        "show",
        parents=[common],
        help="the vault's head, counts, Premium and devices (no secrets)",
    )
    show.set_defaults(handler=_show)

    delete = commands.add_parser(
        "delete",
        parents=[common],
        help="delete all of the vault's rows and objects (dry run unless --yes)",
        description=DELETE_HELP,
    )
    delete.add_argument(
        "--yes",
        "--execute",
        dest="execute",
        action="store_true",
        help="really delete (without it: a dry run that only reports)",
    )
    delete.set_defaults(handler=_delete)


def _key_did(value: str) -> str:
    try:
        parse_did_key(value)
    except InvalidDidKey as exc:
        raise argparse.ArgumentTypeError(f"{value!r} is not an Ed25519 did:key ({exc})") from exc
    return value


def _iso(ms: Any) -> str:
    if ms is None:
        return "-"
    return datetime.fromtimestamp(int(ms) / 1000, tz=UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _table(args: argparse.Namespace) -> Table:
    return Table(args.table) if getattr(args, "table", None) else Table()


def _blobs(args: argparse.Namespace) -> Blobs:
    return Blobs(args.bucket) if args.bucket else Blobs()


def _fail(message: str) -> int:
    print(message, file=sys.stderr)
    return 1


def _storage_error(exc: Exception) -> int:
    if isinstance(exc, AwsError):
        detail = f"AWS error {aws_code(exc)}"
    elif isinstance(exc, ApiError):
        detail = "storage stayed throttled"
    else:
        detail = str(exc)
    return _fail(f"{detail}; run the same command again (it is safe to repeat).")


# -- show -----------------------------------------------------------------------------------


def _show(args: argparse.Namespace) -> int:
    try:
        view = vault_data.describe(_table(args), args.key_did)
    except vault_data.VaultDataError as exc:
        return _fail(str(exc))
    except (AwsError, ApiError) as exc:
        return _storage_error(exc)
    if view is None:
        return _fail(f"No vault: keyDid {args.key_did} is unknown to this table.")
    if args.json:
        print(json.dumps(view, sort_keys=True))
        return 0
    for line in _show_lines(view):
        print(line)
    return 0


def _show_lines(view: dict[str, Any]) -> list[str]:
    counts = view["counts"]
    kdf = view["kdf"]
    premium = view["premium"]
    current = view["keyDid"] or "(none: deletion in progress)"
    lines = [f"{'vaultId':<13}{view['vaultId']}", f"{'keyDid':<13}{current}"]
    if view["givenKeyRetiredAt"] is not None:
        lines.append(
            f"{'':<13}(the given key {view['givenKeyDid']} was retired "
            f"{_iso(view['givenKeyRetiredAt'])})"
        )
    if view["deletionStartedAt"] is not None:
        lines.append(f"{'deletion':<13}started {_iso(view['deletionStartedAt'])}, not finished")
    registered = f"yes, {_iso(view['registeredAt'])}" if view["registered"] else "no"
    lines += [
        f"{'registered':<13}{registered}",
        f"{'rotatedAt':<13}{_iso(view['rotatedAt'])}",
        f"{'kdf':<13}"
        + (f"{kdf['algorithm'] or '-'}, {kdf['iterations'] or '-'} iterations" if kdf else "-"),
        f"{'salt':<13}{view['saltHex'] or '-'}",
        f"{'watermark':<13}{view['watermark']}",
        f"{'counts':<13}items {counts['items']}, tombstones {counts['tombstones']}, "
        f"attachments {counts['attachments']} ({counts['attachmentBytes']} bytes), "
        f"devices {counts['devices']}",
        f"{'premium':<13}"
        + (
            f"active until {_iso(premium['until'])} ({premium['source']})"
            if premium["active"]
            else f"inactive (last until {_iso(premium['until'])}, {premium['source'] or '-'})"
        ),
        "",
        f"{'REPLICA':<24}  {'NAME':<20}  {'ENROLLED':<20}  {'LAST SEEN':<20}  REVOKED",
    ]
    for d in view["devices"]:
        lines.append(
            f"{str(d['replicaId']):<24}  {str(d['name'] or '-'):<20}  "
            f"{_iso(d['enrolledAt']):<20}  {_iso(d['lastSeenAt']):<20}  {_iso(d['revokedAt'])}"
        )
    return lines


# -- delete ---------------------------------------------------------------------------------


def _delete(args: argparse.Namespace) -> int:
    table, blobs = _table(args), _blobs(args)
    try:
        if args.execute:
            report = vault_data.delete(table, blobs, args.key_did)
        else:
            report = vault_data.inventory(table, blobs, args.key_did)
    except vault_data.VaultDataError as exc:
        return _fail(str(exc))
    except (AwsError, ApiError) as exc:
        return _storage_error(exc)
    if report is None:
        message = (
            f"Nothing stored for keyDid {args.key_did}: no vault points to it "
            "(deleted already, or never seen)."
        )
        if args.json:
            print(json.dumps({"keyDid": args.key_did, "found": False, "dryRun": not args.execute}))
        else:
            print(message)
        return 0
    if args.json:
        print(json.dumps({**report.as_dict(), "found": True, "dryRun": not args.execute}))
        return 0
    for line in _report_lines(report, executed=args.execute):
        print(line)
    return 0


def _report_lines(report: vault_data.Report, *, executed: bool) -> list[str]:
    data = report.as_dict()
    rows = data["vaultRows"]
    kinds = ", ".join(f"{k} {rows[k]}" for k in vault_data.ROW_KINDS if rows[k])
    pointers = ", ".join(
        f"{p['keyDid']} ({'retired ' + _iso(p['retiredAt']) if p['retiredAt'] else 'current'})"
        for p in data["keyPointers"]
    )
    verb = "Removed" if executed else "Would remove"
    head = (
        f"Deleted vault {report.vault_id} (keyDid {report.key_did}):"
        if executed
        else f"DRY RUN, nothing deleted. Vault {report.vault_id} (keyDid {report.key_did}) holds:"
    )
    lines = [
        head,
        f"  {verb.lower()} {rows['total']} vault row(s)" + (f": {kinds}" if kinds else ""),
        f"  {verb.lower()} {len(data['keyPointers'])} key pointer(s)"
        + (f": {pointers}" if pointers else ""),
        f"  {verb.lower()} {data['sessions']} session(s)",
        f"  {verb.lower()} {data['objects']} S3 object(s), {data['objectBytes']} bytes, "
        f"under vaults/{report.vault_id}/",
    ]
    if data["abandonedVaults"]:
        lines.append(
            f"  including {len(data['abandonedVaults'])} abandoned empty vault(s): "
            + ", ".join(data["abandonedVaults"])
        )
    if data["otherReferences"]:
        lines.append(f"  {verb.lower()} {data['otherReferences']} other row(s) naming the vault")
    if not executed:
        lines.append("Run again with --yes to delete all of it.")
    return lines
