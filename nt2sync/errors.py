"""Client errors: each one is a sentence a person can act on (the CLI prints it as is)."""

from __future__ import annotations

from chalicelib.shared.codes import ErrorCode


class ClientError(Exception):
    """Any refusal the CLI reports as one sentence and exit code 1."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class UsageProblem(ClientError):
    """A command used the wrong way (exit code 2)."""


class WrongPassword(ClientError):
    """The master password does not open this vault."""


class WeakKdfOffered(ClientError):
    """The server offered KDF parameters below the floor."""


class SaltMismatch(ClientError):
    """The server names another salt than the vault's own."""


class BadVerifier(ClientError):
    """The server's verifier does not open although the key DID matched."""


class TamperedItem(ClientError):
    """A ciphertext from the server failed authentication (altered, swapped, moved)."""


class RollbackRefused(ClientError):
    """The server served an older revision of an item than this device accepted."""


class AudienceMismatch(ClientError):
    """The --server URL is not the API's public URL."""


class DeviceRevoked(ClientError):
    """This device was revoked."""


class PasswordChangedElsewhere(ClientError):
    """The vault was rotated to a new key by another device."""


class TamperedKit(ClientError):
    """A setup kit whose MAC does not verify with the master password."""


class UntrustedAnswer(ClientError):
    """The server handed over something the client will not use or show."""


class ServerError(ClientError):
    """A protocol error answered by the server, with its code."""

    def __init__(
        self, status: int, code: str, message: str, retry_after: float | None = None
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.retry_after = retry_after


class NetworkError(ClientError):
    """The server could not be reached."""


# The server's refusals whose sentence does not depend on what was being done. Codes that
# mean different things in different places (vault_not_found in join, unlock and sync;
# device_revoked, which also stops sync here) are explained where they are caught.
REFUSALS: dict[ErrorCode, tuple[type[ClientError], str]] = {
    ErrorCode.SALT_CONFLICT: (
        SaltMismatch,
        "The server already holds another salt for this key DID; this vault keeps its own "
        "salt and nothing was changed.",
    ),
    ErrorCode.KDF_CONFLICT: (
        ClientError,
        "The server holds other key-derivation parameters for this vault; nothing changed.",
    ),
    ErrorCode.PREMIUM_REQUIRED: (
        ClientError,
        "Cloud sync on this server needs NT² Premium: run `nt2sync premium checkout` or "
        "`nt2sync premium redeem CODE`, then enable again.",
    ),
    ErrorCode.KEY_DID_RETIRED: (
        ClientError,
        "This vault's key was retired by a password change on another device; join again "
        "with the new master password.",
    ),
    ErrorCode.DEVICE_LIMIT: (
        ClientError,
        "This vault already has 100 active devices; revoke one on another device "
        "(`nt2sync devices revoke REPLICA_ID`), then run this again.",
    ),
}


def explain(exc: ServerError) -> ClientError | None:
    """The sentence for a refusal in REFUSALS (None for any other: it stands as it is)."""
    try:
        kind, message = REFUSALS[ErrorCode(exc.code)]
    except (ValueError, KeyError):  # not a protocol code (http_error), or not one of these
        return None
    return kind(message)
