"""Injected faults leave nothing corrupt: a killed prepare, fit or record write; two runs writing
one results folder; a cache changed on disk; a full disk; submissions that hang, flood, hog memory
or write into the cache; a hand-edited record.

Processes are killed with SIGKILL (no cleanup handlers run). A runner's child is not in the
runner's process group (it has its own session, inside the sandbox): killing the runner alone
must end it too, and the tests that kill a run check that no child is left.
"""

from __future__ import annotations

import errno
import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from fakes import fake_isbi_mirror
from medbench.cli import app
from medbench.data.prepare import answers_dir, load_prepared, prepare, prepared_dir
from medbench.errors import MedbenchError, RecordError
from medbench.results import read_record, record_path, write_record
from medbench.supervise import LOG_LIMIT
from medbench.tasks import get_task

ROOT = Path(__file__).resolve().parents[2]
FIXTURES = ROOT / "tests" / "fixtures" / "submissions"
DUMMY = ROOT / "submissions" / "dummy"
UNET = ROOT / "submissions" / "unet"
cli = CliRunner()


# --- helpers -------------------------------------------------------------------------------------


def env_with(home: Path) -> dict[str, str]:
    return {**os.environ, "MEDBENCH_HOME": str(home), "PYTHONUNBUFFERED": "1"}


def medbench_cmd(*args: str) -> list[str]:
    return [sys.executable, "-m", "medbench.cli", *args]


def python_cmd(script: str) -> list[str]:
    return [sys.executable, "-c", textwrap.dedent(script)]


def start(cmd: list[str], home: Path) -> subprocess.Popen:
    """A process in its own session (its group holds the runner's child too)."""
    return subprocess.Popen(
        cmd,
        cwd=ROOT,
        env=env_with(home),
        start_new_session=True,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )


def wait_for(condition, proc: subprocess.Popen, *, timeout: float = 120.0, what: str = "") -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if proc.poll() is not None:
            out = proc.stdout.read().decode(errors="replace") if proc.stdout else ""
            pytest.fail(f"the process ended (code {proc.returncode}) before {what}:\n{out[-3000:]}")
        if time.monotonic() > deadline:
            kill_group(proc)
            pytest.fail(f"timed out waiting for {what}")
        time.sleep(0.02)


def kill_group(proc: subprocess.Popen) -> None:
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    proc.wait(timeout=30)


def run_cli(*args: str):
    return cli.invoke(app, ["run", *args, "--quiet"])


def hidden_leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.rglob(".*")) if folder.exists() else []


def assert_every_record_reads(results: Path) -> list[Path]:
    """Every ``*.json`` under ``results`` is a complete, sealed record; return them."""
    records = sorted(results.glob("*/*.json"))
    for path in records:
        read_record(path)  # raises RecordError on a partial or edited file
    return records


def red_lines(text: str) -> list[str]:
    return [line for line in text.splitlines() if line.strip()]


# --- SIGKILL during prepare ----------------------------------------------------------------------

SLOW_PREPARE = """
    import sys, time
    import medbench.data.prepare as P

    real = P._read_case

    def slow(spec, loc, case):
        time.sleep(0.01)
        return real(spec, loc, case)

    P._read_case = slow
    P.prepare(sys.argv[1], force=True)
"""


def test_sigkill_during_prepare_leaves_no_cache_and_a_new_prepare_matches(
    fresh_home, tmp_path, monkeypatch
):
    spec = get_task("toy-anatomy")
    proc = start([*python_cmd(SLOW_PREPARE), spec.name], fresh_home)
    parent = prepared_dir(spec).parent
    # Killed once the train split is written and val/test are still being read.
    wait_for(
        lambda: any(parent.glob(f".{prepared_dir(spec).name}.*.tmp/train/images.npy")),
        proc,
        what="the train split of the temporary cache",
    )
    kill_group(proc)
    assert load_prepared(spec) is None
    assert not prepared_dir(spec).exists() and not answers_dir(spec).exists()

    again = prepare(spec)
    again.verify(full=True)
    assert hidden_leftovers(parent) == [] and hidden_leftovers(answers_dir(spec).parent) == []

    # An uninterrupted prepare in another home writes the same arrays.
    monkeypatch.setenv("MEDBENCH_HOME", str(tmp_path / "other-home"))
    clean = prepare(spec)
    assert again.manifest["arrays"] == clean.manifest["arrays"]
    assert again.data_sha256 == clean.data_sha256


