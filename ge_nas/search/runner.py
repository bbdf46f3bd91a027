"""Running a search: open or resume its study, train the parent once, run trials until enough are done.

Trials run in this process, or in several worker processes on the same study; each
worker starts trials one at a time and checks first that the study still needs one, so
workers (also on other machines, sharing a database) finish exactly ``--trials`` trials
between them. A :class:`Reporter` hears of every finished trial as a :class:`TrialRecord`.
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
import multiprocessing
import multiprocessing.process
import os
import shutil
import signal
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import optuna
from optuna.trial import FrozenTrial

from ge_nas.data.user_dataset import class_count
from ge_nas.interrupts import interrupts_recorded, pause, raise_if_interrupted
from ge_nas.ranking.fronts import Ranking, rank
from ge_nas.ranking.tables import TableWriter, table_writer
from ge_nas.search.config import SearchConfig, file_sha256
from ge_nas.search.confirmation import confirmation_runs, done_or_coming, enqueue, noise_runs
from ge_nas.search.objective import TWIN_POLL_SECONDS, Objective
from ge_nas.search.pruning import ProxyPruner, make_pruner
from ge_nas.search.sampling import make_sampler, run_seed
from ge_nas.space.candidate import Candidate
from ge_nas.space.model_yaml import generate_model_yaml
from ge_nas.storage.database import open_storage
from ge_nas.storage.records import Stage, Status, TrialRecord, counted, read_record, read_records
from ge_nas.storage.studies import PARENT, SUPERNET, open_study, record_checkpoint, record_dataset, stored_checkpoint
from ge_nas.storage.workers import GRACE_SECONDS, Worker
from ge_nas.yolo.devices import devices_of
from ge_nas.yolo.inheritance import check_parent, load_parent_state
from ge_nas.yolo.supernet import train_space_supernet
from ge_nas.yolo.training import train_parent

__all__ = ["Reporter", "SearchFailed", "ensure_parent", "ensure_supernet", "run_search", "run_worker"]

# A worker process's exit status after --max-failures failed trials in a row.
_FAILED_EXIT = 3
# A supernet search stops exploring once its sampler has re-proposed scored architectures this many
# times per trial asked (each re-proposal is free, but a sampler stuck on a few would never end).
REPROPOSALS_PER_TRIAL = 10
# How long interrupted worker processes get to mark their trials failed and exit.
_STOP_SECONDS = 60.0


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
    the study and reports the trials as they land. SIGTERM stops the search as Ctrl-C does
    (``KeyboardInterrupt``): running trials are marked failed, worker processes included. An
    interrupt is never lost (see :mod:`ge_nas.interrupts`).

    Raises:
        InputError: bad input, found before the study is created or changed.
        SearchFailed: trials kept failing.
    """
    reporter = reporter or Reporter()
    if not config.verbose:
        optuna.logging.set_verbosity(optuna.logging.ERROR)  # failures show in our rows, without tracebacks
    with interrupts_recorded():
        parent_note = _check_parent(config)
        settings = config.comparable_settings()
        study = _open(config, settings)
        record_dataset(study, str(config.data_yaml))
        records = read_records(study)
        already = counted(records)
        reporter.plan(
            f"study {config.study_name!r}: {already} of {config.trials} trials done; "
            f"space {config.space.name} ({config.space.size:,} architectures); "
            f"proxy {config.proxy.epochs} epochs at {config.proxy.imgsz} px on {config.proxy.device}"
            + ("" if config.proxy.mosaic else ", mosaic off")
            + f", parent: {settings['parent']}"
            + (f"; strategy supernet ({config.supernet.epochs} epochs)" if config.uses_supernet else "")
            + (f"; {config.workers} workers" if config.workers > 1 else "")
        )
        if parent_note:
            reporter.plan(parent_note)
        if not _work_left(config, records):
            _note_exploration(config, records, reporter)
            return study
        reporter.plan(_cost_plan(config))
        with table_writer(config.storage_url) as tables:
            tables.refresh(study)  # brings studies made by older versions up to date
        with Worker(config.storage_url, config.study_name) as worker:
            stale = worker.fail_stale_trials(study)
            if stale:
                reporter.plan("marked failed: " + "; ".join(f"trial {t.number}, as {t.reason}" for t in stale))
            parent = ensure_parent(config, study, reporter, worker)
            ensure_supernet(config, study, reporter, worker, parent)
            enqueue(study, config, read_records(study), noise_runs(config))
            if config.workers == 1:
                run_worker(config, parent, reporter, study, worker)
            else:
                _run_workers(config, parent, reporter, study)
        _note_exploration(config, read_records(study), reporter)
    return study


