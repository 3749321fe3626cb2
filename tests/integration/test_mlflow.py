"""`medbench run --mlflow URI` against a real MLflow tracking server on loopback: what is logged is
read back through MlflowClient and compared with the record; failures keep the record.

The server is started once for the module (about 15 s on 2 cores); the tests that need it are
skipped, saying why, where MLflow is not installed (pip install "medbench[mlflow]"), and fail
instead with MEDBENCH_REQUIRE_MLFLOW=1 (CI).
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from medbench.cli import app
from medbench.results import read_record, record_path

ROOT = Path(__file__).resolve().parents[2]
DUMMY, UNET = ROOT / "submissions" / "dummy", ROOT / "submissions" / "unet"
cli = CliRunner()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def red_lines(text: str) -> list[str]:
    return [line for line in text.splitlines() if line.startswith(("error:", "failed"))]


@pytest.fixture(scope="module")
def server(mlflow_installed, tmp_path_factory) -> Iterator[str]:
    """A real `mlflow server` (SQLite store, artifacts served by it) on a free loopback port."""
    root = tmp_path_factory.mktemp("mlflow-server")
    port = _free_port()
    argv = [
        sys.executable,
        "-m",
        "mlflow",
        "server",
        "--backend-store-uri",
        f"sqlite:///{root / 'mlflow.db'}",
        "--artifacts-destination",
        str(root / "artifacts"),
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--workers",
        "1",
    ]
    # No telemetry, and no job runner (its worker processes are not needed for tracking).
    env = {
        **os.environ,
        "MLFLOW_DISABLE_TELEMETRY": "true",
        "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false",
    }
    log = open(root / "server.log", "wb")  # noqa: SIM115 (closed below)
    # Its own session: the server's workers are killed with it, whatever happens to the test.
    proc = subprocess.Popen(
        argv, cwd=root, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
    )
    uri = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90
        while True:
            if proc.poll() is not None:
                pytest.fail(f"mlflow server exited with {proc.returncode}: {_tail(root)}")
            try:
                with urllib.request.urlopen(f"{uri}/health", timeout=2) as answer:
                    if answer.status == 200:
                        break
            except OSError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"mlflow server did not answer /health within 90 s: {_tail(root)}")
            time.sleep(0.5)
        yield uri
    finally:
        # SIGTERM first (uvicorn shuts down gracefully), then SIGKILL for whatever lingers.
        for sig, wait in ((signal.SIGTERM, 3), (signal.SIGKILL, 15)):
            try:
                os.killpg(proc.pid, sig)
                proc.wait(timeout=wait)
                break
            except ProcessLookupError:
                break
            except subprocess.TimeoutExpired:
                continue
        log.close()


def _tail(root: Path) -> str:
    return (root / "server.log").read_text(errors="replace")[-2000:]


@pytest.fixture
def client(server):
    from mlflow.tracking import MlflowClient

    return MlflowClient(tracking_uri=server)


@pytest.fixture(autouse=True)
def _quiet_mlflow(monkeypatch):
    monkeypatch.setenv("MLFLOW_DISABLE_TELEMETRY", "true")


def run_cli(*args: str):
    return cli.invoke(app, ["run", *args, "--quiet"])


def only_run(client, experiment: str, record: dict):
    """The one active MLflow run of ``record`` (found by its seal) in ``experiment``."""
    found = client.get_experiment_by_name(experiment)
    assert found is not None, f"no experiment {experiment!r}"
    runs = client.search_runs(
        [found.experiment_id],
        filter_string=f"tags.`medbench.record_sha256` = '{record['record_sha256']}'",
    )
    assert len(runs) == 1, [r.info.run_id for r in runs]
    return runs[0]


def as_param(value) -> str:
    return value if isinstance(value, str) else json.dumps(value)


def test_trained_runs_are_logged_whole_and_their_curves_do_not_mix(server, client, tmp_path):
    # Two runs at once (--executor process): each run's epoch events must land in its own run.
    results = tmp_path / "results"
    result = run_cli(
        str(UNET),
        "--task",
        "toy-anatomy",
        "--seed",
        "0",
        "--seed",
        "1",
        "--epochs",
        "2",
        "--set",
        "base_width=8",
        "--executor",
        "process",
        "--jobs",
        "2",
        "--threads",
        "1",
        "--results-dir",
        str(results),
        "--mlflow",
        server,
    )
    assert result.exit_code == 0, result.output
    losses = []
    for seed in (0, 1):
        path = record_path(results, "toy-anatomy", "unet", seed)
        record = read_record(path)
        run = only_run(client, "medbench/toy-anatomy", record)
        assert f"tracked unet/toy-anatomy/seed{seed} -> {server}/#/experiments/" in result.stdout
        assert run.info.status == "FINISHED" and run.info.run_name == f"unet/toy-anatomy/seed{seed}"
        # params: the effective [train] table, as the record has it
        assert run.data.params == {k: as_param(v) for k, v in record["train"].items()}
        assert run.data.params["epochs"] == "2" and run.data.params["base_width"] == "8"
        # one point per epoch, step = epoch
        loss = client.get_metric_history(run.info.run_id, "train_loss")
        val = client.get_metric_history(run.info.run_id, "val_dice")
        assert [m.step for m in loss] == [1, 2] and [m.step for m in val] == [1, 2]
        losses.append([m.value for m in loss])
        # the final metrics and their intervals, overall and per class, are the record's
        metrics = run.data.metrics
        for suffix, field in (("", "value"), ("_ci_low", "ci_low"), ("_ci_high", "ci_high")):
            assert metrics[f"dice{suffix}"] == record["metrics"]["dice"][field]
            assert metrics[f"dice_disc{suffix}"] == record["per_class"]["disc"]["dice"][field]
        # the tags name every hash of the record
        tags = run.data.tags
        assert tags["medbench.record_sha256"] == record["record_sha256"]
        assert tags["medbench.split_sha256"] == record["task"]["split_sha256"]
        assert tags["medbench.task_version"] == str(record["task"]["version"])
        assert tags["medbench.data_sha256"] == record["task"]["data_sha256"]
        assert tags["medbench.submission_content_sha256"] == record["submission"]["content_sha256"]
        assert tags["medbench.seed"] == str(seed) and tags["medbench.device"] == "cpu"
        assert tags["medbench.version"] == record["environment"]["medbench"]
        # the record and the files beside it, byte for byte
        names = {f.path for f in client.list_artifacts(run.info.run_id)}
        assert names == {
            f"unet.seed{seed}.json",
            f"unet.seed{seed}.predictions.npz",
            f"unet.seed{seed}.worst.png",
        }
        copy = client.download_artifacts(run.info.run_id, path.name, str(tmp_path))
        assert Path(copy).read_bytes() == path.read_bytes()
    assert losses[0] != losses[1]  # two runs' curves, not one curve twice


def test_a_record_is_logged_once_even_when_its_run_is_skipped(server, client, tmp_path):
    results, experiment = tmp_path / "results", f"medbench-test-{uuid.uuid4().hex[:8]}"
    base = (str(DUMMY), "--task", "toy-lesions", "--results-dir", str(results))
    tracked = (*base, "--mlflow", server, "--mlflow-experiment", experiment)
    assert run_cli(*base).exit_code == 0  # recorded without tracking
    later = run_cli(*tracked)  # skipped as done; its record is logged now
    assert later.exit_code == 0, later.output
    assert "skipped" in later.stdout and "tracked dummy/toy-lesions/seed0 -> " in later.stdout
    record = read_record(record_path(results, "toy-lesions", "dummy", 0))
    run = only_run(client, experiment, record)
    auc = record["metrics"]["auc"]
    assert (run.data.metrics["auc"], run.data.metrics["auc_ci_low"]) == (
        auc["value"],
        auc["ci_low"],
    )
    assert "train_loss" not in run.data.metrics  # the dummy does not train
    again = run_cli(*tracked)
    assert again.exit_code == 0 and "(already in MLflow)" in again.stdout
    only_run(client, experiment, record)  # still one run


def test_a_failed_run_is_logged_as_failed_with_its_reason(server, client, tmp_path):
    results = tmp_path / "results"
    fixture = ROOT / "tests" / "fixtures" / "submissions" / "fit-raises"
    result = run_cli(str(fixture), "--results-dir", str(results), "--mlflow", server)
    assert result.exit_code == 1  # the run failed; its tracking did not
    assert red_lines(result.stderr)[0].startswith("failed  fit-raises/toy-lesions/seed0: ")
    assert len(red_lines(result.stderr)) == 1 and "tracked fit-raises" in result.stdout
    record = read_record(record_path(results, "toy-lesions", "fit-raises", 0))
    run = only_run(client, "medbench/toy-lesions", record)
    assert run.info.status == "FAILED" and run.data.tags["medbench.status"] == "failed"
    assert run.data.tags["medbench.error"] == record["error"]["message"]
    assert "ValueError: boom in fit" in run.data.tags["medbench.error"]
    assert not any(k == "auc" for k in run.data.metrics)  # a failed run has no scores


def test_an_unreachable_server_is_one_error_line_before_anything_runs(mlflow_installed, tmp_path):
    uri = f"http://127.0.0.1:{_free_port()}"
    t0 = time.monotonic()
    result = run_cli(
        str(DUMMY), "--task", "toy-lesions", "--results-dir", str(tmp_path / "r"), "--mlflow", uri
    )
    assert time.monotonic() - t0 < 30  # not MLflow's minutes of retries
    assert result.exit_code == 1
    (line,) = red_lines(result.stderr)
    assert line.startswith(
        f"error: TrackingError: cannot reach the MLflow tracking server at {uri}: "
    )
    assert "run(s):" not in result.stdout and not (tmp_path / "r").exists()  # nothing started


def test_a_failure_to_log_keeps_the_record_and_leaves_no_half_run(
    server, client, tmp_path, monkeypatch
):
    from mlflow.tracking import MlflowClient

    results, experiment = tmp_path / "results", f"medbench-test-{uuid.uuid4().hex[:8]}"
    args = (str(DUMMY), "--task", "toy-lesions", "--results-dir", str(results))
    args += ("--mlflow", server, "--mlflow-experiment", experiment)

    def refuse(self, run_id, local_path, artifact_path=None):
        raise OSError("the artifact store is full")

    with monkeypatch.context() as patched:
        patched.setattr(MlflowClient, "log_artifact", refuse)
        result = run_cli(*args)
    assert result.exit_code == 1
    path = record_path(results, "toy-lesions", "dummy", 0)
    record = read_record(path)  # written whole and sealed before anything was logged
    assert record["status"] == "ok" and "ok      dummy/toy-lesions/seed0" in result.stdout
    (line,) = red_lines(result.stderr)
    assert line.startswith(
        f"error: TrackingError: MLflow tracking at {server} failed for 1 of 1 run(s) "
    )
    assert "OSError: the artifact store is full" in line and str(path) in line
    found = client.get_experiment_by_name(experiment)
    assert client.search_runs([found.experiment_id]) == []  # the half-logged run was deleted
    # Once the store takes files again, the same command logs the record (the run is skipped).
    again = run_cli(*args)
    assert again.exit_code == 0 and "skipped" in again.stdout, again.output
    assert only_run(client, experiment, record).info.status == "FINISHED"


def test_without_the_flag_mlflow_is_never_imported(tmp_path):
    code = (
        "import sys\n"
        "from medbench.cli import app\n"
        "try:\n"
        f"    app(['run', {str(DUMMY)!r}, '--task', 'toy-lesions', '-q',"
        f" '--results-dir', {str(tmp_path / 'r')!r}])\n"
        "except SystemExit as exc:\n"
        "    print('exit', exc.code)\n"
        "print('mlflow imported:', any(m.split('.')[0] == 'mlflow' for m in sys.modules))\n"
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT / "benchmark")}
    done = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=300
    )
    assert "exit 0" in done.stdout, done.stdout + done.stderr
    assert "mlflow imported: False" in done.stdout
    assert record_path(tmp_path / "r", "toy-lesions", "dummy", 0).is_file()
