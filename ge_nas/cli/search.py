"""``ge-nas dataset``, ``space``, ``search`` and ``retrain``: thin commands over the library."""

from __future__ import annotations

import random
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from ge_nas.cli import app
from ge_nas.errors import InputError
from ge_nas.output_paths import check_output_folder
from ge_nas.search.config import (
    BASELINE_SEEDS,
    CONFIRM,
    DEFAULT_OBJECTIVES,
    DEFAULT_SPACE,
    DEMO,
    MAX_SEEDS,
    STRATEGIES,
    SUPERNET_EPOCHS,
    SUPERNET_TRIALS,
    USER_DATASET,
    build_config,
)

if TYPE_CHECKING:
    from ge_nas.space.candidate import Placement

__all__ = ["dataset", "retrain", "search", "space"]


@app.command()
def dataset(
    output: Annotated[
        Path | None, typer.Option("-o", "--output", help="Folder to write (default: under studies/data/).")
    ] = None,
    train_images: Annotated[int, typer.Option(min=1, help="Training images.")] = 128,
    val_images: Annotated[int, typer.Option(min=1, help="Validation images.")] = 32,
    imgsz: Annotated[int, typer.Option(min=32, help="Image size in pixels (square).")] = 128,
    seed: Annotated[int, typer.Option(help="Random seed; the same arguments give the same files.")] = 0,
    task: Annotated[str, typer.Option(help="detect (boxes) | segment (outlines as polygons).")] = "detect",
    kind: Annotated[
        str,
        typer.Option(
            help="shapes: coloured shapes, the class is the shape | context: grey shapes whose class is the colour "
            "of a band across the image from them (train it with --no-mosaic and 1,024 images or more; space "
            "yolov8n_p3 cannot see the band without attention; see the README for what was measured)."
        ),
    ] = "shapes",
) -> None:
    """Write a built-in synthetic dataset (coloured shapes, or shapes classed by context) in YOLO format."""
    from ge_nas.data.synthetic import TASKS, make_synthetic_dataset
    from ge_nas.search.config import check_option

    check_option("--task", task, TASKS)
    data_yaml = make_synthetic_dataset(
        output, n_train=train_images, n_val=val_images, imgsz=imgsz, seed=seed, kind=kind, task=task
    )
    typer.echo(str(data_yaml))


@app.command()
def space(
    space_file: Annotated[str, typer.Argument(help="A search space YAML file, or a shipped space's name.")],
    sample: Annotated[int, typer.Option(min=0, help="Write this many random candidate YAMLs (needs -o).")] = 0,
    seed: Annotated[int, typer.Option(help="Seed for --sample.")] = 0,
    output: Annotated[Path | None, typer.Option("-o", "--output", help="Folder for the sampled YAMLs.")] = None,
) -> None:
    """Show a search space's insertion points, choices and size; optionally write sample YAMLs."""
    from ge_nas.space.model_yaml import generate_model_yaml
    from ge_nas.space.search_space import load_space

    if sample and output is None:
        raise InputError("--sample needs -o/--output DIR: the folder to write the candidate YAMLs to")
    if output is not None:
        check_output_folder(output, "-o")
    loaded = load_space(space_file)
    typer.echo(f"search space {loaded.name} ({loaded.source}), base {loaded.base_name}" + _task_note(loaded.task))
    typer.echo(f"{'index':>5}  {'alias':<18} {'layer':<8} {'channels':>8} {'stride':>6}  choices")
    for p in loaded.points:
        typer.echo(
            f"{p.index:>5}  {p.alias:<18} {p.layer.module:<8} {p.layer.channels:>8} {p.layer.stride:>6}  "
            f"{len(p.choices)}: {_choices_text(p.choices)}"
        )
    limit = "no limit" if loaded.max_units is None else str(loaded.max_units)
    units = "GE units" if loaded.modules == ("ge",) else "attention units"
    typer.echo(f"max {units} per architecture: {limit}")
    typer.echo(f"architectures in the space (baseline included): {loaded.size:,}")
    if sample and output is not None:
        rng = random.Random(seed)
        for n in range(sample):
            candidate = loaded.sample(rng)
            name = f"{n:03d}-{candidate.code.replace(' ', '_')}.yaml"
            typer.echo(f"wrote {generate_model_yaml(loaded, candidate).write(output / name)}")


def _task_note(task: str) -> str:
    """Nothing for detection (as before tasks were shown); else the head's task."""
    return "" if task == "detect" else f" ({task})"


def _choices_text(choices: tuple[Placement, ...]) -> str:
    """A point's choices in one line: GE's ``variants x extents x modes``, then the other modules and their modes.

    A GE-only point reads as it always did: ``theta,theta-minus,theta-plus x 2,4,8,global x after,inside``.
    """
    from ge_nas.layers.choices import GE, MODULES, extent_label

    ge = [c for c in choices if c.module == GE]
    others = [name for name in MODULES if name != GE and any(c.module == name for c in choices)]
    parts = []
    if ge:
        variants, extents = sorted({c.variant for c in ge}), sorted({extent_label(c.extent) for c in ge})
        modes = sorted({c.mode for c in ge})
        parts.append(("GE " if others else "") + f"{','.join(variants)} x {','.join(extents)} x {','.join(modes)}")
    if others:
        modes = sorted({c.mode for c in choices if c.module != GE})
        parts.append(f"{','.join(others)} x {','.join(modes)}")
    return "; ".join(parts)


