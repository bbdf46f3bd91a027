"""The search: Optuna trials that sample a candidate, cost it, train its proxy and report.

Each trial:

1. samples one choice per insertion point (the baseline, no GE, is always trial 0);
2. reuses the stored result if the study already evaluated that architecture;
3. generates its model YAML and measures params, GFLOPs and latency;
4. is recorded as infeasible, untrained, when a cost is over a ``--max-*`` budget;
5. trains the proxy, recording every epoch's validation metrics, and stops early when
   the pruner says so (Optuna's pruners for one objective, :class:`ParetoPruner` for several);
6. reports accuracy and costs as the study's objectives.
"""

from __future__ import annotations

import dataclasses
import hashlib
import math
import multiprocessing
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import optuna
from optuna.trial import FrozenTrial, Trial, TrialState

from ge_nas.candidate import Candidate
from ge_nas.cost import Cost, measure_cost
from ge_nas.errors import InputError
from ge_nas.generate import generate
from ge_nas.pruners import ParetoPruner, TrialHistory
from ge_nas.space import SearchSpace
from ge_nas.study import (
    STUDIES_DIR,
    Objectives,
    check_study_name,
    constraint_values,
    counted_trials,
    default_storage_url,
    evaluated_trial,
    fail_orphaned_trials,
    open_storage,
    open_study,
    worker_id,
)
from ge_nas.tables import TableWriter, table_writer
from ge_nas.ultralytics_bridge import (
    Inheritance,
    ProxySettings,
    build_model,
    cuda_device_count,
    fine_tune_recipe,
    load_parent_state,
    train_parent,
    train_proxy,
)

SAMPLERS: tuple[str, ...] = ("tpe", "nsga2", "random", "gp", "grid")
PRUNERS: tuple[str, ...] = ("auto", "median", "hyperband", "pareto", "none")


__all__ = [
    "PRUNERS",
    "SAMPLERS",
    "STUDIES_DIR",
    "Objectives",
    "ProxySettings",
    "SearchConfig",
    "SearchFailed",
    "check_choice",
    "check_device",
    "check_study_name",
    "default_storage_url",
    "run_search",
]


class SearchFailed(RuntimeError):
    """Trials kept failing; the study keeps every finished trial."""


def check_choice(option: str, value: str, allowed: tuple[str, ...]) -> str:
    if value not in allowed:
        raise InputError(f"{option} {value!r}: use one of {', '.join(allowed)}")
    return value


def check_device(device: str | None) -> str:
    """``--device``: 'cpu', or GPU indices that exist here; the default is GPU 0 when there is one."""
    count = cuda_device_count()
    if device is None:
        return "0" if count else "cpu"
    if device.lower() in ("cpu", "mps"):
        return device.lower()
    indices = [d.strip().removeprefix("cuda:") for d in device.split(",")]
    if not all(i.isdigit() for i in indices):
        raise InputError(f"--device {device!r}: use cpu, or GPU indices such as 0 or 0,1")
    missing = [i for i in indices if int(i) >= count]
    if missing:
        raise InputError(
            f"--device {device!r}: GPU {', '.join(missing)} not found (this machine has {count} GPU(s)); use cpu"
            + (f" or 0..{count - 1}" if count else "")
        )
    return ",".join(indices)


