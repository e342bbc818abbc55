"""The web origin: served apart from the API, with a strict CSP, and reachable by a browser."""

from __future__ import annotations

from typing import Any

import httpx

from devserver.web_origin import content_security_policy, origin_of


def test_csp_allows_only_self_and_the_api() -> None:
    # GIVEN an API and a live endpoint on other origins
    csp = content_security_policy("http://127.0.0.1:9000/", "ws://127.0.0.1:9001/ws")
    # THEN scripts come from the app's own origin only, and connections go to those two
    assert "script-src 'self'" in csp
    assert "'unsafe-inline'" not in csp and "'unsafe-eval'" not in csp
    assert "connect-src 'self' http://127.0.0.1:9000 ws://127.0.0.1:9001" in csp
    assert "frame-ancestors 'none'" in csp
    assert origin_of("https://a.example:8443/x?y") == "https://a.example:8443"


def test_web_origin_is_not_the_api_origin(web_server: Any) -> None:
    # WHEN the page's origin is fetched
    web = web_server.web_url()
    answer = httpx.get(f"{web}/config.json")
    # THEN it names the API, which lives on another origin, and carries the policy
    assert answer.json() == {"api": web_server.url}
    assert origin_of(web) != origin_of(web_server.url)
    assert "script-src 'self'" in answer.headers["content-security-policy"]
    assert httpx.get(f"{web}/../pyproject.toml").status_code == 404
    assert httpx.get(f"{web}/settings/vault/sync").status_code == 200
