"""The parts of the trust boundary one at a time: opaque ids, the installation key, the child's
output reader, the child's JSON files, bounded NPZ reading, saved predictions, sealed manifests."""

from __future__ import annotations

import io
import json
import os
import re
import stat
import threading
import zipfile
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

from medbench.blinding import Blinding, unblind
from medbench.child import EVENT
from medbench.data.prepare import load_prepared, prepare
from medbench.errors import ChecksumError, PredictionError
from medbench.keys import installation_key, key_path
from medbench.predictions import read_predictions
from medbench.saved import decode, encode
from medbench.supervise import (
    JSON_LIMIT,
    LINE_LIMIT,
    LOG_LIMIT,
    RESULT_SCHEMA,
    ChildOutput,
    read_child_json,
)
from medbench.tasks import get_task

# --- opaque ids ----------------------------------------------------------------------------------


def test_opaque_ids_are_stable_per_run_and_differ_between_runs(fresh_home):
    ids = [f"JPCLN{i:03d}" for i in range(50)]
    a = Blinding.for_run("jsrt-nodule", 1, "c" * 64, 0)
    assert a.ids("test", ids) == Blinding.for_run("jsrt-nodule", 1, "c" * 64, 0).ids("test", ids)
    others = [
        Blinding.for_run("jsrt-nodule", 1, "c" * 64, 1),  # another seed
        Blinding.for_run("jsrt-nodule", 1, "d" * 64, 0),  # another submission content
    ]
    for b in others:
        assert not set(a.ids("test", ids)) & set(b.ids("test", ids))
    assert not set(a.ids("test", ids)) & set(a.ids("train", ids))  # and another split
    assert all(len(c) == 17 and not any(p in c for p in ("JPC", "LN")) for c in a.ids("test", ids))


def test_the_test_order_is_a_keyed_permutation(fresh_home):
    a = Blinding.for_run("toy-lesions", 2, "c" * 64, 0)
    order = a.order("test", 124)
    assert sorted(order) == list(range(124)) and list(order) != list(range(124))
    assert list(order) == list(a.order("test", 124))
    assert list(order) != list(Blinding.for_run("toy-lesions", 2, "c" * 64, 1).order("test", 124))


def test_a_new_installation_key_gives_other_ids(tmp_path, monkeypatch):
    ids = ["a", "b"]
    monkeypatch.setenv("MEDBENCH_HOME", str(tmp_path / "one"))
    first = Blinding.for_run("toy-lesions", 2, "c" * 64, 0).ids("test", ids)
    monkeypatch.setenv("MEDBENCH_HOME", str(tmp_path / "two"))
    assert Blinding.for_run("toy-lesions", 2, "c" * 64, 0).ids("test", ids) != first


def test_unblind_translates_and_refuses_ids_it_did_not_give():
    real, opaque = ["JPCLN001", "JPCNN001"], ["c1", "c2"]
    assert unblind({"c2": 1, "c1": 0}, opaque, real, split="test") == {"JPCNN001": 1, "JPCLN001": 0}
    # A guessed real id is an unknown id, never taken for the case it names.
    with pytest.raises(
        PredictionError, match=r"1 case id\(s\) that the submission was not given: 'JPCLN001'"
    ):
        unblind({"c1": 0, "JPCLN001": 1}, opaque, real, split="test")


# --- the installation key ------------------------------------------------------------------------


def test_the_key_is_made_once_private_and_shared_by_concurrent_callers(fresh_home):
    with ThreadPoolExecutor(8) as pool:
        keys = set(pool.map(lambda _: installation_key(), range(16)))
    assert len(keys) == 1 and len(next(iter(keys))) == 32
    assert stat.S_IMODE(key_path().stat().st_mode) == 0o600
    assert sorted(p.name for p in key_path().parent.iterdir()) == ["secret"]


def test_an_edited_manifest_is_refused_and_force_repairs_it(fresh_home):
    spec = get_task("toy-lesions")
    prepared = prepare(spec)
    path = prepared.path / "manifest.json"
    manifest = json.loads(path.read_text())
    manifest["counts"]["test"] += 1  # any change, however plausible
    path.write_text(json.dumps(manifest))
    with pytest.raises(ChecksumError, match="seal does not match.*--force"):
        load_prepared(spec)
    prepare(spec, force=True)
    assert load_prepared(spec) is not None


def test_a_cache_sealed_under_another_key_is_refused(fresh_home):
    spec = get_task("toy-lesions")
    prepare(spec)
    key_path().write_bytes(os.urandom(32))
    with pytest.raises(ChecksumError, match="seal does not match"):
        load_prepared(spec)


