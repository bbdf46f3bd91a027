"""The dashboard's plotly figures, drawn from a :class:`~ge_nas.report.study_view.StudyView`.

* :func:`pareto_figure`: accuracy against cost, every trial; 95 % intervals as error bars
  (accuracy over seeds; the latency ratio's when latency is the cost); architectures
  confirmed with several seeds as diamonds;
* :func:`attention_figure`: where attention pays: per insertion point and unit (grouped by
  module: GE by variant/extent, then SE, ECA, CBAM, Coordinate Attention, SimAM), how often
  on front 1 and the average effect on accuracy and cost, with its interval; a cell
  whose interval includes 0 (or that rests on one architecture) is faded;
* :func:`curves_figure`: every proxy's learning curve, pruned ones cut where they stopped;
* :func:`progress_figure`: the share of the reference box the front covers, after every
  trial, and the best gain found so far.
"""

from __future__ import annotations

import html
from collections import defaultdict
from collections.abc import Sequence
from typing import Any

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from ge_nas.layers.choices import EXTENTS, GE, MODULES, VARIANTS, choice_label, module_of
from ge_nas.ranking.effects import Trained, UnitEffect, unit_effects
from ge_nas.report.study_view import Evaluation, StudyView
from ge_nas.storage.records import COSTS, Status, latency_text

__all__ = ["FIGURES", "attention_figure", "curves_figure", "format_cost", "pareto_figure", "progress_figure"]

