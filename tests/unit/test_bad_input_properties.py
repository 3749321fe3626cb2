"""Bad input, tried systematically (hypothesis): predictions files, ``submission.toml`` and raw
data folders. Whatever arrives ends in a result or in the one error type that says what is wrong:

- predictions: a score report, or a ``PredictionError`` with a message; never another exception,
  and through ``medbench score`` exit code 0 or 1, never 2 (a bug);
- ``submission.toml``: a manifest whose every field is usable, or a ``SubmissionError``;
- a data folder: a prepared cache, or a ``MedbenchError`` naming the file, and no half cache.

Each property counts its outcomes; both kinds must occur, so a generator that only ever makes
garbage (or only valid input) fails the test rather than passing it vacuously.
"""

from __future__ import annotations

import collections
import csv
import io
import json
import os
import shutil
import struct
import tempfile
import warnings
import zipfile
import zlib
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from PIL import Image
from typer.testing import CliRunner

from fakes import fake_isbi_mirror
from medbench.cli import app
from medbench.data.prepare import answers_dir, prepare, prepared_dir
from medbench.errors import MedbenchError, PredictionError, SubmissionError
from medbench.predictions import read_predictions, validate
from medbench.scoring import score
from medbench.submission.loader import TRAIN_TYPES, read_manifest
from medbench.submission.tta import TTA_MODES
from medbench.tasks import TASKS, get_task
from medbench.tasks.spec import InputSpec
from medbench.tasks.splits import SPLIT_DIR

COUNTS: collections.Counter[tuple[str, str]] = collections.Counter()


def quick(n: int, **kwargs) -> settings:
    return settings(
        max_examples=n,
        deadline=None,
        database=None,  # no .hypothesis folder in the checkout
        suppress_health_check=list(HealthCheck),
        **kwargs,
    )


def rarely(draw, one_in: int) -> bool:
    """True about once in ``one_in`` draws; shrinks towards False (towards input left intact)."""
    return draw(st.integers(0, one_in - 1)) == one_in - 1


def outcome(prop: str, kind: str) -> None:
    COUNTS[(prop, kind)] += 1
    event(kind)


def assert_both_outcomes(prop: str, good: str, bad: str) -> None:
    seen = {k: n for (p, k), n in COUNTS.items() if p == prop}
    print(f"\n{prop}: {sum(seen.values())} examples {seen}")
    assert seen.get(good, 0) > 0 and seen.get(bad, 0) > 0, seen


# --- task specs and truth, small ---------------------------------------------------------------

BINARY = get_task("toy-lesions")
MULTICLASS = get_task("retinamnist")  # five grades
MASKS = replace(get_task("toy-anatomy"), input=InputSpec((8, 8), 1))  # three labels, 8x8
INSTANCES = get_task("dsb2018-nuclei")  # native sizes

_rng = np.random.default_rng(0)
TRUTH = {
    "binary": (BINARY, [f"case-{i}" for i in range(8)], np.array([0, 1, 0, 1, 1, 0, 0, 1]), None),
    "multiclass": (
        MULTICLASS,
        [f"r{i:03d}" for i in range(10)],
        np.array([0, 1, 2, 3, 4, 0, 0, 1, 2, 4]),
        None,
    ),
    "masks": (MASKS, ["m-a", "m-b", "m-c", "m-é"], _rng.random((4, 3, 8, 8)) > 0.6, None),
    "instances": (
        INSTANCES,
        ["n0", "n1", "n2"],
        [
            np.array([[0, 1, 1, 0, 2, 2, 0]] * 5, np.uint16),
            np.zeros((6, 4), np.uint16),
            np.array([[3, 3, 0], [3, 0, 0], [0, 0, 7]], np.uint16),
        ],
        [(5, 7), (6, 4), (3, 3)],
    ),
}


def expected_shape(kind: str, spec, shapes, i: int) -> tuple[int, ...]:
    if kind == "binary":
        return ()
    if kind == "multiclass":
        return (len(spec.classes),)
    if kind == "masks":
        return (len(spec.classes), *spec.input.size)
    return tuple(shapes[i])


# --- strategies: predictions files ----------------------------------------------------------------

DTYPES = [
    "bool", "int8", "uint8", "int32", "int64", "uint64", "float16", "float32", "float64",
    "complex64", "<U3", "S2", "datetime64[s]",
]  # fmt: skip
ODD_FLOATS = st.sampled_from([np.nan, np.inf, -np.inf, -0.0, 1.0, 0.0, 0.5, -1e-9, 1 + 1e-9, 2.0])
TEXT_IDS = st.text(max_size=6) | st.sampled_from(
    ["", " ", "nan", "NaN", "None", "a,b", 'q"t', "ǘ", "\t"]
)


