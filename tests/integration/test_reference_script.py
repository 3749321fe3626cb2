"""``scripts/reference.sh``: which runs each mode asks for, with a stand-in ``medbench`` command
(``MEDBENCH``) that logs its arguments instead of training."""

from __future__ import annotations

import json
import os
import shlex
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "scripts" / "reference.sh"


def _reference(tmp_path: Path, mode: str | None, *, available: list[str], fail: str = "") -> tuple:
    log = tmp_path / "calls.jsonl"
    fake = tmp_path / "medbench"
    tasks = json.dumps([{"name": t, "data": "available"} for t in available])
    fake.write_text(
        "#!/usr/bin/env python3\n"
        "import json, sys\n"
        f"if sys.argv[1:3] == ['tasks', '--format']: print({tasks!r}); sys.exit(0)\n"
        f"open({str(log)!r}, 'a').write(json.dumps(sys.argv[1:]) + '\\n')\n"
        f"sys.exit(1 if {fail!r} and {fail!r} in sys.argv else 0)\n"
    )
    fake.chmod(0o755)
    env = {**os.environ, "MEDBENCH": str(fake), "OUT": str(tmp_path / "out")}
    args = ["bash", str(SCRIPT)] + ([mode] if mode else [])
    proc = subprocess.run(args, env=env, capture_output=True, text=True, timeout=60)
    calls = [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []
    return proc, calls


def _runs(calls: list[list[str]]) -> dict[tuple[str, str], list[str]]:
    """(entry, task) -> the rest of its `run` arguments; a variant's entry is NAME+VARIANT."""
    out = {}
    for call in calls:
        if call[0] == "run":
            task = call[call.index("--task") + 1]
            entry = Path(call[1]).name
            if "--variant" in call:
                entry += "+" + call[call.index("--variant") + 1]
            out[(entry, task)] = call[2:]
    return out


def _value(args: list[str], flag: str) -> str:
    return args[args.index(flag) + 1]


def _sets(args: list[str]) -> list[str]:
    return [args[i + 1] for i, a in enumerate(args) if a == "--set"]


def test_gpu_mode_runs_torch_entries_on_cuda_and_the_rest_on_the_cpu(tmp_path):
    proc, calls = _reference(tmp_path, None, available=["toy-anatomy", "jsrt-anatomy"])
    assert proc.returncode == 0, proc.stderr
    runs = _runs(calls)
    table = {
        (f"novikov{v}", "jsrt-anatomy")
        for v in ("", "+dice", "+ce", "+weighted-ce", "+all-dropout", "+all-conv", "+inverted")
        + ("+all-dropout-dice", "+all-conv-dice", "+inverted-dice")
    }
    assert set(runs) == {
        ("dummy", "toy-anatomy"),
        ("dummy", "jsrt-anatomy"),
        ("unet", "toy-anatomy"),
        ("unet", "jsrt-anatomy"),
        *table,
        ("novikov", "toy-anatomy"),
        *((s, t) for s in ("fcn", "deeplabv3plus") for t in ("toy-anatomy", "jsrt-anatomy")),
    }  # tasks without data are skipped, and lbp-svm enters neither task
    assert _value(runs[("unet", "jsrt-anatomy")], "--device") == "cuda"
    assert _sets(runs[("unet", "jsrt-anatomy")]) == ["epochs=150", "checkpoint_every=25"]
    assert _value(runs[("dummy", "jsrt-anatomy")], "--device") == "cpu"
    assert calls[-1][0] == "leaderboard"  # after every run
    assert "skip cnn/messidor2-referable: no data" in proc.stdout


def test_cpu_mode_uses_the_cpu_overrides(tmp_path):
    proc, calls = _reference(tmp_path, "--cpu", available=["jsrt-anatomy", "messidor2-referable"])
    assert proc.returncode == 0, proc.stderr
    runs = _runs(calls)
    assert _value(runs[("unet", "jsrt-anatomy")], "--device") == "cpu"
    assert _sets(runs[("unet", "jsrt-anatomy")]) == ["base_width=16", "epochs=60"]
    assert (
        _sets(runs[("cnn", "messidor2-referable")]) == []
    )  # its submission.toml is sized for a CPU
    assert _sets(runs[("lbp-svm", "messidor2-referable")]) == []
    results = _value(runs[("unet", "jsrt-anatomy")], "--results-dir")
    assert results == str(tmp_path / "out" / "results")


@pytest.mark.parametrize("mode", [None, "--cpu"])
def test_a_failed_run_fails_the_script_after_the_others_ran(tmp_path, mode):
    proc, calls = _reference(
        tmp_path, mode, available=["toy-anatomy", "toy-lesions"], fail="submissions/dummy"
    )
    assert proc.returncode == 1
    ran = {k[0] for k in _runs(calls)}
    assert ran == {
        "dummy",
        "lbp-svm",
        "deep-features",
        "unet",
        "cnn",
        "novikov",
        "fcn",
        "deeplabv3plus",
    }  # fmt: skip (ciresan enters ISBI only)
    assert calls[-1][0] == "leaderboard"


def test_the_novikov_table_runs_every_variant_and_loss(tmp_path):
    proc, calls = _reference(
        tmp_path, "--cpu", available=["jsrt-anatomy", "dsb2018-nuclei", "isbi2012-membranes"]
    )
    assert proc.returncode == 0, proc.stderr
    runs = _runs(calls)
    assert _sets(runs[("novikov", "jsrt-anatomy")]) == []  # its submission.toml: the CPU table
    for loss in ("dice", "ce", "weighted-ce"):
        assert _sets(runs[(f"novikov+{loss}", "jsrt-anatomy")]) == [f"loss={loss}"]
    for variant in ("all-dropout", "all-conv"):
        assert _sets(runs[(f"novikov+{variant}", "jsrt-anatomy")]) == [f"variant={variant}"]
    assert _sets(runs[("novikov+inverted", "jsrt-anatomy")]) == ["base_width=1", "variant=inverted"]
    assert _sets(runs[("novikov+inverted-dice", "jsrt-anatomy")]) == [
        "base_width=1", "variant=inverted", "loss=dice"
    ]  # fmt: skip
    assert _sets(runs[("novikov+all-conv-dice", "jsrt-anatomy")]) == [
        "variant=all-conv",
        "loss=dice",
    ]
    assert ("fcn", "jsrt-anatomy") in runs and ("deeplabv3plus", "jsrt-anatomy") in runs
    assert ("fcn", "dsb2018-nuclei") not in runs  # an hour of CPU each: not in --cpu
    assert ("ciresan", "isbi2012-membranes") in runs and ("fcn", "isbi2012-membranes") in runs
    (tmp_path / "gpu").mkdir()
    _, gpu_calls = _reference(tmp_path / "gpu", None, available=["jsrt-anatomy"])
    gpu = _runs(gpu_calls)
    assert _value(gpu[("novikov+inverted", "jsrt-anatomy")], "--device") == "cuda"
    assert "base_width=32" in _sets(gpu[("novikov+dice", "jsrt-anatomy")])


def test_quick_mode_trains_one_epoch(tmp_path):
    proc, calls = _reference(tmp_path, "--quick", available=["toy-lesions"])
    assert proc.returncode == 0, proc.stderr
    for args in _runs(calls).values():
        assert _sets(args) == ["epochs=1"], shlex.join(args)


def test_the_transfer_variants_of_a_binary_task(tmp_path):
    proc, calls = _reference(tmp_path, "--cpu", available=["breastmnist"])
    assert proc.returncode == 0, proc.stderr
    runs = _runs(calls)
    assert _sets(runs[("cnn+lakhani", "breastmnist")]) == ["aug=lakhani"]
    scratch = ["epochs=30", "backbone=resnet18", "pretrained=false"]
    assert _sets(runs[("cnn+resnet18", "breastmnist")]) == [*scratch, "aug=base"]
    assert _sets(runs[("cnn+resnet18-lakhani", "breastmnist")]) == [*scratch, "aug=lakhani"]
    assert ("cnn", "breastmnist") in runs and ("deep-features", "breastmnist") in runs


def test_the_larger_transfer_tasks_train_from_scratch_shorter_on_the_cpu(tmp_path):
    (tmp_path / "cpu").mkdir()
    (tmp_path / "gpu").mkdir()
    _, cpu = _reference(tmp_path / "cpu", "--cpu", available=["pneumoniamnist"])
    _, gpu = _reference(tmp_path / "gpu", None, available=["pneumoniamnist"])
    cpu, gpu = _runs(cpu), _runs(gpu)
    assert _sets(cpu[("cnn+resnet18", "pneumoniamnist")])[0] == "epochs=5"
    assert ("cnn+resnet18-lakhani", "pneumoniamnist") not in cpu
    assert _sets(gpu[("cnn+resnet18", "pneumoniamnist")])[0] == "epochs=30"
    assert ("cnn+resnet18-lakhani", "pneumoniamnist") in gpu
