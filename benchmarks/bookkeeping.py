"""Does the bookkeeping keep up with large studies? Ranking, SQL tables and dashboard at 100 ... 10,000 trials.

A search refreshes its ranked SQL tables after every trial, and the dashboard re-renders
a whole study, so both must stay cheap as studies grow. This builds studies of synthetic
trials in SQLite (``optuna.create_study``, trials made with ``optuna.trial.create_trial``
and written in one bulk insert, since ``study.add_trials`` takes minutes per thousand
trials on a small CPU; see :func:`add_trials_in_bulk`), with the user attributes
a real search stores (schema in ``ge_nas/study.py``: key, code, units, baseline, a short
yaml, params, gflops, latency, epochs, map50, map50-95; some trials pruned, reused or
infeasible), then times, median of ``--repeats``:

* rank: ``ranking.nondominated_fronts`` + ``crowding_distance`` + ``hypervolume`` (with
  ``reference_point``) on the objective values, in memory;
* refresh: what a search runs after each trial: one more trial lands, then
  ``tables.TableWriter.refresh`` on the search's open study (Optuna's cached storage reads
  only the new trial), ranking it and rewriting both tables;
* refresh_cold: ``tables.refresh_tables(url, name)``, a one-off refresh that first loads
  every trial (what a search does once when it starts, and ``ge-nas`` commands do);
* dashboard: what the live dashboard server runs when a trial lands: one more trial, then
  ``dashboard.dashboard_html`` on the server's open study;
* dashboard_cold: ``ge-nas dashboard -o``: load the study, then ``dashboard_html``.

It prints the time of each, the growth from 1,000 to 10,000 trials against n log n
(13.3x), and whether a refresh at 1,000 trials stays under a second (reported, not
asserted). Run from the repository root:

    python benchmarks/bookkeeping.py
    python benchmarks/bookkeeping.py --tiny           # a smoke run: 20 and 100 trials
"""

from __future__ import annotations

import argparse
import importlib
import json
import math
import random
import statistics
import tempfile
import time
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import numpy as np
import optuna
from optuna.storages import RDBStorage
from optuna.storages._rdb import models
from optuna.trial import FrozenTrial, TrialState, create_trial
from report import write_table

from ge_nas.ranking.pareto import crowding_distance, hypervolume, nondominated_fronts, reference_point, to_minimization
from ge_nas.ranking.tables import TableWriter, refresh_tables
from ge_nas.space.search_space import SearchSpace, load_space
from ge_nas.storage.database import make_engine

OBJECTIVES = ("map50-95", "gflops")
DIRECTIONS = ("maximize", "minimize")
PROXY_EPOCHS = 4
BASELINE_GFLOPS = 0.3542
STEPS = ("rank", "refresh", "refresh_cold", "dashboard", "dashboard_cold")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="100,1000,10000", help="trials per study, comma-separated")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--space", default="yolov8n_ge", help="where the synthetic architectures come from")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/bookkeeping.csv"))
    parser.add_argument("--tiny", action="store_true", help="smoke run: 20 and 100 trials, 1 repeat")
    args = parser.parse_args()
    if args.tiny:
        args.sizes, args.repeats = "20,100", 1
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    sizes = [int(s) for s in args.sizes.split(",")]
    space = load_space(args.space)
    render = dashboard_renderer()
    if render is None:
        print("ge_nas.dashboard has no dashboard_html(study, storage_url): timing ranking and tables only")
    work = Path(tempfile.mkdtemp(prefix="ge-nas-bookkeeping-"))

    rows = []
    for n in sizes:
        url, name = f"sqlite:///{work / f'study-{n}.db'}", f"bookkeeping-{n}"
        start = time.perf_counter()
        trials = build_study(url, name, n, space, random.Random(args.seed))
        build_s = time.perf_counter() - start
        values = np.array([t.values for t in trials if _trained(t)])
        study = optuna.load_study(study_name=name, storage=url)  # the search's (or dashboard's) open study
        writer = TableWriter(make_engine(url))
        lands = _one_more_trial(study, space, random.Random(args.seed + n))
        steps: dict[str, tuple[Callable[[], Any], Callable[[], Any] | None]] = {
            "rank": (lambda values=values: rank(values), None),
            "refresh": (lambda study=study, writer=writer: writer.refresh(study), lands),
            "refresh_cold": (lambda url=url, name=name: refresh_tables(url, name), None),
        }
        if render is not None:
            steps["dashboard"] = (lambda study=study, url=url: render(study, url), lands)
            steps["dashboard_cold"] = (
                lambda url=url, name=name: render(optuna.load_study(study_name=name, storage=url), url),
                None,
            )
        for step, (run, setup) in steps.items():
            seconds = median_seconds(run, args.repeats, setup)
            rows.append({"trials": n, "step": step, "seconds": seconds, "build_s": build_s})
            print(f"{n:>6} trials  {step:<14} {seconds:9.4f} s")
        writer.engine.dispose()
    show_growth(rows, sizes, render is not None)
    settings = {
        "sizes": args.sizes.replace(",", "/"),
        "repeats": args.repeats,
        "space": space.name,
        "objectives": "+".join(OBJECTIVES),
        "storage": "sqlite",
        "dashboard": "dashboard_html" if render is not None else "unavailable",
        "seed": args.seed,
    }
    print(f"figures written to {write_table(args.out, settings, ['trials', 'step', 'seconds', 'build_s'], rows)}")


