"""The worst-cases PNG: outlines found at tile size, the worst cases chosen, NaN cases skipped;
which split it shows."""

from __future__ import annotations

import dataclasses
import io

import numpy as np
import pytest
from PIL import Image

from medbench.errors import MedbenchError
from medbench.gallery import N_WORST, TILE, boundaries, worst_cases_png, worst_indices
from medbench.runner import RunOptions, gallery_split
from medbench.tasks import get_task


def test_boundaries_of_a_label_map_by_hand():
    labels = np.array([[0, 0, 0, 0], [0, 1, 1, 0], [0, 1, 2, 2], [0, 0, 2, 2]])
    # object pixels touching another label (0 or the other object); the image edge does not count
    assert boundaries(labels).astype(int).tolist() == [
        [0, 0, 0, 0],
        [0, 1, 1, 0],
        [0, 1, 1, 1],
        [0, 0, 1, 0],
    ]
    assert not boundaries(np.zeros((5, 5), bool)).any()


def test_worst_cases_png_shows_the_worst_defined_cases_with_both_outlines():
    rng = np.random.default_rng(0)
    n = 6
    images = [rng.integers(0, 255, (1000, 800, 1), dtype=np.uint8) for _ in range(n)]
    truth = np.zeros((n, 1, 1000, 800), bool)
    truth[:, 0, 100:600, 100:500] = True
    pred = np.zeros_like(truth)
    pred[:, 0, 150:650, 120:520] = True
    scores = np.array([0.9, 0.1, np.nan, 0.5, 0.3, 0.2])
    png = worst_cases_png(
        images,
        truth,
        pred,
        scores,
        [f"c{i}" for i in range(n)],
        metric="dice",
        higher_is_better=True,
    )
    picture = np.asarray(Image.open(io.BytesIO(png)).convert("RGB"))
    # four tiles (not five: one case is undefined), the longer side scaled to TILE
    assert picture.shape[0] > TILE and N_WORST * TILE * 0.8 <= picture.shape[1] < 5 * TILE * 0.8
    colours = {tuple(c) for c in np.unique(picture.reshape(-1, 3), axis=0)}
    assert (255, 0, 255) in colours and (25, 230, 25) in colours  # prediction and truth outlines
    assert worst_cases_png(images, truth, pred, np.full(n, np.nan), list("abcdef"), metric="dice",
                           higher_is_better=True) is None  # fmt: skip


def test_worst_indices_skip_undefined_cases_and_follow_the_direction():
    scores = np.array([0.9, 0.1, np.nan, 0.5, 0.3, 0.2])
    assert worst_indices(scores, higher_is_better=True).tolist() == [1, 5, 4, 3]
    assert worst_indices(scores, higher_is_better=False).tolist() == [0, 3, 4, 5]  # HD95-like
    assert worst_indices(np.full(3, np.nan), higher_is_better=True).size == 0


def test_the_gallery_split_comes_from_the_run_then_the_task_then_test():
    spec = get_task("toy-anatomy")
    assert gallery_split(spec) == "test"  # no task option: test, as before
    hidden = dataclasses.replace(spec, options=(*spec.options, ("gallery_split", "val")))
    assert gallery_split(hidden) == "val"  # a hidden-label task can say so in its spec
    assert gallery_split(hidden, "test") == "test"  # --gallery-split wins
    assert hidden.check() == []
    wrong = dataclasses.replace(spec, options=(*spec.options, ("gallery_split", "train")))
    assert wrong.check() == ["option gallery_split must be 'val' or 'test'; got 'train'"]
    with pytest.raises(MedbenchError, match=r"^--gallery-split must be val or test; got 'train'$"):
        RunOptions(gallery_split="train")


def _tile_pixels(png: bytes) -> np.ndarray:
    """The first tile's pixels (below the 24 + 34 px of title and caption, right of the pad)."""
    picture = np.asarray(Image.open(io.BytesIO(png)).convert("RGB"))
    return picture[24 + 34 : 24 + 34 + TILE, 10 : 10 + TILE]


def test_a_data_set_whose_images_may_not_be_shared_gets_outlines_on_black():
    rng = np.random.default_rng(1)
    images = [rng.integers(60, 255, (64, 64, 1), dtype=np.uint8) for _ in range(2)]
    truth = np.zeros((2, 1, 64, 64), bool)
    truth[:, 0, 10:40, 10:40] = True
    pred = np.zeros_like(truth)
    pred[:, 0, 20:50, 20:50] = True
    args = (images, truth, pred, np.array([0.4, 0.6]), ["a", "b"])
    shown = _tile_pixels(worst_cases_png(*args, metric="dice", higher_is_better=True))
    hidden = _tile_pixels(
        worst_cases_png(*args, metric="dice", higher_is_better=True, show_images=False)
    )
    outline = (hidden != 0).any(axis=2)
    assert outline.any() and outline.mean() < 0.2  # the outlines, and nothing else
    assert (hidden[~outline] == 0).all()
    assert (shown[~outline] >= 50).all()  # with the image: its grey values everywhere else
    colours = {tuple(c) for c in np.unique(hidden.reshape(-1, 3), axis=0)}
    assert colours == {(0, 0, 0), (255, 0, 255), (25, 230, 25)}


def test_the_data_sets_that_forbid_redistribution_hide_their_images():
    from medbench.data.datasets import DATASETS

    for name in DATASETS.names():
        ds = DATASETS.get(name)
        forbidden = "redistribution prohibited" in ds.licence
        assert ds.images_redistributable is not forbidden, name
    assert DATASETS.get("jsrt-scr").images_redistributable is False


def test_the_caption_says_when_the_images_are_not_drawn():
    from types import SimpleNamespace

    from medbench.leaderboard.figures import gallery_caption

    def board(gallery):
        record = {"gallery": gallery}
        return SimpleNamespace(
            spec=get_task("jsrt-anatomy"), ranked=[SimpleNamespace(record=record)]
        )

    hidden = gallery_caption(board({"split": "test", "file": "x.png", "images": False}))
    assert "only the outlines on black" in hidden and hidden.endswith("images.*")
    shown = gallery_caption(board({"split": "test", "file": "x.png"}))
    assert "outlines on black" not in shown and "this figure shows test labels" in shown
