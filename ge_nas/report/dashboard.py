"""The Pareto dashboard: one HTML page that shows what a search found and where attention pays.

From a study stored by ``ge-nas search`` the page answers the questions asked of a search:

* which architectures trade accuracy against cost best: every trial on an accuracy/cost
  scatter (switchable between the stored costs), coloured by front, with the baseline, the
  knee, pruned and infeasible trials marked, and each point's architecture on hover;
* which insertion points, variants and extents keep landing on the front, and what they do
  to accuracy and cost on average (where attention pays);
* how every proxy trained, and where pruning cut it short (learning curves);
* whether the search is still finding better trade-offs (hypervolume of front 1 over trials);
* how to take a front member further: its ``ge-nas export`` command.

Fronts, the knee and gains come from :func:`ge_nas.ranking.fronts.rank_study`, as in
``ge-nas show`` and the ``ge_nas_*`` tables (a trial that reused an earlier result is listed
on that result instead).

:func:`dashboard_html` makes one self-contained file: plotly.js is inlined and a
Content-Security-Policy forbids fetching anything, so it opens offline and travels by mail.
Text from the study is escaped, and storage passwords are hidden. The same page, served by
:mod:`ge_nas.report.dashboard_server`, redraws itself as trials land.

The page itself (HTML, CSS and the script that draws and polls) is ``dashboard_page.html``,
shipped beside this module; this module fills it in.

Example:
    >>> from ge_nas.storage.database import open_existing_storage
    >>> from ge_nas.storage.studies import load_existing_study
    >>> study = load_existing_study(open_existing_storage("sqlite:///studies/demo.db"), "demo")  # doctest: +SKIP
    >>> write_dashboard(study, Path("report.html"))  # doctest: +SKIP
"""

from __future__ import annotations

import hashlib
import html
import json
import shlex
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property
from importlib import resources
from pathlib import Path
from string import Template
from typing import Any

import numpy as np
import optuna
import plotly.graph_objects as go
from optuna.trial import FrozenTrial
from plotly.io.json import to_json_plotly
from plotly.offline import get_plotlyjs
from plotly.subplots import make_subplots

from ge_nas.layers.choices import EXTENTS, PAPER_NAMES, VARIANTS, extent_label
from ge_nas.ranking.fronts import Ranking, rank
from ge_nas.ranking.pareto import hypervolume, nondominated_fronts
from ge_nas.space.candidate import Candidate, Placement
from ge_nas.storage.database import default_storage_url, safe_url
from ge_nas.storage.records import COSTS, Status, TrialRecord, cost_value, latency_text, read_record
from ge_nas.storage.studies import objective_names, proxy_settings

__all__ = [
    "FIGURES",
    "Evaluation",
    "StudyView",
    "attention_figure",
    "contents_json",
    "curves_figure",
    "dashboard_contents",
    "dashboard_html",
    "export_command",
    "front_table_html",
    "pareto_figure",
    "progress_figure",
    "read_study",
    "study_version",
    "summary_html",
    "write_dashboard",
]

# The page's figures, in page order; each is drawn into the element ``figure-<name>``.
FIGURES: tuple[str, ...] = ("pareto", "attention", "curves", "progress")
# No Plotly logo or cloud links: the page must not point anywhere.
PLOTLY_CONFIG: dict[str, Any] = {"displaylogo": False, "showLink": False, "showSendToCloud": False, "responsive": True}
# The page, as package data: $-placeholders filled in by dashboard_html.
_PAGE = Template(resources.files("ge_nas.report").joinpath("dashboard_page.html").read_text(encoding="utf-8"))
# Trials the page shows, besides the ranked architectures: those still running or failed (their curves).
_UNRANKED_SHOWN = (Status.RUNNING, Status.FAILED)


