"""The test transport never reaches the network: storage URLs are served by moto or refused."""

from __future__ import annotations

import httpx
import pytest

from tests.helpers import AUDIENCE
from tests.support.app_transport import AppTransport


def test_a_storage_request_outside_moto_is_refused_not_sent() -> None:
    # GIVEN the transport with no moto world running
    transport = AppTransport(app_client=None, audience=AUDIENCE)
    blobs = httpx.Client(transport=transport)
    # WHEN the client follows a presigned S3 URL THEN nothing is sent anywhere
    with pytest.raises(RuntimeError, match="moto is not running"):
        blobs.get("https://nt2-sync-test-attachments.s3.amazonaws.com/vaults/v/a?X-Amz-Signature=x")


def test_an_audience_with_a_path_is_refused() -> None:
    with pytest.raises(ValueError, match="with a path"):
        AppTransport(app_client=None, audience=AUDIENCE + "/dev")
