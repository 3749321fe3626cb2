"""``medbench.exports``: records of every task kind in the four formats, against the formats'
own example files (``tests/fixtures/exports``) and against the records' numbers.

The records are synthetic but scored by :func:`medbench.scoring.score` and sealed, like a run's.
"""

from __future__ import annotations

import csv
import io
import json
import math
import shutil
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from test_leaderboard import GPU, _cases, _record  # the record shape the runner writes

from medbench import metric_specs
from medbench.errors import ExportError, RecordError, UnknownNameError
from medbench.exports import (
    FORMATS,
    cases_csv,
    export,
    gc,
    load_source,
    model_index,
    render_exports,
)
from medbench.leaderboard.export import rounded
from medbench.results import read_record, seal, write_record
from medbench.scoring import score
from medbench.tasks import get_task

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "exports"
KINDS = ("binary", "multiclass", "multilabel-segmentation", "instance-segmentation")
TASKS = {  # kind -> a task of that kind
    "binary": "pneumoniamnist",  # has accuracy@0.5: a dot in a metric name
    "multiclass": "retinamnist",
    "multilabel-segmentation": "toy-anatomy",
    "instance-segmentation": "dsb2018-nuclei",
}
SEGMENTATION = ("multilabel-segmentation", "instance-segmentation")


# --- records -------------------------------------------------------------------------------------


def _classification(spec, rng):
    test, val = _cases(spec, "test"), _cases(spec, "val")
    k = len(spec.classes)
    y, yv = rng.integers(0, k, len(test)), rng.integers(0, k, len(val))
    if spec.kind == "binary":
        s = 1 / (1 + np.exp(-(2 * y - 1 + rng.normal(0, 1, y.size))))
        sv = 1 / (1 + np.exp(-(2 * yv - 1 + rng.normal(0, 1, yv.size))))
        return score(spec, s, y, test, val=(yv, sv), n_resamples=20), None
    logits = rng.normal(0, 1, (len(test), k)) + 2 * np.eye(k)[y]
    p = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    return score(spec, p, y, test, n_resamples=20), None


def _masks(spec, rng):
    """Random boxes per class; case 0 has none of the first class, in truth or prediction, so
    its Dice there is undefined (NaN)."""
    test = _cases(spec, "test")
    n, c = len(test), len(spec.classes)
    truth = np.zeros((n, c, 16, 16), bool)
    for i in range(n):
        for j in range(c):
            r, q = rng.integers(0, 8, 2)
            truth[i, j, r : r + rng.integers(3, 8), q : q + rng.integers(3, 8)] = True
    pred = truth ^ (rng.random(truth.shape) < 0.08)
    truth[0, 0] = pred[0, 0] = False
    return score(spec, pred, truth, test, n_resamples=20), (truth, pred)


def _instances(spec, rng):
    """Label maps with two objects each; case 0 is empty in truth and prediction."""
    test = _cases(spec, "test")
    truth, pred = [], []
    for i in range(len(test)):
        t = np.zeros((16, 16), np.int32)
        t[1:6, 1:6], t[9:14, 8:15] = 1, 2
        p = np.roll(t, rng.integers(-2, 3), axis=int(rng.integers(0, 2)))
        if i == 0:
            t[:], p[:] = 0, 0
        truth.append(t)
        pred.append(p)
    return score(spec, pred, truth, test, n_resamples=20), (truth, pred)


MAKERS = {
    "binary": _classification,
    "multiclass": _classification,
    "multilabel-segmentation": _masks,
    "instance-segmentation": _instances,
}


@pytest.fixture(scope="module")
def records(tmp_path_factory):
    """kind -> (path of a sealed record, the masks it was scored on or None)."""
    folder = tmp_path_factory.mktemp("records")
    out = {}
    for kind, task in TASKS.items():
        spec = get_task(task)
        report, masks = MAKERS[kind](spec, np.random.default_rng(len(task)))
        rec = _record(
            spec, "net+v2", "a model", "v1", 3, GPU, 1.0, "2026-12-01T00:00:00Z", report=report
        )
        path = folder / task / "net+v2.seed3.json"
        write_record(path, rec)
        out[kind] = (path, masks)
    return out