def run_worker(
    config: SearchConfig,
    parent: Path | None,
    reporter: Reporter,
    study: optuna.Study | None = None,
    worker: Worker | None = None,
) -> None:
    """Run trials one at a time until the study is complete, the time is up, or trials keep failing."""
    study = study or _open(config, config.comparable_settings())
    with contextlib.ExitStack() as stack:
        worker = worker or stack.enter_context(Worker(config.storage_url, config.study_name))
        objective = Objective(config, _pruner(config), parent, worker)
        deadline = time.monotonic() + config.timeout if config.timeout else math.inf
        tables = stack.enter_context(table_writer(config.storage_url))
        progress = _Progress(config, reporter, tables)
        waiting_for: set[int] = set()
        while time.monotonic() < deadline and not progress.last_error:
            raise_if_interrupted()
            records = read_records(study)
            if _exploring(config, records):
                if not _last_places_taken(config, records):
                    study.optimize(objective, n_trials=1, callbacks=[progress], catch=(Exception,), gc_after_trial=True)
                    continue
            else:
                # Confirmation: a round of further seeds for the front's undecided candidates.
                enqueue(study, config, records, confirmation_runs(_rank(config, records), config))
                records = read_records(study)
                if any(record.status == Status.WAITING for record in records):
                    study.optimize(objective, n_trials=1, callbacks=[progress], catch=(Exception,), gc_after_trial=True)
                    continue
                if not any(record.status == Status.RUNNING for record in records):
                    break  # nothing queued, nothing running: the search is done
            # Others' trials decide what comes next: wait for them, or for a dead worker's trial to be failed.
            worker.fail_stale_trials(study)
            unowned = set(worker.unowned_running(study)) - waiting_for
            if unowned:
                waiting_for |= unowned
                reporter.plan(
                    f"waiting for trial(s) {', '.join(map(str, sorted(unowned)))}: running, but no ge-nas worker "
                    f"owns them (made by Optuna directly?); they count as failed after {GRACE_SECONDS:g} s"
                )
            time.sleep(TWIN_POLL_SECONDS)
    if progress.last_error:
        raise SearchFailed(
            f"stopped after {config.max_failures} failed trials in a row; last error: {progress.last_error} "
            "(fix the cause, or raise --max-failures)"
        )


def ensure_parent(config: SearchConfig, study: optuna.Study, reporter: Reporter, worker: Worker) -> Path | None:
    """The checkpoint candidates inherit from, recorded on the study (path and hash).

    With ``--weights`` it is the user's file. With ``--parent-epochs`` ge-nas trains the
    base once and keeps it beside the study, so a resumed study reuses it instead of
    training it again; the worker that claims the parent trains it, the others wait.
    """
    if config.weights is not None:
        parent = config.weights.resolve()
        record_checkpoint(study, PARENT, str(parent), file_sha256(parent))
        return parent
    if not config.parent_epochs:
        return None
    how_long = (
        f"until its validation mAP stops improving ({config.parent_patience} epochs' patience, "
        f"at most {config.parent_epochs} epochs)"
        if config.parent_patience
        else f"for {config.parent_epochs} epochs"
    )

    def train() -> Path:
        base_yaml = generate_model_yaml(config.space, Candidate.baseline()).write(
            config.workdir / "parent" / "model.yaml"
        )
        return train_parent(
            base_yaml, config.data_yaml, config.proxy, config.parent_epochs, config.workdir, config.parent_patience
        )

    announce = f"training the parent (the base model) {how_long}, once for this study"
    return _trained_once(study, reporter, worker, PARENT, (config.workdir / "parent.pt").resolve(), announce, train)


def ensure_supernet(
    config: SearchConfig, study: optuna.Study, reporter: Reporter, worker: Worker, parent: Path | None
) -> Path | None:
    """The study's trained supernet (``--strategy supernet``), trained once from the parent and recorded on the study.

    Its run keeps a checkpoint after every epoch in the study's folder, so a search stopped
    while it trains resumes it there.
    """
    if not config.uses_supernet or parent is None:
        return None

    def train() -> Path:
        state = load_parent_state(parent)
        return train_space_supernet(
            config.space, config.data_yaml, config.proxy, config.supernet.epochs, config.workdir, state
        )

    announce = (
        f"training the supernet ({config.supernet.epochs} epochs, one sampled path per batch), once for this study"
        + (", resuming its last epoch" if (config.workdir / "supernet" / "weights" / "last.pt").is_file() else "")
    )
    return _trained_once(study, reporter, worker, SUPERNET, config.supernet_path.resolve(), announce, train)


