"""Ranked results as plain SQL tables, kept next to Optuna's in the study's own database.

Optuna stores what each trial was and scored; answering "what is on the Pareto front?"
from its tables means decoding JSON user attributes and ranking by hand. So after every
trial the search refreshes two tables of ours in the same database, ranked by
:func:`~ge_nas.ranking.fronts.rank_study`, readable by any SQL client:

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
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timezone
from typing import Any

import optuna
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
    inspect,
)
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError, SQLAlchemyError

from ge_nas.ranking.fronts import RankedArchitecture, Ranking, rank_study
from ge_nas.storage.database import create_tables, make_engine, open_existing_storage
from ge_nas.storage.studies import load_existing_study, proxy_settings

__all__ = [
    "ARCHITECTURES",
    "STUDIES",
    "TableWriter",
    "architecture_rows",
    "refresh_tables",
    "study_summary",
    "table_writer",
]

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
    Column("strategy", String(16), nullable=False),  # proxy | supernet: what measured `accuracy`
    Column("supernet_score", Double),  # the supernet's score (= accuracy in a supernet search); NULL for proxies
    Column("map50_95", Double),
    Column("map50", Double),
    Column("epochs_trained", Integer, nullable=False),
    Column("params", BigInteger),
    Column("gflops", Double),
    Column("latency_ms", Double),
    Column("latency_ratio", Double),
    Column("latency_ratio_low", Double),
    Column("latency_ratio_high", Double),
    Column("memory_mb", Double),
    Column("gain_over_baseline", Double),  # = gain (kept for queries written before seeds)
    Column("accuracy_mean", Double),  # mean final accuracy over its seeds (= accuracy)
    Column("accuracy_ci_low", Double),  # 95 % interval of that mean; NULL with one seed
    Column("accuracy_ci_high", Double),
    Column("seeds", Integer, nullable=False),  # seeds trained to the end
    Column("gain", Double),  # accuracy over the baseline's, paired by seed
    Column("gain_ci_low", Double),  # 95 % interval of the paired gain; NULL with one paired seed
    Column("gain_ci_high", Double),
    Column("significant", Boolean, nullable=False),  # the gain's interval excludes 0
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
    Column("baseline_seeds", Integer, nullable=False),  # seeds of the baseline: the noise floor's sample
    Column("noise", Double),  # half-width of the baseline accuracy's 95 % interval; NULL with one seed
    Column("verdict", Text, nullable=False),  # the search's answer in one sentence
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
        _drop_outdated_tables(engine)
        create_tables(METADATA, engine)

    def refresh(self, study: optuna.Study) -> None:
        """Rank ``study`` and replace its rows in both tables, in one transaction."""
        for attempt in range(_WRITE_ATTEMPTS):
            ranking = rank_study(study)
            rows = architecture_rows(study.study_name, ranking)
            summary = study_summary(study, ranking)
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


def architecture_rows(study_name: str, ranking: Ranking) -> list[dict[str, Any]]:
    """One row per evaluated architecture, ranked: the contents of ``ge_nas_architectures``."""
    return [_row(study_name, ranking.accuracy_name, a) for a in ranking.architectures]


def study_summary(study: optuna.Study, ranking: Ranking) -> dict[str, Any]:
    """The study's row of ``ge_nas_studies``.

    The hypervolume of front 1 uses :func:`~ge_nas.ranking.pareto.reference_point` anchored
    at the baseline, so it stays NULL until the baseline has trained within budget.
    """
    bound = ranking.reference()
    best = ranking.most_accurate()
    knee = ranking.knee
    baseline = ranking.baseline
    proxy = proxy_settings(study)
    return {
        "study_name": study.study_name,
        "objectives": json.dumps(list(ranking.objectives)),
        "directions": json.dumps(list(ranking.directions)),
        "accuracy_name": ranking.accuracy_name,
        "n_trials": ranking.trials_counted,
        "n_architectures": len(ranking.architectures),
        "front_size": len(ranking.front(1)),
        "hypervolume": ranking.hypervolume,
        "reference_point": None if bound is None else json.dumps(ranking.in_objective_units(bound)),
        "knee_trial": knee.record.number if knee else None,
        "best_trial": best.record.number if best else None,
        "best_accuracy": best.accuracy if best else None,
        "baseline_trial": baseline.record.number if baseline else None,
        "baseline_accuracy": baseline.accuracy if baseline else None,
        "proxy_epochs": proxy.get("epochs"),
        "proxy_imgsz": proxy.get("imgsz"),
        "baseline_seeds": len(baseline.seeds) if baseline else 0,
        "noise": ranking.noise.half_width if ranking.noise else None,
        "verdict": ranking.verdict(),
        "updated_at": datetime.now(timezone.utc),
    }


def _row(study_name: str, accuracy_name: str, architecture: RankedArchitecture) -> dict[str, Any]:
    record = architecture.record
    last = record.epochs[-1] if record.epochs else {}
    estimate, gain = architecture.estimate, architecture.gain_estimate
    return {
        "study_name": study_name,
        "trial_number": record.number,
        "key": record.key,
        "code": record.code or record.key,
        "units": record.units,
        "state": record.status.value,
        "accuracy_name": accuracy_name,
        "accuracy": architecture.accuracy,
        "strategy": record.strategy.value,
        "supernet_score": architecture.supernet_score,
        "map50_95": last.get("map50-95"),
        "map50": last.get("map50"),
        "epochs_trained": len(record.epochs),
        "params": record.params,
        "gflops": record.gflops,
        "latency_ms": record.latency_ms,
        "latency_ratio": record.latency_ratio,
        "latency_ratio_low": record.latency_ratio_low,
        "latency_ratio_high": record.latency_ratio_high,
        "memory_mb": record.memory_mb,
        "gain_over_baseline": architecture.gain,
        "accuracy_mean": estimate.mean if estimate else None,
        "accuracy_ci_low": estimate.low if estimate else None,
        "accuracy_ci_high": estimate.high if estimate else None,
        "seeds": len(architecture.seeds),
        "gain": gain.mean if gain else None,
        "gain_ci_low": gain.low if gain else None,
        "gain_ci_high": gain.high if gain else None,
        "significant": architecture.significant,
        "front": architecture.front,
        "crowding": architecture.crowding,
        "is_knee": architecture.is_knee,
        "is_baseline": record.baseline,
        "yaml": record.yaml,
    }


def _drop_outdated_tables(engine: Engine) -> None:
    """Drop our tables when an older version made them with other columns; the next refresh fills them again.

    They hold nothing but a ranking of Optuna's trials, so nothing is lost.
    """
    existing = inspect(engine)
    for table in METADATA.sorted_tables:
        if not existing.has_table(table.name):
            continue
        columns = {column["name"] for column in existing.get_columns(table.name)}
        if columns != {column.name for column in table.columns}:
            try:
                table.drop(engine)
            except SQLAlchemyError:  # another worker dropped it a moment ago
                continue
