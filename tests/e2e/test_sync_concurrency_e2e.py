"""Real threads against the local server (moto server backend): pushers with overlapping
edits, pullers pulling all the while. Nothing accepted is lost or skipped."""

from __future__ import annotations

import random
import secrets
import threading
from typing import Any

from chalicelib.shared.encoding import b64url_encode
from tests.e2e.protocol_client import HttpDevice

IDS = [f"k{n}" for n in range(5)]
PUSH_ROUNDS = 12


def test_concurrent_pushes_and_pulls(server: Any) -> None:
    seed = secrets.token_bytes(32)
    owner = HttpDevice.new(server.url, "owner", seed)
    owner.sign_in()
    assert owner.register().status_code == 201

    accepted: list[tuple[str, int, int]] = []  # (id, version, baseVersion)
    lock = threading.Lock()
    done = threading.Event()
    errors: list[str] = []

    def pusher(n: int) -> None:
        dev = HttpDevice.new(server.url, f"pusher{n}", seed)
        dev.sign_in()
        known: dict[str, int] = {}
        rng = random.Random(n)
        for round_no in range(PUSH_ROUNDS):
            ids = rng.sample(IDS, 2)
            items = [
                {
                    "id": i,
                    "baseVersion": known.get(i, 0),
                    "deleted": False,
                    "ciphertext": b64url_encode(f"{n}-{round_no}-{i}".encode()),
                }
                for i in ids
            ]
            r = dev.push(items)
            if r.status_code != 200:
                errors.append(f"push {r.status_code} {r.text}")
                return
            for sent, res in zip(items, r.json()["results"], strict=True):
                if res["status"] == "accepted":
                    known[sent["id"]] = res["version"]
                    with lock:
                        accepted.append((sent["id"], res["version"], sent["baseVersion"]))
                else:
                    known[sent["id"]] = res["current"]["version"] if res["current"] else 0

    pulls: list[dict[str, Any]] = []

    def puller(n: int) -> None:
        dev = HttpDevice.new(server.url, f"puller{n}", seed)
        dev.sign_in()
        state: dict[str, int] = {}
        watermark = 0
        pages: list[tuple[int, list[tuple[str, int]], int]] = []

        def one_page() -> bool:
            nonlocal watermark
            r = dev.pull(watermark, 3)
            if r.status_code != 200:
                errors.append(f"pull {r.status_code} {r.text}")
                return False
            body = r.json()
            pages.append(
                (watermark, [(i["id"], i["version"]) for i in body["items"]], body["watermark"])
            )
            for item in body["items"]:
                state[item["id"]] = item["version"]
            watermark = body["watermark"]
            return bool(body["hasMore"])

        while not done.is_set():
            one_page()
        while one_page():
            pass
        pulls.append({"state": state, "watermark": watermark, "pages": pages})

    pushers = [threading.Thread(target=pusher, args=(n,)) for n in range(3)]
    pullers = [threading.Thread(target=puller, args=(n,)) for n in range(2)]
    for t in pullers + pushers:
        t.start()
    for t in pushers:
        t.join(timeout=300)
    done.set()
    for t in pullers:
        t.join(timeout=300)
    assert not errors, errors[:3]

    # The server's final state, read fresh from 0.
    final: dict[str, int] = {}
    since = 0
    while True:
        body = owner.pull(since, 1000).json()
        for item in body["items"]:
            final[item["id"]] = item["version"]
        since = body["watermark"]
        if not body["hasMore"]:
            break

    # Exactly one winner per contested (id, baseVersion).
    winners: dict[tuple[str, int], int] = {}
    for item_id, _version, base in accepted:
        winners[(item_id, base)] = winners.get((item_id, base), 0) + 1
    assert all(count == 1 for count in winners.values())
    # No accepted write lost: it is current, or a later accepted write was based on it.
    based_on = {(i, b) for i, _v, b in accepted}
    for item_id, version, _base in accepted:
        assert final[item_id] == version or (item_id, version) in based_on
    # Versions are unique and the head is the number of accepted writes.
    assert len({v for _i, v, _b in accepted}) == len(accepted)
    assert since == len(accepted)
    for seen in pulls:
        # Every puller ends equal to the server.
        assert seen["state"] == final and seen["watermark"] == since
        # Replaying its pages: strictly increasing versions inside (start, mark], and after
        # each page every accepted write at or below the page's watermark is held, or was
        # superseded by a write above the watermark (an update moves an item to a new
        # version, so its newer copy arrives in a later page; a page that ends the pull,
        # hasMore false, is exact: checked above against the server's final state).
        latest: dict[str, list[int]] = {}
        for item_id, version, _base in accepted:
            latest.setdefault(item_id, []).append(version)
        held: dict[str, int] = {}
        for start, entries, mark in seen["pages"]:
            versions = [v for _i, v in entries]
            assert versions == sorted(set(versions))
            assert all(start < v <= mark for v in versions)
            for item_id, version in entries:
                held[item_id] = version
            for item_id, version, _base in accepted:
                if version <= mark and held.get(item_id, 0) < version:
                    assert any(v > mark for v in latest[item_id]), (item_id, version, mark)
