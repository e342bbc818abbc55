"""What the real app stored, read (and, for "the server's storage changed" tests, edited)
through the app's own store layer: the tests' view behind the API, never a second model."""

from __future__ import annotations

from typing import Any

from chalicelib.admin.vault_data import describe
from chalicelib.store import bulk, keys
from chalicelib.store.blobs import Blobs
from chalicelib.store.table import Table
from chalicelib.sync.items import wire_item


class ServerState:
    """Reads of the moto table and bucket the app in-process writes to (needs `aws`)."""

    @property
    def table(self) -> Table:
        return Table()

    def vault(self, key_did: str) -> dict[str, Any] | None:
        """The operator's view of the vault this keyDid names (current or retired), or None."""
        return describe(self.table, key_did)

    def is_current(self, key_did: str) -> bool:
        """A registered vault's current keyDid (not retired, not unknown)."""
        found = self.vault(key_did)
        return bool(found and found["registered"] and found["keyDid"] == key_did)

    def is_retired(self, key_did: str) -> bool:
        found = self.vault(key_did)
        return bool(found and found["givenKeyRetiredAt"] is not None)

    def watermark(self, key_did: str) -> int:
        found = self.vault(key_did)
        assert found is not None, key_did
        return int(found["watermark"])

    def items(self, key_did: str) -> dict[str, dict[str, Any]]:
        """Every item row (tombstones included) as the wire item §5 serves."""
        vault_id = self._vault_id(key_did)
        rows = self.table.query_all(
            "pk = :pk AND begins_with(sk, :p)",
            {":pk": keys.vault_pk(vault_id), ":p": keys.item_sk("")},
        )
        return {item["id"]: item for item in map(wire_item, rows)}

    def blob(self, key_did: str, attachment_id: str) -> bytes | None:
        """The attachment's object in the bucket, None if there is none."""
        blobs = Blobs()
        key = keys.attachment_object_key(self._vault_id(key_did), attachment_id)
        try:
            answer = blobs.s3.get_object(Bucket=blobs.bucket, Key=key)
        except blobs.s3.exceptions.NoSuchKey:
            return None
        data: bytes = answer["Body"].read()
        return data

    def sessions(self) -> int:
        """Live session rows in the table (any vault)."""
        rows = bulk.scan(
            self.table,
            FilterExpression="begins_with(pk, :p)",
            ExpressionAttributeValues={":p": {"S": "SESSION#"}},
            ProjectionExpression="pk",
        )
        return sum(1 for _ in rows)

    def overwrite_salt(self, key_did: str, salt_hex: str) -> None:
        """The stored salt changes behind the API's back (a damaged or edited table)."""
        self.table.update(
            keys.meta_key(self._vault_id(key_did)),
            "SET saltHex = :salt",
            values={":salt": salt_hex},
        )

    def _vault_id(self, key_did: str) -> str:
        found = self.vault(key_did)
        assert found is not None, f"no vault for {key_did}"
        return str(found["vaultId"])