def record_of(records, kind):
    return read_record(records[kind][0])


def rendered(records, kind, fmt) -> str:
    files = render_exports([records[kind][0]], fmt)
    assert list(files) == [f"{TASKS[kind]}.net+v2.seed3{FORMATS.get(fmt).suffix}"]
    return next(iter(files.values()))


def same(a, b) -> bool:
    """Exported value ``a`` is the record's ``b`` rounded (None: undefined, NaN alike)."""
    if b is None or (isinstance(b, float) and math.isnan(b)):
        return a is None
    return a == (rounded(b) if isinstance(b, float) else b)


# --- every format --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "kind,fmt", [(k, f) for f in FORMATS.names() for k in KINDS if k in FORMATS.get(f).kinds]
)
def test_the_same_record_gives_the_same_bytes_wherever_it_lies(records, kind, fmt, tmp_path):
    elsewhere = tmp_path / "copy" / records[kind][0].name
    elsewhere.parent.mkdir()
    shutil.copy(records[kind][0], elsewhere)
    first = rendered(records, kind, fmt)
    assert rendered(records, kind, fmt) == first
    assert next(iter(render_exports([elsewhere], fmt).values())) == first
    assert first.endswith("\n") and "NaN" not in first


def test_the_formats_are_the_four_the_cli_names():
    from medbench.cli import export_command

    assert FORMATS.names() == sorted(["gc", "nnunet", "model-index", "csv"])
    assert "gc, nnunet, model-index or csv" in str(export_command.__annotations__["format"])


# --- gc ------------------------------------------------------------------------------------------


def get_jsonpath(obj, path):
    """Grand Challenge's lookup of a Score jsonpath: split at dots, index step by step
    (comic/grand-challenge.org, evaluation/templatetags/evaluation_extras.py)."""
    for key in path.split("."):
        obj = obj[key]
    return obj


def _index_keys(table):
    return {tuple(column) for column in table.values()}


@pytest.mark.parametrize("kind", KINDS)
def test_gc_has_the_structure_of_grand_challenges_example(records, kind):
    example = json.loads((FIXTURES / "grand-challenge-metrics.json").read_text())
    ours = json.loads(rendered(records, kind, "gc"))
    assert set(ours) == set(example) == {"case", "aggregates"}
    n = len(record_of(records, kind)["per_case"]["case_id"])
    # case: column -> "0".."n-1" -> a scalar, every column over the same cases
    assert _index_keys(example["case"]) == {tuple(str(i) for i in range(10))}
    assert _index_keys(ours["case"]) == {tuple(str(i) for i in range(n))}
    for table in (example["case"], ours["case"]):
        leaves = [v for column in table.values() for v in column.values()]
        assert all(v is None or isinstance(v, (int, float, str)) for v in leaves)
    # aggregates: name -> statistic -> a number
    for table in (example["aggregates"], ours["aggregates"]):
        assert all(isinstance(stats, dict) and stats for stats in table.values())
        leaves = [v for stats in table.values() for v in stats.values()]
        assert all(v is None or isinstance(v, (int, float)) for v in leaves)


@pytest.mark.parametrize("kind", KINDS)
def test_gc_values_are_the_records(records, kind):
    record = record_of(records, kind)
    ours = json.loads(rendered(records, kind, "gc"))
    columns = list(record["per_case"])
    assert len(ours["case"]) == len(columns)
    for name in columns:
        exported = ours["case"][gc.key(name)]
        assert len(exported) == record["task"]["n_test"]
        assert all(same(exported[str(i)], v) for i, v in enumerate(record["per_case"][name]))
    for name, metric in record["metrics"].items():
        # every aggregate is reachable by the jsonpath a phase would be configured with
        path = f"aggregates.{gc.key(name)}"
        for stat in ("value", "ci_low", "ci_high"):
            assert same(get_jsonpath(ours, f"{path}.{stat}"), metric[stat])
        assert get_jsonpath(ours, f"{path}.n") == metric["n"]
    for cls, metrics in record["per_class"].items():
        for name, metric in metrics.items():
            assert same(ours["aggregates"][gc.key(f"{name}_{cls}")]["value"], metric["value"])


