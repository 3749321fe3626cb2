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
from rich.text import Text

from medbench import __version__
from medbench.errors import Interrupted, MedbenchError, describe_os_error

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
STATE_COLOURS = {  # of a task's data (medbench tasks, medbench data status)
    "prepared": "green",
    "available": "cyan",
    "generated": "green",
    "absent": "yellow",
    "damaged": "red",
}


def printable(text: object) -> str:
    """``text`` with undecodable bytes of file names (surrogate escapes) shown as ``\\udcff``:
    printed as they are, they would raise UnicodeEncodeError instead of an error line."""
    return str(text).encode("utf-8", "backslashreplace").decode("utf-8")


def one_line(message: object) -> str:
    """``message`` on one line: a parser's trailing newline must not split an error line."""
    return " ".join(printable(message).splitlines()).strip()


def styled(label: str, style: str, text: str) -> Text:
    """``label`` in ``style``, then ``text`` as literal text: a path or a ``[train]`` in a message
    is not rich markup (as markup it would vanish, or raise MarkupError)."""
    return Text.assemble((label, style), printable(text))


def reports_errors(func: F) -> F:
    """Turn MedbenchError into a red line + exit 1, and anything unexpected into a bug report."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except (typer.Exit, typer.Abort, KeyboardInterrupt):
            raise
        except MedbenchError as exc:
            err_console.print(
                styled("error:", "bold red", f" {type(exc).__name__}: {one_line(exc)}"),
                soft_wrap=True,
            )
            raise typer.Exit(1) from None
        except OSError as exc:  # a folder that is a file, a full disk, no permission: the user's
            err_console.print(
                styled("error:", "bold red", f" OSError: {one_line(describe_os_error(exc))}"),
                soft_wrap=True,
            )
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
                "modality": spec.modality,
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
    table.add_column("name", no_wrap=True)  # names are typed back in: never cut them
    for column in ("kind", "classes", "input", "primary metric", "data"):
        table.add_column(column, overflow="fold")
    for r in rows:
        arrow = "↑" if r["higher_is_better"] else "↓"
        table.add_row(
            r["name"],
            r["kind"],
            ", ".join(r["classes"]),
            r["input"],
            f"{r['primary_metric']} {arrow}",
            f"[{STATE_COLOURS[r['data']]}]{r['data']}[/]",
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
    for s in statuses:
        table.add_row(s.task, f"[{STATE_COLOURS[s.state]}]{s.state}[/]", s.detail)
    console.print(table)


@data_app.command("prepare")
@reports_errors
def data_prepare(
    tasks: Annotated[list[str] | None, typer.Argument(help="Task names.")] = None,
    all_: Annotated[
        bool, typer.Option("--all", help="Every task whose data is available.")
    ] = False,
    from_dir: Annotated[
        Path | None, typer.Option("--from", help="Folder with raw data (default: MEDBENCH_DATA).")
    ] = None,
    force: Annotated[bool, typer.Option("--force", help="Prepare again even if ready.")] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bar.")] = False,
) -> None:
    """Convert tasks' raw data into prepared, memory-mappable caches (once; atomic)."""
    from medbench.data.ready import ready_lines, record_ready

    if tasks and not (all_ or force) and (lines := ready_lines(tasks)) is not None:
        for line in lines:  # every named task still ready: said without importing the stack
            console.print(line)
        return
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
                spec,
                from_dir=from_dir,
                force=force,
                progress=lambda done, total, job=job: bar.update(job, completed=done, total=total),
            )
        counts = prepared.manifest["counts"]
        line = (
            f"[green]ready[/] {spec.name}: {counts['train']}/{counts['val']}/{counts['test']} "
            f"train/val/test from {prepared.source['layout']} ({prepared.manifest['seconds']} s)"
        )
        console.print(line)
        record_ready(spec.name, prepared.path / "manifest.json", line)


# --- score ---------------------------------------------------------------------------------------


def _metric_table(title: str, summary: dict, per_class: dict) -> Table:
    table = Table(title=title)
    for column in ("metric", "value", "95 % CI", "n", "undefined"):
        table.add_column(column, justify="right" if column != "metric" else "left")

    def fmt(v):
        return "-" if v is None or v != v else f"{v:.4f}"

    for name, m in summary.items():
        ci = f"[{fmt(m.ci_low)}, {fmt(m.ci_high)}]" if m.ci_low is not None else "-"
        table.add_row(name, fmt(m.value), ci, str(m.n), str(m.n_undefined))
    for cls, metrics in per_class.items():
        for name, m in metrics.items():
            ci = f"[{fmt(m.ci_low)}, {fmt(m.ci_high)}]" if m.ci_low is not None else "-"
            table.add_row(f"{name} · {cls}", fmt(m.value), ci, str(m.n), str(m.n_undefined))
    return table


