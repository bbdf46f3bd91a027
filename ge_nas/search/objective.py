"""One trial of a search: sample a candidate, cost it, train its proxy, and record everything.

Each trial:

1. samples one choice per insertion point (the baseline, no GE, is always trial 0);
2. reuses the stored result if the study already evaluated that architecture;
3. generates its model YAML and measures params, GFLOPs, latency (against the baseline,
   in the study's ``--latency-backend``) and peak memory;
4. is recorded as infeasible, untrained, when a cost is over a ``--max-*`` budget;
5. trains the proxy, recording every epoch's validation metrics, and stops early when
   the pruner says so (see :mod:`ge_nas.search.pruning`);
6. reports accuracy and costs as the study's objectives.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import optuna
from optuna.trial import Trial

from ge_nas.search.config import SearchConfig
from ge_nas.search.pruning import ProxyPruner
from ge_nas.search.sampling import suggest_candidate
from ge_nas.space.candidate import Candidate
from ge_nas.space.model_yaml import generate_model_yaml
from ge_nas.storage.records import (
    Status,
    TrialRecord,
    TrialWriter,
    cost_value,
    evaluation_of,
    read_records,
)
from ge_nas.storage.workers import fail_stale_trials, worker_id
from ge_nas.yolo.costs import Cost, CostMeter
from ge_nas.yolo.inheritance import Inheritance, load_parent_state
from ge_nas.yolo.model_files import build_model
from ge_nas.yolo.training import train_proxy

__all__ = ["TWIN_POLL_SECONDS", "Objective", "Surplus"]

# How often a trial waiting for another worker (running the same architecture, or the last places) looks again.
TWIN_POLL_SECONDS = 2.0


class Surplus(Exception):
    """A trial started after the requested count was already reached by other workers."""


class Objective:
    """The function Optuna calls for each trial."""

    def __init__(self, config: SearchConfig, pruner: ProxyPruner, parent: Path | None) -> None:
        self.config = config
        self.pruner = pruner
        self.space = config.space
        self.costs = CostMeter(
            build_model(generate_model_yaml(self.space, Candidate.baseline()).model),
            config.proxy.imgsz,
            config.proxy.device,
            config.latency_backend,
            config.exports,
            config.keep_exports,
        )
        self.parent_state = load_parent_state(parent) if parent is not None else None

    def __call__(self, trial: Trial) -> list[float] | float:
        """Evaluate one trial; a failure or Ctrl-C is recorded on the trial before it propagates."""
        writer = TrialWriter(trial)
        try:
            return self._evaluate(trial, writer)
        except (optuna.TrialPruned, Surplus):
            raise
        except KeyboardInterrupt:
            writer.failed("interrupted (Ctrl-C)")
            raise
        except Exception as error:
            writer.failed(f"{type(error).__name__}: {error}")
            raise

    def _evaluate(self, trial: Trial, writer: TrialWriter) -> list[float] | float:
        writer.started(worker_id())
        self._check_not_surplus(trial, writer)
        candidate = suggest_candidate(trial, self.space)
        writer.sampled(candidate.key, candidate.code, candidate.units)
        previous = self._evaluation_of(trial, candidate.key)
        if previous is not None:
            return self._reuse(writer, previous)
        generated = generate_model_yaml(self.space, candidate)
        writer.generated(generated.text)
        cost = self.costs.measure(build_model(generated.model), candidate.key)
        limits = self.config.constraints
        violations = {name: cost_value(cost, name) - limit for name, limit in limits.items()}
        writer.costed(cost, list(violations.values()))
        over = [f"{name} {cost_value(cost, name):.4g} > {limits[name]:.4g}" for name, v in violations.items() if v > 0]
        if over:
            writer.infeasible("over budget: " + ", ".join(over))
            return self._values(0.0, cost)
        workdir = self.config.workdir / f"trial-{trial.number:05d}"
        model_yaml = generated.write(workdir / "model.yaml")
        start = time.perf_counter()
        history = train_proxy(
            model_yaml,
            self.config.data_yaml,
            self.config.proxy,
            workdir,
            on_epoch=self._epoch_callback(trial, writer, cost),
            verbose=self.config.verbose,
            inheritance=Inheritance(self.parent_state, generated.index_map) if self.parent_state else None,
        )
        writer.trained(time.perf_counter() - start, history[-1])
        return self._values(history[-1][self.config.objectives.accuracy], cost)

    def _check_not_surplus(self, trial: Trial, writer: TrialWriter) -> None:
        """Fail this trial at once if earlier trials already fill the requested count.

        Workers start trials independently; ordering by trial number decides which of
        them take the last places, so the study ends with exactly ``--trials`` trials.
        """
        ahead = [
            record
            for record in read_records(trial.study)
            if record.number < trial.number and (record.counts or record.status == Status.RUNNING)
        ]
        if len(ahead) >= self.config.trials:
            writer.surplus()
            raise Surplus(f"the study already has {self.config.trials} trials finished or running")

    def _evaluation_of(self, trial: Trial, key: str) -> TrialRecord | None:
        """The earlier evaluation of ``key``, waiting for one that another worker is running now.

        Only the lowest-numbered trial of an architecture trains it; a later one waits and
        reuses its result (or trains after all, if that trial fails).
        """
        while True:
            records = read_records(trial.study)
            previous = evaluation_of(records, key)
            twin_running = any(
                record.number < trial.number and record.status == Status.RUNNING and record.key == key
                for record in records
            )
            if previous is not None or not twin_running:
                return previous
            fail_stale_trials(trial.study)
            time.sleep(TWIN_POLL_SECONDS)

    def _values(self, accuracy: float, cost: Cost) -> list[float] | float:
        if not self.config.objectives.multi:
            return accuracy
        return [accuracy, *(cost_value(cost, name) for name in self.config.objectives.costs)]

    def _reuse(self, writer: TrialWriter, previous: TrialRecord) -> list[float] | float:
        """Copy an earlier evaluation of the same architecture instead of training it again."""
        writer.reused(previous)
        if previous.status == Status.PRUNED:
            raise optuna.TrialPruned(f"same architecture as trial {previous.number}, which was pruned")
        assert previous.values is not None  # a complete evaluation
        return list(previous.values) if self.config.objectives.multi else previous.values[0]

    def _epoch_callback(self, trial: Trial, writer: TrialWriter, cost: Cost) -> Callable[[int, dict[str, float]], None]:
        epochs: list[dict[str, float]] = []
        accuracy_name = self.config.objectives.accuracy
        costs = [cost_value(cost, name) for name in self.config.objectives.costs]

        def on_epoch(epoch: int, metrics: dict[str, float]) -> None:
            epochs.append({"epoch": epoch, **metrics})
            writer.epochs(epochs)
            if epoch >= self.config.proxy.epochs:
                return
            reason = self.pruner.reason_to_stop(trial, epoch, metrics[accuracy_name], costs)
            if reason:
                writer.pruned(epoch, reason)
                raise optuna.TrialPruned(reason)

        return on_epoch
