"""YOLOv8, YOLO11 and YOLO26 bases with every attention module: spaces, generated YAMLs that plain Ultralytics
trains and exports, inheritance and costs on C3k2 and C2PSA, and searches end to end on the built-in data."""

from __future__ import annotations

import itertools
import json
import math
import re
from collections.abc import Callable
from pathlib import Path

import numpy as np
import onnxruntime
import optuna
import pytest
import torch
from ultralytics import YOLO
from ultralytics.nn import tasks
from ultralytics.utils.torch_utils import get_flops

import ge_nas  # noqa: F401  (registers the layers, as a user's script would)
from ge_nas.layers.registry import unit_ops
from ge_nas.layers.unit import AttentionUnit
from ge_nas.report.dashboard_figures import attention_figure
from ge_nas.report.study_view import read_study
from ge_nas.space.candidate import Candidate, Placement
from ge_nas.space.model_yaml import generate_model_yaml
from ge_nas.space.search_space import SearchSpace, load_space
from ge_nas.yolo.costs import count_gflops
from ge_nas.yolo.inheritance import Inheritance, inherit_weights
from ge_nas.yolo.latency import export_copy, onnx_bytes
from ge_nas.yolo.model_files import build_model
from tests.conftest import QUICK, CommandResult, expected_unit_params

ALL_MODULES = "modules: [ge, se, eca, cbam, coord, simam]\nvariants: [theta-minus, theta, theta-plus]\n"
# Per family: a space over every point with every module, and one architecture with every module in it,
# after and inside (C3k2's C3k inner blocks at yolo11n's layer 6 and 8; YOLO26's attention block at 22).
FAMILIES = {
    "yolov8n": {
        2: Placement("se", 0, "inside"),
        4: Placement("eca", 0, "inside"),
        6: Placement("cbam", 0),
        8: Placement("coord", 0, "inside"),
        9: Placement("simam", 0),
        15: Placement("theta-plus", 4),
        21: Placement("theta-minus", 2, "inside"),
    },
    "yolo11n": {
        2: Placement("se", 0),
        6: Placement("eca", 0, "inside"),
        8: Placement("cbam", 0, "inside"),
        9: Placement("coord", 0),
        10: Placement("simam", 0),
        16: Placement("theta", 0, "inside"),
        22: Placement("theta-plus", 2),
    },
    "yolo26n": {
        4: Placement("simam", 0, "inside"),
        8: Placement("coord", 0, "inside"),
        9: Placement("theta-plus", 0),
        10: Placement("cbam", 0),
        16: Placement("eca", 0),
        19: Placement("se", 0, "inside"),
        22: Placement("theta", 8, "inside"),
    },
}


def every_module_space(tmp_path: Path, base: str) -> SearchSpace:
    path = tmp_path / f"{base}_all.yaml"
    path.write_text(f"base: {base}\npoints: all\n{ALL_MODULES}modes: [after, inside]\n")
    return load_space(path)


def space_size(choices: list[int], max_units: int) -> int:
    """Architectures with at most ``max_units`` units: sums of products of the points' choice counts."""
    return sum(math.prod(c) for k in range(max_units + 1) for c in itertools.combinations(choices, k))


