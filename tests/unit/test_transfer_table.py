"""The transfer-learning table (Lakhani & Sundaram 2017's layout), rendered from records alone."""

from __future__ import annotations

import numpy as np
from test_leaderboard import GPU, _cases, _record  # the records the leaderboard tests make

from medbench import metrics as M
from medbench.leaderboard import build_boards
from medbench.leaderboard.markdown import render_markdown
from medbench.leaderboard.transfer import transfer_table
from medbench.results import write_record
from medbench.scoring import score
from medbench.tasks import get_task

SETTINGS = {  # entry -> (backbone, pretrained, aug, signal strength)
    "cnn": ("efficientnet_lite0", True, "base", 2.0),
    "cnn+lakhani": ("efficientnet_lite0", True, "lakhani", 1.8),
    "cnn+scratch": ("efficientnet_lite0", False, "base", 0.6),
    "cnn+resnet": ("resnet18", False, "base", 0.5),
}


def _records(tmp_path):
    spec = get_task("toy-lesions")
    rng = np.random.default_rng(7)
    test = _cases(spec, "test")
    y = rng.permutation(np.arange(len(test)) % 2)
    folder = tmp_path / "results" / spec.name
    scores = {}
    for name, (backbone, pretrained, aug, strength) in SETTINGS.items():
        s = 1 / (1 + np.exp(-(y * strength + rng.normal(0, 1, y.size))))
        scores[name] = s
        report = score(spec, s, y, test, n_resamples=20)
        record = _record(
            spec, name, "a cnn", "v1", 0, GPU, 10.0, "2026-12-01T00:00:00Z", report=report
        )
        record["train"] = {"backbone": backbone, "pretrained": pretrained, "aug": aug}
        write_record(folder / f"{name}.seed0.json", record)
    return tmp_path / "results", y, scores


def test_the_table_has_every_setting_and_the_ensemble_of_the_pretrained_runs(tmp_path):
    results, y, scores = _records(tmp_path)
    (board,) = build_boards(results)
    table = transfer_table(board)
    lite, resnet = table["rows"]["efficientnet_lite0"], table["rows"]["resnet18"]
    assert lite["pretrained · base"].entry == "cnn"
    assert lite["pretrained · lakhani"].entry == "cnn+lakhani"
    assert lite["untrained · base"].entry == "cnn+scratch"
    assert lite["untrained · lakhani"] is None and resnet["untrained · base"].entry == "cnn+resnet"
    assert lite["pretrained · base"].value == M.roc_auc(y, scores["cnn"])
    # The ensemble: the mean of the two pretrained runs' scores, case by case.
    expected = M.roc_auc(y, (scores["cnn"] + scores["cnn+lakhani"]) / 2)
    assert table["ensemble"].value == expected
    assert table["ensemble"].entry == "cnn + cnn+lakhani"


def test_the_page_shows_the_table(tmp_path):
    results, _, _ = _records(tmp_path)
    (board,) = build_boards(results)
    page = render_markdown(board, tmp_path, [])
    assert "## Transfer learning (Lakhani & Sundaram 2017)" in page
    assert "| efficientnet_lite0 |" in page and "| resnet18 |" in page
    assert "Ensemble of the pretrained runs" in page and "the paper's: 0.990" in page


def test_no_table_without_such_runs(tmp_path):
    results, _, _ = _records(tmp_path)
    for path in results.rglob("cnn+*.json"):
        path.unlink()
    (board,) = build_boards(results)
    assert transfer_table(board) is None


def test_tta_and_heads_variants_are_not_cells():
    from medbench.leaderboard.transfer import _setting

    base = {"backbone": "efficientnet_lite0", "pretrained": True, "aug": "base"}
    assert _setting({"train": base}) == ("efficientnet_lite0", "pretrained", "base")
    assert _setting({"train": {**base, "tta": "none"}}) is not None
    assert _setting({"train": {**base, "tta": "hflip"}}) is None
    assert _setting({"train": {**base, "heads": "cumulative"}}) is None
