"""Client errors: each one is a sentence a person can act on (the CLI prints it as is)."""

from __future__ import annotations


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
