"""Ranked results as plain SQL tables, kept next to Optuna's in the study's own database.

Optuna stores what each trial was and scored; answering "what is on the Pareto front?"
from its tables means decoding JSON user attributes and ranking by hand. So after every
trial the search calls :func:`refresh_tables`, which ranks the study (:mod:`ge_nas.ranking`)
and rewrites two tables of ours in the same database, readable by any SQL client:

* ``ge_nas_architectures``: one row per distinct evaluated architecture, with its
  front, crowding distance, knee and baseline flags, costs, accuracy and model YAML;
* ``ge_nas_studies``: one row per study: hypervolume of front 1, knee trial, best
  accuracy, baseline accuracy, trial counts, and when the rows were refreshed.

Optuna's own tables are only read, so ``optuna-dashboard`` and ``optuna.load_study`` open
the file as before. ``docs/schema.md`` documents every column, with example queries.

Example:
    >>> refresh_tables("sqlite:///studies/demo.db", "demo")  # doctest: +SKIP
    $ sqlite3 studies/demo.db "select trial_number, code, accuracy, gflops from ge_nas_architectures
                               where study_name = 'demo' and front = 1 order by gflops"
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime, timezone
from typing import Any

import numpy as np
import optuna
from optuna.trial import FrozenTrial, TrialState
from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    DateTime,
    Double,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    delete,
    insert,
)
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError

from ge_nas.candidate import BASELINE_KEY
from ge_nas.errors import InputError
from ge_nas.ranking import (
    crowding_distance,
    hypervolume,
    knee_point,
    nondominated_fronts,
    reference_point,
    to_minimization,
)
from ge_nas.study import counted_trials, load_existing_study, make_engine, open_existing_storage

# Our tables live in their own MetaData, so creating them never touches Optuna's schema.
METADATA = MetaData()

ARCHITECTURES = Table(
    "ge_nas_architectures",
    METADATA,
    Column("study_name", String(512), primary_key=True),
    Column("trial_number", Integer, primary_key=True),  # the trial that evaluated it first
    Column("key", Text, nullable=False),
    Column("code", Text, nullable=False),
    Column("units", Integer, nullable=False),
    Column("state", String(16), nullable=False),  # complete | infeasible | pruned
    Column("accuracy_name", String(16), nullable=False),
    Column("accuracy", Double),
    Column("map50_95", Double),
    Column("map50", Double),
    Column("epochs_trained", Integer, nullable=False),
    Column("params", BigInteger),
    Column("gflops", Double),
    Column("latency_ms", Double),
    Column("latency_ratio", Double),
    Column("gain_over_baseline", Double),
    Column("front", Integer),
    Column("crowding", Double),
    Column("is_knee", Boolean, nullable=False),
    Column("is_baseline", Boolean, nullable=False),
    Column("yaml", Text),
    Index("ix_ge_nas_architectures_front", "study_name", "front"),
)

STUDIES = Table(
    "ge_nas_studies",
    METADATA,
    Column("study_name", String(512), primary_key=True),
    Column("objectives", Text, nullable=False),  # JSON list, accuracy first: ["map50-95", "gflops"]
    Column("directions", Text, nullable=False),  # JSON list: ["maximize", "minimize"]
    Column("accuracy_name", String(16), nullable=False),
    Column("n_trials", Integer, nullable=False),
    Column("n_architectures", Integer, nullable=False),
    Column("front_size", Integer, nullable=False),
    Column("hypervolume", Double),
    Column("reference_point", Text),  # JSON list, in the objectives' own units and directions
    Column("knee_trial", Integer),
    Column("best_trial", Integer),
    Column("best_accuracy", Double),
    Column("baseline_trial", Integer),
    Column("baseline_accuracy", Double),
    Column("proxy_epochs", Integer),
    Column("proxy_imgsz", Integer),
    Column("updated_at", DateTime(timezone=True), nullable=False),
)

# Two workers refreshing one study at once on a server database can collide on insert.
_WRITE_ATTEMPTS = 3


def refresh_tables(storage_url: str, study_name: str) -> None:
    """Rank the study's architectures and replace its rows in both tables, in one transaction.

    Idempotent: the rows depend on the stored trials only (``updated_at`` aside), so calling
    it twice, or on an old study, just brings the tables up to date. A search refreshes
    after every trial through a :class:`TableWriter` instead, which does not re-read the study.

    Raises:
        InputError: no such database or study (the message lists the studies there).
    """
    storage = open_existing_storage(storage_url)
    try:
        TableWriter(storage.engine).refresh(load_existing_study(storage, study_name))
    finally:
        storage.engine.dispose()


class TableWriter:
    """Keeps a study's ``ge_nas_*`` rows up to date, refresh after refresh, on one engine.

    A study loaded from a URL reads through Optuna's cached storage, which after the first
    read fetches only new and unfinished trials; so refreshing the search's own open study
    costs the ranking (O(n log n)) and the table writes, not a re-read of every trial.
    """

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        METADATA.create_all(engine)

    def refresh(self, study: optuna.Study) -> None:
        """Rank ``study`` and replace its rows in both tables, in one transaction."""
        for attempt in range(_WRITE_ATTEMPTS):
            rows = architecture_rows(study)
            summary = study_summary(study, rows)
            try:
                with self.engine.begin() as connection:
                    connection.execute(delete(ARCHITECTURES).where(ARCHITECTURES.c.study_name == study.study_name))
                    if rows:
                        connection.execute(insert(ARCHITECTURES), rows)
                    connection.execute(delete(STUDIES).where(STUDIES.c.study_name == study.study_name))
                    connection.execute(insert(STUDIES), [summary])
                return
            except IntegrityError:
                # Another worker inserted between our delete and insert; rank its newer trials too.
                if attempt == _WRITE_ATTEMPTS - 1:
                    raise


@contextmanager
def table_writer(storage_url: str) -> Iterator[TableWriter]:
    """A :class:`TableWriter` on its own engine, disposed of afterwards."""
    engine = make_engine(storage_url)
    try:
        yield TableWriter(engine)
    finally:
        engine.dispose()


def objective_names(study: optuna.Study) -> list[str]:
    """The study's objectives, accuracy first, as ``ge-nas search --objectives`` named them."""
    names = study.metric_names or study.user_attrs.get("settings", {}).get("objectives")
    if not names or len(names) != len(study.directions):
        raise InputError(f"study {study.study_name!r} was not made by ge-nas search: its objectives have no names")
    return list(names)


