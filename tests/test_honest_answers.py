"""Honest answers: every accuracy and gain with its interval, the baseline's seeds, confirmation, a verdict."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import Any

import optuna
import pytest
from optuna.trial import TrialState, create_trial
from scipy import stats

from ge_nas.ranking.fronts import rank
from ge_nas.ranking.intervals import mean_interval, paired_gain
from ge_nas.search.config import SearchConfig, training_seed
from ge_nas.search.confirmation import SeedRun, confirmation_runs
from ge_nas.space.search_space import load_space
from ge_nas.storage.records import Stage, read_record
from tests.conftest import CONFIRMED_STUDY, CommandResult

OBJECTIVES = ("map50-95", "gflops")
DIRECTIONS = ("maximize", "minimize")


def seeded(key: str, accuracies: list[float], gflops: float, first_number: int) -> list[Any]:
    """The records of one architecture trained with seeds 0, 1, ...: seed 0 explores, the others confirm."""
    records = []
    for seed, accuracy in enumerate(accuracies):
        stage = Stage.EXPLORE if seed == 0 else Stage.NOISE if key == "base" else Stage.CONFIRM
        attrs = {
            "key": key,
            "code": key,
            "gflops": gflops,
            "params": 1,
            "latency_ms": 1.0,
            "latency_ratio": 1.0,
            "epochs": [{"epoch": 1, "map50-95": accuracy, "map50": accuracy}],
            "stage": stage.value,
            "seed_index": seed,
        }
        trial = create_trial(values=[accuracy, gflops], user_attrs=attrs)
        trial.number = first_number + seed
        records.append(read_record(trial))
    return records


def test_intervals_are_students_t_and_one_seed_has_none() -> None:
    values = [0.640, 0.634, 0.652, 0.673, 0.633]  # the demo's baseline over --seed 0..4 (REFERENCE.md)
    estimate = mean_interval(values)
    low, high = stats.t.interval(0.95, 4, loc=estimate.mean, scale=stats.sem(values))
    assert (estimate.low, estimate.high) == pytest.approx((low, high))
    assert estimate.n == 5 and mean_interval([0.6]).low is None
    gain = paired_gain({0: 0.65, 1: 0.66, 2: 0.70}, {0: 0.64, 1: 0.64, 3: 0.60})
    assert gain.n == 2 and gain.mean == pytest.approx(0.015)  # seeds 0 and 1 only: paired


def test_a_gain_beyond_the_seed_noise_is_named_in_the_verdict() -> None:
    records = [
        *seeded("base", [0.640, 0.634, 0.652], 0.354, 0),
        *seeded("9:theta-plus:0:after", [0.670, 0.661, 0.683], 0.355, 3),  # +0.03 on every seed
        *seeded("15:theta:4:after", [0.660, 0.620, 0.650], 0.355, 6),  # +0.02, -0.014, -0.002: noise
    ]
    ranking = rank(records, OBJECTIVES, DIRECTIONS)
    winner = next(a for a in ranking.architectures if a.record.key == "9:theta-plus:0:after")
    assert winner.significant and winner.gain_estimate.n == 3
    assert not next(a for a in ranking.architectures if a.record.key == "15:theta:4:after").significant
    differences = [0.670 - 0.640, 0.661 - 0.634, 0.683 - 0.652]
    low, high = stats.t.interval(0.95, 2, loc=sum(differences) / 3, scale=stats.sem(differences))
    assert ranking.verdict() == (
        f"trial 3 (9:theta-plus:0:after) beats the baseline by +0.029 map50-95 (95 % CI {low:+.3f} to {high:+.3f}, "
        "3 paired seeds) at +0.3% GFLOPs"
    )


def test_without_a_clear_gain_the_verdict_says_ge_does_not_pay() -> None:
    base, candidate = [0.640, 0.634, 0.652], [0.660, 0.620]
    records = [*seeded("base", base, 0.354, 0), *seeded("9:theta:0:after", candidate, 0.355, 3)]
    noise = stats.t.ppf(0.975, 2) * stats.sem(base)
    differences = [c - b for c, b in zip(candidate, base, strict=False)]
    low, high = stats.t.interval(0.95, 1, loc=sum(differences) / 2, scale=stats.sem(differences))
    assert rank(records, OBJECTIVES, DIRECTIONS).verdict() == (
        f"no architecture beats the baseline beyond the seed noise (±{noise:.3f} over 3 baseline seeds): on this "
        f"data and proxy, GE does not pay; the closest, trial 3 (9:theta:0:after), gains +0.003 (95 % CI "
        f"{low:+.3f} to {high:+.3f}, 2 paired seeds)"
    )


def test_confirmation_adds_seeds_to_undecided_candidates_and_stops_for_decided_ones(tmp_path: Path) -> None:
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
        baseline_seeds=3,
        confirm=2,
        max_seeds=4,
    )
    records = [
        *seeded("base", [0.640, 0.634, 0.652], 0.354, 0),
        *seeded("9:theta-plus:0:after", [0.670, 0.661, 0.683], 0.355, 3),  # decided: clearly better
        *seeded("9:theta:0:after", [0.645], 0.3545, 6),  # one seed: undecided
    ]
    runs = confirmation_runs(rank(records, OBJECTIVES, DIRECTIONS), config)
    assert runs == [SeedRun("9:theta:0:after", 1, Stage.CONFIRM)]  # the baseline already has seed 1
    records += seeded("9:theta:0:after", [0.645, 0.650, 0.641], 0.3545, 6)[1:]
    runs = confirmation_runs(rank(records, OBJECTIVES, DIRECTIONS), config)
    assert runs == [SeedRun("9:theta:0:after", 3, Stage.CONFIRM), SeedRun("base", 3, Stage.NOISE)]  # paired


def test_seed_0_trains_with_the_search_seed_and_others_with_seeds_drawn_from_it() -> None:
    assert training_seed(7, 0) == 7
    assert len({training_seed(7, s) for s in range(5)}) == 5
    assert {training_seed(0, s) for s in range(1, 5)}.isdisjoint({training_seed(1, s) for s in range(1, 5)})


def test_a_search_measures_the_noise_confirms_its_best_candidate_and_ends_with_a_verdict(
    confirmed_search: tuple[Path, CommandResult], ge_nas_in_process: Callable[..., Any]
) -> None:
    db, result = confirmed_search  # ge-nas search ... --baseline-seeds 3 --confirm 1 --max-seeds 3 (tests/conftest.py)
    assert (
        "plan: the baseline with 3 seeds (the noise floor), then 3 exploring trials of up to 1 epochs (the baseline's "
        "first seed among them), then confirmation: the front's 1 most promising candidates at a time get more seeds, "
        "up to 3 each" in result.stdout
    )
    (verdict,) = [line for line in result.stdout.splitlines() if line.startswith("verdict: ")]
    study = optuna.load_study(study_name=CONFIRMED_STUDY, storage=f"sqlite:///{db}")
    trials = [t for t in study.get_trials() if t.state == TrialState.COMPLETE]
    by_key: dict[str, list[int]] = {}
    for trial in trials:
        by_key.setdefault(trial.user_attrs["key"], []).append(trial.user_attrs.get("seed_index", 0))
    assert sorted(by_key["base"]) == [0, 1, 2]
    printed = ge_nas_in_process("show", "--study", CONFIRMED_STUDY, "--format", "json", cwd=db.parents[1])
    shown = json.loads(printed.stdout)
    base = next(row for row in shown if row["is_baseline"])
    assert base["seeds"] == 3 and base["accuracy_ci_low"] < base["accuracy_mean"] < base["accuracy_ci_high"]
    best = max((row for row in shown if not row["is_baseline"] and row["front"] == 1), key=lambda r: r["gain"])
    assert best["seeds"] >= 2  # confirmed: at least one more seed than it explored with
    assert best["gain_ci_low"] is not None and best["significant"] == (
        best["gain_ci_low"] > 0 or best["gain_ci_high"] < 0
    )
    assert verdict == f"verdict: {_study_verdict(db)}"


def _study_verdict(db: Path) -> str:
    with sqlite3.connect(db) as connection:
        query = "select verdict from ge_nas_studies where study_name = ?"
        return connection.execute(query, (CONFIRMED_STUDY,)).fetchone()[0]
