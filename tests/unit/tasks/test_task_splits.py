"""The committed splits: hash-checked, well formed, and made the way each task's note says."""

from __future__ import annotations

import dataclasses
import shutil
from pathlib import Path

import pandas as pd
import pytest

import medbench.tasks.splits as splits_module
from medbench.data.files import sha256_bytes
from medbench.errors import SplitError
from medbench.tasks import all_tasks, get_task
from medbench.tasks.spec import SPLITS
from medbench.tasks.splits import (
    SPLIT_DIR,
    load_split,
    split_csv_bytes,
    split_frame,
    stratified_split,
)

TASK_NAMES = [s.name for s in all_tasks()]


def split_of(name: str) -> pd.DataFrame:
    return load_split(get_task(name))


def counts(frame: pd.DataFrame) -> dict[str, int]:
    return {s: int((frame["split"] == s).sum()) for s in SPLITS}


def assert_stratified(frame: pd.DataFrame, strata: pd.Series, fractions: dict[str, float]) -> None:
    """Each stratum is split in the given proportions, up to rounding (one case)."""
    for stratum, rows in frame.groupby(strata):
        n = len(rows)
        for split, fraction in fractions.items():
            found = int((rows["split"] == split).sum())
            assert abs(found - n * fraction) <= 1, (stratum, split, found, n * fraction)


# --- hash check ------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", TASK_NAMES)
def test_split_matches_its_hash_and_is_well_formed(name):
    spec = get_task(name)
    data = (SPLIT_DIR / spec.split_file).read_bytes()
    assert sha256_bytes(data) == spec.split_sha256
    frame = load_split(spec)
    assert list(frame.columns[:2]) == ["case_id", "split"]
    assert set(frame["split"]) <= set(SPLITS)
    assert not frame["case_id"].duplicated().any()
    assert (frame["case_id"] != "").all()
    found = counts(frame)
    assert found["train"] > 0 and found["test"] > 0, found
    if spec.option("split_unit") != "sequence":  # ctc-*: the split lists sequences
        assert found["val"] > 0, found


@pytest.fixture
def split_copy(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A copy of the split folder that load_split reads instead of the package's."""
    folder = tmp_path / "splits"
    shutil.copytree(SPLIT_DIR, folder)
    monkeypatch.setattr(splits_module, "SPLIT_DIR", folder)
    return folder


def flip_first_case(path: Path) -> bytes:
    """Move the first case of a split file to another split; return the new content."""
    lines = path.read_text().splitlines(keepends=True)
    case, split, *rest = lines[1].rstrip("\n").split(",")
    other = "val" if split != "val" else "train"
    lines[1] = ",".join([case, other, *rest]) + "\n"
    data = "".join(lines).encode()
    path.write_bytes(data)
    return data


@pytest.mark.parametrize("name", ["toy-anatomy", "jsrt-anatomy"])
def test_a_changed_split_file_is_refused(split_copy, name):
    spec = get_task(name)
    data = flip_first_case(split_copy / spec.split_file)
    with pytest.raises(SplitError) as info:
        load_split(spec)
    message = str(info.value)
    assert spec.split_file in message and repr(name) in message
    assert f"expected SHA-256 {spec.split_sha256}, found {sha256_bytes(data)}" in message


def test_a_missing_split_file_is_refused(split_copy):
    spec = get_task("toy-lesions")
    (split_copy / spec.split_file).unlink()
    with pytest.raises(SplitError, match=r"toy-lesions\.csv of task 'toy-lesions' is missing"):
        load_split(spec)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"case_id,split\na,train\nb,holdout\n", r"unknown split names \['holdout'\]"),
        (b"case_id,split\na,train\na,test\n", r"lists cases more than once: \['a'\]"),
        (b"id,split\na,train\n", "must start with columns case_id,split"),
    ],
)
def test_a_malformed_split_file_is_refused_even_with_its_hash(split_copy, content, message):
    spec = get_task("toy-anatomy")
    (split_copy / spec.split_file).write_bytes(content)
    spec = dataclasses.replace(spec, split_sha256=sha256_bytes(content))
    with pytest.raises(SplitError, match=message):
        load_split(spec)


# --- each task's split is made as its note says ----------------------------------------------------


def test_jsrt_anatomy_test_is_scr_fold_2():
    frame = split_of("jsrt-anatomy")
    assert len(frame) == 247
    number = frame["case_id"].str[-3:].astype(int)
    test = set(frame.loc[frame["split"] == "test", "case_id"])
    assert test == set(frame.loc[number % 2 == 0, "case_id"])
    assert len(test) == 123
    assert counts(frame) == {"train": 100, "val": 24, "test": 123}
    expected_group = "scr-fold-" + (2 - number % 2).astype(str)
    assert (frame["group"] == expected_group).all()


def test_jsrt_splits_cover_the_same_cases():
    assert set(split_of("jsrt-anatomy")["case_id"]) == set(split_of("jsrt-nodule")["case_id"])


