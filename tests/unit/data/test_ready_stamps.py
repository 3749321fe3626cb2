"""Ready stamps: a second ``medbench data prepare T`` answers from the stamp, without the stack,
and only while nothing that decides readiness has changed."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from typer.testing import CliRunner

from medbench.cli import app
from medbench.data.prepare import answers_dir, prepare
from medbench.data.ready import ready_lines, record_ready

PROBE = """
import sys
from medbench.cli import app
try:
    app(["data", "prepare", "toy-lesions"])
except SystemExit:
    pass
print("IMPORTED", *[m for m in ("medbench.tasks", "pandas", "scipy") if m in sys.modules])
"""


def test_a_second_prepare_answers_from_the_stamp_without_importing_the_catalogue(fresh_home):
    first = CliRunner().invoke(app, ["data", "prepare", "--quiet", "toy-lesions"])
    assert first.exit_code == 0, first.output
    assert (fresh_home / "ready" / "toy-lesions.json").is_file()
    env = {**os.environ, "MEDBENCH_HOME": str(fresh_home)}
    probe = subprocess.run(
        [sys.executable, "-c", PROBE], env=env, capture_output=True, text=True, check=True
    )
    lines = probe.stdout.strip().splitlines()
    assert lines[-1] == "IMPORTED"  # none of the catalogue, pandas, scipy
    assert lines[0] == first.output.strip().splitlines()[-1]  # the same "ready ..." line


def _stamped(home):
    prepared = prepare("toy-lesions")
    record_ready("toy-lesions", prepared.path / "manifest.json", "ready toy-lesions")
    assert ready_lines(["toy-lesions"]) == ["ready toy-lesions"]
    return prepared


def test_a_changed_or_missing_answer_file_voids_the_stamp(fresh_home):
    prepared = _stamped(fresh_home)
    labels = answers_dir(prepared.spec) / "targets.npy"
    labels.write_bytes(labels.read_bytes())  # same bytes, rewritten: its change time moved
    assert ready_lines(["toy-lesions"]) is None
    _stamped(fresh_home)
    labels.unlink()
    assert ready_lines(["toy-lesions"]) is None


def test_an_edited_manifest_or_a_new_key_voids_the_stamp(fresh_home):
    prepared = _stamped(fresh_home)
    manifest = prepared.path / "manifest.json"
    body = json.loads(manifest.read_text())
    manifest.write_text(json.dumps({**body, "seconds": 1.0}))
    assert ready_lines(["toy-lesions"]) is None
    prepare("toy-lesions", force=True)
    _stamped(fresh_home)
    (fresh_home / "keys" / "secret").unlink()  # caches sealed under the old key are stale
    assert ready_lines(["toy-lesions"]) is None


def test_no_stamp_or_one_task_without_one_takes_the_full_path(fresh_home):
    assert ready_lines(["toy-lesions"]) is None
    _stamped(fresh_home)
    assert ready_lines(["toy-lesions", "toy-anatomy"]) is None
    (fresh_home / "ready" / "toy-lesions.json").write_text("{ not json")
    assert ready_lines(["toy-lesions"]) is None
