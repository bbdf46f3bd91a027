"""The Pareto dashboard: one HTML page that says what a search found, and shows where attention pays.

From a study stored by ``ge-nas search`` the page answers, top to bottom:

* the answer: the search's verdict, as a banner (which architecture beats the baseline
  beyond the seed noise, by how much and at what cost; or that none does);
* which architectures trade accuracy against cost best, with their 95 % intervals, and
  which insertion points, variants and extents pay, with theirs
  (:mod:`~ge_nas.report.dashboard_figures`);
* how every proxy trained, and whether the search is still finding better trade-offs;
* where the GE units of any architecture sit in the network, drawn as a picture beside its
  model YAML's changes (click a point or a table row); and two architectures side by side;
* how to take a front member further: its ``ge-nas export`` command, with a copy button.

Fronts, the knee, gains and intervals come from :func:`ge_nas.ranking.fronts.rank`, as in
``ge-nas show`` and the ``ge_nas_*`` tables.

:func:`dashboard_html` makes one self-contained file: plotly.js is inlined and a
Content-Security-Policy forbids fetching anything, so it opens offline and travels by mail.
Text from the study is escaped, and storage passwords are hidden. The same page, served by
:mod:`ge_nas.report.dashboard_server`, redraws itself as trials land. The page itself (HTML,
CSS and the script that draws, selects, compares and polls) is ``dashboard_page.html``,
shipped beside this module; this module fills it in.

Example:
    >>> from ge_nas.storage.database import open_existing_storage
    >>> from ge_nas.storage.studies import load_existing_study
    >>> study = load_existing_study(open_existing_storage("sqlite:///studies/demo.db"), "demo")  # doctest: +SKIP
    >>> write_dashboard(study, Path("report.html"))  # doctest: +SKIP
"""

from __future__ import annotations

import html
import json
import shlex
from importlib import resources
from pathlib import Path
from string import Template
from typing import Any

import optuna
from plotly.io.json import to_json_plotly
from plotly.offline import get_plotlyjs

from ge_nas.ranking.intervals import Estimate
from ge_nas.report.architecture_diagram import attention_units, network_layout, yaml_changes
from ge_nas.report.dashboard_figures import (
    FIGURES,
    attention_figure,
    curves_figure,
    format_cost,
    pareto_figure,
    progress_figure,
)
from ge_nas.report.study_view import StudyView, read_study
from ge_nas.storage.database import default_storage_url, safe_url
from ge_nas.storage.records import COSTS, Status

__all__ = [
    "banner_html",
    "contents_json",
    "dashboard_contents",
    "dashboard_html",
    "export_command",
    "front_table_html",
    "summary_html",
    "trial_details",
    "write_dashboard",
]

# No Plotly logo or cloud links: the page must not point anywhere.
PLOTLY_CONFIG: dict[str, Any] = {"displaylogo": False, "showLink": False, "showSendToCloud": False, "responsive": True}
# The page, as package data: $-placeholders filled in by dashboard_html.
_PAGE = Template(resources.files("ge_nas.report").joinpath("dashboard_page.html").read_text(encoding="utf-8"))


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


def banner_html(view: StudyView) -> str:
    """The answer first: the verdict, and the noise floor it was read against."""
    ranking = view.ranking
    kind = "found" if view.winner is not None else "none" if view.baseline is not None else "pending"
    noise = ranking.noise
    floor = (
        f"noise floor: ±{noise.half_width:.4f} {view.accuracy_name} over {noise.n} baseline seeds (95 % interval)"
        if noise is not None and noise.half_width is not None
        else "noise floor: not measured (one baseline seed)"
    )
    confirmed = sum(e.seeds >= 2 for e in view.trained if not e.baseline)
    details = f"{floor}; {confirmed} architecture(s) confirmed with several seeds"
    return (
        f'<div class="verdict verdict-{kind}"><strong>Verdict:</strong> '
        f'<span id="verdict-text">{html.escape(ranking.verdict())}</span>'
        f'<div class="verdict-details">{html.escape(details)}</div></div>'
    )


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
        mosaic = "" if proxy.get("mosaic", True) else ", mosaic off"
        parts.insert(1, f"proxy: {proxy.get('epochs', '?')} epochs at {proxy.get('imgsz', '?')} px{mosaic}")
    if view.knee is not None:
        knee = next(e for e in view.evaluations if e.number == view.knee)
        parts.append(f"knee: trial {knee.number} ({knee.code})")
    if view.baseline is not None and view.baseline.accuracy is not None:
        scored = " (supernet score)" if view.supernet else ""
        parts.append(f"baseline {view.accuracy_name}{scored}: {view.baseline.accuracy:.4f}")
    if view.progress.volume:
        parts.append(f"hypervolume: {view.progress.volume[-1]:.3f} of the reference box")
    if view.storage:
        parts.append(f"storage: {view.storage}")
    return "<p>" + html.escape("; ".join(parts)) + "</p>"


