"""One trial of a search: sample a candidate, cost it, train its proxy (or score it), and record everything.

Each trial:

1. samples one choice per insertion point (the baseline, no GE, is always trial 0);
2. reuses the stored result if the study already evaluated that architecture;
3. generates its model YAML and measures params, GFLOPs, latency (against the baseline,
   in the study's ``--latency-backend``) and peak memory;
4. is recorded as infeasible, untrained, when a cost is over a ``--max-*`` budget;
5. trains the proxy, recording every epoch's validation metrics, and stops early when
   the pruner says so (see :mod:`ge_nas.search.pruning`); or, for an exploring trial of a
   ``--strategy supernet`` search, scores it with the study's supernet
   (:class:`ge_nas.yolo.supernet.SupernetScorer`), costs measured the same way;
6. reports accuracy and costs as the study's objectives.
"""

from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import optuna
from optuna.trial import Trial

from ge_nas.errors import CostError
from ge_nas.interrupts import pause, raise_if_interrupted
from ge_nas.search.config import SearchConfig, training_seed
from ge_nas.search.pruning import ProxyPruner
from ge_nas.search.sampling import suggest_candidate
from ge_nas.space.candidate import Candidate
from ge_nas.space.model_yaml import generate_model_yaml
from ge_nas.storage.records import (
    COSTS,
    Stage,
    Status,
    Strategy,
    TrialRecord,
    TrialWriter,
    cost_value,
    evaluation_of,
    read_records,
    seed_run_of,
)
from ge_nas.storage.workers import Worker
from ge_nas.yolo.costs import Cost, CostMeter
from ge_nas.yolo.inheritance import Inheritance, load_parent_state
from ge_nas.yolo.latency import LATENCY_ROUNDS, LATENCY_ROUNDS_SHOWN_ONLY
from ge_nas.yolo.model_files import build_model
from ge_nas.yolo.supernet import SupernetScorer
from ge_nas.yolo.training import train_proxy

__all__ = ["TWIN_POLL_SECONDS", "Objective", "Surplus"]

# How often a trial waiting for another worker (running the same architecture, or the last places) looks again.
TWIN_POLL_SECONDS = 2.0


class Surplus(Exception):
    """A trial started after the requested count was already reached by other workers."""


