"""``ge-nas dashboard``: a thin command over :mod:`ge_nas.report.dashboard` and its server.

The dashboard modules load plotly and the study's storage, so they are imported when the
command runs: ``ge-nas --help`` and every other command should not pay for them.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from ge_nas.cli import app
from ge_nas.errors import InputError
from ge_nas.output_paths import check_output_file

__all__ = ["DEFAULT_OUTPUT", "dashboard_command"]

DEFAULT_OUTPUT = Path("dashboard.html")


@app.command("dashboard")
def dashboard_command(
    study: Annotated[str, typer.Option("--study", help="Study name, as given to ge-nas search.")],
    storage: Annotated[
        str | None, typer.Option("--storage", help="SQLAlchemy URL (default: sqlite:///studies/<study>.db).")
    ] = None,
    output: Annotated[
        Path | None, typer.Option("-o", "--output", help=f"HTML file to write (default: {DEFAULT_OUTPUT}).")
    ] = None,
    serve: Annotated[
        bool, typer.Option("--serve", help="Serve the page instead, redrawn as trials land (Ctrl-C stops).")
    ] = False,
    port: Annotated[int, typer.Option(min=0, max=65535, help="Port for --serve (0: any free one).")] = 8050,
    host: Annotated[
        str, typer.Option(help="Address for --serve; 0.0.0.0 shares the page with your network.")
    ] = "127.0.0.1",
) -> None:
    """Draw a study as one HTML page: Pareto front, where attention pays, learning curves, progress."""
    from ge_nas.storage.database import check_study_name, default_storage_url, open_existing_storage
    from ge_nas.storage.studies import load_existing_study

    if serve and output is not None:
        raise InputError("give -o FILE to write the page, or --serve to watch it live, not both")
    replaces = not serve and check_output_file(output or DEFAULT_OUTPUT, "-o")
    # Without --storage the name becomes a file name, so it must be a safe one.
    url = storage or default_storage_url(check_study_name(study))
    loaded = load_existing_study(open_existing_storage(url), study)
    if serve:
        from ge_nas.report.dashboard_server import DashboardServer

        with DashboardServer(loaded, storage, host=host, port=port) as server:
            typer.echo(f"serving study {study!r} at {server.url} (redrawn as trials land; Ctrl-C stops)")
            try:
                server.serve_forever()
            except KeyboardInterrupt:
                typer.echo("stopped")
        return
    from ge_nas.report.dashboard import write_dashboard

    path = write_dashboard(loaded, output or DEFAULT_OUTPUT, storage)
    typer.echo(f"{'replaced' if replaces else 'wrote'} {path}: open it in a browser; it needs no network")
