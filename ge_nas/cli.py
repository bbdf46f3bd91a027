"""The ``ge-nas`` command: thin commands that parse options and call the library."""

from __future__ import annotations

import random
from pathlib import Path
from typing import Annotated

import typer

from ge_nas import __version__
from ge_nas.data import make_synthetic_dataset
from ge_nas.errors import InputError
from ge_nas.generate import generate
from ge_nas.space import load_space

app = typer.Typer(
    help="Search where Gather-Excite attention pays off in a YOLOv8 detector.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


def _print_version(value: bool) -> None:
    if value:
        typer.echo(f"ge-nas {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[
        bool, typer.Option("--version", callback=_print_version, is_eager=True, help="Print the version and exit.")
    ] = False,
) -> None:
    """Search where Gather-Excite attention pays off in a YOLOv8 detector."""


@app.command()
def dataset(
    output: Annotated[
        Path | None, typer.Option("-o", "--output", help="Folder to write (default: under studies/data/).")
    ] = None,
    train_images: Annotated[int, typer.Option(min=1, help="Training images.")] = 128,
    val_images: Annotated[int, typer.Option(min=1, help="Validation images.")] = 32,
    imgsz: Annotated[int, typer.Option(min=32, help="Image size in pixels (square).")] = 128,
    seed: Annotated[int, typer.Option(help="Random seed; the same arguments give the same files.")] = 0,
) -> None:
    """Write the built-in synthetic detection dataset (coloured shapes) in YOLO format."""
    data_yaml = make_synthetic_dataset(output, n_train=train_images, n_val=val_images, imgsz=imgsz, seed=seed)
    typer.echo(str(data_yaml))


@app.command()
def space(
    space_file: Annotated[str, typer.Argument(help="A search space YAML file, or a shipped space's name.")],
    sample: Annotated[int, typer.Option(min=0, help="Write this many random candidate YAMLs (needs -o).")] = 0,
    seed: Annotated[int, typer.Option(help="Seed for --sample.")] = 0,
    output: Annotated[Path | None, typer.Option("-o", "--output", help="Folder for the sampled YAMLs.")] = None,
) -> None:
    """Show a search space's insertion points, choices and size; optionally write sample YAMLs."""
    loaded = load_space(space_file)
    typer.echo(f"search space {loaded.name} ({loaded.source}), base {loaded.base_name}")
    typer.echo(f"{'index':>5}  {'alias':<18} {'layer':<8} {'channels':>8} {'stride':>6}  choices")
    for p in loaded.points:
        variants = sorted({c.variant for c in p.choices})
        extents = sorted({"global" if c.extent == 0 else str(c.extent) for c in p.choices})
        modes = sorted({c.mode for c in p.choices})
        typer.echo(
            f"{p.index:>5}  {p.alias:<18} {p.layer.module:<8} {p.layer.channels:>8} {p.layer.stride:>6}  "
            f"{len(p.choices)}: {','.join(variants)} x {','.join(extents)} x {','.join(modes)}"
        )
    limit = "no limit" if loaded.max_units is None else str(loaded.max_units)
    typer.echo(f"max GE units per architecture: {limit}")
    typer.echo(f"architectures in the space (baseline included): {loaded.size:,}")
    if sample:
        if output is None:
            raise InputError("--sample needs -o/--output DIR: the folder to write the candidate YAMLs to")
        rng = random.Random(seed)
        for n in range(sample):
            candidate = loaded.sample(rng)
            name = f"{n:03d}-{candidate.code.replace(' ', '_')}.yaml"
            typer.echo(f"wrote {generate(loaded, candidate).write(output / name)}")


def main() -> None:
    """Entry point: run the app, turning input errors into one line and exit status 2."""
    try:
        app()
    except InputError as error:
        typer.echo(f"error: {error}", err=True)
        raise SystemExit(2) from None
