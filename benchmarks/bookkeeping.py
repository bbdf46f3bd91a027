"""Does the bookkeeping keep up with large studies? Ranking, SQL tables and dashboard at 100 ... 10,000 trials.

A search refreshes its ranked SQL tables after every trial, and the dashboard re-renders
a whole study, so both must stay cheap as studies grow. This builds studies of synthetic
trials in SQLite (``optuna.create_study``, trials made with ``optuna.trial.create_trial``
and written in one bulk insert, since ``study.add_trials`` takes minutes per thousand
trials on a small CPU; see :func:`add_trials_in_bulk`), with the user attributes
a real search stores (schema in ``ge_nas/storage/records.py``: key, code, units, baseline,
a short yaml, params, gflops, latency, epochs, map50, map50-95; some trials pruned, reused
or infeasible), then times, median of ``--repeats``:

* rank: ``ranking.nondominated_fronts`` + ``crowding_distance`` + ``hypervolume`` (with
  ``reference_point``) on the objective values, in memory;
* refresh: what a search runs after each trial: one more trial lands, then
  ``tables.TableWriter.refresh`` on the search's open study (Optuna's cached storage reads
  only the new trial), ranking it and rewriting both tables;
* refresh_cold: ``tables.refresh_tables(url, name)``, a one-off refresh that first loads
  every trial (what a search does once when it starts, and ``ge-nas`` commands do);
* dashboard: what the live dashboard server runs when a trial lands: one more trial, then
  ``ge_nas.report.dashboard.dashboard_html`` on the server's open study;
* dashboard_cold: ``ge-nas dashboard -o``: load the study, then ``dashboard_html``;
* page_load: that file opened in headless Chromium (Debian's, driven by Playwright), until
  every part of the page is drawn (``body[data-drawn]``);
* page_redraw: the page served live by ``ge-nas dashboard --serve`` (polling every 50 ms):
  one more trial lands, until the open page has fetched and drawn it. This is what the
  user waits for, server side included.

It prints the time of each, the growth from 1,000 to 10,000 trials against n log n
(13.3x), and whether a refresh at 1,000 trials stays under a second (reported, not
asserted). Without Chromium the page steps are not timed, and it says so. Run from the
repository root:

    python benchmarks/bookkeeping.py
    python benchmarks/bookkeeping.py --tiny           # a smoke run: 20 and 100 trials
"""

from __future__ import annotations

import argparse
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
from playwright.sync_api import Browser, Page, Playwright, sync_playwright
from report import write_table

from ge_nas.ranking.pareto import crowding_distance, hypervolume, nondominated_fronts, reference_point, to_minimization
from ge_nas.ranking.tables import TableWriter, refresh_tables
from ge_nas.report.dashboard import dashboard_html
from ge_nas.report.dashboard_server import DashboardServer
from ge_nas.report.study_view import study_version
from ge_nas.space.search_space import SearchSpace, load_space
from ge_nas.storage.database import make_engine

OBJECTIVES = ("map50-95", "gflops")
DIRECTIONS = ("maximize", "minimize")
PROXY_EPOCHS = 4
BASELINE_GFLOPS = 0.3542
STEPS = ("rank", "refresh", "refresh_cold", "dashboard", "dashboard_cold", "page_load", "page_redraw")
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking"]
DRAWN = "() => document.body.dataset.drawn !== undefined"  # the page sets it when every part is drawn


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
    with sync_playwright() as playwright:
        browser = open_browser(playwright)
        rows = measure(sizes, args.repeats, space, args.seed, browser)
    show_growth(rows, sizes, browser is not None)
    settings = {
        "sizes": args.sizes.replace(",", "/"),
        "repeats": args.repeats,
        "space": space.name,
        "objectives": "+".join(OBJECTIVES),
        "storage": "sqlite",
        "page": "chromium" if browser is not None else "not timed (no chromium)",
        "seed": args.seed,
    }
    print(f"figures written to {write_table(args.out, settings, ['trials', 'step', 'seconds', 'build_s'], rows)}")


