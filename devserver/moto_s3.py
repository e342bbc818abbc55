"""Make moto's S3 PutObject read `x-amz-checksum-<algorithm>` headers as real S3 does.

Why: moto 5.2.5 records (and returns from HeadObject with ChecksumMode=ENABLED) a checksum
only when the request also names its algorithm in `x-amz-sdk-checksum-algorithm`, and never
checks the value against the body. Real S3 takes a lone `x-amz-checksum-sha256` header as the
object's checksum and rejects a body that does not match it (400 BadDigest). Presigned
attachment uploads (PROTOCOL.md §6) send exactly that lone header, so without this patch the
local server and the tests would behave unlike S3: commit could never verify a checksum, and a
wrong body would be stored.

How: wrap `S3Response._get_checksum` (called by PutObject). When no algorithm header is sent
but one `x-amz-checksum-*` header is, that header names the algorithm; a checksum given in a
header is compared with the body moto decoded, and a mismatch raises BadDigest.

Upstream issue (moto 5.2.5; the report to file at github.com/getmoto/moto/issues):

    S3: PutObject ignores a lone x-amz-checksum-sha256 header (no checksum stored, no
    BadDigest)

    What moto does: `S3Response._get_checksum` looks for a checksum only when
    `x-amz-sdk-checksum-algorithm` names the algorithm, and never compares it with the body.
    What S3 does: a `x-amz-checksum-<algorithm>` header alone names the algorithm; S3 stores
    it (HeadObject with ChecksumMode=ENABLED returns it) and rejects a body that does not
    match with 400 BadDigest.
    Repro::

        url = s3.generate_presigned_url("put_object", Params={"Bucket": "b", "Key": "k",
                                        "ChecksumSHA256": base64_sha256(b"right")})
        requests.put(url, data=b"wrong",
                     headers={"x-amz-checksum-sha256": base64_sha256(b"right")})
        # S3: 400 BadDigest; moto: 200, and head_object(ChecksumMode="ENABLED") has no
        # ChecksumSHA256 even after a matching upload
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

from moto.s3.exceptions import S3ClientError
from moto.s3.responses import S3Response
from moto.s3.utils import compute_checksum

__all__ = ["apply"]

_MARKER = "_nt2_checksum_headers"
_ALGORITHMS = ("CRC32", "CRC32C", "CRC64NVME", "SHA1", "SHA256")


class BadDigest(S3ClientError):
    code = "BadDigest"

    def __init__(self, algorithm: str) -> None:
        super().__init__(
            "BadDigest", f"The {algorithm} you specified did not match the calculated checksum."
        )


def _header_algorithm(headers: Any) -> str | None:
    found = [a for a in _ALGORITHMS if headers.get(f"x-amz-checksum-{a.lower()}")]
    return found[0] if len(found) == 1 else None


def _wrap(original: Callable[..., tuple[str, str | None]]) -> Callable[..., Any]:
    @functools.wraps(original)
    def get_checksum(self: S3Response, response_headers: dict[str, Any]) -> Any:
        headers = self.headers
        algorithm = headers.get("x-amz-sdk-checksum-algorithm") or _header_algorithm(headers)
        if algorithm and algorithm.upper() in _ALGORITHMS:
            algorithm = algorithm.upper()
            given = headers.get(f"x-amz-checksum-{algorithm.lower()}")
            body = self.body if isinstance(self.body, bytes) else b""
            # CRCs are left alone: moto falls back to CRC32 when their libraries are missing.
            if given and algorithm in {"SHA1", "SHA256"}:
                computed = compute_checksum(body, algorithm).decode("ascii")
                if computed != given:
                    raise BadDigest(algorithm)
            if given and not headers.get("x-amz-sdk-checksum-algorithm"):
                response_headers[f"x-amz-checksum-{algorithm.lower()}"] = given
                return algorithm, given
        return original(self, response_headers)

    setattr(get_checksum, _MARKER, True)
    return get_checksum


def apply() -> None:
    """Install the patch (idempotent); use ``devserver.moto_fidelity.apply()``."""
    current = S3Response._get_checksum
    if getattr(current, _MARKER, False):
        return
    S3Response._get_checksum = _wrap(current)  # type: ignore[method-assign]
