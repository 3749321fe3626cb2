"""Nested, stratified, hashed training subsets (``--train-fraction``)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from medbench.data.subsets import check_fraction, draw, train_subset
from medbench.errors import MedbenchError
from medbench.tasks import get_task

SPEC = get_task("toy-lesions")  # binary: strata are the labels


def cases(n: int, positive_every: int = 4) -> tuple[pd.DataFrame, np.ndarray]:
    ids = [f"case{i:04d}" for i in range(n)]
    labels = np.array([1 if i % positive_every == 0 else 0 for i in range(n)])
    return pd.DataFrame({"case_id": ids}), labels


def test_smaller_subsets_are_inside_larger_ones():
    table, labels = cases(400)
    subsets = [set(train_subset(SPEC, table, labels, f).case_ids) for f in (0.1, 0.25, 0.5, 1.0)]
    for small, large in zip(subsets, subsets[1:], strict=False):
        assert small < large
    assert len(subsets[-1]) == 400


def test_each_class_keeps_its_share():
    table, labels = cases(1000, positive_every=5)  # 200 positives, 800 negatives
    for fraction in (0.1, 0.25, 0.33, 0.5):
        subset = train_subset(SPEC, table, labels, fraction)
        picked = labels[subset.indices]
        assert (picked == 1).sum() == int(np.floor(fraction * 200 + 0.5))
        assert (picked == 0).sum() == int(np.floor(fraction * 800 + 0.5))
        assert subset.strata == "label"


def test_a_rare_class_is_never_dropped():
    table, labels = cases(100, positive_every=50)  # 2 positives
    subset = train_subset(SPEC, table, labels, 0.1)
    assert (labels[subset.indices] == 1).sum() == 1


def test_the_subset_follows_the_case_ids_not_their_order():
    table, labels = cases(300)
    order = np.random.default_rng(0).permutation(300)
    a = train_subset(SPEC, table, labels, 0.25)
    b = train_subset(SPEC, table.iloc[order].reset_index(drop=True), labels[order], 0.25)
    assert set(a.case_ids) == set(b.case_ids) and a.sha256 == b.sha256
    c = train_subset(get_task("pneumoniamnist"), table, labels, 0.25)  # another task, other keys
    assert set(c.case_ids) != set(a.case_ids)


def test_draw_is_not_the_first_cases():
    table, _ = cases(200)
    picked = draw(SPEC, tuple(table["case_id"]), [0] * 200, 0.1)
    assert len(picked) == 20 and list(picked) != list(range(20))


@pytest.mark.parametrize("bad", [0, -0.5, 1.5, float("nan"), True, "0.5"])
def test_bad_fractions_are_refused(bad):
    with pytest.raises(MedbenchError, match="--train-fraction"):
        check_fraction(bad)