def architecture_rows(study: optuna.Study) -> list[dict[str, Any]]:
    """One row per distinct evaluated architecture, ranked; the contents of ``ge_nas_architectures``.

    A trial that reused an earlier result adds no row. When an architecture was evaluated
    more than once (a pruned one may be sampled and trained again), its first completed
    evaluation is the row. Fronts, crowding and the knee rank the trained, feasible rows
    on the study's objective values; infeasible and pruned rows stay unranked (front NULL).
    """
    names = objective_names(study)
    directions = [d.name.lower() for d in study.directions]
    accuracy_name = names[0]
    chosen = _first_evaluations(study.get_trials(deepcopy=False))
    baseline = next((t for t in chosen if t.user_attrs["key"] == BASELINE_KEY and _state(t) == "complete"), None)
    baseline_accuracy = _accuracy(baseline, accuracy_name) if baseline is not None else None
    rows = [_row(study.study_name, t, accuracy_name, baseline_accuracy) for t in chosen]
    ranked = [i for i, row in enumerate(rows) if row["state"] == "complete"]
    if ranked:
        points = to_minimization(np.array([chosen[i].values for i in ranked]), directions)
        fronts = nondominated_fronts(points)
        crowding = crowding_distance(points, fronts)
        knee = ranked[knee_point(points)]
        for i, front, distance in zip(ranked, fronts.tolist(), crowding.tolist(), strict=True):
            rows[i]["front"] = front
            rows[i]["crowding"] = distance
        rows[knee]["is_knee"] = True
    return rows


