"""The CLI's error contract: every MedbenchError is one red line and exit code 1; anything else is
a bug, shown with its traceback and exit code 2.

Each command's internals are monkeypatched to raise, so the test covers the wrapper of every
command rather than the ways each one can fail.
"""

from __future__ import annotations

import inspect
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

import medbench.check
import medbench.data.prepare
import medbench.errors
import medbench.exports
import medbench.leaderboard
import medbench.predictions
import medbench.reproduce
import medbench.runner
import medbench.submission.templates
import medbench.tasks
import medbench.upload
from medbench.cli import app
from medbench.errors import MedbenchError

ROOT = Path(__file__).resolve().parents[2]
runner = CliRunner()

# Every error class medbench raises on purpose, found rather than listed: a new one is covered.
ERRORS = sorted(
    (
        c
        for _, c in inspect.getmembers(medbench.errors, inspect.isclass)
        if issubclass(c, MedbenchError)
    ),
    key=lambda c: c.__name__,
)

# command line -> (module, attribute) the command calls first, patched to raise.
COMMANDS = {
    "tasks": (["tasks"], medbench.tasks, "all_tasks"),
    "data status": (["data", "status"], medbench.data.prepare, "status"),
    "data prepare": (["data", "prepare", "-q", "toy-lesions"], medbench.data.prepare, "prepare"),
    "score": (["score", "toy-lesions", "p.csv"], medbench.upload, "score_file"),
    "run": (["run", "submissions/dummy", "-q"], medbench.runner, "plan"),
    "new": (["new", "x", "--dir", "nowhere"], medbench.submission.templates, "render_template"),
    "check": (["check", "submissions/dummy"], medbench.check, "check_submission"),
    "leaderboard": (["leaderboard", "--out", "nowhere"], medbench.leaderboard, "publish"),
    "reproduce": (["reproduce", "r.json"], medbench.reproduce, "reproduce"),
    "export": (["export", "r.json", "--format", "csv"], medbench.exports, "export"),
}


def raising(exc: BaseException):
    def fake(*args, **kwargs):
        raise exc

    return fake


def invoke_raising(monkeypatch, command: str, exc: BaseException):
    args, module, attribute = COMMANDS[command]
    assert hasattr(module, attribute), f"{module.__name__}.{attribute} moved; update COMMANDS"
    monkeypatch.setattr(module, attribute, raising(exc))
    return runner.invoke(app, args)


def red_lines(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.strip()]


@pytest.mark.parametrize("error", ERRORS, ids=lambda c: c.__name__)
@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_every_medbench_error_is_one_line_and_exit_1(monkeypatch, command, error):
    message = f"{error.__name__} raised inside `medbench {command}`"
    result = invoke_raising(monkeypatch, command, error(message))
    assert result.exit_code == 1, result.output
    assert red_lines(result.stderr) == [f"error: {error.__name__}: {message}"]
    assert "Traceback" not in result.output


def test_the_error_classes_are_all_found():
    names = {c.__name__ for c in ERRORS}
    assert {
        "MedbenchError",
        "DataError",
        "ChecksumError",
        "PredictionError",
        "RecordError",
    } <= names
    assert len(names) >= 10


@pytest.mark.parametrize(
    "message",
    [
        "needs a [submission] table",  # a rich style tag: used to vanish from the line
        "closing tag [/x] in a path /tmp/[/x]/a.csv",  # used to raise MarkupError: a traceback
        "[bold]not bold[/bold] and [red]not red[/]",
        "pandas says: Error tokenizing data. C error: Expected 2 fields in line 3, saw 3\n",
        "two\nlines\r\nand a trailing backslash \\",
    ],
)
def test_messages_are_printed_literally_on_one_line(monkeypatch, message):
    result = invoke_raising(monkeypatch, "data prepare", medbench.errors.DataError(message))
    assert result.exit_code == 1
    assert red_lines(result.stderr) == [
        f"error: DataError: {' '.join(message.splitlines()).strip()}"
    ]


@settings(
    max_examples=60,
    deadline=None,
    database=None,  # no .hypothesis folder in the checkout
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(
    message=st.text(
        st.characters(blacklist_categories=("Cc", "Cs", "Zl", "Zp", "Co", "Cn")), min_size=1
    ).filter(lambda s: s.strip())
)
def test_any_printable_message_comes_out_verbatim(monkeypatch, message):
    result = invoke_raising(monkeypatch, "score", medbench.errors.PredictionError(message))
    assert result.exit_code == 1
    assert red_lines(result.stderr) == [f"error: PredictionError: {message.strip()}"]


@pytest.mark.parametrize("command", sorted(COMMANDS))
@pytest.mark.parametrize(
    "exc", [RuntimeError("kaboom"), KeyError("kaboom"), ZeroDivisionError("kaboom")]
)
def test_an_unexpected_exception_is_reported_as_a_bug(monkeypatch, command, exc):
    result = invoke_raising(monkeypatch, command, exc)
    assert result.exit_code == 2, result.output
    assert "Traceback (most recent call last)" in result.stderr
    assert f"{type(exc).__name__}: " in result.stderr and "kaboom" in result.stderr
    assert "This is a bug in medbench" in result.stderr


def test_a_failed_run_line_prints_its_reason_literally(tmp_path, monkeypatch):
    # The per-run "failed" line goes through the same escaping as the error line.
    from medbench.runner import Outcome, Run

    outcome = Outcome(
        Run(Path("sub"), "toy-lesions", 0), "error", message="SubmissionError: [train] x"
    )

    class Executor:
        def run(self, runs, options, on_event):
            return [outcome]

    monkeypatch.setattr(medbench.runner, "plan", lambda *a, **k: [outcome.run])
    monkeypatch.setattr("medbench.executors.get_executor", lambda *a, **k: Executor())
    result = runner.invoke(app, ["run", "sub", "-q"])
    assert result.exit_code == 1
    assert red_lines(result.stderr) == ["failed  sub/toy-lesions/seed0: SubmissionError: [train] x"]
