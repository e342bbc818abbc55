"""Authenticated vault state (docs/CRYPTO.md, "Authenticated vault state"; issue 14 rows 2–3).

Every device publishes a sealed manifest of what it wrote: a root (`nt2.manifest:<replica>:root`)
and up to 256 shards (`nt2.manifest:<replica>:<2 hex>`, by the first byte of sha256(item id)),
carried as ordinary sealed items, so the server needs no change and withholding a manifest is
withholding an item. A shard lists `[id, version, revision, deleted, sha256(ciphertext)]` of
each item whose write the server accepted from this device; the root names every shard's
digest, chains to the previous root, and says which root of every other device this one had
seen, at which watermark.

From them a device refuses an item served below the highest attested revision (rollback, a
deletion undone), and notices at the end of every complete pull what the server withheld: an
attested write it never received, another device's view that passed this device's manifest
without receiving it (a fork), an accepted push that never came back (a dropped write).
"""

from __future__ import annotations

import hashlib
import json
import secrets
import sqlite3
from dataclasses import dataclass, field
from functools import lru_cache, partial
from typing import TYPE_CHECKING, Any

from nacl.bindings import (
    crypto_aead_xchacha20poly1305_ietf_decrypt,
    crypto_aead_xchacha20poly1305_ietf_encrypt,
)
from nacl.exceptions import CryptoError as _NaclCryptoError

from chalicelib.shared import crypto
from chalicelib.shared.encoding import EncodingError, b64url_decode, b64url_encode
from nt2sync.errors import ClientError
from nt2sync.vault import ItemRow

if TYPE_CHECKING:
    from nt2sync.engine import Client

RESERVED = "nt2."  # no user item id starts so (they are UUIDs); the client's own ids do
PREFIX = "nt2.manifest:"
KIND = "manifest"
ROOT = "root"
MAX_INT = 2**63 - 1
SHARD_CAP = 240 * 1024  # plaintext bytes: a sealed shard stays under the 256 KiB item limit
SHOWN = 5  # item ids named in one message

_SCHEMA = (
    # every root known, this device's own included (their versions: the fork rule needs them)
    "CREATE TABLE IF NOT EXISTS manifest_roots (replica TEXT NOT NULL, counter INTEGER NOT "
    "NULL, hash TEXT NOT NULL, version INTEGER, watermark INTEGER NOT NULL, shards TEXT NOT "
    "NULL, seen TEXT NOT NULL, PRIMARY KEY (replica, counter))",
    "CREATE TABLE IF NOT EXISTS manifest_shards (replica TEXT NOT NULL, shard TEXT NOT NULL, "
    "counter INTEGER NOT NULL, hash TEXT NOT NULL, PRIMARY KEY (replica, shard))",
    # what each device attests (this one's own writes included)
    "CREATE TABLE IF NOT EXISTS manifest_entries (item_id TEXT NOT NULL, replica TEXT NOT "
    "NULL, shard TEXT NOT NULL, version INTEGER NOT NULL, revision INTEGER NOT NULL, deleted "
    "INTEGER NOT NULL, digest TEXT NOT NULL, PRIMARY KEY (item_id, replica))",
    "CREATE INDEX IF NOT EXISTS manifest_entries_shard ON manifest_entries (replica, shard)",
    # accepted writes of this device not yet seen back in a pull (dropped-push detection)
    "CREATE TABLE IF NOT EXISTS manifest_echo (item_id TEXT PRIMARY KEY, version INTEGER NOT NULL)",
    # this device's own manifest: shards to republish, a root wanted, the push in flight
    "CREATE TABLE IF NOT EXISTS manifest_dirty (shard TEXT PRIMARY KEY)",
    "CREATE TABLE IF NOT EXISTS manifest_own (id TEXT PRIMARY KEY, version INTEGER NOT NULL)",
    "CREATE TABLE IF NOT EXISTS manifest_outbox (id TEXT PRIMARY KEY, ciphertext TEXT NOT "
    "NULL, seq INTEGER NOT NULL)",
    "CREATE TABLE IF NOT EXISTS manifest_flags (name TEXT PRIMARY KEY)",
)


# -- ids and the envelope ------------------------------------------------------------------
def is_reserved(item_id: str) -> bool:
    """True for the client's own ids (manifests): never shown, listed, backed up or typed."""
    return item_id.startswith(RESERVED)


def root_id(replica: str) -> str:
    return f"{PREFIX}{replica}:{ROOT}"


def shard_id(replica: str, shard: str) -> str:
    return f"{PREFIX}{replica}:{shard}"