def study_summary(study: optuna.Study, rows: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """The study's row of ``ge_nas_studies``, from its ranked ``rows`` (see :func:`architecture_rows`).

    The hypervolume of front 1 uses :func:`ranking.reference_point` anchored at the
    baseline, so it stays NULL until the baseline has trained within budget.
    """
    names = objective_names(study)
    directions = [d.name.lower() for d in study.directions]
    trials = {t.number: t for t in study.get_trials(deepcopy=False)}
    ranked = [row for row in rows if row["front"] is not None]
    # The baseline counts only once trained within budget: gains and the reference need its accuracy.
    baseline = next((row for row in ranked if row["is_baseline"]), None)
    best = most_accurate(rows)
    knee = next((row for row in rows if row["is_knee"]), None)
    volume = reference = None
    if baseline is not None:
        signs = np.array([-1.0 if d == "maximize" else 1.0 for d in directions])
        points = to_minimization(np.array([trials[row["trial_number"]].values for row in ranked]), directions)
        anchor = to_minimization(np.array([trials[baseline["trial_number"]].values]), directions)[0]
        bound = reference_point(anchor, points)
        volume = hypervolume(points, bound)
        reference = json.dumps((bound * signs).tolist())
    proxy = study.user_attrs.get("settings", {}).get("proxy", {})
    return {
        "study_name": study.study_name,
        "objectives": json.dumps(names),
        "directions": json.dumps(directions),
        "accuracy_name": names[0],
        "n_trials": counted_trials(list(trials.values())),
        "n_architectures": len(rows),
        "front_size": sum(row["front"] == 1 for row in ranked),
        "hypervolume": volume,
        "reference_point": reference,
        "knee_trial": knee["trial_number"] if knee else None,
        "best_trial": best["trial_number"] if best else None,
        "best_accuracy": best["accuracy"] if best else None,
        "baseline_trial": baseline["trial_number"] if baseline else None,
        "baseline_accuracy": baseline["accuracy"] if baseline else None,
        "proxy_epochs": proxy.get("epochs"),
        "proxy_imgsz": proxy.get("imgsz"),
        "updated_at": datetime.now(timezone.utc),
    }


def most_accurate(rows: Sequence[dict[str, Any]]) -> dict[str, Any] | None:
    """The most accurate ranked row (ties: lower front, then earlier trial); None before any trained."""
    ranked = [row for row in rows if row["front"] is not None]
    return min(ranked, key=lambda row: (-row["accuracy"], row["front"], row["trial_number"]), default=None)


def _state(trial: FrozenTrial) -> str | None:
    """``complete``, ``infeasible`` or ``pruned`` for a trial that evaluated an architecture, else None."""
    if "reused_from" in trial.user_attrs or "key" not in trial.user_attrs:
        return None
    if trial.state == TrialState.COMPLETE:
        return "infeasible" if "infeasible" in trial.user_attrs else "complete"
    if trial.state == TrialState.PRUNED and "pruned_epoch" in trial.user_attrs:
        return "pruned"
    return None  # failed or still running: no result yet


def _first_evaluations(trials: Sequence[FrozenTrial]) -> list[FrozenTrial]:
    """Per architecture key, its first completed evaluation, else its first pruned one; by trial number."""
    chosen: dict[str, FrozenTrial] = {}
    for trial in sorted(trials, key=lambda t: t.number):
        state = _state(trial)
        if state is None:
            continue
        key = trial.user_attrs["key"]
        if key not in chosen or (chosen[key].state == TrialState.PRUNED and state != "pruned"):
            chosen[key] = trial
    return sorted(chosen.values(), key=lambda t: t.number)


def _accuracy(trial: FrozenTrial, name: str) -> float | None:
    """Final proxy accuracy; for a pruned trial, its last epoch's; None if it never trained."""
    epochs = trial.user_attrs.get("epochs") or []
    return float(epochs[-1][name]) if epochs else None


def _row(study_name: str, trial: FrozenTrial, accuracy_name: str, baseline_accuracy: float | None) -> dict[str, Any]:
    attrs = trial.user_attrs
    epochs = attrs.get("epochs") or []
    last = epochs[-1] if epochs else {}
    accuracy = _accuracy(trial, accuracy_name)
    return {
        "study_name": study_name,
        "trial_number": trial.number,
        "key": attrs["key"],
        "code": attrs.get("code", attrs["key"]),
        "units": attrs.get("units", 0),
        "state": _state(trial),
        "accuracy_name": accuracy_name,
        "accuracy": accuracy,
        "map50_95": last.get("map50-95"),
        "map50": last.get("map50"),
        "epochs_trained": len(epochs),
        "params": attrs.get("params"),
        "gflops": attrs.get("gflops"),
        "latency_ms": attrs.get("latency_ms"),
        "latency_ratio": attrs.get("latency_ratio"),
        "gain_over_baseline": (
            accuracy - baseline_accuracy if accuracy is not None and baseline_accuracy is not None else None
        ),
        "front": None,
        "crowding": None,
        "is_knee": False,
        "is_baseline": attrs["key"] == BASELINE_KEY,
        "yaml": attrs.get("yaml"),
    }
