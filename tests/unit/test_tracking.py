"""medbench.tracking without a server: what a record becomes in MLflow, the child's epoch events
(untrusted, from concurrent runs), the connectivity probe, and the errors of `run --mlflow`.

Only the tests marked below need MLflow installed; the rest check the pure parts and must run
where it is not.
"""

from __future__ import annotations

import http.server
import json
import math
import os
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from types import SimpleNamespace

import pytest
from typer.testing import CliRunner

from medbench import executors, runner
from medbench.cli import app
from medbench.errors import TrackingError
from medbench.tracking import (
    INSTALL,
    MAX_KEY,
    MAX_PARAM_VALUE,
    EpochCurves,
    epoch_point,
    flatten_params,
    open_tracker,
    probe,
    record_metrics,
    record_tags,
    safe_key,
)

ROOT = Path(__file__).resolve().parents[2]
cli = CliRunner()


def red_lines(text: str) -> list[str]:
    return [line for line in text.splitlines() if line.startswith(("error:", "failed"))]


# --- params --------------------------------------------------------------------------------------


def test_params_are_the_train_table_as_text():
    train = {"epochs": 2, "lr": 0.001, "amp": True, "backbone": "resnet18", "sizes": [64, 96]}
    assert flatten_params(train) == {
        "epochs": "2",
        "lr": "0.001",
        "amp": "true",
        "backbone": "resnet18",
        "sizes": "[64, 96]",
    }


def test_inline_tables_are_flattened_and_empty_ones_kept():
    assert flatten_params({"aug": {"flip": True, "rotate": {"deg": 90}}, "extra": {}}) == {
        "aug.flip": "true",
        "aug.rotate.deg": "90",
        "extra": "{}",
    }


def test_keys_mlflow_would_refuse_are_made_safe_and_stay_distinct():
    params = flatten_params({"a b": 1, "a/b": 2, "../x": 3, "ü": 4, "": 5})
    assert params == {"a_b": "1", "a_b-2": "2", "_._._x": "3", "_": "4", "_-2": "5"}
    for key in params:  # MLflow's own rule: no path that resolves elsewhere, only these characters
        assert all(c.isascii() and (c.isalnum() or c in "_-.") for c in key), key
        assert ".." not in key and not key.startswith("/")


def test_long_keys_and_values_fit_mlflows_limits():
    params = flatten_params({"k" * 400: "v" * 10_000, "k" * 401: "short"})
    assert len(params) == 2
    assert all(len(k) <= MAX_KEY for k in params)
    long_value = next(v for v in params.values() if v != "short")
    assert len(long_value) == MAX_PARAM_VALUE
    assert long_value.endswith("the whole value is in the record]")
    assert safe_key("k" * 400) != safe_key("k" * 401)  # the hash keeps them apart


# --- metrics and tags ----------------------------------------------------------------------------


def _record(**changes) -> dict:
    record = {
        "task": {"name": "toy-anatomy", "version": 1, "split_sha256": "s" * 64, "data_sha256": "d"},
        "submission": {"name": "unet", "content_sha256": "c" * 64, "variant": None},
        "seed": 3,
        "device": "cpu",
        "status": "ok",
        "environment": {"medbench": "0.1.0", "git_commit": "abc"},
        "record_sha256": "r" * 64,
        "metrics": {
            "dice": {"value": 0.5, "ci_low": 0.4, "ci_high": 0.6},
            "hd95": {"value": None, "ci_low": None, "ci_high": None},  # undefined
            "ece": {"value": 0.1},  # no interval
        },
        "per_class": {"disc": {"dice": {"value": 0.7, "ci_low": 0.6, "ci_high": 0.8}}},
        "timings": {"fit_s": 1.5},
        "peak_memory_mb": 100.0,
        "peak_gpu_memory_mb": None,
    }
    record.update(changes)
    return record


def test_metrics_carry_their_intervals_per_class_and_timings():
    metrics = record_metrics(_record())
    assert {k: v for k, v in metrics.items() if k != "hd95"} == {
        "dice": 0.5,
        "dice_ci_low": 0.4,
        "dice_ci_high": 0.6,
        "ece": 0.1,
        "dice_disc": 0.7,
        "dice_disc_ci_low": 0.6,
        "dice_disc_ci_high": 0.8,
        "time_fit_s": 1.5,
        "peak_memory_mb": 100.0,
    }
    # undefined is NaN (never 0), its missing interval is left out, not logged as NaN
    assert math.isnan(metrics["hd95"]) and "hd95_ci_low" not in metrics