def test_jsrt_nodule_split_is_stratified():
    frame = split_of("jsrt-nodule")
    nodule = frame["case_id"].str.startswith("JPCLN")
    assert nodule.sum() == 154 and (~nodule).sum() == 93
    overall = nodule.mean()
    for split in SPLITS:
        fraction = nodule[frame["split"] == split].mean()
        assert abs(fraction - overall) <= 0.05, (split, fraction, overall)
    assert_stratified(frame, nodule, {"train": 0.6, "val": 0.15, "test": 0.25})


def test_isbi_split_is_contiguous_blocks():
    frame = split_of("isbi2012-membranes")
    assert list(frame["case_id"]) == [f"slice-{i:02d}" for i in range(30)]
    expected = ["train"] * 20 + ["val"] * 5 + ["test"] * 5
    assert list(frame["split"]) == expected
    assert (frame["group"] == "block-" + frame["split"]).all()


def test_messidor_tasks_share_one_split():
    referable, grading = split_of("messidor2-referable"), split_of("messidor2-grading")
    pd.testing.assert_frame_equal(referable, grading)
    assert counts(referable) == {"train": 1046, "val": 261, "test": 437}


def test_retinamnist_split_is_the_official_one():
    frame = split_of("retinamnist")
    assert counts(frame) == {"train": 1080, "val": 120, "test": 400}
    # Case ids are <official split>-<index in the file>.
    assert (frame["case_id"].str.split("-").str[0] == frame["split"]).all()
    for split, n in (("train", 1080), ("val", 120), ("test", 400)):
        ids = frame.loc[frame["split"] == split, "case_id"]
        assert set(ids) == {f"{split}-{i:04d}" for i in range(n)}


def test_tb_split_is_stratified_by_source_and_label():
    frame = split_of("tb-cxr")
    assert len(frame) == 800
    assert counts(frame) == {"train": 543, "val": 137, "test": 120}
    assert frame["case_id"].str.fullmatch(r"(CHNCXR|MCUCXR)_\d{4}_[01]").all()
    source = frame["case_id"].str[:6].map({"CHNCXR": "shenzhen", "MCUCXR": "montgomery"})
    assert (frame["group"] == source).all()
    label = frame["case_id"].str[-1]
    strata = source + "-" + label
    assert strata.value_counts().to_dict() == {
        "shenzhen-1": 336,
        "shenzhen-0": 326,
        "montgomery-0": 80,
        "montgomery-1": 58,
    }
    assert_stratified(frame, strata, {"train": 0.68, "val": 0.17, "test": 0.15})


def test_dsb_split_is_stratified_by_image_type():
    frame = split_of("dsb2018-nuclei")
    assert len(frame) == 664
    assert counts(frame) == {"train": 431, "val": 100, "test": 133}
    assert frame["case_id"].str.fullmatch(r"[0-9a-f]{64}").all()
    assert frame["group"].str.fullmatch(r"\d+x\d+-(grey|colour)").all()
    assert frame["group"].nunique() > 3
    assert_stratified(frame, frame["group"], {"train": 0.65, "val": 0.15, "test": 0.20})


@pytest.mark.parametrize("name", ["ctc-u373", "ctc-hela"])
def test_ctc_split_lists_sequences(name):
    frame = split_of(name)
    assert dict(zip(frame["case_id"], frame["split"], strict=True)) == {"01": "train", "02": "test"}
    assert get_task(name).option("split_unit") == "sequence"


@pytest.mark.parametrize(("name", "n"), [("toy-anatomy", 280), ("toy-lesions", 500)])
def test_toy_splits(name, n):
    frame = split_of(name)
    assert set(frame["case_id"]) == {f"{name}-{i:04d}" for i in range(n)}
    if name == "toy-lesions":  # labels alternate with the index; the split is stratified by them
        label = frame["case_id"].str[-4:].astype(int) % 2
        assert_stratified(frame, label, {"train": 0.6, "val": 0.15, "test": 0.25})


# --- the split-making helpers ----------------------------------------------------------------------


def test_stratified_split_is_deterministic_and_keeps_proportions():
    ids = [f"c{i:03d}" for i in range(200)]
    strata = ["a" if i < 150 else "b" for i in range(200)]
    fractions = {"train": 0.6, "val": 0.2, "test": 0.2}
    first = stratified_split(ids, strata, fractions, seed=3)
    again = stratified_split(list(reversed(ids)), list(reversed(strata)), fractions, seed=3)
    assert first == again  # input order does not matter
    assert first != stratified_split(ids, strata, fractions, seed=4)
    frame = split_frame(first)
    assert_stratified(frame, pd.Series(strata, index=frame.index), fractions)


def test_stratified_split_refuses_fractions_not_summing_to_one():
    with pytest.raises(ValueError, match="must sum to 1"):
        stratified_split(["a", "b"], ["x", "x"], {"train": 0.5, "test": 0.4}, seed=0)


def test_split_csv_bytes_is_sorted_unix_csv():
    frame = split_frame({"b": "test", "a": "train"}, {"a": "g1", "b": "g2"})
    assert split_csv_bytes(frame) == b"case_id,split,group\na,train,g1\nb,test,g2\n"
