"""Search space files: shipped spaces, aliases, sizes, sampling, and clear errors."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from ge_nas.errors import InputError
from ge_nas.space.candidate import Placement
from ge_nas.space.search_space import load_space, shipped_spaces

REPO_SPACES = Path(__file__).parent.parent / "search_spaces"


def write_space(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "space.yaml"
    path.write_text(text)
    return path


def test_shipped_spaces_are_found_by_name_and_by_path() -> None:
    assert {"yolov8n_ge", "yolov8n_small", "yolov8s_ge"} <= set(shipped_spaces())
    by_name = load_space("yolov8n_ge")
    by_path = load_space(REPO_SPACES / "yolov8n_ge.yaml")
    assert by_name.fingerprint == by_path.fingerprint


def test_default_space_covers_every_c2f_and_the_sppf_of_yolov8n() -> None:
    space = load_space("yolov8n_ge")
    assert [p.index for p in space.points] == [2, 4, 6, 8, 9, 12, 15, 18, 21]
    modes = {p.alias: {c.mode for c in p.choices} for p in space.points}
    assert modes["sppf"] == {"after"}  # inside needs a C2f
    assert modes["neck.c2f_p3"] == {"after", "inside"}
    variants = {c.variant for p in space.points for c in p.choices}
    assert variants == {"theta-minus", "theta", "theta-plus"}


def test_aliases_resolve_against_the_base_model(tmp_path: Path) -> None:
    path = write_space(tmp_path, "base: yolov8n.yaml\npoints: [backbone.c2f_p3, neck.c2f_p4, sppf, neck.c2f_p4_up]\n")
    space = load_space(path)
    assert [(p.index, p.alias) for p in space.points] == [
        (4, "backbone.c2f_p3"),
        (9, "sppf"),
        (12, "neck.c2f_p4_up"),
        (18, "neck.c2f_p4"),
    ]
    assert space.point(18).layer.channels == 128 and space.point(18).layer.stride == 16


def test_small_space_enumerates_sixteen_distinct_architectures_baseline_first() -> None:
    space = load_space("yolov8n_small")
    candidates = list(space.enumerate())
    assert space.size == len(candidates) == 16
    assert candidates[0].key == "base"
    assert len({c.key for c in candidates}) == 16


def test_max_units_limits_size_enumeration_and_samples(tmp_path: Path) -> None:
    path = write_space(
        tmp_path, "base: yolov8n.yaml\npoints: [4, 6, 8]\nvariants: [theta, theta-plus]\nextents: [4]\nmax_units: 1\n"
    )
    space = load_space(path)
    assert space.size == 1 + 3 * 2 == len(list(space.enumerate()))
    rng = random.Random(0)
    samples = [space.sample(rng) for _ in range(200)]
    assert all(c.units <= 1 for c in samples)
    assert len({c.key for c in samples}) == 7  # uniform sampling reaches every architecture


def test_per_point_choices_override_shared_ones(tmp_path: Path) -> None:
    path = write_space(
        tmp_path,
        "base: yolov8n.yaml\nvariants: [theta-minus]\nextents: [2]\n"
        "points: [sppf, {at: 15, variants: [theta-plus], extents: [global], modes: [inside]}]\n",
    )
    space = load_space(path)
    assert space.point(9).choices == (Placement("theta-minus", 2, "after"),)
    assert space.point(15).choices == (Placement("theta-plus", 0, "inside"),)


def test_sampling_is_repeatable_with_a_seed() -> None:
    space = load_space("yolov8n_ge")
    first = [space.sample(random.Random(3)).key for _ in range(3)]
    assert len(set(first)) == 1


@pytest.mark.parametrize(
    ("text", "key", "fragment"),
    [
        ("base: yolov9000z.yaml\n", "base", "unknown base model 'yolov9000z.yaml'"),
        ("base: yolov8n.yaml\npoints: [40]\n", "points[0]", "out of range; the base has layers 0..22"),
        ("base: yolov8n.yaml\npoints: [22]\n", "points[0]", "is the Detect layer"),
        ("base: yolov8n.yaml\nvariants: [theta-max]\n", "variants", "allowed: theta-minus, theta, theta-plus"),
        ("base: yolov8n.yaml\nextents: [3]\n", "extents", "use 2, 4, 8 or global"),
        ("base: yolov8n.yaml\nvariants: []\n", "variants", "empty list"),
        ("base: yolov8n.yaml\npoints: []\n", "points", "empty list"),
        ("base: yolov8n.yaml\nmax_units: -1\n", "max_units", "0 or more"),
        ("base: yolov8n.yaml\nmodes: [beside]\n", "modes", "allowed: after, inside"),
        ("base: yolov8n.yaml\npoints: [{at: sppf, modes: [inside]}]\n", "points[0].modes", "needs a C2f or C3k2 layer"),
        ("base: yolov8n.yaml\npoints: [neck.c2f_p9]\n", "points[0]", "unknown alias 'neck.c2f_p9'"),
        ("base: yolov8n.yaml\nmax_unit: 2\n", "max_unit", "unknown key"),
    ],
)
def test_invalid_space_names_file_key_and_fix(tmp_path: Path, text: str, key: str, fragment: str) -> None:
    path = write_space(tmp_path, text)
    with pytest.raises(InputError) as error:
        load_space(path)
    message = str(error.value)
    assert str(path) in message and f"key '{key}'" in message and fragment in message
    assert "\n" not in message


def test_yaml_syntax_error_names_file_and_line(tmp_path: Path) -> None:
    path = write_space(tmp_path, "base: yolov8n.yaml\npoints: [4, 6\n")
    with pytest.raises(InputError, match=r"space\.yaml: not valid YAML at line \d+"):
        load_space(path)


def test_unknown_space_name_lists_shipped_spaces() -> None:
    with pytest.raises(InputError, match="yolov8n_ge"):
        load_space("no_such_space")