def test_gc_keys_have_no_dots_for_grand_challenges_jsonpath(records):
    ours = json.loads(rendered(records, "binary", "gc"))
    assert "accuracy@0.5" in record_of(records, "binary")["metrics"]
    assert "accuracy@0_5" in ours["aggregates"] and "correct@0_5" in ours["case"]
    assert not [k for k in (*ours["case"], *ours["aggregates"]) if "." in k]


# --- nnunet --------------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", SEGMENTATION)
def test_nnunet_has_the_structure_of_nnunets_summary(records, kind):
    example = json.loads((FIXTURES / "nnunet-summary.json").read_text())
    text = rendered(records, kind, "nnunet")
    ours = json.loads(text)
    spec = get_task(TASKS[kind])
    labels = [str(j) for j in range(1, len(spec.classes) + 1)]
    assert set(ours) == set(example) == {"foreground_mean", "mean", "metric_per_case"}
    assert list(ours) == sorted(ours)  # sorted keys, as save_summary_json writes them
    assert isinstance(ours["metric_per_case"], list)
    assert len(ours["metric_per_case"]) == record_of(records, kind)["task"]["n_test"]
    for case in ours["metric_per_case"]:
        assert set(case) == set(example["metric_per_case"][0])
        assert list(case["metrics"]) == labels
        assert isinstance(case["prediction_file"], str) and isinstance(case["reference_file"], str)
        for metrics in case["metrics"].values():
            # a subset of nnU-Net's metrics: the pixel counts are not in a record
            assert (
                set(metrics) == {"Dice", "IoU"} < set(example["metric_per_case"][0]["metrics"]["1"])
            )
            assert all(v is None or isinstance(v, float) for v in metrics.values())
    assert list(ours["mean"]) == labels
    assert set(ours["foreground_mean"]) == {"Dice", "IoU"} < set(example["foreground_mean"])
    # nnU-Net's load_summary_json turns each key back into an integer label
    assert [int(k) for k in ours["mean"]] == list(range(1, len(spec.classes) + 1))


def test_nnunet_values_are_the_records_per_class_scores(records):
    record = record_of(records, "multilabel-segmentation")
    ours = json.loads(rendered(records, "multilabel-segmentation", "nnunet"))
    spec = get_task(TASKS["multilabel-segmentation"])
    for label, cls in zip(("1", "2", "3"), spec.classes, strict=True):
        for metric, column in (("Dice", f"dice_{cls}"), ("IoU", f"iou_{cls}")):
            values = record["per_case"][column]
            assert all(
                same(case["metrics"][label][metric], v)
                for case, v in zip(ours["metric_per_case"], values, strict=True)
            )
        # the mean over cases, NaN left out, is the record's per-class value
        assert same(ours["mean"][label]["Dice"], record["per_class"][cls]["dice"]["value"])
        assert same(ours["mean"][label]["IoU"], record["per_class"][cls]["iou"]["value"])
    assert ours["metric_per_case"][0]["metrics"]["1"] == {"Dice": None, "IoU": None}  # empty
    assert [c["reference_file"] for c in ours["metric_per_case"]] == record["per_case"]["case_id"]
    class_means = [record["per_class"][c]["dice"]["value"] for c in spec.classes]
    assert ours["foreground_mean"]["Dice"] == rounded(float(np.mean(class_means)))