@dataclass(frozen=True)
class SearchConfig:
    """Everything one ``ge-nas search`` run needs; the CLI and the Python API both build one."""

    space: SearchSpace
    data_yaml: Path
    objectives: Objectives
    proxy: ProxySettings
    trials: int
    study_name: str
    storage_url: str
    workdir: Path
    sampler: str = "tpe"
    pruner: str | optuna.pruners.BasePruner | ParetoPruner = "auto"  # a name, or a configured pruner
    seed: int = 0
    timeout: float | None = None
    constraints: dict[str, float] = field(default_factory=dict)  # cost name -> largest allowed value
    max_failures: int = 5
    verbose: bool = False
    workers: int = 1  # worker processes on this machine
    weights: Path | None = None  # a pretrained checkpoint of the base model to inherit from
    parent_epochs: int = 0  # or: train the base this many epochs once per study, and inherit from it

    def comparable_settings(self) -> dict[str, Any]:
        """What must not change when a study is resumed, or its results stop being comparable."""
        return {
            "space": self.space.fingerprint,
            "space_name": self.space.name,
            "proxy": {k: v for k, v in vars(self.proxy).items() if k not in ("device", "workers")},
            "constraints": dict(sorted(self.constraints.items())),
            "parent": self._parent_setting(),
            "fine_tune": fine_tune_recipe() if self.inherits else None,
        }

    @property
    def inherits(self) -> bool:
        """Whether candidates start from a parent's weights (given, or trained once per study)."""
        return self.weights is not None or self.parent_epochs > 0

    def _parent_setting(self) -> str:
        if self.weights is not None:
            return f"weights sha256:{file_sha256(self.weights)}"
        return f"trained {self.parent_epochs} epochs" if self.parent_epochs else "none (from scratch)"


@dataclass(frozen=True)
class TrialRow:
    """One finished trial, as the live view shows it."""

    number: int
    code: str
    state: str  # "complete", "reused", "infeasible", "pruned", "failed"
    accuracy: float | None
    costs: dict[str, float]
    seconds: float
    note: str = ""


class Reporter:
    """Receives progress; the CLI's live view subclasses it, the Python API stays silent."""

    def plan(self, text: str) -> None:
        """Called before the first trial with what the search will do (and what it does first)."""

    def trial(self, row: TrialRow, finished: int, total: int) -> None:
        """Called after each trial."""


def run_search(config: SearchConfig, reporter: Reporter | None = None) -> optuna.Study:
    """Run (or resume) the search until the study holds ``config.trials`` finished trials.

    With ``config.workers > 1`` the trials run in that many worker processes on the same
    study (each with its own GPU when ``--device`` lists several); this process prepares
    the study and reports the trials as they land.
    """
    reporter = reporter or Reporter()
    if not config.verbose:
        optuna.logging.set_verbosity(optuna.logging.ERROR)  # failures show in our rows, without tracebacks
    study = _open(config)
    if "dataset" not in study.user_attrs:  # where retrain finds the data again; not compared on resume
        study.set_user_attr("dataset", str(config.data_yaml))
    already = counted_trials(study.get_trials(deepcopy=False))
    reporter.plan(
        f"study {config.study_name!r}: {already} of {config.trials} trials done; "
        f"space {config.space.name} ({config.space.size:,} architectures); "
        f"proxy {config.proxy.epochs} epochs at {config.proxy.imgsz} px on {config.proxy.device}, "
        f"parent: {config.comparable_settings()['parent']}"
        + (f"; {config.workers} workers" if config.workers > 1 else "")
    )
    if already >= config.trials:
        return study
    with table_writer(config.storage_url) as tables:
        tables.refresh(study)  # brings studies made by older versions up to date
    orphaned = fail_orphaned_trials(study)
    if orphaned:
        reporter.plan(f"marked failed: trial(s) {', '.join(map(str, orphaned))}, whose worker was killed mid-trial")
    parent = ensure_parent(config, study, reporter)
    trials = study.get_trials(deepcopy=False)
    if not any(t.user_attrs.get("baseline") or t.state == TrialState.WAITING for t in trials):
        study.enqueue_trial(baseline_params(config.space))
    if config.workers == 1:
        run_worker(config, parent, reporter, study)
    else:
        _run_workers(config, parent, reporter, study)
    return study