def test_sigkill_during_a_forced_prepare_keeps_the_previous_cache(fresh_home):
    spec = get_task("toy-anatomy")
    before = prepare(spec)
    manifest = (before.path / "manifest.json").read_bytes()
    proc = start([*python_cmd(SLOW_PREPARE), spec.name], fresh_home)
    wait_for(
        lambda: any(
            prepared_dir(spec).parent.glob(f".{prepared_dir(spec).name}.*.tmp/train/images.npy")
        ),
        proc,
        what="the train split of the temporary cache",
    )
    kill_group(proc)
    kept = load_prepared(spec)
    assert kept is not None and (kept.path / "manifest.json").read_bytes() == manifest
    kept.verify(full=True)  # every array, the hidden answers too, is the previous complete version
    assert prepare(spec, force=True).manifest["arrays"] == before.manifest["arrays"]


KILL_AT_A_SWAP = """
    import os, signal, sys
    from pathlib import Path
    import medbench.data.prepare as P

    spec = P.get_task(sys.argv[1])
    answers_tmp = "." + P.answers_dir(spec).name + "."
    real = os.replace

    def replace(src, dst):
        src = Path(src)
        if sys.argv[3] == "answers-half":  # old answers moved aside, new ones not yet in place
            hit = src.parent == P.answers_dir(spec).parent and src.name.startswith(answers_tmp)
        else:  # new answers in place, the old prepared folder about to be moved aside
            hit = src == P.prepared_dir(spec)
        if hit:
            os.kill(os.getpid(), signal.SIGKILL)
        return real(src, dst)

    os.replace = replace
    P.prepare(spec, from_dir=sys.argv[2], force=True)
"""


@pytest.mark.parametrize("where", ["answers-half", "between-the-swaps"])
def test_sigkill_while_swapping_a_cache_never_serves_a_mismatched_one(fresh_home, tmp_path, where):
    # Re-preparing from changed raw data, killed while the new cache is being put in place: what
    # is left must be the previous complete cache or none, never an old manifest with missing or
    # new test labels (which `medbench score` would use without a word).
    spec = get_task("isbi2012-membranes")
    old = prepare(spec, from_dir=fake_isbi_mirror(tmp_path / "a", seed=1))
    new_raw = str(fake_isbi_mirror(tmp_path / "b", seed=2))
    proc = start([*python_cmd(KILL_AT_A_SWAP), spec.name, new_raw, where], fresh_home)
    assert proc.wait(timeout=120) == -signal.SIGKILL
    ready = load_prepared(spec)
    if ready is not None:
        ready.verify(full=True)  # complete and consistent, labels included
        assert ready.data_sha256 == old.data_sha256
    fixed = prepare(spec, from_dir=new_raw)
    fixed.verify(full=True)
    assert fixed.data_sha256 != old.data_sha256
    assert hidden_leftovers(prepared_dir(spec).parent) == []
    assert hidden_leftovers(answers_dir(spec).parent) == []


# --- SIGKILL during fit, then --resume -----------------------------------------------------------


def test_sigkill_during_fit_then_resume_equals_an_uninterrupted_run(tmp_path, monkeypatch):
    # One thread for every run (results depend on the thread count; one keeps an epoch near a
    # second on a shared 2-core CPU).
    args = [
        "--task",
        "toy-anatomy",
        "--epochs",
        "2",
        "--device",
        "cpu",
        "--seed",
        "0",
        "--threads",
        "1",
    ]
    # Uninterrupted, in its own home.
    monkeypatch.setenv("MEDBENCH_HOME", str(tmp_path / "home-a"))
    whole = run_cli(str(UNET), *args, "--results-dir", str(tmp_path / "a"))
    assert whole.exit_code == 0, whole.output
    expected = read_record(record_path(tmp_path / "a", "toy-anatomy", "unet", 0))

    # Killed (runner and child together) once the first epoch's checkpoint is written.
    home = tmp_path / "home-b"
    results = tmp_path / "b"
    target = record_path(results, "toy-anatomy", "unet", 0)
    proc = start(
        medbench_cmd("run", str(UNET), *args, "--quiet", "--results-dir", str(results)), home
    )
    runs = home / "runs" / "toy-anatomy"
    wait_for(
        lambda: any(runs.glob("*/seed0/work/checkpoint.pt")), proc, what="the first checkpoint"
    )
    job = next(runs.glob("*/seed0/job.json"))
    assert child_processes_of(job), "no child found while it trains: the check below proves nothing"
    os.kill(proc.pid, signal.SIGKILL)  # the runner alone; its sandboxed child dies with it
    proc.wait(timeout=30)
    deadline = time.monotonic() + 10
    while child_processes_of(job) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert child_processes_of(job) == [], "the child outlived its killed runner"
    assert not target.exists(), "the run finished before it was killed: the test proved nothing"
    assert hidden_leftovers(results) == [] and assert_every_record_reads(results) == []

    monkeypatch.setenv("MEDBENCH_HOME", str(home))
    resumed = run_cli(str(UNET), *args, "--resume", "--results-dir", str(results))
    assert resumed.exit_code == 0, resumed.output
    log = next(runs.glob("*/seed0/child.log")).read_text()
    assert "resuming toy-anatomy from" in log  # it continued, it did not start over
    got = read_record(target)
    assert got["metrics"] == expected["metrics"]
    assert got["per_case"] == expected["per_case"]
    assert got["task"]["data_sha256"] == expected["task"]["data_sha256"]


