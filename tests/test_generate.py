"""YAML generation: candidates become standalone Ultralytics models that build, run and train."""

from __future__ import annotations

import functools
import random
from pathlib import Path

import pytest
import torch
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from ultralytics import YOLO

import ge_nas  # noqa: F401  (registers the GE layers)
from ge_nas.layers.gather_excite import GatherExcite
from ge_nas.layers.unit import AttentionUnit
from ge_nas.search.config import ProxySettings
from ge_nas.space.candidate import Candidate, Placement
from ge_nas.space.model_yaml import generate_model_yaml, index_map_of
from ge_nas.space.search_space import SearchSpace, load_space, shipped_spaces
from ge_nas.yolo.model_files import build_model
from ge_nas.yolo.training import train_proxy
from tests.conftest import expected_unit_params

SIZES = [(64, 64), (96, 160)]


@functools.cache
def space_named(name: str) -> SearchSpace:
    return load_space(name)


@functools.cache
def base_facts(name: str) -> tuple[int, dict[tuple[int, int], list[torch.Size]]]:
    """Parameter count and Detect output shapes of a space's base model."""
    model = build_model(generate_model_yaml(space_named(name), Candidate.baseline()).model).eval()
    return _params(model), {size: _detect_shapes(model, size) for size in SIZES}


def _params(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def _detect_shapes(model: torch.nn.Module, size: tuple[int, int]) -> list[torch.Size]:
    """The shapes of the feature maps the head reads (whatever the head returns: YOLO26's is end to end)."""
    shapes: list[torch.Size] = []
    hook = model.model[-1].register_forward_hook(lambda _m, inputs, _out: shapes.extend(x.shape for x in inputs[0]))
    with torch.no_grad():
        model(torch.zeros(1, 3, *size))
    hook.remove()
    return shapes


def expected_units(space: SearchSpace, candidate: Candidate) -> int:
    return sum(1 if p.mode == "after" else space.point(i).layer.bottlenecks for i, p in candidate.placements)


@pytest.mark.parametrize("name", sorted(shipped_spaces()))
@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(rng=st.randoms(use_true_random=False))
def test_random_candidates_build_run_and_add_exactly_their_units_parameters(name: str, rng: random.Random) -> None:
    space = space_named(name)
    candidate = space.sample(rng)
    model = build_model(generate_model_yaml(space, candidate).model).eval()
    base_params, base_shapes = base_facts(name)
    for size in SIZES:
        assert _detect_shapes(model, size) == base_shapes[size]
    assert sum(isinstance(m, AttentionUnit) for m in model.modules()) == expected_units(space, candidate)
    assert _params(model) - base_params == expected_unit_params(space, candidate)


def test_empty_candidate_reproduces_the_base_model_exactly() -> None:
    generated = generate_model_yaml(space_named("yolov8n_ge"), Candidate.baseline())
    ours = build_model(generated.model)
    reference = YOLO("yolov8n.yaml").model
    assert len(ours.model) == len(reference.model)
    assert _params(ours) == _params(reference)
    assert generated.index_map == {i: i for i in range(len(reference.model))}


def test_after_placement_renumbers_every_later_reference() -> None:
    space = space_named("yolov8n_ge")
    candidate = Candidate.of({9: Placement("theta", 4), 15: Placement("theta-plus", 0)})
    generated = generate_model_yaml(space, candidate)
    rows = generated.model["backbone"] + generated.model["head"]
    assert generated.index_map[9] == 9 and rows[10][2:] == ["GatherExcite", [256, "theta", 4]]
    assert generated.index_map[15] == 16 and rows[17][2:] == ["GatherExcite", [64, "theta-plus", 0]]
    # Detect reads the GE after 15, and the head's C2f outputs that moved by two places.
    assert rows[-1][0] == [17, generated.index_map[18], generated.index_map[21]] == [17, 20, 23]
    # The Concat that read SPPF (base 9) now reads the GE after it.
    assert rows[generated.index_map[20]][0] == [-1, 10]


def test_inside_placement_keeps_indices_and_puts_ge_in_each_bottleneck() -> None:
    space = space_named("yolov8n_ge")
    candidate = Candidate.of({4: Placement("theta-minus", 2, "inside")})
    generated = generate_model_yaml(space, candidate)
    assert generated.index_map == {i: i for i in range(23)}
    model = build_model(generated.model)
    c2f = model.model[4]
    assert len(c2f.m) == 2 and all(isinstance(b.ge, GatherExcite) for b in c2f.m)


def test_written_yaml_is_standalone_and_rebuilds_the_same_model(tmp_path: Path) -> None:
    space = space_named("yolov8s_ge")
    candidate = Candidate.of({8: Placement("theta", 8, "inside"), 21: Placement("theta-plus", 2)})
    generated = generate_model_yaml(space, candidate)
    path = generated.write(tmp_path / "best.yaml")  # a name that says nothing about the scale
    text = path.read_text()
    assert f"# candidate: {candidate.code}" in text and f"# key: {candidate.key}" in text
    assert "scales" not in yaml.safe_load(text)
    assert _params(YOLO(str(path)).model) == _params(build_model(generated.model))


def test_candidate_outside_the_space_is_refused() -> None:
    with pytest.raises(ValueError, match="not in search space"):
        generate_model_yaml(space_named("yolov8n_small"), Candidate.of({4: Placement("theta", 2)}))


def test_both_placement_modes_train_with_ultralytics(tiny_dataset: Path, tmp_path: Path) -> None:
    space = space_named("yolov8n_ge")
    candidate = Candidate.of({6: Placement("theta", 4, "inside"), 15: Placement("theta-plus", 0, "after")})
    path = generate_model_yaml(space, candidate).write(tmp_path / "candidate.yaml")
    history = train_proxy(path, tiny_dataset, ProxySettings(epochs=1, imgsz=64, batch=8), tmp_path / "run")
    assert len(history) == 1 and 0.0 <= history[0]["map50"] <= 1.0


@settings(max_examples=20, deadline=None)
@given(rng=st.randoms(use_true_random=False))
def test_index_map_is_recovered_from_the_generated_yaml_alone(rng: random.Random) -> None:
    space = space_named("yolov8n_ge")
    generated = generate_model_yaml(space, space.sample(rng))
    assert index_map_of(yaml.safe_load(generated.text)) == generated.index_map