CLEAN_DTYPES = {
    "binary": ["float64", "float32", "float16", "bool", "int64", "uint8"],
    "multiclass": ["float64", "float32", "float16", "int64"],  # integers: one-hot rows
    "masks": ["float64", "float32", "float16", "bool", "int64", "uint8"],
    "instances": ["int32", "uint16", "uint64", "int64", "bool", "uint8"],
}
ODD_INTS = st.sampled_from([-1, 2, 255, 10**12, 2**63 + 5, 2**64 - 1])


def clean(kind: str, shape: tuple[int, ...], dtype: str, rng: np.random.Generator) -> np.ndarray:
    """A well-formed prediction of ``shape`` in ``dtype``."""
    if kind == "instances":
        return rng.integers(0, 4, shape).astype(dtype)
    if kind == "multiclass":
        if np.dtype(dtype).kind == "f":
            return rng.dirichlet(np.ones(shape[-1])).astype(dtype)
        return np.eye(shape[-1], dtype=dtype)[rng.integers(0, shape[-1])]
    if np.dtype(dtype).kind == "f":
        return rng.random(shape).astype(dtype)
    return rng.integers(0, 2, shape).astype(dtype)


@st.composite
def bad_value(draw, kind: str, v: np.ndarray) -> np.ndarray:
    """``v`` made wrong: any array at all, another shape or dtype, or an odd value inside."""
    how = draw(st.sampled_from(["anything", "shape", "dtype", "odd", "odd"]))
    event(f"bad value: {how}")
    if how == "anything":
        shapes = hnp.array_shapes(min_dims=0, max_dims=4, max_side=4)
        return draw(hnp.arrays(st.sampled_from(DTYPES), shapes))
    if how == "shape":
        shape = draw(hnp.array_shapes(min_dims=0, max_dims=4, max_side=9))
        return np.resize(v, shape)
    if how == "dtype":
        with np.errstate(all="ignore"), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            try:
                return v.astype(draw(st.sampled_from(DTYPES)))
            except (ValueError, TypeError, OverflowError):
                return v.astype(str)
    v = v.copy()
    if v.size:
        at = draw(st.integers(0, v.size - 1))
        odd = draw(ODD_FLOATS) if v.dtype.kind == "f" else draw(ODD_INTS)
        with np.errstate(all="ignore"), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            v.flat[at] = np.array(odd).astype(v.dtype)
    return v


@st.composite
def values_for(draw, kind: str, shapes: list[tuple[int, ...]]) -> list[np.ndarray]:
    """Predictions for cases of ``shapes``: clean, in one dtype; then perhaps a few made bad."""
    dtype = draw(st.sampled_from(CLEAN_DTYPES[kind]))
    rng = np.random.default_rng(draw(st.integers(0, 2**16)))
    values = [clean(kind, shape, dtype, rng) for shape in shapes]
    if values:
        for i in draw(st.sets(st.integers(0, len(values) - 1), max_size=2)):
            values[i] = draw(bad_value(kind, values[i]))
    return values


@st.composite
def id_plan(draw, ids: list[str]) -> list[str]:
    """The case ids a file lists: usually all, sometimes missing, extra or duplicated ones."""
    plan = list(ids)
    if rarely(draw, 4):
        drop = draw(st.sets(st.sampled_from(range(len(ids))), max_size=len(ids)))
        plan = [c for i, c in enumerate(plan) if i not in drop]
    if rarely(draw, 5):
        plan += draw(st.lists(TEXT_IDS, min_size=1, max_size=3))
    if plan and rarely(draw, 6):
        plan.append(draw(st.sampled_from(plan)))
    if draw(st.booleans()):
        plan = draw(st.permutations(plan))
    return plan


def npy_bytes(array: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.save(buf, array, allow_pickle=False)
    return buf.getvalue()


def zip_bytes(members: list[tuple[str, bytes]], *, compressed: bool) -> bytes:
    buf = io.BytesIO()
    method = zipfile.ZIP_DEFLATED if compressed else zipfile.ZIP_STORED
    with zipfile.ZipFile(buf, "w", compression=method) as z, warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # "Duplicate name": wanted here
        for name, data in members:
            z.writestr(name, data)  # a repeated name is written twice, as a hostile zip may be
    return buf.getvalue()


def huge_npy_header() -> bytes:
    """An NPY member declaring 2**40 float64 (8 TiB) but holding 16 bytes."""
    buf = io.BytesIO()
    header = {"descr": "<f8", "fortran_order": False, "shape": (2**40,)}
    np.lib.format.write_array_header_1_0(buf, header)
    return buf.getvalue() + b"\0" * 16


ENCODINGS = ["utf-8"] * 4 + ["utf-8-sig", "utf-16", "utf-32", "latin-1", "cp1252", "shift_jis"]
CELL = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
    st.sampled_from(["", "nan", "inf", "-inf", "1e999", "0x1", "True", "abc", "0,5", " 0.5"]),
    st.text(max_size=4),
)