@app.command("score")
@reports_errors
def score_command(
    task: Annotated[str, typer.Argument(help="Task name.")],
    predictions: Annotated[
        Path, typer.Argument(help="CSV (case_id,score | case_id,p0..) or NPZ keyed by case id.")
    ],
    split: Annotated[str, typer.Option("--split", help="test or val")] = "test",
    val_predictions: Annotated[
        Path | None,
        typer.Option(
            "--val-predictions",
            help="Predictions on val: binary operating points are chosen there.",
        ),
    ] = None,
    format: Annotated[str, typer.Option("--format", help="table or json")] = "table",
) -> None:
    """Score a predictions file against the task's hidden labels, as Kaggle scores an upload."""
    from medbench.upload import score_file

    report = score_file(task, predictions, split=split, val_predictions=val_predictions)
    if format == "json":
        out = report.to_dict()
        out.pop("per_case")
        sys.stdout.write(json.dumps(out, indent=2) + "\n")
        return
    n = len(report.per_case)
    console.print(_metric_table(f"{task} ({split}, {n} cases)", report.summary, report.per_class))
    if val_predictions is None and _has_operating_points(task):
        console.print(
            "[dim]operating points not reported: give --val-predictions to choose them on val[/]"
        )


def _has_operating_points(task: str) -> bool:
    from medbench.tasks import get_task

    return bool(get_task(task).option("operating_points"))


def parse_overrides(items: list[str], epochs: int | None) -> dict:
    """``["base_width=16", "backbone=resnet50"]`` -> a checked ``[train]`` override table."""
    import tomllib

    from medbench.submission.loader import check_train_table

    table: dict = {}
    for item in items:
        key, sep, raw = item.partition("=")
        if not sep or not key.strip():
            raise MedbenchError(f"--set takes KEY=VALUE; got {item!r}")
        try:
            value = tomllib.loads(f"v = {raw}")["v"]
        except tomllib.TOMLDecodeError:
            value = raw  # a bare word: a string
        table[key.strip()] = value
    if epochs is not None:
        table["epochs"] = epochs
    check_train_table(table, "--set")
    return table


def _value_ci(m: dict) -> str:
    """``0.9312 [0.9101, 0.9480]`` from a record's metric entry (undefined values said so)."""
    value = m.get("value")
    if value is None:
        return "undefined"
    if m.get("ci_low") is None or m.get("ci_high") is None:
        return f"{value:.4f}"
    return f"{value:.4f} [{m['ci_low']:.4f}, {m['ci_high']:.4f}]"


# --- run -----------------------------------------------------------------------------------------


# The options of `medbench run` (typer reads the help from these annotations).
Tasks = Annotated[list[str] | None, typer.Option("--task", "-t", help="Only these tasks (repeat).")]
Seeds = Annotated[list[int] | None, typer.Option("--seed", "-s", help="Seeds (repeat; default 0).")]
Device = Annotated[
    str | None, typer.Option("--device", help="cpu, cuda, cuda:1 (default: cuda if present).")
]
Timeout = Annotated[
    float | None, typer.Option("--timeout", help="Seconds per run before it is killed.")
]
Resume = Annotated[
    bool, typer.Option("--resume", help="Continue interrupted runs from their checkpoints.")
]
Force = Annotated[bool, typer.Option("--force", help="Run even if an identical run is recorded.")]
ResultsDir = Annotated[Path, typer.Option("--results-dir", help="Where records go.")]
Epochs = Annotated[
    int | None, typer.Option("--epochs", help="Override \\[train] epochs (quick runs).")
]
Sets = Annotated[
    list[str] | None,
    typer.Option(
        "--set", help="Override a \\[train] value for these runs, KEY=VALUE (TOML value; repeat)."
    ),
]
MemoryLimit = Annotated[
    int | None,
    typer.Option(
        "--memory-limit",
        help="Memory limit of the run's whole process tree, MiB (a cgroup where the system allows one).",
    ),
]
Isolation = Annotated[
    str | None,
    typer.Option(
        "--isolation",
        help="sandbox (bubblewrap; the default where it works) or none (marked on the leaderboard).",
    ),
]
MaxSubmissionMb = Annotated[
    float, typer.Option("--max-submission-mb", help="Largest submission folder to snapshot, MiB.")
]
Executor = Annotated[str, typer.Option("--executor", help="local, process or ray.")]
Jobs = Annotated[int, typer.Option("--jobs", "-j", help="Parallel runs (process/ray).")]
Address = Annotated[
    str | None, typer.Option("--address", help="Ray cluster address ('auto' joins one).")
]
Threads = Annotated[
    int | None,
    typer.Option(
        "--threads", help="CPU threads per run (default: all cores; fixed for reproducibility)."
    ),
]
Quiet = Annotated[bool, typer.Option("--quiet", "-q", help="No progress bars (CI).")]
Variant = Annotated[
    str | None,
    typer.Option(
        "--variant",
        help="Label runs with other settings: their entry is NAME+VARIANT, beside NAME's own.",
    ),
]
GallerySplit = Annotated[
    str | None,
    typer.Option(
        "--gallery-split",
        help="The split the worst-cases gallery of a segmentation run shows: val or test "
        "(default: the task's choice, else test). val publishes no test image or label.",
    ),
]
TrainFractions = Annotated[
    list[str] | None,
    typer.Option(
        "--train-fraction",
        help="Train on these fractions of the training cases (nested, stratified subsets; "
        "repeat or comma-separate: 0.1,0.25,0.5,1). Val and test never change.",
    ),
]