def shard_of(item_id: str) -> str:
    """The shard of an item: the first byte of sha256(UTF-8 id), two lower-case hex digits."""
    return hashlib.sha256(item_id.encode("utf-8")).hexdigest()[:2]


def parse_id(item_id: str) -> tuple[str, str] | None:
    """(replica, "root" or a shard) of a manifest id; None for any other reserved id."""
    if not item_id.startswith(PREFIX):
        return None
    replica, _, part = item_id[len(PREFIX) :].rpartition(":")
    if not replica or not (part == ROOT or _is_shard(part)):
        return None
    return replica, part


def _is_shard(part: str) -> bool:
    return len(part) == 2 and all(c in "0123456789abcdef" for c in part)


def digest(ciphertext: str) -> str:
    """sha256 (hex) of a ciphertext as sent (the base64url text's ASCII bytes)."""
    return hashlib.sha256(ciphertext.encode("ascii")).hexdigest()


def manifest_aad(salt: bytes, object_id: str, *, epoch: int | None = None) -> bytes:
    """The associated data of a manifest item. The one place it is built: a key epoch
    (re-keying) adds the line `epoch:<E>` after the format version."""
    lines = [f"nt2-sync/v1/{KIND}", salt.hex(), object_id, str(crypto.FORMAT_VERSION)]
    if epoch is not None:
        lines.append(f"epoch:{epoch}")
    return "\n".join(lines).encode("utf-8")


@lru_cache(maxsize=8)
def _key(data_key: bytes) -> bytes:
    return crypto.hkdf(data_key, crypto.ITEM_KEY_INFO)  # the item key: manifests are items


def canonical(body: dict[str, Any]) -> bytes:
    return json.dumps(body, sort_keys=True, separators=(",", ":")).encode("utf-8")


def seal(
    data_key: bytes,
    salt: bytes,
    object_id: str,
    body: dict[str, Any],
    *,
    epoch: int | None = None,
    nonce: bytes | None = None,
) -> str:
    """The ciphertext of a manifest item: the item envelope (0x01 ‖ nonce ‖ XChaCha20-Poly1305)
    of its canonical JSON under the item key, with the manifest's associated data."""
    nonce = secrets.token_bytes(crypto.NONCE_BYTES) if nonce is None else nonce
    aad = manifest_aad(salt, object_id, epoch=epoch)
    body_ct = crypto_aead_xchacha20poly1305_ietf_encrypt(
        canonical(body), aad, nonce, _key(data_key)
    )
    return b64url_encode(bytes([crypto.FORMAT_VERSION]) + nonce + body_ct)


def open_manifest(
    data_key: bytes, salt: bytes, object_id: str, ciphertext: str, *, epoch: int | None = None
) -> dict[str, Any]:
    """The checked body of a manifest item, or crypto.CryptoError."""
    try:
        envelope = b64url_decode(ciphertext)
    except EncodingError as exc:
        raise crypto.TamperedCiphertext("manifest is not base64url") from exc
    if len(envelope) < 1 + crypto.NONCE_BYTES + 16 or envelope[0] != crypto.FORMAT_VERSION:
        raise crypto.TamperedCiphertext("manifest envelope is malformed")
    nonce, body = envelope[1 : 1 + crypto.NONCE_BYTES], envelope[1 + crypto.NONCE_BYTES :]
    aad = manifest_aad(salt, object_id, epoch=epoch)
    try:
        raw = crypto_aead_xchacha20poly1305_ietf_decrypt(body, aad, nonce, _key(data_key))
    except _NaclCryptoError as exc:
        raise crypto.TamperedCiphertext("manifest failed authentication") from exc
    try:
        data = json.loads(raw)
    except ValueError as exc:
        raise crypto.UnsupportedFormat("manifest is not JSON") from exc
    parsed = parse_id(object_id)
    if parsed is None:
        raise crypto.UnsupportedFormat("not a manifest id")
    return _validate(data, *parsed)


def _int(value: Any, low: int = 0) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and low <= value <= MAX_INT


def _hex64(value: Any) -> bool:
    return (
        isinstance(value, str) and len(value) == 64 and all(c in "0123456789abcdef" for c in value)
    )