def csv_bytes(draw, kind: str, spec, plan: list[str], values: list[np.ndarray]) -> bytes:
    k = len(spec.classes)
    header = ["case_id", "score"] if kind == "binary" else ["case_id", *[f"p{i}" for i in range(k)]]
    if rarely(draw, 6):
        header = draw(st.lists(st.sampled_from([*header, "id", "Score", "p9", ""]), max_size=k + 2))
    out = io.StringIO()
    writer = csv.writer(out, lineterminator=draw(st.sampled_from(["\n", "\r\n", "\r"])))
    writer.writerow(header)
    garbled = set(draw(st.lists(st.integers(0, max(0, len(plan) - 1)), max_size=2)))
    for i, (case, v) in enumerate(zip(plan, values, strict=True)):
        if i in garbled:
            cells = [draw(CELL) for _ in header[1:]]
        else:
            cells = [
                repr(float(x)) if np.asarray(x).dtype.kind in "biuf" else str(x)
                for x in np.ravel(v)
            ]
        writer.writerow([case, *cells])
    text = out.getvalue()
    data = text.encode(draw(st.sampled_from(ENCODINGS)), errors="replace")
    if rarely(draw, 6):  # invalid UTF-8 somewhere
        at = draw(st.integers(0, len(data)))
        data = (
            data[:at]
            + draw(st.sampled_from([b"\xff", b"\xc3\x28", b"\x80\x80", b"\x00"]))
            + data[at:]
        )
    return data


@st.composite
def predictions_file(draw, kind: str) -> tuple[str, bytes]:
    """``(file name, bytes)``: NPZ or CSV, well-formed or not, then perhaps damaged."""
    spec, ids, _, shapes = TRUTH[kind]
    plan = draw(id_plan(ids))
    shape_of = [expected_shape(kind, spec, shapes, ids.index(c) if c in ids else 0) for c in plan]
    values = draw(values_for(kind, shape_of))
    container = draw(st.sampled_from(["npz", "npz", "npz", "csv", "csv"]))
    if container == "csv":
        name, data = "predictions.csv", csv_bytes(draw, kind, spec, plan, values)
    else:
        members = [(f"{c}.npy", npy_bytes(v)) for c, v in zip(plan, values, strict=True)]
        if rarely(draw, 10):
            members.append((draw(st.sampled_from(["x.npy", "readme.txt"])), huge_npy_header()))
        name, data = "predictions.npz", zip_bytes(members, compressed=draw(st.booleans()))
    damage = draw(
        st.sampled_from(["none"] * 6 + ["truncate", "flip", "random", "empty", "npy", "suffix"])
    )
    if damage == "truncate":
        data = data[: draw(st.integers(0, max(0, len(data) - 1)))]
    elif damage == "flip" and data:
        data = bytearray(data)
        for _ in range(draw(st.integers(1, 8))):
            data[draw(st.integers(0, len(data) - 1))] ^= draw(st.integers(1, 255))
        data = bytes(data)
    elif damage == "random":
        data = draw(st.binary(max_size=300))
    elif damage == "empty":
        data = b""
    elif damage == "npy":  # a lone array saved under an .npz name
        data = npy_bytes(np.zeros(len(ids)))
    elif damage == "suffix":
        name = draw(
            st.sampled_from(["predictions.json", "predictions", "predictions.NPZ", "p.Csv"])
        )
    return name, data


def assert_scored_or_refused(prop: str, kind: str, name: str, data: bytes, folder: Path) -> None:
    spec, ids, truth, shapes = TRUTH[kind]
    path = folder / name
    path.write_bytes(data)
    try:
        preds = validate(spec, read_predictions(path, spec), ids, shapes=shapes)
    except PredictionError as exc:
        assert str(exc).strip(), "a PredictionError must say what is wrong"
        outcome(prop, "refused")
        return
    cases = pd.DataFrame({"case_id": ids})
    report = score(spec, preds, truth, cases, n_resamples=20)
    assert spec.primary_metric in report.summary
    assert list(report.per_case["case_id"]) == ids
    if kind == "binary":
        assert preds.shape == (len(ids),) and np.all((preds >= 0) & (preds <= 1))
    elif kind == "multiclass":
        assert preds.shape == (len(ids), 5) and np.allclose(preds.sum(axis=1), 1, atol=1e-3)
    elif kind == "masks":
        assert preds.shape == (len(ids), 3, 8, 8) and preds.dtype == bool
    else:
        assert [p.shape for p in preds] == shapes and all(p.min(initial=0) >= 0 for p in preds)
    outcome(prop, "scored")


