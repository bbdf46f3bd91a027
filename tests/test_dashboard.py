"""The Pareto dashboard, as a browser shows it: headless Chromium (Debian's) driven by Playwright.

One small real study is searched once for the module; synthetic studies, built with Optuna's
``create_trial`` and the user attributes ``ge-nas search`` stores, cover pruning, budgets,
hostile text and size.
"""

from __future__ import annotations

import random
import re
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import optuna
import pytest
from optuna.trial import FrozenTrial, TrialState
from playwright.sync_api import Browser, ConsoleMessage, Page, sync_playwright

from ge_nas.cli import main
from ge_nas.errors import InputError
from ge_nas.layers.choices import EXTENTS, PAPER_NAMES, VARIANTS, extent_label
from ge_nas.ranking.fronts import rank_study
from ge_nas.report.dashboard import dashboard_html, write_dashboard
from ge_nas.report.dashboard_figures import FIGURES, pareto_figure
from ge_nas.report.dashboard_server import DashboardServer
from ge_nas.report.study_view import read_study
from ge_nas.space.candidate import MODES, Candidate, Placement
from ge_nas.space.model_yaml import generate_model_yaml
from ge_nas.space.search_space import load_space
from tests.conftest import CONFIRMED_STUDY, TINY_STUDY, CommandResult

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
# Page functions are passed as functions: the page's Content-Security-Policy forbids evaluating strings.
RENDERED = "() => document.body.dataset.drawn !== undefined"  # set when every part of the page is drawn
HOSTILE_NAME = "<script>alert(1)</script>"


@dataclass
class PageLog:
    """What a page did besides drawing: every request, console message, script error and dialog."""

    requests: list[str] = field(default_factory=list)
    console: list[ConsoleMessage] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    dialogs: list[str] = field(default_factory=list)

    @property
    def console_errors(self) -> list[str]:
        return [m.text for m in self.console if m.type in ("error", "warning")]


def open_dashboard(browser: Browser, url: str) -> tuple[Page, PageLog]:
    """Open ``url``, recording what the page does, and wait until every figure is drawn."""
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    log = PageLog()
    page.on("request", lambda request: log.requests.append(request.url))
    page.on("console", lambda message: log.console.append(message))
    page.on("pageerror", lambda error: log.errors.append(str(error)))
    page.on("dialog", lambda dialog: (log.dialogs.append(dialog.message), dialog.dismiss()))
    page.goto(url)
    page.wait_for_function(RENDERED)
    return page, log


def trace_counts(page: Page) -> list[int]:
    return page.evaluate("Array.from(document.querySelectorAll('.figure.js-plotly-plot')).map(el => el.data.length)")


def hover_text(page: Page, trace_name: str, point: int) -> str:
    """Hover over one point of the Pareto scatter, as the mouse would, and read the label shown."""
    return page.evaluate(
        """([name, point]) => {
            const el = document.getElementById('figure-pareto');
            Plotly.Fx.hover(el, [{curveNumber: el.data.findIndex(t => t.name === name), pointNumber: point}]);
            return el.querySelector('.hoverlayer').textContent;
        }""",
        [trace_name, point],
    )


def scatter(page: Page, trace_name: str) -> dict[str, Any]:
    """One trace of the Pareto scatter as plotly holds it in the page."""
    return page.evaluate(
        "name => { const t = document.getElementById('figure-pareto').data.find(t => t.name === name);"
        " return {x: t.x, y: t.y, customdata: t.customdata, hovertemplate: t.hovertemplate}; }",
        trace_name,
    )


# --- synthetic studies: the user attributes ge-nas search stores, without training anything ---


def random_candidate(rng: random.Random) -> Candidate:
    layers = rng.sample((2, 4, 6, 9, 12, 15, 18, 21), rng.randint(1, 3))
    return Candidate.of(
        {layer: Placement(rng.choice(VARIANTS), rng.choice(EXTENTS), rng.choice(MODES)) for layer in layers}
    )