@pytest.mark.parametrize(
    ("name", "points", "per_point"),
    [
        ("yolo11n_ge", [2, 4, 6, 8, 9, 10, 13, 16, 19, 22], {9: 12, 10: 12}),  # SPPF and C2PSA: after only
        ("yolo26n_ge", [2, 4, 6, 8, 9, 10, 13, 16, 19, 22], {9: 12, 10: 12}),
        ("yolov8n_attention", [2, 4, 6, 8, 9, 12, 15, 18, 21], {9: 17}),  # 12 GE + 5 modules, x2 with inside
        ("yolov8n_p3", [2, 4], {2: 4, 4: 4}),  # the ground truth's base: a cut yolov8n, its own YAML
    ],
)
def test_shipped_spaces_list_their_points_and_sizes(
    ge_nas_in_process: Callable[..., CommandResult], tmp_path: Path, name: str, points: list[int], per_point: dict
) -> None:
    result = ge_nas_in_process("space", name, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    rows = [line.split() for line in result.stdout.splitlines() if re.match(r"\s+\d+\s", line)]
    assert [int(row[0]) for row in rows] == points
    default = 34 if name == "yolov8n_attention" else 24
    choices = [per_point.get(point, default) for point in points]
    assert [int(row[5].rstrip(":")) for row in rows] == choices
    assert f"architectures in the space (baseline included): {space_size(choices, 4):,}" in result.stdout


@pytest.mark.parametrize("name", ["yolo11n_ge", "yolo26n_ge", "yolov8n_attention"])
def test_sampled_yamls_build_with_plain_ultralytics_and_add_their_units(
    ge_nas_in_process: Callable[..., CommandResult], tmp_path: Path, name: str
) -> None:
    result = ge_nas_in_process("space", name, "--sample", "5", "--seed", "1", "-o", "samples", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    space = load_space(name)
    baseline = build_model(generate_model_yaml(space, Candidate.baseline()).model)
    written = sorted((tmp_path / "samples").glob("*.yaml"))
    assert len(written) == 5
    for path in written:
        key = re.search(r"^# key: (.+)$", path.read_text(), re.MULTILINE).group(1)
        model = YOLO(str(path)).model.eval()
        with torch.no_grad():
            model(torch.zeros(1, 3, 64, 96))
        added = sum(p.numel() for p in model.parameters()) - sum(p.numel() for p in baseline.parameters())
        assert added == expected_unit_params(space, Candidate.from_key(key)), path.name


def onnx_matches_torch(model: torch.nn.Module, imgsz: int = 64) -> None:
    """The model exported as ge-nas exports it for latency, run by ONNX Runtime, gives what torch gives."""
    session = onnxruntime.InferenceSession(onnx_bytes(model, imgsz), providers=["CPUExecutionProvider"])
    image = torch.rand(1, 3, imgsz, imgsz)
    (ours, *_) = session.run(None, {session.get_inputs()[0].name: image.numpy()})
    with torch.no_grad():
        reference = export_copy(model)(image)
    reference = reference[0] if isinstance(reference, (tuple, list)) else reference
    np.testing.assert_allclose(ours, reference.numpy(), rtol=1e-3, atol=1e-3)


@pytest.mark.parametrize("base", FAMILIES)
def test_every_module_in_each_family_trains_with_plain_ultralytics_exports_and_loads_back(
    tiny_dataset: Path, tmp_path: Path, base: str
) -> None:
    space = every_module_space(tmp_path, f"{base}.yaml")
    candidate = Candidate.of(FAMILIES[base])
    assert (
        {p.module for _, p in candidate.placements}
        == set(space.modules)
        == {
            "ge",
            "se",
            "eca",
            "cbam",
            "coord",
            "simam",
        }
    )
    path = generate_model_yaml(space, candidate).write(tmp_path / "best.yaml")
    model = YOLO(str(path))
    model.train(data=str(tiny_dataset), epochs=1, imgsz=64, batch=8, workers=0, device="cpu", plots=False,
                project=str(tmp_path / "runs"), name="train", amp=False, verbose=False)  # fmt: skip
    best = tmp_path / "runs" / "train" / "weights" / "best.pt"
    loaded = YOLO(str(best)).model
    restricted, _ = tasks.torch_safe_load(str(best), safe_only=True)  # as under ULTRALYTICS_SAFE_LOAD=1
    units = [type(m).__name__ for m in loaded.modules() if isinstance(m, AttentionUnit)]
    assert units == [type(m).__name__ for m in build_model(path).modules() if isinstance(m, AttentionUnit)]
    assert sum(isinstance(m, AttentionUnit) for m in restricted["model"].modules()) == len(units)
    onnx_matches_torch(loaded.float())


@pytest.mark.parametrize("base", ["yolo11n.yaml", "yolo26n.yaml"])
def test_shared_layers_of_c3k2_and_c2psa_candidates_start_with_exactly_the_parents_weights(
    tmp_path: Path, base: str
) -> None:
    space = every_module_space(tmp_path, base)
    parent = build_model({**generate_model_yaml(space, Candidate.baseline()).model, "nc": 3}).state_dict()
    generated = generate_model_yaml(space, Candidate.of(FAMILIES[base.removesuffix(".yaml")]))
    model = build_model({**generated.model, "nc": 3})
    copied, total = inherit_weights(model, Inheritance(parent, generated.index_map))
    assert copied == total == len(parent)
    state = model.state_dict()
    for name, tensor in parent.items():
        _, index, *rest = name.split(".")
        assert torch.equal(state[".".join(["model", str(generated.index_map[int(index)]), *rest])], tensor), name


@pytest.mark.parametrize("base", ["yolo11n.yaml", "yolo26n.yaml", "yolo11n-seg.yaml"])
def test_gflops_are_ultralytics_for_the_base_and_add_each_units_formula(tmp_path: Path, base: str) -> None:
    imgsz = 128
    space = every_module_space(tmp_path, base)
    baseline = build_model(generate_model_yaml(space, Candidate.baseline()).model)
    assert count_gflops(baseline, imgsz) == pytest.approx(get_flops(baseline, imgsz), rel=1e-12)
    candidate = Candidate.of(FAMILIES["yolo26n" if "26" in base else "yolo11n"])
    model = build_model(generate_model_yaml(space, candidate).model)
    added = 0
    for index, placement in candidate.placements:
        layer = space.point(index).layer
        size = imgsz // layer.stride
        if placement.mode == "after":
            added += unit_ops(layer.channels, placement.variant, placement.extent, size, size).total
        else:
            added += (
                layer.bottlenecks
                * unit_ops(layer.hidden_channels, placement.variant, placement.extent, size, size).total
            )
    assert count_gflops(model, imgsz) == pytest.approx(count_gflops(baseline, imgsz) + 2 * added / 1e9, rel=1e-12)


def search(ge_nas_in_process: Callable[..., CommandResult], cwd: Path, dataset: Path, *options: str) -> CommandResult:
    """A real search as typed, study ``s``: one epoch per proxy, no parent, one seed."""
    args = ["search", *QUICK, "--dataset", str(dataset), "--epochs", "1", "--imgsz", "64", "--batch", "8"]
    result = ge_nas_in_process(*args, "--study", "s", "--sampler", "random", *options, cwd=cwd)
    assert result.returncode == 0, result.stderr
    return result


def test_a_search_on_yolo11n_runs_end_to_end_and_exports_a_yaml_plain_ultralytics_builds(
    ge_nas_in_process: Callable[..., CommandResult], tiny_dataset: Path, tmp_path: Path
) -> None:
    result = search(ge_nas_in_process, tmp_path, tiny_dataset, "--space", "yolo11n_ge", "--trials", "3")
    assert "verdict:" in result.stdout
    exported = ge_nas_in_process("export", "--study", "s", "--pick", "best-accuracy", "-o", "best.yaml", cwd=tmp_path)
    assert exported.returncode == 0, exported.stderr
    assert YOLO(str(tmp_path / "best.yaml")).model.yaml["backbone"][2][2].startswith("C3k2")


def test_a_search_over_every_module_shows_where_attention_pays_by_module(
    ge_nas_in_process: Callable[..., CommandResult], tiny_dataset: Path, tmp_path: Path
) -> None:
    # Seed 2 draws architectures with GE and with other modules among its three trials.
    search(ge_nas_in_process, tmp_path, tiny_dataset, "--space", "yolov8n_attention", "--trials", "3", "--seed", "2")
    rows = json.loads(ge_nas_in_process("show", "--study", "s", "--format", "json", cwd=tmp_path).stdout)
    trained = [Candidate.from_key(row["key"]) for row in rows if row["state"] == "complete"]
    modules = {p.module for candidate in trained for _, p in candidate.placements}
    assert len(modules) > 1
    table = ge_nas_in_process("show", "--study", "s", cwd=tmp_path).stdout
    module_rows = table.split("where attention pays, by module")[1].splitlines()[2:-1]
    labels = {"ge": "GE", "se": "SE", "eca": "ECA", "cbam": "CBAM", "coord": "CoordAtt", "simam": "SimAM"}
    assert [line.split()[0] for line in module_rows] == [labels[m] for m in labels if m in modules]
    for line in module_rows:  # architectures with the module, and without it: together, every trained one
        label, with_it, _on_front, without = line.split()[:4]
        assert int(with_it) + int(without) == len(trained), label
    # The dashboard's heatmap: columns grouped by module, GE's first, the others in the order of MODULES.
    url = f"sqlite:///{tmp_path / 'studies' / 's.db'}"
    columns = attention_figure(read_study(optuna.load_study(study_name="s", storage=url), url)).data[0].x
    order = [next((m for m in labels if labels[m] == column), "ge") for column in columns]
    assert order == sorted(order, key=list(labels).index) and set(order) == modules


def test_a_segmentation_search_runs_on_the_built_in_segmentation_data_on_mask_map(
    ge_nas_in_process: Callable[..., CommandResult], tmp_path: Path
) -> None:
    made = ge_nas_in_process(
        "dataset", "--task", "segment", "-o", "seg", "--train-images", "16", "--val-images", "8", "--imgsz", "64",
        cwd=tmp_path,
    )  # fmt: skip
    assert made.returncode == 0, made.stderr
    (tmp_path / "space.yaml").write_text(
        "base: yolo11n-seg.yaml\npoints: [sppf, neck.c3k2_p3]\nmodules: [ge, cbam]\nvariants: [theta-plus]\n"
        "extents: [global]\nmodes: [after, inside]\n"
    )
    result = search(
        ge_nas_in_process, tmp_path, tmp_path / "seg" / "data.yaml", "--space", "space.yaml", "--trials", "3",
        "--objectives", "mask-map50-95,gflops",
    )  # fmt: skip
    shown = json.loads(ge_nas_in_process("show", "--study", "s", "--format", "json", cwd=tmp_path).stdout)
    complete = [row for row in shown if row["state"] == "complete"]
    assert complete and all(row["accuracy_name"] == "mask-map50-95" for row in complete)
    assert "mask-map50-95" in result.stdout


@pytest.mark.parametrize("base", ["yolo26n-pose.yaml", "yolo11n-obb.yaml"])
def test_pose_and_obb_bases_take_units_are_costed_and_export(tmp_path: Path, base: str) -> None:
    """Pose and OBB heads search on box mAP with the same code; here: spaces, YAMLs, costs and export."""
    space = every_module_space(tmp_path, base)
    assert space.task == base.split("-")[1].removesuffix(".yaml")
    candidate = Candidate.of(FAMILIES["yolo26n" if "26" in base else "yolo11n"])
    model = build_model(generate_model_yaml(space, candidate).model)
    assert sum(isinstance(m, AttentionUnit) for m in model.modules()) == 7 + sum(
        space.point(i).layer.bottlenecks - 1 for i, p in candidate.placements if p.mode == "inside"
    )
    assert count_gflops(model, 64) > count_gflops(
        build_model(generate_model_yaml(space, Candidate.baseline()).model), 64
    )
    onnx_matches_torch(model)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["search", "--objectives", "mask-map50-95,gflops"], "mask mAP needs a segmentation base"),
        (["search", "--space", "pose.yaml"], "give --dataset with pose labels"),
        (["dataset", "--task", "obb", "-o", "out"], "--task 'obb': use one of detect, segment"),
    ],
    ids=["mask accuracy on a detector", "pose without a dataset", "a dataset task not built in"],
)
def test_a_task_that_does_not_fit_is_a_one_line_error(
    ge_nas_in_process: Callable[..., CommandResult], tmp_path: Path, args: list[str], message: str
) -> None:
    (tmp_path / "pose.yaml").write_text("base: yolo11n-pose.yaml\npoints: [sppf]\n")
    result = ge_nas_in_process(*args, cwd=tmp_path)
    assert result.returncode == 2 and message in result.stderr and len(result.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "studies").exists() and not (tmp_path / "out").exists()