@contextmanager
def scratch():
    with tempfile.TemporaryDirectory(prefix="medbench-props-") as tmp:
        yield Path(tmp)


def make_property(kind: str, n: int):
    @quick(n)
    @given(file=predictions_file(kind))
    def prop(file):
        name, data = file
        with scratch() as folder:
            assert_scored_or_refused(f"predictions/{kind}", kind, name, data, folder)

    return prop


@pytest.mark.parametrize(
    ("kind", "n"), [("binary", 200), ("multiclass", 150), ("masks", 120), ("instances", 120)]
)
def test_any_predictions_file_is_scored_or_refused_with_a_message(kind, n):
    make_property(kind, n)()
    assert_both_outcomes(f"predictions/{kind}", "scored", "refused")


# The cases the generator may or may not reach, pinned: each was a crash before it was fixed.
PINNED = {
    "npy-under-an-npz-name": ("binary", "p.npz", npy_bytes(np.zeros(8))),
    "corrupt-deflate-stream": (
        "binary",
        "p.npz",
        (lambda d: d[:40] + b"\xff" * 30 + d[70:])(
            zip_bytes([(f"case-{i}.npy", npy_bytes(np.zeros(400))) for i in range(8)], compressed=True)
        ),
    ),
    "header-declares-8-TiB": ("binary", "p.npz", zip_bytes([("case-0.npy", huge_npy_header())], compressed=False)),
    "empty-and-nan-case-ids-in-a-csv": (  # pandas 3 made them float NaN: sorting ids crashed
        "multiclass",
        "p.csv",
        b"case_id,p0,p1,p2,p3,p4\n"
        + b"".join(f"{c},1,0,0,0,0\n".encode() for c in [*TRUTH["multiclass"][1], "", "x"]),
    ),
    "duplicate-member-names": (
        "binary",
        "p.npz",
        zip_bytes([(f"case-{i}.npy", npy_bytes(np.float64(0.5))) for i in [*range(8), 3]], compressed=False),
    ),
    "uint64-labels-above-int64": (
        "instances",
        "p.npz",
        zip_bytes(
            [
                (f"{c}.npy", npy_bytes(np.full(s, 2**63 + 1, np.uint64)))
                for c, s in zip(TRUTH["instances"][1], TRUTH["instances"][3], strict=True)
            ],
            compressed=False,
        ),
    ),
}  # fmt: skip


@pytest.mark.parametrize("case", sorted(PINNED))
def test_pinned_bad_files_are_refused(tmp_path, case):
    kind, name, data = PINNED[case]
    spec, ids, _, shapes = TRUTH[kind]
    (tmp_path / name).write_bytes(data)
    with pytest.raises(PredictionError) as info:
        validate(spec, read_predictions(tmp_path / name, spec), ids, shapes=shapes)
    assert str(info.value).strip()


# --- the same through `medbench score` ------------------------------------------------------------


def test_medbench_score_exits_0_or_1_never_2():
    runner = CliRunner()
    tasks = {"binary": get_task("toy-lesions"), "masks": get_task("toy-anatomy")}
    truths = {k: prepare(spec).split("test") for k, spec in tasks.items()}

    @quick(30)
    @given(data=st.data())
    def prop(data):
        kind = data.draw(st.sampled_from(["binary", "binary", "masks"]))
        spec, split = tasks[kind], truths[kind]
        TRUTH[f"cli-{kind}"] = (spec, list(split.case_ids), None, None)
        name, blob = data.draw(predictions_file_for(kind, f"cli-{kind}"))
        with scratch() as folder:
            (folder / name).write_bytes(blob)
            result = runner.invoke(
                app, ["score", spec.name, str(folder / name), "--format", "json"]
            )
        assert result.exit_code in (0, 1), result.output
        if result.exit_code == 1:
            lines = [line for line in result.stderr.splitlines() if line.strip()]
            assert len(lines) == 1 and lines[0].startswith("error: PredictionError: "), (
                result.stderr
            )
            outcome("cli/score", "refused")
        else:
            assert spec.primary_metric in json.loads(result.stdout)["summary"]
            outcome("cli/score", "scored")

    prop()
    assert_both_outcomes("cli/score", "scored", "refused")


