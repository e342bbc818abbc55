"""Which key opens what: the current key epoch, and the previous one kept during a re-key.

A device accepts as current only what opens under its current data key and epoch. What
opens only under the retired key (kept while a re-key is finished here, and on a device
that adopted a re-key, to recognise the previous epoch) is "sealed under a retired key":
the re-keying device re-encrypts it; any other device keeps its own copy and says so.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from chalicelib.shared import crypto
from nt2sync.errors import TamperedItem

if TYPE_CHECKING:
    from nt2sync.engine import Client
    from nt2sync.unlock import Keys

STILL_OLD_KEY = (
    "Item {id} from the server is still sealed under the vault's previous key, so it was not "
    "accepted: a re-key is still in progress on another device (or the server sent an item "
    "written with the old key). This device keeps its own copy; sync again later."
)

Opener = Callable[[bytes, bytes, str, str], dict[str, Any]]


def _item_opener(epoch: int) -> Opener:
    return lambda key, salt, item_id, ct: crypto.decrypt_item(key, salt, item_id, ct, epoch=epoch)


def _deletion_opener(epoch: int) -> Opener:
    return lambda key, salt, item_id, ct: crypto.open_deletion(key, salt, item_id, ct, epoch=epoch)


def _open(
    client: Client, item_id: str, ciphertext: str, opener: Callable[[int], Opener]
) -> tuple[dict[str, Any], bool]:
    """(plaintext, sealed under the current key?); the current key's refusal otherwise."""
    keys = client.require_keys()
    try:
        return opener(keys.epoch)(keys.data_key, client.salt, item_id, ciphertext), True
    except crypto.CryptoError as current_refusal:
        for data_key, epoch in keys.retired:
            try:
                return opener(epoch)(data_key, client.salt, item_id, ciphertext), False
            except crypto.CryptoError:
                continue
        raise current_refusal


def open_remote_item(client: Client, item_id: str, ciphertext: str) -> dict[str, Any] | None:
    """A server item's plaintext if it is current here; None when it is sealed under the
    retired key on a device that is not re-keying (not accepted, a notice says why)."""
    plaintext, current = _open(client, item_id, ciphertext, _item_opener)
    return plaintext if current or _accept_retired(client, item_id) else None


def open_remote_deletion(client: Client, item_id: str, ciphertext: str) -> dict[str, Any] | None:
    """A server deletion record, as open_remote_item."""
    record, current = _open(client, item_id, ciphertext, _deletion_opener)
    return record if current or _accept_retired(client, item_id) else None


def _accept_retired(client: Client, item_id: str) -> bool:
    # The re-keying device accepts it (it re-encrypts every such row before it is done);
    # another device must not, or a holder of the old key could still write what it accepts.
    if client.require_keys().rekeying:
        return True
    notice = STILL_OLD_KEY.format(id=item_id)
    if notice not in client.notices:
        client.notices.append(notice)
    return False


def open_local_item(client: Client, item_id: str, ciphertext: str) -> dict[str, Any]:
    """A stored item's plaintext (under the current key, or the retired one during a re-key)."""
    try:
        return _open(client, item_id, ciphertext, _item_opener)[0]
    except crypto.CryptoError as exc:
        raise TamperedItem(f"The local copy of item {item_id} is damaged.") from exc


def open_local_deletion(
    client: Client, item_id: str, ciphertext: str
) -> tuple[dict[str, Any], bool]:
    """A stored deletion record and whether it is sealed under the current key."""
    try:
        return _open(client, item_id, ciphertext, _deletion_opener)
    except crypto.CryptoError as exc:
        raise TamperedItem(f"The local deletion of item {item_id} is damaged.") from exc


def is_current_item(client: Client, item_id: str, ciphertext: str) -> bool:
    """True when a stored item opens under the current key and epoch."""
    keys = client.require_keys()
    try:
        crypto.decrypt_item(keys.data_key, client.salt, item_id, ciphertext, epoch=keys.epoch)
    except crypto.CryptoError:
        return False
    return True


def seal_item(client: Client, item_id: str, plaintext: dict[str, Any]) -> str:
    """An item's ciphertext under the current key and epoch."""
    keys = client.require_keys()
    return crypto.encrypt_item(keys.data_key, client.salt, item_id, plaintext, epoch=keys.epoch)


def seal_deletion(client: Client, item_id: str, record: dict[str, Any]) -> str:
    """A deletion record sealed under the current key and epoch."""
    keys = client.require_keys()
    return crypto.seal_deletion(keys.data_key, client.salt, item_id, record, epoch=keys.epoch)


def legacy_attachment_keys(keys: Keys) -> list[bytes]:
    """Data keys whose attachment subkey may seal a legacy attachment (no file key)."""
    return [keys.data_key, *(data_key for data_key, _ in keys.retired)]


def retired_record(
    current_key: bytes, salt: bytes, old_key: bytes, old_epoch: int
) -> dict[str, Any]:
    """The previous epoch's key sealed under the current one (vault_meta.retired_key)."""
    name = f"retired/{old_epoch}"
    return {"epoch": old_epoch, "key": crypto.seal_local_secret(current_key, salt, name, old_key)}


def open_retired(
    current_key: bytes, salt: bytes, record: dict[str, Any] | None
) -> tuple[tuple[bytes, int], ...]:
    """The retired keys a retired_key record holds ((key, epoch),), or none."""
    if not record:
        return ()
    epoch = int(record["epoch"])
    key = crypto.open_local_secret(current_key, salt, f"retired/{epoch}", record["key"])
    return ((key, epoch),)