def _validate(data: Any, replica: str, part: str) -> dict[str, Any]:
    bad = crypto.UnsupportedFormat("unknown manifest format")
    if not isinstance(data, dict) or data.get("v") != crypto.FORMAT_VERSION:
        raise bad
    if data.get("replicaId") != replica or not _int(data.get("counter"), 1):
        raise bad
    if part == ROOT:
        shards, seen = data.get("shards"), data.get("seen")
        ok = (
            data.get("kind") == ROOT
            and _int(data.get("watermark"))
            and (data.get("prev") == "" or _hex64(data.get("prev")))
            and isinstance(shards, dict)
            and all(_is_shard(k) and _hex64(v) for k, v in shards.items())
            and isinstance(seen, dict)
            and all(
                isinstance(k, str)
                and isinstance(v, list)
                and len(v) == 2
                and _int(v[0], 1)
                and _hex64(v[1])
                for k, v in seen.items()
            )
        )
    else:
        entries = data.get("entries")
        ok = (
            data.get("kind") == "shard"
            and data.get("shard") == part
            and isinstance(entries, list)
            and all(
                isinstance(e, list)
                and len(e) == 5
                and isinstance(e[0], str)
                and not is_reserved(e[0])
                and shard_of(e[0]) == part
                and _int(e[1], 1)
                and _int(e[2])
                and e[3] in (0, 1)
                and _hex64(e[4])
                for e in entries
            )
        )
    if not ok:
        raise bad
    return data


# -- local state ---------------------------------------------------------------------------
def _conn(client: Client) -> sqlite3.Connection:
    """The vault's connection, with this module's tables (made on first use in a vault)."""
    vault = client.vault
    if not getattr(vault, "_manifest_tables", False):
        for statement in _SCHEMA:
            vault.conn.execute(statement)
        setattr(vault, "_manifest_tables", True)  # noqa: B010 - the Vault class is not ours
    return vault.conn


def reset(client: Client) -> None:
    """Forget every manifest (sync moved to another server: nothing of the old one counts)."""
    conn = _conn(client)
    with client.vault.transaction():
        for table in ("roots", "shards", "entries", "echo", "dirty", "own", "outbox", "flags"):
            conn.execute(f"DELETE FROM manifest_{table}")  # noqa: S608 - constant names


@dataclass
class Attested:
    """The highest attestation of one item: by (revision, version)."""

    replica: str
    version: int
    revision: int
    deleted: bool
    digest: str


def attested(
    client: Client, item_ids: list[str], staged: list[dict[str, Any]] | None = None
) -> dict[str, Attested]:
    """The highest attestation of each of these items that has one; `staged`: shards of the
    page being checked, which replace what their device's shard said before."""
    conn = _conn(client)
    fresh = {
        (w["shard"]["replicaId"], w["shard"]["shard"]): w["shard"]
        for w in staged or []
        if "shard" in w
    }
    wanted = set(item_ids)
    found: list[tuple[str, str, int, int, int, str]] = []
    for start in range(0, len(item_ids), 500):
        chunk = item_ids[start : start + 500]
        marks = ", ".join("?" * len(chunk))
        sql = f"SELECT * FROM manifest_entries WHERE item_id IN ({marks})"  # noqa: S608
        # columns: item_id, replica, shard, version, revision, deleted, digest
        for item_id, replica, part, *rest in conn.execute(sql, chunk):
            if (replica, part) not in fresh:
                found.append((item_id, replica, *rest))
    for (replica, _), body in fresh.items():
        found.extend(
            (e[0], replica, e[1], e[2], e[3], e[4]) for e in body["entries"] if e[0] in wanted
        )
    best: dict[str, Attested] = {}
    for item_id, replica, version, revision, deleted, dig in found:
        have = best.get(item_id)
        if have is None or (revision, version) > (have.revision, have.version):
            best[item_id] = Attested(replica, version, revision, bool(deleted), dig)
    return best


def stale(remote: dict[str, Any], revision: int, best: Attested | None) -> str | None:
    """Why a served item is older than a manifest attests (None when it is not)."""
    if best is None:
        return None
    item_id, live = remote["id"], not remote.get("deleted")
    by = f"device {best.replica}'s manifest"
    if revision < best.revision:
        what = "its deletion at revision" if best.deleted else "revision"
        return (
            f"The server served item {item_id} at revision {revision}, but {by} attests "
            f"{what} {best.revision}; refusing it as a replay (the item stays as it was)."
        )
    if live and best.deleted and revision == best.revision:
        return (
            f"The server served item {item_id} as live, but {by} attests its deletion; "
            "refusing it (the item stays as it was)."
        )
    same_write = revision == best.revision and int(remote["version"]) <= best.version
    if live and not best.deleted and same_write and digest(remote["ciphertext"]) != best.digest:
        return (
            f"The server served item {item_id} with content other than the revision "
            f"{revision} that {by} attests; refusing it (the item stays as it was)."
        )
    return None