def predictions_file_for(kind: str, key: str):
    """predictions_file for the truth registered under ``key`` with the shapes of ``kind``."""

    @st.composite
    def strategy(draw):
        spec, ids, _, _ = TRUTH[key]
        plan = draw(id_plan(ids))
        values = draw(values_for(kind, [expected_shape(kind, spec, None, 0)] * len(plan)))
        if kind == "binary" and draw(st.booleans()):
            return "predictions.csv", csv_bytes(draw, kind, spec, plan, values)
        members = [(f"{c}.npy", npy_bytes(v)) for c, v in zip(plan, values, strict=True)]
        data = zip_bytes(members, compressed=draw(st.booleans()))
        if rarely(draw, 4):
            data = data[: draw(st.integers(0, len(data)))]
        return "predictions.npz", data

    return strategy()


# --- submission.toml ------------------------------------------------------------------------------

KEYS = st.sampled_from(["name", "entry", "tasks", "summary", "Name", "entrypoint", ""]) | st.text(
    max_size=5
)
ENTRIES = st.sampled_from(
    [
        "model:Entry", "model:Dummy", "pkg.model:Entry", "model", ":Entry", "model:", "a:b:c",
        "../evil:X", "model:Entry ", " model:Entry", "model.:Entry", "1model:Entry", "model:1",
        "mo del:Entry", "model:En-try", "model/x:Entry", "model:Entry()", "é:ü", "import os:x",
    ]
) | st.text(max_size=12)  # fmt: skip
NAMES = st.sampled_from(
    ["dummy", "my-model_2.1", "", ".hidden", "..", "a b", "ünï", "x/y", "-"]
) | st.text(max_size=8)
TASK_NAMES = st.sampled_from([*TASKS.names(), "toy-lesion", "TOY-LESIONS", "", "jsrt"]) | st.text(
    max_size=6
)


def toml_value(depth: int = 0):
    scalars = st.one_of(
        st.integers(-(2**63), 2**63 - 1),
        st.floats(allow_nan=True, allow_infinity=True),
        st.booleans(),
        st.text(max_size=8),
        st.datetimes(),
    )
    if depth >= 2:
        return scalars
    return st.one_of(
        scalars,
        st.lists(toml_value(depth + 1), max_size=3),
        st.dictionaries(st.text(max_size=4), toml_value(depth + 1), max_size=3),
    )


def dump_value(v) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, float):
        return {"nan": "nan", "inf": "inf", "-inf": "-inf"}.get(repr(v), repr(v))
    if isinstance(v, int):
        return str(v)
    if isinstance(v, str):  # a TOML basic string: control characters escaped (no surrogates drawn)
        escaped = "".join(
            f"\\u{ord(c):04x}" if ord(c) < 0x20 or ord(c) == 0x7F else "\\" + c if c in '"\\' else c
            for c in v
        )
        return f'"{escaped}"'

    if isinstance(v, list):
        return "[" + ", ".join(dump_value(x) for x in v) + "]"
    if isinstance(v, dict):
        return "{" + ", ".join(f"{dump_value(k)} = {dump_value(x)}" for k, x in v.items()) + "}"
    return v.isoformat()


def mostly(draw, valid, anything, *, p: float = 0.7):
    """A draw from ``valid`` with probability about ``p``, else from ``anything``."""
    return draw(valid) if draw(st.integers(0, 9)) < 10 * p else draw(anything)


TRAIN_VALUES = {
    int: st.integers(1, 64),
    float: st.floats(1e-5, 1.0),
    str: st.sampled_from(["resnet18", ""]),
    bool: st.booleans(),
}
TRAIN_CHOICES = {"tta": st.sampled_from(TTA_MODES)}  # keys whose strings are one of a few


