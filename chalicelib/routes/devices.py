"""§7 routes: enrolled devices (list, rename, revoke) and key rotation."""

from __future__ import annotations

from chalice import Blueprint

from chalicelib import devices, identity, live, rotation
from chalicelib.errors import ErrorCode
from chalicelib.identity import Principal
from chalicelib.routes.context import table
from chalicelib.routes.operations import AUTH_ERRORS, operation
from chalicelib.settings import get_settings
from chalicelib.shared.models.devices import (
    DeviceOut,
    DevicesQuery,
    DevicesResponse,
    RenameRequest,
    ReplicaPath,
    RevokeRequest,
)
from chalicelib.shared.models.vault import RotateRequest, RotateResponse

bp = Blueprint(__name__)

PROOF_ERRORS = (
    ErrorCode.CHALLENGE_INVALID,
    ErrorCode.CHALLENGE_EXPIRED,
    ErrorCode.INVALID_SIGNATURE,
)


@operation(
    bp,
    "/api/devices",
    "GET",
    summary="Devices enrolled in this vault",
    tag="devices",
    query=DevicesQuery,
    response=DevicesResponse,
    errors=(ErrorCode.INVALID_REQUEST, *AUTH_ERRORS),
)
def list_devices(query: DevicesQuery, caller: Principal) -> DevicesResponse:
    rows, cursor = devices.list_devices(table(), caller, query.cursor)
    return DevicesResponse(devices=[DeviceOut(**row) for row in rows], cursor=cursor)


@operation(
    bp,
    "/api/devices/{replicaId}",
    "PATCH",
    summary="Rename a device",
    tag="devices",
    params=ReplicaPath,
    body=RenameRequest,
    response=DeviceOut,
    errors=(ErrorCode.INVALID_REQUEST, *AUTH_ERRORS, ErrorCode.DEVICE_NOT_FOUND),
)
def rename_device(path: ReplicaPath, body: RenameRequest, caller: Principal) -> DeviceOut:
    renamed = DeviceOut(**devices.rename(table(), caller, path.replicaId, body.name))
    live.notify_devices(table(), get_settings(), str(caller.vault_id))
    return renamed


@operation(
    bp,
    "/api/devices/{replicaId}/revoke",
    "POST",
    summary="Revoke a device: its sessions end at once, it can never sign in again",
    tag="devices",
    params=ReplicaPath,
    body=RevokeRequest,
    response=DeviceOut,
    errors=(
        ErrorCode.INVALID_REQUEST,
        ErrorCode.INVALID_ENCODING,
        *AUTH_ERRORS,
        *PROOF_ERRORS,
        ErrorCode.DEVICE_NOT_FOUND,
    ),
)
def revoke_device(path: ReplicaPath, body: RevokeRequest, caller: Principal) -> DeviceOut:
    identity.check_proof(table(), get_settings(), caller, "revoke", path.replicaId, body.proof)
    revoked = DeviceOut(**devices.revoke(table(), caller, path.replicaId))
    live.device_revoked(table(), get_settings(), str(caller.vault_id), path.replicaId)
    return revoked


@operation(
    bp,
    "/api/vault/rotate",
    "POST",
    summary="Move the vault to a new Key DID after a master-password change",
    tag="vault",
    body=RotateRequest,
    response=RotateResponse,
    errors=(
        ErrorCode.INVALID_REQUEST,
        ErrorCode.INVALID_KEY_DID,
        ErrorCode.INVALID_ENCODING,
        *AUTH_ERRORS,
        *PROOF_ERRORS,
        ErrorCode.VAULT_NOT_FOUND,
        ErrorCode.KDF_CONFLICT,
        ErrorCode.KEY_DID_TAKEN,
        ErrorCode.KEY_DID_RETIRED,
    ),
)
def rotate(body: RotateRequest, caller: Principal) -> RotateResponse:
    identity.check_proof(table(), get_settings(), caller, "rotate", body.newKeyDid, body.proof)
    new_key_did, rotated_at = rotation.rotate(table(), get_settings(), caller, body)
    live.end_connections(table(), get_settings(), str(caller.vault_id), "rotated")
    return RotateResponse(keyDid=new_key_did, rotatedAt=rotated_at)
