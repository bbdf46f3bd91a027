"""The live view of a search in the terminal: one row per finished trial, a progress bar, the front."""

from __future__ import annotations

import numpy as np
import optuna
from optuna.trial import TrialState
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from ge_nas.ranking import nondominated_fronts, to_minimization
from ge_nas.search import Reporter, TrialRow
from ge_nas.study import Objectives

_STATE_STYLE = {"complete": "green", "reused": "cyan", "infeasible": "yellow", "pruned": "magenta", "failed": "red"}


def _format_costs(costs: dict[str, float]) -> list[str]:
    return [
        f"{costs['gflops']:.3f}" if "gflops" in costs else "",
        f"{costs['params'] / 1e6:.3f}M" if "params" in costs else "",
        f"{costs['latency']:.1f}" if "latency" in costs else "",
    ]


class LiveReporter(Reporter):
    """Prints each trial as a row under a progress bar over the requested trial count."""

    def __init__(self, console: Console | None = None) -> None:
        # soft_wrap: a row stays one line in logs and pipes instead of wrapping at 80 columns.
        self.console = console or Console(soft_wrap=True)
        self.progress = Progress(
            TextColumn("trials"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(), console=self.console
        )
        self.task: int | None = None
        self.estimated = False

    def __enter__(self) -> LiveReporter:
        self.progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.progress.stop()

    def plan(self, text: str) -> None:
        self.progress.console.print(text)

    def trial(self, row: TrialRow, finished: int, total: int) -> None:
        if self.task is None:
            self.progress.console.print(
                f"{'trial':>5}  {'architecture':<24} {'mAP':>7} {'GFLOPs':>8} {'params':>8} {'lat ms':>7} "
                f"{'state':<10} {'time':>6}"
            )
            self.task = self.progress.add_task("trials", total=total)
        accuracy = f"{row.accuracy:.4f}" if row.accuracy is not None else "-"
        gflops, params, latency = _format_costs(row.costs)
        style = _STATE_STYLE.get(row.state, "")
        line = (
            f"{row.number:>5}  {row.code:<24.24} {accuracy:>7} {gflops:>8} {params:>8} {latency:>7} "
            f"[{style}]{row.state:<10}[/{style}] {row.seconds:>5.0f}s"
        )
        self.progress.console.print(line + (f"  {row.note}" if row.note and row.state != "complete" else ""))
        self.progress.update(self.task, completed=min(finished, total))
        if not self.estimated and row.state == "complete" and finished < total:
            self.estimated = True
            minutes = (total - finished) * row.seconds / 60
            self.progress.console.print(
                f"estimate: about {minutes:.0f} min for the remaining {total - finished} trials "
                "(less with pruning and reused architectures)"
            )


def front_table(study: optuna.Study, objectives: Objectives) -> Table:
    """The current Pareto front (feasible, trained architectures), each with its gain over the baseline."""
    trials = [
        t
        for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
        if "infeasible" not in t.user_attrs and "reused_from" not in t.user_attrs
    ]
    baseline = next((t for t in trials if t.user_attrs.get("baseline")), None)
    values = np.array([[t.user_attrs[objectives.accuracy], *(_value(t, c) for c in objectives.costs)] for t in trials])
    ranks = nondominated_fronts(to_minimization(values, objectives.directions)) if trials else np.array([])
    front = [t for t, rank in zip(trials, ranks, strict=True) if rank == 1]
    table = Table(title=f"Pareto front of study {study.study_name!r} ({len(front)} architectures)")
    for column in ("trial", "architecture", objectives.accuracy, "gain vs baseline", *objectives.costs):
        table.add_column(column, justify="left" if column == "architecture" else "right")
    base_accuracy = baseline.user_attrs[objectives.accuracy] if baseline else None
    for t in sorted(front, key=lambda t: [_value(t, c) for c in objectives.costs]):
        accuracy = t.user_attrs[objectives.accuracy]
        gain = f"{accuracy - base_accuracy:+.4f}" if base_accuracy is not None else "-"
        costs = [f"{_value(t, c):.4g}" for c in objectives.costs]
        table.add_row(str(t.number), t.user_attrs["code"], f"{accuracy:.4f}", gain, *costs)
    return table


def _value(trial: optuna.trial.FrozenTrial, cost: str) -> float:
    return float(trial.user_attrs["latency_ms" if cost == "latency" else cost])