# -- pushes of this device's items ---------------------------------------------------------
def note_accepted(
    client: Client, accepted: list[tuple[str, int, ItemRow | None, str]], *, echo: bool
) -> None:
    """Inside the push's transaction: (id, version, the row if unchanged since, ciphertext)
    of each accepted write: attest it in this device's shard, and (echo) expect it back in
    the next pull."""
    conn, me = _conn(client), client.meta.replica_id
    conn.executemany(
        "INSERT OR REPLACE INTO manifest_echo (item_id, version) VALUES (?, ?)",
        [(item_id, version) for item_id, version, _, _ in accepted] if echo else [],
    )
    rows = [(i, v, r, c) for i, v, r, c in accepted if r is not None and not is_reserved(i)]
    conn.executemany(
        "INSERT OR REPLACE INTO manifest_entries VALUES (?, ?, ?, ?, ?, ?, ?)",
        [
            (i, me, shard_of(i), v, _revision(client, r), int(r.deleted), digest(c))
            for i, v, r, c in rows
        ],
    )
    conn.executemany(
        "INSERT OR IGNORE INTO manifest_dirty (shard) VALUES (?)",
        [(shard_of(i),) for i, *_ in rows],
    )


SPOT_CHECKS = 4  # accepted writes asked for again after a push the watermark skips


def spot_check(client: Client, accepted: list[tuple[str, int]]) -> None:
    """After a push whose versions the watermark skipped (nothing else was written since):
    ask for a few of them (all, up to four) one by one: each must come back at its version, or
    have been overwritten since. A server that answered "accepted" and stored nothing (or
    stored something else there) is caught, at four small requests per push."""
    from nt2sync.api import Api  # noqa: PLC0415 - as in _push_outbox
    from nt2sync.pages import check_pull_page  # noqa: PLC0415

    picked = accepted
    if len(accepted) > SPOT_CHECKS:
        picked = secrets.SystemRandom().sample(accepted, SPOT_CHECKS)
    dropped = []
    for item_id, version in picked:
        page = client.call(partial(Api.pull, since=version - 1, limit=1))
        items, _, _ = check_pull_page(page, version - 1, 1)
        first = items[0] if items else None
        if first is None or (int(first["version"]) == version and first["id"] != item_id):
            dropped.append(item_id)
    if dropped:
        client.notices.append(_dropped(dropped))


def _dropped(ids: list[str]) -> str:
    user = [i for i in ids if not is_reserved(i)]
    return (
        f"The server accepted {len(ids)} change(s) from this device but never returned "
        f"them ({_names(user or ids)}): it may have dropped them; they are still here. "
        "If this repeats, do not trust this server with your changes."
    )


def republish_all(client: Client) -> None:
    """Reseal every shard of this device's manifest at its next publication (after a re-key:
    manifests sealed under the old data key no longer open)."""
    conn, me = _conn(client), client.meta.replica_id
    with client.vault.transaction():
        conn.execute(
            "INSERT OR IGNORE INTO manifest_dirty (shard) SELECT DISTINCT shard FROM "
            "manifest_entries WHERE replica = ?",
            (me,),
        )
        conn.execute("INSERT OR IGNORE INTO manifest_flags (name) VALUES ('root')")
        # roots sealed under the old key open nowhere any more, so no device can claim to
        # have seen them: they stop counting in the "hid this device's changes" check
        conn.execute("UPDATE manifest_roots SET version = NULL WHERE replica = ?", (me,))


def _revision(client: Client, row: ItemRow) -> int:
    """The revision a write carried: a deletion's is in its sealed record (a row keeps the
    last live revision)."""
    if not row.deleted or not row.ciphertext:
        return row.revision
    keys = client.require_keys()
    try:
        return int(
            crypto.open_deletion(keys.data_key, client.salt, row.id, row.ciphertext)["revision"]
        )
    except crypto.CryptoError:
        return row.revision


# -- pulls -----------------------------------------------------------------------------------
@dataclass
class PullCheck:
    """What one pull learnt, checked when it ends (a complete pull holds everything up to its
    watermark: anything attested below it and missing was withheld)."""

    first: bool  # the device's first pull (join): items no manifest attests are named
    before: dict[str, ItemRow | None] = field(default_factory=dict)  # applied: the old rows
    touched: set[str] = field(default_factory=set)  # items whose attestation changed
    refused: dict[str, str] = field(default_factory=dict)  # id → the refusal, told once
    roots: set[str] = field(default_factory=set)  # replicas whose root arrived
    alarms: list[str] = field(default_factory=list)


_checks: dict[int, PullCheck] = {}  # by id(client): the pull under way


def begin_pull(client: Client) -> PullCheck:
    """A new pull's check (the pages reach it through `current`)."""
    _conn(client)
    check = _checks[id(client)] = PullCheck(first=client.meta.watermark == 0)
    return check


