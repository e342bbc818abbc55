"""Promo codes: created by the operator command, stored hashed, redeemed atomically (§9).

A code is 20 random characters of Crockford base32 (100 bits, from `secrets`), shown once at
creation. Only its SHA-256 is stored: with that much entropy a plain hash cannot be reversed
by guessing, and no server-side secret (pepper) has to be kept in step between the API and
the operator's machine.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from typing import Any

from chalicelib.clock import DAY_MS, now_ms
from chalicelib.errors import ApiError, ErrorCode
from chalicelib.identity import Principal, commit_with_session
from chalicelib.premium.summary import Change, Snapshot, change_entitlements
from chalicelib.store import entitlement_rows, keys, promo_rows
from chalicelib.store.table import Table
from chalicelib.store.txn import Transaction

ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"  # Crockford base32: no I, L, O, U
CODE_CHARS = 20
GROUP = 5
_CONFUSABLE = str.maketrans({"O": "0", "I": "1", "L": "1"})
_HASH_CONTEXT = b"nt2-sync/v1/promo\n"


def generate_code() -> str:
    """A fresh code, e.g. `7K3QX-M0P4T-...`, grouped for reading aloud."""
    raw = "".join(secrets.choice(ALPHABET) for _ in range(CODE_CHARS))
    return "-".join(raw[i : i + GROUP] for i in range(0, CODE_CHARS, GROUP))


def normalize_code(code: str) -> str:
    """What a person may type for a code: any case, spaces and dashes, O/I/L for 0/1/1."""
    return "".join(code.split()).replace("-", "").upper().translate(_CONFUSABLE)


def code_hash(code: str) -> str:
    """The stored name of a code: SHA-256 of its normalised form (domain-separated)."""
    return hashlib.sha256(_HASH_CONTEXT + normalize_code(code).encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class PromoInfo:
    """An operator's view of one code (never the code itself)."""

    code_hash: str
    duration_days: int
    max_redemptions: int
    redemptions: int
    expires_at: int | None
    created_at: int


def create_codes(
    table: Table,
    *,
    duration_days: int,
    max_redemptions: int,
    expires_at: int | None = None,
    count: int = 1,
) -> list[str]:
    """Create `count` codes with the same terms; returns the codes (the only time they exist)."""
    if duration_days < 1 or max_redemptions < 1 or count < 1:
        raise ValueError("duration, maximum redemptions and count must be at least 1")
    codes: list[str] = []
    now = now_ms()
    for _ in range(count):
        code = generate_code()
        digest = code_hash(code)
        fields: dict[str, Any] = {
            "durationDays": duration_days,
            "maxRedemptions": max_redemptions,
            "redemptions": 0,
            "expiresAt": expires_at,
            "createdAt": now,
        }
        promo_rows.create(table, digest, fields, now)
        codes.append(code)
    return codes


def list_codes(table: Table) -> list[PromoInfo]:
    """Every code with its usage, oldest first (the operator's index partition + its rows)."""
    digests = promo_rows.listed(table)
    found = promo_rows.get_many(table, digests)
    out: list[PromoInfo] = []
    for d in digests:
        stored = found.get(d)
        if stored is None:
            continue
        expires_at = stored.get("expiresAt")
        out.append(
            PromoInfo(
                code_hash=d,
                duration_days=int(stored["durationDays"]),
                max_redemptions=int(stored["maxRedemptions"]),
                redemptions=int(stored.get("redemptions") or 0),
                expires_at=int(expires_at) if expires_at is not None else None,
                created_at=int(stored.get("createdAt") or 0),
            )
        )
    return sorted(out, key=lambda p: (p.created_at, p.code_hash))


def _not_found() -> ApiError:
    return ApiError(ErrorCode.PROMO_NOT_FOUND, "This promo code is unknown or has expired.")


def redeem(
    table: Table, vault_id: str, code: str, principal: Principal | None = None
) -> dict[str, Any]:
    """Redeem a code for a vault: one transaction counts it, marks it used and extends promo time
    (with the caller's session checks, when a principal is given: §3).

    Returns the vault's entitlement summary after the redemption.
    """
    digest = code_hash(code)

    def plan(snap: Snapshot) -> Change:
        now = now_ms()
        promo, used = promo_rows.code_and_use(table, vault_id, digest)
        if promo is None:
            raise _not_found()
        if used:
            raise ApiError(ErrorCode.ALREADY_REDEEMED, "This vault has already redeemed this code.")
        expires_at = promo.get("expiresAt")
        if expires_at is not None and int(expires_at) <= now:
            raise _not_found()
        if int(promo.get("redemptions") or 0) >= int(promo["maxRedemptions"]):
            raise ApiError(ErrorCode.PROMO_EXHAUSTED, "This promo code has no redemptions left.")

        current = snap.rows.get(keys.PROMO_ENTITLEMENT_SK)
        old_end = int(current["endsAt"]) if current else 0
        # A promo adds its duration to the end of any promo time the vault already has.
        new_end = max(now, old_end) + int(promo["durationDays"]) * DAY_MS
        ent_key = keys.entitlement_key(vault_id, keys.PROMO_ENTITLEMENT_SK)
        ent_row = {**keys.plain(ent_key), "source": "promo", "endsAt": new_end, "updatedAt": now}
        # Every condition re-checks what was read, so a lost race cancels the whole transaction
        # and `change_entitlements` plans again from fresh reads.
        txn = Transaction()
        promo_rows.add_redemption(
            txn, vault_id, digest, now, {"redeemedAt": now, "endsAt": new_end}
        )
        entitlement_rows.add_promo_time(txn, ent_row, old_end)
        return Change(txn, {keys.PROMO_ENTITLEMENT_SK: ent_row})

    commit = None
    if principal is not None:
        caller = principal

        def commit(txn: Transaction) -> None:
            commit_with_session(table, caller, txn)

    summary = change_entitlements(table, vault_id, plan, commit)
    if summary is None:
        raise ApiError(ErrorCode.VAULT_NOT_FOUND, "No vault exists for this Key DID.")
    return summary