def _open(config: SearchConfig) -> optuna.Study:
    optuna_pruner, _ = make_pruners(config.pruner, config.objectives, config.proxy.epochs, config.inherits)
    study = open_study(
        open_storage(config.storage_url), config.study_name, config.objectives, config.comparable_settings()
    )
    started = len(study.get_trials(deepcopy=False))
    seed = run_seed(config.seed, started) if started else config.seed
    study.sampler = make_sampler(config.sampler, seed, constrained=bool(config.constraints))
    study.pruner = optuna_pruner
    return study


def run_seed(seed: int, started: int) -> int:
    """The sampler seed of a run that resumes a study holding ``started`` trials.

    Seeding every run with ``--seed`` alone would make a resumed random (or NSGA-II) search
    draw the first run's architectures again, which are then only reused; mixing in the
    number of trials keeps each run reproducible and its draws fresh.
    """
    return int(np.random.SeedSequence([seed, started]).generate_state(1)[0])


def run_worker(
    config: SearchConfig, parent: Path | None, reporter: Reporter, study: optuna.Study | None = None
) -> None:
    """Run trials one at a time until the study is complete, the time is up, or trials keep failing.

    Trials start one at a time and each first checks that it is not surplus, so several
    workers on one study finish exactly ``config.trials`` trials between them.
    """
    study = study or _open(config)
    _, pareto_pruner = make_pruners(config.pruner, config.objectives, config.proxy.epochs, config.inherits)
    objective = _Objective(config, pareto_pruner, parent)
    deadline = time.monotonic() + config.timeout if config.timeout else math.inf
    with table_writer(config.storage_url) as tables:
        progress = _Progress(config, reporter, tables)
        while time.monotonic() < deadline and not progress.last_error:
            trials = study.get_trials(deepcopy=False)
            finished = counted_trials(trials)
            if finished >= config.trials or _exhausted(config, trials):
                break
            if finished + sum(t.state == TrialState.RUNNING for t in trials) >= config.trials:
                _reap(study)  # the last places are taken: wait for them to finish, or for a dead worker's to fail
                time.sleep(_TWIN_POLL_SECONDS)
                continue
            study.optimize(objective, n_trials=1, callbacks=[progress], catch=(Exception,), gc_after_trial=True)
    if progress.last_error:
        raise SearchFailed(
            f"stopped after {config.max_failures} failed trials in a row; last error: {progress.last_error} "
            "(fix the cause, or raise --max-failures)"
        )


def _exhausted(config: SearchConfig, trials: list[FrozenTrial]) -> bool:
    """The grid sampler has nothing left once every architecture of the space was evaluated."""
    if config.sampler != "grid":
        return False  # other samplers may draw a known architecture again; it is reused, and counts
    done = {t.user_attrs.get("key") for t in trials if t.state in (TrialState.COMPLETE, TrialState.PRUNED)}
    return len(done) >= config.space.size


def _run_workers(config: SearchConfig, parent: Path | None, reporter: Reporter, study: optuna.Study) -> None:
    """Start ``config.workers`` processes on the study and report its trials as they finish."""
    devices = config.proxy.device.split(",")
    context = multiprocessing.get_context("spawn")  # CUDA and threads do not survive fork
    processes = []
    for i in range(config.workers):
        proxy = dataclasses.replace(config.proxy, device=devices[i % len(devices)])
        worker_config = dataclasses.replace(config, proxy=proxy, workers=1, seed=config.seed + i)
        process = context.Process(target=_worker_process, args=(worker_config, parent), daemon=False)
        process.start()
        processes.append(process)
    shown: set[int] = set()
    try:
        while True:
            alive = any(p.is_alive() for p in processes)
            for trial in study.get_trials(deepcopy=False):
                if trial.number not in shown and trial.state.is_finished() and "surplus" not in trial.user_attrs:
                    shown.add(trial.number)
                    finished = counted_trials(study.get_trials(deepcopy=False))
                    reporter.trial(trial_row(trial, config.objectives), finished, config.trials)
            if not alive:
                break
            time.sleep(1.0)
    finally:
        for process in processes:
            process.join()
    if any(p.exitcode == _FAILED_EXIT for p in processes):
        raise SearchFailed(f"a worker stopped after {config.max_failures} failed trials in a row; see the rows above")