def current(client: Client) -> PullCheck:
    """The check of the pull under way (a page applied outside a pull gets its own)."""
    return _checks.get(id(client)) or begin_pull(client)


def take_page(
    client: Client, check: PullCheck, items: list[dict[str, Any]]
) -> list[dict[str, Any]]:
    """Open and check the manifest items of a page (before anything of it is stored); returns
    the staged writes for `store_page`. A manifest that does not open refuses the page."""
    keys, salt = client.require_keys(), client.salt
    conn, me = _conn(client), client.meta.replica_id
    staged: list[dict[str, Any]] = []
    for remote in items:
        parsed = parse_id(remote["id"])
        if parsed is None:
            continue  # a reserved id this client does not use: never an item
        replica, part = parsed
        try:
            if remote.get("deleted") or not isinstance(remote.get("ciphertext"), str):
                raise crypto.TamperedCiphertext("a manifest is never deleted")
            body = open_manifest(keys.data_key, salt, remote["id"], remote["ciphertext"])
        except crypto.CryptoError:
            # Ignored, as if withheld (which the server can always do): a manifest is no user
            # item, and one sealed under a data key this vault no longer uses (after a re-key,
            # by a device that has not republished) must not stop a sync or a join.
            check.alarms.append(
                f"The server sent device {replica}'s manifest ({remote['id']}) altered, from "
                "another vault or under an older key; it was ignored, and what it attests is "
                "not verified."
            )
            continue
        hashed = digest(remote["ciphertext"])
        if replica == me:
            if part == ROOT:
                _check_own_root(conn, check, body, hashed)
            continue  # this device's own entries are already here
        if part == ROOT:
            staged.extend(_take_root(conn, check, me, body, hashed, int(remote["version"])))
        else:
            old = conn.execute(
                "SELECT counter FROM manifest_shards WHERE replica = ? AND shard = ?",
                (replica, part),
            ).fetchone()
            if old is None or body["counter"] > old[0]:
                staged.append({"shard": body, "hash": hashed})
    return staged


def _check_own_root(
    conn: sqlite3.Connection, check: PullCheck, body: dict[str, Any], h: str
) -> None:
    row = conn.execute(
        "SELECT hash FROM manifest_roots WHERE replica = ? AND counter = ?",
        (body["replicaId"], body["counter"]),
    ).fetchone()
    if row is None or row[0] != h:
        check.alarms.append(
            f"The server holds a manifest of this device (number {body['counter']}) that this "
            "device did not write: another device is using this vault file's identity (a "
            "copied vault file), or this vault was restored from an older copy. Stop using "
            "one of the copies, and join again on it with `nt2sync join`."
        )


def _take_root(
    conn: sqlite3.Connection, check: PullCheck, me: str, body: dict[str, Any], h: str, version: int
) -> list[dict[str, Any]]:
    replica, counter = body["replicaId"], body["counter"]
    last = conn.execute(
        "SELECT counter, hash FROM manifest_roots WHERE replica = ? ORDER BY counter DESC LIMIT 1",
        (replica,),
    ).fetchone()
    fork = (
        f"Your devices were shown different versions of the vault (a fork): device {replica}'s "
        "manifest {why}. The server is withholding or replaying changes; compare `nt2sync vault "
        "fingerprint` on your devices and do not trust this server until they agree."
    )
    if last is not None:
        if counter < last[0]:
            check.alarms.append(
                f"The server replayed an older manifest of device {replica} (number {counter}; "
                f"this device has seen {last[0]}); it was ignored."
            )
            return []
        if counter == last[0]:
            if last[1] != h:
                check.alarms.append(fork.format(why=f"number {counter} exists in two versions"))
            return []
        if counter == last[0] + 1 and body["prev"] != last[1]:
            check.alarms.append(fork.format(why=f"number {counter} does not follow {last[0]}"))
    for other, (k, claimed) in body["seen"].items():
        row = conn.execute(
            "SELECT hash FROM manifest_roots WHERE replica = ? AND counter = ?", (other, k)
        ).fetchone()
        if row is not None and row[0] != claimed:
            whose = "this device's" if other == me else f"device {other}'s"
            check.alarms.append(fork.format(why=f"saw {whose} manifest {k} in another version"))
    mine = body["seen"].get(me, [0, ""])[0]
    passed = conn.execute(
        "SELECT MAX(counter) FROM manifest_roots WHERE replica = ? AND version IS NOT NULL "
        "AND version <= ?",
        (me, body["watermark"]),
    ).fetchone()[0]
    if passed is not None and mine < passed:
        check.alarms.append(
            f"The server hid this device's changes from device {replica}: its view of the vault "
            f"(at watermark {body['watermark']}) passed this device's manifest {passed} without "
            f"receiving it (it saw {mine or 'none'}). Your devices were shown different versions "
            "of the vault (a fork); do not trust this server until `nt2sync vault fingerprint` "
            "agrees on both."
        )
    check.roots.add(replica)
    return [{"root": body, "hash": h, "version": version}]


