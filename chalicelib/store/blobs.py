"""S3 access for attachment blobs: presigned PUT/GET, HeadObject, the state tag, delete.

Bytes never pass through the API: clients PUT and GET them with SigV4 query-presigned URLs.
A PUT URL signs `content-length`, `content-type`, `x-amz-checksum-sha256` and `x-amz-tagging`
(botocore signs every header the request carries), so S3 itself rejects any other size,
content or tag. `presign_put` checks that on the URL it produced and refuses to hand out one
that would not enforce it.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

from botocore.exceptions import ClientError

from chalicelib.errors import unavailable
from chalicelib.settings import get_settings
from chalicelib.store.aws import client

URL_TTL_S = 900  # ≤ 15 minutes (PROTOCOL.md §6)
CONTENT_TYPE = "application/octet-stream"
STATE_TAG = "nt2-state"
PENDING = "pending"  # infra/template.json's lifecycle rule expires objects with this tag
COMMITTED = "committed"
REQUIRED_SIGNED_HEADERS = frozenset(
    {
        "host",
        "content-length",
        "content-type",
        "x-amz-checksum-sha256",
        "x-amz-tagging",
        "if-none-match",
    }
)
_NOT_FOUND = frozenset({"404", "NoSuchKey", "NotFound"})
_BUSY = frozenset(
    {"SlowDown", "503", "ServiceUnavailable", "InternalError", "500", "RequestTimeout"}
)


class PresignError(RuntimeError):
    """botocore produced a URL whose signature would not bind the size or checksum."""


@dataclass(frozen=True)
class BlobInfo:
    """What HeadObject says about a stored object."""

    size: int
    sha256: str | None  # S3's padded standard base64, None when S3 holds no SHA-256 for it


def s3_checksum(sha256_b64url: str) -> str:
    """The wire's base64url SHA-256 as S3 spells it (padded standard base64)."""
    raw = base64.urlsafe_b64decode(sha256_b64url + "=" * (-len(sha256_b64url) % 4))
    return base64.b64encode(raw).decode("ascii")


def tagging(state: str) -> str:
    """The `x-amz-tagging` header value (URL query encoding) for a state."""
    return urlencode({STATE_TAG: state})


def signed_headers(url: str) -> set[str]:
    """The header names a SigV4 query-presigned URL's signature covers."""
    values = parse_qs(urlsplit(url).query).get("X-Amz-SignedHeaders", [""])
    return {h for h in values[0].split(";") if h}


def _busy(exc: ClientError) -> bool:
    return str(exc.response.get("Error", {}).get("Code", "")) in _BUSY


class Blobs:
    """The attachment bucket; the object key is always chosen by the caller (keys.py)."""

    def __init__(self, bucket: str | None = None, s3: Any = None) -> None:
        self.bucket = bucket or get_settings().bucket_name
        self.s3 = s3 or client("s3")

    def presign_put(
        self, key: str, size: int, checksum: str, state: str, expires_s: int = URL_TTL_S
    ) -> tuple[str, dict[str, str]]:
        """A PUT URL bound to this size, checksum and state tag; the headers to send with it.

        Content-Length is signed but not returned: every HTTP client derives it from the body
        (browsers refuse to let a page set it); a body of another length fails the signature.
        """
        # If-None-Match: * makes S3 refuse (412) a PUT onto an existing object: a replayed
        # pending-era URL can never re-tag a committed blob "pending" (which the lifecycle
        # rule would then delete). A client treats 412 as "already uploaded" and commits.
        headers = {
            "Content-Type": CONTENT_TYPE,
            "x-amz-checksum-sha256": checksum,
            "x-amz-tagging": tagging(state),
            "If-None-Match": "*",
        }
        url = self.s3.generate_presigned_url(
            "put_object",
            Params={
                "Bucket": self.bucket,
                "Key": key,
                "ContentLength": size,
                "ContentType": CONTENT_TYPE,
                "ChecksumSHA256": checksum,
                "Tagging": headers["x-amz-tagging"],
                "IfNoneMatch": "*",
            },
            ExpiresIn=min(expires_s, URL_TTL_S),
            HttpMethod="PUT",
        )
        missing = REQUIRED_SIGNED_HEADERS - signed_headers(url)
        if missing:
            raise PresignError(f"presigned PUT does not sign {sorted(missing)}")
        return str(url), headers

    def presign_get(self, key: str, expires_s: int = URL_TTL_S) -> str:
        url = self.s3.generate_presigned_url(
            "get_object",
            Params={"Bucket": self.bucket, "Key": key},
            ExpiresIn=min(expires_s, URL_TTL_S),
            HttpMethod="GET",
        )
        return str(url)

    def head(self, key: str) -> BlobInfo | None:
        """Size and SHA-256 of the object, None if it does not exist."""
        try:
            resp = self.s3.head_object(Bucket=self.bucket, Key=key, ChecksumMode="ENABLED")
        except ClientError as exc:
            if str(exc.response.get("Error", {}).get("Code", "")) in _NOT_FOUND:
                return None
            if _busy(exc):
                raise unavailable() from exc
            raise
        return BlobInfo(int(resp["ContentLength"]), resp.get("ChecksumSHA256"))

    def set_state(self, key: str, state: str) -> bool:
        """Replace the object's state tag; False if the object does not exist."""
        try:
            self.s3.put_object_tagging(
                Bucket=self.bucket,
                Key=key,
                Tagging={"TagSet": [{"Key": STATE_TAG, "Value": state}]},
            )
        except ClientError as exc:
            if str(exc.response.get("Error", {}).get("Code", "")) in _NOT_FOUND:
                return False
            if _busy(exc):
                raise unavailable() from exc
            raise
        return True

    def delete(self, key: str) -> None:
        """Delete the object (S3 answers success for a key that does not exist)."""
        try:
            self.s3.delete_object(Bucket=self.bucket, Key=key)
        except ClientError as exc:
            if _busy(exc):
                raise unavailable() from exc
            raise
