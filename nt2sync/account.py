"""The vault's account on the server: its enrolled devices and NT² Premium."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from nt2sync import auth
from nt2sync.api import Api
from nt2sync.errors import UntrustedAnswer

if TYPE_CHECKING:
    from nt2sync.engine import Client


def devices(client: Client) -> list[dict[str, Any]]:
    """Enrolled devices."""
    return client.call(lambda api: api.devices())  # type: ignore[no-any-return]


def rename_device(client: Client, replica_id: str, name: str) -> dict[str, Any]:
    """Rename a device."""
    return client.call(lambda api: api.rename_device(replica_id, name))  # type: ignore[no-any-return]


def revoke_device(client: Client, replica_id: str) -> dict[str, Any]:
    """Revoke a device (with a fresh proof of the key: §3)."""
    keys = client.require_keys()

    def revoke(api: Api) -> dict[str, Any]:
        proof = auth.proof(api, keys.seed, keys.key_did, "revoke", replica_id)
        return api.revoke_device(replica_id, proof)

    return client.call(revoke)  # type: ignore[no-any-return]


def premium(client: Client, action: str, code: str | None = None) -> dict[str, Any]:
    """premium status | redeem | checkout."""
    if action == "redeem":
        return client.call(lambda api: api.redeem(code or ""))  # type: ignore[no-any-return]
    if action == "checkout":
        answer: dict[str, Any] = client.call(lambda api: api.checkout())
        url = answer.get("url")
        if not isinstance(url, str) or not _is_https(url):
            raise UntrustedAnswer(
                "The server's checkout link is not an https:// address; not showing it."
            )
        return answer
    return client.call(lambda api: api.premium())  # type: ignore[no-any-return]


def _is_https(url: str) -> bool:
    parts = urlsplit(url)
    return parts.scheme == "https" and bool(parts.hostname) and url.isprintable()
