"""``ge-nas list``, ``show``, ``export`` and ``train``: thin commands over :mod:`ge_nas.report.architectures`.

Each command imports the library when it runs: pandas takes most of a second to load, and
``train`` needs torch and Ultralytics, which ``--help`` and the other commands should not pay.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from ge_nas.cli import app
from ge_nas.errors import InputError

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["export_command", "list_command", "show_command", "train_command"]

FORMATS: tuple[str, ...] = ("table", "csv", "json")

_StorageOption = Annotated[
    str | None, typer.Option("--storage", help="SQLAlchemy URL (default: sqlite:///studies/<study>.db).")
]
_StudyOption = Annotated[str, typer.Option("--study", help="Study name, as given to ge-nas search.")]
_FormatOption = Annotated[str, typer.Option("--format", help="table | csv | json.")]


@app.command("list")
def list_command(
    storage: Annotated[
        str | None, typer.Option("--storage", help="SQLAlchemy URL (default: every studies/*.db here).")
    ] = None,
    output_format: _FormatOption = "table",
) -> None:
    """List the studies with their trial counts, best accuracy, front size and knee."""
    from ge_nas.report.architectures import list_studies

    output_format = _check_format(output_format)
    listing = list_studies(storage)
    studies = listing.table
    for url, reason in listing.unreadable.items():
        typer.echo(f"not listed: {url}: {reason}", err=True)
    if output_format != "table":
        typer.echo(_machine_readable(studies, output_format))
        return
    if studies.empty:
        typer.echo(f"no studies in {storage or 'studies/*.db'}; run ge-nas search first")
        return
    columns = {
        "study_name": "study",
        "n_trials": "trials",
        "n_architectures": "architectures",
        "front_size": "front size",
        "accuracy_name": "accuracy",
        "best_accuracy": "best",
        "best_trial": "best trial",
        "knee_trial": "knee trial",
        "hypervolume": "hypervolume",
        "storage": "storage",
    }
    typer.echo(_table(studies, columns))


@app.command("show")
def show_command(
    study: _StudyOption,
    storage: _StorageOption = None,
    output_format: _FormatOption = "table",
    front: Annotated[int | None, typer.Option("--front", min=1, help="Only this front (1: the Pareto front).")] = None,
) -> None:
    """Show a study's architectures ranked into fronts, with costs, gains and the knee."""
    from ge_nas.report.architectures import by_module, fronts, study_storage, summary
    from ge_nas.storage.database import safe_url
    from ge_nas.storage.records import Strategy, latency_text

    output_format = _check_format(output_format)
    url = study_storage(study, storage)
    ranked = fronts(url, study).drop(columns=["yaml"])
    if front is not None:
        ranked = ranked[ranked["front"] == front]
    if output_format != "table":
        typer.echo(_machine_readable(ranked, output_format))
        return
    headline = summary(url, study)
    typer.echo(_headline(headline, safe_url(url)))
    if ranked.empty:
        typer.echo("no architectures" + (f" on front {front}" if front is not None else " evaluated yet"))
        return
    notes = [
        ", ".join(note for note, flag in (("baseline", baseline), ("knee", knee), ("significant", clear)) if flag)
        for baseline, knee, clear in zip(ranked["is_baseline"], ranked["is_knee"], ranked["significant"], strict=True)
    ]
    intervals = [_interval(low, high) for low, high in zip(ranked["gain_ci_low"], ranked["gain_ci_high"], strict=True)]
    ranked = ranked.assign(note=notes, gain_interval=intervals)
    accuracy = str(headline["accuracy_name"])
    scored = {"seeds": "seeds", "accuracy": accuracy}
    if ranked["strategy"].eq(Strategy.SUPERNET.value).any():
        # Side by side: the supernet's score (what its front ranks) and the proxies that confirmed it (the verdict's).
        scored = {"supernet_score": f"supernet {accuracy}", "seeds": "proxy seeds"}
        scored["accuracy_mean"] = f"proxy {accuracy}"
    columns = {
        "trial_number": "trial",
        "code": "architecture",
        "state": "state",
        "front": "front",
        **scored,
        "gain_over_baseline": "gain",
        "gain_interval": "gain 95% CI",
        "params": "params",
        "gflops": "gflops",
        "latency_ms": "latency ms",
        "latency": "latency ratio (95% interval)",
        "memory_mb": "memory MB",
        "crowding": "crowding",
        "note": "",
    }
    # Columns of costs the study did not measure (older studies: no interval, no memory) are left out.
    if ranked["latency_ratio_low"].notna().any():
        intervals = zip(ranked["latency_ratio"], ranked["latency_ratio_low"], ranked["latency_ratio_high"], strict=True)
        ranked = ranked.assign(latency=[latency_text(*(_known(v) for v in values)) for values in intervals])
    else:
        del columns["latency"]
    if not ranked["memory_mb"].notna().any():
        del columns["memory_mb"]
    typer.echo(_table(ranked, columns))
    modules = by_module(url, study)
    if len(modules) > 1:  # a study of one module has nothing to compare
        typer.echo(_module_table(modules))
    typer.echo(f"verdict: {headline['verdict']}")


