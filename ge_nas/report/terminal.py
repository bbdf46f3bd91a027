"""The live view of a search in the terminal: one row per finished trial, a progress bar, the front."""

from __future__ import annotations

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from ge_nas.ranking.fronts import Ranking
from ge_nas.ranking.intervals import Estimate
from ge_nas.search.runner import Reporter
from ge_nas.storage.records import Stage, Status, TrialRecord, cost_value, latency_text

__all__ = ["LiveReporter", "front_table"]

_STATUS_STYLE = {
    Status.COMPLETE: "green",
    Status.REUSED: "cyan",
    Status.INFEASIBLE: "yellow",
    Status.PRUNED: "magenta",
    Status.FAILED: "red",
}


class LiveReporter(Reporter):
    """Prints each trial as a row under a progress bar over the requested trial count."""

    def __init__(self, accuracy_name: str, console: Console | None = None) -> None:
        self.accuracy_name = accuracy_name
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

    def trial(self, record: TrialRecord, finished: int, total: int) -> None:
        if self.task is None:
            self.progress.console.print(
                f"{'trial':>5}  {'architecture':<24} {'mAP':>7} {'GFLOPs':>8} {'params':>8} {'lat ms':>7} "
                f"{'state':<10} {'time':>6}"
            )
            self.task = self.progress.add_task("trials", total=total)
        accuracy = record.measured(self.accuracy_name)
        style = _STATUS_STYLE.get(record.status, "")
        line = (
            f"{record.number:>5}  {record.code or '?':<24.24} {_number(accuracy, '.4f', '-'):>7} "
            f"{_number(record.gflops, '.3f'):>8} {_params(record.params):>8} {_number(record.latency_ms, '.1f'):>7} "
            f"[{style}]{record.status.value:<10}[/{style}] {record.seconds:>5.0f}s"
        )
        note = record.note if record.stage == Stage.EXPLORE else f"seed {record.seed_index} ({record.stage.value})"
        self.progress.console.print(line + (f"  {note}" if note else ""))
        self.progress.update(self.task, completed=min(finished, total))
        if not self.estimated and record.status == Status.COMPLETE and finished < total:
            self.estimated = True
            minutes = (total - finished) * record.seconds / 60
            self.progress.console.print(
                f"estimate: about {minutes:.0f} min for the remaining {total - finished} trials "
                "(less with pruning and reused architectures)"
            )


def front_table(ranking: Ranking, study_name: str) -> Table:
    """The Pareto front (feasible, trained architectures): mean accuracy and gain over the baseline, with intervals."""
    costs = ranking.objectives[1:]
    front = sorted(ranking.front(1), key=lambda a: [cost_value(a.record, c) for c in costs])
    table = Table(title=f"Pareto front of study {study_name!r} ({len(front)} architectures)")
    intervals = bool({"latency", "latency-ratio"} & set(costs))  # then the latency ratio with its 95 % interval
    supernet = any(a.supernet_score is not None for a in front)  # its score beside the confirming proxies'
    scored = (f"supernet {ranking.accuracy_name}", "proxy seeds", f"proxy {ranking.accuracy_name}")
    columns = ("trial", "architecture", *(scored if supernet else ("seeds", ranking.accuracy_name)))
    columns += ("gain vs baseline", *costs)
    for column in (*columns, "latency ratio (95% interval)") if intervals else columns:
        table.add_column(column, justify="left" if column == "architecture" else "right", no_wrap=True)
    for a in front:
        record = a.record
        gain = "(baseline)" if record.baseline else _with_interval(a.gain_estimate, "+.4f")
        cells = [str(record.number), record.code or "?"]
        cells += [_number(a.supernet_score, ".4f", "-")] if supernet else []
        cells += [str(len(a.seeds)), _with_interval(a.estimate, ".4f")]
        cells += [gain + (" *" if a.significant else ""), *(f"{cost_value(record, c):.4g}" for c in costs)]
        if intervals:
            cells.append(latency_text(record.latency_ratio, record.latency_ratio_low, record.latency_ratio_high))
        table.add_row(*cells)
    table.caption = "± half a 95 % interval over seeds; gains paired by seed; * beyond the seed noise" + (
        "; the front ranks supernet scores, gains come from proxies only" if supernet else ""
    )
    return table


def _with_interval(estimate: Estimate | None, spec: str) -> str:
    if estimate is None:
        return "-"
    spread = "" if estimate.half_width is None else f" ±{estimate.half_width:.4f}"
    return format(estimate.mean, spec) + spread


def _number(value: float | None, spec: str, missing: str = "") -> str:
    return missing if value is None else format(value, spec)


def _params(params: int | None) -> str:
    return "" if params is None else f"{params / 1e6:.3f}M"
