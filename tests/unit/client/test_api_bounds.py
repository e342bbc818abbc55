"""The API client refuses answers no honest server sends (issue 14 row 8)."""

from __future__ import annotations

import httpx
import pytest

from nt2sync import api, errors


def test_an_answer_over_the_size_cap_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    # GIVEN a server whose answer is over the cap
    monkeypatch.setattr(api, "MAX_RESPONSE_BYTES", 1000)
    big = httpx.MockTransport(lambda request: httpx.Response(200, json={"x": "a" * 2000}))
    client = api.Api("https://sync.example", transport=big, sleep=lambda s: None)
    # WHEN it is read THEN it is refused in one sentence
    with pytest.raises(errors.ServerError, match="larger than any honest answer"):
        client.health()