def _module_table(modules: pd.DataFrame) -> str:
    """Where attention pays, by module: each module's trained architectures and its effect, with its interval."""
    intervals = zip(modules["effect_ci_low"], modules["effect_ci_high"], strict=True)
    table = modules.assign(
        interval=[_interval(low, high) for low, high in intervals],
        note=["significant" if clear else "" for clear in modules["significant"]],
    )
    columns = {
        "module": "module",
        "architectures": "architectures",
        "on_front": "on front 1",
        "compared_with": "without it",
        "accuracy_effect": "accuracy effect",
        "interval": "effect 95% CI",
        "cost_effect_pct": "cost effect %",
        "note": "",
    }
    heading = "where attention pays, by module (architectures with a unit of it against those with none):"
    return heading + "\n" + _table(table, columns)


@app.command("export")
def export_command(
    study: _StudyOption,
    storage: _StorageOption = None,
    pick: Annotated[
        str | None,
        typer.Option(
            help="knee | verdict | best-accuracy | max-COST=X for a cost gflops, params, latency, latency-ratio or "
            "memory (default: knee)."
        ),
    ] = None,
    trial: Annotated[int | None, typer.Option(min=0, help="Export the architecture of this trial instead.")] = None,
    output: Annotated[Path, typer.Option("-o", "--output", help="YAML file to write.")] = Path("best.yaml"),
    weights_from_supernet: Annotated[
        bool,
        typer.Option(
            "--weights-from-supernet",
            help="Also write its weights as the study's supernet holds them (the -o name with .pt), to fine-tune "
            "with ge-nas train --weights.",
        ),
    ] = False,
) -> None:
    """Write the model YAML of a study's chosen architecture, with where it came from in its header."""
    from ge_nas.output_paths import check_output_file
    from ge_nas.report.architectures import export_yaml, study_storage, within_the_noise
    from ge_nas.report.architectures import pick as pick_architecture

    if pick is not None and trial is not None:
        raise InputError("give --pick or --trial, not both")
    if weights_from_supernet and output.suffix == ".pt":
        raise InputError(f"-o {output} with --weights-from-supernet: name the YAML .yaml; its weights go beside it")
    replaces = check_output_file(output, "-o")
    how: str | int = trial if trial is not None else pick or "knee"
    url = study_storage(study, storage)
    row = pick_architecture(url, study, how)
    if weights_from_supernet:  # first: it refuses a study without a supernet before anything is written
        weights = _supernet_weights(url, study, row, output.with_suffix(".pt"))
    path = export_yaml(url, study, how, output)
    accuracy = "not trained" if row["accuracy"] is None else f"{row['accuracy_name']} {row['accuracy']:.4f}"
    if row["strategy"] == "supernet":
        accuracy = f"supernet score {accuracy}"
    written = "replaced" if replaces else "wrote"
    typer.echo(f"{written} {path}: trial {row['trial_number']} ({row['code']}), {accuracy}, {row['gflops']:.4g} GFLOPs")
    note = within_the_noise(row)
    if note:
        typer.echo(note)
    if weights_from_supernet:
        typer.echo(f"wrote {weights}: its weights from the supernet, BatchNorm recalibrated as when it was scored")
        typer.echo(f"fine-tune it: ge-nas train {path} --data YOUR_DATA.yaml --epochs 100 --weights {weights}")
    else:
        typer.echo(f"train it: ge-nas train {path} --data YOUR_DATA.yaml --epochs 100")