def searched_trial(candidate: Candidate, rng: random.Random, outcome: str = "trained", code: str = "") -> FrozenTrial:
    """A trial as ``ge-nas search`` stores it: ``trained``, ``pruned`` (after epoch 2) or ``infeasible``."""
    units = candidate.units
    gflops = 0.3542 + 0.0002 * units + rng.uniform(0, 0.0002)
    final = 0.59 + rng.uniform(-0.04, 0.03)
    epochs = [{"epoch": e, "map50": final * e / 3, "map50-95": final * e / 4} for e in range(1, 5)]
    attrs: dict[str, Any] = {
        "key": candidate.key,
        "code": code or candidate.code,
        "units": units,
        "baseline": units == 0,
        "params": 3_157_200 + 2_000 * units,
        "gflops": gflops,
        "latency_ms": 12.7 + 2.5 * units + rng.uniform(0, 1),
        "latency_ratio": 1.0 + 0.2 * units,
        "constraints": [],
    }
    if outcome == "infeasible":
        attrs["infeasible"] = f"over budget: gflops {gflops:.4g} > 0.3545"
        return optuna.trial.create_trial(state=TrialState.COMPLETE, values=[0.0, gflops], user_attrs=attrs)
    if outcome == "pruned":
        attrs.update(epochs=epochs[:2], pruned_epoch=2, prune_reason="dominated at epoch 2 by trial 0")
        return optuna.trial.create_trial(state=TrialState.PRUNED, user_attrs=attrs)
    attrs.update(epochs=epochs, **{"map50-95": final, "map50": final * 4 / 3, "train_seconds": 15.0})
    return optuna.trial.create_trial(state=TrialState.COMPLETE, values=[final, gflops], user_attrs=attrs)


def synthetic_study(
    n_trials: int, name: str = "synthetic", storage: str | None = None, seed: int = 0, code: str = ""
) -> optuna.Study:
    """The baseline first, then random architectures: about 15% pruned, 10% over budget, some reused."""
    rng = random.Random(seed)
    study = optuna.create_study(study_name=name, storage=storage, directions=["maximize", "minimize"])
    study.set_metric_names(["map50-95", "gflops"])
    study.set_user_attr("settings", {"proxy": {"epochs": 4, "imgsz": 128}, "objectives": ["map50-95", "gflops"]})
    trials = [searched_trial(Candidate.baseline(), rng)]
    for number in range(1, n_trials):
        draw = rng.random()
        if draw < 0.05 and trials[number - 1].state == TrialState.COMPLETE:
            reused = trials[number - 1]
            attrs = {**reused.user_attrs, "reused_from": number - 1}
            trials.append(optuna.trial.create_trial(state=reused.state, values=reused.values, user_attrs=attrs))
            continue
        outcome = "pruned" if draw < 0.2 else "infeasible" if draw < 0.3 else "trained"
        trials.append(searched_trial(random_candidate(rng), rng, outcome, code))
    study.add_trials(trials)
    return study


# --- fixtures ---


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    if not CHROMIUM.is_file():
        pytest.skip(f"needs Debian's Chromium at {CHROMIUM}: apt-get install chromium")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture(scope="module")
def real_study(tiny_search: Path) -> tuple[optuna.Study, str]:
    """The shared real search (tests/conftest.py: 4 trials, 3 architectures, one reused), and its URL."""
    url = f"sqlite:///{tiny_search}"
    return optuna.load_study(study_name=TINY_STUDY, storage=url), url


@pytest.fixture(scope="module")
def report(real_study: tuple[optuna.Study, str], tmp_path_factory: pytest.TempPathFactory) -> Path:
    study, url = real_study
    return write_dashboard(study, tmp_path_factory.mktemp("report") / "report.html", storage_url=url)


@pytest.fixture(scope="module")
def report_page(browser: Browser, report: Path) -> Iterator[tuple[Page, PageLog]]:
    page, log = open_dashboard(browser, report.as_uri())
    yield page, log
    page.close()