def _trained_once(
    study: optuna.Study,
    reporter: Reporter,
    worker: Worker,
    which: str,
    path: Path,
    announce: str,
    train: Callable[[], Path],
) -> Path:
    """A study's ``which`` checkpoint at ``path``: trained by the worker that claims it while the others wait."""
    announced = False
    while True:
        if path.is_file() and stored_checkpoint(study, which).get("sha256") == file_sha256(path):
            return path
        holder = worker.claim(which)
        if holder.worker_id == worker.id or (worker.claim_is_stale(holder, None) and worker.take_over(which, holder)):
            break
        if not announced:
            reporter.plan(f"another worker is training this study's {which}; waiting for it")
            announced = True
        pause(TWIN_POLL_SECONDS)
    reporter.plan(announce)
    trained = train()
    path.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(trained, path)
    record_checkpoint(study, which, str(path), file_sha256(path))
    return path


def _check_parent(config: SearchConfig) -> str:
    """Refuse ``--weights`` that do not fit the space's base, before the study is touched; the note to print."""
    if config.weights is None:
        return ""
    fit = check_parent(config.weights, config.space.base, config.space.base_name, class_count(config.data_yaml))
    return fit.note


def _exploring(config: SearchConfig, records: list[TrialRecord]) -> bool:
    """Whether exploring trials are still wanted: fewer than ``--trials`` counted, and the space not exhausted."""
    return counted(records) < config.trials and not _exhausted(config, records)


def _last_places_taken(config: SearchConfig, records: list[TrialRecord]) -> bool:
    running = sum(record.status == Status.RUNNING and record.stage == Stage.EXPLORE for record in records)
    return counted(records) + running >= config.trials


def _work_left(config: SearchConfig, records: list[TrialRecord]) -> bool:
    """Exploring trials, queued or running trials, or another round of confirmation."""
    if _exploring(config, records) or any(r.status in (Status.WAITING, Status.RUNNING) for r in records):
        return True
    wanted = [*noise_runs(config), *confirmation_runs(_rank(config, records), config)]
    return any(not done_or_coming(records, run, finished_only=True) for run in wanted)


def _rank(config: SearchConfig, records: list[TrialRecord]) -> Ranking:
    return rank(records, config.objectives.names, config.objectives.directions)


def _cost_plan(config: SearchConfig) -> str:
    """What the search will train, in runs and epochs, before any timing is known."""
    parts = []
    if config.parent_epochs and config.weights is None:
        at_most = "up to " if config.parent_patience else ""
        parts.append(f"a parent of {at_most}{config.parent_epochs} epochs (once)")
    if config.uses_supernet:  # the baseline's supernet score runs first, then its proxies (all seeds: the noise floor)
        parts.append(f"a supernet of {config.supernet.epochs} epochs (once)")
        parts.append(f"the baseline with {config.baseline_seeds} proxy seeds (the noise floor)")
        parts.append(
            f"{config.trials} distinct candidates scored by the supernet (the baseline's score among them; "
            "one proposed again is reused and does not count)"
        )
    else:
        if config.baseline_seeds > 1:
            parts.append(f"the baseline with {config.baseline_seeds} seeds (the noise floor)")
        parts.append(
            f"{config.trials} exploring trials of up to {config.proxy.epochs} epochs "
            "(the baseline's first seed among them)"
        )
    if config.confirm and (config.max_seeds > 1 or config.uses_supernet):  # a supernet's front has no proxy yet
        seeds = "proxy seeds" if config.uses_supernet else "more seeds"
        parts.append(
            f"confirmation: the front's {config.confirm} most promising candidates at a time get {seeds}, "
            f"up to {config.max_seeds} each, while their gain is undecided and they stay on the front"
        )
    return "plan: " + ", then ".join(parts)


def _open(config: SearchConfig, settings: dict[str, Any]) -> optuna.Study:
    """The study (created, or resumed with the same ``settings``), with a sampler seeded for this run."""
    study = open_study(
        open_storage(config.storage_url),
        config.study_name,
        config.objectives.names,
        config.objectives.directions,
        settings,
    )
    seed = run_seed(config.seed, len(study.get_trials(deepcopy=False)))
    study.sampler = make_sampler(config.sampler, seed, constrained=bool(config.constraints))
    study.pruner = _pruner(config).optuna_pruner
    return study