def _supernet_weights(url: str, study: str, row: pd.Series, output: Path) -> Path:
    """``ge-nas export --weights-from-supernet``: the picked architecture's checkpoint, cut from the supernet."""
    from ge_nas.output_paths import check_output_file
    from ge_nas.search.retraining import supernet_weights
    from ge_nas.storage.database import open_existing_storage
    from ge_nas.storage.studies import load_existing_study

    check_output_file(output, "--weights-from-supernet")
    storage = open_existing_storage(url)
    try:
        return supernet_weights(load_existing_study(storage, study), row["key"], row["yaml"], output)
    finally:
        storage.engine.dispose()


@app.command("train")
def train_command(
    model_yaml: Annotated[Path, typer.Argument(help="Model YAML, e.g. one written by ge-nas export.")],
    data: Annotated[Path, typer.Option("--data", help="Ultralytics dataset YAML.")],
    epochs: Annotated[int, typer.Option(min=1, help="Training epochs.")] = 100,
    imgsz: Annotated[int, typer.Option(min=32, help="Image size in pixels.")] = 640,
    batch: Annotated[int, typer.Option(min=1, help="Batch size.")] = 16,
    device: Annotated[str | None, typer.Option(help="cpu, 0, 0,1 ... (default: GPU 0 if present).")] = None,
    project: Annotated[Path | None, typer.Option(help="Folder for the run (default: runs/ge-nas).")] = None,
    name: Annotated[str | None, typer.Option(help="Run name (default: the YAML's name).")] = None,
    weights: Annotated[
        Path | None, typer.Option(help="Start from this base-model checkpoint (e.g. a search's parent.pt).")
    ] = None,
    mosaic: Annotated[
        bool, typer.Option(help="Ultralytics' mosaic augmentation; --no-mosaic for data like --kind context.")
    ] = True,
) -> None:
    """Fully train an architecture with Ultralytics (GE layers included) and print where best.pt is."""
    from ge_nas.search.retraining import train

    best = train(model_yaml, data, epochs, imgsz, batch, device, project, name, weights=weights, mosaic=mosaic)
    typer.echo(f"best checkpoint: {best}")
    typer.echo(f"load it: import ge_nas; from ultralytics import YOLO; YOLO({str(best)!r})")


def _check_format(output_format: str) -> str:
    if output_format not in FORMATS:
        raise InputError(f"--format {output_format!r}: use one of {', '.join(FORMATS)}")
    return output_format


def _headline(summary: dict[str, object], shown_url: str) -> str:
    """One line about the whole study above the table."""
    volume = summary["hypervolume"]
    return (
        f"study {summary['study_name']!r} ({shown_url}): {summary['n_trials']} trials, "
        f"{summary['n_architectures']} architectures ({summary['front_size']} on the Pareto front), "
        f"knee trial {summary['knee_trial']}, hypervolume {'-' if volume is None else f'{volume:.4g}'}"
    )


def _interval(low: object, high: object) -> str:
    """``low to high``, or "-" without an interval (one paired seed)."""
    if not isinstance(low, float) or not isinstance(high, float) or low != low or high != high:
        return "-"
    return f"{low:+.4f} to {high:+.4f}"


def _machine_readable(table: pd.DataFrame, output_format: str) -> str:
    """CSV or JSON with every column under its stored name (as in docs/schema.md), numbers unrounded."""
    if output_format == "csv":
        return table.to_csv(index=False).rstrip()
    # Round-tripped through json, which does not escape "/" as pandas does; NaN and inf become null.
    return json.dumps(json.loads(table.to_json(orient="records", date_format="iso", double_precision=15)))


def _table(table: pd.DataFrame, columns: dict[str, str]) -> str:
    """The ``columns`` a reader needs, renamed, numbers to 4 significant digits, missing ones as "-"."""
    shown = table[list(columns)]
    # Missing values (NaN, pd.NA in integer columns) become None, which _cell shows as "-".
    shown = shown.astype(object).where(shown.notna(), None)
    return shown.map(_cell).rename(columns=columns).to_string(index=False)


def _known(value: object) -> float | None:
    """A number from a table cell, None where it is missing (NaN)."""
    return None if value is None or value != value else float(value)


def _cell(value: object) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)
