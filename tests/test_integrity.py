"""Integrity: no silent failures, no crossed studies, the same numbers twice.

Each test here failed on the version before (see the issue "Integrity"), and reads as what a
user does and what ge-nas now does instead.
"""

from __future__ import annotations

import dataclasses
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import optuna
import pytest
from optuna.trial import FrozenTrial, TrialState
from ultralytics import YOLO

from ge_nas.data.synthetic import make_synthetic_dataset
from ge_nas.errors import InputError
from ge_nas.search.config import FINE_TUNE, workers_for_devices
from ge_nas.space.search_space import load_space
from ge_nas.storage.records import TrialWriter
from ge_nas.storage.workers import GRACE_SECONDS, WORKERS, Worker
from ge_nas.yolo.training import epoch_metrics
from tests.conftest import QUICK, RUNNING_WITH_EPOCHS, SPACE, wait_for_rows

SEARCH = [sys.executable, "-m", "ge_nas", "search", "--trials", "1", "--epochs", "1", "--batch", "8", *QUICK]


def search_with_parent(cli: Callable[..., Any], folder: Path, study: str) -> list[FrozenTrial]:
    """The same command each time, into the study ``study``: 3 trials of 1 inherited epoch, grid order."""
    args = ["search", "--dataset", str(folder / "data" / "data.yaml"), "--space", "space.yaml", "--study", study]
    args += ["--weights", "parent.pt", "--trials", "3", "--epochs", "1", "--imgsz", "96", "--batch", "8"]
    result = cli(*args, "--sampler", "grid", *QUICK, cwd=folder)
    assert result.returncode == 0, result.stderr
    return optuna.load_study(study_name=study, storage=f"sqlite:///{folder / 'studies' / study}.db").get_trials()


def test_an_inherited_proxy_learns_and_its_ge_units_train_at_the_documented_rate(
    learned: Path, ge_nas_in_process: Callable[..., Any]
) -> None:
    trials = {t.user_attrs["key"]: t for t in search_with_parent(ge_nas_in_process, learned, "first")}
    baseline, theta_minus, theta_plus = (trials[k] for k in ("base", "9:theta-minus:0:after", "9:theta-plus:0:after"))
    assert baseline.user_attrs["epochs"][-1]["map50"] > 0.3  # a broken metric or a wrecked parent reads ~0
    assert "lr_new_units" not in theta_minus.user_attrs["epochs"][0]  # θ− has no parameters to speed up
    (epoch,) = theta_plus.user_attrs["epochs"]
    assert epoch["lr_new_units"] == pytest.approx(FINE_TUNE.new_unit_lr_factor * epoch["lr"])


def test_the_same_command_twice_gives_the_same_trials_metrics_and_front(
    learned: Path, ge_nas_in_process: Callable[..., Any]
) -> None:
    first = search_with_parent(ge_nas_in_process, learned, "again-1")
    second = search_with_parent(ge_nas_in_process, learned, "again-2")
    assert [t.user_attrs["key"] for t in first] == [t.user_attrs["key"] for t in second]
    assert [t.values for t in first] == [t.values for t in second]  # to the last digit
    assert [t.user_attrs["epochs"] for t in first] == [t.user_attrs["epochs"] for t in second]
    assert first[0].values[0] > 0  # at a size where mAP is not 0
    fronts = [
        ge_nas_in_process("show", "--study", name, "--front", "1", "--format", "json", cwd=learned).stdout
        for name in ("again-1", "again-2")
    ]
    assert [row["trial_number"] for row in json.loads(fronts[0])] == [
        row["trial_number"] for row in json.loads(fronts[1])
    ]


def test_a_checkpoint_trained_for_other_classes_passes_on_all_but_the_class_head(
    tiny_dataset: Path, tmp_path: Path, ge_nas_in_process: Callable[..., Any]
) -> None:
    YOLO("yolov8n.yaml").save(tmp_path / "coco-shaped.pt")  # yolov8n for COCO's 80 classes, as yolov8n.pt is
    (tmp_path / "space.yaml").write_text(SPACE)
    args = ["search", "--dataset", str(tiny_dataset), "--space", "space.yaml", "--weights", "coco-shaped.pt"]
    result = ge_nas_in_process(
        *args, "--trials", "1", "--epochs", "1", "--imgsz", "64", "--batch", "8", *QUICK, cwd=tmp_path
    )
    assert result.returncode == 0, result.stderr
    assert (
        "--weights coco-shaped.pt was trained for 80 classes, this dataset has 3: candidates inherit every layer "
        "but the 36 class-specific tensors of the head, as Ultralytics transfers pretrained weights" in result.stdout
    )