def measure(
    sizes: Sequence[int], repeats: int, space: SearchSpace, seed: int, browser: Browser | None
) -> list[dict[str, Any]]:
    """Every step at every size: a row per (trials, step) with its median seconds."""
    work = Path(tempfile.mkdtemp(prefix="ge-nas-bookkeeping-"))
    rows = []
    for n in sizes:
        url, name = f"sqlite:///{work / f'study-{n}.db'}", f"bookkeeping-{n}"
        start = time.perf_counter()
        trials = build_study(url, name, n, space, random.Random(seed))
        build_s = time.perf_counter() - start
        values = np.array([t.values for t in trials if _trained(t)])
        study = optuna.load_study(study_name=name, storage=url)  # the search's (or dashboard's) open study
        writer = TableWriter(make_engine(url))
        lands = _one_more_trial(study, space, random.Random(seed + n))
        steps: dict[str, tuple[Callable[[], Any], Callable[[], Any] | None]] = {
            "rank": (lambda values=values: rank(values), None),
            "refresh": (lambda study=study, writer=writer: writer.refresh(study), lands),
            "refresh_cold": (lambda url=url, name=name: refresh_tables(url, name), None),
            "dashboard": (lambda study=study, url=url: dashboard_html(study, url), lands),
            "dashboard_cold": (
                lambda url=url, name=name: dashboard_html(optuna.load_study(study_name=name, storage=url), url),
                None,
            ),
        }
        page_file = work / f"dashboard-{n}.html"
        page_file.write_text(dashboard_html(study, url), encoding="utf-8")
        server = None
        if browser is not None:
            server = DashboardServer(study, url, port=0, refresh_seconds=0.05).start()
            steps["page_load"] = (lambda page_file=page_file: load_page(browser, page_file.as_uri()), None)
            live = browser.new_page(viewport={"width": 1280, "height": 900})
            live.goto(server.url)
            live.wait_for_function(DRAWN, timeout=600_000)
            steps["page_redraw"] = (lambda live=live, study=study: wait_until_drawn(live, study_version(study)), lands)
        for step, (run, setup) in steps.items():
            seconds = median_seconds(run, repeats, setup)
            rows.append({"trials": n, "step": step, "seconds": seconds, "build_s": build_s})
            print(f"{n:>6} trials  {step:<14} {seconds:9.4f} s")
        if server is not None:
            server.close()
        writer.engine.dispose()
    return rows


def open_browser(playwright: Playwright) -> Browser | None:
    """Headless Chromium (Debian's), or None, said aloud, when it is not installed."""
    if not CHROMIUM.is_file():
        print(f"page_load and page_redraw not timed: no Chromium at {CHROMIUM} (apt-get install chromium)")
        return None
    return playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)


def load_page(browser: Browser, url: str) -> None:
    """Open the dashboard file in a fresh tab and wait until every part is drawn."""
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    page.goto(url)
    page.wait_for_function(DRAWN, timeout=600_000)
    page.close()


def wait_until_drawn(page: Page, version: str) -> None:
    """Wait until the open served page has drawn the study at ``version`` (polling, fetching and drawing)."""
    page.wait_for_function("v => document.body.dataset.drawn === v", arg=version, timeout=600_000, polling=10)


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


def show_growth(rows: list[dict[str, Any]], sizes: list[int], with_page: bool) -> None:
    """Growth from the second-largest to the largest study, against n log n; the 1,000-trial refresh verdict."""
    if len(sizes) >= 2:
        small, large = sorted(sizes)[-2:]
        n_log_n = large * math.log(large) / (small * math.log(small))
        print(f"\ngrowth {small:,} -> {large:,} trials (n log n: {n_log_n:.1f}x, n: {large / small:.1f}x)")
        for step in STEPS:
            times = {r["trials"]: r["seconds"] for r in rows if r["step"] == step}
            if small in times and large in times:
                print(f"  {step:<14} {times[large] / times[small]:6.1f}x")
    for step in ("refresh", "dashboard", "page_redraw"):
        times = {r["trials"]: r["seconds"] for r in rows if r["step"] == step}
        if 1000 in times:
            verdict = "yes" if times[1000] < 1.0 else "NO"
            print(f"{step} at 1,000 trials: {times[1000]:.3f} s (under a second: {verdict})")
    if not with_page:
        print("page_load, page_redraw: not timed (no Chromium)")


if __name__ == "__main__":
    main()