@app.command()
def search(
    dataset_yaml: Annotated[
        Path | None, typer.Option("--dataset", help="Ultralytics dataset YAML (default: the built-in synthetic one).")
    ] = None,
    space_file: Annotated[str, typer.Option("--space", help="Search space file or shipped name.")] = DEFAULT_SPACE,
    study_name: Annotated[
        str | None, typer.Option("--study", help="Study name (default: <space>-<dataset>); the same name resumes.")
    ] = None,
    storage: Annotated[str | None, typer.Option(help="SQLAlchemy URL (default: sqlite:///studies/<study>.db).")] = None,
    trials: Annotated[
        int | None,
        typer.Option(
            min=1,
            help=f"Finished trials the study should hold, baseline included [{USER_DATASET.trials}; "
            f"demo: {DEMO.trials}].",
        ),
    ] = None,
    timeout: Annotated[float | None, typer.Option(min=1, help="Stop this run after so many seconds.")] = None,
    objectives: Annotated[
        str,
        typer.Option(help="Accuracy (map50-95|map50), then costs (gflops,params,latency,latency-ratio,memory)."),
    ] = DEFAULT_OBJECTIVES,
    sampler: Annotated[
        str | None,
        typer.Option(help="tpe | nsga2 | random | gp | grid. Default: tpe; nsga2 with --strategy supernet."),
    ] = None,
    pruner: Annotated[str, typer.Option(help="auto | median | hyperband | pareto | none.")] = "auto",
    seed: Annotated[int, typer.Option(help="Seed of the sampler and of every proxy training.")] = 0,
    epochs: Annotated[
        int | None,
        typer.Option(min=1, help=f"Proxy training epochs [{USER_DATASET.epochs}; demo: {DEMO.epochs}]."),
    ] = None,
    weights: Annotated[
        Path | None, typer.Option(help="Pretrained checkpoint of the base model; candidates inherit its weights.")
    ] = None,
    parent_epochs: Annotated[
        int | None,
        typer.Option(
            min=0,
            help=f"Train the base exactly this long once per study and inherit; 0: from scratch [until it stops "
            f"improving for {USER_DATASET.parent_patience} epochs, at most {USER_DATASET.parent_epochs}; "
            f"demo: {DEMO.parent_epochs}; none with --weights].",
        ),
    ] = None,
    imgsz: Annotated[
        int | None,
        typer.Option(min=32, help=f"Proxy image size (default {DEMO.imgsz} built-in, else {USER_DATASET.imgsz})."),
    ] = None,
    batch: Annotated[int, typer.Option(min=1, help="Proxy batch size.")] = 16,
    fraction: Annotated[float, typer.Option(min=0.01, max=1.0, help="Share of the training set used.")] = 1.0,
    mosaic: Annotated[
        bool,
        typer.Option(
            help="Ultralytics' mosaic augmentation (four images tiled into one); --no-mosaic for data whose class "
            "is set by a cue anywhere in the image, such as ge-nas dataset --kind context."
        ),
    ] = True,
    device: Annotated[
        str | None,
        typer.Option(help="cpu, 0, 0,1 ... (default: GPU 0 if present); several GPUs: one worker on each."),
    ] = None,
    workers: Annotated[
        int | None,
        typer.Option(min=1, help="Worker processes training trials in parallel [one per --device GPU, else 1]."),
    ] = None,
    loader_workers: Annotated[int, typer.Option(min=0, help="Data loader workers per training.")] = 0,
    max_gflops: Annotated[float | None, typer.Option(help="Reject candidates above this GFLOPs budget.")] = None,
    max_params: Annotated[float | None, typer.Option(help="Reject candidates above this many parameters.")] = None,
    max_latency: Annotated[float | None, typer.Option(help="Reject candidates above this latency (ms).")] = None,
    max_memory: Annotated[
        float | None, typer.Option(help="Reject candidates above this peak activation memory (MB).")
    ] = None,
    latency_backend: Annotated[
        str,
        typer.Option(help="Time latency in torch | onnxruntime (CPU) | openvino (CPU) | tensorrt (GPU)."),
    ] = "torch",
    keep_exports: Annotated[
        bool, typer.Option("--keep-exports", help="Keep the ONNX exports timed for latency (studies/<study>/exports).")
    ] = False,
    max_failures: Annotated[int, typer.Option(min=1, help="Stop after this many failed trials in a row.")] = 5,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Show Ultralytics' own output.")] = False,
    baseline_seeds: Annotated[
        int, typer.Option(help="Seeds of the baseline: the noise floor every gain is measured against.")
    ] = BASELINE_SEEDS,
    confirm: Annotated[
        int, typer.Option(help="Front candidates that get more seeds after exploring, until their gain is clear.")
    ] = CONFIRM,
    max_seeds: Annotated[int, typer.Option(help="Seeds at most per confirmed candidate.")] = MAX_SEEDS,
    strategy: Annotated[
        str,
        typer.Option(
            help=f"{' | '.join(STRATEGIES)}: train a proxy per candidate, or train one supernet and score "
            f"candidates as its sub-networks (then --trials defaults to {SUPERNET_TRIALS}; the verdict comes from "
            "the proxies that confirm its front)."
        ),
    ] = STRATEGIES[0],
    supernet_epochs: Annotated[
        int | None, typer.Option(help=f"Epochs the supernet trains, once per study [{SUPERNET_EPOCHS}].")
    ] = None,
) -> None:
    """Search where GE units pay off: train short proxies, confirm the best with seeds, and give a verdict."""
    from ge_nas.ranking.fronts import rank_study
    from ge_nas.report.terminal import LiveReporter, front_table
    from ge_nas.search.runner import SearchFailed, run_search

    config = build_config(
        dataset=dataset_yaml,
        space=space_file,
        study=study_name,
        storage=storage,
        trials=trials,
        timeout=timeout,
        objectives=objectives,
        sampler=sampler,
        pruner=pruner,
        seed=seed,
        epochs=epochs,
        weights=weights,
        parent_epochs=parent_epochs,
        imgsz=imgsz,
        batch=batch,
        fraction=fraction,
        mosaic=mosaic,
        device=device,
        workers=workers,
        loader_workers=loader_workers,
        max_gflops=max_gflops,
        max_params=max_params,
        max_latency=max_latency,
        max_memory=max_memory,
        latency_backend=latency_backend,
        keep_exports=keep_exports,
        max_failures=max_failures,
        verbose=verbose,
        baseline_seeds=baseline_seeds,
        confirm=confirm,
        max_seeds=max_seeds,
        strategy=strategy,
        supernet_epochs=supernet_epochs,
    )
    try:
        with LiveReporter(config.objectives.accuracy) as reporter:
            study = run_search(config, reporter)
    except KeyboardInterrupt:
        typer.echo(
            f"interrupted: finished trials are kept and the running one is marked failed; run the same command to "
            f"resume study {config.study_name!r}",
            err=True,
        )
        raise SystemExit(130) from None
    except SearchFailed as error:
        typer.echo(f"error: {error}", err=True)
        raise SystemExit(1) from None
    ranking = rank_study(study)
    reporter.console.print(front_table(ranking, study.study_name))
    reporter.console.print(f"verdict: {ranking.verdict()}")
    reporter.console.print(f"resume or extend: run the same command again (e.g. with --trials {config.trials + 10})")