_FAILED_EXIT = 3


def _worker_process(config: SearchConfig, parent: Path | None) -> None:
    """Entry point of a worker process (spawned, so it imports ge_nas afresh)."""
    if not config.verbose:
        optuna.logging.set_verbosity(optuna.logging.ERROR)
    try:
        run_worker(config, parent, Reporter())
    except SearchFailed:
        raise SystemExit(_FAILED_EXIT) from None
    except KeyboardInterrupt:
        raise SystemExit(130) from None


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def ensure_parent(config: SearchConfig, study: optuna.Study, reporter: Reporter) -> Path | None:
    """The checkpoint candidates inherit from, recorded on the study (path and hash).

    With ``--weights`` it is the user's file. With ``--parent-epochs`` ge-nas trains the
    base once and keeps it beside the study, so a resumed study reuses it instead of
    training it again.
    """
    if config.weights is not None:
        parent = config.weights.resolve()
    elif config.parent_epochs:
        parent = (config.workdir / "parent.pt").resolve()
        stored = study.user_attrs.get("parent", {})
        if parent.is_file() and stored.get("sha256") == file_sha256(parent):
            return parent
        reporter.plan(f"training the parent (the base model) for {config.parent_epochs} epochs, once for this study")
        base_yaml = generate(config.space, Candidate.baseline()).write(config.workdir / "parent" / "model.yaml")
        trained = train_parent(base_yaml, config.data_yaml, config.proxy, config.parent_epochs, config.workdir)
        parent.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(trained, parent)
    else:
        return None
    study.set_user_attr("parent", {"path": str(parent), "sha256": file_sha256(parent)})
    return parent


def make_sampler(name: str, seed: int, constrained: bool) -> optuna.samplers.BaseSampler:
    """The Optuna sampler for ``--sampler``; budget constraints steer those that support them."""
    constraints = constraint_values if constrained else None
    if name == "tpe":
        return optuna.samplers.TPESampler(seed=seed, multivariate=True, group=True, constraints_func=constraints)
    if name == "nsga2":
        return optuna.samplers.NSGAIISampler(seed=seed, constraints_func=constraints)
    if name == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    if name == "gp":
        return optuna.samplers.GPSampler(seed=seed, constraints_func=constraints, warn_independent_sampling=False)
    if name == "grid":
        return optuna.samplers.BruteForceSampler(seed=seed)
    raise ValueError(f"unknown sampler {name!r}: use one of {', '.join(SAMPLERS)}")


def make_pruners(
    name: str | optuna.pruners.BasePruner | ParetoPruner, objectives: Objectives, epochs: int, inherited: bool = False
) -> tuple[optuna.pruners.BasePruner, ParetoPruner | None]:
    """Optuna's pruner (single objective) and/or ours (any number of objectives) for ``--pruner``.

    ``inherited``: candidates start from a trained parent's weights. Then every proxy starts
    near where the baseline's does and its first epoch is already informative, so pruning
    may start after epoch 1, against the baseline and one more completed trial. New GE units
    cost a candidate up to about 0.007 mAP at epoch 1 that it can more than win back (see
    benchmarks/RESULTS.md, pruning), so a 0.01 lead is still required. From scratch, early
    accuracies are noisy and often all 0: pruning waits an epoch and for 4 completed trials.
    The Python API may pass a configured pruner.
    """
    if isinstance(name, ParetoPruner):
        return optuna.pruners.NopPruner(), name
    if isinstance(name, optuna.pruners.BasePruner):
        if objectives.multi:
            raise ValueError("Optuna's pruners work in single-objective studies only; use a ParetoPruner")
        return name, None
    if name == "auto":
        name = "pareto" if objectives.multi else "median"
    if name in ("median", "hyperband") and objectives.multi:
        raise ValueError(
            f"--pruner {name} prunes single-objective studies only; with costs among the objectives use pareto or none"
        )
    warmup = 0 if inherited else 1
    if name == "median":
        return optuna.pruners.MedianPruner(n_startup_trials=4, n_warmup_steps=warmup), None
    if name == "hyperband":
        return optuna.pruners.HyperbandPruner(min_resource=1, max_resource=max(epochs, 1)), None
    if name == "pareto":
        if inherited:
            return optuna.pruners.NopPruner(), ParetoPruner(n_startup_trials=2, n_warmup_epochs=0, margin=0.01)
        return optuna.pruners.NopPruner(), ParetoPruner(n_startup_trials=4, n_warmup_epochs=1, margin=0.01)
    if name == "none":
        return optuna.pruners.NopPruner(), None
    raise ValueError(f"unknown pruner {name!r}: use one of {', '.join(PRUNERS)}")