def dashboard_renderer() -> Callable[[optuna.Study, str], str] | None:
    """``ge_nas.dashboard.dashboard_html`` if that module exists and has it (it is written separately)."""
    try:
        module = importlib.import_module("ge_nas.dashboard")
    except ImportError:
        return None
    render = getattr(module, "dashboard_html", None)
    return render if callable(render) else None


def rank(values: np.ndarray) -> float:
    """What ranking a study costs in memory: fronts, crowding and the hypervolume of front 1."""
    points = to_minimization(values, DIRECTIONS)
    fronts = nondominated_fronts(points)
    crowding_distance(points, fronts)
    return hypervolume(points, reference_point(points[0], points))  # trial 0 is the baseline


def median_seconds(run: Callable[[], Any], repeats: int, setup: Callable[[], Any] | None = None) -> float:
    """Median wall time of ``run`` after one untimed run; ``setup`` (untimed) runs before each.

    A search refreshes after every trial, so the steady state counts, not the first call.
    """
    if setup:
        setup()
    run()
    times = []
    for _ in range(repeats):
        if setup:
            setup()
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def _one_more_trial(study: optuna.Study, space: SearchSpace, rng: random.Random) -> Callable[[], None]:
    """A step's setup: one more trained trial lands in the study, as during a search."""

    def land() -> None:
        study.add_trial(synthetic_trial(len(study.get_trials(deepcopy=False)), space, rng, "trained"))

    return land


def build_study(url: str, name: str, n: int, space: SearchSpace, rng: random.Random) -> list[FrozenTrial]:
    """A study of ``n`` finished trials that look like a search's: 75% trained, 15% pruned, 5% reused, 5% infeasible.

    Returns the trials as Optuna reads them back, after checking they are exactly the ones meant.
    """
    storage = RDBStorage(url)
    study = optuna.create_study(storage=storage, study_name=name, directions=list(DIRECTIONS))
    study.set_metric_names(list(OBJECTIVES))
    study.set_user_attr("settings", {"proxy": {"epochs": PROXY_EPOCHS, "imgsz": 128}, "objectives": list(OBJECTIVES)})
    trials: list[FrozenTrial] = [synthetic_trial(0, space, rng, "trained", baseline=True)]
    for number in range(1, n):
        kind = rng.choices(("trained", "pruned", "reused", "infeasible"), weights=(75, 15, 5, 5))[0]
        if kind == "reused":
            earlier = trials[rng.randrange(len(trials))]
            attrs = {**earlier.user_attrs, "reused_from": earlier.number}
            trials.append(create_trial(state=earlier.state, values=earlier.values, user_attrs=attrs))
        else:
            trials.append(synthetic_trial(number, space, rng, kind))
    add_trials_in_bulk(storage, storage.get_study_id_from_name(name), trials)
    storage.engine.dispose()
    stored = optuna.load_study(study_name=name, storage=url).get_trials(deepcopy=False)
    if [(t.number, t.state, t.values, t.user_attrs) for t in stored] != [
        (number, t.state, t.values, t.user_attrs) for number, t in enumerate(trials)
    ]:
        raise SystemExit("Optuna does not read back the trials written in bulk: has its storage schema changed?")
    return stored