def store_page(
    client: Client, check: PullCheck, staged: list[dict[str, Any]], served: list[dict[str, Any]]
) -> None:
    """Inside the page's transaction: the staged manifests, and the echoes the page brought."""
    conn = client.vault.conn
    for write in staged:
        if "root" in write:
            body = write["root"]
            conn.execute(
                "INSERT OR REPLACE INTO manifest_roots VALUES (?, ?, ?, ?, ?, ?, ?)",
                (
                    body["replicaId"],
                    body["counter"],
                    write["hash"],
                    write["version"],
                    body["watermark"],
                    json.dumps(body["shards"]),
                    json.dumps(body["seen"]),
                ),
            )
            continue
        body, replica, part = write["shard"], write["shard"]["replicaId"], write["shard"]["shard"]
        old = [
            r[0]
            for r in conn.execute(
                "SELECT item_id FROM manifest_entries WHERE replica = ? AND shard = ?",
                (replica, part),
            )
        ]
        conn.execute(
            "DELETE FROM manifest_entries WHERE replica = ? AND shard = ?", (replica, part)
        )
        conn.executemany(
            "INSERT INTO manifest_entries VALUES (?, ?, ?, ?, ?, ?, ?)",
            [(e[0], replica, part, e[1], e[2], e[3], e[4]) for e in body["entries"]],
        )
        conn.execute(
            "INSERT OR REPLACE INTO manifest_shards VALUES (?, ?, ?, ?)",
            (replica, part, body["counter"], write["hash"]),
        )
        check.touched.update(old)
        check.touched.update(e[0] for e in body["entries"])
    conn.executemany(
        "DELETE FROM manifest_echo WHERE item_id = ? AND version <= ?",
        [(r["id"], int(r["version"])) for r in served],
    )


def view_advanced(client: Client) -> None:
    """Another device's change was applied here: the next publication attests the new view."""
    _conn(client).execute("INSERT OR IGNORE INTO manifest_flags (name) VALUES ('root')")


def end_pull(client: Client, check: PullCheck, watermark: int) -> None:
    """After a complete pull: refuse what came in below its attestation, name what was
    withheld or never came back, and tell the person of any fork."""
    _checks.pop(id(client), None)
    conn, vault = _conn(client), client.vault
    ids = sorted(check.touched | set(check.before))
    best = attested(client, ids)
    rows = vault.get_items(ids)
    withheld: list[str] = []
    reverted: list[ItemRow | None] = []
    for item_id in ids:
        claim, row = best.get(item_id), rows.get(item_id)
        if claim is None or item_id in check.refused or _holds(row, claim):
            continue
        if item_id in check.before:  # served in this pull below its attestation
            served = {
                "id": item_id,
                "deleted": row.deleted if row else True,
                "version": row.version if row else 0,
                "ciphertext": (row.ciphertext if row else None) or "",
            }
            check.refused[item_id] = stale(served, row.revision if row else 0, claim) or (
                f"The server served item {item_id} older than a manifest attests; refusing it."
            )
            reverted.append(check.before[item_id])
            _restore(client, item_id, check.before[item_id])
        else:
            withheld.append(item_id)
    notices = client.notices
    notices.extend(check.alarms)
    notices.extend(_some(list(check.refused.values())))
    if withheld:
        notices.append(
            f"The server withheld {len(withheld)} change(s) that your other devices made "
            f"({_names(withheld)}): their manifests attest them, but this device's pull passed "
            "them without receiving them. Your devices may have been shown different versions "
            "of the vault (a fork); compare `nt2sync vault fingerprint` on them."
        )
    if check.first:
        unattested = [i for i in check.before if i not in best and i not in check.refused]
        if unattested:
            notices.append(
                f"{len(unattested)} item(s) could not be verified against any device's "
                f"manifest ({_names(unattested)}): written by a device that has not published "
                "one yet (an older nt2sync, or an edit in flight); they were accepted as served."
            )
    dropped = [
        r[0]
        for r in conn.execute(
            "SELECT item_id FROM manifest_echo WHERE version <= ? ORDER BY item_id", (watermark,)
        )
    ]
    if dropped:
        notices.append(_dropped(dropped))
        with vault.transaction():
            conn.execute("DELETE FROM manifest_echo WHERE version <= ?", (watermark,))
    for replica in check.roots:
        missing = _shards_behind(conn, replica)
        if missing:
            notices.append(
                f"The server withheld part of device {replica}'s manifest (shard(s) "
                f"{', '.join(missing[:SHOWN])}); items it attests there could not be verified."
            )


