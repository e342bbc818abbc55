"""Property: on an honest server, manifests never raise an alarm. Any interleaving of edits,
deletions and syncs on three replicas converges with every attested item held, no notice,
and the same fingerprint everywhere (a false alarm would teach people to ignore real ones)."""

from __future__ import annotations

import tempfile
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from nt2sync.engine import Client
from nt2sync.fingerprint import fingerprint
from tests.support.client_clock import PASSWORD, Clock
from tests.support.lying_server import LyingServer

N_ITEMS = 3
WHO = "abc"
op = st.one_of(
    st.tuples(st.just("edit"), st.sampled_from(WHO), st.integers(0, N_ITEMS - 1)),
    st.tuples(st.just("rm"), st.sampled_from(WHO), st.integers(0, N_ITEMS - 1)),
    st.tuples(st.just("add"), st.sampled_from(WHO), st.just(0)),
    st.tuples(st.just("sync"), st.sampled_from(WHO), st.just(0)),
    st.tuples(st.just("sync"), st.sampled_from(WHO), st.just(0)),
)


@settings(
    max_examples=15,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(ops=st.lists(op, max_size=20))
def test_three_replicas_converge_with_no_manifest_alarm(server: LyingServer, ops):
    with tempfile.TemporaryDirectory() as tmp:
        kwargs = {"transport": server, "sleep": lambda s: None}
        a = Client.init(Path(tmp) / "a.sqlite3", PASSWORD, clock=Clock(), **kwargs)
        ids = [a.add_item(f"item{n}", body=f"seed{n}") for n in range(N_ITEMS)]
        a.enable(server.audience)
        clients = {"a": a}
        for name in "bc":
            clients[name], _ = Client.join(
                Path(tmp) / f"{name}.sqlite3",
                server.audience,
                a.meta.key_did,
                PASSWORD,
                clock=Clock(),
                **kwargs,
            )
        counter = 0
        for kind, who, n in ops:
            client = clients[who]
            live = {i for i, _ in client.list_items()}
            if kind == "edit" and ids[n] in live:
                counter += 1
                client.edit_item(ids[n], body=f"{who}{counter}")
            elif kind == "rm" and ids[n] in live:
                client.remove_item(ids[n])
            elif kind == "add":
                counter += 1
                client.add_item(f"new{counter}", body=f"{who}{counter}")
            elif kind == "sync":
                client.sync_now()
        for _ in range(3):  # quiesce
            for client in clients.values():
                client.sync_now()
        prints = [fingerprint(c) for c in clients.values()]
        for client, printed in zip(clients.values(), prints, strict=True):
            assert client.notices == [], client.notices
            assert printed["unverified"] == 0 and printed["pending"] == 0
        assert len({p["fingerprint"] for p in prints}) == 1
        for client in clients.values():
            client.close()