def test_nnunet_of_an_instance_task_is_the_foreground_dice_and_its_iou(records):
    record = record_of(records, "instance-segmentation")
    ours = json.loads(rendered(records, "instance-segmentation", "nnunet"))
    truth, pred = records["instance-segmentation"][1]
    for case, dice, t, p in zip(
        ours["metric_per_case"], record["per_case"]["foreground_dice"], truth, pred, strict=True
    ):
        assert same(case["metrics"]["1"]["Dice"], dice)
        union = ((t > 0) | (p > 0)).sum()  # IoU computed from the masks, not from the Dice
        iou = ((t > 0) & (p > 0)).sum() / union if union else None
        assert case["metrics"]["1"]["IoU"] == (
            None if iou is None else pytest.approx(iou, abs=1e-6)
        )
    assert ours["metric_per_case"][0]["metrics"]["1"]["Dice"] is None


@pytest.mark.parametrize("kind", ["binary", "multiclass"])
def test_nnunet_refuses_a_classification_record_and_writes_nothing(records, kind, tmp_path):
    with pytest.raises(
        ExportError, match=f"--format nnunet takes records of .*segmentation.*a {kind} task"
    ):
        export([records["instance-segmentation"][0], records[kind][0]], "nnunet", tmp_path / "out")
    assert not (tmp_path / "out").exists()


# --- model-index ---------------------------------------------------------------------------------


def _keys(mapping):
    return set(mapping)


@pytest.mark.parametrize("kind", KINDS)
def test_model_index_has_the_structure_of_the_hub_spec(records, kind):
    yaml = pytest.importorskip("yaml")
    example = yaml.safe_load((FIXTURES / "hf-model-index.yaml").read_text())
    ours = yaml.safe_load(rendered(records, kind, "model-index"))
    assert _keys(ours) == _keys(example) == {"model-index"}
    (model,), (spec_model,) = ours["model-index"], example["model-index"]
    assert _keys(model) == _keys(spec_model) == {"name", "results"}
    (result,), (spec_result,) = model["results"], spec_model["results"]
    assert _keys(result) == _keys(spec_result)
    assert _keys(result["task"]) == _keys(spec_result["task"])
    assert _keys(result["dataset"]) == _keys(spec_result["dataset"])
    assert result["metrics"]
    for metric in result["metrics"]:
        assert _keys(metric) == _keys(spec_result["metrics"][0])
        assert isinstance(metric["value"], float) and isinstance(metric["type"], str)
        assert metric["verified"] is False


@pytest.mark.parametrize("kind", KINDS)
def test_model_index_values_are_the_records(records, kind):
    yaml = pytest.importorskip("yaml")
    record = record_of(records, kind)
    (result,) = yaml.safe_load(rendered(records, kind, "model-index"))["model-index"][0]["results"]
    assert result["dataset"]["revision"] == record["task"]["split_sha256"]
    assert result["dataset"]["split"] == "test"
    assert result["dataset"]["type"] == record["task"]["name"]
    listed = {m["type"]: m for m in result["metrics"]}
    assert set(listed) == {n for n, m in record["metrics"].items() if m["value"] is not None}
    for name, metric in listed.items():
        assert same(metric["value"], record["metrics"][name]["value"])
        if record["metrics"][name]["ci_low"] is not None:
            low = rounded(record["metrics"][name]["ci_low"])
            assert f"95 % CI [{model_index.number(low)}," in metric["name"]


def test_model_index_parses_with_huggingface_hub(records):
    hub = pytest.importorskip("huggingface_hub")
    record = record_of(records, "binary")
    card = hub.ModelCard("---\n" + rendered(records, "binary", "model-index") + "---\n\n# net\n")
    results = card.data.eval_results
    assert card.data.model_name == record["submission"]["name"]
    assert {r.metric_type for r in results} == set(record["metrics"])
    for r in results:
        assert r.metric_value == rounded(record["metrics"][r.metric_type]["value"])
        assert (r.task_type, r.dataset_type) == ("image-classification", record["task"]["name"])
        assert r.dataset_revision == record["task"]["split_sha256"]
        assert r.verified is False