def _use_param(index: int, alias: str) -> str:
    return f"{index}:{alias}"


def baseline_params(space: SearchSpace) -> dict[str, bool]:
    """The trial parameters that sample the baseline (no GE anywhere), for ``enqueue_trial``."""
    return {_use_param(p.index, p.alias): False for p in space.points}


def suggest_candidate(trial: Trial, space: SearchSpace) -> Candidate:
    """Sample one architecture: per point, whether it gets GE, and if so which choice.

    Points are offered in layer order; once ``max_units`` points have GE, later points
    are not sampled, so every sampled architecture is valid and none is wasted.
    """
    budget = space.max_units if space.max_units is not None else len(space.points)
    placements = {}
    for point in space.points:
        name = _use_param(point.index, point.alias)
        if len(placements) < budget and trial.suggest_categorical(name, [False, True]):
            label = trial.suggest_categorical(f"{name}:choice", [c.label for c in point.choices])
            placements[point.index] = next(c for c in point.choices if c.label == label)
    return Candidate.of(placements)


class _Surplus(Exception):
    """A trial started after the requested count was already reached by other workers."""


_TWIN_POLL_SECONDS = 2.0


def _reap(study: optuna.Study) -> None:
    """Fail the trials of dead workers: on this machine at once, elsewhere after their heartbeat lapses."""
    fail_orphaned_trials(study)
    optuna.storages.fail_stale_trials(study)


