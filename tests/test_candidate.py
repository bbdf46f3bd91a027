"""Candidates: canonical keys, short codes, and parsing keys back."""

from __future__ import annotations

import pytest

from ge_nas.space.candidate import Candidate, Placement


def test_key_does_not_depend_on_the_order_placements_are_given() -> None:
    a = Candidate.of({15: Placement("theta", 4), 9: Placement("theta-plus", 0, "inside")})
    b = Candidate.of({9: Placement("theta-plus", 0, "inside"), 15: Placement("theta", 4)})
    assert a == b and a.key == b.key and hash(a) == hash(b)


def test_key_and_code_spell_out_every_choice() -> None:
    c = Candidate.of({9: Placement("theta-minus", 8), 15: Placement("theta-plus", 0, "inside")})
    assert c.key == "9:theta-minus:8:after;15:theta-plus:0:inside"
    assert c.code == "9m8 15pgi"


def test_baseline_is_named_base() -> None:
    assert Candidate.baseline().key == Candidate.baseline().code == "base"
    assert Candidate.from_key("base").units == 0


def test_key_parses_back_to_the_same_candidate() -> None:
    c = Candidate.of({2: Placement("theta", 2, "inside"), 21: Placement("theta-minus", 0)})
    assert Candidate.from_key(c.key) == c


@pytest.mark.parametrize(
    ("variant", "extent", "mode"), [("theta-max", 2, "after"), ("theta", 3, "after"), ("theta", 2, "before")]
)
def test_invalid_placement_is_refused(variant: str, extent: int, mode: str) -> None:
    with pytest.raises(ValueError, match="use"):
        Placement(variant, extent, mode)