def front_table_html(view: StudyView) -> str:
    """Front 1 as a table that fits the window: a row per member, its intervals, and its export command."""
    if not view.front:
        return "<p>No trained architecture yet: the front appears here as trials finish.</p>"
    # A column per cost the study ranks by; the other measured costs share one, so the table fits narrow windows.
    own = [c for c in view.costs if c in view.objectives] or list(view.costs[:1])
    others = [c for c in view.costs if c not in own]
    scored = [f"supernet {view.accuracy_name}", "proxy seeds", f"proxy {view.accuracy_name}"]
    head = ["trial", "architecture", *(scored if view.supernet else ["seeds", view.accuracy_name]), "gain vs baseline"]
    head += [COSTS[c].label for c in own] + (["other costs"] if others else []) + ["", "export it"]
    rows = []
    for e in view.front:
        marks = ", ".join(
            m
            for m, on in (
                ("the verdict's", e.number == view.winner),
                ("knee", e.number == view.knee),
                ("baseline", e.baseline),
            )
            if on
        )
        command = export_command(view.name, e.number, view.storage)
        cells = [
            str(e.number),
            html.escape(e.code),
            *([_number(e.supernet_score)] if view.supernet else []),
            str(e.seeds),
            _with_interval(e.estimate, ".4f"),
            "(baseline)" if e.baseline else _with_interval(e.gain_estimate, "+.4f") + (" *" if e.significant else ""),
            *(format_cost(c, e.costs[c]) if c in e.costs else "" for c in own),
            *([_other_costs(e.costs, others)] if others else []),
            marks,
            f"<code>{html.escape(command)}</code>"
            f'<button type="button" class="copy" data-command="{html.escape(command)}">copy</button>',
        ]
        rows.append(f'<tr data-trial="{e.number}">' + "".join(f"<td>{c}</td>" for c in cells) + "</tr>")
    header = "<tr>" + "".join(f"<th>{html.escape(h)}</th>" for h in head) + "</tr>"
    note = "± half a 95 % interval over seeds; gains paired by seed; * beyond the seed noise"
    if view.supernet:
        note += "; the front ranks supernet scores, the proxies that confirmed them give the gains and the verdict"
    note = f"<p class='note'>{note}</p>"
    return f"<table><thead>{header}</thead><tbody>{''.join(rows)}</tbody></table>{note}"


def trial_details(view: StudyView) -> dict[str, Any]:
    """What the picture and the comparison show of each evaluated architecture, by trial number."""
    baseline_yaml = view.baseline.record.yaml if view.baseline is not None else None
    details = {}
    for e in view.evaluations:
        if e.state not in (Status.COMPLETE, Status.PRUNED, Status.INFEASIBLE):
            continue
        details[str(e.number)] = {
            "number": e.number,
            "code": e.code,
            "state": e.state.value,
            "front": e.front,
            "baseline": e.baseline,
            "accuracy": e.accuracy,
            "supernet_score": e.supernet_score,
            "proxy_accuracy": e.estimate.mean if e.estimate is not None else None,
            "interval": _bounds(e.estimate),
            "gain": e.gain,
            "gain_interval": _bounds(e.gain_estimate),
            "significant": e.significant,
            "seeds": {str(s): curve[-1][1] for s, curve in sorted(e.seed_curves.items()) if curve},
            "curves": {str(s): [list(point) for point in curve] for s, curve in sorted(e.seed_curves.items())},
            "costs": {COSTS[c].label: format_cost(c, v) for c, v in e.costs.items()},
            "units": attention_units(e.record.key),
            "changes": yaml_changes(baseline_yaml, e.record.yaml),
            "note": e.note,
        }
    return details


def dashboard_contents(study: optuna.Study, storage_url: str | None = None) -> dict[str, Any]:
    """What the page shows: the version, the banner, the figures (plotly JSON), the tables, and each trial's details."""
    view = read_study(study, storage_url)
    figures = {
        "pareto": pareto_figure(view),
        "attention": attention_figure(view),
        "curves": curves_figure(view),
        "progress": progress_figure(view),
    }
    baseline_yaml = view.baseline.record.yaml if view.baseline is not None else None
    return {
        "version": view.version,
        "banner": banner_html(view),
        "figures": {name: figures[name].to_plotly_json() for name in FIGURES},
        "summary": summary_html(view),
        "table": front_table_html(view),
        "network": network_layout(baseline_yaml) if baseline_yaml else {"layers": [], "edges": []},
        "trials": trial_details(view),
        "accuracy_name": view.accuracy_name,
        # Shown as A and B when the page opens: the featured architecture against the baseline.
        "selected": [view.featured, view.baseline.number if view.baseline is not None else None],
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
        banner=contents["banner"],
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


def _other_costs(costs: dict[str, float], names: list[str]) -> str:
    return html.escape("; ".join(f"{COSTS[c].label} {format_cost(c, costs[c])}" for c in names if c in costs))


def _with_interval(estimate: Estimate | None, spec: str) -> str:
    if estimate is None:
        return "-"
    spread = "" if estimate.half_width is None else f" ±{estimate.half_width:.4f}"
    return format(estimate.mean, spec) + spread


def _number(value: float | None) -> str:
    return "-" if value is None else f"{value:.4f}"


def _bounds(estimate: Estimate | None) -> list[float] | None:
    return None if estimate is None or estimate.low is None else [estimate.low, estimate.high]