# --- the child's output --------------------------------------------------------------------------


def pump(tmp_path, data: bytes, events=None) -> ChildOutput:
    read_end, write_end = os.pipe()
    output = ChildOutput(os.fdopen(read_end, "rb"), tmp_path / "child.log", events)

    def write():
        with os.fdopen(write_end, "wb") as w:
            w.write(data)

    writer = threading.Thread(target=write)
    writer.start()
    writer.join()
    output.thread.join(timeout=30)
    return output


def test_the_log_cap_holds_inside_one_line(tmp_path):
    output = pump(tmp_path, b"x" * (LOG_LIMIT + 5 * 2**20) + b"\nafter\n")
    log = (tmp_path / "child.log").read_bytes()
    assert LOG_LIMIT <= len(log) <= LOG_LIMIT + 200
    assert log.endswith(b"more bytes of output not kept]\n")
    assert output.dropped == 5 * 2**20 + len(b"\nafter\n")
    assert output.tail[0].endswith(" [...]") and len(output.tail[0]) < 600


def test_a_long_line_is_never_parsed_as_an_event(tmp_path):
    events = []
    line = EVENT.encode() + b'{"event": "epoch", "pad": "' + b"p" * LINE_LIMIT + b'"}\n'
    pump(tmp_path, line + EVENT.encode() + b'{"event": "fit"}\n', events.append)
    assert events == [{"event": "fit"}]


GOOD_RESULT = {
    "setup_s": 1,
    "fit_s": 1,
    "predict_s": 1,
    "output_s": 1,
    "child_s": 1,
    "device_name": "cpu",
    "peak_gpu_memory_mb": None,
    "notes": {},
}
# A forged cost in the child's result: each is refused with the field and the value seen.
BAD_COSTS = [
    ({"params": -1}, "malformed field(s) ['cost'] (cost.params must be null or an integer in "
     "[0, 10**18]; got -1)"),
    ({"params": 1.5e6}, "cost.params must be null or an integer in [0, 10**18]; got 1500000.0"),
    ({"flops_per_image": True}, "cost.flops_per_image must be null or an integer"),
    ({"flops_per_image": 10**19}, "cost.flops_per_image must be null or an integer"),
    ({"params": 5, "trainable_params": 6}, "cost.trainable_params (6) exceeds cost.params (5)"),
    ({"flops_input": [64]}, "cost.flops_input must be null or [H, W] (positive integers); got [64]"),
    ({"flops_input": [0, 64]}, "cost.flops_input must be null or [H, W]"),
    ({"flops_input_note": 3}, "cost.flops_input_note must be a string; got 3"),
    ({"gpu_hours": 1}, "cost has unknown field(s) ['gpu_hours']"),
    ("many", "cost must be null or an object; got 'many'"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (None, "the child wrote no child-result.json"),
        (b"{", "is not valid JSON"),
        (b"\xff\xfe", "is not valid JSON"),
        (b"[]", "is not a JSON object"),
        (b"[" * 100_000, "is larger than 64 KiB"),
        (
            json.dumps(
                {
                    "setup_s": 1,
                    "fit_s": -1,
                    "predict_s": 1,
                    "output_s": 1,
                    "child_s": 1,
                    "device_name": "cpu",
                    "peak_gpu_memory_mb": None,
                    "notes": {},
                    "cost": None,
                }
            ).encode(),
            "malformed field(s) ['fit_s']",
        ),
        (
            json.dumps(
                {
                    "setup_s": 1,
                    "fit_s": 1,
                    "predict_s": 1,
                    "output_s": 1,
                    "child_s": 1,
                    "device_name": "cpu",
                }
            ).encode(),
            "malformed field(s) ['peak_gpu_memory_mb', 'notes', 'cost']",
        ),
        (
            json.dumps(
                {
                    "setup_s": 1,
                    "fit_s": 1,
                    "predict_s": 1,
                    "output_s": 1,
                    "child_s": 1,
                    "device_name": "cpu",
                    "peak_gpu_memory_mb": None,
                    "notes": {"weights": ["not", "a", "string"]},
                    "cost": None,
                }
            ).encode(),
            "malformed field(s) ['notes']",
        ),
        *(
            (json.dumps({**GOOD_RESULT, "cost": cost}).encode(), reason)
            for cost, reason in BAD_COSTS
        ),
    ],
)
def test_the_childs_json_is_bounded_and_schema_checked(tmp_path, data, reason):
    path = tmp_path / "child-result.json"
    if data is not None:
        path.write_bytes(data)
    with pytest.raises(ValueError, match=re.escape(reason)):
        read_child_json(path, RESULT_SCHEMA)