@st.composite
def manifests(draw) -> bytes:
    """A submission.toml: mostly structured (right tables, random values), sometimes mangled."""
    lines = []
    tasks = mostly(
        draw,
        st.lists(st.sampled_from(TASKS.names()[:4]), min_size=1, max_size=3),
        st.lists(TASK_NAMES, max_size=3) | toml_value(1),
    )
    if not rarely(draw, 10):
        lines.append(
            mostly(
                draw, st.just("[submission]"), st.sampled_from(["[Submission]", "[submission.x]"])
            )
        )
        fields = {
            "name": mostly(
                draw, st.sampled_from(["dummy", "my-model_2.1", "x"]), NAMES | toml_value(1)
            ),
            "entry": mostly(
                draw, st.sampled_from(["model:Entry", "pkg.model:Entry"]), ENTRIES, p=0.5
            ),
            "tasks": tasks,
            "summary": mostly(draw, st.text(max_size=10), toml_value(1)),
        }
        for key in draw(st.permutations(list(fields))):
            if not rarely(draw, 10):
                lines.append(f"{dump_value(key)} = {dump_value(fields[key])}")
        if rarely(draw, 5):
            lines.append(f"{dump_value(draw(KEYS))} = {dump_value(draw(toml_value(1)))}")
    entered = [t for t in tasks if isinstance(t, str)] if isinstance(tasks, list) else []
    tables = st.sampled_from(["train", *[f"train.{t}" for t in entered[:2]]])
    odd_tables = st.sampled_from(["train.jsrt-anatomy", "train.a.b", "extra", "train.toy-lesions"])
    for table in sorted({mostly(draw, tables, odd_tables) for _ in range(draw(st.integers(0, 3)))}):
        lines.append(f"[{table}]")
        for key in draw(
            st.lists(st.sampled_from([*TRAIN_TYPES, *entered, "custom"]), max_size=4, unique=True)
        ):
            if key in TRAIN_CHOICES:
                valid = TRAIN_CHOICES[key]
            elif key in TRAIN_TYPES:
                valid = TRAIN_VALUES[TRAIN_TYPES[key][0]]
            else:
                valid = toml_value(1)
            lines.append(f"{dump_value(key)} = {dump_value(mostly(draw, valid, toml_value(1)))}")
    text = "\n".join(lines) + "\n"
    mangle = draw(st.sampled_from(["none"] * 8 + ["cut", "insert", "bytes", "encoding"]))
    data = text.encode()
    if mangle == "cut":
        data = data[: draw(st.integers(0, len(data)))]
    elif mangle == "insert":
        at = draw(st.integers(0, len(text)))
        data = (
            text[:at]
            + draw(st.sampled_from(["[", "]", "=", '"', "\n", "{", "'''", "#"]))
            + text[at:]
        ).encode()
    elif mangle == "bytes":
        data = draw(st.binary(max_size=80))
    elif mangle == "encoding":
        data = text.encode(draw(st.sampled_from(["utf-16", "latin-1", "cp1252"])), errors="replace")
    return data


def assert_usable(manifest) -> None:
    """What the runner and loader do with a manifest must work for one that was accepted."""
    assert isinstance(manifest.name, str) and manifest.name and not manifest.name.startswith(".")
    module, attribute = manifest.entry.split(":")
    assert all(part.isidentifier() for part in module.split(".")) and attribute.isidentifier()
    assert manifest.tasks and all(t in TASKS for t in manifest.tasks)
    for task in manifest.tasks:
        table = manifest.train_for(task)
        for key, types in TRAIN_TYPES.items():
            if key in table:
                assert isinstance(table[key], types) and not (
                    isinstance(table[key], bool) and bool not in types
                )
        assert table.get("tta", "none") in TTA_MODES


@quick(400)
@given(data=manifests())
def manifest_property(data):
    with scratch() as folder:
        (folder / "submission.toml").write_bytes(data)
        try:
            manifest = read_manifest(folder)
        except SubmissionError as exc:
            assert str(exc).strip()
            outcome("submission.toml", "refused")
            return
    assert_usable(manifest)
    outcome("submission.toml", "accepted")


def test_any_submission_toml_is_read_or_refused():
    manifest_property()
    assert_both_outcomes("submission.toml", "accepted", "refused")


@pytest.mark.parametrize(
    "text",
    [
        '[submission]\nname = "x"\nentry = "../evil:X"\ntasks = ["toy-lesions"]\n',
        '[submission]\nname = "x"\nentry = "model:Entry()"\ntasks = ["toy-lesions"]\n',
        '[submission]\nname = ".x"\nentry = "model:E"\ntasks = ["toy-lesions"]\n',
        '[submission]\nname = "x"\nentry = "model:E"\ntasks = ["toy-lesions"]\n[train]\n"toy-lesions" = 3\n',
    ],
    ids=["path-in-entry", "call-in-entry", "hidden-name", "task-override-not-a-table"],
)
def test_pinned_manifests_are_refused(tmp_path, text):
    (tmp_path / "submission.toml").write_text(text)
    with pytest.raises(SubmissionError):
        read_manifest(tmp_path)


# --- raw data folders -----------------------------------------------------------------------------


