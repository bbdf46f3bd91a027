"""After a search: ge-nas list, show, export and train, as a user runs them, and the Python API behind them."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import optuna
import pytest
import yaml
from optuna.trial import TrialState, create_trial
from typer.testing import CliRunner
from ultralytics import YOLO

from ge_nas.cli import app
from ge_nas.errors import InputError
from ge_nas.layers.gather_excite import GatherExcite
from ge_nas.report import architectures as results
from ge_nas.search.config import Objectives, ProxySettings, SearchConfig
from ge_nas.search.runner import run_search
from ge_nas.space.search_space import load_space
from ge_nas.yolo.costs import count_gflops
from ge_nas.yolo.model_files import build_model
from tests.test_tables import evaluated, hand_built

STUDY = "results"


@pytest.fixture(scope="module")
def project(tiny_dataset: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder as a user has it after ``ge-nas search --study results``: the study in studies/results.db.

    A real 3-trial grid search over the P3 neck C2f: no GE (trial 0), a θ unit after it,
    and θ inside its bottlenecks; each trains a 1-epoch proxy at 64 px.
    """
    folder = tmp_path_factory.mktemp("project")
    space = folder / "space.yaml"
    space.write_text(
        "base: yolov8n.yaml\npoints: [neck.c2f_p3]\nvariants: [theta]\nextents: [global]\nmodes: [after, inside]\n"
    )
    config = SearchConfig(
        space=load_space(space),
        data_yaml=tiny_dataset,
        objectives=Objectives("map50-95", ("params",)),
        proxy=ProxySettings(epochs=1, imgsz=64, batch=8),
        trials=3,
        study_name=STUDY,
        storage_url=f"sqlite:///{folder / 'studies' / 'results.db'}",
        workdir=folder / "work",
        sampler="grid",
    )
    run_search(config)
    return folder


@pytest.fixture(scope="module")
def url(project: Path) -> str:
    return f"sqlite:///{project / 'studies' / 'results.db'}"


@pytest.fixture(scope="module")
def trained(project: Path, url: str, tiny_dataset: Path) -> tuple[subprocess.CompletedProcess[str], Path]:
    """``ge-nas train`` for 1 epoch on the architecture with GE inside the C2f, mosaic off; its output and best.pt."""
    inside = results.fronts(url, STUDY).query("key.str.endswith(':inside')").trial_number.item()
    model_yaml = results.export_yaml(url, STUDY, inside, project / "inside.yaml")
    run = ge_nas(
        project,
        *("train", str(model_yaml), "--data", str(tiny_dataset)),
        *("--epochs", "1", "--imgsz", "64", "--batch", "8", "--project", "runs", "--no-mosaic"),
    )
    assert run.returncode == 0, run.stderr
    return run, project / "runs" / "inside" / "weights" / "best.pt"


def ge_nas(cwd: Path, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "ge_nas", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        timeout=300,
        env={**os.environ, **(env or {})},
    )


def exported_trial(path: Path) -> int:
    """The trial number an exported YAML's header says it came from."""
    return int(re.search(r"^# Exported by ge-nas .*, trial (\d+), chosen with", path.read_text(), re.M).group(1))


def test_list_shows_every_study_under_studies(project: Path) -> None:
    listed = ge_nas(project, "list")
    assert listed.returncode == 0, listed.stderr
    header, row = listed.stdout.splitlines()
    assert header.split()[:3] == ["study", "trials", "architectures"]
    assert row.split()[:3] == [STUDY, "3", "3"]
    assert row.split()[-1] == "sqlite:///studies/results.db"


def test_list_as_json_gives_each_study_summary(project: Path) -> None:
    listed = ge_nas(project, "list", "--format", "json")
    assert listed.returncode == 0, listed.stderr
    (study,) = json.loads(listed.stdout)
    assert study["study_name"] == STUDY and study["n_trials"] == 3 and study["baseline_trial"] == 0
    assert json.loads(study["objectives"]) == ["map50-95", "params"]