class _Objective:
    """The function Optuna calls for each trial."""

    def __init__(self, config: SearchConfig, pareto_pruner: ParetoPruner | None, parent: Path | None) -> None:
        self.config = config
        self.pareto_pruner = pareto_pruner
        self.space = config.space
        self.baseline_model = build_model(generate(self.space, Candidate.baseline()).model)
        self.parent_state = load_parent_state(parent) if parent is not None else None

    def __call__(self, trial: Trial) -> list[float] | float:
        """Evaluate one trial; a failure or Ctrl-C is recorded on the trial before it propagates."""
        try:
            return self._evaluate(trial)
        except (optuna.TrialPruned, _Surplus):
            raise
        except KeyboardInterrupt:
            trial.set_user_attr("error", "interrupted (Ctrl-C)")
            raise
        except Exception as error:
            trial.set_user_attr("error", f"{type(error).__name__}: {error}"[:2000])
            raise

    def _evaluate(self, trial: Trial) -> list[float] | float:
        trial.set_user_attr("worker", worker_id())
        self._check_not_surplus(trial)
        candidate = suggest_candidate(trial, self.space)
        trial.set_user_attr("key", candidate.key)
        trial.set_user_attr("code", candidate.code)
        trial.set_user_attr("units", candidate.units)
        trial.set_user_attr("baseline", candidate.units == 0)
        previous = self._evaluation_of(trial, candidate.key)
        if previous is not None:
            return self._reuse(trial, previous)
        generated = generate(self.space, candidate)
        trial.set_user_attr("yaml", generated.text)
        cost = measure_cost(
            build_model(generated.model), self.baseline_model, self.config.proxy.imgsz, self.config.proxy.device
        )
        trial.set_user_attr("params", cost.params)
        trial.set_user_attr("gflops", cost.gflops)
        trial.set_user_attr("latency_ms", cost.latency_ms)
        trial.set_user_attr("latency_ratio", cost.latency_ratio)
        violations = {name: cost.value(name) - limit for name, limit in self.config.constraints.items()}
        trial.set_user_attr("constraints", list(violations.values()))
        over = [
            f"{name} {cost.value(name):.4g} > {self.config.constraints[name]:.4g}"
            for name, v in violations.items()
            if v > 0
        ]
        if over:
            trial.set_user_attr("infeasible", "over budget: " + ", ".join(over))
            return self._values(0.0, cost)
        workdir = self.config.workdir / f"trial-{trial.number:05d}"
        model_yaml = generated.write(workdir / "model.yaml")
        start = time.perf_counter()
        history = train_proxy(
            model_yaml,
            self.config.data_yaml,
            self.config.proxy,
            workdir,
            on_epoch=self._epoch_callback(trial, cost),
            verbose=self.config.verbose,
            inheritance=Inheritance(self.parent_state, generated.index_map) if self.parent_state else None,
        )
        trial.set_user_attr("train_seconds", time.perf_counter() - start)
        for name, value in history[-1].items():
            trial.set_user_attr(name, value)
        return self._values(history[-1][self.config.objectives.accuracy], cost)

    def _check_not_surplus(self, trial: Trial) -> None:
        """Fail this trial at once if earlier trials already fill the requested count.

        Workers start trials independently; ordering by trial number decides which of
        them take the last places, so the study ends with exactly ``--trials`` trials.
        """
        ahead = [
            t
            for t in trial.study.get_trials(deepcopy=False)
            if t.number < trial.number and t.state in (TrialState.COMPLETE, TrialState.PRUNED, TrialState.RUNNING)
        ]
        if len(ahead) >= self.config.trials:
            trial.set_user_attr("surplus", True)
            raise _Surplus(f"the study already has {self.config.trials} trials finished or running")

    def _evaluation_of(self, trial: Trial, key: str) -> FrozenTrial | None:
        """The earlier evaluation of ``key``, waiting for one that another worker is running now.

        Only the lowest-numbered trial of an architecture trains it; a later one waits and
        reuses its result (or trains after all, if that trial fails).
        """
        while True:
            trials = trial.study.get_trials(deepcopy=False)
            previous = evaluated_trial(trials, key)
            twin_running = any(
                t.number < trial.number and t.state == TrialState.RUNNING and t.user_attrs.get("key") == key
                for t in trials
            )
            if previous is not None or not twin_running:
                return previous
            _reap(trial.study)
            time.sleep(_TWIN_POLL_SECONDS)

    def _values(self, accuracy: float, cost: Cost) -> list[float] | float:
        if not self.config.objectives.multi:
            return accuracy
        return [accuracy, *(cost.value(name) for name in self.config.objectives.costs)]

    def _reuse(self, trial: Trial, previous: FrozenTrial) -> list[float] | float:
        """Copy an earlier evaluation of the same architecture instead of training it again."""
        for name, value in previous.user_attrs.items():
            if name not in ("key", "code", "units", "baseline", "worker"):
                trial.set_user_attr(name, value)
        trial.set_user_attr("reused_from", previous.number)
        if previous.state == TrialState.PRUNED:
            raise optuna.TrialPruned(f"same architecture as trial {previous.number}, which was pruned")
        return previous.values if self.config.objectives.multi else previous.value

    def _epoch_callback(self, trial: Trial, cost: Cost) -> Callable[[int, dict[str, float]], None]:
        epochs: list[dict[str, float]] = []
        accuracy_name = self.config.objectives.accuracy
        costs = [cost.value(name) for name in self.config.objectives.costs]

        def on_epoch(epoch: int, metrics: dict[str, float]) -> None:
            epochs.append({"epoch": epoch, **metrics})
            trial.set_user_attr("epochs", epochs)  # stored every epoch, so a crash keeps the curve
            if epoch >= self.config.proxy.epochs:
                return
            accuracy = metrics[accuracy_name]
            reason = None
            if self.pareto_pruner is not None:
                decision = self.pareto_pruner.decide(epoch, accuracy, costs, self._histories(trial))
                reason = decision.reason if decision else None
            elif not self.config.objectives.multi:
                trial.report(accuracy, epoch)
                if trial.should_prune():
                    reason = f"{type(trial.study.pruner).__name__} at epoch {epoch}: {accuracy_name} {accuracy:.4f}"
            if reason:
                trial.set_user_attr("pruned_epoch", epoch)
                trial.set_user_attr("prune_reason", reason)
                raise optuna.TrialPruned(reason)

        return on_epoch

    def _histories(self, trial: Trial) -> list[TrialHistory]:
        """Per-epoch accuracy and costs of the trials that trained to the end."""
        histories = []
        for t in trial.study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)):
            if "reused_from" in t.user_attrs or "infeasible" in t.user_attrs or "epochs" not in t.user_attrs:
                continue
            accuracies = tuple(e[self.config.objectives.accuracy] for e in t.user_attrs["epochs"])
            costs = tuple(t.values[1:])
            histories.append(TrialHistory(t.number, accuracies, costs))
        return histories


