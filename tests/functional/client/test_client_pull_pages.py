"""Pull pages (issue 16): pages fetched ahead while one is applied; the rules stay exact.

Pages of two items (PULL_LIMIT patched) make a vault of five items three pages.
"""

from __future__ import annotations

import time

import pytest

from nt2sync import errors, manifests, sync
from nt2sync.engine import Client


def pulls(server) -> int:
    return sum(1 for seen in server.requests if seen.path == "/api/sync/pull")


def five_items(make_client, server) -> Client:
    a = make_client("a")
    for n in range(5):
        a.add_item(f"note {n}", body=str(n))
    a.enable(server.audience, device_name="a")
    return a


def test_next_page_is_requested_before_this_one_is_stored(
    make_client, join_client, server, monkeypatch
):
    # GIVEN a vault of three pages (no manifests: this test counts pages)
    monkeypatch.setattr(manifests, "publish", lambda client: 0)
    a = five_items(make_client, server)
    monkeypatch.setattr(sync, "PULL_LIMIT", 2)
    applied = sync._apply_page
    before = pulls(server)
    seen_while_applying: list[tuple[int, int]] = []

    def waiting(client, items, watermark, summary):
        # hold the first page until the second one's request reached the server (or 5 s)
        deadline = time.monotonic() + 5
        while not seen_while_applying and pulls(server) < before + 2:
            if time.monotonic() > deadline:
                break
            time.sleep(0.01)
        seen_while_applying.append((pulls(server) - before, client.meta.watermark))
        applied(client, items, watermark, summary)

    monkeypatch.setattr(sync, "_apply_page", waiting)
    # WHEN B joins (a full pull)
    b = join_client("b", a.meta.key_did)
    # THEN page 2 was asked for while page 1 was not yet stored (watermark still 0)
    (requested, first_mark), *_ = seen_while_applying
    assert requested >= 2 and first_mark == 0
    # AND every page was applied, in order, once
    assert len(seen_while_applying) == 3
    assert sorted(p["title"] for _, p in b.list_items()) == [f"note {n}" for n in range(5)]
    assert b.meta.watermark == a.meta.watermark


def test_a_refused_page_stores_nothing_of_it_nor_of_the_page_fetched_ahead(
    make_client, join_client, server, monkeypatch
):
    # GIVEN B joined an empty vault, then A added five items (three pages for B)
    a = make_client("a")
    a.enable(server.audience, device_name="a")
    b = join_client("b", a.meta.key_did)
    for n in range(5):
        a.add_item(f"note {n}", body=str(n))
    a.sync_now()
    monkeypatch.setattr(sync, "PULL_LIMIT", 2)
    by_version = sorted(a.vault.items(), key=lambda r: r.version)
    # AND the server alters an item of the second page
    server.flip_byte(by_version[2].id)
    # WHEN B pulls
    with pytest.raises(errors.TamperedItem):
        b.sync_now()
    # THEN the first page is stored with its watermark; nothing of pages two and three
    assert sorted(r.id for r in b.vault.items()) == sorted(r.id for r in by_version[:2])
    assert b.meta.watermark == by_version[1].version
    assert pulls(server) >= 3  # the third page had been asked for, and was not applied


def test_a_wrong_guess_at_the_page_after_next_is_dropped(
    make_client, join_client, server, monkeypatch
):
    # GIVEN versions 1-2 are two items (a dense first page), version 3 was superseded (no
    # manifests: this test counts versions)
    monkeypatch.setattr(manifests, "publish", lambda client: 0)
    a = make_client("a")
    a.enable(server.audience, device_name="a")
    b = join_client("b", a.meta.key_did)
    ids = [a.add_item(title, body=title) for title in ("A", "B", "C", "D")]
    a.sync_now()  # versions 1-4
    a.edit_item(ids[2], body="C again")
    a.sync_now()  # C moves from 3 to 5
    a.add_item("E", body="E")
    a.sync_now()  # 6
    monkeypatch.setattr(sync, "PULL_LIMIT", 2)
    before = pulls(server)
    # WHEN B pulls: after page 1 (1-2) it asks for since=2 and guesses since=4, but page 2
    # is versions 4 and 5
    b.sync_now()
    # THEN the guess was asked for and dropped: every item is there, once, at the head
    assert pulls(server) - before == 4  # since=0, since=2, the guess since=4, since=5
    assert sorted((p["title"], p["body"]) for _, p in b.list_items()) == [
        ("A", "A"),
        ("B", "B"),
        ("C", "C again"),
        ("D", "D"),
        ("E", "E"),
    ]
    assert b.meta.watermark == a.meta.watermark == 6