def test_a_missing_metric_is_an_error_naming_the_metrics_there_not_a_zero() -> None:
    with pytest.raises(RuntimeError, match=r"reported no metrics/mAP50-95\(B\) \(it reported: metrics/mAP50\(B\)\)"):
        epoch_metrics({"metrics/mAP50(B)": 0.5})
    with pytest.raises(RuntimeError, match="reported map50 = nan, not a number"):
        epoch_metrics({"metrics/mAP50(B)": float("nan"), "metrics/mAP50-95(B)": 0.1})
    assert epoch_metrics({"metrics/mAP50(B)": 0.5, "metrics/mAP50-95(B)": 0.25}) == {"map50": 0.5, "map50-95": 0.25}


# --- studies that must not cross ---


def tiny_search(cli: Callable[..., Any], folder: Path, dataset: Path, *extra: str) -> Any:
    (folder / "space.yaml").write_text(SPACE)
    args = ["search", "--dataset", str(dataset), "--space", "space.yaml", "--epochs", "1", "--imgsz", "64"]
    return cli(*args, "--batch", "8", "--sampler", "grid", *QUICK, *extra, cwd=folder)


def test_another_dataset_named_data_yaml_gets_its_own_study_and_is_refused_under_the_same_name(
    tiny_dataset: Path, tmp_path: Path, ge_nas_in_process: Callable[..., Any]
) -> None:
    other = make_synthetic_dataset(tmp_path / "other", n_train=8, n_val=4, imgsz=64, seed=5)
    first = tiny_search(ge_nas_in_process, tmp_path, tiny_dataset, "--trials", "1")
    assert first.returncode == 0, first.stderr
    assert (tmp_path / "studies" / "space-tiny.db").is_file()  # named after the dataset's folder, not "data"
    second = tiny_search(ge_nas_in_process, tmp_path, other, "--trials", "1")
    assert second.returncode == 0, second.stderr
    assert (tmp_path / "studies" / "space-other.db").is_file()
    db = tmp_path / "studies" / "space-tiny.db"
    before = db.read_bytes()
    crossed = tiny_search(ge_nas_in_process, tmp_path, other, "--trials", "2", "--study", "space-tiny")
    assert crossed.returncode == 2
    assert "study 'space-tiny' was created with dataset.yaml = " in crossed.stderr
    assert db.read_bytes() == before


def test_a_budget_dropped_on_resume_is_refused(
    tiny_dataset: Path, tmp_path: Path, ge_nas_in_process: Callable[..., Any]
) -> None:
    budgets = ["--max-gflops", "10", "--max-params", "4000000"]
    assert tiny_search(ge_nas_in_process, tmp_path, tiny_dataset, "--trials", "1", *budgets).returncode == 0
    dropped = tiny_search(ge_nas_in_process, tmp_path, tiny_dataset, "--trials", "2", *budgets[:2])
    assert dropped.returncode == 2
    assert "was created with constraints.params = 4000000.0, not unset (the default)" in dropped.stderr