class _Progress:
    """Optuna callback: report each trial, refresh the tables, count failures in a row."""

    def __init__(self, config: SearchConfig, reporter: Reporter, tables: TableWriter) -> None:
        self.config = config
        self.reporter = reporter
        self.tables = tables
        self.failures = 0
        self.last_error = ""

    def __call__(self, study: optuna.Study, trial: FrozenTrial) -> None:
        if "surplus" in trial.user_attrs:  # another worker took the last place: not a result, not a failure
            return
        finished = counted_trials(study.get_trials(deepcopy=False))
        self.reporter.trial(trial_row(trial, self.config.objectives), finished, self.config.trials)
        try:
            self.tables.refresh(study)  # the open study: only new trials are read
        except Exception as error:  # the tables are a view; a failed refresh must not end a long search
            self.reporter.plan(f"warning: could not refresh the ge_nas_* tables: {error}")
        self.failures = self.failures + 1 if trial.state == TrialState.FAIL else 0
        if self.failures >= self.config.max_failures:
            self.last_error = trial.user_attrs.get("error", "unknown error")


def trial_row(trial: FrozenTrial, objectives: Objectives) -> TrialRow:
    """How a stored trial reads in the live view and in summaries."""
    attrs = trial.user_attrs
    if trial.state == TrialState.FAIL:
        state, note = "failed", attrs.get("error", "")
    elif trial.state == TrialState.PRUNED:
        state, note = "pruned", attrs.get("prune_reason", "")
    elif "infeasible" in attrs:
        state, note = "infeasible", attrs["infeasible"]
    elif "reused_from" in attrs:
        state, note = "reused", f"same architecture as trial {attrs['reused_from']}"
    else:
        state, note = "complete", ""
    epochs = attrs.get("epochs", [])
    accuracy = epochs[-1][objectives.accuracy] if epochs else None
    costs = {
        name: attrs[key]
        for name, key in (("gflops", "gflops"), ("params", "params"), ("latency", "latency_ms"))
        if key in attrs
    }
    seconds = (trial.datetime_complete - trial.datetime_start).total_seconds() if trial.datetime_complete else 0.0
    return TrialRow(trial.number, attrs.get("code", "?"), state, accuracy, costs, seconds, note)
