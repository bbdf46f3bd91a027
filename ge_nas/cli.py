"""The ``ge-nas`` command: thin commands that parse options and call the library."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from ge_nas import __version__
from ge_nas.data import make_synthetic_dataset
from ge_nas.errors import InputError

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


def main() -> None:
    """Entry point: run the app, turning input errors into one line and exit status 2."""
    try:
        app()
    except InputError as error:
        typer.echo(f"error: {error}", err=True)
        raise SystemExit(2) from None