@dataclass(frozen=True)
class Evaluation:
    """One trial as the dashboard shows it: what it evaluated, how it trained, what it scored."""

    record: TrialRecord
    accuracy: float | None  # final proxy accuracy; the last epoch's for pruned, running or failed
    curve: tuple[tuple[int, float], ...]  # (epoch, accuracy) per validated epoch
    front: int | None  # for a complete trial: its front
    gain: float | None  # accuracy over the trained baseline's
    reused_by: tuple[int, ...]  # later trials that sampled the same architecture and reused this result

    @property
    def number(self) -> int:
        return self.record.number

    @property
    def code(self) -> str:
        return self.record.code or self.record.key or "?"

    @property
    def state(self) -> Status:
        return self.record.status

    @property
    def baseline(self) -> bool:
        return self.record.baseline

    @property
    def note(self) -> str:
        return self.record.note

    @cached_property
    def costs(self) -> dict[str, float]:
        """By cost name, as far as measured."""
        return {name: value for name in COSTS if (value := cost_value(self.record, name)) is not None}

    @cached_property
    def placements(self) -> tuple[tuple[int, Placement], ...] | None:
        """Its GE units by layer, or None when the stored key is not one ge-nas wrote."""
        try:
            return Candidate.from_key(self.record.key or "").placements
        except ValueError:
            return None


@dataclass(frozen=True)
class StudyView:
    """Everything the page shows, computed once from the study's records and its ranking."""

    name: str
    storage: str | None  # as it may be shown: password hidden; None for the default storage
    ranking: Ranking
    proxy: dict[str, Any]
    evaluations: tuple[Evaluation, ...]  # every evaluated architecture, and trials running or failed, by number
    counts: dict[Status, int]  # trials by status, reused ones included
    costs: tuple[str, ...]  # costs stored on the trials: the study's own first, then the others
    progress: tuple[tuple[int, float], ...]  # (trial number, hypervolume of front 1 up to it)
    reference: tuple[float, ...] | None  # hypervolume reference, in the objectives' own units
    version: str  # changes whenever a trial is added, finishes or validates another epoch

    @property
    def objectives(self) -> tuple[str, ...]:
        return self.ranking.objectives

    @property
    def directions(self) -> tuple[str, ...]:
        return self.ranking.directions

    @property
    def accuracy_name(self) -> str:
        return self.ranking.accuracy_name

    @property
    def trained(self) -> list[Evaluation]:
        """The ranked architectures: trained to the end within budget."""
        return [e for e in self.evaluations if e.front is not None]

    @property
    def front(self) -> list[Evaluation]:
        """Front 1 from the cheapest to the costliest in the first cost."""
        members = [e for e in self.trained if e.front == 1]
        return sorted(members, key=lambda e: (e.costs.get(self.costs[0], np.inf), e.number))

    @property
    def knee(self) -> int | None:
        knee = self.ranking.knee
        return None if knee is None else knee.record.number

    @property
    def baseline(self) -> Evaluation | None:
        """The trained baseline."""
        return next((e for e in self.trained if e.baseline), None)


def export_command(study_name: str, trial: int, storage_url: str | None = None) -> str:
    """The ``ge-nas export`` command that writes trial ``trial``'s model YAML, ready to paste in a shell.

    ``--storage`` appears only when the study is not in its default place, and then with the
    password hidden: the page must not leak it, so the user types it back in.
    """
    words = ["ge-nas", "export", "--study", study_name]
    if storage_url and storage_url != default_storage_url(study_name):
        words += ["--storage", safe_url(storage_url)]
    words += ["--trial", str(trial), "-o", "best.yaml"]
    return shlex.join(words)


def read_study(study: optuna.Study, storage_url: str | None = None) -> StudyView:
    """Read and rank the study's trials (O(n log n) for up to three objectives).

    Raises:
        InputError: the study's objectives have no names, so it was not made by ge-nas search.
    """
    objectives = objective_names(study)
    trials = study.get_trials(deepcopy=False)
    records = [read_record(trial) for trial in trials]
    ranking = rank(records, objectives, tuple(d.name.lower() for d in study.directions))
    reused_by: dict[int, list[int]] = defaultdict(list)
    counts: dict[Status, int] = defaultdict(int)
    for record in records:
        if record.status not in (Status.WAITING, Status.SURPLUS):
            counts[record.status] += 1
        if record.status == Status.REUSED and record.reused_from is not None:
            reused_by[int(record.reused_from)].append(record.number)
    ranked = {a.record.number: a for a in ranking.architectures}
    evaluations = []
    for record in records:
        architecture = ranked.get(record.number)
        if architecture is None and record.status not in _UNRANKED_SHOWN:
            continue
        evaluations.append(
            Evaluation(
                record=record,
                accuracy=architecture.accuracy if architecture else record.accuracy(ranking.accuracy_name),
                curve=record.curve(ranking.accuracy_name),
                front=architecture.front if architecture else None,
                gain=architecture.gain if architecture else None,
                reused_by=tuple(reused_by[record.number]),
            )
        )
    progress, reference = _hypervolume_progress(ranking)
    return StudyView(
        name=study.study_name,
        storage=safe_url(storage_url) if storage_url and storage_url != default_storage_url(study.study_name) else None,
        ranking=ranking,
        proxy=proxy_settings(study),
        evaluations=tuple(evaluations),
        counts=dict(counts),
        costs=_stored_costs(objectives, evaluations),
        progress=progress,
        reference=reference,
        version=_version(trials),
    )


