"""The IAM policy of each Lambda, from one source.

    python -m infra.policies          # rewrite .chalice/policy-<stage>[-purge].json
    python -m infra.policies --check  # exit 1 if a file differs from what this writes

Chalice reads one reviewed file per function and stage (`autogen_policy: false`: it cannot
see the calls made in chalicelib/). The files differ only by stage, so they are generated;
the packaged stack's roles (infra/template.json) grant the same actions, and
tests/functional/test_iam_policy.py proves both are exactly what the code calls.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
CHALICE = ROOT / ".chalice"
STAGES = ("dev", "test", "prod")
APP = "nt2-sync"

API_TABLE_ACTIONS = (
    "dynamodb:BatchGetItem",
    "dynamodb:ConditionCheckItem",
    "dynamodb:DeleteItem",
    "dynamodb:GetItem",
    "dynamodb:PutItem",
    "dynamodb:Query",
    "dynamodb:UpdateItem",
)
API_INDEXES = ("byVersion",)
API_OBJECT_ACTIONS = ("s3:DeleteObject", "s3:GetObject", "s3:PutObject", "s3:PutObjectTagging")
# The daily purge: Query on the purge index, tombstone deletes and head updates (in a
# TransactWriteItems, which IAM authorises per action), the mark's UpdateItem.
PURGE_TABLE_ACTIONS = ("dynamodb:DeleteItem", "dynamodb:Query", "dynamodb:UpdateItem")
PURGE_INDEXES = ("byPurge",)
LOG_ACTIONS = ("logs:CreateLogGroup", "logs:CreateLogStream", "logs:PutLogEvents")
# The WebSocket API's handlers (§10), one Lambda each: $connect spends a ticket, reads the
# vault head and device, writes the connection's two rows; $default answers through the
# management API; $disconnect deletes the rows.
WS_TABLE_ACTIONS = {
    "websocket_connect": (
        "dynamodb:BatchGetItem",
        "dynamodb:DeleteItem",
        "dynamodb:PutItem",
    ),
    "websocket_message": (),
    "websocket_disconnect": ("dynamodb:DeleteItem",),
}
WS_MANAGES_CONNECTIONS = {"websocket_message"}
MANAGE_CONNECTIONS = ("execute-api:ManageConnections",)


def _table(stage: str, actions: tuple[str, ...], indexes: tuple[str, ...]) -> dict[str, Any]:
    table = f"arn:aws:dynamodb:*:*:table/{APP}-{stage}"
    return {
        "Sid": "SyncTable",
        "Effect": "Allow",
        "Action": list(actions),
        "Resource": [table] + [f"{table}/index/{name}" for name in indexes],
    }


def _logs(function_name: str) -> dict[str, Any]:
    group = f"arn:aws:logs:*:*:log-group:/aws/lambda/{function_name}"
    return {
        "Sid": "OwnLogGroup",
        "Effect": "Allow",
        "Action": list(LOG_ACTIONS),
        "Resource": [group, f"{group}:*"],
    }


def _connections(stage: str) -> dict[str, Any]:
    """Post to and close connections of this stage's WebSocket API only: the API id is known
    after deployment, so the stage and the `@connections` path (which only a WebSocket API
    has) bound it here; the packaged stack (infra/template.json) names the API itself."""
    return {
        "Sid": "LiveConnections",
        "Effect": "Allow",
        "Action": list(MANAGE_CONNECTIONS),
        "Resource": [
            f"arn:aws:execute-api:*:*:*/{stage}/POST/@connections/*",
            f"arn:aws:execute-api:*:*:*/{stage}/DELETE/@connections/*",
        ],
    }


def api_policy(stage: str) -> dict[str, Any]:
    """The API handler: the table, its version index, the attachment objects, the live
    connections it notifies, its logs."""
    objects = {
        "Sid": "AttachmentObjects",
        "Effect": "Allow",
        "Action": list(API_OBJECT_ACTIONS),
        "Resource": f"arn:aws:s3:::{APP}-{stage}-attachments/*",
    }
    statements = [_table(stage, API_TABLE_ACTIONS, API_INDEXES), objects, _connections(stage)]
    return {"Version": "2012-10-17", "Statement": statements + [_logs(f"{APP}-{stage}")]}


def ws_policy(stage: str, function: str) -> dict[str, Any]:
    """One WebSocket handler: what it calls, its logs."""
    statements: list[dict[str, Any]] = []
    if WS_TABLE_ACTIONS[function]:
        statements.append(_table(stage, WS_TABLE_ACTIONS[function], ()))
    if function in WS_MANAGES_CONNECTIONS:
        statements.append(_connections(stage))
    statements.append(_logs(f"{APP}-{stage}-{function}"))
    return {"Version": "2012-10-17", "Statement": statements}


def purge_policy(stage: str) -> dict[str, Any]:
    """The daily tombstone purge: the table and its purge index, its logs; no S3."""
    statements = [
        _table(stage, PURGE_TABLE_ACTIONS, PURGE_INDEXES),
        _logs(f"{APP}-{stage}-purge_tombstones"),
    ]
    return {"Version": "2012-10-17", "Statement": statements}


def rendered() -> dict[Path, str]:
    """Every policy file and its exact text."""
    out: dict[Path, str] = {}
    for stage in STAGES:
        out[CHALICE / f"policy-{stage}.json"] = _text(api_policy(stage))
        out[CHALICE / f"policy-{stage}-purge.json"] = _text(purge_policy(stage))
        for function in WS_TABLE_ACTIONS:
            name = function.replace("websocket_", "ws-")
            out[CHALICE / f"policy-{stage}-{name}.json"] = _text(ws_policy(stage, function))
    return out


def _text(doc: dict[str, Any]) -> str:
    return json.dumps(doc, indent=2) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="only compare, write nothing")
    args = parser.parse_args(argv)
    stale = [p for p, text in rendered().items() if not p.exists() or p.read_text() != text]
    if args.check:
        for path in stale:
            print(f"{path.relative_to(ROOT)} differs from infra/policies.py", file=sys.stderr)
        return 1 if stale else 0
    for path, text in rendered().items():
        path.write_text(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
