"""PROTOCOL v1.2 §1: short error messages, malformed bodies refused in linear time."""

from __future__ import annotations

import hashlib
import hmac
import json
import re

from chalicelib.shared.limits import MAX_BODY_BYTES
from tests.helpers import Caller, Device, did_for_seed, seed_for

KEY_DID = did_for_seed(seed_for(7))
EXTRA = "Extra inputs are not permitted"


def _named(message: str) -> int:
    """How many problems a message names (`where: what`, separated by `; `)."""
    return len([p for p in message.split("; ") if not p.startswith("and ")])


def _quoted(message: str) -> list[str]:
    """The unknown field names a message quotes (without the `…` that marks a cut)."""
    return re.findall(r"(\w*)…?: " + EXTRA, message)


def test_a_long_unknown_field_name_is_echoed_to_at_most_100_characters(caller: Caller) -> None:
    # GIVEN a challenge body with a valid keyDid and an unknown field named by 5 MB of x's
    long_name = "x" * (MAX_BODY_BYTES - 200)
    raw = json.dumps({"keyDid": KEY_DID, long_name: 1})

    # WHEN it is sent
    r = caller.call("POST", "/api/auth/challenge", raw=raw)

    # THEN it is refused, naming the field by its first 100 characters only
    assert (r.status, r.body["code"]) == (400, "invalid_request")
    assert _quoted(r.body["message"]) == ["x" * 100]
    assert len(r.body["message"]) < 200


def test_all_echoed_field_names_together_are_at_most_100_characters(caller: Caller) -> None:
    # GIVEN three unknown fields of 80 characters each
    body = {"keyDid": KEY_DID, "a" * 80: 1, "b" * 80: 2, "c" * 80: 3}

    # WHEN it is sent
    r = caller.call("POST", "/api/auth/challenge", body)

    # THEN the message names all three, quoting 100 characters of them in all (§1)
    message = r.body["message"]
    assert (r.status, r.body["code"]) == (400, "invalid_request")
    assert message.count(EXTRA) == 3
    assert sum(len(name) for name in _quoted(message)) == 100


def test_many_unknown_fields_name_the_first_five_and_count_the_rest(caller: Caller) -> None:
    # GIVEN a valid keyDid and 20 unknown fields
    body = {"keyDid": KEY_DID, **{f"k{i:02d}": i for i in range(20)}}

    # WHEN it is sent
    r = caller.call("POST", "/api/auth/challenge", body)

    # THEN the first 5 are named, in body order, and the other 15 counted
    message = r.body["message"]
    assert (r.status, r.body["code"]) == (400, "invalid_request")
    assert _named(message) == 5
    assert re.findall(r"k\d\d", message) == ["k00", "k01", "k02", "k03", "k04"]
    assert message.endswith("; and 15 more.")


def test_unknown_fields_in_a_push_item_are_named_and_counted(caller: Caller) -> None:
    # GIVEN a push whose one item has 10 unknown fields (validation comes before the session)
    item = {"id": "a", "deleted": True, **{f"k{i}": i for i in range(10)}}

    # WHEN it is sent
    r = caller.call("POST", "/api/sync/push", {"batchId": "b1", "items": [item]})

    # THEN the message names 5 of them by their place in the body and counts the rest
    message = r.body["message"]
    assert (r.status, r.body["code"]) == (400, "invalid_request")
    assert _named(message) == 5
    assert "items.0.k0: " + EXTRA in message
    assert message.endswith("; and 5 more.")


def test_unknown_fields_do_not_change_which_code_decides(caller: Caller) -> None:
    # GIVEN a garbage keyDid (its own code) behind 20 unknown fields
    body = {**{f"k{i:02d}": i for i in range(20)}, "keyDid": "garbage"}

    # WHEN it is sent
    r = caller.call("POST", "/api/auth/challenge", body)

    # THEN the keyDid's code decides and is named first; 5 problems named, 16 counted
    message = r.body["message"]
    assert (r.status, r.body["code"]) == (400, "invalid_key_did")
    assert message.startswith("Invalid request: keyDid: not an Ed25519 did:key; k00: ")
    assert _named(message) == 5
    assert message.endswith("; and 16 more.")


def test_a_5mb_body_of_430000_unknown_fields_is_a_short_400(caller: Caller) -> None:
    # GIVEN an unauthenticated body just under 5 MiB: a valid keyDid and 430 000 unknown fields
    fields = ",".join(f'"k{i:06d}":0' for i in range(430_000))
    raw = '{"keyDid":"' + KEY_DID + '",' + fields + "}"
    assert len(raw) <= MAX_BODY_BYTES

    # WHEN it is sent
    r = caller.call("POST", "/api/auth/challenge", raw=raw)

    # THEN it is refused before it is parsed, with a short message
    message = r.body["message"]
    assert (r.status, r.body["code"]) == (400, "invalid_request")
    assert message == "The body has more members than any request of this protocol (8192)."


def test_a_body_just_under_the_member_bound_is_named_and_counted(caller: Caller) -> None:
    # GIVEN 8 000 unknown fields (under the pre-parse bound): pydantic never sees them
    fields = ",".join(f'"k{i:06d}":0' for i in range(8_000))
    raw = '{"keyDid":"' + KEY_DID + '",' + fields + "}"
    r = caller.call("POST", "/api/auth/challenge", raw=raw)
    message = r.body["message"]
    assert (r.status, r.body["code"]) == (400, "invalid_request")
    assert _named(message) == 5
    assert message.endswith("; and 7995 more.")
    assert len(message) < 300


def test_the_largest_valid_push_is_under_the_member_bound(registered: Device) -> None:
    items = [
        {"id": f"i{n}", "baseVersion": 0, "deleted": False, "ciphertext": "eA"} for n in range(500)
    ]
    r = registered.call("POST", "/api/sync/push", {"batchId": "b1", "items": items})
    assert r.status == 200, r.body


def test_a_128_character_duplicate_item_id_is_echoed_to_100(registered: Device) -> None:
    # GIVEN a push naming the same 128-character item id twice
    item = {"id": "i" * 128, "deleted": True}

    # WHEN it is sent
    r = registered.call("POST", "/api/sync/push", {"batchId": "b1", "items": [item, item]})

    # THEN it is duplicate_item, quoting 100 characters of the id
    assert (r.status, r.body["code"]) == (400, "duplicate_item")
    assert re.findall("i{2,}", r.body["message"]) == ["i" * 100]


def test_a_deeply_nested_body_is_400_not_500(caller: Caller, registered: Device) -> None:
    # GIVEN bodies nested far past what json.loads recurses into (and within it)
    deep = "[" * 200_000 + "]" * 200_000
    shallow_enough = '{"saltHex":"00","publicKeys":' + '{"a":' * 500 + "1" + "}" * 500 + "}"

    # WHEN they are sent to body routes, a body-less route and the (signed) webhook
    answers = [
        caller.call("POST", "/api/auth/challenge", raw=deep),
        caller.call("POST", "/api/sync/push", raw=deep),
        registered.call("DELETE", "/api/auth/session", raw=deep),
        registered.call("POST", "/api/vault/register", raw=shallow_enough),
    ]
    signature = hmac.new(b"whsec-test", deep.encode(), hashlib.sha256).hexdigest()
    answers.append(
        caller.call("POST", "/api/premium/webhook", raw=deep, headers={"X-Signature": signature})
    )

    # THEN each is a 400 invalid_request
    assert [(r.status, r.body["code"]) for r in answers] == [(400, "invalid_request")] * 5