def png(array: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(array).save(buf, format="PNG")
    return buf.getvalue()


def png_declaring(width: int, height: int) -> bytes:
    """A PNG header declaring a huge image (a decompression bomb), with no pixel data."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        return (
            struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))
        )

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IEND", b"")


JSRT_STRUCTURES = ("left_lung", "right_lung", "heart", "left_clavicle", "right_clavicle")


def build_jsrt(root: Path) -> Path:
    """The JSRT mirror layout with all 247 names (the split needs every case) and tiny images."""
    split = pd.read_csv(SPLIT_DIR / "jsrt-anatomy.csv", dtype=str)
    base = root / "jsrt-scr"
    rng = np.random.default_rng(4)
    names = sorted(split["case_id"])
    for sub in ["images", *[f"masks/{s}" for s in JSRT_STRUCTURES]]:
        (base / sub).mkdir(parents=True)
    for name in names:
        (base / "images" / f"{name}.png").write_bytes(
            png(rng.integers(0, 256, (8, 8), dtype=np.uint8))
        )
        for s in JSRT_STRUCTURES:
            (base / "masks" / s / f"{name}.png").write_bytes(
                png((rng.random((16, 16)) > 0.5).astype(np.uint8) * 255)
            )
    folds = [s.rsplit("-", 1)[-1] for s in split.set_index("case_id").loc[names, "group"]]
    table = pd.DataFrame(
        {"name": names, "nodule": [int(n.startswith("JPCLN")) for n in names], "scr_fold": folds}
    )
    (base / "jsrt.csv").write_text(table.to_csv(index=False))
    return root


def corruptions(draw, path: Path, kinds: list[str]) -> bytes | None:
    """New bytes for a raw file (None: delete it)."""
    kind = draw(st.sampled_from(kinds))
    event(f"raw file: {kind}")
    old = path.read_bytes()
    if kind == "delete":
        return None
    if kind == "truncate":
        return old[: draw(st.integers(0, len(old) - 1))]
    if kind == "random":
        return draw(st.binary(min_size=1, max_size=200))
    if kind == "empty":
        return b""
    if kind == "text":
        return b"name,nodule\nJPCLN001,1\n"
    if kind == "other-size":  # a well-formed image of another size: may or may not pair
        h, w = draw(st.integers(1, 40)), draw(st.integers(1, 40))
        return png(np.full((h, w), 255, np.uint8))
    if kind == "rgb16":  # another mode at the same size: converted on reading
        try:
            with Image.open(io.BytesIO(old)) as im:
                w, h = im.size
        except OSError:  # not an image (the table): any size
            w, h = 8, 8
        if draw(st.booleans()):
            return png(np.full((h, w, 3), 200, np.uint8))
        return png(np.full((h, w), 4000, np.uint16))
    raise AssertionError(kind)


@contextmanager
def home():
    """A fresh MEDBENCH_HOME for one example."""
    before = os.environ.get("MEDBENCH_HOME")
    with tempfile.TemporaryDirectory(prefix="medbench-home-") as tmp:
        os.environ["MEDBENCH_HOME"] = tmp
        try:
            yield Path(tmp)
        finally:
            if before is None:
                os.environ.pop("MEDBENCH_HOME", None)
            else:
                os.environ["MEDBENCH_HOME"] = before


def assert_no_half_cache(spec) -> None:
    for folder in (prepared_dir(spec), answers_dir(spec)):
        assert not folder.exists(), f"{folder} was left behind by a failed prepare"
        if folder.parent.exists():
            assert [p.name for p in folder.parent.iterdir() if p.name.startswith(".")] == []


# Preparing at a task's real size writes tens of MB per example; an 8x8 version of the same spec
# (same split, same readers, same checks) exercises every reader and check in milliseconds.
SMALL = {
    "isbi": replace(get_task("isbi2012-membranes"), input=InputSpec((8, 8), 1)),
    "jsrt": replace(get_task("jsrt-anatomy"), input=InputSpec((8, 8), 1)),
}
KINDS = ["delete", "truncate", "random", "empty", "text", "other-size", "rgb16"]
KINDS_FOR = {"isbi": KINDS, "jsrt": KINDS, "jsrt-mask": KINDS}


def prepare_or_name_the_file(prop: str, spec, root: Path, changed: list[Path]) -> None:
    with home():
        try:
            prepared = prepare(spec, from_dir=root, workers=2)
        except MedbenchError as exc:
            message = str(exc)
            named = [p for p in changed if str(p) in message]
            assert named or str(root) in message, f"the error names none of {changed}: {message}"
            assert_no_half_cache(spec)
            outcome(prop, "refused")
            return
        prepared.verify()
        outcome(prop, "prepared")


@contextmanager
def damaged(draw, tree_root: Path, candidates: list[str], tree: str):
    """Damage a few of ``candidates`` in ``tree_root`` for one example; put them back after.

    Cheaper than a copy per example: the JSRT layout holds about 1,500 files.
    """
    chosen = draw(st.lists(st.sampled_from(candidates), min_size=0, max_size=3, unique=True))
    originals = {rel: (tree_root / rel).read_bytes() for rel in chosen}
    changed = []
    try:
        for rel in chosen:
            kinds = KINDS_FOR["jsrt-mask" if tree == "jsrt" and "/masks/" in rel else tree]
            data = corruptions(draw, tree_root / rel, kinds)
            (tree_root / rel).unlink()
            if data is not None:
                (tree_root / rel).write_bytes(data)
            changed.append(tree_root / rel)
        yield changed
    finally:
        for rel, data in originals.items():
            (tree_root / rel).write_bytes(data)


@pytest.fixture(scope="module")
def raw_trees(tmp_path_factory):
    root = tmp_path_factory.mktemp("raw")
    return {"isbi": fake_isbi_mirror(root / "isbi", size=16), "jsrt": build_jsrt(root / "jsrt")}


@pytest.mark.parametrize(("tree", "n"), [("isbi", 80), ("jsrt", 60)])
def test_any_damaged_data_folder_prepares_or_names_the_file(raw_trees, tree, n, tmp_path):
    base = shutil.copytree(raw_trees[tree], tmp_path / tree)  # damaged and restored in place
    candidates = sorted(p.relative_to(base).as_posix() for p in base.rglob("*") if p.is_file())
    if tree == "jsrt":  # the table, and the files of the first cases (every file is read)
        candidates = [c for c in candidates if c.endswith(".csv") or "JPCLN00" in c]
    prop_name = f"data/{tree}"

    @quick(n)
    @given(data=st.data())
    def prop(data):
        with damaged(data.draw, base, candidates, tree) as changed:
            prepare_or_name_the_file(prop_name, SMALL[tree], base, changed)

    prop()
    assert_both_outcomes(prop_name, "prepared", "refused")


def damaged_copy(base: Path, work: Path, rel: str, data: bytes) -> Path:
    shutil.copytree(base, work)
    (work / rel).write_bytes(data)
    return work / rel


def test_a_decompression_bomb_is_refused_naming_the_file(raw_trees, tmp_path):
    rel = "isbi2012/train/image/4.png"
    bomb = damaged_copy(raw_trees["isbi"], tmp_path / "w", rel, png_declaring(30000, 30000))
    with home():
        with pytest.raises(MedbenchError, match=str(bomb)):
            prepare(SMALL["isbi"], from_dir=tmp_path / "w")
        assert_no_half_cache(SMALL["isbi"])


def test_jsrt_masks_of_different_sizes_across_structures_are_refused(raw_trees, tmp_path):
    rel = "jsrt-scr/masks/heart/JPCLN001.png"  # lungs are 16x16, this heart 3x3
    bad = damaged_copy(raw_trees["jsrt"], tmp_path / "w", rel, png(np.full((3, 3), 255, np.uint8)))
    with home():
        with pytest.raises(MedbenchError, match=str(bad)):
            prepare(SMALL["jsrt"], from_dir=tmp_path / "w")


def test_jsrt_masks_that_do_not_pair_name_the_file(raw_trees, tmp_path):
    rel = "jsrt-scr/masks/right_lung/JPCLN001.png"
    bad = damaged_copy(raw_trees["jsrt"], tmp_path / "w", rel, png(np.full((3, 3), 255, np.uint8)))
    with home():
        with pytest.raises(MedbenchError, match=str(bad)):
            prepare(SMALL["jsrt"], from_dir=tmp_path / "w")


def test_a_data_table_without_rows_names_where_the_data_was_read(raw_trees, tmp_path):
    rel = "jsrt-scr/jsrt.csv"
    damaged_copy(raw_trees["jsrt"], tmp_path / "w", rel, b"name,nodule,scr_fold\n")
    with home():
        with pytest.raises(MedbenchError, match="247 of the 247 cases") as info:
            prepare(SMALL["jsrt"], from_dir=tmp_path / "w")
        assert str(tmp_path / "w" / "jsrt-scr") in str(info.value)
        assert_no_half_cache(SMALL["jsrt"])


def test_jsrt_masks_that_do_not_pair_are_refused_without_a_half_cache(raw_trees, tmp_path):
    rel = "jsrt-scr/masks/right_lung/JPCLN001.png"
    damaged_copy(raw_trees["jsrt"], tmp_path / "w", rel, png(np.full((3, 3), 255, np.uint8)))
    with home():
        with pytest.raises(MedbenchError, match="masks of JPCLN001 do not pair: .*right_lung"):
            prepare(SMALL["jsrt"], from_dir=tmp_path / "w")
        assert_no_half_cache(SMALL["jsrt"])
