"""Several workers on one study: processes on one machine (SQLite), searches sharing PostgreSQL."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import optuna
from optuna.trial import FrozenTrial, TrialState

from tests.conftest import QUICK


def tiny_space(folder: Path) -> Path:
    path = folder / "space.yaml"
    path.write_text("base: yolov8n.yaml\npoints: [sppf]\nvariants: [theta-minus, theta]\nextents: [global]\n")
    return path


def search_command(dataset: Path, space: Path, storage: str, *extra: str) -> list[str]:
    return [
        sys.executable, "-m", "ge_nas", "search", "--dataset", str(dataset), "--space", str(space),
        "--study", "shared", "--storage", storage, "--trials", "4", "--epochs", "1", "--imgsz", "64",
        "--batch", "8", "--sampler", "random", *QUICK, *extra,
    ]  # fmt: skip


def assert_exactly_four_trials_each_architecture_trained_once(trials: list[FrozenTrial]) -> None:
    finished = [t for t in trials if t.state in (TrialState.COMPLETE, TrialState.PRUNED)]
    assert len(finished) == 4
    assert all("surplus" in t.user_attrs for t in trials if t.state == TrialState.FAIL)
    trained = [t.user_attrs["key"] for t in finished if "reused_from" not in t.user_attrs]
    assert len(trained) == len(set(trained))  # a repeated architecture waited for its twin and reused it


def test_worker_processes_share_a_sqlite_study(tiny_dataset: Path, tmp_path: Path) -> None:
    storage = f"sqlite:///{tmp_path / 'study.db'}"
    command = search_command(tiny_dataset, tiny_space(tmp_path), storage, "--workers", "2")
    result = subprocess.run(command, cwd=tmp_path, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr
    assert "2 workers" in result.stdout
    trials = optuna.load_study(study_name="shared", storage=storage).get_trials()
    assert_exactly_four_trials_each_architecture_trained_once(trials)
    assert len({t.user_attrs["worker"] for t in trials}) == 2


def test_searches_on_several_machines_cooperate_through_postgresql(
    tiny_dataset: Path, tmp_path: Path, postgres_url: str
) -> None:
    command = search_command(tiny_dataset, tiny_space(tmp_path), postgres_url)
    # The same command started twice at once, as on two machines.
    processes = [
        subprocess.Popen(command, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for _ in range(2)
    ]
    for process in processes:
        _, stderr = process.communicate(timeout=600)
        assert process.returncode == 0, stderr
    trials = optuna.load_study(study_name="shared", storage=postgres_url).get_trials()
    assert_exactly_four_trials_each_architecture_trained_once(trials)
