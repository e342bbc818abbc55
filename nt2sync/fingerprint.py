"""A short code of the vault's synced state, for a person to compare two devices.

Two devices that hold the same items at the same revisions with the same ciphertexts print
the same code; a server that shows them different states (a fork, a withheld or replaced
item) makes the codes differ. The code covers live items only: tombstones are purged after
the retention, so a device that joined later rightly holds fewer. Manifests are not in it
(each device's differs by design); `unverified` counts the items that some device's
manifest attests at a later state than this device holds.
"""

from __future__ import annotations

import hashlib
from typing import TYPE_CHECKING, Any

from nt2sync import manifests

if TYPE_CHECKING:
    from nt2sync.engine import Client

ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"  # Crockford base32
CODE_CHARS = 16  # 80 bits, in four groups of four


def fingerprint(client: Client) -> dict[str, Any]:
    """{fingerprint, items, watermark, pending, unverified} of the local vault."""
    digest = hashlib.sha256(b"nt2-sync/v1/fingerprint\n")
    rows = sorted(client.vault.items(), key=lambda r: r.id)
    for row in rows:
        ciphertext = (row.ciphertext or "").encode("ascii")
        line = f"{row.id}\t{row.revision}\t{hashlib.sha256(ciphertext).hexdigest()}\n"
        digest.update(line.encode("utf-8"))
    value = int.from_bytes(digest.digest()[:10], "big")
    chars = "".join(ALPHABET[(value >> (5 * i)) & 31] for i in reversed(range(CODE_CHARS)))
    code = "-".join(chars[i : i + 4] for i in range(0, CODE_CHARS, 4))
    return {
        "fingerprint": code,
        "items": len(rows),
        "watermark": client.meta.watermark,
        "pending": client.vault.count_dirty(),
        # items some device's manifest attests at a later state than this device holds
        "unverified": manifests.unverified(client),
    }