def ge_nas(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    """Run the ``ge-nas`` command in this process (a fresh one spends seconds importing torch): exit code, out, err."""
    monkeypatch.setattr(sys, "argv", ["ge-nas", *args])
    try:
        main()
        code = 0
    except SystemExit as exit:
        code = int(exit.code or 0)
    out, err = capsys.readouterr()
    return code, out, err


# --- the report file ---


def test_report_is_one_file_that_loads_offline_without_errors(report_page: tuple[Page, PageLog], report: Path) -> None:
    _, log = report_page
    assert log.requests == [report.as_uri()]
    assert log.console_errors == [] and log.errors == []


def test_every_figure_of_the_report_is_drawn_with_data(report_page: tuple[Page, PageLog]) -> None:
    page, _ = report_page
    counts = trace_counts(page)
    assert len(counts) == len(FIGURES) and all(count > 0 for count in counts)
    names = page.evaluate("Array.from(document.querySelectorAll('.figure.js-plotly-plot')).map(el => el.id)")
    assert names == [f"figure-{name}" for name in FIGURES]


def test_each_point_carries_its_architecture_for_the_hover(
    report_page: tuple[Page, PageLog], real_study: tuple[optuna.Study, str]
) -> None:
    page, _ = report_page
    study, _ = real_study
    trained = scatter(page, "trained (colour: front)")
    assert "%{customdata[1]}" in trained["hovertemplate"]
    evaluated = [t for t in study.trials if "reused_from" not in t.user_attrs]
    assert [row[1] for row in trained["customdata"]] == [t.user_attrs["code"] for t in evaluated]
    assert trained["y"] == [t.values[0] for t in evaluated]


def test_hovering_a_point_shows_code_insertion_points_numbers_and_gain(report_page: tuple[Page, PageLog]) -> None:
    page, _ = report_page
    codes = [row[1] for row in scatter(page, "trained (colour: front)")["customdata"]]
    with_ge = next(i for i, code in enumerate(codes) if code != "base")
    label = hover_text(page, "trained (colour: front)", with_ge)
    assert label.startswith(codes[with_ge]) and "insertion points: layer 9: θ" in label  # GE at the SPPF
    assert "GFLOPs" in label and "parameters" in label and "vs baseline" in label


def test_the_hover_gives_the_latency_interval_and_memory_is_a_cost_to_switch_to(
    real_study: tuple[optuna.Study, str],
) -> None:
    study, url = real_study
    figure = pareto_figure(read_study(study, url))
    trained = next(trace for trace in figure.data if trace.name == "trained (colour: front)")
    interval = re.compile(r"latency ratio to the baseline \d\.\d{3}x \(\d\.\d{3}-\d\.\d{3}\)")
    assert all(interval.search(row[2]) and "peak memory (MB)" in row[2] for row in trained.customdata)
    assert "peak memory (MB)" in [button.label for button in figure.layout.updatemenus[0].buttons]


def test_front_table_gives_each_member_its_export_command(
    report_page: tuple[Page, PageLog], real_study: tuple[optuna.Study, str]
) -> None:
    page, _ = report_page
    _, url = real_study
    commands = page.locator("#front-table code").all_inner_texts()
    assert commands and all(c.startswith(f"ge-nas export --study tiny --storage {url} --trial ") for c in commands)
    assert all(c.endswith(" -o best.yaml") for c in commands)


# --- the answer, on a real search with a noise floor and a confirmed candidate ---


@pytest.fixture(scope="module")
def confirmed(confirmed_search: tuple[Path, CommandResult]) -> tuple[optuna.Study, str]:
    """The shared confirmed search (tests/conftest.py): 3 baseline seeds, the best candidate confirmed to 3 seeds."""
    db, _ = confirmed_search
    url = f"sqlite:///{db}"
    return optuna.load_study(study_name=CONFIRMED_STUDY, storage=url), url


@pytest.fixture(scope="module")
def confirmed_page(
    browser: Browser, confirmed: tuple[optuna.Study, str], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[Page, PageLog]]:
    study, url = confirmed
    report = write_dashboard(study, tmp_path_factory.mktemp("confirmed") / "report.html", storage_url=url)
    page, log = open_dashboard(browser, report.as_uri())
    yield page, log
    page.close()


def test_the_page_opens_with_the_verdict(
    confirmed_page: tuple[Page, PageLog], confirmed: tuple[optuna.Study, str]
) -> None:
    page, log = confirmed_page
    study, _ = confirmed
    ranking = rank_study(study)
    assert page.inner_text("#verdict-text") == ranking.verdict()
    noise = ranking.noise
    assert f"noise floor: ±{noise.half_width:.4f} map50-95 over 3 baseline seeds" in page.inner_text("#banner")
    tops = page.evaluate("['banner', 'summary', 'figure-pareto'].map(id => document.getElementById(id).offsetTop)")
    assert tops == sorted(tops)  # the answer first
    assert log.console_errors == [] and log.errors == []


def test_error_bars_show_each_architectures_interval_over_seeds(
    confirmed_page: tuple[Page, PageLog], confirmed: tuple[optuna.Study, str]
) -> None:
    page, _ = confirmed_page
    view = read_study(*confirmed)
    drawn = page.evaluate(
        "() => { const t = document.getElementById('figure-pareto')._fullData.find(t => t.name.startsWith('trained'));"
        " return {numbers: t.customdata.map(row => row[0]), bars: Array.from(t.error_y.array),"
        " symbols: t.marker.symbol}; }"
    )
    seeds = {e.number: e for e in view.trained}
    assert sorted(drawn["numbers"]) == sorted(seeds)
    confirmed_candidates = [e for e in view.trained if e.seeds >= 2 and not e.baseline]
    assert confirmed_candidates, "the search confirmed its best candidate with more seeds"
    for number, bar, symbol in zip(drawn["numbers"], drawn["bars"], drawn["symbols"], strict=True):
        e = seeds[number]
        if e.seeds >= 2:
            assert symbol == "diamond" and bar == pytest.approx(e.estimate.half_width) and bar > 0
        else:
            assert symbol == "circle" and bar == 0


def test_with_latency_as_the_cost_the_bars_also_show_its_interval(
    confirmed_page: tuple[Page, PageLog], confirmed: tuple[optuna.Study, str]
) -> None:
    page, _ = confirmed_page
    page.locator("#figure-pareto .updatemenu-button", has_text="latency (ms)").click()
    page.wait_for_function("() => document.getElementById('figure-pareto').layout.xaxis.title.text === 'latency (ms)'")
    bars = page.evaluate(
        "() => { const t = document.getElementById('figure-pareto')._fullData.find(t => t.name.startsWith('trained'));"
        " return [t.error_x.visible, Array.from(t.error_x.arrayminus), Array.from(t.error_x.array)]; }"
    )
    visible, below, above = bars
    assert visible and all(b > 0 for b in below + above)  # every architecture was timed in ABBA rounds
    page.locator("#figure-pareto .updatemenu-button", has_text="GFLOPs").click()
    page.wait_for_function("() => !document.getElementById('figure-pareto')._fullData[1].error_x.visible")


def marks(page: Page, panel: str) -> list[tuple[int, str, str]]:
    """The GE marks drawn in an architecture panel: (layer, mode, label), by layer."""
    return [
        (int(layer), mode, label)
        for layer, mode, label in page.evaluate(
            "panel => Array.from(document.querySelectorAll(`#architecture-${panel} .ge-unit`))"
            ".map(m => [m.dataset.layer, m.dataset.mode, m.dataset.label])",
            panel,
        )
    ]


def units_of(key: str) -> list[tuple[int, str, str]]:
    return [
        (layer, p.mode, f"{PAPER_NAMES[p.variant]} {extent_label(p.extent)}")
        for layer, p in Candidate.from_key(key).placements
    ]


def test_the_diagram_of_every_trial_marks_exactly_its_ge_units(
    confirmed_page: tuple[Page, PageLog], confirmed: tuple[optuna.Study, str]
) -> None:
    page, _ = confirmed_page
    study, _ = confirmed
    keys = {t.number: t.user_attrs["key"] for t in study.trials}
    assert any(units_of(key) for key in keys.values())
    shown = page.evaluate("Array.from(document.querySelectorAll('#pick-a option')).map(o => o.value).filter(v => v)")
    explored = {t.number for t in study.trials if t.user_attrs.get("seed_index", 0) == 0}  # further seeds: same ones
    assert {int(n) for n in shown} == explored - {t.number for t in study.trials if "reused_from" in t.user_attrs}
    for number in shown:
        page.select_option("#pick-a", number)
        assert page.inner_text("#architecture-a h3").startswith(f"A: trial {number}, ")
        assert marks(page, "a") == units_of(keys[int(number)])
        assert page.locator("#architecture-a svg .layer").count() == 23  # yolov8n: 10 backbone rows, 13 head rows


def test_the_comparison_opens_on_the_featured_architecture_against_the_baseline(
    confirmed_page: tuple[Page, PageLog], confirmed: tuple[optuna.Study, str]
) -> None:
    page, _ = confirmed_page
    view = read_study(*confirmed)
    page.select_option("#pick-a", str(view.featured))  # as the page opened (an earlier test moved it)
    page.select_option("#pick-b", str(view.baseline.number))
    featured = next(e for e in view.evaluations if e.number == view.featured)
    assert page.inner_text("#architecture-a h3") == f"A: trial {featured.number}, {featured.code}"
    assert page.inner_text("#architecture-b h3") == f"B: trial {view.baseline.number}, base"
    assert "3: seed 0 " in page.inner_text("#architecture-b dl")  # the baseline's three seeds, each with its score
    assert "GFLOPs" in page.inner_text("#architecture-a dl") and "latency (ms)" in page.inner_text("#architecture-b dl")
    curves = page.evaluate("document.getElementById('figure-compare').data.map(t => t.name)")
    assert curves == [f"A (trial {featured.number}) seed {s}" for s in sorted(featured.seed_curves)] + [
        f"B (trial {view.baseline.number}) seed {s}" for s in range(3)
    ]


def point_position(page: Page, number: int) -> tuple[float, float]:
    """Where trial ``number``'s point of the scatter is on the screen, scrolled into view."""
    page.locator("#figure-pareto").scroll_into_view_if_needed()
    x, y = page.evaluate(
        """number => {
            const el = document.getElementById('figure-pareto');
            const t = el._fullData.find(t => t.name.startsWith('trained'));  // data as drawn, after any button
            const i = t.customdata.findIndex(row => row[0] === number);
            const layout = el._fullLayout, box = el.getBoundingClientRect();
            return [box.left + layout._size.l + layout.xaxis.d2p(t.x[i]),
                    box.top + layout._size.t + layout.yaxis.d2p(t.y[i])];
        }""",
        number,
    )
    return x, y


def test_clicking_points_and_rows_picks_the_architectures_to_compare(
    confirmed_page: tuple[Page, PageLog], confirmed: tuple[optuna.Study, str]
) -> None:
    page, _ = confirmed_page
    view = read_study(*confirmed)
    first, second = (e.number for e in sorted(view.trained, key=lambda e: e.accuracy)[:2])  # apart on the y axis
    page.mouse.click(*point_position(page, first))
    page.wait_for_function("n => document.getElementById('architecture-a').dataset.trial === String(n)", arg=first)
    page.wait_for_timeout(400)  # plotly reads two clicks within 300 ms as a double click: a zoom reset
    page.keyboard.down("Shift")
    page.mouse.click(*point_position(page, second))
    page.keyboard.up("Shift")
    page.wait_for_function("n => document.getElementById('architecture-b').dataset.trial === String(n)", arg=second)
    row = view.front[-1].number
    page.locator(f"#front-table tr[data-trial='{row}'] td").first.click()
    assert page.get_attribute("#architecture-a", "data-trial") == str(row)
    assert page.get_attribute(f"#front-table tr[data-trial='{row}']", "class") == "selected-a"
    assert page.input_value("#pick-a") == str(row) and page.input_value("#pick-b") == str(second)


def test_the_front_table_fits_the_window_and_copies_each_command(
    browser: Browser, confirmed: tuple[optuna.Study, str]
) -> None:
    study, url = confirmed
    context = browser.new_context(
        permissions=["clipboard-read", "clipboard-write"], viewport={"width": 800, "height": 900}
    )
    with DashboardServer(study, url, port=0).start() as server:  # http://127.0.0.1: a secure context, clipboard on
        page = context.new_page()
        page.goto(server.url)
        page.wait_for_function(RENDERED)
        width = page.evaluate("[document.getElementById('front-table').scrollWidth, document.body.clientWidth]")
        assert width[0] <= width[1]
        button = page.locator("#front-table button.copy").first
        command = button.get_attribute("data-command")
        button.click()
        page.wait_for_function("() => document.querySelector('#front-table button.copy').textContent === 'copied'")
        assert page.evaluate("navigator.clipboard.readText()") == command
        assert command.startswith(f"ge-nas export --study {CONFIRMED_STUDY} --storage {url} --trial ")
    context.close()


def test_progress_is_a_share_of_the_box_over_every_trial(
    confirmed_page: tuple[Page, PageLog], confirmed: tuple[optuna.Study, str]
) -> None:
    page, _ = confirmed_page
    study, url = confirmed
    drawn = page.evaluate(
        "() => { const el = document.getElementById('figure-progress');"
        " return {x: el.data[0].x, volume: el.data[0].y, gain: el.data[1].y, range: el.layout.yaxis.range,"
        " format: el.layout.xaxis.tickformat}; }"
    )
    assert drawn["x"] == list(range(len(study.trials))) and drawn["format"] == "d"
    assert drawn["range"] == [0, 1.02] and all(0 < v <= 1 for v in drawn["volume"])
    gains = [e.gain for e in read_study(study, url).trained if not e.baseline and e.gain is not None]
    assert drawn["gain"][-1] == pytest.approx(max(gains))


def test_attention_cells_resting_on_one_architecture_are_faded_with_their_count(
    confirmed_page: tuple[Page, PageLog],
) -> None:
    page, _ = confirmed_page
    panel = page.evaluate(
        "() => { const t = document.getElementById('figure-attention').data[1]; return {z: t.z, text: t.text}; }"
    )
    filled = [
        (z, text)
        for zs, texts in zip(panel["z"], panel["text"], strict=True)
        for z, text in zip(zs, texts, strict=True)
        if text
    ]
    assert filled and all(z == 0 and text.endswith("(n=1)") for z, text in filled)  # one architecture per cell


def test_front_counts_are_coloured_from_zero_so_a_study_with_no_unit_on_the_front_shows_white_cells(
    confirmed_page: tuple[Page, PageLog],
) -> None:
    page, _ = confirmed_page
    counts = page.evaluate(
        "() => { const t = document.getElementById('figure-attention').data[0];"
        " return {z: t.z.flat().filter(v => v !== null), zmin: t.zmin, zmax: t.zmax, colours: t.colorscale}; }"
    )
    assert counts["z"] and counts["zmin"] == 0 and counts["zmax"] == max(1, *counts["z"])
    assert counts["colours"][0] == [0, "rgb(247,251,255)"]  # a count of 0: white


# --- behaviours shown on synthetic studies ---
def trained_trial(key: str, accuracy: float, baseline_yaml: str = "") -> FrozenTrial:
    """A trained architecture as ``ge-nas search`` stores it, with the accuracy given."""
    candidate = Candidate.from_key(key)
    attrs: dict[str, Any] = {
        "key": key,
        "code": candidate.code,
        "units": candidate.units,
        "baseline": candidate.units == 0,
        "params": 3_157_200 + 2_000 * candidate.units,
        "gflops": 0.3542 + 0.0002 * candidate.units,
        "epochs": [{"epoch": 1, "map50-95": accuracy}],
        "map50-95": accuracy,
    }
    if baseline_yaml:
        attrs["yaml"] = baseline_yaml
    return optuna.trial.create_trial(values=[accuracy, attrs["gflops"]], user_attrs=attrs)


def test_a_unit_inside_a_block_is_a_badge_in_its_box_and_one_after_it_a_circle_beside(
    browser: Browser, tmp_path: Path
) -> None:
    base_yaml = generate_model_yaml(load_space("yolov8n_ge"), Candidate.baseline()).text
    study = optuna.create_study(directions=["maximize", "minimize"])
    study.set_metric_names(["map50-95", "gflops"])
    study.add_trials(
        [trained_trial("base", 0.60, base_yaml), trained_trial("9:theta:8:after;21:theta-plus:0:inside", 0.61)]
    )
    page, _ = open_dashboard(browser, write_dashboard(study, tmp_path / "report.html").as_uri())
    page.select_option("#pick-a", "1")
    assert marks(page, "a") == [(9, "after", "θ 8"), (21, "inside", "θ+ global")]
    boxes = page.evaluate(
        """() => Array.from(document.querySelectorAll('#architecture-a .ge-unit')).map(mark => {
            const layer = `#architecture-a .layer[data-layer="${mark.dataset.layer}"] rect`;
            const box = document.querySelector(layer).getBBox();
            const shape = mark.querySelector('circle, rect').getBBox();
            return [shape.x >= box.x + box.width, shape.x + shape.width <= box.x + box.width && shape.x >= box.x];
        })"""
    )
    assert boxes == [[True, False], [False, True]]  # after: beside the box; inside: within it


def test_an_effect_clear_of_the_noise_is_coloured_and_the_rest_faded(browser: Browser, tmp_path: Path) -> None:
    study = optuna.create_study(directions=["maximize", "minimize"])
    study.set_metric_names(["map50-95", "gflops"])
    # θ+ global after the SPPF adds 0.05 whatever else is there; the units at layer 15 add nothing.
    trials = [trained_trial("base", 0.600)]
    for i, extent in enumerate((2, 4, 8, 0)):
        trials.append(trained_trial(f"9:theta-plus:0:after;15:theta:{extent}:after", 0.650 + 0.002 * (i % 2)))
        trials.append(trained_trial(f"15:theta:{extent}:after", 0.600 + 0.002 * (i % 2)))
    study.add_trials(trials)
    page, _ = open_dashboard(browser, write_dashboard(study, tmp_path / "report.html").as_uri())
    panel = page.evaluate(
        "() => { const t = document.getElementById('figure-attention').data[1];"
        " return {x: t.x, y: t.y, z: t.z, text: t.text}; }"
    )
    cells = {
        (row, column): (z, text)
        for row, zs, texts in zip(panel["y"], panel["z"], panel["text"], strict=True)
        for column, z, text in zip(panel["x"], zs, texts, strict=True)
        if text
    }
    clear = next(value for (row, column), value in cells.items() if row.startswith("layer 9") and column == "θ+ global")
    assert clear[0] == pytest.approx(0.0505, abs=0.002) and clear[1].endswith("(n=4)") and "±" in clear[1]
    faded = [value for (row, _), value in cells.items() if row.startswith("layer 15")]
    assert faded and all(z == 0 for z, _ in faded)  # each rests on two architectures of mixed effect


def test_pruned_and_infeasible_trials_are_drawn_apart(browser: Browser, tmp_path: Path) -> None:
    study = synthetic_study(40)
    page, _ = open_dashboard(browser, write_dashboard(study, tmp_path / "report.html").as_uri())
    pruned = [t for t in study.trials if t.state == TrialState.PRUNED]
    shown = scatter(page, "pruned (last epoch)")
    assert shown["y"] == [t.user_attrs["epochs"][-1]["map50-95"] for t in pruned]
    infeasible = [t for t in study.trials if "infeasible" in t.user_attrs]
    assert [row[0] for row in scatter(page, "infeasible (not trained)")["customdata"]] == [t.number for t in infeasible]
    curves = page.evaluate("document.getElementById('figure-curves').data.map(t => [t.name, (t.line || {}).dash])")
    assert ["pruned", "dash"] in curves and any(name == "pruned here" for name, _ in curves)


def test_buttons_switch_the_cost_on_the_x_axis(browser: Browser, tmp_path: Path) -> None:
    study = synthetic_study(20)
    page, _ = open_dashboard(browser, write_dashboard(study, tmp_path / "report.html").as_uri())
    page.locator("#figure-pareto .updatemenu-button", has_text="parameters").click()
    page.wait_for_function("() => document.getElementById('figure-pareto').layout.xaxis.title.text === 'parameters'")
    trained = [
        t
        for t in study.trials
        if t.state == TrialState.COMPLETE and not {"infeasible", "reused_from"} & set(t.user_attrs)
    ]
    assert list(scatter(page, "trained (colour: front)")["x"]) == [t.user_attrs["params"] for t in trained]


def test_a_study_named_like_a_script_shows_as_text(browser: Browser, tmp_path: Path) -> None:
    study = synthetic_study(6, name=HOSTILE_NAME, code='<img src=x onerror="alert(2)">')
    page, log = open_dashboard(browser, write_dashboard(study, tmp_path / "report.html").as_uri())
    assert page.inner_text("h1") == f"ge-nas dashboard: study {HOSTILE_NAME}"
    assert f"--study '{HOSTILE_NAME}'" in page.inner_text("#front-table")
    assert hover_text(page, "trained (colour: front)", 1).startswith('<img src=x onerror="alert(2)">')
    assert log.dialogs == [] and log.errors == []


def test_two_thousand_trials_render(browser: Browser, tmp_path: Path) -> None:
    study = synthetic_study(2000)
    page, log = open_dashboard(browser, write_dashboard(study, tmp_path / "report.html").as_uri())
    assert all(count > 0 for count in trace_counts(page))
    assert len(scatter(page, "trained (colour: front)")["x"]) > 1000
    assert log.console_errors == [] and log.errors == []


def test_storage_password_never_appears_in_the_page() -> None:
    study = synthetic_study(5, name="shared")
    page = dashboard_html(study, storage_url="postgresql://ge:s3cret@db.example/nas")
    assert "s3cret" not in page
    assert "ge-nas export --study shared --storage &#x27;postgresql://ge:***@db.example/nas&#x27; --trial 0" in page


# --- served live ---


def test_served_page_loads_from_its_own_server_only(browser: Browser, real_study: tuple[optuna.Study, str]) -> None:
    study, url = real_study
    with DashboardServer(study, url, port=0, refresh_seconds=0.2).start() as server:
        page, log = open_dashboard(browser, server.url)
        page.wait_for_function("() => document.getElementById('live-status').textContent.includes('up to date')")
        assert all(count > 0 for count in trace_counts(page))
        assert {request.split("?")[0] for request in log.requests} <= {
            server.url,
            f"{server.url}state.json",
            f"{server.url}dashboard.json",
        }
        assert log.console_errors == [] and log.errors == []
        page.close()


def test_served_page_shows_a_trial_added_while_it_is_open(browser: Browser, tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'live.db'}"
    study = synthetic_study(5, name="live", storage=url)
    with DashboardServer(study, url, port=0, refresh_seconds=0.2).start() as server:
        page, _ = open_dashboard(browser, server.url)
        new = Candidate.of({21: Placement("theta-plus", 0, "inside")})
        optuna.load_study(study_name="live", storage=url).add_trial(searched_trial(new, random.Random(1)))
        page.wait_for_function(
            "code => document.getElementById('figure-pareto').data.some("
            "t => (t.customdata || []).some(row => row[1] === code))",
            arg=new.code,
            timeout=10_000,
        )
        assert "trials: 6" in page.inner_text("#summary")
        page.close()


def test_a_port_in_use_is_an_input_error(real_study: tuple[optuna.Study, str]) -> None:
    study, _ = real_study
    with DashboardServer(study, port=0) as taken, pytest.raises(InputError, match="choose another --port"):
        DashboardServer(study, port=taken.port)


# --- the command line ---


def test_dashboard_command_writes_one_html_file(
    real_study: tuple[optuna.Study, str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    _, url = real_study
    code, out, _ = ge_nas(
        monkeypatch, capsys, "dashboard", "--study", "tiny", "--storage", url, "-o", str(tmp_path / "r.html")
    )
    assert code == 0
    assert out.startswith(f"wrote {tmp_path / 'r.html'}")
    assert (tmp_path / "r.html").read_text().startswith("<!DOCTYPE html>")


def test_unknown_study_is_a_one_line_error_with_exit_2(
    real_study: tuple[optuna.Study, str], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    _, url = real_study
    code, _, err = ge_nas(monkeypatch, capsys, "dashboard", "--study", "nope", "--storage", url)
    assert code == 2
    assert err == f"error: study 'nope' not found in {url}; studies there: tiny\n"


def test_missing_database_is_a_one_line_error_with_exit_2(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    url = f"sqlite:///{tmp_path / 'none.db'}"
    code, _, err = ge_nas(monkeypatch, capsys, "dashboard", "--study", "nope", "--storage", url)
    assert code == 2
    assert err == f"error: storage {url}: no such file; run ge-nas search first, or give --storage URL\n"
    assert not (tmp_path / "none.db").exists()
