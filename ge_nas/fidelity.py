"""Proxy fidelity: retrain the front's best architectures longer and compare the rankings.

A search is only as good as its proxy. ``retrain`` trains the K most accurate
architectures of front 1 and the baseline from scratch with a longer schedule, stores
those results in the study (user attribute ``retrain``, keyed by epoch count and trial
number, beside the proxy results), and reports how well the proxy ranked them: Kendall
tau and Spearman rank correlation between proxy accuracy and retrained accuracy.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import optuna
from optuna.trial import FrozenTrial, TrialState
from scipy import stats

from ge_nas.errors import InputError
from ge_nas.ranking import nondominated_fronts, to_minimization
from ge_nas.ultralytics_bridge import ProxySettings, train_proxy


@dataclass(frozen=True)
class RetrainRow:
    """One retrained architecture: its proxy accuracy and its accuracy after the long schedule."""

    trial: int
    code: str
    proxy: float
    retrained: float
    seconds: float


@dataclass(frozen=True)
class RetrainReport:
    epochs: int
    accuracy: str
    rows: list[RetrainRow]
    kendall_tau: float
    spearman: float


def rank_correlation(proxy: Sequence[float], reference: Sequence[float]) -> tuple[float, float]:
    """Kendall tau-b and Spearman rho of two score lists; NaN when either is constant or too short."""
    if len(proxy) < 2 or len(set(proxy)) < 2 or len(set(reference)) < 2:
        return math.nan, math.nan
    return float(stats.kendalltau(proxy, reference).statistic), float(stats.spearmanr(proxy, reference).statistic)


def front_trials(study: optuna.Study) -> list[FrozenTrial]:
    """Front 1 of the study's trained, feasible architectures (each architecture once)."""
    objectives = study.user_attrs["settings"]["objectives"]
    trials = [
        t
        for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
        if "infeasible" not in t.user_attrs and "reused_from" not in t.user_attrs
    ]
    if not trials:
        return []
    directions = [d.name.lower() for d in study.directions]
    values = np.array([t.values if len(objectives) > 1 else [t.value] for t in trials], dtype=float)
    ranks = nondominated_fronts(to_minimization(values, directions))
    return [t for t, rank in zip(trials, ranks, strict=True) if rank == 1]


def retrain(
    study: optuna.Study,
    top: int,
    epochs: int,
    workdir: Path,
    data_yaml: Path | None = None,
    device: str | None = None,
    on_row: Callable[[RetrainRow], None] | None = None,
) -> RetrainReport:
    """Retrain the ``top`` most accurate front architectures and the baseline for ``epochs`` epochs.

    Results already stored for the same ``epochs`` are reused, so a larger ``--top`` later
    trains only the new ones.
    """
    settings = study.user_attrs.get("settings")
    if settings is None:
        raise InputError(
            f"study {study.study_name!r} was not made by ge-nas search: it has no settings to retrain with"
        )
    accuracy = settings["objectives"][0]
    data_yaml = data_yaml or Path(study.user_attrs.get("dataset", ""))
    if not data_yaml.is_file():
        raise InputError(f"dataset {data_yaml} of study {study.study_name!r} not found: pass --dataset PATH")
    proxy = ProxySettings(**{**settings["proxy"], "epochs": epochs, **({"device": device} if device else {})})
    front = sorted(front_trials(study), key=lambda t: -t.user_attrs[accuracy])[:top]
    baseline = [
        t for t in study.get_trials(deepcopy=False) if t.user_attrs.get("baseline") and "epochs" in t.user_attrs
    ]
    chosen = {t.number: t for t in [*baseline[:1], *front]}
    stored = dict(study.user_attrs.get("retrain", {}))
    results = dict(stored.get(str(epochs), {}))
    rows = []
    for number, trial in sorted(chosen.items()):
        if str(number) not in results:
            run_dir = workdir / f"retrain-{epochs}" / f"trial-{number:05d}"
            model_yaml = run_dir / "model.yaml"
            model_yaml.parent.mkdir(parents=True, exist_ok=True)
            model_yaml.write_text(trial.user_attrs["yaml"])
            start = time.perf_counter()
            history = train_proxy(model_yaml, data_yaml, proxy, run_dir)
            results[str(number)] = {**history[-1], "seconds": time.perf_counter() - start}
            stored[str(epochs)] = results
            study.set_user_attr("retrain", stored)  # after each run, so an interruption keeps what finished
        result = results[str(number)]
        row = RetrainRow(
            number, trial.user_attrs["code"], trial.user_attrs[accuracy], result[accuracy], result["seconds"]
        )
        rows.append(row)
        if on_row is not None:
            on_row(row)
    tau, rho = rank_correlation([r.proxy for r in rows], [r.retrained for r in rows])
    correlations = dict(study.user_attrs.get("retrain_correlation", {}))
    correlations[str(epochs)] = {"kendall_tau": tau, "spearman": rho, "n": len(rows)}
    study.set_user_attr("retrain_correlation", correlations)
    return RetrainReport(epochs, accuracy, rows, tau, rho)
