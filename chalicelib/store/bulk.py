"""Bulk reads and deletes (whole-table Scans, partitions, prefixes), for the operator's tool
(nt2sync-admin) only.

No Lambda calls these: the deployed functions are not granted dynamodb:Scan, and the IAM
policy test's static scan leaves this module out as it leaves out chalicelib/admin/.
A Scan reads (and bills) every row before its filter, so nothing scheduled may use it.
"""

from __future__ import annotations

import random
import time
from collections.abc import Iterator
from functools import partial
from typing import Any

from chalicelib.store import keys
from chalicelib.store.blobs import Blobs
from chalicelib.store.errors import StorageIncomplete
from chalicelib.store.table import Item, Key, Table, paginate, with_retries

BATCH_WRITE_MAX = 25
MAX_UNPROCESSED_ROUNDS = 8


def scan(table: Table, **kwargs: Any) -> Iterator[Item]:
    """Every item of a low-level Scan (kwargs as boto3 takes them), page after page."""
    return paginate(table, "Scan", table.ddb.scan, kwargs)


def partition(table: Table, vault_id: str) -> Iterator[Item]:
    """Every row of a vault's partition (keys and the tombstone flag only), consistent."""
    return table.pages(
        KeyConditionExpression="pk = :pk",
        ExpressionAttributeValues={":pk": {"S": keys.vault_pk(vault_id)}},
        ProjectionExpression="pk, sk, #deleted",
        ExpressionAttributeNames={"#deleted": "deleted"},
        ConsistentRead=True,
    )


def batch_delete(table: Table, row_keys: list[Key]) -> None:
    """Delete these rows: BatchWriteItem, ≤ 25 a call, retrying UnprocessedItems with backoff."""
    for start in range(0, len(row_keys), BATCH_WRITE_MAX):
        group = row_keys[start : start + BATCH_WRITE_MAX]
        request: dict[str, Any] = {table.name: [{"DeleteRequest": {"Key": k}} for k in group]}
        for attempt in range(MAX_UNPROCESSED_ROUNDS):
            resp = with_retries(
                "BatchWriteItem", partial(table.ddb.batch_write_item, RequestItems=request)
            )
            pending = (resp.get("UnprocessedItems") or {}).get(table.name)
            if not pending:
                break
            request = {table.name: pending}
            time.sleep(min(1.0, 0.02 * (2**attempt)) * (0.5 + random.random()))
        else:
            raise StorageIncomplete("DynamoDB kept rows unprocessed; run the command again.")


LIST_PAGE = 1000
DELETE_OBJECTS_MAX = 1000


def iter_prefix(blobs: Blobs, prefix: str) -> Iterator[dict[str, Any]]:
    """Every object under a key prefix (ListObjectsV2, paged): Key and Size at least."""
    token: str | None = None
    while True:
        kwargs: dict[str, Any] = {"Bucket": blobs.bucket, "Prefix": prefix, "MaxKeys": LIST_PAGE}
        if token:
            kwargs["ContinuationToken"] = token
        resp = blobs.s3.list_objects_v2(**kwargs)
        yield from resp.get("Contents", [])
        if not resp.get("IsTruncated"):
            return
        token = resp.get("NextContinuationToken")


def delete_listed(blobs: Blobs, objects: list[dict[str, Any]]) -> None:
    """Delete listed objects (DeleteObjects, ≤ 1 000 a call); StorageIncomplete if S3
    refuses any."""
    for start in range(0, len(objects), DELETE_OBJECTS_MAX):
        chunk = objects[start : start + DELETE_OBJECTS_MAX]
        resp = blobs.s3.delete_objects(
            Bucket=blobs.bucket,
            Delete={"Objects": [{"Key": o["Key"]} for o in chunk], "Quiet": True},
        )
        errors = resp.get("Errors") or []
        if errors:
            first = errors[0]
            raise StorageIncomplete(
                f"S3 refused to delete {len(errors)} object(s) (first: {first.get('Key')}: "
                f"{first.get('Code')}); run the command again."
            )