def test_infinite_values_are_logged_as_nan_not_as_a_huge_number():
    metrics = record_metrics(_record(metrics={"x": {"value": math.inf, "ci_low": -math.inf}}))
    assert math.isnan(metrics["x"]) and math.isnan(metrics["x_ci_low"])


def test_tags_name_every_hash_and_leave_out_what_is_absent(tmp_path):
    tags = record_tags(_record(), tmp_path / "unet.seed3.json")
    assert tags["medbench.task"] == "toy-anatomy" and tags["medbench.task_version"] == "1"
    assert tags["medbench.split_sha256"] == "s" * 64
    assert tags["medbench.submission_content_sha256"] == "c" * 64
    assert tags["medbench.seed"] == "3" and tags["medbench.record_sha256"] == "r" * 64
    assert tags["medbench.version"] == "0.1.0"
    assert "medbench.variant" not in tags and "medbench.error" not in tags


# --- epoch events: untrusted, and from runs that may run at the same time ----------------------


def test_epoch_points_take_only_numbers_from_the_child():
    good = {"epoch": 2, "loss": 0.5, "val_metric": 0.8, "metric": "dice", "lr": 1e-3}
    assert epoch_point(good) == (2, {"train_loss": 0.5, "val_dice": 0.8, "train_lr": 1e-3})
    assert epoch_point({**good, "val_metric": None}) == (2, {"train_loss": 0.5, "train_lr": 1e-3})
    assert epoch_point({**good, "metric": "../../x"})[1]["val_metric"] == 0.8  # a safe name
    for bad_epoch in (True, -1, 2.5, "2", None, 10**12):
        assert epoch_point({**good, "epoch": bad_epoch}) is None
    assert epoch_point({"epoch": 1, "loss": "0.5", "lr": [1], "val_metric": True}) is None
    assert math.isnan(epoch_point({"epoch": 1, "loss": math.inf})[1]["train_loss"])


def _event(kind: str, task: str, seed: int, **info) -> dict:
    return {"event": kind, "task": task, "submission": "unet", "seed": seed, **info}


def test_curves_of_concurrent_runs_never_mix():
    curves = EpochCurves()
    keys = [("toy-anatomy", "unet", 0), ("toy-anatomy", "unet", 1), ("toy-lesions", "unet", 0)]

    def one(task: str, seed: int) -> None:
        curves.add(_event("start", task, seed))
        for epoch in range(1, 51):
            curves.add(_event("epoch", task, seed, epoch=epoch, loss=float(seed * 100 + epoch)))

    threads = [threading.Thread(target=one, args=(t, s)) for t, _, s in keys]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for task, _, seed in keys:
        started, points = curves.pop((task, "unet", seed))
        assert started is not None
        assert [(p[0], p[1], p[3]) for p in points] == [
            ("train_loss", float(seed * 100 + e), e) for e in range(1, 51)
        ]
    assert curves.pop(keys[0]) == (None, [])  # popped once


def test_a_start_resets_a_runs_curve_and_the_last_point_of_an_epoch_counts():
    curves = EpochCurves(max_epochs=3)
    curves.add(_event("epoch", "t", 0, epoch=1, loss=9.0))
    curves.add(_event("start", "t", 0))
    for epoch, loss in [(1, 1.0), (1, 2.0), (2, 3.0), (3, 4.0), (4, 5.0), (3, 6.0)]:
        curves.add(_event("epoch", "t", 0, epoch=epoch, loss=loss))
    curves.add({"event": "epoch", "epoch": 5, "loss": 1.0})  # no run named: ignored
    _, points = curves.pop(("t", "unet", 0))
    assert [(p[3], p[1]) for p in points] == [(1, 2.0), (2, 3.0), (3, 6.0)]  # at most 3 epochs


def test_the_runner_stamps_each_child_event_with_its_own_run():
    seen = []
    resolved = SimpleNamespace(
        spec=SimpleNamespace(name="toy-anatomy"),
        entry="unet+small",
        run=SimpleNamespace(seed=4, train_fraction=None),
        device="cpu",
    )
    tagged = runner._tagged(seen.append, resolved)
    # a child that names another run is overruled
    tagged({"event": "epoch", "epoch": 1, "task": "toy-lesions", "submission": "x", "seed": 0})
    assert seen == [
        {"event": "epoch", "epoch": 1, "task": "toy-anatomy", "submission": "unet+small", "seed": 4}
    ]
    assert runner._tagged(None, resolved) is None