def test_model_index_leaves_an_undefined_metric_out_and_says_so(records, tmp_path):
    yaml = pytest.importorskip("yaml")
    record = record_of(records, "binary")
    record["metrics"]["brier"] = {**record["metrics"]["brier"], "value": None}
    path = tmp_path / "r.json"
    write_record(path, record)
    text = next(iter(render_exports([path], "model-index").values()))
    (result,) = yaml.safe_load(text)["model-index"][0]["results"]
    assert "brier" not in {m["type"] for m in result["metrics"]}
    assert "# undefined on this record, so not listed: brier" in text


@settings(max_examples=200, deadline=None, database=None)
@given(
    key=st.text(),
    value=st.one_of(st.text(), st.floats(-1e9, 1e9), st.integers(), st.none(), st.booleans()),
)
def test_the_yaml_emitter_round_trips_any_key_and_scalar(key, value):
    yaml = pytest.importorskip("yaml")
    if isinstance(value, float):
        value = rounded(value)
    parsed = yaml.safe_load(model_index.yaml_text({"outer": [{key: value, "k": [value]}]}))
    assert parsed == {"outer": [{key: value, "k": [value]}]}


@pytest.mark.parametrize("value", [1e-06, 0.5, 7.0, -0.25, 123456.0, 0.961221])
def test_numbers_stay_numbers_in_yaml_1_1(value):
    yaml = pytest.importorskip("yaml")
    assert yaml.safe_load(model_index.scalar(value)) == value
    assert "e" not in model_index.number(value)


# --- csv -----------------------------------------------------------------------------------------


def _csv(text):
    rows = list(csv.reader(io.StringIO(text)))
    return rows[0], rows[1:]


def _float(cell):
    return None if cell == "" else float(cell)


def test_csv_of_a_binary_record_is_id_truth_and_the_positive_score(records):
    record = record_of(records, "binary")
    header, rows = _csv(rendered(records, "binary", "csv"))
    assert header == ["id", "true_0", "score_1"]
    assert len(rows) == record["task"]["n_test"]
    pc = record["per_case"]
    assert [r[0] for r in rows] == pc["case_id"]
    assert [int(r[1]) for r in rows] == pc["y_true"]
    assert all(_float(r[2]) == rounded(s) for r, s in zip(rows, pc["y_score"], strict=True))


def test_csv_of_a_multiclass_record_has_medmnists_columns(records):
    record = record_of(records, "multiclass")
    example, _ = _csv((FIXTURES / "medmnist-results.csv").read_text())
    header, rows = _csv(rendered(records, "multiclass", "csv"))
    assert len(get_task(TASKS["multiclass"]).classes) == 5
    assert header == example
    assert len(rows) == record["task"]["n_test"]
    for j in range(5):
        column = record["per_case"][cases_csv.PROBABILITY.format(j=j)]
        assert [_float(r[2 + j]) for r in rows] == [rounded(v) for v in column]


def test_csv_reads_the_probability_columns_scoring_writes():
    spec = get_task("retinamnist")
    bound = metric_specs.lookup("accuracy", "multiclass")
    p = np.full((3, 5), 0.2)
    columns = bound.columns(
        np.array([0, 1, 2]), p, metric_specs.Context("multiclass", spec.classes)
    )
    assert {cases_csv.PROBABILITY.format(j=j) for j in range(5)} <= set(columns)


@pytest.mark.parametrize("kind", SEGMENTATION)
def test_csv_of_a_segmentation_record_is_its_per_case_columns(records, kind):
    record = record_of(records, kind)
    header, rows = _csv(rendered(records, kind, "csv"))
    names = [k for k in record["per_case"] if k != "case_id"]
    assert header == ["id", *names]
    assert len(rows) == record["task"]["n_test"]
    for j, name in enumerate(names, start=1):
        assert [_float(r[j]) for r in rows] == [
            None if v is None else rounded(v) for v in record["per_case"][name]
        ]
    assert "" in rows[0]  # case 0 is empty: undefined values are empty cells


# --- bad input -----------------------------------------------------------------------------------