def test_show_table_ranks_architectures_and_marks_baseline_and_knee(project: Path) -> None:
    shown = ge_nas(project, "show", "--study", STUDY)
    assert shown.returncode == 0, shown.stderr
    headline, header, *rows, verdict = shown.stdout.splitlines()
    assert headline.startswith(f"study '{STUDY}' (sqlite:///studies/results.db): 3 trials, 3 architectures")
    assert header.split()[:6] == ["trial", "architecture", "state", "front", "seeds", "map50-95"]
    assert len(rows) == 3
    assert rows[0].split()[:2] == ["0", "base"] and rows[0].endswith("baseline, knee")  # no GE: fewest params
    assert verdict.startswith("verdict: no architecture beats the baseline beyond the seed noise")


def test_show_csv_has_one_row_per_architecture_with_every_column(project: Path) -> None:
    shown = ge_nas(project, "show", "--study", STUDY, "--format", "csv")
    assert shown.returncode == 0, shown.stderr
    header, *rows = shown.stdout.splitlines()
    assert header.startswith("study_name,trial_number,key,code,units,state,accuracy_name,accuracy")
    assert "yaml" not in header.split(",")
    assert [row.split(",")[1] for row in rows] == ["0", "1", "2"]  # equal accuracy: ordered by front


def test_show_json_of_front_1_lists_the_pareto_front(project: Path, url: str) -> None:
    shown = ge_nas(project, "show", "--study", STUDY, "--storage", url, "--format", "json", "--front", "1")
    assert shown.returncode == 0, shown.stderr
    front = json.loads(shown.stdout)
    assert [row["front"] for row in front] == [1] * len(front)
    assert [row["trial_number"] for row in front] == results.fronts(url, STUDY).query(
        "front == 1"
    ).trial_number.tolist()


@pytest.mark.parametrize("choice", ["knee", "best-accuracy", "max-gflops", "max-params", "max-latency", "trial"])
def test_export_writes_the_chosen_architecture_with_its_origin(choice: str, url: str, tmp_path: Path) -> None:
    ranked = results.fronts(url, STUDY)
    budgets = {
        "max-gflops": ranked.gflops.max(),
        "max-params": ranked.params.min(),
        "max-latency": ranked.latency_ms.max(),
    }
    option = (
        ["--trial", "2"]
        if choice == "trial"
        else ["--pick", f"{choice}={budgets[choice]}" if choice in budgets else choice]
    )
    output = tmp_path / "best.yaml"

    exported = CliRunner().invoke(app, ["export", "--study", STUDY, "--storage", url, *option, "-o", str(output)])
    assert exported.exit_code == 0, exported.output
    assert exported.output.startswith(f"wrote {output}: trial {exported_trial(output)} (")

    row = ranked.set_index("trial_number").loc[exported_trial(output)]
    trained = ranked[ranked.state == "complete"]
    expected = {
        "knee": row.is_knee,
        "best-accuracy": row.accuracy == trained.accuracy.max(),
        "max-gflops": row.gflops <= budgets["max-gflops"] and row.accuracy == trained.accuracy.max(),
        "max-params": row.params <= budgets["max-params"],
        "max-latency": row.latency_ms <= budgets["max-latency"] and row.accuracy == trained.accuracy.max(),
        "trial": exported_trial(output) == 2,
    }
    assert expected[choice]
    text = output.read_text()
    assert text.startswith("# Generated by ge-nas")
    assert f"chosen with {' '.join(option)}" in text
    assert "# Proxy (1 epoch at 64 px, parent: none (from scratch)): map50-95 " in text
    assert yaml.safe_load(text) == yaml.safe_load(row.yaml)  # only comments were added


def test_an_exported_yaml_rebuilds_with_the_params_and_gflops_the_search_stored(url: str, tmp_path: Path) -> None:
    imgsz = optuna.load_study(study_name=STUDY, storage=url).user_attrs["settings"]["proxy"]["imgsz"]
    for row in results.fronts(url, STUDY).itertuples():
        model = build_model(results.export_yaml(url, STUDY, row.trial_number, tmp_path / f"{row.trial_number}.yaml"))
        assert sum(p.numel() for p in model.parameters()) == row.params
        assert count_gflops(model, imgsz) == pytest.approx(row.gflops, rel=1e-9)


