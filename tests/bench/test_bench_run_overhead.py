"""The fixed cost of a run: ``medbench run submissions/dummy --force`` against a plain script.

The plain script does the same work without the harness: it loads the prepared arrays, fits
and predicts with the same ``Dummy`` class, checks the predictions and scores them with
``medbench.scoring.score`` (the same scorer). The two commands run alternately as fresh
processes, so each pair sees the same machine load; the figure is the median over pairs of
(harness seconds) / (plain seconds). Both must give the same primary metric value (checked on
every run, also in CI with benchmarks disabled, where toy-lesions runs one pair).

With ``--benchmark-enable`` each task runs 5 pairs, the ratio is printed and stored in
``extra_info`` and checked against issue 14's targets: 1.5x on the toy task, 2x on jsrt-anatomy
and dsb2018-nuclei, and a ready ``data prepare`` under 2x ``medbench --version``.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

import pytest

from medbench.data.prepare import prepare

ROOT = Path(__file__).resolve().parents[2]
DUMMY = ROOT / "submissions" / "dummy"
TARGET = {"toy-lesions": 1.5, "jsrt-anatomy": 2.0, "dsb2018-nuclei": 2.0}
PREPARE_TARGET = 2.0

PLAIN = r'''
import json, logging, sys, tempfile
from pathlib import Path
import importlib.util

from medbench.data.prepare import load_prepared
from medbench.predictions import to_npz_dict, validate
from medbench.scoring import score
from medbench.submission.api import Dataset, RunContext, TaskInfo
from medbench.tasks import get_task

spec = get_task(sys.argv[1])
module = importlib.util.spec_from_file_location("model", sys.argv[2])
model = importlib.util.module_from_spec(module)
module.loader.exec_module(model)
prepared = load_prepared(spec)
train, val, test = (prepared.split(s) for s in ("train", "val", "test"))
task = TaskInfo.from_spec(spec)
sub = model.Dummy()
with tempfile.TemporaryDirectory() as tmp:
    ctx = RunContext(device="cpu", seed=0, workdir=Path(tmp), logger=logging.getLogger("plain"), train={})
    sub.fit(task, Dataset(train.images, train.case_ids, train.targets),
            Dataset(val.images, val.case_ids, val.targets), ctx)
    pred = sub.predict(task, Dataset(test.images, test.case_ids), ctx)
    val_pred = sub.predict(task, Dataset(val.images, val.case_ids), ctx)
shapes = [im.shape[:2] for im in test.images] if spec.input.size is None else None
pred = validate(spec, to_npz_dict(test.case_ids, pred), test.case_ids, shapes=shapes)
extra = {}
if spec.kind == "binary":
    extra["val"] = (val.targets, validate(spec, to_npz_dict(val.case_ids, val_pred), val.case_ids))
report = score(spec, pred, test.targets, test.cases, **extra)
print(json.dumps({"value": report.value(spec.primary_metric)}))
'''


def _env(home: Path) -> dict[str, str]:
    return {**os.environ, "MEDBENCH_HOME": str(home)}


def _harness(task: str, home: Path, results: Path) -> tuple[float, float]:
    started = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-m", "medbench", "run", str(DUMMY), "--task", task, "--force",
         "--quiet", "--results-dir", str(results)],
        env=_env(home), capture_output=True, text=True, check=False,
    )  # fmt: skip
    seconds = time.perf_counter() - started
    assert done.returncode == 0, done.stderr[-2000:]
    record = json.loads((results / task / "dummy.seed0.json").read_text())
    return seconds, record["metrics"][record["primary_metric"]]["value"]


def _plain(task: str, home: Path, script: Path) -> tuple[float, float]:
    started = time.perf_counter()
    done = subprocess.run(
        [sys.executable, str(script), task, str(DUMMY / "model.py")],
        env=_env(home), capture_output=True, text=True, check=False,
    )  # fmt: skip
    seconds = time.perf_counter() - started
    assert done.returncode == 0, done.stderr[-2000:]
    return seconds, json.loads(done.stdout.strip().splitlines()[-1])["value"]


@pytest.mark.parametrize("task", ["toy-lesions", "jsrt-anatomy", "dsb2018-nuclei"])
def test_run_fixed_cost_against_a_plain_script(benchmark, request, private_home, tmp_path, task):
    if task != "toy-lesions":
        if not benchmark.enabled:
            pytest.skip("real-data pairs run with --benchmark-enable")
        request.getfixturevalue("mirror")
    prepare(task)
    script = tmp_path / "plain.py"
    script.write_text(PLAIN)
    pairs = 5 if benchmark.enabled else 1
    ratios, harness_s, plain_s = [], [], []

    def one_round() -> None:
        for _ in range(pairs):
            h, h_value = _harness(task, private_home, tmp_path / "results")
            p, p_value = _plain(task, private_home, script)
            assert h_value == pytest.approx(p_value, abs=1e-12), (h_value, p_value)
            ratios.append(h / p)
            harness_s.append(h)
            plain_s.append(p)

    benchmark.pedantic(one_round, rounds=1, warmup_rounds=0)
    ratio = statistics.median(ratios)
    benchmark.extra_info.update(
        harness_s=round(statistics.median(harness_s), 3),
        plain_s=round(statistics.median(plain_s), 3),
        ratio=round(ratio, 3),
    )
    print(
        f"{task}: medbench run {statistics.median(harness_s):.2f} s, plain script "
        f"{statistics.median(plain_s):.2f} s: {ratio:.2f}x (median of {len(ratios)} pairs)"
    )
    if benchmark.enabled:
        assert ratio <= TARGET[task], f"{task}: a run costs {ratio:.2f}x the plain script"


def test_prepare_of_a_ready_task_against_version(benchmark, private_home):
    """``medbench data prepare toy-lesions`` on a ready task against ``medbench --version``
    (issue 14's target: under 2x), interleaved fresh processes, median ratio."""
    env = _env(private_home)
    prepare_cmd = [sys.executable, "-m", "medbench", "data", "prepare", "--quiet", "toy-lesions"]
    version_cmd = [sys.executable, "-m", "medbench", "--version"]
    first = subprocess.run(prepare_cmd, env=env, capture_output=True, text=True, check=True)
    ratios = []

    def timed(cmd) -> tuple[float, str]:
        started = time.perf_counter()
        done = subprocess.run(cmd, env=env, capture_output=True, text=True, check=True)
        return time.perf_counter() - started, done.stdout

    def one_round() -> None:
        for _ in range(5 if benchmark.enabled else 1):
            p, out = timed(prepare_cmd)
            v, _ = timed(version_cmd)
            assert out == first.stdout  # the stamp's answer is the full path's answer
            ratios.append(p / v)

    benchmark.pedantic(one_round, rounds=1, warmup_rounds=0)
    ratio = statistics.median(ratios)
    benchmark.extra_info["ratio"] = round(ratio, 3)
    print(f"data prepare (ready) / --version: {ratio:.2f}x (median of {len(ratios)} pairs)")
    if benchmark.enabled:
        assert ratio <= PREPARE_TARGET, f"a ready data prepare costs {ratio:.2f}x --version"