class Objective:
    """The function Optuna calls for each trial."""

    def __init__(self, config: SearchConfig, pruner: ProxyPruner, parent: Path | None, worker: Worker) -> None:
        self.config = config
        self.pruner = pruner
        self.worker = worker
        self.space = config.space
        self.costs = CostMeter(
            build_model(generate_model_yaml(self.space, Candidate.baseline()).model),
            config.proxy.imgsz,
            config.proxy.device,
            config.latency_backend,
            config.exports,
            config.keep_exports,
            rounds=LATENCY_ROUNDS if config.latency_decides else LATENCY_ROUNDS_SHOWN_ONLY,
        )
        self.parent_state = load_parent_state(parent) if parent is not None else None
        self.scorer = (
            SupernetScorer(config.supernet_path, config.data_yaml, config.proxy, config.supernet.calibration_batches)
            if config.uses_supernet
            else None
        )

    def __call__(self, trial: Trial) -> list[float] | float:
        """Evaluate one trial; a failure or Ctrl-C is recorded on the trial before it propagates."""
        writer = TrialWriter(trial)
        self._claimed: str | None = None  # the architecture this trial claimed to train
        try:
            return self._evaluate(trial, writer)
        except (optuna.TrialPruned, Surplus):
            raise
        except KeyboardInterrupt:
            writer.failed("interrupted (Ctrl-C)")
            self._release(trial)
            raise
        except Exception as error:
            writer.failed(f"{type(error).__name__}: {error}")
            self._release(trial)
            raise

    def _evaluate(self, trial: Trial, writer: TrialWriter) -> list[float] | float:
        writer.started(self.worker.id)
        # A trial enqueued for another seed of a known architecture says so in its attributes.
        stage = Stage(trial.user_attrs.get("stage", Stage.EXPLORE.value))
        seed_index = int(trial.user_attrs.get("seed_index", 0))
        # Exploring trials measure accuracy as the search does; every further seed is a proxy.
        default = self.config.strategy if stage == Stage.EXPLORE else Strategy.PROXY.value
        strategy = Strategy(trial.user_attrs.get("strategy", default))
        if stage == Stage.EXPLORE:
            self._check_not_surplus(trial, writer)
        candidate = suggest_candidate(trial, self.space)
        writer.sampled(candidate.key, candidate.code, candidate.units, stage, seed_index, strategy)
        previous = self._earlier_run(trial, candidate.key, stage, seed_index, strategy)
        if previous is not None:
            return self._reuse(writer, previous)
        generated = generate_model_yaml(self.space, candidate)
        writer.generated(generated.text)
        cost = _measured(self.costs.measure(build_model(generated.model), candidate.key))
        limits = self.config.constraints
        violations = {name: cost_value(cost, name) - limit for name, limit in limits.items()}
        writer.costed(cost, list(violations.values()))
        over = [f"{name} {cost_value(cost, name):.4g} > {limits[name]:.4g}" for name, v in violations.items() if v > 0]
        if over:
            writer.infeasible("over budget: " + ", ".join(over))
            return self._values(0.0, cost)
        if strategy == Strategy.SUPERNET:
            return self._values(self._score(writer, candidate, generated.model), cost)
        workdir = self.config.workdir / f"trial-{trial.number:05d}"
        model_yaml = generated.write(workdir / "model.yaml")
        start = time.perf_counter()
        proxy = dataclasses.replace(self.config.proxy, seed=training_seed(self.config.proxy.seed, seed_index))
        history = train_proxy(
            model_yaml,
            self.config.data_yaml,
            proxy,
            workdir,
            on_epoch=self._epoch_callback(trial, writer, cost, prunable=stage == Stage.EXPLORE),
            verbose=self.config.verbose,
            inheritance=Inheritance(self.parent_state, generated.index_map) if self.parent_state else None,
        )
        writer.trained(time.perf_counter() - start, history[-1])
        return self._values(history[-1][self.config.objectives.accuracy], cost)

    def _score(self, writer: TrialWriter, candidate: Candidate, model_yaml: dict[str, Any]) -> float:
        """The supernet's score of ``candidate``: its path's weights, BatchNorm recalibrated, validated."""
        assert self.scorer is not None, "a supernet trial runs only in a supernet search (its strategy is fixed)"
        start = time.perf_counter()
        metrics = self.scorer.validate(self.scorer.candidate_model(candidate, model_yaml))
        writer.scored(time.perf_counter() - start, metrics)
        return metrics[self.config.objectives.accuracy]

    def _check_not_surplus(self, trial: Trial, writer: TrialWriter) -> None:
        """Fail this trial at once if earlier trials already fill the requested count.

        Workers start trials independently; ordering by trial number decides which of
        them take the last places, so the study ends with exactly ``--trials`` trials.
        """
        ahead = [
            record
            for record in read_records(trial.study)
            if record.number < trial.number
            and (record.counts or (record.status == Status.RUNNING and record.stage == Stage.EXPLORE))
        ]
        if len(ahead) >= self.config.trials:
            writer.surplus()
            raise Surplus(f"the study already has {self.config.trials} trials finished or running")

    def _earlier_run(
        self, trial: Trial, key: str, stage: Stage, seed_index: int, strategy: Strategy
    ) -> TrialRecord | None:
        """The earlier run to reuse; None once this trial holds the claim to train (or score) it.

        An exploring trial reuses its architecture's exploring evaluation; a trial for another
        seed reuses only a proxy run of that same seed. Claiming is atomic in the database, so
        of several workers that draw one architecture (and seed) only one trains it; the others
        wait for its result and reuse it. A claim whose trial failed, or whose worker died,
        is taken over.
        """
        claim = f"{key}@supernet" if strategy == Strategy.SUPERNET else f"{key}@seed{seed_index}"
        while True:
            records = read_records(trial.study)
            previous = evaluation_of(records, key) if stage == Stage.EXPLORE else seed_run_of(records, key, seed_index)
            if previous is not None:
                return previous
            holder = self.worker.claim(claim, trial.number)
            if holder.trial_number == trial.number:
                self._claimed = claim
                return None
            # Read again: the holder's trial may have started after the records above were read.
            holder_record = next((r for r in read_records(trial.study) if r.number == holder.trial_number), None)
            if self.worker.claim_is_stale(holder, holder_record) and self.worker.take_over(claim, holder, trial.number):
                self._claimed = claim
                return None
            self.worker.fail_stale_trials(trial.study)
            pause(TWIN_POLL_SECONDS)

    def _release(self, trial: Trial) -> None:
        """A failed trial gives its architecture back, so another trial may train it at once."""
        if self._claimed is not None:
            self.worker.release(self._claimed, trial.number)

    def _values(self, accuracy: float, cost: Cost) -> list[float] | float:
        if not self.config.objectives.multi:
            return accuracy
        return [accuracy, *(cost_value(cost, name) for name in self.config.objectives.costs)]

    def _reuse(self, writer: TrialWriter, previous: TrialRecord) -> list[float] | float:
        """Copy an earlier evaluation of the same architecture instead of training it again."""
        writer.reused(previous)
        if previous.values is None:  # it was pruned: so is this one, with the same curve
            raise optuna.TrialPruned(f"same architecture as trial {previous.number}, which was pruned")
        return list(previous.values) if self.config.objectives.multi else previous.values[0]

    def _epoch_callback(
        self, trial: Trial, writer: TrialWriter, cost: Cost, prunable: bool
    ) -> Callable[[int, dict[str, float]], None]:
        """Store every epoch; ask the pruner after each but the last (never for an extra seed: it must finish)."""
        epochs: list[dict[str, float]] = []
        accuracy_name = self.config.objectives.accuracy
        costs = [cost_value(cost, name) for name in self.config.objectives.costs]

        def on_epoch(epoch: int, metrics: dict[str, float]) -> None:
            epochs.append({"epoch": epoch, **metrics})
            writer.epochs(epochs)
            raise_if_interrupted()  # a Ctrl-C that a library swallowed stops the trial here at the latest
            if epoch >= self.config.proxy.epochs or not prunable:
                return
            reason = self.pruner.reason_to_stop(trial, epoch, metrics[accuracy_name], costs)
            if reason:
                writer.pruned(epoch, reason)
                raise optuna.TrialPruned(reason)

        return on_epoch


def _measured(cost: Cost) -> Cost:
    """The cost, if every part of it was measured: a 0 or NaN would make a candidate look free.

    Raises:
        CostError: a cost is not a positive number (the trial fails, saying which).
    """
    for name in COSTS:
        value = cost_value(cost, name)
        if value is None or not math.isfinite(value) or value <= 0:
            raise CostError(f"could not measure this candidate's {name} (got {value}); it would look free")
    return cost
