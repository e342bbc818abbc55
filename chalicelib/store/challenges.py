"""Challenge nonces (PROTOCOL.md §3): at most 10 outstanding per keyDid, each single use.

Table design, two rows per nonce:
- `NONCE#<nonce>` / `NONCE` → keyDid, slot, expiresAt, ttl: what a spend looks up (a nonce
  presented for another keyDid is found, and consumed, too);
- `CHALLENGE#<keyDid>` / `SLOT#00`…`SLOT#09` → nonce, expiresAt, ttl: the keyDid's slots.
  A slot is free when it has no row or its nonce expired, so a keyDid never has more than
  10 nonces outstanding, whoever asks.

- `outstanding(key_did)`: one strongly consistent Query (≤ 10 small rows).
- `claim(...)`: one transaction of two Puts: the slot, conditional on still being free
  (`attribute_not_exists(pk) OR expiresAt <= now`, so two requests racing for one slot
  cannot both get it), and the nonce row (`attribute_not_exists(pk)`).
- `spend(nonce)`: DeleteItem of the nonce row returning the old row (exactly one caller
  gets it, whatever the concurrency), then DeleteItem of its slot, conditional on still
  holding that nonce.
"""

from __future__ import annotations

from typing import Any

from botocore.exceptions import ClientError

from chalicelib.store import keys
from chalicelib.store.table import Item, Table, condition_failed, to_av, to_item
from chalicelib.store.txn import Cancelled, Transaction


def _plain(key: dict[str, dict[str, str]]) -> dict[str, Any]:
    return {name: value["S"] for name, value in key.items()}


class Challenges:
    def __init__(self, table: Table) -> None:
        self.table = table

    def outstanding(self, key_did: str) -> list[Item]:
        rows, _ = self.table.query(
            "pk = :pk AND begins_with(sk, :slot)",
            {":pk": keys.challenges_pk(key_did), ":slot": "SLOT#"},
        )
        return rows

    def claim(
        self, key_did: str, slot: int, nonce: str, expires_at: int, now: int, ttl: int
    ) -> bool:
        """Take a free slot for a new nonce; False when another request took it first."""
        slot_row = _plain(keys.challenge_slot_key(key_did, slot))
        slot_row.update({"nonce": nonce, "slot": slot, "expiresAt": expires_at, "ttl": ttl})
        nonce_row = _plain(keys.nonce_key(nonce))
        nonce_row.update({"keyDid": key_did, "slot": slot, "expiresAt": expires_at, "ttl": ttl})
        txn = Transaction()
        txn.add(
            "slot",
            {
                "Put": {
                    "Item": to_item(slot_row),
                    "ConditionExpression": "attribute_not_exists(pk) OR expiresAt <= :now",
                    "ExpressionAttributeValues": {":now": to_av(now)},
                }
            },
        )
        txn.add(
            "nonce",
            {
                "Put": {
                    "Item": to_item(nonce_row),
                    "ConditionExpression": "attribute_not_exists(pk)",
                }
            },
        )
        try:
            txn.commit(self.table)
        except Cancelled:
            return False
        return True

    def spend(self, nonce: str) -> Item | None:
        """Consume a nonce (whoever presents it); None when it is unknown or used."""
        row = self.table.delete(keys.nonce_key(nonce), return_old=True)
        if row is None:
            return None
        try:
            self.table.delete(
                keys.challenge_slot_key(str(row["keyDid"]), int(row["slot"])),
                condition="nonce = :n",
                values={":n": nonce},
            )
        except ClientError as exc:
            if not condition_failed(exc):
                raise
        return row