def parse_fractions(items: list[str] | None) -> list[float | None]:
    """``["0.1,0.25", "1"]`` -> ``[0.1, 0.25, None]`` (1: all training cases, the ordinary run)."""
    from medbench.data.subsets import check_fraction

    if not items:
        return [None]
    out: list[float | None] = []
    for item in items:
        for part in item.split(","):
            try:
                value = float(part)
            except ValueError:
                raise MedbenchError(
                    f"--train-fraction takes numbers in (0, 1]; got {part.strip()!r}"
                ) from None
            out.append(None if check_fraction(value) == 1.0 else value)
    return out


MlflowUri = Annotated[
    str | None,
    typer.Option(
        "--mlflow",
        metavar="URI",
        help="Log each run to this MLflow tracking server once its record is written "
        '(e.g. http://127.0.0.1:5000; needs pip install "medbench\\[mlflow]").',
    ),
]
MlflowExperiment = Annotated[
    str | None,
    typer.Option(
        "--mlflow-experiment",
        metavar="NAME",
        help="The MLflow experiment of these runs (default: medbench/<task>).",
    ),
]


@app.command("run")
@reports_errors
def run_command(
    paths: Annotated[list[Path], typer.Argument(help="Submission folders.")],
    task: Tasks = None,
    seed: Seeds = None,
    device: Device = None,
    timeout: Timeout = None,
    resume: Resume = False,
    force: Force = False,
    results_dir: ResultsDir = Path("leaderboards/results"),
    epochs: Epochs = None,
    set_: Sets = None,
    memory_limit: MemoryLimit = None,
    isolation: Isolation = None,
    max_submission_mb: MaxSubmissionMb = 256.0,
    executor: Executor = "local",
    jobs: Jobs = 1,
    address: Address = None,
    threads: Threads = None,
    variant: Variant = None,
    train_fraction: TrainFractions = None,
    gallery_split: GallerySplit = None,
    quiet: Quiet = False,
    mlflow: MlflowUri = None,
    mlflow_experiment: MlflowExperiment = None,
) -> None:
    """Train and evaluate submissions on their tasks; write a result record per run."""
    from medbench.executors import get_executor
    from medbench.runner import RunOptions, plan
    from medbench.sandbox import resolve_isolation

    runs = plan(paths, task or (), seed or [0], parse_fractions(train_fraction))
    mode, warning = resolve_isolation(isolation)
    options = RunOptions(
        device=device,
        timeout=timeout,
        resume=resume,
        force=force,
        results_dir=results_dir,
        memory_limit_mb=memory_limit,
        train_overrides=parse_overrides(set_ or [], epochs),
        threads=threads,
        isolation=mode,
        max_submission_mb=max_submission_mb,
        variant=variant,
        gallery_split=gallery_split,
    )
    if results_dir.exists() and not results_dir.is_dir():
        raise MedbenchError(f"--results-dir {results_dir} is a file, not a folder")
    if warning:
        err_console.print(styled("warning:", "bold yellow", f" {warning}"), soft_wrap=True)
    # Before any training: a wrong URI costs nothing.
    tracker = _tracker(mlflow, mlflow_experiment, runs)
    names = ", ".join(
        f"{options.entry_name(r.submission.name)}/{r.task}/seed{r.seed}"
        + (f"/train{r.train_fraction:g}" if r.train_fraction is not None else "")
        for r in runs
    )
    console.print(Text(printable(f"{len(runs)} run(s): {names}")))
    chosen = get_executor(executor, jobs=jobs, address=address)
    with progress_bar(quiet) as bar:
        progress = RunProgress(bar)
        on_event = progress if tracker is None else _both(tracker, progress)
        outcomes = _run_stoppably(chosen, runs, options, on_event)
    failed = _print_outcomes(outcomes)
    if (tracker is not None and _print_tracking(tracker)) or failed:
        raise typer.Exit(1)