def test_the_childs_json_keeps_only_the_schema(tmp_path):
    path = tmp_path / "child-result.json"
    good = {
        "setup_s": 0.5,
        "fit_s": 1.5,
        "predict_s": 0,
        "output_s": 0.1,
        "child_s": 2,
        "device_name": "x" * 5000,
        "peak_gpu_memory_mb": None,
        "notes": {"weights": "efficientnet-lite0"},
        "cost": {"params": 10, "trainable_params": 4, "flops_per_image": 2000},
        "extra": "dropped",
    }
    path.write_text(json.dumps(good))
    got = read_child_json(path, RESULT_SCHEMA)
    assert set(got) == set(RESULT_SCHEMA) and len(got["device_name"]) == 2000
    assert JSON_LIMIT == 64 * 1024


# --- bounded NPZ reading -------------------------------------------------------------------------


def npz(tmp_path, arrays: dict) -> str:
    path = tmp_path / "p.npz"
    np.savez(path, **arrays)
    return path


def test_more_members_than_cases_are_refused_from_the_directory(tmp_path):
    path = npz(tmp_path, {f"c{i}": np.float64(0.5) for i in range(10)})
    with pytest.raises(PredictionError, match="holds 10 arrays; there are only 4 cases"):
        read_predictions(path, get_task("toy-lesions"), n_cases=4)


def test_a_member_declaring_too_much_is_refused_before_its_data_is_read(tmp_path):
    # A header declaring 2**40 float64 values over a few bytes of data: refused from the header.
    buffer = io.BytesIO()
    np.lib.format.write_array_header_2_0(
        buffer, {"descr": "<f8", "fortran_order": False, "shape": (2**40,)}
    )
    path = tmp_path / "p.npz"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("c1.npy", buffer.getvalue() + b"\0" * 64)
    with pytest.raises(PredictionError, match=r"declares shape \(1099511627776,\)"):
        read_predictions(path, get_task("toy-anatomy"), n_cases=1)


def test_object_arrays_and_non_npy_members_are_refused(tmp_path):
    path = tmp_path / "p.npz"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("c1.txt", b"hello")
    with pytest.raises(PredictionError, match="member 'c1.txt' is not an .npy array"):
        read_predictions(path, get_task("toy-lesions"))
    buffer = io.BytesIO()
    np.lib.format.write_array_header_1_0(
        buffer, {"descr": "|O", "fortran_order": False, "shape": (1,)}
    )
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("c1.npy", buffer.getvalue() + b"\0" * 8)
    with pytest.raises(PredictionError, match="must be an array of numbers"):
        read_predictions(path, get_task("toy-lesions"))


def test_duplicate_members_are_found(tmp_path):
    path = tmp_path / "p.npz"
    one = io.BytesIO()
    np.save(one, np.float64(0.5))
    with zipfile.ZipFile(path, "w") as archive, pytest.warns(UserWarning):
        archive.writestr("c1.npy", one.getvalue())
        archive.writestr("c1.npy", one.getvalue())
    with pytest.raises(PredictionError, match="case ids listed more than once: 'c1'"):
        read_predictions(path, get_task("toy-lesions"))


def test_fortran_order_arrays_read_back_equal(tmp_path):
    masks = np.asfortranarray(np.random.default_rng(0).random((3, 64, 64)) > 0.5)
    got = read_predictions(npz(tmp_path, {"c1": masks}), get_task("toy-anatomy"))
    np.testing.assert_array_equal(got["c1"], masks)


# --- saved predictions ---------------------------------------------------------------------------


def test_saved_predictions_round_trip_for_every_kind(tmp_path):
    rng = np.random.default_rng(1)
    splits = {
        "test": (("a", "b"), rng.random(2)),
        "val": (("c",), rng.random((1, 5))),
        "masks": (("d", "e"), rng.random((2, 3, 8, 8)) > 0.5),
        "maps": (("f", "g"), [rng.integers(0, 300, (5, 7)), rng.integers(0, 3, (2, 9))]),
    }
    path = tmp_path / "x.predictions.npz"
    path.write_bytes(encode(splits))
    back = decode(path)
    for split, (ids, values) in splits.items():
        assert back[split][0] == ids
        if isinstance(values, list):
            for a, b in zip(back[split][1], values, strict=True):
                np.testing.assert_array_equal(a, b)
        else:
            np.testing.assert_array_equal(back[split][1], values)
