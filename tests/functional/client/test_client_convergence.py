"""Property: any interleaving of edits on two replicas converges, and no typed text is lost."""

from __future__ import annotations

import tempfile
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from nt2sync.engine import Client
from tests.support.client_clock import PASSWORD, Clock
from tests.support.lying_server import LyingServer

N_ITEMS = 3
op = st.one_of(
    st.tuples(st.just("edit"), st.sampled_from("ab"), st.integers(0, N_ITEMS - 1)),
    st.tuples(st.just("rm"), st.sampled_from("ab"), st.integers(0, N_ITEMS - 1)),
    st.tuples(st.just("add"), st.sampled_from("ab"), st.just(0)),
    st.tuples(st.just("sync"), st.sampled_from("ab"), st.just(0)),
    st.tuples(st.just("tick"), st.sampled_from("ab"), st.integers(0, 3)),
)


def state(client: Client) -> set[tuple[str, str, str]]:
    return {(i, p["title"], p["body"]) for i, p in client.list_items()}


@settings(
    max_examples=30,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(ops=st.lists(op, max_size=25))
def test_two_replicas_converge_without_losing_text(server: LyingServer, ops):
    # One app and moto world for every example: each example is a new vault (a new key).
    with tempfile.TemporaryDirectory() as tmp:
        clocks = {"a": Clock(), "b": Clock()}
        kwargs = {"transport": server, "sleep": lambda s: None}
        a = Client.init(Path(tmp) / "a.sqlite3", PASSWORD, clock=clocks["a"], **kwargs)
        ids = [a.add_item(f"item{n}", body=f"seed{n}") for n in range(N_ITEMS)]
        a.enable(server.audience)
        b, _ = Client.join(
            Path(tmp) / "b.sqlite3",
            server.audience,
            a.meta.key_did,
            PASSWORD,
            clock=clocks["b"],
            **kwargs,
        )
        clients = {"a": a, "b": b}
        written = {f"seed{n}" for n in range(N_ITEMS)}
        superseded: set[str] = set()  # text a person replaced or deleted knowingly
        counter = 0
        for kind, who, n in ops:
            client = clients[who]
            live = {i: p for i, p in client.list_items()}
            target = ids[n] if n < len(ids) else None
            if kind == "edit" and target in live:
                counter += 1
                superseded.add(live[target]["body"])
                body = f"{who}{counter}"
                written.add(body)
                client.edit_item(target, body=body)
            elif kind == "rm" and target in live:
                superseded.add(live[target]["body"])
                client.remove_item(target)
            elif kind == "add":
                counter += 1
                body = f"{who}{counter}"
                written.add(body)
                client.add_item(f"new{counter}", body=body)
            elif kind == "sync":
                client.sync_now()
            elif kind == "tick":
                clocks[who].now += n * 7  # clocks drift, ties happen
        for _ in range(4):  # quiesce
            a.sync_now()
            b.sync_now()
        assert a.vault.count_dirty() == b.vault.count_dirty() == 0
        assert state(a) == state(b)
        final = {body for _, _, body in state(a)}
        assert written - superseded <= final
        a.close()
        b.close()
