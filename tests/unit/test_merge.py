"""The conflict rules (chalicelib/shared/merge.py)."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from chalicelib.shared import merge


def edit(body: str, at: int, replica: str = "r-a", revision: int = 1) -> dict:
    return {
        "title": "t",
        "body": body,
        "username": "",
        "url": "",
        "updatedAt": at,
        "revision": revision,
        "replicaId": replica,
        "attachments": [],
    }


def test_later_edit_wins_and_loser_is_copied():
    # GIVEN a local edit later than the remote one
    decision = merge.resolve_live(edit("mine", 20, revision=3), edit("theirs", 10, revision=3))
    # THEN the local text stays, the remote one becomes a copy, the revision moves past both
    assert decision == merge.Resolution(keep="local", copy="remote", next_revision=4)


def test_earlier_local_edit_loses_but_survives_as_copy():
    decision = merge.resolve_live(edit("mine", 5, revision=3), edit("theirs", 10, revision=4))
    assert decision == merge.Resolution(keep="remote", copy="local", next_revision=4)


def test_same_time_tie_goes_to_greater_replica_id():
    a, b = edit("x", 10, "r-a"), edit("y", 10, "r-b")
    assert merge.resolve_live(a, b).keep == "remote"
    assert merge.resolve_live(b, a).keep == "local"


def test_identical_text_makes_no_copy():
    decision = merge.resolve_live(edit("same", 30, "r-a"), edit("same", 10, "r-b", revision=2))
    assert decision.copy is None and decision.keep == "remote"


def test_conflicted_copy_keeps_text_and_names_origin():
    copy = merge.conflicted_copy(
        edit("lost?", 1_700_000_000_000, "r-b"), now_ms=5, replica_id="r-a"
    )
    assert copy["body"] == "lost?"
    assert "conflicted copy" in copy["title"] and "r-b" in copy["title"]
    assert copy["revision"] == 1 and copy["replicaId"] == "r-a"


@settings(max_examples=100, deadline=None)
@given(
    st.tuples(st.integers(0, 50), st.sampled_from(["r-a", "r-b"]), st.text(max_size=3)),
    st.tuples(st.integers(0, 50), st.sampled_from(["r-a", "r-b"]), st.text(max_size=3)),
)
def test_both_sides_decide_the_same_winner(x, y):
    a, b = edit(x[2], x[0], x[1]), edit(y[2], y[0], y[1])
    from_a = merge.resolve_live(a, b)
    from_b = merge.resolve_live(b, a)
    winner_a = a if from_a.keep == "local" else b
    winner_b = b if from_b.keep == "local" else a
    assert merge.same_content(winner_a, winner_b)
    # and no text is lost: the loser is copied unless its text equals the winner's
    for decision, mine, theirs in ((from_a, a, b), (from_b, b, a)):
        kept = mine if decision.keep == "local" else theirs
        lost = theirs if decision.keep == "local" else mine
        assert decision.copy is not None or merge.same_content(kept, lost)