@app.command()
def retrain(
    study_name: Annotated[str, typer.Option("--study", help="The study whose front to retrain.")],
    epochs: Annotated[int, typer.Option(min=1, help="Epochs of the longer schedule (from scratch).")],
    top: Annotated[int, typer.Option(min=1, help="How many of the front's most accurate architectures.")] = 3,
    storage: Annotated[str | None, typer.Option(help="SQLAlchemy URL (default: sqlite:///studies/<study>.db).")] = None,
    dataset_yaml: Annotated[
        Path | None, typer.Option("--dataset", help="Dataset YAML (default: the one the search used).")
    ] = None,
    device: Annotated[str | None, typer.Option(help="cpu, 0, ... (default: the search's).")] = None,
) -> None:
    """Retrain the front's best architectures and the baseline longer; report how well the proxy ranked them."""
    from ge_nas.data.user_dataset import check_dataset
    from ge_nas.report.architectures import study_storage
    from ge_nas.search.retraining import RetrainRow
    from ge_nas.search.retraining import retrain as run_retrain
    from ge_nas.storage.database import STUDIES_DIR, open_existing_storage
    from ge_nas.storage.studies import load_existing_study
    from ge_nas.yolo.devices import check_device

    study = load_existing_study(open_existing_storage(study_storage(study_name, storage)), study_name)
    shown: list[int] = []

    def show(r: RetrainRow) -> None:
        if not shown:
            typer.echo(f"{'trial':>5}  {'architecture':<24} {'proxy':>8} {'retrained':>9} {'time':>6}")
        shown.append(r.trial)
        typer.echo(f"{r.trial:>5}  {r.code:<24.24} {r.proxy:>8.4f} {r.retrained:>9.4f} {r.seconds:>5.0f}s")

    report = run_retrain(
        study,
        top,
        epochs,
        STUDIES_DIR / study_name,
        data_yaml=check_dataset(dataset_yaml) if dataset_yaml else None,
        device=check_device(device) if device else None,
        on_row=show,
    )
    typer.echo(
        f"rank correlation of proxy and {epochs}-epoch {report.accuracy} over {len(report.rows)} architectures: "
        f"Kendall tau {report.kendall_tau:.3f}, Spearman {report.spearman:.3f}"
    )
