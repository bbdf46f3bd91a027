"""The supernet: every choice in one Ultralytics model, a path per batch, candidates scored as its sub-networks."""

from __future__ import annotations

import json
import random
import sqlite3
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import optuna
import pytest
import torch
import yaml
from optuna.trial import create_trial
from torch import nn
from ultralytics.utils.torch_utils import unwrap_model

from ge_nas.ranking.fronts import rank, rank_study
from ge_nas.report.dashboard import dashboard_html
from ge_nas.search.config import ProxySettings, SearchConfig, build_config
from ge_nas.search.confirmation import SeedRun, confirmation_runs, noise_runs
from ge_nas.space.candidate import BASELINE_KEY, Candidate, Placement
from ge_nas.space.model_yaml import generate_model_yaml, generate_supernet_yaml
from ge_nas.space.search_space import load_space
from ge_nas.storage.records import Stage, Strategy, TrialRecord, read_record, read_records
from ge_nas.yolo.inheritance import Inheritance, inheritance_for, load_parent_state
from ge_nas.yolo.model_files import build_model
from ge_nas.yolo.supernet import PathSampler, activate, copy_path, recalibrate_batchnorm, train_space_supernet
from ge_nas.yolo.training import train_supernet
from tests.conftest import CommandResult

# A C2f point with after and inside choices (8), and the SPPF with after choices (4).
MIXED_SPACE = (
    "base: yolov8n.yaml\npoints: [neck.c2f_p3, sppf]\nvariants: [theta-minus, theta-plus]\n"
    "extents: [2, global]\nmodes: [after, inside]\n"
)
# Another base and other modules: a YOLO11 C3k2 whose bottlenecks sit in C3k blocks (8 choices), and the C2PSA (4).
MODULES_SPACE = (
    "base: yolo11n.yaml\npoints: [backbone.c3k2_p4, c2psa]\nmodules: [ge, se, cbam, simam]\n"
    "variants: [theta-plus]\nextents: [global]\nmodes: [after, inside]\n"
)