def _tracker(uri: str | None, experiment: str | None, runs: list):
    """The MLflow tracker of ``--mlflow URI`` (None without it); MLflow is imported only then."""
    if uri is None:
        if experiment is not None:
            raise MedbenchError("--mlflow-experiment needs --mlflow URI")
        return None
    from medbench.tracking import open_tracker

    return open_tracker(uri, experiment=experiment, tasks=sorted({r.task for r in runs}))


def _both(first: Callable[[dict], None], second: Callable[[dict], None]) -> Callable[[dict], None]:
    def on_event(event: dict) -> None:
        first(event)
        second(event)

    return on_event


def _print_tracking(tracker) -> int:
    """A line per run logged to MLflow, one line for all that were not; returns how many not."""
    for t in tracker.tracked:
        already = " (already in MLflow)" if t.already else ""
        console.print(styled("tracked", "cyan", f" {t.name}{already} -> {t.where}"), soft_wrap=True)
    if tracker.failures:
        err_console.print(
            styled("error:", "bold red", f" {one_line(tracker.failure_line())}"), soft_wrap=True
        )
    return len(tracker.failures)


class RunProgress:
    """A progress bar per run, fed by the child's events (epochs, loss, validation metric)."""

    def __init__(self, bar: Progress) -> None:
        self.bar, self.current = bar, None

    def __call__(self, event: dict) -> None:
        if event.get("event") == "start":
            label = f"{event.get('submission')} · {event.get('task')} · seed {event.get('seed')}"
            self.current = self.bar.add_task(f"{label} ({event.get('device')})", total=None)
        elif event.get("event") == "epoch" and self.current is not None:
            metric = event.get("val_metric")
            self.bar.update(
                self.current,
                completed=event.get("epoch"),
                total=event.get("epochs"),
                description=(
                    f"epoch {event.get('epoch')}/{event.get('epochs')} "
                    f"loss {event.get('loss', float('nan')):.4f} "
                    f"val {metric if metric is None else round(metric, 4)} "
                    f"{event.get('images_per_s', 0):.0f} img/s"
                ),
            )


def _run_stoppably(executor, runs, options, on_event) -> list:
    """Run with SIGINT, SIGTERM and SIGHUP stopping every run (one line, exit 128 + signal)."""
    from medbench.supervise import clear_stop, stop_exit_code, stop_on_signals

    clear_stop()
    try:
        with stop_on_signals():
            return executor.run(runs, options, on_event)
    except Interrupted as exc:
        err_console.print(
            styled(
                "interrupted:",
                "bold red",
                f" {one_line(exc)}; the run(s) in progress were killed with their whole "
                "process trees and no record was written for them (finished runs keep theirs)",
            ),
            soft_wrap=True,
        )
        raise typer.Exit(stop_exit_code()) from None


def _print_outcomes(outcomes: list) -> int:
    """One line per run; returns how many failed."""
    failed = 0
    for o in outcomes:
        entry = ((o.record or {}).get("submission") or {}).get("name") or o.run.submission.name
        name = f"{entry}/{o.run.task}/seed{o.run.seed}"
        if o.run.train_fraction is not None:
            name += f"/train{o.run.train_fraction:g}"
        if o.status == "ok":
            primary = o.record["primary_metric"]
            shown = _value_ci(o.record["metrics"].get(primary, {}))
            console.print(
                styled("ok", "green", f"      {name}: {primary} {shown} -> {o.path}"),
                soft_wrap=True,
            )
            for path in o.derived:
                console.print(Text(printable(f"        also scored on its coarse view -> {path}")))
            for note in o.notes:
                err_console.print(styled("warning:", "bold yellow", f" {name}: {one_line(note)}"))
        elif o.status == "skipped":
            console.print(
                styled("skipped", "cyan", f" {name}: {one_line(o.message)} ({o.path})"),
                soft_wrap=True,
            )
        else:
            failed += 1
            where = f" -> {o.path}" if o.path else ""
            err_console.print(
                styled("failed", "bold red", f"  {name}: {one_line(o.message)}{where}"),
                soft_wrap=True,
            )
    return failed


