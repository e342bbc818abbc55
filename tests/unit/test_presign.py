"""The presigned URLs themselves (no AWS: botocore signs locally).

moto ignores presigned conditions, so what S3 would enforce is asserted on the URL: the
signature covers content-length and x-amz-checksum-sha256, the expiry is ≤ 15 minutes and
the key sits under the vault's prefix.
"""

from __future__ import annotations

import base64
import hashlib
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

import boto3
import pytest
from botocore.config import Config

from chalicelib.attachments import decode_cursor, encode_cursor
from chalicelib.errors import ApiError
from chalicelib.shared.encoding import b64url_encode
from chalicelib.store import keys
from chalicelib.store.blobs import Blobs, PresignError, s3_checksum, signed_headers

VAULT = "v-0123456789abcdef"
DATA = b"attachment ciphertext"


def s3_client(endpoint: str | None = None) -> Any:
    # The same signing configuration as chalicelib/store/aws.py.
    return boto3.client(
        "s3",
        region_name="us-east-1",
        endpoint_url=endpoint,
        aws_access_key_id="AKIDEXAMPLE",
        aws_secret_access_key="secret",  # noqa: S106 - a fake key for local signing
        aws_session_token="session-token",  # noqa: S106
        config=Config(signature_version="s3v4", s3={"addressing_style": "path"}),
    )


def query(url: str) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(urlsplit(url).query).items()}


@pytest.mark.parametrize("endpoint", [None, "http://127.0.0.1:5000"])
def test_put_url_signs_size_checksum_type_and_tag(endpoint: str | None) -> None:
    blobs = Blobs("nt2-bucket", s3_client(endpoint))
    checksum = s3_checksum(b64url_encode(hashlib.sha256(DATA).digest()))
    url, headers = blobs.presign_put(
        keys.attachment_object_key(VAULT, "att:1"), len(DATA), checksum, "pending"
    )
    q = query(url)
    signed = set(q["X-Amz-SignedHeaders"].split(";"))
    assert {
        "host",
        "content-length",
        "content-type",
        "x-amz-checksum-sha256",
        "x-amz-tagging",
        "if-none-match",
    } <= signed
    assert q["X-Amz-Algorithm"] == "AWS4-HMAC-SHA256"
    assert 0 < int(q["X-Amz-Expires"]) <= 900
    assert unquote(urlsplit(url).path) == f"/nt2-bucket/vaults/{VAULT}/att:1"
    # The headers are what the client sends; S3 wants padded standard base64.
    assert headers == {
        "Content-Type": "application/octet-stream",
        "x-amz-checksum-sha256": base64.b64encode(hashlib.sha256(DATA).digest()).decode(),
        "x-amz-tagging": "nt2-state=pending",
        "If-None-Match": "*",
    }
    # Nothing of the declaration leaks into the query where a client could change it.
    assert not {k.lower() for k in q} & {"content-length", "x-amz-checksum-sha256"}


def test_put_url_expiry_is_capped() -> None:
    blobs = Blobs("nt2-bucket", s3_client())
    url, _ = blobs.presign_put(
        "vaults/v/a", 1, s3_checksum(b64url_encode(bytes(32))), "pending", expires_s=3600
    )
    assert query(url)["X-Amz-Expires"] == "900"
    get_url = blobs.presign_get("vaults/v/a", expires_s=3600)
    assert query(get_url)["X-Amz-Expires"] == "900"
    assert unquote(urlsplit(get_url).path) == "/nt2-bucket/vaults/v/a"


def test_presign_refuses_a_url_that_does_not_bind_the_checksum() -> None:
    class Lax:
        """A signer that leaves the checksum out of the signature."""

        def generate_presigned_url(self, *_: Any, **__: Any) -> str:
            return (
                "https://s3.amazonaws.com/b/k?X-Amz-Expires=900"
                "&X-Amz-SignedHeaders=content-length%3Bcontent-type%3Bhost%3Bx-amz-tagging"
            )

    with pytest.raises(PresignError, match="x-amz-checksum-sha256"):
        Blobs("b", Lax()).presign_put("k", 1, "AAAA", "pending")


def test_signed_headers_parses_the_query() -> None:
    url = "https://h/b/k?X-Amz-SignedHeaders=content-length%3Bhost&X-Amz-Expires=1"
    assert signed_headers(url) == {"content-length", "host"}
    assert signed_headers("https://h/b/k") == set()


def test_s3_checksum_is_padded_standard_base64() -> None:
    digest = bytes(range(250, 256)) * 5 + b"\xfb\xff"
    assert s3_checksum(b64url_encode(digest)) == base64.b64encode(digest).decode()
    assert s3_checksum(b64url_encode(digest)).endswith("=")


def test_cursor_round_trip_and_garbage() -> None:
    sk = keys.attachment_sk("a.b:c-d_e")
    assert decode_cursor(encode_cursor(sk)) == sk
    assert decode_cursor(None) is None
    assert decode_cursor("") is None
    for bad in (
        "!!",
        "QQ=",
        b64url_encode(b"ITEM#x"),
        b64url_encode(b"ATT#"),
        b64url_encode(b"ATT#a/b"),
        b64url_encode(b"\xff\xfe"),
        b64url_encode(("ATT#" + "x" * 129).encode()),
    ):
        with pytest.raises(ApiError) as err:
            decode_cursor(bad)
        assert err.value.code == "invalid_request"
