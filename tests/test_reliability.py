"""Failures and interruptions: recorded on the trial, finished trials kept, clear messages."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path

import optuna
import pytest
import sqlalchemy
from optuna.trial import TrialState
from sqlalchemy import event
from sqlalchemy.engine import Engine

from ge_nas.interrupts import interrupts_recorded, raise_if_interrupted
from ge_nas.search.config import Objectives, ProxySettings, SearchConfig
from ge_nas.search.runner import SearchFailed, run_search
from ge_nas.space.search_space import load_space
from ge_nas.storage.workers import GRACE_SECONDS
from tests.conftest import LAST_WORKER_RUNNING_WITH_EPOCHS, QUICK, RUNNING_WITH_EPOCHS, RUNNING_WITH_YAML, wait_for_rows


def test_failing_trials_are_recorded_and_repeated_failures_stop_the_search(
    unlearnable_dataset: Path, tmp_path: Path
) -> None:
    config = SearchConfig(
        space=load_space("yolov8n_small"),
        data_yaml=unlearnable_dataset,
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


def test_ctrl_c_stops_cleanly_and_says_how_to_resume(tiny_dataset: Path, tmp_path: Path, busy_cpu: None) -> None:
    """Also with both cores busy: interrupting waits on no heartbeat thread and no lock held by one."""
    db = tmp_path / "study.db"
    command = [
        sys.executable, "-m", "ge_nas", "search", "--dataset", str(tiny_dataset), "--space", "yolov8n_small",
        "--study", "interrupted", "--storage", f"sqlite:///{db}", "--trials", "3", "--epochs", "30", "--imgsz", "64",
        *QUICK,
    ]  # fmt: skip
    process = subprocess.Popen(command, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    wait_for_rows(db, RUNNING_WITH_EPOCHS, process)
    process.send_signal(signal.SIGINT)
    _, stderr = process.communicate(timeout=120)
    assert process.returncode == 130, stderr
    assert "run the same command to resume study 'interrupted'" in stderr
    assert "Traceback" not in stderr
    (trial,) = optuna.load_study(study_name="interrupted", storage=f"sqlite:///{db}").get_trials()
    assert trial.state == TrialState.FAIL
    assert trial.user_attrs["error"] == "interrupted (Ctrl-C)"
    assert trial.user_attrs["epochs"]  # what it had learned so far is kept
    with sqlite3.connect(db) as connection:
        assert connection.execute("pragma integrity_check").fetchone() == ("ok",)


def test_a_ctrl_c_during_a_database_write_marks_the_trial_interrupted_and_the_study_resumes(
    tiny_dataset: Path, tmp_path: Path
) -> None:
    """A Ctrl-C that lands inside a commit (here: the one storing the first epoch) waits for it.

    Raised there, it would leave the connection in an open transaction: every later write
    fails, the trial is not marked interrupted, and the Ctrl-C becomes a storage error.
    """
    config = SearchConfig(
        space=load_space("yolov8n_small"),
        data_yaml=tiny_dataset,
        objectives=Objectives("map50-95", ("gflops",)),
        proxy=ProxySettings(epochs=3, imgsz=64, batch=8),
        trials=1,
        study_name="cut-short",
        storage_url=f"sqlite:///{tmp_path / 'study.db'}",
        workdir=tmp_path / "work",
    )
    moment = {"epoch stored": False, "interrupted": False}

    def note_epoch_write(connection: object, cursor: object, statement: str, parameters: object, *_: object) -> None:
        if "trial_user_attributes" in statement and "epochs" in str(parameters):
            moment["epoch stored"] = True

    def interrupt_its_commit(connection: sqlalchemy.Connection) -> None:
        if moment["epoch stored"] and not moment["interrupted"]:
            moment["interrupted"] = True
            signal.raise_signal(signal.SIGINT)  # as a Ctrl-C arriving at this very moment would

    event.listen(Engine, "before_cursor_execute", note_epoch_write)
    event.listen(Engine, "commit", interrupt_its_commit)
    try:
        with pytest.raises(KeyboardInterrupt):
            run_search(config)
    finally:
        event.remove(Engine, "before_cursor_execute", note_epoch_write)
        event.remove(Engine, "commit", interrupt_its_commit)
    (trial,) = optuna.load_study(study_name="cut-short", storage=config.storage_url).get_trials()
    assert trial.state == TrialState.FAIL
    assert trial.user_attrs["error"] == "interrupted (Ctrl-C)"
    assert [e["epoch"] for e in trial.user_attrs["epochs"]] == [1]  # the commit it interrupted went through
    run_search(config)  # the same command resumes: the connection was left usable
    trials = optuna.load_study(study_name="cut-short", storage=config.storage_url).get_trials()
    assert [t.state for t in trials] == [TrialState.FAIL, TrialState.COMPLETE]


def test_a_worker_killed_mid_trial_loses_no_finished_trial(tiny_dataset: Path, tmp_path: Path) -> None:
    db = tmp_path / "study.db"
    command = [
        sys.executable, "-m", "ge_nas", "search", "--dataset", str(tiny_dataset), "--space", "yolov8n_small",
        "--study", "killed", "--storage", f"sqlite:///{db}", "--epochs", "2", "--imgsz", "64", "--batch", "8",
        "--sampler", "grid", "--pruner", "none",  # grid: no architecture twice, so trial 2 trains
        *QUICK,
    ]  # fmt: skip
    assert subprocess.run([*command, "--trials", "2"], cwd=tmp_path, capture_output=True, timeout=300).returncode == 0
    process = subprocess.Popen(
        [*command, "--trials", "3"], cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    wait_for_rows(db, RUNNING_WITH_YAML, process)
    process.send_signal(signal.SIGKILL)
    process.communicate(timeout=60)

    study = optuna.load_study(study_name="killed", storage=f"sqlite:///{db}")
    before = [(t.number, t.values) for t in study.get_trials(states=(TrialState.COMPLETE,))]
    assert len(before) == 2 and [t.state for t in study.get_trials()][-1] == TrialState.RUNNING

    rerun = subprocess.run([*command, "--trials", "3"], cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert rerun.returncode == 0, rerun.stderr
    assert "marked failed: trial 2, as its worker process ended mid-trial (killed?)" in rerun.stdout
    trials = study.get_trials()
    assert trials[2].state == TrialState.FAIL and "worker process ended" in trials[2].user_attrs["error"]
    complete = [(t.number, t.values) for t in trials if t.state == TrialState.COMPLETE]
    assert complete[:2] == before and len(complete) == 3
    with sqlite3.connect(db) as connection:
        assert connection.execute("pragma integrity_check").fetchone() == ("ok",)


def test_sigterm_stops_every_worker_and_fails_their_running_trials(tiny_dataset: Path, tmp_path: Path) -> None:
    db = tmp_path / "study.db"
    command = [
        sys.executable, "-m", "ge_nas", "search", "--dataset", str(tiny_dataset), "--space", "yolov8n_small",
        "--study", "terminated", "--storage", f"sqlite:///{db}", "--trials", "6", "--epochs", "30", "--imgsz", "64",
        "--batch", "8", "--workers", "2", "--sampler", "grid", "--pruner", "none",
        *QUICK,
    ]  # fmt: skip
    process = subprocess.Popen(command, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    wait_for_rows(db, RUNNING_WITH_EPOCHS, process, at_least=2, seconds=180)
    workers = _worker_pids(db)
    process.send_signal(signal.SIGTERM)
    _, stderr = process.communicate(timeout=120)
    assert process.returncode == 130, stderr
    assert "run the same command to resume study 'terminated'" in stderr
    assert len(workers) == 2 and not any(_alive(pid) for pid in workers)
    trials = optuna.load_study(study_name="terminated", storage=f"sqlite:///{db}").get_trials()
    assert [t.user_attrs.get("error") for t in trials if t.state == TrialState.FAIL] == ["interrupted (Ctrl-C)"] * 2
    assert not [t for t in trials if t.state == TrialState.RUNNING]


def test_a_worker_process_that_dies_fails_the_search_after_the_others_finish_the_study(
    tiny_dataset: Path, tmp_path: Path
) -> None:
    db = tmp_path / "study.db"
    command = [
        sys.executable, "-m", "ge_nas", "search", "--dataset", str(tiny_dataset), "--space", "yolov8n_small",
        "--study", "lost", "--storage", f"sqlite:///{db}", "--trials", "3", "--epochs", "10", "--imgsz", "64",
        "--batch", "8", "--workers", "2", "--sampler", "grid", "--pruner", "none",
        *QUICK,
    ]  # fmt: skip
    process = subprocess.Popen(command, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    # Killed in the middle of a trial: its first epoch is stored and 9 short ones (seconds) remain.
    # Waiting for both workers' trials at once left a window of half a second, which CI missed.
    wait_for_rows(db, LAST_WORKER_RUNNING_WITH_EPOCHS, process)
    with sqlite3.connect(db) as connection:  # the worker process started last: the main one reaps it last
        (victim,) = connection.execute("select pid from ge_nas_workers order by started_at desc limit 1").fetchone()
    os.kill(victim, signal.SIGKILL)  # as the kernel's out-of-memory killer would
    _, stderr = process.communicate(timeout=300)
    assert process.returncode == 1
    assert f"worker process {victim} ended with signal SIGKILL (killed?)" in stderr
    assert "run the same command to resume" in stderr
    trials = optuna.load_study(study_name="lost", storage=f"sqlite:///{db}").get_trials()
    (lost,) = [t for t in trials if t.state == TrialState.FAIL]
    assert "worker process ended" in lost.user_attrs["error"]
    # Failed as soon as the others looked, not after the heartbeat's grace: a killed child
    # is no longer counted as running while it waits, as a zombie, to be reaped.
    assert lost.datetime_complete - lost.datetime_start < timedelta(seconds=GRACE_SECONDS)
    assert len([t for t in trials if t.state == TrialState.COMPLETE]) == 3  # the other worker finished the study


def test_two_searches_started_at_once_on_a_new_study_train_one_parent(tiny_dataset: Path, tmp_path: Path) -> None:
    (tmp_path / "space.yaml").write_text("base: yolov8n.yaml\npoints: [sppf]\nvariants: [theta]\nextents: [global]\n")
    command = [
        sys.executable, "-m", "ge_nas", "search", *QUICK, "--dataset", str(tiny_dataset), "--space", "space.yaml",
        "--study", "shared", "--trials", "2", "--epochs", "1", "--imgsz", "64", "--batch", "8", "--parent-epochs", "2",
    ]  # fmt: skip
    processes = [
        subprocess.Popen(command, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for _ in range(2)
    ]
    outputs = [process.communicate(timeout=300) for process in processes]
    assert [p.returncode for p in processes] == [0, 0], [err for _, err in outputs]
    printed = "".join(out for out, _ in outputs)
    assert printed.count("training the parent (the base model) for 2 epochs") == 1
    assert printed.count("another worker is training this study's parent; waiting for it") == 1
    study = optuna.load_study(study_name="shared", storage=f"sqlite:///{tmp_path / 'studies' / 'shared.db'}")
    assert study.user_attrs["parent"]["path"] == str((tmp_path / "studies" / "shared" / "parent.pt").resolve())
    assert len([t for t in study.get_trials() if t.state == TrialState.COMPLETE]) == 2


def _worker_pids(db: Path) -> list[int]:
    with sqlite3.connect(db) as connection:
        rows = connection.execute(
            "select distinct a.value_json from trials t join trial_user_attributes a on a.trial_id = t.trial_id "
            "where t.state = 'RUNNING' and a.key = 'worker'"
        ).fetchall()
    return [int(json.loads(value).split(":")[1]) for (value,) in rows]


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def test_a_ctrl_c_inside_a_database_call_is_raised_once_the_call_has_finished(tmp_path: Path) -> None:
    engine = sqlalchemy.create_engine(f"sqlite:///{tmp_path / 'x.db'}")
    with engine.begin() as connection:
        connection.exec_driver_sql("create table t (x integer)")
    event.listen(engine, "commit", lambda connection: signal.raise_signal(signal.SIGINT))
    finished = []
    with pytest.raises(KeyboardInterrupt), interrupts_recorded():
        with engine.begin() as connection:
            connection.exec_driver_sql("insert into t values (1)")
        finished.append(True)  # held back through the commit and past it...
    assert finished  # ...and raised when the block ends, the last safe point
    with engine.connect() as connection:
        assert connection.exec_driver_sql("select x from t").all() == [(1,)]


def test_a_ctrl_c_that_a_library_swallows_is_raised_again_at_the_next_check() -> None:
    with interrupts_recorded():
        try:
            os.kill(os.getpid(), signal.SIGINT)
            time.sleep(5)  # the KeyboardInterrupt lands here...
        except BaseException:  # ...and a careless `except:` in some import swallows it
            pass
        with pytest.raises(KeyboardInterrupt):
            raise_if_interrupted()  # before the next trial, or after the next epoch
    raise_if_interrupted()  # outside the block the record is cleared