# The page's figures, in page order; each is drawn into the element ``figure-<name>``.
FIGURES: tuple[str, ...] = ("pareto", "attention", "curves", "progress")
# Latency costs whose interval (the latency ratio's) can be drawn as horizontal error bars.
_LATENCY_COSTS = ("latency", "latency-ratio")
_BAR_COLOUR = "#555"


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
                error_y=_accuracy_bars(trained),
                marker={
                    "symbol": ["diamond" if e.seeds >= 2 else "circle" for e in trained],
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
        if trace.name == "trained (colour: front)":
            trace.error_x = _latency_bars(members, view.costs[0])
        figure.add_trace(trace)
    figure.update_layout(
        _layout(
            f"{view.accuracy_name} against cost",
            "every trial, coloured by front; ◆ confirmed with several seeds (bars: 95 % intervals), ● one seed; "
            "click a point to show it below, shift-click to compare",
            top=130,
        ),
        xaxis={"title": {"text": COSTS[view.costs[0]].label}},
        yaxis={"title": {"text": f"{view.accuracy_name} ({'supernet score' if view.supernet else 'proxy'})"}},
        yaxis2={"overlaying": "y", "range": [0, 1], "visible": False, "fixedrange": True},
        legend={"orientation": "h", "y": -0.18},
        height=560,
    )
    if len(view.costs) > 1:
        buttons = []
        for cost in view.costs:
            xs = []
            ys = []
            error_xs = []
            for members, member_ys, trace in layers:
                front_line = trace.name == "front 1"
                # Arrays, not lists: plotly copies button arguments deeply, element by element.
                xs.append(np.array(_xs(members, cost, sort=front_line), dtype=float))
                ys.append(
                    np.array([e.accuracy for e in _by_cost(members, cost)] if front_line else member_ys, dtype=float)
                )
                trained_trace = trace.name == "trained (colour: front)"
                error_xs.append(_latency_bars(members, cost) if trained_trace else {"visible": False})
            buttons.append(
                {
                    "label": COSTS[cost].label,
                    "method": "update",
                    "args": [{"x": xs, "y": ys, "error_x": error_xs}, {"xaxis.title.text": COSTS[cost].label}],
                }
            )
        figure.update_layout(
            updatemenus=[
                {
                    "type": "buttons",
                    "direction": "right",
                    "x": 0.0,
                    "xanchor": "left",
                    "y": 1.02,
                    "yanchor": "bottom",
                    "buttons": buttons,
                }
            ]
        )
    return figure


def _accuracy_bars(members: Sequence[Evaluation]) -> dict[str, Any]:
    """Each point's 95 % interval over seeds as a vertical bar; none for one seed, nor at a supernet score."""
    halves = [
        e.estimate.half_width if e.estimate and e.estimate.half_width is not None and e.supernet_score is None else 0.0
        for e in members
    ]
    # An explicit colour: the default, the markers', is an array (the front) and no colour.
    return {
        "type": "data",
        "array": np.array(halves, dtype=float),
        "visible": True,
        "thickness": 1,
        "width": 3,
        "color": _BAR_COLOUR,
    }


def _latency_bars(members: Sequence[Evaluation], cost: str) -> dict[str, Any]:
    """The latency ratio's 95 % interval as a horizontal bar when latency is the cost (in ms: scaled alike)."""
    if cost not in _LATENCY_COSTS:
        return {"visible": False}
    minus, plus = [], []
    for e in members:
        record = e.record
        if record.latency_ratio_low is None or record.latency_ratio_high is None or not record.latency_ratio:
            minus.append(0.0)
            plus.append(0.0)
            continue
        scale = e.costs.get(cost, 0.0) / record.latency_ratio  # ratio -> the cost's own unit
        minus.append((record.latency_ratio - record.latency_ratio_low) * scale)
        plus.append((record.latency_ratio_high - record.latency_ratio) * scale)
    return {
        "type": "data",
        "symmetric": False,
        "array": np.array(plus, dtype=float),
        "arrayminus": np.array(minus, dtype=float),
        "visible": True,
        "thickness": 1,
        "width": 3,
        "color": _BAR_COLOUR,
    }


def attention_figure(view: StudyView) -> go.Figure:
    """Per insertion point and unit: front-1 appearances, and average effects on accuracy and cost.

    Columns are grouped by module: GE's variants and extents first, then the other modules a
    study offered. An effect compares the trained architectures with that unit at that point
    against those with no unit there at all (:mod:`ge_nas.ranking.effects`): under a random or
    TPE search that estimates what the unit adds,
    other units averaged out. Each accuracy effect carries Welch's 95 % interval over the two
    groups of architectures; a cell whose interval includes 0, or that has no interval (one
    architecture), is drawn faded (its colour at 0), its numbers still shown.
    """
    cost = view.costs[0]
    rows, columns, cells = _attention_cells(view, cost)
    titles = (
        "on front 1 (architectures)",
        f"Δ {view.accuracy_name} vs no unit there",
        f"Δ {COSTS[cost].label} vs no unit there",
    )
    figure = make_subplots(rows=1, cols=3, shared_yaxes=True, horizontal_spacing=0.03, subplot_titles=titles)
    panels = (("on_front", "Blues", None), ("accuracy", "RdBu", 0.0), ("cost", "RdBu_r", 0.0))
    for column_number, (field, scale, middle) in enumerate(panels, start=1):
        z = [[_cell_colour(field, cells.get((row, col))) for col in columns] for row in rows]
        # Effects centre on 0; counts start at 0 (white), so that with no unit on front 1 no cell looks filled.
        if middle is None:
            colour_range = {"zmin": 0, "zmax": max([1, *(v for line in z for v in line if v is not None)])}
        else:
            colour_range = {"zmid": middle}
        figure.add_trace(
            go.Heatmap(
                **colour_range,
                z=z,
                x=[_choice_label(col) for col in columns],
                y=[_point_label(row) for row in rows],
                text=[[_cell_text(field, cells.get((row, col))) for col in columns] for row in rows],
                texttemplate="%{text}",
                customdata=[[_cell_hover(cells.get((row, col)), view, cost) for col in columns] for row in rows],
                hovertemplate="%{y}, %{x}<br>%{customdata}<extra></extra>",
                colorscale=scale,
                showscale=False,
                xgap=2,
                ygap=2,
            ),
            row=1,
            col=column_number,
        )
    others = any(module_of(variant) != GE for variant, _ in columns)
    grouping = "GE by variant/extent, then the other modules" if others else "GE by variant/extent"
    figure.update_layout(
        _layout(
            f"Where attention pays: insertion point x unit ({grouping})",
            "each cell: architectures with that unit there (n), the mean effect and its 95 % interval; "
            "faded where the interval includes 0 or rests on one architecture",
            top=110,
        ),
        height=max(320, 120 + 28 * len(rows)),
    )
    figure.update_yaxes(autorange="reversed")
    if not rows:
        figure.add_annotation(
            text="no architecture with an attention unit trained yet", showarrow=False, xref="paper", yref="paper"
        )
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
    """The share of the reference box front 1 covers, after every trial, and the best gain found so far.

    Flat means the search stopped finding better trade-offs. The box spans the best value of
    each objective (its ideal corner) to the hypervolume's reference point, so the share reads
    0 to 1 whatever the objectives' units.
    """
    progress = view.progress
    units = ", ".join(f"{n} {v:.4g}" for n, v in zip(view.objectives, progress.reference or (), strict=False))
    units = units or "none yet"
    anchor = "anchored at the baseline" if view.baseline is not None else "no trained baseline yet"
    figure = make_subplots(specs=[[{"secondary_y": True}]])
    figure.add_trace(
        go.Scatter(
            name="hypervolume (share of the box)",
            x=list(progress.trials),
            y=list(progress.volume),
            mode="lines",
            line={"shape": "hv", "color": "#0d0887"},
            hovertemplate="after trial %{x}: %{y:.3f} of the box<extra></extra>",
        ),
        secondary_y=False,
    )
    figure.add_trace(
        go.Scatter(
            name=f"best gain in {view.accuracy_name} so far",
            x=list(progress.trials),
            y=list(progress.best_gain),
            mode="lines",
            line={"shape": "hv", "color": "#e38d2c", "dash": "dot"},
            hovertemplate="after trial %{x}: %{y:+.4f}<extra></extra>",
        ),
        secondary_y=True,
    )
    last = max(len(progress.trials) - 1, 1)
    figure.update_layout(
        _layout(
            "Search progress: front 1's share of the reference box (0 to 1), and the best gain so far",
            f"the box spans the best value of each objective to the reference point ({units}, {anchor})",
        ),
        xaxis={
            "title": {"text": "trial"},
            "range": [-0.5, last + 0.5],
            "tickformat": "d",
            "dtick": max(1, round(last / 10)),
        },
        legend={"orientation": "h", "y": -0.2},
        height=400,
    )
    figure.update_yaxes(title_text="share of the box", range=[0, 1.02], secondary_y=False)
    figure.update_yaxes(
        title_text="best gain vs baseline",
        zeroline=True,
        showgrid=False,
        tickformat="+.3f",
        tickmode="auto",
        secondary_y=True,
    )
    return figure


# An attention heatmap's row: (layer, mode); its column: (variant, extent), a GE variant or another module.
_Row = tuple[int, str]
_Column = tuple[str, int]


def _attention_cells(
    view: StudyView, cost: str
) -> tuple[list[_Row], list[_Column], dict[tuple[_Row, _Column], UnitEffect]]:
    """Rows, columns (grouped by module, GE first) and, for each cell some architecture filled, its effect
    against the architectures with no unit at that layer."""
    trained = [
        Trained(dict(e.placements), e.accuracy, e.front, e.costs.get(cost))
        for e in view.trained
        if e.placements is not None
    ]
    cells = unit_effects(
        trained,
        groups_of=lambda t: {((layer, p.mode), (p.variant, p.extent)) for layer, p in t.placements.items()},
        compared_by=lambda cell: cell[0][0],
        lacks=lambda layer, t: layer not in t.placements,
    )
    rows = sorted({row for row, _ in cells})
    columns = sorted({col for _, col in cells}, key=_column_order)
    return rows, columns, cells


def _column_order(column: _Column) -> tuple[int, int, int]:
    variant, extent = column
    module = module_of(variant)
    if module != GE:
        return list(MODULES).index(module), 0, 0
    return 0, VARIANTS.index(variant), EXTENTS.index(extent)


def _cell_colour(field: str, cell: UnitEffect | None) -> float | None:
    """The colour value of a cell: faded to 0 when its accuracy effect is within the noise (or unmeasured)."""
    if cell is None:
        return None
    if field == "on_front":
        return cell.on_front
    return getattr(cell, field) if cell.clear else 0.0


def _cell_text(field: str, cell: UnitEffect | None) -> str:
    value = getattr(cell, field, None)
    if value is None:
        return ""
    if field == "on_front":
        return f"{value}/{cell.n}"
    if field == "cost":
        return f"{value:+.2f}%"
    half = cell.effect.half_width if cell.effect else None
    return f"{value:+.3f}" + (f" ±{half:.3f}" if half is not None else "") + f" (n={cell.n})"


def _cell_hover(cell: UnitEffect | None, view: StudyView, cost: str) -> str:
    if cell is None:
        return "not trained at this point"
    effect = cell.effect
    if effect is None:
        accuracy = "n/a"
    elif effect.low is None:
        accuracy = f"{effect.mean:+.4f} (no interval: fewer than two architectures on a side)"
    else:
        verdict = "beyond the noise" if cell.clear else "within the noise"
        accuracy = f"{effect.mean:+.4f} (95 % CI {effect.low:+.4f} to {effect.high:+.4f}, {verdict})"
    cost_change = "n/a" if cell.cost is None else f"{cell.cost:+.3f}%"
    return (
        f"in {cell.n} trained architecture(s), {cell.on_front} on front 1<br>"
        f"vs {cell.n_without} without a unit at this point: {view.accuracy_name} {accuracy}, "
        f"{COSTS[cost].label} {cost_change}"
    )


def _point_label(row: tuple[int, str]) -> str:
    layer, mode = row
    return f"layer {layer}" + (" (inside)" if mode == "inside" else "")


def _choice_label(col: tuple[str, int]) -> str:
    return choice_label(*col)


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


def format_cost(name: str, value: float) -> str:
    """A cost as the page prints it (GFLOPs to 4 digits, parameters in full, ...)."""
    formats = {"gflops": ".4g", "params": ",.0f", "latency": ".3g", "latency-ratio": ".3f", "memory": ".3g"}
    return format(value, formats[name])


def _cost_text(e: Evaluation, name: str) -> str:
    """A cost for the hover; the latency ratio with its 95 % interval, and whether that holds 1 (no difference)."""
    record = e.record
    if name != "latency-ratio":
        return format_cost(name, e.costs[name])
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
        if e.supernet_score is not None:
            lines.append(f"supernet score {view.accuracy_name} {e.supernet_score:.4f}")
            if e.estimate is not None:  # the proxies that confirmed it
                lines.append(
                    f"proxies {view.accuracy_name} {e.estimate.mean:.4f} over {e.estimate.n} seeds"
                    + (f" ({gain:+.4f} vs baseline)" if gain is not None else "")
                )
        elif e.accuracy is not None:
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


def _layout(title: str, subtitle: str = "", top: int = 90) -> dict[str, Any]:
    # uirevision keeps zoom and hidden traces when the served page redraws with new trials.
    return {
        "title": {"text": title, "x": 0.01, "subtitle": {"text": subtitle}},
        "template": "plotly_white",
        "uirevision": "ge-nas",
        "margin": {"t": top, "r": 20},
        "hoverlabel": {"align": "left"},
    }
