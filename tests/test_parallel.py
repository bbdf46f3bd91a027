"""Several workers on one study: processes on one machine (SQLite), searches sharing PostgreSQL."""

from __future__ import annotations

import multiprocessing
import multiprocessing.synchronize
import sqlite3
import subprocess
import sys
from pathlib import Path

import optuna
from optuna.trial import FrozenTrial, TrialState

from ge_nas.storage.database import open_storage
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
    # The main process registers first, then spawns two worker processes that register on the
    # study too; every trial ran in one of those. (How many trials each takes depends on start-up
    # times: a slow start may leave one nothing to do, so that is not asserted.)
    with sqlite3.connect(tmp_path / "study.db") as connection:
        rows = connection.execute("SELECT worker_id, pid FROM ge_nas_workers ORDER BY started_at").fetchall()
    assert len({pid for _, pid in rows}) == 3
    spawned = {worker for worker, _ in rows[1:]}
    assert {t.user_attrs["worker"] for t in trials} <= spawned


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


def _ask_at_once(storage_url: str, barrier: multiprocessing.synchronize.Barrier, asked: multiprocessing.Queue) -> None:
    """One worker: open the study as a search does, wait for the others, then ask for four trials."""
    study = optuna.load_study(study_name="queue", storage=open_storage(storage_url))
    barrier.wait()
    for _ in range(4):
        asked.put(study.ask().number)


def test_a_queued_trial_is_taken_by_one_worker_only_on_sqlite(tmp_path: Path) -> None:
    # Optuna hands out a queued (WAITING) trial with SELECT ... FOR UPDATE, which SQLite
    # ignores: workers asking at once could both run, say, the baseline a search queues first.
    storage_url = f"sqlite:///{tmp_path / 'study.db'}"
    study = optuna.create_study(study_name="queue", storage=open_storage(storage_url))
    for x in range(8):
        study.enqueue_trial({"x": float(x)})
    context = multiprocessing.get_context("spawn")
    barrier, asked = context.Barrier(4), context.Queue()
    processes = [context.Process(target=_ask_at_once, args=(storage_url, barrier, asked)) for _ in range(4)]
    for process in processes:
        process.start()
    numbers = sorted(asked.get(timeout=120) for _ in range(16))
    for process in processes:
        process.join(timeout=60)
    assert numbers == list(range(16))  # each of the 8 queued trials went to one worker, then 8 new ones
    assert [t.state for t in study.get_trials()] == [TrialState.RUNNING] * 16
