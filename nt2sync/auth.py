"""Proving this device holds the vault's key: the server connection, sessions, fresh proofs."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from chalicelib.shared.codes import ErrorCode
from chalicelib.shared.encoding import b64url_encode
from chalicelib.shared.messages import confirm_message, session_message, sign
from nt2sync.api import Api, normalize_server
from nt2sync.errors import (
    AudienceMismatch,
    ClientError,
    DeviceRevoked,
    ServerError,
    UsageProblem,
    explain,
)

if TYPE_CHECKING:
    from nt2sync.engine import Client

SYNC_OFF = "Cloud sync is not enabled; run `nt2sync sync enable --server URL`."


def connect(client: Client, server: str) -> Api:
    """A new API client for a server, with the client's transport and back-off."""
    return Api(server, transport=client.transport, sleep=client.sleep)


def connection(client: Client) -> Api:
    """The API client for the vault's server (or the one named by use_server)."""
    server = client.meta.server_url or client._server_override
    if not server:
        raise ClientError(SYNC_OFF)
    if client._api is None or client._api.audience != server:
        client._api = connect(client, server)
    return client._api


def check_audience(api: Api) -> None:
    """Refuse a --server URL that is not the API's public URL (PROTOCOL §3)."""
    health = api.health()
    audience = health.get("audience") if isinstance(health, dict) else None
    if audience != api.audience:
        raise AudienceMismatch(
            f"The server says its public URL is {audience!r}, not {api.audience!r}; "
            "use exactly that URL with --server."
        )


def use_server(client: Client, server: str) -> None:
    """Talk to this server for the command's length without enabling sync (Premium first)."""
    meta = client.meta
    normalized = normalize_server(server)
    if meta.server_url and meta.server_url != normalized:
        raise UsageProblem(f"This vault syncs with {meta.server_url}, not {normalized}.")
    if not meta.server_url:
        client._server_override = normalized
        client._api = connect(client, normalized)
        keys = client.require_keys()
        open_session(client, client._api, keys.seed, keys.key_did, meta.device_name, persist=False)


def open_session(
    client: Client,
    api: Api,
    seed: bytes,
    key_did: str,
    device_name: str | None,
    *,
    persist: bool = True,
) -> dict[str, Any]:
    """Sign a fresh challenge and open a session (kept in the vault for the current key)."""
    replica = client.meta.replica_id
    nonce = api.challenge(key_did)["nonce"]
    signature = b64url_encode(sign(seed, session_message(api.audience, key_did, replica, nonce)))
    try:
        session = api.open_session(key_did, replica, nonce, signature, device_name)
    except ServerError as exc:
        if exc.code == ErrorCode.DEVICE_REVOKED:
            raise revoked(client) from exc
        known = explain(exc)
        if known is None:
            raise
        raise known from exc
    api.token = session["token"]
    if persist and key_did == client.meta.key_did:
        client.vault.set_meta(token=session["token"], token_expires_at=session["expiresAt"])
    return session  # type: ignore[no-any-return]


def proof(api: Api, seed: bytes, key_did: str, action: str, target: str) -> dict[str, str]:
    """§3: a fresh proof that this device holds key_did now, for one action on one target."""
    nonce = api.challenge(key_did)["nonce"]
    message = confirm_message(api.audience, key_did, action, target, nonce)
    return {"nonce": nonce, "signature": b64url_encode(sign(seed, message))}


def revoked(client: Client) -> DeviceRevoked:
    """Stop sync here because this device was revoked; the error to raise."""
    client.vault.set_meta(sync_enabled=0, token=None, token_expires_at=None)
    return DeviceRevoked(
        "This device was revoked from the vault's enrolled devices; sync is stopped here."
    )
