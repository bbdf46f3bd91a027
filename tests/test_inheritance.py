"""Honest proxies: candidates inherit a parent's weights; retraining measures proxy fidelity."""

from __future__ import annotations

import dataclasses
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from ge_nas.errors import InputError
from ge_nas.layers.gather_excite import GatherExcite
from ge_nas.ranking.correlation import kendall, spearman
from ge_nas.search.config import FINE_TUNE, FineTune, Objectives, ProxySettings, SearchConfig, file_sha256
from ge_nas.search.retraining import retrain, train
from ge_nas.search.runner import run_search
from ge_nas.space.candidate import Candidate, Placement
from ge_nas.space.model_yaml import generate_model_yaml
from ge_nas.space.search_space import load_space
from ge_nas.yolo.inheritance import Inheritance, inherit_weights, load_parent_state, speed_up_new_units
from ge_nas.yolo.model_files import build_model
from ge_nas.yolo.training import train_full, train_parent

FAST_PROXY = ProxySettings(epochs=1, imgsz=64, batch=8)


@pytest.fixture(scope="module")
def parent_checkpoint(tiny_dataset: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """yolov8n trained one epoch on the tiny dataset: a real Ultralytics checkpoint."""
    workdir = tmp_path_factory.mktemp("parent")
    base_yaml = generate_model_yaml(load_space("yolov8n_ge"), Candidate.baseline()).write(workdir / "base.yaml")
    return train_parent(base_yaml, tiny_dataset, FAST_PROXY, epochs=1, workdir=workdir)


@pytest.mark.parametrize(
    "placements",
    [
        {9: Placement("theta-plus", 4), 15: Placement("theta", 0), 21: Placement("theta-minus", 2)},
        {4: Placement("theta", 4, "inside"), 12: Placement("theta-plus", 0, "inside")},
        {2: Placement("theta-plus", 8, "inside"), 9: Placement("theta", 2), 18: Placement("theta-minus", 0, "inside")},
    ],
    ids=["after", "inside", "both"],
)
def test_shared_layers_start_with_exactly_the_parents_weights(
    parent_checkpoint: Path, placements: dict[int, Placement]
) -> None:
    space = load_space("yolov8n_ge")
    generated = generate_model_yaml(space, Candidate.of(placements))
    model = build_model({**generated.model, "nc": 3})  # the dataset's class count, as the trainer builds it
    parent = load_parent_state(parent_checkpoint)
    copied, total = inherit_weights(model, Inheritance(parent, generated.index_map))
    assert copied == total
    state = model.state_dict()
    for name, tensor in parent.items():
        _, index, *rest = name.split(".")
        assert torch.equal(state[".".join(["model", str(generated.index_map[int(index)]), *rest])], tensor), name


def test_new_ge_units_start_with_an_almost_open_gate(parent_checkpoint: Path) -> None:
    generated = generate_model_yaml(
        load_space("yolov8n_ge"), Candidate.of({9: Placement("theta-plus", 4), 15: Placement("theta", 0)})
    )
    model = build_model({**generated.model, "nc": 3})
    inherit_weights(model, Inheritance(load_parent_state(parent_checkpoint), generated.index_map))
    units = [m.eval() for m in model.modules() if isinstance(m, GatherExcite)]
    x = torch.randn(1, units[0].channels, 8, 8)
    assert torch.allclose(units[0](x), x * torch.sigmoid(torch.tensor(3.0)))


def test_new_ge_units_train_ten_times_faster_than_the_inherited_weights() -> None:
    generated = generate_model_yaml(
        load_space("yolov8n_ge"), Candidate.of({9: Placement("theta-plus", 4), 12: Placement("theta", 2, "inside")})
    )
    model = build_model(generated.model)
    # Ultralytics' three parameter groups: decayed weights, normalisation weights, biases.
    weights, norms, biases = [], [], []
    for module in model.modules():
        for name, parameter in module.named_parameters(recurse=False):
            is_norm = isinstance(module, torch.nn.BatchNorm2d)
            (biases if name == "bias" else norms if is_norm else weights).append(parameter)
    optimizer = torch.optim.AdamW(
        [
            {"params": weights, "weight_decay": 5e-4, "param_group": "weight"},
            {"params": norms, "weight_decay": 0.0, "param_group": "bn"},
            {"params": biases, "weight_decay": 0.0, "param_group": "bias"},
        ],
        lr=2e-4,
    )
    unit_params = {id(p) for m in model.modules() if isinstance(m, GatherExcite) for p in m.parameters()}

    moved = speed_up_new_units(optimizer, model, FINE_TUNE.new_unit_lr_factor)

    assert moved == len(unit_params) > 0
    placed = [id(p) for group in optimizer.param_groups for p in group["params"]]
    assert sorted(placed) == sorted(id(p) for p in model.parameters())  # each parameter exactly once
    for group in optimizer.param_groups:
        fast = {id(p) in unit_params for p in group["params"]}
        assert fast in ({True}, {False})
        assert group["lr"] == pytest.approx(2e-4 * (FINE_TUNE.new_unit_lr_factor if True in fast else 1))
    assert {(g["param_group"], g["weight_decay"]) for g in optimizer.param_groups} == {
        ("weight", 5e-4),
        ("bn", 0.0),
        ("bias", 0.0),
    }


def test_while_the_units_learn_alone_every_inherited_tensor_keeps_the_parents_value(
    parent_checkpoint: Path, tiny_dataset: Path, tmp_path: Path
) -> None:
    placements = {9: Placement("theta-plus", 0), 15: Placement("theta", 4), 18: Placement("theta-minus", 0)}
    generated = generate_model_yaml(load_space("yolov8n_ge"), Candidate.of(placements))
    parent = load_parent_state(parent_checkpoint)
    best = train_full(
        generated.write(tmp_path / "model.yaml"),
        tiny_dataset,
        epochs=1,
        imgsz=64,
        batch=8,
        device="cpu",
        project=tmp_path,
        name="units-alone",
        verbose=False,
        inheritance=Inheritance(parent, generated.index_map),
        recipe=FineTune(units_alone_epochs=1),
    )

    trained = load_parent_state(best)
    for name, tensor in parent.items():  # weights and BatchNorm statistics alike
        _, index, *rest = name.split(".")
        assert torch.equal(trained[".".join(["model", str(generated.index_map[int(index)]), *rest])], tensor), name
    # The units (layers 10 and 17; 21 is θ−, without parameters) learned: the weights their open gate
    # started at zero (θ+'s last MLP conv, the scale of θ's last gather BN) are no longer zero.
    assert trained["model.10.excite.2.weight"].abs().sum() > 0
    assert trained["model.17.gather.4.weight"].abs().sum() > 0


def test_search_inherits_from_a_parent_it_trains_once_and_reuses_on_resume(tiny_dataset: Path, tmp_path: Path) -> None:
    space_file = tmp_path / "space.yaml"
    space_file.write_text("base: yolov8n.yaml\npoints: [sppf]\nvariants: [theta-minus, theta]\nextents: [global]\n")
    config = SearchConfig(
        space=load_space(space_file),
        data_yaml=tiny_dataset,
        objectives=Objectives("map50-95", ("gflops",)),
        proxy=FAST_PROXY,
        trials=2,
        study_name="inherit",
        storage_url=f"sqlite:///{tmp_path / 'study.db'}",
        workdir=tmp_path / "work",
        sampler="grid",
        parent_epochs=1,
    )
    study = run_search(config)
    parent = tmp_path / "work" / "parent.pt"
    recorded = study.user_attrs["parent"]
    assert recorded == {"path": str(parent.resolve()), "sha256": file_sha256(parent)}
    assert study.user_attrs["settings"]["parent"] == "trained 1 epochs"
    modified = parent.stat().st_mtime_ns

    resumed = run_search(dataclasses.replace(config, trials=3))
    assert parent.stat().st_mtime_ns == modified
    assert resumed.user_attrs["parent"] == recorded
    assert len(resumed.get_trials()) == 3


def test_retrain_stores_longer_results_beside_the_proxy_ones(tiny_dataset: Path, tmp_path: Path) -> None:
    space_file = tmp_path / "space.yaml"
    space_file.write_text("base: yolov8n.yaml\npoints: [sppf]\nvariants: [theta-minus, theta-plus]\nextents: [2]\n")
    study = run_search(
        SearchConfig(
            space=load_space(space_file),
            data_yaml=tiny_dataset,
            objectives=Objectives("map50-95", ("params",)),
            proxy=FAST_PROXY,
            trials=3,
            study_name="fidelity",
            storage_url=f"sqlite:///{tmp_path / 'study.db'}",
            workdir=tmp_path / "work",
            sampler="grid",
        )
    )
    report = retrain(study, top=2, epochs=2, workdir=tmp_path / "work")
    stored = study.user_attrs["retrain"]["2"]
    assert {r.trial for r in report.rows} == {int(n) for n in stored} and 0 in {r.trial for r in report.rows}
    for row in report.rows:
        assert stored[str(row.trial)]["map50-95"] == row.retrained
        assert row.proxy == study.trials[row.trial].user_attrs["map50-95"]
    correlation = study.user_attrs["retrain_correlation"]["2"]
    assert correlation["n"] == len(report.rows)
    proxy, retrained = [r.proxy for r in report.rows], [r.retrained for r in report.rows]
    expected = [kendall(proxy, retrained), spearman(proxy, retrained)]
    assert [correlation["kendall_tau"], correlation["spearman"]] == pytest.approx(expected, nan_ok=True)

    again = retrain(study, top=2, epochs=2, workdir=tmp_path / "work")  # stored results are reused
    assert [r.seconds for r in again.rows] == [r.seconds for r in report.rows]


def test_retrain_of_unknown_study_is_a_one_line_error(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "ge_nas", "retrain", "--study", "ghost", "--epochs", "2"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=120,
    )
    assert result.returncode == 2
    assert result.stderr.startswith("error: study 'ghost' not found in studies/")


def test_full_training_of_an_exported_yaml_can_start_from_the_parent(
    parent_checkpoint: Path, tiny_dataset: Path, tmp_path: Path
) -> None:
    exported = generate_model_yaml(load_space("yolov8n_ge"), Candidate.of({15: Placement("theta-plus", 4)})).write(
        tmp_path / "best.yaml"
    )
    best = train(
        exported, tiny_dataset, epochs=1, imgsz=64, batch=8, project=tmp_path / "runs", weights=parent_checkpoint
    )
    assert best.is_file()
    with pytest.raises(InputError, match="--weights"):
        train(exported, tiny_dataset, epochs=1, weights=tmp_path / "missing.pt")