@pytest.fixture(scope="module")
def mixed_space(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("space") / "mixed.yaml"
    path.write_text(MIXED_SPACE)
    return path


@pytest.mark.parametrize("text", [MIXED_SPACE, MODULES_SPACE], ids=["yolov8n-ge", "yolo11n-modules"])
def test_a_supernet_set_to_a_candidate_computes_what_the_candidate_with_its_weights_computes(
    text: str, tmp_path: Path
) -> None:
    (tmp_path / "space.yaml").write_text(text)
    space = load_space(tmp_path / "space.yaml")
    supernet = build_model(generate_supernet_yaml(space).model).eval()
    torch.manual_seed(0)
    with torch.no_grad():
        for parameter in supernet.parameters():  # every unit away from its initial gate, so each one matters
            parameter.add_(torch.randn_like(parameter) * 0.05)
    image = torch.rand(1, 3, 64, 64)
    # Every option of every point, each in a candidate with a unit at every point (units after earlier points
    # shift the rows of later ones).
    options = max(len(p.choices) for p in space.points)
    every = [Candidate.of({p.index: p.choices[k % len(p.choices)] for p in space.points}) for k in range(options)]
    outputs = []
    for candidate in [Candidate.baseline(), *every]:
        activate(supernet, candidate)
        model = build_model(generate_model_yaml(space, candidate).model).eval()
        copy_path(model, supernet)
        with torch.no_grad():
            output = supernet(image)[0]
            assert torch.allclose(model(image)[0], output, atol=1e-5), candidate.code
        outputs.append(output)
    assert all((outputs[0] - other).abs().max() > 1e-4 for other in outputs[1:])  # the units change the output


def test_copying_a_path_the_supernet_is_not_set_to_is_refused(mixed_space: Path) -> None:
    space = load_space(mixed_space)
    supernet = build_model(generate_supernet_yaml(space).model)
    unit = Candidate.of({9: Placement("theta-plus", 0)})
    activate(supernet, Candidate.baseline())
    with pytest.raises(ValueError, match="the candidate"):
        copy_path(build_model(generate_model_yaml(space, unit).model), supernet)
    with pytest.raises(ValueError, match="holds no theta/0/after"):
        activate(supernet, Candidate.of({9: Placement("theta", 0)}))


def test_recalibrated_batchnorm_holds_the_plain_average_of_the_batches_statistics() -> None:
    model = nn.Sequential(nn.Conv2d(3, 4, 1), nn.BatchNorm2d(4, momentum=0.03))
    batches = [torch.randn(8, 3, 5, 5) + shift for shift in (0.0, 2.0, -1.0)]
    recalibrate_batchnorm(model, batches)
    norm = model[1]
    with torch.no_grad():
        outputs = [model[0](batch) for batch in batches]
    expected_mean = torch.stack([out.mean(dim=(0, 2, 3)) for out in outputs]).mean(0)
    expected_var = torch.stack([out.var(dim=(0, 2, 3), unbiased=True) for out in outputs]).mean(0)
    assert torch.allclose(norm.running_mean, expected_mean, atol=1e-5)
    assert torch.allclose(norm.running_var, expected_var, atol=1e-4)
    assert norm.momentum == 0.03 and not model.training


def test_each_batch_trains_one_sampled_path_and_a_stopped_supernet_resumes_where_it_stopped(
    learned: Path, tiny_dataset: Path, tmp_path: Path
) -> None:
    space = load_space(learned / "space.yaml")
    settings = ProxySettings(epochs=1, imgsz=64, batch=8)
    generated = generate_supernet_yaml(space)
    parent = load_parent_state(learned / "parent.pt")
    sampler = PathSampler(space, generated.points, settings.seed)
    (point,) = generated.points
    active: list[tuple[int, int]] = []

    def sample_then_stop_in_epoch_2(trainer: object) -> None:
        if trainer.epoch == 1:
            raise KeyboardInterrupt  # as Ctrl-C would, after the first epoch's checkpoint
        sampler(trainer)
        active.append((trainer.epoch, unwrap_model(trainer.model).model[point.after].active))

    model_yaml = generated.write(tmp_path / "supernet" / "model.yaml")
    inheritance = Inheritance(parent, generated.index_map)
    with pytest.raises(KeyboardInterrupt):
        train_supernet(model_yaml, tiny_dataset, settings, 2, tmp_path, inheritance, sample_then_stop_in_epoch_2)
    paths = [space.sample_path(random.Random(f"0:0:{batch}")) for batch in range(len(active))]
    assert active == [(0, point.options(dict(p.placements).get(point.index))[0]) for p in paths]
    assert len(active) == 2  # 16 images in batches of 8

    last = train_space_supernet(space, tiny_dataset, settings, 2, tmp_path, parent)
    checkpoint = torch.load(last, weights_only=False)
    assert checkpoint["epoch"] == 1 and checkpoint["train_args"]["epochs"] == 2
    assert len((last.parent.parent / "results.csv").read_text().splitlines()) == 1 + 2  # epochs 1 and 2, one run
    trained = checkpoint["ema"].float().state_dict()
    assert (trained["model.0.conv.weight"] - parent["model.0.conv.weight"]).abs().max() < 0.05  # from the parent


def scored(key: str, score: float, proxies: list[float], gflops: float, number: int) -> list[TrialRecord]:
    """An architecture of a supernet search: its supernet score (exploring) and proxies of seeds 0, 1, ..."""
    common = {"key": key, "code": key, "gflops": gflops, "params": 1, "latency_ms": 1.0, "latency_ratio": 1.0}
    explore = {**common, "stage": "explore", "strategy": "supernet", "supernet_score": {"map50-95": score}}
    trials = [create_trial(values=[score, gflops], user_attrs=explore)]
    for seed, accuracy in enumerate(proxies):
        epochs = [{"epoch": 1, "map50-95": accuracy}]
        stage = "noise" if key == BASELINE_KEY else "confirm"
        attrs = {**common, "stage": stage, "seed_index": seed, "strategy": "proxy", "epochs": epochs}
        trials.append(create_trial(values=[accuracy, gflops], user_attrs=attrs))
    for offset, trial in enumerate(trials):
        trial.number = number + offset
    return [read_record(trial) for trial in trials]


def test_a_supernet_front_is_ranked_on_scores_confirmed_by_proxies_and_judged_on_the_proxies_alone(
    tmp_path: Path,
) -> None:
    (tmp_path / "space.yaml").write_text("base: yolov8n.yaml\npoints: [sppf]\n")
    config = SearchConfig(
        space=load_space(tmp_path / "space.yaml"),
        data_yaml=tmp_path / "data.yaml",
        objectives=None,  # not read here
        proxy=None,
        trials=3,
        study_name="s",
        storage_url="sqlite:///s.db",
        workdir=tmp_path,
        baseline_seeds=2,
        confirm=1,
        max_seeds=2,
        strategy="supernet",
    )
    plus, theta = "9:theta-plus:0:after", "9:theta:0:after"
    base = scored(BASELINE_KEY, 0.80, [0.64, 0.63], 0.354, 0)
    records = [*base, *scored(plus, 0.82, [], 0.355, 3), *scored(theta, 0.81, [], 0.3545, 4)]
    ranking = rank(records, ("map50-95", "gflops"), ("maximize", "minimize"))
    assert {a.record.key: a.front for a in ranking.architectures} == {BASELINE_KEY: 1, plus: 1, theta: 1}
    assert ranking.verdict().startswith("no verdict: no architecture of the supernet's front has been confirmed")
    # The best supernet score first, from proxy seed 0 (the baseline has its proxies already).
    assert confirmation_runs(ranking, config) == [SeedRun(plus, 0, Stage.CONFIRM)]
    assert noise_runs(config)[1:] == [SeedRun(BASELINE_KEY, 0, Stage.NOISE), SeedRun(BASELINE_KEY, 1, Stage.NOISE)]
    records = [*base, *scored(plus, 0.82, [0.60, 0.60], 0.355, 3), *scored(theta, 0.81, [], 0.3545, 6)]
    ranking = rank(records, ("map50-95", "gflops"), ("maximize", "minimize"))
    confirmed = next(a for a in ranking.architectures if a.record.key == plus)
    assert confirmed.accuracy == 0.82 and confirmed.supernet_score == 0.82  # its front still ranks the score
    assert confirmed.gain_estimate.mean == pytest.approx(-0.035) and not confirmed.significant
    assert ranking.verdict().startswith("no architecture beats the baseline beyond the seed noise")


SUPERNET_STUDY = "one-shot"
# The search's space (on the learned parent's base): GE and another module in one supernet.
ATTENTION_SPACE = "base: yolov8n.yaml\npoints: [sppf]\nmodules: [ge, se]\nvariants: [theta-plus]\nextents: [global]\n"
# The supernet search's options (after --dataset): a proxy search with these resumes nothing, the strategy differs.
SUPERNET_SEARCH = (
    *("--space", "attention.yaml", "--study", SUPERNET_STUDY, "--weights", "parent.pt", "--trials", "3"),
    *("--epochs", "1", "--imgsz", "64", "--fraction", "0.5", "--batch", "8", "--sampler", "random", "--seed", "1"),
    *("--baseline-seeds", "2", "--confirm", "1", "--max-seeds", "2"),
)
SUPERNET_STRATEGY = ("--strategy", "supernet", "--supernet-epochs", "1")


@pytest.fixture(scope="module")
def supernet_search(learned: Path) -> tuple[Path, CommandResult]:
    """A real supernet search over the SPPF with no unit, GE θ+ or SE (3 architectures), confirmed with proxies."""
    (learned / "attention.yaml").write_text(ATTENTION_SPACE)
    args = ["search", "--dataset", str(learned / "data" / "data.yaml"), *SUPERNET_SEARCH, *SUPERNET_STRATEGY]
    result = subprocess.run([sys.executable, "-m", "ge_nas", *args], cwd=learned, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    return learned / "studies" / f"{SUPERNET_STUDY}.db", CommandResult(0, result.stdout, result.stderr)


def test_a_supernet_search_scores_every_candidate_and_confirms_its_front_with_proxies(
    supernet_search: tuple[Path, CommandResult],
) -> None:
    db, printed = supernet_search
    study = optuna.load_study(study_name=SUPERNET_STUDY, storage=f"sqlite:///{db}")
    records = read_records(study)
    explored = [r for r in records if r.stage == Stage.EXPLORE and r.reused_from is None]
    # The random sampler proposes scored architectures again; those are reused and do not count,
    # so --trials 3 scores all 3 of the space.
    assert sorted(r.code for r in explored) == ["9pg", "9se", "base"]
    assert [r for r in records if r.stage == Stage.EXPLORE and r.reused_from is not None]
    assert all(r.strategy == Strategy.SUPERNET and set(r.supernet_score) == {"map50", "map50-95"} for r in explored)
    assert all(not r.epochs and r.gflops and r.latency_ratio and r.score_seconds for r in explored)
    seeded = [r for r in records if r.stage != Stage.EXPLORE]
    assert seeded and all(r.strategy == Strategy.PROXY and r.epochs for r in seeded)
    assert sorted(r.seed_index for r in seeded if r.baseline) == [0, 1]  # the noise floor: proxies only
    # Confirmed: the supernet front's most promising candidate (its highest score), with as many seeds as the baseline.
    front = [a for a in rank_study(study).front(1) if not a.record.baseline]
    best = max(front, key=lambda a: a.supernet_score).record.code if front else None
    confirmed = sorted((r.code, r.seed_index) for r in seeded if not r.baseline)
    assert confirmed == ([(best, 0), (best, 1)] if front else [])
    assert (
        "plan: a supernet of 1 epochs (once), then the baseline with 2 proxy seeds (the noise floor), then 3 "
        "distinct candidates scored by the supernet (the baseline's score among them; one proposed again is reused "
        "and does not count), then confirmation: the front's 1 most promising candidates at a time get proxy seeds, "
        "up to 2 each" in printed.stdout
    )
    assert printed.stdout.count("plan: ") == 1  # printed once, also when stdout is a pipe and training forks
    verdict = printed.stdout.split("verdict:")[1]
    assert ("paired seeds)" if front else "no architecture with GE is on the supernet's front") in verdict
    assert (db.parent / SUPERNET_STUDY / "supernet.pt").is_file()
    assert json.loads(json.dumps(study.user_attrs["settings"]))["strategy"] == "supernet"


def test_asked_for_more_architectures_than_the_space_holds_a_supernet_search_says_where_it_stopped(
    supernet_search: tuple[Path, CommandResult], ge_nas_in_process: Callable[..., CommandResult], learned: Path
) -> None:
    data = ["--dataset", str(learned / "data" / "data.yaml")]
    resumed = ge_nas_in_process("search", *data, *SUPERNET_SEARCH, *SUPERNET_STRATEGY, "--trials", "5", cwd=learned)
    assert resumed.returncode == 0, resumed.stderr
    assert "3 of 5 trials done" in resumed.stdout
    assert "exploring stopped at 3 distinct architectures: the space has no more" in resumed.stdout


def test_a_supernet_search_explores_with_nsga2_unless_told_otherwise(
    tiny_dataset: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Supernet scores are cheap and the baseline's is usually the best, which TPE then proposes
    # again and again; NSGA-II keeps drawing new architectures. Proxy searches keep TPE.
    monkeypatch.chdir(tmp_path)
    supernet = {"dataset": tiny_dataset, "strategy": "supernet", "parent_epochs": 1}
    assert build_config(**supernet).sampler == "nsga2"
    assert build_config(**supernet, sampler="tpe").sampler == "tpe"
    assert build_config(dataset=tiny_dataset).sampler == "tpe"


def test_show_the_tables_and_the_dashboard_put_supernet_and_proxy_scores_side_by_side(
    supernet_search: tuple[Path, CommandResult], ge_nas_in_process: object, learned: Path
) -> None:
    db, _ = supernet_search
    url = f"sqlite:///{db}"
    shown = ge_nas_in_process("show", "--study", SUPERNET_STUDY, "--storage", url, cwd=learned)
    header = shown.stdout.splitlines()[1]
    assert shown.returncode == 0 and "supernet map50-95" in header and "proxy map50-95" in header
    rows = json.loads(
        ge_nas_in_process("show", "--study", SUPERNET_STUDY, "--storage", url, "--format", "json", cwd=learned).stdout
    )
    # The baseline always has proxies (the noise floor): its row holds both, the score ranking and the proxies' mean.
    study = optuna.load_study(study_name=SUPERNET_STUDY, storage=url)
    noise = [r.accuracy("map50-95") for r in read_records(study) if r.baseline and r.stage == Stage.NOISE]
    (baseline,) = [r for r in rows if r["is_baseline"]]
    assert baseline["supernet_score"] == baseline["accuracy"] and baseline["seeds"] == len(noise) == 2
    assert baseline["accuracy_mean"] == pytest.approx(sum(noise) / 2) != baseline["accuracy"]
    # An architecture no proxy confirmed has its score and no proxy accuracy (not 0); a confirmed one has both.
    for row in rows:
        assert row["supernet_score"] == row["accuracy"] and row["strategy"] == "supernet"
        assert (row["accuracy_mean"] is None) == (row["seeds"] == 0)
    with sqlite3.connect(db) as connection:
        stored = connection.execute("select strategy, supernet_score from ge_nas_architectures").fetchall()
    assert stored and all(strategy == "supernet" and score is not None for strategy, score in stored)
    page = dashboard_html(study, url)
    assert "supernet map50-95</th>" in page and "proxy map50-95</th>" in page
    assert f"baseline map50-95 (supernet score): {baseline['accuracy']:.4f}" in page  # the summary says which


def test_an_export_with_supernet_weights_is_a_checkpoint_ge_nas_train_starts_from_as_it_is(
    supernet_search: tuple[Path, CommandResult], ge_nas_in_process: object, learned: Path, tmp_path: Path
) -> None:
    db, _ = supernet_search
    args = ["export", "--study", SUPERNET_STUDY, "--storage", f"sqlite:///{db}", "--pick", "best-accuracy"]
    result = ge_nas_in_process(*args, "-o", str(tmp_path / "best.yaml"), "--weights-from-supernet", cwd=learned)
    assert result.returncode == 0, result.stderr
    assert f"--weights {tmp_path / 'best.pt'}" in result.stdout
    model = yaml.safe_load((tmp_path / "best.yaml").read_text())
    inheritance = inheritance_for(model, tmp_path / "best.pt")
    assert not inheritance.new_units and inheritance.index_map == {i: i for i in range(len(inheritance.index_map))}
    built = build_model(model)
    assert {k for k in built.state_dict() if "cv3" not in k} <= set(inheritance.parent_state)  # every layer, units too


def test_supernet_options_and_exports_refuse_what_cannot_work(
    supernet_search: tuple[Path, CommandResult],
    tiny_search: Path,
    ge_nas_in_process: object,
    learned: Path,
    tmp_path: Path,
) -> None:
    segment = tmp_path / "segment.yaml"
    segment.write_text("base: yolo11n-seg.yaml\npoints: [sppf]\n")
    data = ["--dataset", str(learned / "data" / "data.yaml"), "--space", "space.yaml"]
    cases = [
        (["search", *data, "--strategy", "supernet", "--parent-epochs", "0", "--study", "x"], "--parent-epochs N"),
        (["search", *data, "--supernet-epochs", "3", "--study", "x"], "with --strategy supernet"),
        (["search", "--dataset", data[1], *SUPERNET_SEARCH], "created with strategy = 'supernet'"),
        (
            ["search", *data[:2], "--space", str(segment), "--strategy", "supernet", "--study", "x"],
            "--strategy supernet supports detection bases for now, and space segment is a segment model",
        ),
        (
            ["export", "--study", "tiny", "--storage", f"sqlite:///{tiny_search}", "--weights-from-supernet"],
            "no supernet",
        ),
    ]
    for args, message in cases:
        result = ge_nas_in_process(*args, cwd=learned)
        assert result.returncode == 2 and message in result.stderr and len(result.stderr.strip().splitlines()) == 1
    assert not (learned / "best.yaml").exists() and not (learned / "best.pt").exists()
