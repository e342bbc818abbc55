"""schemathesis against the served OpenAPI document: no 5xx, responses match the schema.

Bounded: a few generated cases per operation, valid and invalid data, each with a fresh
session of a registered vault so authenticated routes are exercised past 401.
(schemathesis' pytest plugin does not run under pytest 9 yet, so the operations are walked
here with its strategies.)
"""

from __future__ import annotations

import secrets
from typing import Any

import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode, checks

from tests.e2e.protocol_client import HttpDevice

CHECKS = [
    checks.not_a_server_error,
    checks.status_code_conformance,
    checks.content_type_conformance,
    checks.response_schema_conformance,
]
EXAMPLES = 8


def test_api_never_5xx_and_matches_schema(server: Any) -> None:
    seed = secrets.token_bytes(32)
    owner = HttpDevice.new(server.url, "fuzz-owner", seed)
    owner.sign_in()
    assert owner.register().status_code == 201
    schema = schemathesis.openapi.from_url(server.url + "/api/openapi.json")
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 15
    failures: list[str] = []

    for operation in operations:
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):

            @given(case=operation.as_strategy(generation_mode=mode))
            @settings(
                max_examples=EXAMPLES,
                deadline=None,
                database=None,
                suppress_health_check=list(HealthCheck),
            )
            def run(case: Any) -> None:
                # A pool of replicas: a vault enrols at most 100 active devices (§7)
                dev = HttpDevice.new(server.url, f"fz-{secrets.randbelow(40)}", seed)
                headers = {"Authorization": f"Bearer {dev.sign_in()}"}
                if case.headers and "Authorization" in case.headers:
                    headers = {}
                case.call_and_validate(base_url=server.url, headers=headers, checks=CHECKS)

            try:
                run()
            except Unsatisfiable:
                continue  # no input to make invalid (e.g. GET /api/health)
            except Exception as exc:  # collect every operation's failure, then report all
                failures.append(
                    f"{operation.method.upper()} {operation.path} [{mode.value}]: {str(exc)[:600]}"
                )
    assert not failures, "\n\n".join(failures)