def _holds(row: ItemRow | None, claim: Attested) -> bool:
    if row is None:
        return claim.deleted  # a purged tombstone: the item is rightly absent
    if claim.deleted:
        return row.deleted or row.revision > claim.revision
    return row.revision >= claim.revision


def _restore(client: Client, item_id: str, before: ItemRow | None) -> None:
    if before is not None:
        client.vault.put_item(before)
        return
    with client.vault.transaction():  # the item came only from this refused answer
        client.vault.conn.execute("DELETE FROM items WHERE id = ?", (item_id,))


def _shards_behind(conn: sqlite3.Connection, replica: str) -> list[str]:
    row = conn.execute(
        "SELECT shards FROM manifest_roots WHERE replica = ? ORDER BY counter DESC LIMIT 1",
        (replica,),
    ).fetchone()
    held = dict(
        conn.execute("SELECT shard, hash FROM manifest_shards WHERE replica = ?", (replica,))
    )
    return sorted(s for s, h in json.loads(row[0]).items() if held.get(s) != h) if row else []


def _names(ids: list[str]) -> str:
    more = f" and {len(ids) - SHOWN} more" if len(ids) > SHOWN else ""
    return ", ".join(ids[:SHOWN]) + more


def _some(messages: list[str]) -> list[str]:
    if len(messages) <= SHOWN:
        return messages
    return [*messages[:SHOWN], f"… and {len(messages) - SHOWN} more items refused the same way."]


def unverified(client: Client) -> int:
    """How many items some manifest attests at a later state than this device holds."""
    conn = _conn(client)
    ids = [r[0] for r in conn.execute("SELECT DISTINCT item_id FROM manifest_entries")]
    best, rows = attested(client, ids), client.vault.get_items(ids)
    return sum(1 for i in ids if not _holds(rows.get(i), best[i]))


# -- publishing this device's manifest ----------------------------------------------------------
def publish(client: Client) -> int:
    """Publish this device's manifest when it has something new to attest: its own accepted
    writes (their shards and a root), or another device's change it applied (a root only).
    A pull that brought only manifests publishes nothing. Returns the items pushed."""
    conn = _conn(client)
    if conn.execute("SELECT COUNT(*) FROM manifest_outbox").fetchone()[0] == 0:
        dirty = [r[0] for r in conn.execute("SELECT shard FROM manifest_dirty ORDER BY shard")]
        wanted = conn.execute("SELECT COUNT(*) FROM manifest_flags").fetchone()[0]
        if not dirty and not wanted:
            return 0
        with client.vault.transaction():
            _build(client, conn, dirty)
    return _push_outbox(client, conn)


def _build(client: Client, conn: sqlite3.Connection, dirty: list[str]) -> None:
    """Seal the changed shards and a new root, recorded before they are sent (a retry resends
    these exact bytes: a root number never exists in two versions)."""
    keys, salt, meta = client.require_keys(), client.salt, client.meta
    me = meta.replica_id
    last = conn.execute(
        "SELECT counter, hash, shards FROM manifest_roots WHERE replica = ? "
        "ORDER BY counter DESC LIMIT 1",
        (me,),
    ).fetchone()
    counter = (last[0] if last else 0) + 1
    shards: dict[str, str] = json.loads(last[2]) if last else {}
    out: list[tuple[str, str]] = []
    for part in dirty:
        entries = [
            [i, v, r, d, h]
            for i, v, r, d, h in conn.execute(
                "SELECT item_id, version, revision, deleted, digest FROM manifest_entries "
                "WHERE replica = ? AND shard = ? ORDER BY item_id",
                (me, part),
            )
        ]
        body = {"v": 1, "kind": "shard", "replicaId": me, "shard": part, "counter": counter}
        body["entries"] = entries
        if len(canonical(body)) > SHARD_CAP:
            raise ClientError("This vault has too many items for its manifest; update nt2sync.")
        ciphertext = seal(keys.data_key, salt, shard_id(me, part), body)
        shards[part] = digest(ciphertext)
        out.append((shard_id(me, part), ciphertext))
    seen = {
        replica: [k, h]
        for replica, k, h in conn.execute(
            "SELECT replica, MAX(counter), hash FROM manifest_roots WHERE replica != ? "
            "GROUP BY replica",
            (me,),
        )
    }
    root = {
        "v": 1,
        "kind": ROOT,
        "replicaId": me,
        "counter": counter,
        "watermark": meta.watermark,
        "prev": last[1] if last else "",
        "shards": shards,
        "seen": seen,
    }
    ciphertext = seal(keys.data_key, salt, root_id(me), root)
    out.append((root_id(me), ciphertext))  # last: a root never names a shard not yet stored
    conn.execute(
        "INSERT INTO manifest_roots VALUES (?, ?, ?, NULL, ?, ?, ?)",
        (me, counter, digest(ciphertext), meta.watermark, json.dumps(shards), json.dumps(seen)),
    )
    conn.executemany(
        "INSERT INTO manifest_outbox VALUES (?, ?, ?)",
        [(i, c, n) for n, (i, c) in enumerate(out)],
    )
    conn.execute("DELETE FROM manifest_dirty")
    conn.execute("DELETE FROM manifest_flags")


