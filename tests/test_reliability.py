"""Failures and interruptions: recorded on the trial, finished trials kept, clear messages."""

from __future__ import annotations

import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import optuna
import pytest
from optuna.trial import TrialState

from ge_nas.search.config import Objectives, ProxySettings, SearchConfig
from ge_nas.search.runner import SearchFailed, run_search
from ge_nas.space.search_space import load_space


def test_failing_trials_are_recorded_and_repeated_failures_stop_the_search(tmp_path: Path) -> None:
    images = tmp_path / "broken" / "images"
    images.mkdir(parents=True)
    (images / "not-an-image.txt").write_text("no images here")
    data = tmp_path / "broken" / "data.yaml"
    data.write_text(f"path: {tmp_path / 'broken'}\ntrain: images\nval: images\nnames: {{0: thing}}\n")
    config = SearchConfig(
        space=load_space("yolov8n_small"),
        data_yaml=data,
        objectives=Objectives("map50-95", ("gflops",)),
        proxy=ProxySettings(epochs=1, imgsz=64, batch=8),
        trials=5,
        study_name="broken",
        storage_url=f"sqlite:///{tmp_path / 'study.db'}",
        workdir=tmp_path / "work",
        max_failures=2,
    )
    with pytest.raises(SearchFailed, match="stopped after 2 failed trials in a row; last error: "):
        run_search(config)
    study = optuna.load_study(study_name="broken", storage=config.storage_url)
    trials = study.get_trials()
    assert [t.state for t in trials] == [TrialState.FAIL, TrialState.FAIL]
    assert all(t.user_attrs["error"] for t in trials)


def test_ctrl_c_stops_cleanly_and_says_how_to_resume(tiny_dataset: Path, tmp_path: Path) -> None:
    db = tmp_path / "study.db"
    command = [
        sys.executable, "-m", "ge_nas", "search", "--dataset", str(tiny_dataset), "--space", "yolov8n_small",
        "--study", "interrupted", "--storage", f"sqlite:///{db}", "--trials", "3", "--epochs", "30", "--imgsz", "64",
    ]  # fmt: skip
    process = subprocess.Popen(command, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and not _running_trial_has_an_epoch(db):
        time.sleep(0.5)
    process.send_signal(signal.SIGINT)
    _, stderr = process.communicate(timeout=120)
    assert process.returncode == 130
    assert "run the same command to resume study 'interrupted'" in stderr
    assert "Traceback" not in stderr
    (trial,) = optuna.load_study(study_name="interrupted", storage=f"sqlite:///{db}").get_trials()
    assert trial.state == TrialState.FAIL
    assert trial.user_attrs["error"] == "interrupted (Ctrl-C)"
    assert trial.user_attrs["epochs"]  # what it had learned so far is kept
    with sqlite3.connect(db) as connection:
        assert connection.execute("pragma integrity_check").fetchone() == ("ok",)


def _running_trial_has_an_epoch(db: Path) -> bool:
    """True once a trial is running and has stored at least one epoch's metrics."""
    return _count(
        db,
        "select count(*) from trials t join trial_user_attributes a on a.trial_id = t.trial_id "
        "where t.state = 'RUNNING' and a.key = 'epochs'",
    )


def _has_training_trial(db: Path) -> bool:
    """True once a running trial trains a new architecture (stored its YAML), so it runs for seconds."""
    return _count(
        db,
        "select count(*) from trials t join trial_user_attributes a on a.trial_id = t.trial_id "
        "where t.state = 'RUNNING' and a.key = 'yaml'",
    )


def _count(db: Path, query: str) -> bool:
    if not db.exists():
        return False
    try:
        with sqlite3.connect(db) as connection:
            return connection.execute(query).fetchone()[0] > 0
    except sqlite3.OperationalError:  # tables not created yet, or locked for a moment
        return False


def test_a_worker_killed_mid_trial_loses_no_finished_trial(tiny_dataset: Path, tmp_path: Path) -> None:
    db = tmp_path / "study.db"
    command = [
        sys.executable, "-m", "ge_nas", "search", "--dataset", str(tiny_dataset), "--space", "yolov8n_small",
        "--study", "killed", "--storage", f"sqlite:///{db}", "--epochs", "2", "--imgsz", "64", "--batch", "8",
        "--sampler", "grid", "--pruner", "none",  # grid: no architecture twice, so trial 2 trains
    ]  # fmt: skip
    assert subprocess.run([*command, "--trials", "2"], cwd=tmp_path, capture_output=True, timeout=300).returncode == 0
    process = subprocess.Popen(
        [*command, "--trials", "3"], cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and not _has_training_trial(db):
        time.sleep(0.1)
    process.send_signal(signal.SIGKILL)
    process.communicate(timeout=60)

    study = optuna.load_study(study_name="killed", storage=f"sqlite:///{db}")
    before = [(t.number, t.values) for t in study.get_trials(states=(TrialState.COMPLETE,))]
    assert len(before) == 2 and [t.state for t in study.get_trials()][-1] == TrialState.RUNNING

    rerun = subprocess.run([*command, "--trials", "3"], cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert rerun.returncode == 0, rerun.stderr
    assert "marked failed: trial(s) 2, whose worker was killed mid-trial" in rerun.stdout
    trials = study.get_trials()
    assert trials[2].state == TrialState.FAIL and "worker process ended" in trials[2].user_attrs["error"]
    complete = [(t.number, t.values) for t in trials if t.state == TrialState.COMPLETE]
    assert complete[:2] == before and len(complete) == 3
    with sqlite3.connect(db) as connection:
        assert connection.execute("pragma integrity_check").fetchone() == ("ok",)