# --- SIGKILL while writing a record --------------------------------------------------------------

KILL_ON_RECORD_RENAME = """
    import os, signal, sys
    from pathlib import Path

    results = Path(sys.argv[1]).resolve()
    real = os.replace

    def replace(src, dst):
        dst = Path(dst).resolve()
        if dst.suffix == ".json" and results in dst.parents:
            os.kill(os.getpid(), signal.SIGKILL)  # the temporary is written, not renamed
        return real(src, dst)

    os.replace = replace
    from medbench.cli import app

    app(["run", sys.argv[2], "--task", "toy-lesions", "--quiet", "--force", "--results-dir", str(results)])
"""


@pytest.mark.parametrize("previous", [False, True], ids=["first-record", "over-a-record"])
def test_sigkill_while_writing_a_record(tmp_path, monkeypatch, previous):
    results = tmp_path / "results"
    target = record_path(results, "toy-lesions", "dummy", 0)
    if previous:
        assert (
            run_cli(str(DUMMY), "--task", "toy-lesions", "--results-dir", str(results)).exit_code
            == 0
        )
        old = target.read_bytes()
    proc = start(
        [*python_cmd(KILL_ON_RECORD_RENAME), str(results), str(DUMMY)],
        Path(os.environ["MEDBENCH_HOME"]),
    )
    assert proc.wait(timeout=120) == -signal.SIGKILL
    if previous:
        assert target.read_bytes() == old
    else:
        assert not target.exists()
    assert assert_every_record_reads(results) == ([target] if previous else [])

    again = run_cli(str(DUMMY), "--task", "toy-lesions", "--force", "--results-dir", str(results))
    assert again.exit_code == 0, again.output
    assert read_record(target)["status"] == "ok"
    assert hidden_leftovers(results) == []  # the killed writer's temporary was swept away


# --- two runs writing one results folder ---------------------------------------------------------


def test_two_runs_writing_one_results_folder_lose_nothing(fresh_home, tmp_path):
    # A fresh home: both also prepare toy-lesions at the same moment. Both start with seed 8.
    results = tmp_path / "results"
    seeds = {"a": [8, 0, 1, 2, 3], "b": [8, 4, 5, 6, 7]}
    procs = {
        k: start(
            medbench_cmd(
                "run",
                str(DUMMY),
                "--task",
                "toy-lesions",
                "--quiet",
                "--results-dir",
                str(results),
                *[f"--seed={s}" for s in v],
            ),
            fresh_home,
        )
        for k, v in seeds.items()
    }
    outputs = {k: p.communicate(timeout=300)[0].decode(errors="replace") for k, p in procs.items()}
    for k, p in procs.items():
        assert p.returncode == 0, outputs[k]
    records = assert_every_record_reads(results)
    assert [p.name for p in records] == [f"dummy.seed{s}.json" for s in range(9)]
    assert all(read_record(p)["status"] == "ok" for p in records)
    assert hidden_leftovers(results) == []


# --- a prepared cache changed on disk ------------------------------------------------------------


def test_a_changed_cache_file_is_refused_before_use_and_force_repairs_it(fresh_home, tmp_path):
    spec = get_task("toy-lesions")
    original = prepare(spec)
    bad = original.path / "train" / "images.npy"
    data = bytearray(bad.read_bytes())
    data[-1] ^= 0x01
    bad.write_bytes(bytes(data))

    result = run_cli(str(DUMMY), "--task", spec.name, "--results-dir", str(tmp_path))
    assert result.exit_code == 1
    lines = red_lines(result.stderr)
    assert len(lines) == 1, result.stderr
    assert "ChecksumError" in lines[0] and str(bad) in lines[0] and "--force" in lines[0]
    assert "Traceback" not in result.output
    assert list(fresh_home.rglob("job.json")) == []  # refused before a child was started
    assert assert_every_record_reads(tmp_path) == []

    repaired = cli.invoke(app, ["data", "prepare", "--quiet", "--force", spec.name])
    assert repaired.exit_code == 0, repaired.output
    load_prepared(spec).verify(full=True)
    result = run_cli(str(DUMMY), "--task", spec.name, "--results-dir", str(tmp_path))
    assert result.exit_code == 0, result.output
    rec = read_record(record_path(tmp_path, spec.name, "dummy", 0))
    assert rec["task"]["data_sha256"] == original.data_sha256