def _pruner(config: SearchConfig) -> ProxyPruner:
    return make_pruner(config.pruner, config.objectives, config.proxy.epochs, config.inherits)


def _exhausted(config: SearchConfig, records: list[TrialRecord]) -> bool:
    """Nothing left to explore: every architecture of the space evaluated (the grid sampler, or a
    supernet search, which counts distinct architectures), or a supernet search's sampler
    re-proposing known architectures :data:`REPROPOSALS_PER_TRIAL` times per requested trial.
    """
    if config.sampler != "grid" and not config.uses_supernet:
        return False  # other samplers may draw a known architecture again; it is reused, and counts
    if len({record.key for record in records if record.counts}) >= config.space.size:
        return True
    return config.uses_supernet and _reproposals(records) >= REPROPOSALS_PER_TRIAL * config.trials


def _reproposals(records: list[TrialRecord]) -> int:
    """Exploring trials that drew an architecture evaluated before (reused, not evaluated again)."""
    return sum(record.explored and record.status == Status.REUSED for record in records)


def _note_exploration(config: SearchConfig, records: list[TrialRecord], reporter: Reporter) -> None:
    """Say why a supernet search explored fewer distinct architectures than ``--trials``, if it did."""
    scored = counted(records)
    if not config.uses_supernet or scored >= config.trials or not _exhausted(config, records):
        return  # all asked for were scored, or the search stopped for another reason (--timeout)
    if scored >= config.space.size:
        reporter.plan(f"exploring stopped at {scored} distinct architectures: the space has no more")
    else:
        reporter.plan(
            f"exploring stopped at {scored} distinct architectures of the {config.trials} asked: the sampler "
            f"proposed scored ones again {_reproposals(records)} times ({REPROPOSALS_PER_TRIAL} per trial asked); "
            "try another --sampler or --seed"
        )


def _run_workers(config: SearchConfig, parent: Path | None, reporter: Reporter, study: optuna.Study) -> None:
    """Start ``config.workers`` processes on the study and report its trials as they finish.

    Interrupted (Ctrl-C or SIGTERM), it interrupts every worker, which marks its running
    trial failed, and waits for them; a worker that does not stop within
    :data:`_STOP_SECONDS` is killed (its trial is then failed by the next run).
    """
    devices = devices_of(config.proxy.device)
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
            alive = any([p.is_alive() for p in processes])  # every one polled: a dead one is reaped, no zombie
            records = read_records(study)
            for record in records:
                finished_now = record.status not in (Status.RUNNING, Status.WAITING, Status.SURPLUS)
                if record.number not in shown and finished_now:
                    shown.add(record.number)
                    reporter.trial(record, counted(records), config.trials)
            if not alive:
                break
            pause(1.0)
    except KeyboardInterrupt:
        _stop(processes)
        raise
    finally:
        for process in processes:
            process.join()
    if any(p.exitcode == _FAILED_EXIT for p in processes):
        raise SearchFailed(f"a worker stopped after {config.max_failures} failed trials in a row; see the rows above")
    crashed = [p for p in processes if p.exitcode != 0]
    if crashed:  # the others may have finished the study, but a lost worker is not a success
        raise SearchFailed(
            "; ".join(f"worker process {p.pid} ended with {_exit_reason(p.exitcode)}" for p in crashed)
            + " (its error, if any, is printed above); every finished trial is kept: run the same command to resume"
        )


def _exit_reason(exitcode: int | None) -> str:
    """A worker's exit code in words: a negative one is the signal that ended it."""
    if exitcode is not None and exitcode < 0:
        return f"signal {signal.Signals(-exitcode).name} (killed?)"
    return f"exit status {exitcode}"


def _stop(processes: list[multiprocessing.process.BaseProcess]) -> None:
    """Interrupt every worker (each fails its running trial), then kill what is still running."""
    for process in processes:
        if process.is_alive() and process.pid is not None:
            os.kill(process.pid, signal.SIGINT)
    deadline = time.monotonic() + _STOP_SECONDS
    for process in processes:
        process.join(max(0.0, deadline - time.monotonic()))
        if process.is_alive():
            process.kill()


def _worker_process(config: SearchConfig, parent: Path | None) -> None:
    """Entry point of a worker process (spawned, so it imports ge_nas afresh)."""
    if not config.verbose:
        optuna.logging.set_verbosity(optuna.logging.ERROR)
    try:
        with interrupts_recorded():
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