def add_trials_in_bulk(storage: RDBStorage, study_id: int, trials: Sequence[FrozenTrial]) -> None:
    """``study.add_trials(trials)`` in one transaction, through Optuna's own ORM models.

    Optuna's RDB storage writes each user attribute of each trial with its own look-up and
    upsert (about 6 ms apiece on the loaded 2-core CPU this was written on), so a study of
    10,000 trials with a search's 15 attributes would take a quarter of an hour to build;
    one bulk insert takes seconds. The models are Optuna's private API: :func:`build_study`
    reads every trial back through the public one to make sure nothing was lost.
    """
    session = storage.scoped_session()
    start = datetime(2026, 1, 1, tzinfo=timezone.utc)
    try:
        for number, trial in enumerate(trials):
            row = models.TrialModel(number=number, study_id=study_id, state=trial.state)
            row.datetime_start = start + timedelta(seconds=30 * number)
            row.datetime_complete = row.datetime_start + timedelta(seconds=25)
            session.add(row)
            for objective, value in enumerate(trial.values or []):
                stored, kind = models.TrialValueModel.value_to_stored_repr(value)
                session.add(models.TrialValueModel(trial=row, objective=objective, value=stored, value_type=kind))
            for key, value in trial.user_attrs.items():
                session.add(models.TrialUserAttributeModel(trial=row, key=key, value_json=json.dumps(value)))
        session.commit()
    finally:
        session.close()


def synthetic_trial(
    number: int, space: SearchSpace, rng: random.Random, kind: str, baseline: bool = False
) -> FrozenTrial:
    """One trial with plausible values: accuracy near 0.6, costs rising with the GE units."""
    candidate = space.sample(rng) if not baseline else None
    key, code, units = (candidate.key, candidate.code, candidate.units) if candidate else ("base", "base", 0)
    gflops = BASELINE_GFLOPS + 0.0002 * units * rng.random()
    epochs_run = PROXY_EPOCHS if kind != "pruned" else rng.randint(2, PROXY_EPOCHS - 1)
    final = 0.6 + 0.02 * rng.gauss(0, 1)
    epochs = [
        {"epoch": e, "map50": min(1.0, 1.6 * final * e / PROXY_EPOCHS), "map50-95": final * e / PROXY_EPOCHS}
        for e in range(1, epochs_run + 1)
    ]
    attrs: dict[str, Any] = {
        "worker": "bench:1",
        "key": key,
        "code": code,
        "units": units,
        "baseline": baseline,
        "yaml": f"# candidate: {code}\n# key: {key}\nnc: 80\nbackbone: []\nhead: []\n",
        "params": 3_157_200 + 1_000 * units,
        "gflops": gflops,
        "latency_ms": 12.0 + units + rng.random(),
        "latency_ratio": 1.0 + 0.05 * units,
        "constraints": [],
        "epochs": epochs,
        "train_seconds": 5.0 * epochs_run,
    }
    if kind == "infeasible":
        attrs["infeasible"] = "over budget: gflops 0.36 > 0.355"
        return create_trial(values=[0.0, gflops], user_attrs={k: v for k, v in attrs.items() if k != "epochs"})
    attrs.update({"map50": epochs[-1]["map50"], "map50-95": epochs[-1]["map50-95"]})
    if kind == "pruned":
        attrs.update({"pruned_epoch": epochs_run, "prune_reason": f"dominated at epoch {epochs_run} by trial 0"})
        return create_trial(state=TrialState.PRUNED, user_attrs=attrs)
    return create_trial(values=[epochs[-1]["map50-95"], gflops], user_attrs=attrs)


def _trained(trial: FrozenTrial) -> bool:
    return trial.state == TrialState.COMPLETE and not {"reused_from", "infeasible"} & trial.user_attrs.keys()


def show_growth(rows: list[dict[str, Any]], sizes: list[int], with_dashboard: bool) -> None:
    """Growth from the second-largest to the largest study, against n log n; the 1,000-trial refresh verdict."""
    if len(sizes) >= 2:
        small, large = sorted(sizes)[-2:]
        n_log_n = large * math.log(large) / (small * math.log(small))
        print(f"\ngrowth {small:,} -> {large:,} trials (n log n: {n_log_n:.1f}x, n: {large / small:.1f}x)")
        for step in STEPS:
            times = {r["trials"]: r["seconds"] for r in rows if r["step"] == step}
            if small in times and large in times:
                print(f"  {step:<14} {times[large] / times[small]:6.1f}x")
    for step in ("refresh", "dashboard"):
        times = {r["trials"]: r["seconds"] for r in rows if r["step"] == step}
        if 1000 in times:
            verdict = "yes" if times[1000] < 1.0 else "NO"
            print(f"{step} at 1,000 trials: {times[1000]:.3f} s (under a second: {verdict})")
    if not with_dashboard:
        print("dashboard: not timed (ge_nas.dashboard.dashboard_html unavailable)")


if __name__ == "__main__":
    main()
