"""Running a search: open or resume its study, train the parent once, run trials until enough are done.

Trials run in this process, or in several worker processes on the same study; each
worker starts trials one at a time and checks first that the study still needs one, so
workers (also on other machines, sharing a database) finish exactly ``--trials`` trials
between them. A :class:`Reporter` hears of every finished trial as a :class:`TrialRecord`.
"""

from __future__ import annotations

import dataclasses
import math
import multiprocessing
import shutil
import time
from pathlib import Path

import optuna
from optuna.trial import FrozenTrial

from ge_nas.ranking.tables import TableWriter, table_writer
from ge_nas.search.config import SearchConfig, file_sha256
from ge_nas.search.objective import TWIN_POLL_SECONDS, Objective
from ge_nas.search.pruning import ProxyPruner, make_pruner
from ge_nas.search.sampling import baseline_params, make_sampler, run_seed
from ge_nas.space.candidate import Candidate
from ge_nas.space.model_yaml import generate_model_yaml
from ge_nas.storage.database import open_storage
from ge_nas.storage.records import Status, TrialRecord, counted, read_record, read_records
from ge_nas.storage.studies import open_study, record_dataset, record_parent, stored_parent
from ge_nas.storage.workers import fail_orphaned_trials, fail_stale_trials
from ge_nas.yolo.training import train_parent

__all__ = ["Reporter", "SearchFailed", "ensure_parent", "run_search", "run_worker"]

# A worker process's exit status after --max-failures failed trials in a row.
_FAILED_EXIT = 3


class SearchFailed(RuntimeError):
    """Trials kept failing; the study keeps every finished trial."""


class Reporter:
    """Receives progress; the CLI's live view subclasses it, the Python API stays silent."""

    def plan(self, text: str) -> None:
        """Called before the first trial with what the search will do (and what it does first)."""

    def trial(self, record: TrialRecord, finished: int, total: int) -> None:
        """Called after each trial, with how many of the ``total`` count as done."""


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
    record_dataset(study, str(config.data_yaml))
    already = counted(read_records(study))
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
    records = read_records(study)
    if not any(record.baseline or record.status == Status.WAITING for record in records):
        study.enqueue_trial(baseline_params(config.space))
    if config.workers == 1:
        run_worker(config, parent, reporter, study)
    else:
        _run_workers(config, parent, reporter, study)
    return study


def run_worker(
    config: SearchConfig, parent: Path | None, reporter: Reporter, study: optuna.Study | None = None
) -> None:
    """Run trials one at a time until the study is complete, the time is up, or trials keep failing."""
    study = study or _open(config)
    objective = Objective(config, _pruner(config), parent)
    deadline = time.monotonic() + config.timeout if config.timeout else math.inf
    with table_writer(config.storage_url) as tables:
        progress = _Progress(config, reporter, tables)
        while time.monotonic() < deadline and not progress.last_error:
            records = read_records(study)
            finished = counted(records)
            if finished >= config.trials or _exhausted(config, records):
                break
            if finished + sum(record.status == Status.RUNNING for record in records) >= config.trials:
                fail_stale_trials(study)  # the last places are taken: wait for them, or for a dead worker's to fail
                time.sleep(TWIN_POLL_SECONDS)
                continue
            study.optimize(objective, n_trials=1, callbacks=[progress], catch=(Exception,), gc_after_trial=True)
    if progress.last_error:
        raise SearchFailed(
            f"stopped after {config.max_failures} failed trials in a row; last error: {progress.last_error} "
            "(fix the cause, or raise --max-failures)"
        )


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
        if parent.is_file() and stored_parent(study).get("sha256") == file_sha256(parent):
            return parent
        reporter.plan(f"training the parent (the base model) for {config.parent_epochs} epochs, once for this study")
        base_yaml = generate_model_yaml(config.space, Candidate.baseline()).write(
            config.workdir / "parent" / "model.yaml"
        )
        trained = train_parent(base_yaml, config.data_yaml, config.proxy, config.parent_epochs, config.workdir)
        parent.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(trained, parent)
    else:
        return None
    record_parent(study, str(parent), file_sha256(parent))
    return parent


def _open(config: SearchConfig) -> optuna.Study:
    """The study, with a sampler seeded for this run and the pruner Optuna's pruning reads."""
    study = open_study(
        open_storage(config.storage_url),
        config.study_name,
        config.objectives.names,
        config.objectives.directions,
        config.comparable_settings(),
    )
    seed = run_seed(config.seed, len(study.get_trials(deepcopy=False)))
    study.sampler = make_sampler(config.sampler, seed, constrained=bool(config.constraints))
    study.pruner = _pruner(config).optuna_pruner
    return study


def _pruner(config: SearchConfig) -> ProxyPruner:
    return make_pruner(config.pruner, config.objectives, config.proxy.epochs, config.inherits)


def _exhausted(config: SearchConfig, records: list[TrialRecord]) -> bool:
    """The grid sampler has nothing left once every architecture of the space was evaluated."""
    if config.sampler != "grid":
        return False  # other samplers may draw a known architecture again; it is reused, and counts
    return len({record.key for record in records if record.counts}) >= config.space.size


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
            records = read_records(study)
            for record in records:
                finished_now = record.status not in (Status.RUNNING, Status.WAITING, Status.SURPLUS)
                if record.number not in shown and finished_now:
                    shown.add(record.number)
                    reporter.trial(record, counted(read_records(study)), config.trials)
            if not alive:
                break
            time.sleep(1.0)
    finally:
        for process in processes:
            process.join()
    if any(p.exitcode == _FAILED_EXIT for p in processes):
        raise SearchFailed(f"a worker stopped after {config.max_failures} failed trials in a row; see the rows above")


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


class _Progress:
    """Optuna callback: report each trial, refresh the tables, count failures in a row."""

    def __init__(self, config: SearchConfig, reporter: Reporter, tables: TableWriter) -> None:
        self.config = config
        self.reporter = reporter
        self.tables = tables
        self.failures = 0
        self.last_error = ""

    def __call__(self, study: optuna.Study, trial: FrozenTrial) -> None:
        record = read_record(trial)
        if record.status == Status.SURPLUS:  # another worker took the last place: not a result, not a failure
            return
        self.reporter.trial(record, counted(read_records(study)), self.config.trials)
        try:
            self.tables.refresh(study)  # the open study: only new trials are read
        except Exception as error:  # the tables are a view; a failed refresh must not end a long search
            self.reporter.plan(f"warning: could not refresh the ge_nas_* tables: {error}")
        self.failures = self.failures + 1 if record.status == Status.FAILED else 0
        if self.failures >= self.config.max_failures:
            self.last_error = record.error or "unknown error"