# --- new, check ----------------------------------------------------------------------------------


@app.command("new")
@reports_errors
def new_command(
    name: Annotated[str, typer.Argument(help="Name of the new submission.")],
    template: Annotated[str, typer.Option("--template", help="torch or sklearn")] = "torch",
    directory: Annotated[Path, typer.Option("--dir", help="Parent folder.")] = Path("submissions"),
) -> None:
    """Scaffold submissions/NAME with a working manifest, model and README."""
    from medbench.submission.templates import render_template

    files = render_template(template, name, directory / name)
    for f in files:
        console.print(f"created {f}")
    console.print(
        f"next: [bold]medbench check {directory / name}[/], then [bold]medbench run {directory / name}[/]"
    )


@app.command("check")
@reports_errors
def check_command(
    path: Annotated[Path, typer.Argument(help="Submission folder.")],
    task: Annotated[
        list[str] | None, typer.Option("--task", "-t", help="Only these tasks.")
    ] = None,
    isolation: Annotated[
        str | None,
        typer.Option("--isolation", help="sandbox (the default where it works) or none."),
    ] = None,
) -> None:
    """Load a submission and run fit/predict on tiny synthetic data of each task it enters."""
    from medbench.check import check_submission
    from medbench.sandbox import resolve_isolation

    mode, warning = resolve_isolation(isolation)
    if warning:
        err_console.print(styled("warning:", "bold yellow", f" {warning}"), soft_wrap=True)
    results = check_submission(path, tasks=task, isolation=mode)
    bad = 0
    for r in results:
        mark = "[green]ok[/]  " if r.ok else "[bold red]FAIL[/]"
        console.print(f"{mark} {r.task}: {r.message} ({r.seconds:.1f} s)", soft_wrap=True)
        bad += not r.ok
    if bad:
        raise typer.Exit(1)


# --- leaderboard ---------------------------------------------------------------------------------


@app.command("leaderboard")
@reports_errors
def leaderboard_command(
    results: Annotated[Path, typer.Option("--results", help="Folder of result records.")] = Path(
        "leaderboards/results"
    ),
    out: Annotated[Path, typer.Option("--out", help="Where the tables and figures go.")] = Path(
        "leaderboards"
    ),
    task: Annotated[
        list[str] | None, typer.Option("--task", "-t", help="Only these tasks.")
    ] = None,
    format: Annotated[
        str, typer.Option("--format", help="markdown, csv, json, html (a static site) or all")
    ] = "markdown",
) -> None:
    """Render leaderboards (markdown tables with CIs, paired tests, rank intervals, figures) from records."""
    from medbench.leaderboard import publish
    from medbench.tasks import get_task

    for t in task or []:
        get_task(t)
    files = publish(results, out, tasks=task or None, format=format)
    for f in files:
        console.print(f"wrote {f}")


# --- verify --------------------------------------------------------------------------------------


@app.command("verify")
@reports_errors
def verify_command(
    records: Annotated[list[Path], typer.Argument(help="Result records, or folders of them.")],
) -> None:
    """Re-score records' saved predictions against the local answers; report any difference."""
    from medbench.verify import verify_records

    colours = {
        "verified": "green",
        "differs": "bold red",
        "unverifiable": "yellow",
        "not-scored": "dim",
    }
    results = verify_records(records)
    for r in results:
        console.print(
            styled(f"{r.status:<12}", colours[r.status], f" {r.path}: {one_line(r.detail)}"),
            soft_wrap=True,
        )
    bad = [r for r in results if r.status in ("differs", "unverifiable")]
    if bad:
        raise typer.Exit(1)


@app.command("rescore")
@reports_errors
def rescore_command(
    records: Annotated[list[Path], typer.Argument(help="Result records, or folders of them.")],
    out: Annotated[
        Path | None, typer.Option("--out", help="Write the new records here (default: in place).")
    ] = None,
) -> None:
    """Score records again for the current task version, from their saved predictions or
    per-case columns (no re-run); say what could not be."""
    from medbench.rescore import rescore_records

    colours = {"rescored": "green", "current": "dim", "impossible": "yellow"}
    results = rescore_records(records, out=out)
    for r in results:
        console.print(
            styled(f"{r.status:<10}", colours[r.status], f" {r.path}: {one_line(r.detail)}"),
            soft_wrap=True,
        )
    if any(r.status == "impossible" for r in results):
        raise typer.Exit(1)