def pareto_figure(view: StudyView) -> go.Figure:
    """Accuracy against cost, one point per trial; buttons switch the cost on the x axis."""
    front = view.front
    trained = view.trained
    pruned = [e for e in view.evaluations if e.state == Status.PRUNED and e.accuracy is not None]
    infeasible = [e for e in view.evaluations if e.state == Status.INFEASIBLE]
    baseline = [view.baseline] if view.baseline is not None else []
    knee = [e for e in trained if e.number == view.knee]
    largest_front = max((e.front for e in trained), default=1)
    # (members, y of each, trace); the x of each member comes from the cost chosen with the buttons.
    layers: list[tuple[list[Evaluation], list[float | None], go.Scatter]] = [
        (
            front,
            [e.accuracy for e in front],
            go.Scatter(name="front 1", mode="lines", hoverinfo="skip", line={"color": "#222", "width": 1.5}),
        ),
        (
            trained,
            [e.accuracy for e in trained],
            go.Scatter(
                name="trained (colour: front)",
                mode="markers",
                marker={
                    "color": [e.front for e in trained],
                    "colorscale": "Plasma",
                    "cmin": 1,
                    "cmax": max(largest_front, 2),
                    # Whole-number ticks: fronts are counted.
                    "colorbar": {"title": {"text": "front"}, "len": 0.6, "y": 0.3, "dtick": -(-largest_front // 8)},
                    "size": [11 if e.front == 1 else 7 for e in trained],
                    "line": {"color": "#222", "width": [1.5 if e.front == 1 else 0 for e in trained]},
                },
                **_hover(view, trained),
            ),
        ),
        (
            pruned,
            [e.accuracy for e in pruned],
            go.Scatter(
                name="pruned (last epoch)",
                mode="markers",
                marker={"symbol": "circle-open", "color": "#888", "size": 8},
                **_hover(view, pruned),
            ),
        ),
        (
            infeasible,
            [0.03] * len(infeasible),  # not trained: a strip along the bottom, on an axis of its own
            go.Scatter(
                name="infeasible (not trained)",
                mode="markers",
                yaxis="y2",
                marker={"symbol": "x-thin", "color": "crimson", "size": 10, "line": {"width": 2, "color": "crimson"}},
                **_hover(view, infeasible),
            ),
        ),
        (
            baseline,
            [e.accuracy for e in baseline],
            go.Scatter(
                name="baseline (no GE)",
                mode="markers",
                hoverinfo="skip",
                marker={"symbol": "star", "color": "#1f9e89", "size": 18, "line": {"color": "#222", "width": 1}},
            ),
        ),
        (
            knee,
            [e.accuracy for e in knee],
            go.Scatter(
                name="knee (best compromise)",
                mode="markers",
                hoverinfo="skip",
                marker={"symbol": "diamond-open", "color": "#d62728", "size": 22, "line": {"width": 3}},
            ),
        ),
    ]
    figure = go.Figure()
    for members, ys, trace in layers:
        trace.x = _xs(members, view.costs[0], sort=trace.name == "front 1")
        trace.y = ys
        figure.add_trace(trace)
    figure.update_layout(
        _layout(f"{view.accuracy_name} against cost: every trial, coloured by front"),
        xaxis={"title": {"text": COSTS[view.costs[0]].label}},
        yaxis={"title": {"text": f"{view.accuracy_name} (proxy)"}},
        yaxis2={"overlaying": "y", "range": [0, 1], "visible": False, "fixedrange": True},
        legend={"orientation": "h", "y": -0.18},
        height=560,
    )
    if len(view.costs) > 1:
        buttons = []
        for cost in view.costs:
            xs = []
            ys = []
            for members, member_ys, trace in layers:
                front_line = trace.name == "front 1"
                # Arrays, not lists: plotly copies button arguments deeply, element by element.
                xs.append(np.array(_xs(members, cost, sort=front_line), dtype=float))
                ys.append(
                    np.array([e.accuracy for e in _by_cost(members, cost)] if front_line else member_ys, dtype=float)
                )
            buttons.append(
                {
                    "label": COSTS[cost].label,
                    "method": "update",
                    "args": [{"x": xs, "y": ys}, {"xaxis.title.text": COSTS[cost].label}],
                }
            )
        figure.update_layout(
            updatemenus=[
                {"type": "buttons", "direction": "right", "x": 1.0, "xanchor": "right", "y": 1.12, "buttons": buttons}
            ]
        )
    return figure


def attention_figure(view: StudyView) -> go.Figure:
    """Per insertion point and variant/extent: front-1 appearances, and average effects on accuracy and cost.

    An effect compares the trained architectures with that unit at that point against those
    with no GE there at all: under a random or TPE search that estimates what the unit adds,
    other units averaged out.
    """
    cost = view.costs[0]
    rows, columns, cells = _attention_cells(view, cost)
    titles = (
        "on front 1 (architectures)",
        f"Δ {view.accuracy_name} vs no GE there",
        f"Δ {COSTS[cost].label} vs no GE there",
    )
    figure = make_subplots(rows=1, cols=3, shared_yaxes=True, horizontal_spacing=0.03, subplot_titles=titles)
    panels = (("on_front", "Blues", None), ("accuracy", "RdBu", 0.0), ("cost", "RdBu_r", 0.0))
    for column_number, (field, scale, middle) in enumerate(panels, start=1):
        z = [[getattr(cells.get((row, col)), field, None) for col in columns] for row in rows]
        figure.add_trace(
            go.Heatmap(
                z=z,
                x=[_choice_label(col) for col in columns],
                y=[_point_label(row) for row in rows],
                text=[[_cell_text(field, cells.get((row, col))) for col in columns] for row in rows],
                texttemplate="%{text}",
                customdata=[[_cell_hover(cells.get((row, col)), view, cost) for col in columns] for row in rows],
                hovertemplate="%{y}, %{x}<br>%{customdata}<extra></extra>",
                colorscale=scale,
                zmid=middle,
                showscale=False,
                xgap=2,
                ygap=2,
            ),
            row=1,
            col=column_number,
        )
    figure.update_layout(
        _layout("Where attention pays: insertion point x GE variant/extent"),
        height=max(320, 120 + 28 * len(rows)),
    )
    figure.update_yaxes(autorange="reversed")
    if not rows:
        figure.add_annotation(text="no architecture with GE trained yet", showarrow=False, xref="paper", yref="paper")
    return figure


def curves_figure(view: StudyView) -> go.Figure:
    """Validation accuracy per epoch of every trial; pruned ones end dashed with a cross where they stopped."""
    groups: dict[str, list[Evaluation]] = defaultdict(list)
    for e in view.evaluations:
        if e.curve:
            groups["baseline" if e.baseline else "front 1" if e.front == 1 else e.state.value].append(e)
    styles = {
        "complete": {"color": "#7a9cc6", "width": 1},
        "front 1": {"color": "#0d0887", "width": 2},
        "baseline": {"color": "#1f9e89", "width": 3},
        "pruned": {"color": "#999", "width": 1, "dash": "dash"},
        "running": {"color": "#e38d2c", "width": 2, "dash": "dot"},
        "failed": {"color": "crimson", "width": 1, "dash": "dashdot"},
    }
    figure = go.Figure()
    for name, line in styles.items():
        members = groups.get(name, [])
        if not members and name not in ("complete", "baseline"):
            continue
        x, y, labels = _joined_curves(members)
        figure.add_trace(
            go.Scatter(
                name=name,
                x=x,
                y=y,
                mode="lines+markers",  # markers show the epochs, and a curve of one epoch at all
                line=line,
                marker={"size": 4, "color": line["color"]},
                opacity=0.7 if name in ("complete", "pruned") else 1.0,
                text=labels,
                hovertemplate=f"%{{text}}<br>epoch %{{x}}: %{{y:.4f}}<extra>{name}</extra>",
            )
        )
    stopped = groups.get("pruned", [])
    if stopped:
        figure.add_trace(
            go.Scatter(
                name="pruned here",
                x=[e.curve[-1][0] for e in stopped],
                y=[e.curve[-1][1] for e in stopped],
                mode="markers",
                marker={"symbol": "x", "color": "#555", "size": 8},
                customdata=[[e.number, _text(e.code), _text(e.note)] for e in stopped],
                hovertemplate="trial %{customdata[0]}: %{customdata[1]}<br>%{customdata[2]}<extra></extra>",
            )
        )
    figure.update_layout(
        _layout(f"Learning curves: {view.accuracy_name} per proxy epoch"),
        xaxis={"title": {"text": "epoch"}, "dtick": 1},
        yaxis={"title": {"text": view.accuracy_name}},
        height=460,
    )
    return figure


def progress_figure(view: StudyView) -> go.Figure:
    """Hypervolume of front 1 after each trained trial: flat means the search stopped finding better trade-offs."""
    reference = ", ".join(f"{n} {v:.4g}" for n, v in zip(view.objectives, view.reference or (), strict=False))
    anchor = "from the baseline" if view.baseline is not None else "from the worst trials: no trained baseline yet"
    figure = go.Figure(
        go.Scatter(
            name="hypervolume",
            x=[number for number, _ in view.progress],
            y=[volume for _, volume in view.progress],
            mode="lines+markers",
            line={"shape": "hv", "color": "#0d0887"},
            marker={"size": 5},
            hovertemplate="after trial %{x}: %{y:.4g}<extra></extra>",
        )
    )
    figure.update_layout(
        _layout(f"Search progress: hypervolume of front 1 (reference {reference or 'none yet'}, {anchor})"),
        xaxis={"title": {"text": "trial"}},
        yaxis={"title": {"text": "hypervolume"}, "exponentformat": "e", "rangemode": "tozero"},
        height=400,
    )
    return figure


def summary_html(view: StudyView) -> str:
    """One paragraph: where the study is, what it compares, how far it got."""
    order = (Status.COMPLETE, Status.REUSED, Status.PRUNED, Status.INFEASIBLE, Status.RUNNING, Status.FAILED)
    counts = ", ".join(f"{view.counts[s]} {s.value}" for s in order if view.counts.get(s))
    proxy = view.proxy
    parts = [
        f"objectives: {', '.join(f'{n} ({d[:3]})' for n, d in zip(view.objectives, view.directions, strict=True))}",
        f"trials: {sum(view.counts.values())}" + (f" ({counts})" if counts else ""),
        f"front 1: {len(view.front)} architecture" + ("" if len(view.front) == 1 else "s"),
    ]
    if proxy:
        parts.insert(1, f"proxy: {proxy.get('epochs', '?')} epochs at {proxy.get('imgsz', '?')} px")
    if view.knee is not None:
        knee = next(e for e in view.evaluations if e.number == view.knee)
        parts.append(f"knee: trial {knee.number} ({knee.code})")
    if view.baseline is not None and view.baseline.accuracy is not None:
        parts.append(f"baseline {view.accuracy_name}: {view.baseline.accuracy:.4f}")
    if view.progress:
        parts.append(f"hypervolume: {view.progress[-1][1]:.4g}")
    if view.storage:
        parts.append(f"storage: {view.storage}")
    return "<p>" + html.escape("; ".join(parts)) + "</p>"


def front_table_html(view: StudyView) -> str:
    """Front 1 as a table, each row with the command that exports its model YAML."""
    if not view.front:
        return "<p>No trained architecture yet: the front appears here as trials finish.</p>"
    head = ["trial", "architecture", "insertion points", view.accuracy_name, "gain vs baseline"]
    head += [COSTS[c].label for c in view.costs] + ["", "export it"]
    rows = []
    for e in view.front:
        gain = e.gain
        marks = ", ".join(m for m, on in (("knee", e.number == view.knee), ("baseline", e.baseline)) if on)
        cells = [
            str(e.number),
            html.escape(e.code),
            html.escape(_insertion_points(e)),
            f"{e.accuracy:.4f}" if e.accuracy is not None else "",
            f"{gain:+.4f}" if gain is not None else "",
            *(_format_cost(c, e.costs[c]) if c in e.costs else "" for c in view.costs),
            marks,
            f"<code>{html.escape(export_command(view.name, e.number, view.storage))}</code>",
        ]
        rows.append("<tr>" + "".join(f"<td>{c}</td>" for c in cells) + "</tr>")
    header = "<tr>" + "".join(f"<th>{html.escape(h)}</th>" for h in head) + "</tr>"
    return f"<table><thead>{header}</thead><tbody>{''.join(rows)}</tbody></table>"


def dashboard_contents(study: optuna.Study, storage_url: str | None = None) -> dict[str, Any]:
    """What the page shows: the study's version, the figures (as plotly JSON), the summary and the front table."""
    view = read_study(study, storage_url)
    figures = {
        "pareto": pareto_figure(view),
        "attention": attention_figure(view),
        "curves": curves_figure(view),
        "progress": progress_figure(view),
    }
    return {
        "version": view.version,
        "figures": {name: figures[name].to_plotly_json() for name in FIGURES},
        "summary": summary_html(view),
        "table": front_table_html(view),
    }


def contents_json(contents: dict[str, Any]) -> str:
    """The contents as JSON that may sit inside a ``<script>`` element.

    Outside its strings JSON has no ``<``, so writing every ``<`` as ``\\u003c`` leaves the
    data unchanged and no study text can close the element (plotly's encoder does this too;
    the page's safety does not rest on it).
    """
    return to_json_plotly(contents).replace("<", "\\u003c")


def dashboard_html(study: optuna.Study, storage_url: str | None = None, refresh_ms: int = 0) -> str:
    """The whole page, plotly.js included; with ``refresh_ms`` it polls its server and redraws on changes."""
    contents = dashboard_contents(study, storage_url)
    title = html.escape(f"ge-nas dashboard: study {study.study_name}")
    live = f"checking for new trials every {refresh_ms / 1000:g} s"
    return _PAGE.substitute(
        title=title,
        refresh=str(int(refresh_ms)),
        live=f'<p id="live-status">live: {live}</p>' if refresh_ms else "",
        summary=contents["summary"],
        figures="".join(f'<div id="figure-{name}" class="figure"></div>' for name in FIGURES),
        table=contents["table"],
        plotlyjs=get_plotlyjs(),
        contents=contents_json(contents),
        config=json.dumps(PLOTLY_CONFIG),
    )


def write_dashboard(study: optuna.Study, output: Path, storage_url: str | None = None) -> Path:
    """Write the self-contained dashboard of ``study`` to ``output`` (folders created as needed)."""
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(dashboard_html(study, storage_url), encoding="utf-8")
    return output


def _stored_costs(objectives: Sequence[str], evaluations: Sequence[Evaluation]) -> tuple[str, ...]:
    """The costs to offer on the x axis: the study's own first; GFLOPs when nothing was measured yet."""
    stored = {name for e in evaluations for name in e.costs}
    ordered = [n for n in objectives[1:] if n in COSTS] + [n for n in COSTS if n not in objectives]
    return tuple(n for n in ordered if n in stored) or ("gflops",)


def _hypervolume_progress(ranking: Ranking) -> tuple[tuple[tuple[int, float], ...], tuple[float, ...] | None]:
    """Hypervolume of front 1 after each trained trial, under one reference point derived once from all of them.

    Before the baseline has trained, the reference is anchored at the worst trained values.
    Keeping only the running front makes each step cost one small ranking, so thousands of
    trials stay fast.
    """
    reference = ranking.reference(anchor_at_worst=True)
    if reference is None:
        return (), None
    front = np.zeros((0, ranking.points.shape[1]))
    progress = []
    volume = 0.0
    for architecture, point in zip(ranking.ranked, ranking.points, strict=True):
        if not np.any(np.all(front <= point, axis=1)):  # a point the front already covers changes nothing
            front = np.vstack([front, point])
            front = front[nondominated_fronts(front) == 1]
            volume = hypervolume(front, reference)
        progress.append((architecture.record.number, volume))
    return tuple(progress), tuple(ranking.in_objective_units(reference))


def study_version(study: optuna.Study) -> str:
    """A fingerprint of what the page shows: it changes when a trial is added, finishes or validates an epoch.

    Cheap enough to poll every second or two: Optuna's RDB storage caches finished trials,
    so only the running ones are read again.
    """
    return _version(study.get_trials(deepcopy=False))


def _version(trials: Sequence[FrozenTrial]) -> str:
    marks = [(r.number, r.status.value, len(r.epochs)) for r in map(read_record, trials)]
    return hashlib.sha1(repr(marks).encode()).hexdigest()[:16]


# An attention heatmap's row: (layer, mode); its column: (variant, extent).
_Row = tuple[int, str]
_Column = tuple[str, int]


@dataclass(frozen=True)
class _Cell:
    """One insertion point x variant/extent, over the trained architectures."""

    n: int  # architectures with this unit here
    on_front: int  # of which on front 1
    n_without: int  # architectures with no GE at this layer, the comparison group
    accuracy: float | None  # mean accuracy with the unit minus mean accuracy without GE here
    cost: float | None  # the same for the cost, in percent: GFLOPs and parameters differ by orders of magnitude


def _attention_cells(view: StudyView, cost: str) -> tuple[list[_Row], list[_Column], dict[tuple[_Row, _Column], _Cell]]:
    """Rows, columns and, for each cell some architecture filled, its counts and average effects."""
    parsed = [(e, dict(e.placements)) for e in view.trained if e.placements is not None]
    with_unit: dict[tuple[_Row, _Column], list[Evaluation]] = defaultdict(list)
    for e, placements in parsed:
        for layer, p in placements.items():
            with_unit[(layer, p.mode), (p.variant, p.extent)].append(e)
    # Per layer, the comparison group: architectures without GE there (means computed once per layer).
    without: dict[int, tuple[int, float | None, float | None]] = {}
    for layer in {row[0] for row, _ in with_unit}:
        others = [e for e, placements in parsed if layer not in placements]
        without[layer] = (len(others), _mean([e.accuracy for e in others]), _mean([e.costs.get(cost) for e in others]))
    cells = {}
    for (row, col), members in with_unit.items():
        n_without, accuracy_without, cost_without = without[row[0]]
        accuracy, unit_cost = _mean([e.accuracy for e in members]), _mean([e.costs.get(cost) for e in members])
        cells[row, col] = _Cell(
            n=len(members),
            on_front=sum(e.front == 1 for e in members),
            n_without=n_without,
            accuracy=accuracy - accuracy_without if accuracy is not None and accuracy_without is not None else None,
            cost=(unit_cost / cost_without - 1) * 100 if unit_cost is not None and cost_without else None,
        )
    rows = sorted({row for row, _ in cells})
    columns = sorted({col for _, col in cells}, key=lambda c: (VARIANTS.index(c[0]), EXTENTS.index(c[1])))
    return rows, columns, cells


def _mean(values: Sequence[float | None]) -> float | None:
    known = [v for v in values if v is not None]
    return sum(known) / len(known) if known else None


def _cell_text(field: str, cell: _Cell | None) -> str:
    value = getattr(cell, field, None)
    if value is None:
        return ""
    if field == "on_front":
        return f"{value}/{cell.n}"
    return f"{value:+.4f}" if field == "accuracy" else f"{value:+.2f}%"


def _cell_hover(cell: _Cell | None, view: StudyView, cost: str) -> str:
    if cell is None:
        return "not trained at this point"
    accuracy = "n/a" if cell.accuracy is None else f"{cell.accuracy:+.4f}"
    cost_change = "n/a" if cell.cost is None else f"{cell.cost:+.3f}%"
    return (
        f"in {cell.n} trained architecture(s), {cell.on_front} on front 1<br>"
        f"vs {cell.n_without} without GE at this point: {view.accuracy_name} {accuracy}, "
        f"{COSTS[cost].label} {cost_change}"
    )


def _point_label(row: tuple[int, str]) -> str:
    layer, mode = row
    return f"layer {layer}" + (" (inside)" if mode == "inside" else "")


def _choice_label(col: tuple[str, int]) -> str:
    variant, extent = col
    return f"{PAPER_NAMES.get(variant, variant)} {extent_label(extent)}"


def _insertion_points(e: Evaluation) -> str:
    placements = e.placements
    if placements is None:
        return e.key
    if not placements:
        return "none (the baseline)"
    return "; ".join(
        f"layer {layer}: {_choice_label((p.variant, p.extent))}" + (" inside" if p.mode == "inside" else "")
        for layer, p in placements
    )


def _format_cost(name: str, value: float) -> str:
    formats = {"gflops": ".4g", "params": ",.0f", "latency": ".3g", "latency-ratio": ".3f", "memory": ".3g"}
    return format(value, formats[name])


def _cost_text(e: Evaluation, name: str) -> str:
    """A cost for the hover; the latency ratio with its 95 % interval, and whether that holds 1 (no difference)."""
    record = e.record
    if name != "latency-ratio":
        return _format_cost(name, e.costs[name])
    text = latency_text(record.latency_ratio, record.latency_ratio_low, record.latency_ratio_high)
    if record.latency_ratio_low is not None and record.latency_ratio_low <= 1 <= record.latency_ratio_high:
        text += ", 95% interval holds 1"
    return text


def _text(value: str) -> str:
    """Study text for a plotly label: plotly reads tags there, but shows ``&lt;`` and ``&gt;`` as text.

    Quotes stay as they are: plotly shows ``&quot;`` literally, and without ``<`` no tag can start.
    """
    return html.escape(value, quote=False)


def _hover(view: StudyView, members: Sequence[Evaluation]) -> dict[str, Any]:
    """Hover text of scatter points: the architecture's code, insertion points, numbers and gain."""
    customdata = []
    for e in members:
        gain = e.gain
        standing = f"front {e.front}" if e.front is not None else e.state.value
        standing += ", the knee" if e.number == view.knee else ""
        standing += ", the baseline" if e.baseline else ""
        lines = [
            standing,
            f"insertion points: {_insertion_points(e)}",
        ]
        if e.accuracy is not None:
            lines.append(
                f"{view.accuracy_name} {e.accuracy:.4f}"
                + (" at its last epoch" if e.state == Status.PRUNED else "")
                + (f" ({gain:+.4f} vs baseline)" if gain is not None else "")
            )
        lines.append(", ".join(f"{COSTS[c].label} {_cost_text(e, c)}" for c in COSTS if c in e.costs))
        if e.note:
            lines.append(e.note)
        if e.reused_by:
            lines.append(f"sampled again as trial(s) {', '.join(map(str, e.reused_by))}")
        customdata.append([e.number, _text(e.code), "<br>".join(_text(line) for line in lines)])
    return {
        "customdata": customdata,
        "hovertemplate": "<b>%{customdata[1]}</b> (trial %{customdata[0]})<br>%{customdata[2]}<extra></extra>",
    }


def _by_cost(members: Sequence[Evaluation], cost: str) -> list[Evaluation]:
    return sorted(members, key=lambda e: (e.costs.get(cost, np.inf), e.number))


def _xs(members: Sequence[Evaluation], cost: str, sort: bool) -> list[float | None]:
    """X of each member for ``cost``; the front's line is drawn in cost order."""
    return [e.costs.get(cost) for e in (_by_cost(members, cost) if sort else members)]


def _joined_curves(members: Sequence[Evaluation]) -> tuple[list[Any], list[Any], list[str]]:
    """Many curves as one trace, separated by gaps: thousands of traces would make the page crawl.

    Each point's label is one string (not a customdata row), which keeps thousands of curves quick to build.
    """
    x: list[Any] = []
    y: list[Any] = []
    labels: list[str] = []
    for e in members:
        label = f"trial {e.number}: {_text(e.code)}"
        for epoch, accuracy in e.curve:
            x.append(epoch)
            y.append(accuracy)
            labels.append(label)
        x.append(None)
        y.append(None)
        labels.append("")
    return x, y, labels


def _layout(title: str) -> dict[str, Any]:
    # uirevision keeps zoom and hidden traces when the served page redraws with new trials.
    return {
        "title": {"text": title, "x": 0.01},
        "template": "plotly_white",
        "uirevision": "ge-nas",
        "margin": {"t": 70, "r": 20},
        "hoverlabel": {"align": "left"},
    }
