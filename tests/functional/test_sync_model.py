"""Model-based property test: random interleavings of pushes and pulls from several replicas
against a simple in-memory model of §5. After a final pull, every replica equals the server."""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.functional.sync_helpers import ct
from tests.helpers import Caller, Device, seed_for

IDS = ["a", "b", "c", "d"]

op = st.one_of(
    st.tuples(
        st.just("push"),
        st.integers(0, 2),
        st.lists(
            st.tuples(st.sampled_from(IDS), st.sampled_from(["edit", "delete", "stale"])),
            min_size=1,
            max_size=3,
            unique_by=lambda t: t[0],
        ),
    ),
    st.tuples(st.just("pull"), st.integers(0, 2), st.integers(1, 3)),
    st.tuples(st.just("retry"), st.integers(0, 2), st.just([])),
)


@dataclass
class Replica:
    device: Device
    watermark: int = 0
    seen: dict[str, dict[str, Any]] = field(default_factory=dict)
    last_batch: dict[str, Any] | None = None
    last_result: Any = None


def _run(ops: list[Any]) -> None:
    from chalice.test import Client
    from moto import mock_aws

    import app as app_module
    from chalicelib.store.aws import reset_clients
    from devserver import moto_fidelity
    from devserver.backend import ensure_resources

    moto_fidelity.apply()
    reset_clients()
    with mock_aws(), Client(app_module.app, stage_name="test") as client:
        ensure_resources()
        caller = Caller(client)
        replicas = [Replica(Device(caller, seed_for(7), f"r{n}")) for n in range(3)]
        for r in replicas:
            r.device.sign_in()
        assert replicas[0].device.register().status == 201
        server: dict[str, dict[str, Any]] = {}  # the model: id → latest item
        head = 0
        counter = 0
        for kind, who, arg in ops:
            rep = replicas[who]
            if kind == "push":
                items = []
                for item_id, action in arg:
                    counter += 1
                    base = rep.seen.get(item_id, {}).get("version", 0)
                    if action == "stale":
                        base = max(0, base - 1)
                    if action == "delete":
                        items.append({"id": item_id, "baseVersion": base, "deleted": True})
                    else:
                        items.append(
                            {
                                "id": item_id,
                                "baseVersion": base,
                                "deleted": False,
                                "ciphertext": ct(f"{item_id}-{counter}"),
                            }
                        )
                body = {"batchId": secrets.token_hex(4), "items": items}
                resp = rep.device.call("POST", "/api/sync/push", body)
                assert resp.status == 200, resp.body
                for sent, result in zip(items, resp.body["results"], strict=True):
                    stored = server.get(sent["id"])
                    expected_ok = (stored["version"] if stored else 0) == sent["baseVersion"]
                    if expected_ok:
                        head += 1
                        assert result == {"id": sent["id"], "status": "accepted", "version": head}
                        server[sent["id"]] = {
                            "version": head,
                            "deleted": sent["deleted"],
                            "ciphertext": sent.get("ciphertext"),
                        }
                    else:
                        assert result["status"] == "conflict"
                        assert_current(result["current"], stored)
                assert resp.body["watermark"] == head
                rep.last_batch, rep.last_result = body, resp.body
            elif kind == "retry" and rep.last_batch is not None:
                again = rep.device.call("POST", "/api/sync/push", rep.last_batch)
                assert again.status == 200
                assert again.body["watermark"] == rep.last_result["watermark"]
                # v1.2 §5: the same results, each conflict showing the item as it is now
                for first, now in zip(
                    rep.last_result["results"], again.body["results"], strict=True
                ):
                    if first["status"] == "accepted":
                        assert now == first
                        continue
                    assert now["status"] == "conflict" and now["id"] == first["id"]
                    assert_current(now["current"], server.get(first["id"]))
            elif kind == "pull":
                page = rep.device.call("GET", f"/api/sync/pull?since={rep.watermark}&limit={arg}")
                assert page.status == 200
                versions = [i["version"] for i in page.body["items"]]
                assert versions == sorted(versions) and all(v > rep.watermark for v in versions)
                for item in page.body["items"]:
                    rep.seen[item["id"]] = item
                rep.watermark = page.body["watermark"]
        for rep in replicas:
            while True:
                page = rep.device.call("GET", f"/api/sync/pull?since={rep.watermark}&limit=2")
                for item in page.body["items"]:
                    rep.seen[item["id"]] = item
                rep.watermark = page.body["watermark"]
                if not page.body["hasMore"]:
                    break
            assert rep.watermark == head
            mine = {k: (v["version"], v["deleted"], v["ciphertext"]) for k, v in rep.seen.items()}
            model = {k: (v["version"], v["deleted"], v["ciphertext"]) for k, v in server.items()}
            assert mine == model
    reset_clients()


def assert_current(cur: dict[str, Any] | None, stored: dict[str, Any] | None) -> None:
    """A conflict's `current` is the model's item (None when it was never written)."""
    if stored is None:
        assert cur is None
        return
    assert cur is not None
    assert (cur["version"], cur["deleted"], cur["ciphertext"]) == (
        stored["version"],
        stored["deleted"],
        stored["ciphertext"],
    )


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(st.lists(op, min_size=1, max_size=14))
def test_random_interleavings_converge(ops: list[Any]) -> None:
    _run(ops)