# --- a full disk ---------------------------------------------------------------------------------


def disk_full_after_half(monkeypatch) -> None:
    """Every Path.write_bytes writes half its data, then fails as a full disk does."""

    def write_bytes(self, data):
        with open(self, "wb") as f:
            f.write(data[: len(data) // 2])
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(Path, "write_bytes", write_bytes)


@pytest.mark.parametrize("previous", [False, True], ids=["first-record", "over-a-record"])
def test_a_full_disk_while_writing_a_record(tmp_path, monkeypatch, previous):
    path = record_path(tmp_path, "toy-lesions", "dummy", 0)
    record = {
        "schema": "medbench.result/1",
        "status": "ok",
        "task": {"name": "toy-lesions"},
        "submission": {"name": "dummy"},
        "seed": 0,
    }
    if previous:
        write_record(path, {**record, "seed": 0, "note": "previous"})
        old = path.read_bytes()
    disk_full_after_half(monkeypatch)
    with pytest.raises(
        RecordError,
        match=r"cannot write result record .*dummy\.seed0\.json: No space left on device",
    ):
        write_record(path, record)
    monkeypatch.undo()
    assert sorted(p.name for p in path.parent.iterdir()) == (
        ["dummy.seed0.json"] if previous else []
    )
    if previous:
        assert path.read_bytes() == old


def test_a_full_disk_while_the_child_writes_predictions(tmp_path, monkeypatch):
    from medbench import child
    from medbench.blinding import Blinding
    from medbench.run_folder import Layout, write_inputs
    from medbench.runner import _child_outcome
    from medbench.submission.api import TaskInfo
    from medbench.supervise import ChildExit

    prepared = prepare("toy-lesions")
    inputs, _ = write_inputs(
        prepared, tmp_path / "input", Blinding(b"k" * 32), Layout(sandboxed=False)
    )
    output = tmp_path / "output"
    output.mkdir()
    job = {
        "submission": str(DUMMY),
        "task": "toy-lesions",
        "task_info": TaskInfo.from_spec(prepared.spec).to_json(),
        "seed": 0,
        "device": "cpu",
        "train": {},
        "inputs": inputs,
        "workdir": str(tmp_path / "work"),
        "output": str(output),
    }

    def savez(file, *args, **kwargs):
        file.write(b"PK\x03\x04 half a zip")
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(np, "savez", savez)
    with pytest.raises(MedbenchError) as info:
        child.run_job(job)
    message = str(info.value)
    assert "No space left on device" in message and "predictions-test.npz" in message
    assert list(output.iterdir()) == []  # neither the file nor its temporary

    # Through the child's entry point, the runner reads the same reason.
    (tmp_path / "job.json").write_text(json.dumps(job))
    assert child.main([str(tmp_path / "job.json")]) == 3
    reason, _ = _child_outcome(ChildExit(3, "", "", None), output)
    assert "No space left on device" in reason and "predictions-test.npz" in reason
    assert not (output / "predictions-test.npz").exists()


# --- submissions that misbehave ------------------------------------------------------------------


def child_processes_of(job: Path) -> list[int]:
    """Processes still running the child of ``job``: the sandbox (bwrap names the job file it
    mounts; the child inside sees it as /medbench/job.json) or an unsandboxed child."""
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            cmdline = (proc / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if str(job).encode() in cmdline:
            found.append(int(proc.name))
    return found


def test_a_hanging_submission_is_killed_at_its_timeout(tmp_path):
    started = time.monotonic()
    result = run_cli(str(FIXTURES / "hangs"), "--timeout", "2", "--results-dir", str(tmp_path))
    assert result.exit_code == 1
    rec = read_record(record_path(tmp_path, "toy-lesions", "hangs", 0))
    assert rec["status"] == "failed" and "timed out after 2 s" in rec["error"]["message"]
    assert time.monotonic() - started < 60
    jobs = list(
        (Path(os.environ["MEDBENCH_HOME"]) / "runs" / "toy-lesions").glob("hangs-*/seed0/job.json")
    )
    assert len(jobs) == 1 and child_processes_of(jobs[0]) == []  # no orphan left sleeping


def test_a_flooding_submission_has_its_log_capped_and_the_next_run_is_unaffected(tmp_path):
    result = run_cli(
        str(FIXTURES / "flood"), str(DUMMY), "--task", "toy-lesions", "--results-dir", str(tmp_path)
    )
    assert result.exit_code == 0, result.output
    flood = read_record(record_path(tmp_path, "toy-lesions", "flood", 0))
    dummy = read_record(record_path(tmp_path, "toy-lesions", "dummy", 0))
    assert flood["status"] == "ok" and dummy["status"] == "ok"
    assert flood["metrics"]["auc"]["value"] == 0.5
    runs = Path(os.environ["MEDBENCH_HOME"]) / "runs" / "toy-lesions"
    log = next(runs.glob("flood-*/seed0/child.log"))
    assert LOG_LIMIT <= log.stat().st_size <= LOG_LIMIT + 2048  # 40 MB were written
    assert log.read_bytes().rstrip().endswith(b"more bytes of output not kept]")
    assert next(runs.glob("dummy-*/seed0/child.log")).stat().st_size < 10_000


def test_a_memory_hog_fails_with_its_reason_under_a_memory_limit(tmp_path):
    result = run_cli(
        str(FIXTURES / "memory-hog"), "--memory-limit", "1024", "--results-dir", str(tmp_path)
    )
    assert result.exit_code == 1
    rec = read_record(record_path(tmp_path, "toy-lesions", "memory-hog", 0))
    assert rec["status"] == "failed"
    assert "MemoryError" in rec["error"]["message"]
    assert rec["metrics"] == {}


def test_a_sandboxed_submission_cannot_write_into_the_cache(fresh_home, tmp_path):
    spec = get_task("toy-lesions")
    before = prepare(spec)
    result = run_cli(str(FIXTURES / "writes-cache"), "--results-dir", str(tmp_path))
    assert result.exit_code == 1
    rec = read_record(record_path(tmp_path, spec.name, "writes-cache", 0))
    assert rec["status"] == "failed" and rec["isolation"]["mode"] == "sandbox"
    # The mount is read-only: the write itself fails, the cache never changes.
    assert "Read-only file system" in rec["error"]["message"]
    load_prepared(spec).verify(full=True)
    assert load_prepared(spec).manifest["arrays"] == before.manifest["arrays"]


def test_an_unsandboxed_submission_writing_into_the_cache_fails_and_it_is_rebuilt(
    fresh_home, tmp_path
):
    spec = get_task("toy-lesions")
    before = prepare(spec)
    result = run_cli(
        str(FIXTURES / "writes-cache"), "--isolation", "none", "--results-dir", str(tmp_path)
    )
    assert result.exit_code == 1
    rec = read_record(record_path(tmp_path, spec.name, "writes-cache", 0))
    assert rec["status"] == "failed" and rec["isolation"]["mode"] == "none"
    message = rec["error"]["message"]
    assert "changed a prepared data cache" in message
    assert str(before.path / "train" / "images.npy") in message
    after = load_prepared(spec)
    after.verify(full=True)
    assert after.manifest["arrays"] == before.manifest["arrays"]

    ok = run_cli(str(DUMMY), "--task", spec.name, "--results-dir", str(tmp_path))
    assert ok.exit_code == 0, ok.output
    assert (
        read_record(record_path(tmp_path, spec.name, "dummy", 0))["task"]["data_sha256"]
        == before.data_sha256
    )


# --- a hand-edited record ------------------------------------------------------------------------


def test_the_leaderboard_refuses_a_hand_edited_record_naming_it(tmp_path):
    results = tmp_path / "results"
    assert (
        run_cli(str(DUMMY), "--task", "toy-lesions", "--results-dir", str(results)).exit_code == 0
    )
    path = record_path(results, "toy-lesions", "dummy", 0)
    published = cli.invoke(
        app, ["leaderboard", "--results", str(results), "--out", str(tmp_path / "a")]
    )
    assert published.exit_code == 0, published.output

    data = json.loads(path.read_text())
    data["metrics"]["auc"]["value"] = 0.99
    path.write_text(json.dumps(data, indent=2))
    refused = cli.invoke(
        app, ["leaderboard", "--results", str(results), "--out", str(tmp_path / "b")]
    )
    assert refused.exit_code == 1
    lines = red_lines(refused.stderr)
    assert len(lines) == 1 and "RecordError" in lines[0]
    assert str(path) in lines[0] and "record_sha256" in lines[0]
    assert not (tmp_path / "b").exists() or not any((tmp_path / "b").rglob("*.md"))
    with pytest.raises(RecordError, match="does not match its record_sha256"):
        read_record(path)