def test_a_tampered_record_is_refused_and_nothing_is_written(records, tmp_path):
    record = json.loads(records["binary"][0].read_text())
    record["metrics"]["auc"]["value"] = 0.999  # edited after sealing
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(record))
    with pytest.raises(RecordError, match=f"{bad}.*does not match its record_sha256"):
        export([records["multiclass"][0], bad], "csv", tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_a_file_that_is_not_a_record_is_named(tmp_path):
    other = tmp_path / "notes.json"
    other.write_text('{"hello": 1}')
    with pytest.raises(RecordError, match=f"result record {other} lacks field"):
        render_exports([other], "gc")


def test_a_failed_run_has_nothing_to_export(records, tmp_path):
    record = record_of(records, "binary")
    record.update(status="failed", error={"message": "CUDA out of memory", "log_tail": ""})
    path = tmp_path / "failed.json"
    write_record(path, record)
    with pytest.raises(ExportError, match="is a failed run \\(CUDA out of memory\\)"):
        render_exports([path], "csv")


def test_an_unknown_format_suggests_the_near_one(records):
    with pytest.raises(
        UnknownNameError, match="unknown export format 'nnunt'; did you mean 'nnunet'"
    ):
        render_exports([records["binary"][0]], "nnunt")


@pytest.mark.parametrize("name", ["../../escape", "a/b", ".hidden"])
def test_a_submission_name_cannot_place_a_file_outside_out(records, tmp_path, name):
    record = record_of(records, "binary")
    record["submission"]["name"] = name
    path = tmp_path / "r.json"
    path.write_text(json.dumps(seal(record)))
    with pytest.raises(RecordError, match="is not a plain name"):
        export([path], "csv", tmp_path / "out")


def test_per_case_columns_shorter_than_the_test_set_are_refused(records, tmp_path):
    record = record_of(records, "binary")
    record["per_case"] = {k: v[:-1] for k, v in record["per_case"].items()}
    path = tmp_path / "r.json"
    write_record(path, record)
    with pytest.raises(
        RecordError, match=f"scores {record['task']['n_test'] - 1} cases; its task has n_test"
    ):
        load_source(path)


def test_segmentation_classes_must_be_the_tasks(records, tmp_path):
    record = record_of(records, "multilabel-segmentation")
    record["per_case"] = {k: v for k, v in record["per_case"].items() if k != "dice_bar"}
    path = tmp_path / "r.json"
    write_record(path, record)
    with pytest.raises(
        RecordError, match="has per-class Dice of \\['disc', 'spots'\\]; task toy-anatomy"
    ):
        render_exports([path], "nnunet")


def test_out_must_be_a_folder(records, tmp_path):
    (tmp_path / "file").write_text("")
    with pytest.raises(ExportError, match="is a file, not a folder"):
        export([records["binary"][0]], "gc", tmp_path / "file")


def test_two_records_for_one_file_name_are_refused(records, tmp_path):
    twin = tmp_path / "other" / "net+v2.seed3.json"
    twin.parent.mkdir()
    shutil.copy(records["binary"][0], twin)  # another file, the same run
    with pytest.raises(
        ExportError, match="would both be exported as pneumoniamnist.net\\+v2.seed3.csv"
    ):
        render_exports([records["binary"][0], twin], "csv")


def test_export_writes_one_file_per_record_and_returns_them(records, tmp_path):
    paths = [records[k][0] for k in KINDS]
    written = export(paths, "gc", tmp_path / "out")
    assert sorted(p.name for p in written) == sorted(p.name for p in (tmp_path / "out").iterdir())
    assert len(written) == 4
    assert all(load_source(p).stem + ".metrics.json" in {w.name for w in written} for p in paths)


def test_a_per_class_value_that_is_not_a_number_is_refused(records, tmp_path):
    record = record_of(records, "multilabel-segmentation")
    record["per_class"]["bar"]["dice"]["value"] = "high"
    path = tmp_path / "r.json"
    write_record(path, record)
    with pytest.raises(RecordError, match="dice_bar must be an object of numbers"):
        render_exports([path], "gc")
