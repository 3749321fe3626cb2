"""The ``medbench`` command line (typer + rich). The only module that prints.

Every :class:`MedbenchError` becomes one red line and exit code 1; any other exception is a bug
and is shown with its traceback and a request to report it.
"""

from __future__ import annotations

import functools
import json
import sys
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

from medbench import __version__
from medbench.errors import MedbenchError

app = typer.Typer(
    name="medbench",
    help="A competition harness for medical imaging: tasks, submissions, runs, leaderboards.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
data_app = typer.Typer(help="Find, prepare and check task data.", no_args_is_help=True)
app.add_typer(data_app, name="data")

console = Console(highlight=False)
err_console = Console(stderr=True, highlight=False)
F = TypeVar("F", bound=Callable[..., Any])


def reports_errors(func: F) -> F:
    """Turn MedbenchError into a red line + exit 1, and anything unexpected into a bug report."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except (typer.Exit, typer.Abort, KeyboardInterrupt):
            raise
        except MedbenchError as exc:
            err_console.print(f"[bold red]error:[/] {type(exc).__name__}: {exc}", soft_wrap=True)
            raise typer.Exit(1) from None
        except Exception:
            err_console.print(traceback.format_exc(), markup=False, soft_wrap=True)
            err_console.print(
                "[bold red]This is a bug in medbench[/] (an unexpected error, not a problem with "
                "your input). Please report it with the traceback above.",
            )
            raise typer.Exit(2) from None

    return wrapper  # type: ignore[return-value]


def progress_bar(quiet: bool = False) -> Progress:
    return Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        console=err_console,
        disable=quiet or not err_console.is_terminal,
        transient=True,
    )


def _version(value: bool) -> None:
    if value:
        console.print(f"medbench {__version__}")
        raise typer.Exit()


@app.callback()
def main(
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Print the version.")
    ] = False,
) -> None:
    """medbench: fixed tasks, hidden test labels, exact scorers, leaderboards with CIs."""


# --- tasks ---------------------------------------------------------------------------------------


@app.command("tasks")
@reports_errors
def tasks_command(
    format: Annotated[str, typer.Option("--format", help="table or json")] = "table",
) -> None:
    """List every task: kind, classes, input size, primary metric and data status."""
    from medbench.data.prepare import status
    from medbench.tasks import all_tasks

    rows = []
    for spec in all_tasks():
        st = status(spec)
        rows.append(
            {
                "name": spec.name,
                "kind": spec.kind,
                "classes": list(spec.classes),
                "input": spec.input.describe(),
                "primary_metric": spec.primary_metric,
                "higher_is_better": spec.primary.higher_is_better,
                "version": spec.version,
                "data": st.state,
                "data_detail": st.detail,
            }
        )
    if format == "json":
        sys.stdout.write(json.dumps(rows, indent=2) + "\n")
        return
    if format != "table":
        raise MedbenchError(f"--format must be table or json; got {format!r}")
    table = Table(title="medbench tasks")
    for column in ("name", "kind", "classes", "input", "primary metric", "data"):
        table.add_column(column)
    colours = {"prepared": "green", "available": "cyan", "generated": "green", "absent": "yellow"}
    for r in rows:
        arrow = "↑" if r["higher_is_better"] else "↓"
        table.add_row(
            r["name"], r["kind"], ", ".join(r["classes"]), r["input"],
            f"{r['primary_metric']} {arrow}", f"[{colours[r['data']]}]{r['data']}[/]",
        )
    console.print(table)


# --- data ----------------------------------------------------------------------------------------


@data_app.command("status")
@reports_errors
def data_status(
    from_dir: Annotated[
        Path | None, typer.Option("--from", help="Folder with raw data (default: MEDBENCH_DATA).")
    ] = None,
    format: Annotated[str, typer.Option("--format", help="table or json")] = "table",
) -> None:
    """Say, per task, whether its data is prepared, available, generated or absent (and how to get it)."""
    from medbench.data.prepare import status
    from medbench.tasks import all_tasks

    statuses = [status(spec, from_dir=from_dir) for spec in all_tasks()]
    if format == "json":
        sys.stdout.write(json.dumps([s.__dict__ for s in statuses], indent=2) + "\n")
        return
    table = Table(title="medbench data")
    table.add_column("task")
    table.add_column("state")
    table.add_column("detail", overflow="fold")
    colours = {"prepared": "green", "available": "cyan", "generated": "green", "absent": "yellow"}
    for s in statuses:
        table.add_row(s.task, f"[{colours[s.state]}]{s.state}[/]", s.detail)
    console.print(table)


@data_app.command("prepare")
@reports_errors
def data_prepare(
    tasks: Annotated[list[str] | None, typer.Argument(help="Task names.")] = None,
    all_: Annotated[bool, typer.Option("--all", help="Every task whose data is available.")] = False,
    from_dir: Annotated[
        Path | None, typer.Option("--from", help="Folder with raw data (default: MEDBENCH_DATA).")
    ] = None,
    force: Annotated[bool, typer.Option("--force", help="Prepare again even if ready.")] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bar.")] = False,
) -> None:
    """Convert tasks' raw data into prepared, memory-mappable caches (once; atomic)."""
    from medbench.data.prepare import prepare, status
    from medbench.tasks import all_tasks, get_task

    if all_:
        specs = [s for s in all_tasks() if status(s, from_dir=from_dir).state != "absent"]
    elif tasks:
        specs = [get_task(t) for t in tasks]
    else:
        raise MedbenchError("name at least one task, or use --all")
    for spec in specs:
        with progress_bar(quiet) as bar:
            job = bar.add_task(f"prepare {spec.name}", total=None)
            prepared = prepare(
                spec, from_dir=from_dir, force=force,
                progress=lambda done, total: bar.update(job, completed=done, total=total),
            )
        counts = prepared.manifest["counts"]
        console.print(
            f"[green]ready[/] {spec.name}: {counts['train']}/{counts['val']}/{counts['test']} "
            f"train/val/test from {prepared.source['layout']} ({prepared.manifest['seconds']} s)"
        )


if __name__ == "__main__":  # pragma: no cover
    app()