def test_a_baseline_interrupted_mid_trial_is_queued_again(tiny_dataset: Path, tmp_path: Path) -> None:
    (tmp_path / "space.yaml").write_text(SPACE)
    db = tmp_path / "study.db"
    command = [
        sys.executable, "-m", "ge_nas", "search", "--dataset", str(tiny_dataset), "--space", "space.yaml",
        "--study", "s", "--storage", f"sqlite:///{db}", "--epochs", "3", "--imgsz", "64", "--batch", "8",
        "--sampler", "random", "--pruner", "none", *QUICK,
    ]  # fmt: skip
    process = subprocess.Popen(
        [*command, "--trials", "1"], cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    wait_for_rows(db, RUNNING_WITH_EPOCHS, process)
    process.send_signal(signal.SIGINT)
    _, stderr = process.communicate(timeout=120)
    assert process.returncode == 130, stderr
    rerun = subprocess.run([*command, "--trials", "1"], cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert rerun.returncode == 0, rerun.stderr
    interrupted, baseline = optuna.load_study(study_name="s", storage=f"sqlite:///{db}").get_trials()
    assert interrupted.user_attrs["key"] == "base" and interrupted.state == TrialState.FAIL
    assert baseline.user_attrs["key"] == "base" and baseline.state == TrialState.COMPLETE


# --- twins and workers ---


def test_an_architecture_that_was_pruned_is_reused_when_sampled_again(tiny_dataset: Path, tmp_path: Path) -> None:
    from ge_nas.search.config import Objectives, ProxySettings, SearchConfig
    from ge_nas.search.pareto_pruner import ParetoPruner
    from ge_nas.search.runner import run_search

    (tmp_path / "space.yaml").write_text("base: yolov8n.yaml\npoints: [sppf]\nvariants: [theta]\nextents: [global]\n")
    config = SearchConfig(
        space=load_space(tmp_path / "space.yaml"),
        data_yaml=tiny_dataset,
        objectives=Objectives("map50-95", ("params",)),
        proxy=ProxySettings(epochs=2, imgsz=64, batch=8),
        trials=2,
        study_name="twins",
        storage_url=f"sqlite:///{tmp_path / 'study.db'}",
        workdir=tmp_path / "work",
        sampler="grid",
        pruner=ParetoPruner(n_startup_trials=1, n_warmup_epochs=0),  # θ costs more and is no more accurate
    )
    baseline, pruned = run_search(config).get_trials()
    assert baseline.state == TrialState.COMPLETE and pruned.state == TrialState.PRUNED
    again = run_search(dataclasses.replace(config, trials=6, sampler="random")).get_trials()[2:]
    repeats = [t for t in again if t.user_attrs["key"] == pruned.user_attrs["key"]]
    assert repeats, "the random sampler draws θ again within 4 trials of a 2-architecture space"
    assert all(t.state == TrialState.PRUNED and t.user_attrs["reused_from"] == pruned.number for t in repeats)
    assert all(t.user_attrs["epochs"] == pruned.user_attrs["epochs"] for t in repeats)
    assert sorted(p.name for p in (tmp_path / "work").iterdir()) == ["trial-00000", "trial-00001"]


@pytest.fixture(params=["sqlite", "postgresql"])
def storage_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'claims.db'}"
    return request.getfixturevalue("postgres_url")


def test_one_architecture_is_claimed_by_one_trial_and_taken_over_only_when_that_trial_failed(
    storage_url: str,
) -> None:
    study = optuna.create_study(study_name=f"claims-{os.getpid()}-{time.monotonic_ns()}", storage=storage_url)
    first, second = study.ask(), study.ask()
    with Worker(storage_url, study.study_name) as a, Worker(storage_url, study.study_name) as b:
        assert a.id != b.id  # the same host and process: still two ids
        assert a.claim("9:theta:0:after", first.number).trial_number == first.number
        holder = b.claim("9:theta:0:after", second.number)
        assert holder.trial_number == first.number and holder.worker_id == a.id
        assert not b.claim_is_stale(holder, _record(study, first.number))  # still running: b waits
        study.tell(first, state=TrialState.FAIL)
        assert b.claim_is_stale(holder, _record(study, first.number))
        assert b.take_over("9:theta:0:after", holder, second.number)
        assert not a.take_over("9:theta:0:after", holder, first.number)  # only once
        assert a.claim("9:theta:0:after", 99).trial_number == second.number


def _record(study: optuna.Study, number: int) -> Any:
    from ge_nas.storage.records import read_record

    return read_record(study.get_trials(deepcopy=False)[number])


def test_a_trial_of_a_live_worker_in_another_container_with_the_same_hostname_is_not_failed(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'study.db'}"
    study = optuna.create_study(study_name="s", storage=url)
    trial = study.ask()
    with Worker(url, "s") as here:
        # Another container: same host name, a pid that means nothing here, a fresh heartbeat.
        now = datetime.utcnow()
        other = {"worker_id": f"{os.uname().nodename}:1:abc", "host": os.uname().nodename, "pid": 999999}
        with here._engine.begin() as connection:
            connection.execute(WORKERS.insert().values(**other, machine="other-container", started_at=now, seen_at=now))
        TrialWriter(trial).started(other["worker_id"])
        assert here.stale_trials(study) == []
        with here._engine.begin() as connection:
            old = now - timedelta(seconds=GRACE_SECONDS + 1)
            connection.execute(WORKERS.update().values(seen_at=old).where(WORKERS.c.worker_id == other["worker_id"]))
        (stale,) = here.stale_trials(study)
        assert stale.number == trial.number


def test_a_running_trial_no_worker_owns_is_failed_after_the_grace_period(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'study.db'}"
    study = optuna.create_study(study_name="s", storage=url)
    fresh = study.ask()  # plain Optuna: no ge-nas worker
    long_ago = datetime.now() - 2 * timedelta(seconds=GRACE_SECONDS)
    old = FrozenTrial(
        number=0, state=TrialState.RUNNING, value=None, datetime_start=long_ago, datetime_complete=None, params={},
        distributions={}, user_attrs={}, system_attrs={}, intermediate_values={}, trial_id=0,
    )  # fmt: skip
    study.add_trial(old)
    with Worker(url, "s") as worker:
        assert worker.unowned_running(study) == [fresh.number, 1]
        (stale,) = worker.fail_stale_trials(study)
    assert stale.number == 1 and "no ge-nas worker ran it" in stale.reason
    states = [t.state for t in study.get_trials()]
    assert states == [TrialState.RUNNING, TrialState.FAIL]


def test_several_devices_mean_one_worker_each_and_never_one_worker_on_several() -> None:
    assert workers_for_devices(["0", "1"], None) == 2
    assert workers_for_devices(["cpu"], None) == 1
    assert workers_for_devices(["0", "1"], 4) == 4
    with pytest.raises(InputError, match="--device 0,1 with --workers 1: one worker trains on one device"):
        workers_for_devices(["0", "1"], 1)


# --- where things land, and what is printed ---


def test_a_search_writes_only_under_its_study_folder_and_prints_no_ultralytics_banner(
    tiny_dataset: Path, tmp_path: Path
) -> None:
    home = tmp_path / "home"
    home.mkdir()
    (tmp_path / "space.yaml").write_text(SPACE)
    environment = {k: v for k, v in os.environ.items() if not k.startswith(("YOLO_", "XDG_"))}
    result = subprocess.run(
        [*SEARCH, "--dataset", str(tiny_dataset), "--space", "space.yaml", "--imgsz", "64"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
        env={**environment, "HOME": str(home)},
    )
    assert result.returncode == 0, result.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["home", "space.yaml", "studies"]
    assert (tmp_path / "studies" / "space-tiny" / "trial-00000" / "proxy").is_dir()
    assert not (home / ".config" / "Ultralytics").exists()
    assert (home / ".cache" / "ge-nas" / "ultralytics" / "Ultralytics" / "settings.json").is_file()
    assert "Ultralytics" not in result.stdout + result.stderr


def test_a_stored_error_carries_no_terminal_colour_codes(tmp_path: Path) -> None:
    study = optuna.create_study(storage=f"sqlite:///{tmp_path / 'study.db'}")
    trial = study.ask()
    TrialWriter(trial).failed("\x1b[31m\x1b[1mrequirements:\x1b[0m pi-heif not found")
    assert study.get_trials()[0].user_attrs["error"] == "requirements: pi-heif not found"


def test_an_extent_written_as_a_float_is_stored_as_its_number(tmp_path: Path) -> None:
    (tmp_path / "space.yaml").write_text("base: yolov8n.yaml\npoints: [sppf]\nvariants: [theta]\nextents: [2.0]\n")
    (choice,) = load_space(tmp_path / "space.yaml").points[0].choices
    assert choice.extent == 2 and isinstance(choice.extent, int) and choice.label == "theta/2/after"