def test_every_run_ends_with_a_done_event_after_its_record(monkeypatch, tmp_path):
    events = []
    path = tmp_path / "r.json"

    def execute(run, options, on_event):
        path.write_text("{}")
        return runner.Outcome(run, "ok", {}, path)

    monkeypatch.setattr(executors, "execute", execute)
    run = runner.Run(ROOT / "submissions" / "dummy", "toy-lesions", 2)
    executors.LocalExecutor().run([run], runner.RunOptions(), events.append)
    assert events == [
        {"event": "done", "task": "toy-lesions", "seed": 2, "status": "ok", "path": str(path)}
    ]


# --- the probe: one quick request, before any training -------------------------------------------


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def answering():
    """An HTTP server on loopback that answers every request with the status it is given."""
    status = {"code": 404}

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            self.send_response(status["code"])
            self.end_headers()

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}", status
    server.shutdown()
    server.server_close()


def test_the_probe_accepts_any_answer_below_500(answering):
    uri, status = answering
    for code in (200, 401, 403, 404):
        status["code"] = code
        probe(uri, "medbench/toy-lesions")


def test_the_probe_refuses_a_server_error(answering):
    uri, status = answering
    status["code"] = 503
    with pytest.raises(
        TrackingError, match=f"the MLflow tracking server at {uri} answered HTTP 503"
    ):
        probe(uri, "medbench")


def test_the_probe_says_at_once_that_nobody_is_there():
    uri = f"http://127.0.0.1:{_free_port()}"
    t0 = time.monotonic()
    with pytest.raises(TrackingError, match=f"cannot reach the MLflow tracking server at {uri}: "):
        probe(uri, "medbench")
    assert time.monotonic() - t0 < 5


# --- the command line ----------------------------------------------------------------------------


def test_without_mlflow_installed_the_flag_says_how_to_install_it(monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "mlflow", None)  # import mlflow now fails
    with pytest.raises(TrackingError, match="--mlflow needs MLflow") as info:
        open_tracker("http://127.0.0.1:5000", experiment=None, tasks=["toy-lesions"])
    assert INSTALL in str(info.value)
    result = cli.invoke(
        app,
        [
            "run",
            str(ROOT / "submissions" / "dummy"),
            "--task",
            "toy-lesions",
            "--results-dir",
            str(tmp_path / "results"),
            "--mlflow",
            "http://127.0.0.1:5000",
            "-q",
        ],
    )
    assert result.exit_code == 1
    (line,) = red_lines(result.stderr)
    assert line.startswith("error: TrackingError: --mlflow needs MLflow (") and line.endswith(
        INSTALL
    )
    assert not (tmp_path / "results").exists()  # nothing ran


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["--mlflow-experiment", "x"],
            "error: MedbenchError: --mlflow-experiment needs --mlflow URI",
        ),
        (["--mlflow", " "], "error: TrackingError: --mlflow takes a tracking URI"),
    ],
)
def test_bad_tracking_options_are_refused_before_anything_runs(tmp_path, args, message):
    result = cli.invoke(
        app,
        ["run", str(ROOT / "submissions" / "dummy"), "--task", "toy-lesions", "-q"]
        + ["--results-dir", str(tmp_path / "results"), *args],
    )
    assert result.exit_code == 1
    lines = red_lines(result.stderr)
    assert len(lines) == 1 and lines[0].startswith(message), lines
    assert not (tmp_path / "results").exists()


def test_importing_mlflow_leaves_the_environment_as_it_was(mlflow_installed):
    # In a fresh interpreter, as a first --mlflow run imports it; an unsandboxed child inherits
    # os.environ, so MLflow's import must not add to it (it sets a telemetry session id).
    code = (
        "import os; before = dict(os.environ); from medbench.tracking import _import_mlflow; "
        "mlflow = _import_mlflow(); print(mlflow.__name__, dict(os.environ) == before)"
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT / "benchmark")}
    done = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120
    )
    assert done.stdout.split() == ["mlflow", "True"], done.stderr


def test_params_round_trip_as_json_for_every_train_type():
    # What a reader of the MLflow run parses back is what the record holds.
    train = {"epochs": 3, "lr": 3e-4, "pretrained": False, "aug": "lakhani", "sizes": [1, 2]}
    parsed = {k: v if k == "aug" else json.loads(v) for k, v in flatten_params(train).items()}
    assert parsed == train