def _push_outbox(client: Client, conn: sqlite3.Connection) -> int:
    from nt2sync.api import Api  # noqa: PLC0415 - api imports nothing of ours; keeps this light

    out = list(conn.execute("SELECT id, ciphertext FROM manifest_outbox ORDER BY seq"))
    for _ in range(3):  # a conflict: our id was written elsewhere (a lost answer): rebase
        base = dict(conn.execute("SELECT id, version FROM manifest_own"))
        items = [
            {"id": i, "baseVersion": base.get(i, 0), "deleted": False, "ciphertext": c}
            for i, c in out
        ]
        batch_id = "m-" + secrets.token_hex(16)
        response = client.call(partial(Api.push, batch_id=batch_id, items=items))
        results = response.get("results")
        if not isinstance(results, list) or len(results) != len(items):
            raise ClientError("The server answered a push with the wrong number of results.")
        redo = False
        ours = sorted(
            r["version"]
            for r in results
            if isinstance(r, dict) and r.get("status") == "accepted" and _int(r.get("version"), 1)
        )
        mark, head = client.meta.watermark, response.get("watermark")
        # Nothing but this push since the watermark: its versions are ours, so the watermark
        # moves past them (a manifest that comes back changes nothing, and an honest sync
        # ends with the device at the head). A dropped manifest then looks like a device that
        # published less often (docs/CRYPTO.md).
        skip = (
            bool(ours) and ours == list(range(mark + 1, mark + len(ours) + 1)) and head == ours[-1]
        )
        with client.vault.transaction():
            for sent, result in zip(items, results, strict=True):
                version = result.get("version") if isinstance(result, dict) else None
                if result.get("status") == "accepted" and _int(version, 1):
                    conn.execute(
                        "INSERT OR REPLACE INTO manifest_own VALUES (?, ?)", (sent["id"], version)
                    )
                    if not skip:
                        conn.execute(
                            "INSERT OR REPLACE INTO manifest_echo VALUES (?, ?)",
                            (sent["id"], version),
                        )
                    if sent["id"].endswith(":" + ROOT):
                        conn.execute(
                            "UPDATE manifest_roots SET version = ? WHERE replica = ? AND hash = ?",
                            (version, client.meta.replica_id, digest(sent["ciphertext"])),
                        )
                    conn.execute("DELETE FROM manifest_outbox WHERE id = ?", (sent["id"],))
                    continue
                current = result.get("current")
                now = current.get("version") if isinstance(current, dict) else 0
                conn.execute(
                    "INSERT OR REPLACE INTO manifest_own VALUES (?, ?)",
                    (sent["id"], now if _int(now, 1) else 0),
                )
                redo = True
            if skip:
                client.vault.set_meta(watermark=head)
        if not redo:
            return len(items)
        out = list(conn.execute("SELECT id, ciphertext FROM manifest_outbox ORDER BY seq"))
    raise ClientError("The server keeps refusing this device's manifest; try the sync again.")


def known_items(client: Client) -> int:
    """How many manifest items the server holds, as far as this device knows (subtracted
    from the server's item count before it is shown: a person counts their own items)."""
    conn = _conn(client)
    own = conn.execute("SELECT COUNT(*) FROM manifest_own").fetchone()[0]
    roots = conn.execute(
        "SELECT COUNT(DISTINCT replica) FROM manifest_roots WHERE replica != ?",
        (client.meta.replica_id,),
    ).fetchone()[0]
    shards = conn.execute("SELECT COUNT(*) FROM manifest_shards").fetchone()[0]
    return int(own + roots + shards)