# --- ensemble ------------------------------------------------------------------------------------


@app.command("ensemble")
@reports_errors
def ensemble_command(
    name: Annotated[str, typer.Argument(help="The ensemble's entry name on the leaderboard.")],
    members: Annotated[
        list[str],
        typer.Argument(help="Member entries (e.g. cnn cnn+lakhani) or their record files."),
    ],
    task: Annotated[str, typer.Option("--task", "-t", help="The task whose runs are combined.")],
    weights: Annotated[
        list[float] | None,
        typer.Option("--weights", help="One weight per member, in order (default: equal)."),
    ] = None,
    seed: Annotated[int, typer.Option("--seed", help="Which seed's run of each member.")] = 0,
    results: Annotated[
        Path, typer.Option("--results-dir", help="Folder of result records.")
    ] = Path("leaderboards/results"),
) -> None:
    """Combine existing runs' saved predictions into an ensemble record, scored like a run."""
    from medbench.ensemble import make_ensemble
    from medbench.results import read_record

    path = make_ensemble(name, task, members, results_dir=results, seed=seed, weights=weights)
    record = read_record(path)
    m = record["metrics"][record["primary_metric"]]
    console.print(
        f"wrote {path}: {record['primary_metric']} {_value_ci(m)} "
        f"({record['ensemble']['combine']}, {len(members)} members)",
        soft_wrap=True,
    )


# --- export --------------------------------------------------------------------------------------


@app.command("export")
@reports_errors
def export_command(
    records: Annotated[list[Path], typer.Argument(help="Result records, or folders of them.")],
    format: Annotated[str, typer.Option("--format", "-f", help="gc, nnunet, model-index or csv.")],
    out: Annotated[Path, typer.Option("--out", help="Folder the files go to.")] = Path("exports"),
) -> None:
    """Write records in other tools' formats: Grand Challenge metrics.json, nnU-Net summary.json,
    a Hugging Face model-index block, or one CSV row per test case."""
    from medbench.exports import export

    for f in export(records, format, out):
        console.print(Text(printable(f"wrote {f}")), soft_wrap=True)  # a path on one line


# --- coarse --------------------------------------------------------------------------------------


@app.command("coarse")
@reports_errors
def coarse_command(
    records: Annotated[list[Path], typer.Argument(help="Records of runs on a fine task.")],
) -> None:
    """Score fine-task runs on the tasks that are coarse views of it (Esteva et al. 2017): e.g.
    a messidor2-grading run on messidor2-referable, P(referable) = P(grade 2) + P(3) + P(4)."""
    from medbench.coarse import derive
    from medbench.results import read_record

    for path in records:
        for target in derive(path):
            record = read_record(target)
            m = record["metrics"][record["primary_metric"]]
            console.print(
                Text(printable(f"wrote {target}: {record['primary_metric']} {_value_ci(m)}")),
                soft_wrap=True,
            )


# --- reproduce -----------------------------------------------------------------------------------


@app.command("reproduce")
@reports_errors
def reproduce_command(
    record: Annotated[Path, typer.Argument(help="A result record (JSON).")],
    submission: Annotated[
        Path | None,
        typer.Option("--submission", help="Submission folder (default: the record's path)."),
    ] = None,
    device: Annotated[
        str | None, typer.Option("--device", help="Device (default: the record's).")
    ] = None,
) -> None:
    """Re-run exactly a record's submission content, task version and seed; compare every metric."""
    from medbench.reproduce import reproduce

    _, rows, tolerance = reproduce(record, submission=submission, device=device)
    table = Table(title=f"reproduction of {record} (tolerance {tolerance:g})")
    for column in ("metric", "recorded", "reproduced", "difference", ""):
        table.add_column(
            column,
            justify="right" if column in ("recorded", "reproduced", "difference") else "left",
        )

    def fmt(v):
        return "undefined" if v is None else f"{v:.6f}"

    for r in rows:
        table.add_row(
            r.metric,
            fmt(r.recorded),
            fmt(r.reproduced),
            fmt(r.difference),
            "[green]same[/]" if r.within else "[bold red]differs[/]",
        )
    console.print(table)
    if not all(r.within for r in rows):
        raise typer.Exit(1)


if __name__ == "__main__":  # pragma: no cover
    app()