def test_unknown_study_is_a_one_line_error_naming_the_studies_there(project: Path) -> None:
    shown = ge_nas(project, "show", "--study", "nope")
    assert shown.returncode == 2
    assert shown.stderr.strip() == (
        "error: study 'nope' not found in studies/ (no nope.db); studies there: results; or give --storage URL"
    )


def test_train_prints_where_best_pt_is_and_it_loads_back_and_predicts(
    trained: tuple[subprocess.CompletedProcess[str], Path], tiny_dataset: Path
) -> None:
    run, best = trained
    assert f"best checkpoint: {best}" in run.stdout
    trained_with = yaml.safe_load((best.parent.parent / "args.yaml").read_text())
    assert (trained_with["mosaic"], trained_with["close_mosaic"]) == (0.0, 0)  # --no-mosaic
    model = YOLO(best)
    assert any(isinstance(m, GatherExcite) for m in model.model.modules())
    image = next((tiny_dataset.parent / "images" / "val").iterdir())
    (prediction,) = model.predict(image, imgsz=64, verbose=False)
    assert prediction.boxes is not None


def test_a_trained_checkpoint_loads_under_ultralytics_restricted_loading(
    trained: tuple[subprocess.CompletedProcess[str], Path], tiny_dataset: Path
) -> None:
    _, best = trained
    image = next((tiny_dataset.parent / "images" / "val").iterdir())
    script = f"import ge_nas; from ultralytics import YOLO; YOLO({str(best)!r}).predict({str(image)!r}, imgsz=64)"
    run = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "ULTRALYTICS_SAFE_LOAD": "1"},  # torch.load(weights_only=True) with an allow-list
    )
    assert run.returncode == 0, run.stderr


def hand_picked(tmp_path: Path) -> str:
    """A study with distinct accuracies, so each pick chooses a different architecture."""
    return hand_built(
        tmp_path / "hand.db",
        [
            evaluated("base", 0.30, 1.0),  # 1.0 GFLOPs, 1M params, 10 ms
            evaluated("9:theta:0:after", 0.50, 1.2),  # the knee
            evaluated("9:theta-plus:0:after", 0.55, 3.0),  # the most accurate
            evaluated("9:theta:0:after", 0.50, 1.2, reused_from=1),
            create_trial(state=TrialState.FAIL, user_attrs={"key": "15:theta:0:after"}),
        ],
    )


@pytest.mark.parametrize(
    ("how", "trial"),
    [
        ("knee", 1),
        ("best-accuracy", 2),
        ("max-gflops=2.5", 1),
        ("max-params=1000000", 0),
        ("max-latency=30", 2),
        ("3", 1),  # trial 3 reused trial 1's result
        (2, 2),
    ],
)
def test_each_pick_chooses_its_architecture(how: str | int, trial: int, tmp_path: Path) -> None:
    assert results.pick(hand_picked(tmp_path), "hand", how).trial_number == trial


def test_a_budget_nothing_meets_names_the_cheapest_architecture(tmp_path: Path) -> None:
    with pytest.raises(InputError, match=r"no trained .* has gflops <= 0.5; the cheapest has 1 \(trial 0\)"):
        results.pick(hand_picked(tmp_path), "hand", "max-gflops=0.5")


def test_a_failed_trial_has_nothing_to_export(tmp_path: Path) -> None:
    with pytest.raises(InputError, match=r"--trial 4: that trial evaluated no architecture \(it is failed\)"):
        results.export_yaml(hand_picked(tmp_path), "hand", 4, tmp_path / "x.yaml")


def test_an_unknown_pick_lists_the_ones_there_are(tmp_path: Path) -> None:
    with pytest.raises(InputError, match=r"--pick 'cheapest': use one of knee, verdict, best-accuracy, max-gflops=X"):
        results.pick(hand_picked(tmp_path), "hand", "cheapest")
