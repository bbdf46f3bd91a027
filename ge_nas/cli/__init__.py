"""The ``ge-nas`` command: thin commands that parse options and call the library.

Each command imports the library when it runs, so ``ge-nas --help``, ``list`` and ``show``
start without loading torch or Ultralytics. :func:`main` is the one place that turns an
error into an exit status: bad input is one line on stderr and exit 2.
"""

from __future__ import annotations

from typing import Annotated

import typer

from ge_nas import __version__
from ge_nas.errors import InputError
from ge_nas.interrupts import raise_if_held_back, record_interrupts
from ge_nas.yolo.environment import keep_ultralytics_to_itself

__all__ = ["app", "main"]

# The exit status of a command stopped by Ctrl-C (128 + SIGINT), as shells report it.
_INTERRUPTED = 130

app = typer.Typer(
    help="Search where Gather-Excite attention pays off in a YOLO detector.",
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
    """Search where Gather-Excite attention pays off in a YOLO detector."""


def main() -> None:
    """Entry point: every input error is one line on stderr and exit status 2."""
    keep_ultralytics_to_itself()
    record_interrupts()  # before the heavy imports, where a Ctrl-C could otherwise be swallowed
    try:
        status = app(standalone_mode=False)
        raise_if_held_back()  # a Ctrl-C that came during the command's last database read
    except KeyboardInterrupt:
        status = _INTERRUPTED
    except InputError as error:
        typer.echo(f"error: {error}", err=True)
        raise SystemExit(2) from None
    except typer.TyperException as error:  # option parsing: Click's usage errors and friends
        if getattr(error, "exit_code", 1) == 0:  # e.g. `ge-nas` alone prints its help
            raise SystemExit(0) from None
        message = " ".join(error.format_message().split())
        typer.echo(f"error: {message} (see --help)", err=True)
        raise SystemExit(getattr(error, "exit_code", 2)) from None
    except typer.Abort:
        raise SystemExit(130) from None
    if status == _INTERRUPTED:  # Ctrl-C outside a command's own handling (Typer returns, not raises, it)
        typer.echo("interrupted", err=True)
        raise SystemExit(_INTERRUPTED)


# The commands register themselves on ``app`` (imported last, as they need it), in --help's order.
# isort: off
from ge_nas.cli import search  # noqa: E402, F401
from ge_nas.cli import results  # noqa: E402, F401
from ge_nas.cli import dashboard  # noqa: E402, F401
# isort: on
