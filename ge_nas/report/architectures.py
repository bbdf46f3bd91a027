"""A study's architectures for people: list studies, show fronts, pick one, export its YAML.

These are the functions behind ``ge-nas list``, ``show`` and ``export``; the command line
only parses options and prints. They rank the study with :func:`~ge_nas.ranking.fronts.rank_study`
into the same rows the search writes to ``ge_nas_architectures``, so they never write to the
study's database and always see its latest trials. Nothing here imports torch.

Example:
    >>> from ge_nas.report import architectures
    >>> url = "sqlite:///studies/demo.db"
    >>> front = architectures.fronts(url, "demo").query("front == 1")  # doctest: +SKIP
    >>> front[["trial_number", "code", "accuracy", "gflops"]]  # doctest: +SKIP
    >>> architectures.export_yaml(url, "demo", "max-gflops=8.9", Path("best.yaml"))  # doctest: +SKIP
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import optuna
import pandas as pd

from ge_nas import __version__
from ge_nas.errors import InputError
from ge_nas.layers.choices import MODULES
from ge_nas.ranking.effects import Trained, module_effects
from ge_nas.ranking.fronts import Ranking, rank_study
from ge_nas.ranking.tables import ARCHITECTURES, STUDIES, architecture_rows, study_summary
from ge_nas.space.candidate import Candidate
from ge_nas.storage.database import STUDIES_DIR, check_study_name, default_storage_url, open_existing_storage, safe_url
from ge_nas.storage.records import COSTS, Status, Strategy, cost_value, read_record
from ge_nas.storage.studies import load_existing_study, proxy_settings, stored_settings, study_names

__all__ = [
    "PICKS",
    "StudyListing",
    "by_module",
    "export_yaml",
    "fronts",
    "list_studies",
    "pick",
    "study_storage",
    "summary",
    "within_the_noise",
]

PICKS: tuple[str, ...] = (
    "knee",
    "verdict",
    "best-accuracy",
    "max-gflops=X",
    "max-params=X",
    "max-latency=X",
    "max-latency-ratio=X",
    "max-memory=X",
    "a trial number",
)
# Nullable integer columns, kept integers (not floats) in tables, CSV and JSON.
_INTEGER_COLUMNS = (
    "front",
    "knee_trial",
    "best_trial",
    "baseline_trial",
    "proxy_epochs",
    "proxy_imgsz",
    "seeds",
    "baseline_seeds",
)


def study_storage(study_name: str, storage_url: str | None = None) -> str:
    """The storage URL to read ``study_name`` from: ``storage_url``, else ``ge-nas search``'s default.

    Without ``--storage`` a study lives in ``studies/<name>.db``; when that file is missing
    the study name is what the user got wrong, so the error names it and lists the
    studies that do exist there.
    """
    if storage_url:
        return storage_url
    url = default_storage_url(check_study_name(study_name))
    if not (STUDIES_DIR / f"{study_name}.db").is_file():
        existing = sorted(set(list_studies().table["study_name"]))
        raise InputError(
            f"study {study_name!r} not found in {STUDIES_DIR}/ (no {study_name}.db); "
            f"studies there: {', '.join(existing) or 'none'}; or give --storage URL"
        )
    return url


@dataclass(frozen=True)
class StudyListing:
    """The studies found, and the databases that could not be read (by storage, with the reason)."""

    table: pd.DataFrame
    unreadable: dict[str, str]


def list_studies(storage_url: str | None = None) -> StudyListing:
    """One row per study (columns of ``ge_nas_studies`` plus ``storage``), by storage then name.

    ``storage_url`` None means every ``studies/*.db`` under the current folder, the
    default storage of ``ge-nas search``; there one file that cannot be read (not a
    database, or not Optuna's) is named in :attr:`StudyListing.unreadable` and the others
    are listed. A ``storage_url`` that cannot be read is an input error. The storage
    column hides passwords.

    Raises:
        InputError: ``storage_url`` cannot be read.
    """
    urls = [storage_url] if storage_url else [f"sqlite:///{path}" for path in sorted(STUDIES_DIR.glob("*.db"))]
    summaries = []
    unreadable: dict[str, str] = {}
    for url in urls:
        try:
            summaries.extend(_summaries(url))
        except InputError as error:
            if storage_url:
                raise
            unreadable[safe_url(url)] = str(error)
    columns = ["storage", *(c.name for c in STUDIES.columns)]
    return StudyListing(_typed(pd.DataFrame(summaries, columns=columns)), unreadable)


def _summaries(url: str) -> list[dict[str, Any]]:
    storage = open_existing_storage(url)
    try:
        return [
            {"storage": safe_url(url), **study_summary(study, rank_study(study))}
            for study in (load_existing_study(storage, name) for name in study_names(storage))
        ]
    finally:
        storage.engine.dispose()


def fronts(storage_url: str, study_name: str) -> pd.DataFrame:
    """Every distinct evaluated architecture of the study, ranked, best first.

    The columns are those of ``ge_nas_architectures`` (see ``docs/schema.md``); rows are
    ordered by front (unranked infeasible and pruned ones last), then accuracy (highest
    first), then GFLOPs.
    """
    _, _, rows = _ranked(storage_url, study_name)
    table = _typed(pd.DataFrame(rows, columns=[c.name for c in ARCHITECTURES.columns]))
    return table.sort_values(
        ["front", "accuracy", "gflops", "trial_number"], ascending=[True, False, True, True], na_position="last"
    ).reset_index(drop=True)


def summary(storage_url: str, study_name: str) -> dict[str, Any]:
    """The study's row of ``ge_nas_studies``: counts, hypervolume, knee, best and baseline accuracy."""
    study, ranking, _ = _ranked(storage_url, study_name)
    return study_summary(study, ranking)


def by_module(storage_url: str, study_name: str) -> pd.DataFrame:
    """Where attention pays, by module: per attention module the study trained, its trained architectures,
    how many are on front 1, and what a unit of it adds against the architectures with none of it.

    Columns: ``module``, ``architectures``, ``on_front``, ``compared_with`` (architectures without
    it), ``accuracy_effect`` with its Welch interval ``effect_ci_low``/``high`` (NULL with fewer than
    two architectures on a side), ``significant``, and ``cost_effect_pct``, the change in the study's
    first cost in percent (NULL in a single-objective study). See :mod:`ge_nas.ranking.effects`.
    """
    _, ranking, _ = _ranked(storage_url, study_name)
    cost = ranking.objectives[1] if len(ranking.objectives) > 1 else None
    trained = [
        Trained(
            dict(Candidate.from_key(a.record.key).placements),
            a.accuracy,
            a.front,
            cost_value(a.record, cost) if cost else None,
        )
        for a in ranking.ranked
        if a.record.key
    ]
    rows = [
        {
            "module": MODULES[name].label,
            "architectures": effect.n,
            "on_front": effect.on_front,
            "compared_with": effect.n_without,
            "accuracy_effect": effect.accuracy,
            "effect_ci_low": effect.effect.low if effect.effect else None,
            "effect_ci_high": effect.effect.high if effect.effect else None,
            "significant": effect.clear,
            "cost_effect_pct": effect.cost,
        }
        for name, effect in module_effects(trained).items()
    ]
    return pd.DataFrame(rows, columns=_MODULE_COLUMNS)


_MODULE_COLUMNS = (
    "module",
    "architectures",
    "on_front",
    "compared_with",
    "accuracy_effect",
    "effect_ci_low",
    "effect_ci_high",
    "significant",
    "cost_effect_pct",
)


def pick(storage_url: str, study_name: str, how: str | int) -> pd.Series:
    """The architecture ``how`` chooses, as one row of :func:`fronts`.

    ``how`` is one of:

    * ``"knee"``: the best compromise on the Pareto front of mean accuracies (:func:`ranking.knee_point`);
    * ``"verdict"``: the architecture the search's verdict names: the surest gain beyond the seed noise;
    * ``"best-accuracy"``: the most accurate trained architecture (ties: lower front, earlier trial);
    * ``"max-gflops=X"``, ``"max-params=X"``, ``"max-latency=X"`` (ms), ``"max-latency-ratio=X"``,
      ``"max-memory=X"`` (MB):
      the most accurate trained architecture within that budget (ties: cheaper, then earlier trial);
    * a trial number (int or digits): the architecture that trial evaluated, or reused.

    Raises:
        InputError: an unknown ``how``, or nothing that fits it (the message says what would).
    """
    study, ranking, rows = _ranked(storage_url, study_name)
    return _choose(study, ranking, rows, how)


def within_the_noise(row: pd.Series) -> str:
    """A note when a picked architecture's gain is not established beyond the seed noise; "" when it is."""
    name = f"trial {row['trial_number']} ({row['code']})"
    if row["strategy"] == Strategy.SUPERNET.value and not row["is_baseline"] and not row["seeds"]:
        return f"note: {name} was scored by the supernet only; no proxy confirmed it, so its gain is unknown"
    if row["is_baseline"] or row["significant"] or row["gain"] is None or row["gain"] != row["gain"]:
        return ""
    low, high = row["gain_ci_low"], row["gain_ci_high"]
    if low is None or low != low:
        return f"note: {name} was trained with one seed: its gain {row['gain']:+.4f} is not checked against seed noise"
    return f"note: {name}'s gain {row['gain']:+.4f} (95 % CI {low:+.4f} to {high:+.4f}) is within the seed noise"


def export_yaml(storage_url: str, study_name: str, how: str | int, output: Path) -> Path:
    """Write the model YAML of the architecture ``how`` picks (see :func:`pick`) to ``output``.

    The YAML is the one the search trained, byte for byte, with comment lines added to
    its header saying where it came from (study, storage without password, trial, pick)
    and what its proxy measured, so the file explains itself after it leaves the study.
    """
    study, ranking, rows = _ranked(storage_url, study_name)
    row = _choose(study, ranking, rows, how)
    if not row["yaml"]:
        raise InputError(f"trial {row['trial_number']} of study {study_name!r} has no stored model YAML")
    chosen_with = f"--trial {how}" if _is_trial_number(how) else f"--pick {how}"
    origin = [
        f"# Exported by ge-nas {__version__} from study {study_name!r} ({safe_url(storage_url)}), "
        f"trial {row['trial_number']}, chosen with {chosen_with}",
        f"# Proxy ({_proxy_setup(study)}): {_proxy_result(study, row)}",
        f"# Train it fully with: ge-nas train {output.name} --data YOUR_DATA.yaml --epochs 100",
    ]
    first, _, rest = row["yaml"].partition("\n")
    # Right after the "# Generated by ge-nas" line, so that line still opens the file.
    lines = [first, *origin, rest] if first.startswith("#") else [*origin, row["yaml"]]
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text("\n".join(lines))
    return output


def _ranked(storage_url: str, study_name: str) -> tuple[optuna.Study, Ranking, list[dict[str, Any]]]:
    storage = open_existing_storage(storage_url)
    try:
        study = load_existing_study(storage, study_name)
        ranking = rank_study(study)
        return study, ranking, architecture_rows(study_name, ranking)
    finally:
        storage.engine.dispose()


def _choose(study: optuna.Study, ranking: Ranking, rows: list[dict[str, Any]], how: str | int) -> pd.Series:
    name = study.study_name
    trained = [row for row in rows if row["front"] is not None]
    by_trial = {row["trial_number"]: row for row in rows}
    if _is_trial_number(how):
        return pd.Series(_trial_row(study, rows, int(how)))
    if not trained:
        raise InputError(f"study {name!r} has no trained architecture yet; run ge-nas search, or pick --trial N")
    if how == "knee":
        return pd.Series(by_trial[ranking.knee.record.number])
    if how == "verdict":
        winner = ranking.winner()
        if winner is None:
            raise InputError(
                f"--pick verdict: no architecture of study {name!r} beats the baseline beyond the seed noise "
                f"({ranking.verdict()}); pick knee or best-accuracy, or confirm more candidates"
            )
        return pd.Series(by_trial[winner.record.number])
    if how == "best-accuracy":
        return pd.Series(by_trial[ranking.most_accurate().record.number])
    cost, _, limit = how.removeprefix("max-").partition("=")
    if how.startswith("max-") and cost in COSTS and _is_number(limit):
        column = COSTS[cost].attribute
        measured = [row for row in trained if row[column] is not None]  # memory: not in older studies
        within = [row for row in measured if row[column] <= float(limit)]
        if not within:
            if not measured:
                raise InputError(f"--pick {how}: study {name!r} did not measure {cost}")
            cheapest = min(measured, key=lambda row: row[column])
            raise InputError(
                f"--pick {how}: no trained architecture of study {name!r} has {cost} <= {limit}; "
                f"the cheapest has {cheapest[column]:.6g} (trial {cheapest['trial_number']})"
            )
        return pd.Series(min(within, key=lambda row: (-row["accuracy"], row[column], row["trial_number"])))
    raise InputError(f"--pick {how!r}: use one of {', '.join(PICKS)}, e.g. --pick max-gflops=8.5")


def _trial_row(study: optuna.Study, rows: list[dict[str, Any]], number: int) -> dict[str, Any]:
    """The row of the architecture trial ``number`` evaluated, following a reuse to its source."""
    trials = study.get_trials(deepcopy=False)
    if not 0 <= number < len(trials):
        raise InputError(f"--trial {number}: study {study.study_name!r} has trials 0 to {len(trials) - 1}")
    record = read_record(trials[number])
    row = next((row for row in rows if row["key"] == record.key), None)
    if row is None or not record.explored:
        raise InputError(
            f"--trial {number}: that trial evaluated no architecture (it is {record.status.value}"
            f"{': ' + record.error if record.error else ''}); see ge-nas show"
        )
    return row


def _proxy_setup(study: optuna.Study) -> str:
    """How the study's proxy measured accuracy: epochs, image size, and what it inherited weights from."""
    settings = stored_settings(study)
    proxy = proxy_settings(study)
    setup = f"{_epochs(proxy['epochs'])} at {proxy['imgsz']} px" if proxy else "settings unknown"
    return setup + (f", parent: {settings['parent']}" if "parent" in settings else "")


def _proxy_result(study: optuna.Study, row: pd.Series) -> str:
    """One line: accuracy, gain, costs and rank as the proxy measured them."""
    proxy = proxy_settings(study)
    costs = (
        f"{row['params']:,} params, {row['gflops']:.4g} GFLOPs at {proxy.get('imgsz', '?')} px, "
        f"latency {row['latency_ms']:.3g} ms ({row['latency_ratio']:.3g}x the baseline"
        + (
            f", 95% interval {row['latency_ratio_low']:.3g}-{row['latency_ratio_high']:.3g})"
            if row["latency_ratio_low"] is not None
            else ")"
        )
        + (f", peak memory {row['memory_mb']:.3g} MB" if row["memory_mb"] is not None else "")
    )
    if row["state"] == Status.INFEASIBLE.value:
        reason = read_record(study.get_trials(deepcopy=False)[row["trial_number"]]).infeasible
        return f"not trained, {reason}; {costs}"
    rank = f"front {row['front']}" + (", the knee" if row["is_knee"] else "")
    if row["strategy"] == Strategy.SUPERNET.value:
        return f"supernet score {row['accuracy_name']} {row['supernet_score']:.4f}; {_proxies(row)}; {costs}; {rank}"
    accuracy = f"{row['accuracy_name']} {row['accuracy']:.4f}"
    several = row["seeds"] > 1 and row["accuracy_ci_high"] is not None
    if several:
        accuracy += f" ±{row['accuracy_ci_high'] - row['accuracy']:.4f} (mean over {row['seeds']} seeds, 95 % CI)"
    if row["gain_over_baseline"] is not None:
        interval = (
            f", 95 % CI {row['gain_ci_low']:+.4f} to {row['gain_ci_high']:+.4f} paired by seed"
            if several and row["gain_ci_low"] is not None
            else ""
        )
        accuracy += f" ({row['gain_over_baseline']:+.4f} over the baseline{interval})"
    if row["state"] == Status.PRUNED.value:
        return f"stopped after {row['epochs_trained']} of {proxy.get('epochs', '?')} epochs at {accuracy}; {costs}"
    return f"{accuracy} after {_epochs(row['epochs_trained'])}; {costs}; {rank}"


def _proxies(row: pd.Series) -> str:
    """What the proxies that confirmed a supernet-scored architecture measured (the verdict's evidence)."""
    if not row["seeds"]:
        return "not confirmed by proxies"
    text = f"proxies {row['accuracy_name']} {row['accuracy_mean']:.4f} over {row['seeds']} seeds"
    if row["gain"] is not None and row["gain"] == row["gain"]:
        text += f", {row['gain']:+.4f} over the baseline"
        if row["gain_ci_low"] is not None and row["gain_ci_low"] == row["gain_ci_low"]:
            text += f" (95 % CI {row['gain_ci_low']:+.4f} to {row['gain_ci_high']:+.4f}, paired by seed)"
    return text


def _typed(table: pd.DataFrame) -> pd.DataFrame:
    """Nullable integers stay integers: front 1, not 1.0, in every output format."""
    for column in _INTEGER_COLUMNS:
        if column in table:
            table[column] = table[column].astype("Int64")
    return table


def _is_number(text: str) -> bool:
    try:
        return math.isfinite(float(text))
    except ValueError:
        return False


def _is_trial_number(how: str | int) -> bool:
    """A trial number: an int, or ASCII digits (``"²"`` and other Unicode digits are not numbers to ``int``)."""
    return isinstance(how, int) or (how.isascii() and how.isdigit())


def _epochs(count: int) -> str:
    return f"{count} epoch" + ("" if count == 1 else "s")
