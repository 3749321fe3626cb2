"""Seeds in the leaderboard statistics (medbench.leaderboard.stats, board, export, figures).

An entry with one seed must be exactly what the board showed before seeds entered the
statistics: the pages, site, figures and numbers of single-seed boards are pinned by the golden
files under ``leaderboard_fixtures/single_seed`` (rendered by the code before the change; see
its README). An entry with several seeds shows its mean over seeds, and its CI, paired tests and
rank interval come from the two-level bootstrap (seeds, then cases). The constructed boards
below are ones where the seed spread must turn a clear single-run difference into a tie, and
ones where it must not.

Regenerate the single-seed golden files (only after a deliberate change of single-seed pages)::

    MEDBENCH_REGENERATE_GOLDEN=1 pytest tests/unit/test_leaderboard_seeds.py -k regenerate
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import os
import shutil
import subprocess
import sys
import warnings
from pathlib import Path

import matplotlib.image
import numpy as np
import pytest
from test_leaderboard import EXPECTED, FIXTURES, PNG_SIGNATURE, REGENERATE, RESULTS, render

from medbench import metrics as M
from medbench.errors import RecordError
from medbench.leaderboard import build_boards
from medbench.leaderboard.board import build_board
from medbench.leaderboard.entries import Entry, TaskRecords, run_tables
from medbench.leaderboard.export import board_data, render_csv
from medbench.leaderboard.figures import figure_seeds, figures_for
from medbench.leaderboard.markdown import render_markdown
from medbench.leaderboard.stats import (
    N_PAIRED,
    PairedTests,
    Runs,
    bootstrap_p_value,
    paired_p_value,
    pool_seeds,
    rank_intervals,
    resampled_means,
    resampled_values,
    seed_interval,
    seed_weights,
    statistic_for,
)
from medbench.tasks import get_task
from medbench.tasks.splits import load_split

SINGLE = FIXTURES / "single_seed"
# golden file -> where `medbench leaderboard --format all` writes it
SINGLE_PAGES = {
    "toy-lesions.md": "toy-lesions.md",
    "toy-lesions.html": "site/toy-lesions.html",
    "toy-anatomy.html": "site/toy-anatomy.html",
    "index.md": "README.md",
    "index.html": "site/index.html",
}
SINGLE_DATA = ("toy-lesions.csv", "toy-lesions.json", "toy-anatomy.csv", "toy-anatomy.json")


# --- one seed: the board as it was ---------------------------------------------------------------


def _single_seed_results(root: Path) -> Path:
    """The fixture records without resnet's seeds 1 and 2: every entry has one seed."""
    results = root / "results"
    shutil.copytree(RESULTS, results)
    for s in (1, 2):
        (results / "toy-lesions" / f"resnet.seed{s}.json").unlink()
    return results


@pytest.fixture(scope="module")
def single(tmp_path_factory):
    src = _single_seed_results(tmp_path_factory.mktemp("src"))
    out, files = render(tmp_path_factory.mktemp("repo"), fmt="all", results=src)
    return out, files


def regenerate_single_seed() -> None:
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        src = _single_seed_results(Path(tmp) / "src")
        out, _ = render(Path(tmp) / "repo", fmt="all", results=src)
        for golden, written in SINGLE_PAGES.items():
            shutil.copy(out / written, SINGLE / golden)
        for name in SINGLE_DATA:
            shutil.copy(out / name, SINGLE / name)
        figures = {p.name: _sha256(p) for p in sorted((out / "figures").glob("*.png"))}
        (SINGLE / "figures.sha256.json").write_text(json.dumps(figures, indent=2) + "\n")


@pytest.mark.skipif(
    not REGENERATE, reason="set MEDBENCH_REGENERATE_GOLDEN=1 to rewrite the golden files"
)
def test_regenerate_single_seed_golden_files():
    regenerate_single_seed()
    assert (SINGLE / "toy-lesions.md").is_file()


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_single_seed_pages_and_site_are_byte_for_byte_those_before_seeds(single):
    out, _ = single
    for golden, written in SINGLE_PAGES.items():
        assert (out / written).read_bytes() == (SINGLE / golden).read_bytes(), golden
    assert (out / "toy-anatomy.md").read_bytes() == (EXPECTED / "toy-anatomy.md").read_bytes()
    page = (out / "toy-lesions.md").read_text(encoding="utf-8")
    assert "Seeds in the statistics" not in page and "two-level" not in page


def test_single_seed_figures_are_the_same_bytes_and_there_is_no_seeds_figure(single):
    out, _ = single
    expected = json.loads((SINGLE / "figures.sha256.json").read_text())
    found = {p.name: _sha256(p) for p in sorted((out / "figures").glob("*.png"))}
    assert found == expected
    assert not any("seeds" in name for name in found)


def _leaves(value, path=()):
    """Every (path, leaf value) of a JSON document."""
    if isinstance(value, dict):
        for k, v in value.items():
            yield from _leaves(v, (*path, k))
    elif isinstance(value, list) and any(isinstance(v, dict | list) for v in value):
        for i, v in enumerate(value):
            yield from _leaves(v, (*path, i))
    else:
        yield path, value


def _at(doc, path):
    for key in path:
        doc = doc[key]
    return doc


@pytest.mark.parametrize("task", ["toy-lesions", "toy-anatomy"])
def test_single_seed_csv_and_json_keep_every_number_they_had(single, task):
    # New columns and fields may appear; every old one keeps its value, digit for digit.
    out, _ = single
    old = json.loads((SINGLE / f"{task}.json").read_text())
    new = json.loads((out / f"{task}.json").read_text())
    for path, value in _leaves(old):
        assert _at(new, path) == value, path
    assert new["seed_statistics"]["two_level"] is False
    old_rows = list(csv.DictReader(io.StringIO((SINGLE / f"{task}.csv").read_text())))
    new_rows = list(csv.DictReader(io.StringIO((out / f"{task}.csv").read_text())))
    assert len(new_rows) == len(old_rows)
    for a, b in zip(old_rows, new_rows, strict=True):
        assert {k: b[k] for k in a} == a


# --- the seed draws ------------------------------------------------------------------------------


def _runs(k: int, key: str = "entry") -> Runs:
    return Runs(tuple({"dice": np.zeros(3)} for _ in range(k)), key)


def test_seed_weights_are_shares_of_k_draws_with_replacement():
    w = seed_weights(_runs(3), 500)
    assert w.shape == (500, 3)
    assert np.allclose(w.sum(axis=1), 1.0)
    assert np.allclose(w * 3, np.round(w * 3))  # each seed drawn 0..3 times of 3
    # every seed is drawn, and resamples that leave a seed out occur (with replacement)
    assert (w > 0).any(axis=0).all() and (w == 0).any()
    assert seed_weights(_runs(1), 500) is None  # one seed: nothing to draw


def test_seed_weights_are_deterministic_per_entry_and_a_prefix_of_longer_runs():
    long, short = seed_weights(_runs(3), 5040), seed_weights(_runs(3), 1000)
    assert np.array_equal(long[:1000], short)  # the rank interval's rows are the test's
    assert np.array_equal(seed_weights(_runs(3), 1000), short)
    other = seed_weights(_runs(3, key="another entry"), 1000)
    assert not np.array_equal(other, short)  # each entry draws its own seeds


def test_pool_seeds_is_the_mean_over_the_drawn_seeds():
    per_seed = np.array([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0], [1.0, np.nan, 3.0], [1.0, np.nan, 3.0]])
    weights = np.array([[1, 1, 1], [2, 0, 1], [2, 0, 1], [1, 1, 1]]) / 3
    pooled = pool_seeds(per_seed, weights)
    assert pooled[:3] == pytest.approx([2.0, (2 * 4 + 6) / 3, (2 * 1 + 3) / 3])
    assert np.isnan(pooled[3])  # a drawn seed undefined on the resample: undefined
    assert np.array_equal(pool_seeds(per_seed[:, :1], None), per_seed[:, 0])


# --- one seed through the new code: the same numbers ---------------------------------------------

RNG = np.random.default_rng(2024)
N = 90


def _dice(values) -> dict[str, np.ndarray]:
    return {"dice": np.asarray(values, float)}


def _binary(y, s) -> dict[str, np.ndarray]:
    return {"y_true": np.asarray(y), "y_score": np.asarray(s, float)}


@pytest.fixture(scope="module")
def dice_stat():
    return statistic_for(get_task("toy-anatomy"))


@pytest.fixture(scope="module")
def auc_stat():
    return statistic_for(get_task("toy-lesions"))


def test_one_seed_runs_give_the_plain_tables_numbers(dice_stat, auc_stat):
    y = np.arange(N) % 2
    for stat, tables in (
        (dice_stat, [_dice(RNG.uniform(0.5, 0.9, N)) for _ in range(3)]),
        (auc_stat, [_binary(y, (1 + k) * y + RNG.normal(0, 1, N)) for k in range(3)]),
    ):
        runs = [Runs((t,), f"e{i}") for i, t in enumerate(tables)]
        plain, seeded = PairedTests(stat, tables), PairedTests(stat, runs)
        assert [plain(0, j) for j in (1, 2)] == [seeded(0, j) for j in (1, 2)]
        a, b = (
            rank_intervals(stat, tables, n_resamples=200),
            rank_intervals(stat, runs, n_resamples=200),
        )
        assert np.array_equal(a.samples, b.samples)


def test_rank_intervals_of_a_mean_are_metrics_rank_intervals_to_the_bit(dice_stat):
    cols = [RNG.uniform(0.4, 0.9, N) for _ in range(5)]
    cols[1][[4, 9]] = np.nan  # undefined cases: nan-means, as metrics.rank_intervals takes
    cols[3] = cols[2] + 1e-9
    low, high, samples = M.rank_intervals(np.stack(cols, axis=1), n_resamples=300)
    ri = rank_intervals(dice_stat, [_dice(c) for c in cols], n_resamples=300)
    assert np.array_equal(ri.samples, samples)
    assert ri.low == tuple(low) and ri.high == tuple(high)


def test_single_seed_auc_pairs_keep_delong_also_beside_a_several_seed_entry(auc_stat):
    y = np.arange(N) % 2
    seeds = Runs(tuple(_binary(y, 2 * y + RNG.normal(0, 1, N)) for _ in range(3)), "several")
    c, d = (_binary(y, k * y + RNG.normal(0, 1, N)) for k in (1.5, 1.0))
    tests = PairedTests(auc_stat, [seeds, c, d])
    assert tests(1, 2) == M.delong_test(y, c["y_score"], d["y_score"])
    expected = bootstrap_p_value(tests.resampled[:, 0] - tests.resampled[:, 1])
    assert tests(0, 1) == (1.0 if np.isnan(expected) else expected)


def test_identical_seeds_give_the_one_level_bootstrap(dice_stat):
    # With every seed the same run, the seed level has no spread: the two-level interval is the
    # percentile bootstrap of the cases (metrics.bootstrap_ci draws the same resamples).
    values = RNG.uniform(0.5, 0.95, N)
    copies = Runs(tuple(_dice(values.copy()) for _ in range(3)), "copies")
    low, high = seed_interval(dice_stat, copies)
    assert (low, high) == pytest.approx(M.bootstrap_ci(values, n_resamples=N_PAIRED), abs=1e-12)


def test_seed_spread_widens_the_interval(dice_stat):
    values = RNG.uniform(0.5, 0.95, N)
    spread = Runs(tuple(_dice(values + d) for d in (-0.04, 0.0, 0.04)), "spread")
    low, high = seed_interval(dice_stat, spread)
    one_low, one_high = M.bootstrap_ci(values, n_resamples=N_PAIRED)
    assert high - low > 1.5 * (one_high - one_low)
    assert low < values.mean() < high


# --- constructed boards: seeds that must and must not make a tie ---------------------------------


def _record(spec, name, seed, per_case, value):
    return {
        "status": "ok",
        "seed": seed,
        "submission": {"name": name, "path": f"submissions/{name}", "content_sha256": name},
        "task": {"name": spec.name, "n_test": len(per_case["case_id"])},
        "metrics": {spec.primary_metric: {"value": value, "ci_low": None, "ci_high": None}},
        "per_class": {},
        "operating_points": {},
        "per_case": per_case,
    }


def _test_ids(spec) -> list[str]:
    split = load_split(spec)
    return split.loc[split["split"] == "test", "case_id"].tolist()


def _dice_board(offsets: dict[str, tuple[float, ...]], *, noise: float, seeds: int | None = None):
    """toy-anatomy entries whose seed ``s`` scores ``base + offsets[name][s]`` (+ noise) per case;
    ``seeds``: keep only the first ``seeds`` runs of each entry."""
    spec = get_task("toy-anatomy")
    ids = _test_ids(spec)
    rng = np.random.default_rng(11)
    base = rng.uniform(0.6, 0.9, len(ids))
    entries = []
    for name, shifts in offsets.items():
        records = []
        for seed, shift in enumerate(shifts[:seeds]):
            dice = np.clip(base + shift + rng.normal(0, noise, len(ids)), 0, 1)
            per_case = {"case_id": ids, "dice": dice.tolist()}
            records.append(_record(spec, name, seed, per_case, float(np.mean(dice))))
        files = tuple(Path(f"{name}.seed{r['seed']}.json") for r in records)
        entries.append(Entry(name, tuple(records), files))
    return build_board(TaskRecords(spec, tuple(entries), (), ()))


def _auc_board(signals: dict[str, tuple[float, ...]], *, seeds: int | None = None):
    """toy-lesions entries whose seed ``s`` scores ``signals[name][s] * y + N(0, 1)``."""
    spec = get_task("toy-lesions")
    ids = _test_ids(spec)
    y = (np.arange(len(ids)) % 2).astype(np.int64)
    rng = np.random.default_rng(5)
    entries = []
    for name, strengths in signals.items():
        records = []
        for seed, signal in enumerate(strengths[:seeds]):
            s = 1 / (1 + np.exp(-(signal * y + rng.normal(0, 1, y.size))))
            per_case = {"case_id": ids, "y_true": y.tolist(), "y_score": s.tolist()}
            records.append(_record(spec, name, seed, per_case, M.roc_auc(y, s)))
        files = tuple(Path(f"{name}.seed{r['seed']}.json") for r in records)
        entries.append(Entry(name, tuple(records), files))
    return build_board(TaskRecords(spec, tuple(entries), (), ()))


def _ranks(board) -> dict[str, str]:
    return {r.entry.name: r.rank_label for r in board.rows}


def _p(board, name) -> float:
    return next(r.p_holm for r in board.rows if r.entry.name == name)


# seed 0 of "a" is 0.03 above seed 0 of "b" on every case, but their seeds overlap widely
OVERLAP = {"a": (0.03, -0.03, 0.0), "b": (0.0, 0.03, -0.03)}
# tightly clustered seeds, a large gap
CLUSTERED = {"a": (0.05, 0.051, 0.049), "b": (0.0, 0.001, -0.001)}


def test_overlapping_seeds_turn_a_clear_single_run_difference_into_a_tie():
    seed0 = _dice_board(OVERLAP, noise=0.01, seeds=1)
    assert _ranks(seed0) == {"a": "1", "b": "2"} and _p(seed0, "b") < 0.01
    board = _dice_board(OVERLAP, noise=0.01)
    assert _ranks(board) == {"a": "1=", "b": "1="}
    assert _p(board, "b") > 0.2
    assert board.multi_seed and "two levels" in board.paired_test
    a = next(r for r in board.rows if r.entry.name == "a")
    one = next(r for r in seed0.rows if r.entry.name == "a")
    assert a.summary.value == pytest.approx(np.mean(a.entry.seed_values("dice")))
    assert a.summary.value != one.summary.value  # the mean over seeds, not seed 0
    assert a.rank_low == 1 and a.rank_high == 2  # the rank interval spans both ranks


def test_clustered_seeds_and_a_large_gap_stay_apart():
    for seeds in (1, None):
        board = _dice_board(CLUSTERED, noise=0.01, seeds=seeds)
        assert _ranks(board) == {"a": "1", "b": "2"}, seeds
        assert _p(board, "b") < 0.001
    a, b = board.rows
    assert b.summary.value < a.summary.ci_low  # b's mean lies outside a's two-level CI
    assert (a.rank_low, a.rank_high, b.rank_low, b.rank_high) == (1, 1, 2, 2)


def test_auc_seeds_that_overlap_make_a_tie_that_delong_on_seed_0_did_not():
    signals = {"a": (2.6, 0.9, 1.75), "b": (1.0, 2.5, 1.6)}
    seed0 = _auc_board(signals, seeds=1)
    assert _ranks(seed0) == {"a": "1", "b": "2"}
    assert "DeLong" in seed0.paired_test and not seed0.multi_seed
    board = _auc_board(signals)
    assert _ranks(board) == {"a": "1=", "b": "1="}
    assert "two-level paired bootstrap" in board.paired_test
    # the pair has several seeds each: its p-value is the bootstrap's, not DeLong's on seed 0
    p = next(r.p_raw for r in board.rows if r.entry.name == "b")
    tests = PairedTests(board.statistic, board.runs)
    assert p == bootstrap_p_value(tests.resampled[:, 0] - tests.resampled[:, 1]) > 0.05


def test_auc_seeds_clustered_far_apart_stay_apart():
    board = _auc_board({"a": (3.0, 3.05, 2.95), "b": (0.8, 0.85, 0.75)})
    assert _ranks(board) == {"a": "1", "b": "2"} and _p(board, "b") < 0.001


def test_the_ci_of_a_several_seed_entry_is_its_two_level_interval():
    # The board reuses its tests' resamples (AUC) or computes the interval (Dice): the same
    # numbers as seed_interval on the entry's own runs.
    for board in (_auc_board({"a": (2.0, 1.8, 2.2), "b": (1.0, 1.1, 0.9)}),
                  _dice_board(OVERLAP, noise=0.01)):  # fmt: skip
        for i, entry in enumerate(board.ranked):
            _, tables = run_tables([entry])
            expected = seed_interval(board.statistic, Runs(tables[0], entry.name))
            shown = board.summary(i)
            assert (shown.ci_low, shown.ci_high) == pytest.approx(expected, abs=1e-12)
            assert shown.method.startswith("two-level bootstrap")


def test_seeds_are_aligned_on_the_cases_common_to_every_run():
    spec = get_task("toy-anatomy")
    board = _dice_board(OVERLAP, noise=0.01)
    a = board.ranked[0]
    short = dict(a.records[1])
    short["per_case"] = {k: v[1:] for k, v in short["per_case"].items()}  # one case fewer
    short["metrics"] = {"dice": {"value": float(np.mean(short["per_case"]["dice"]))}}
    entry = Entry(a.name, (a.records[0], short, a.records[2]), a.files)
    board = build_board(TaskRecords(spec, (entry, board.ranked[1]), (), ()))
    assert board.n_common == len(_test_ids(spec)) - 1
    assert all(len(t["dice"]) == board.n_common for r in board.runs for t in r.tables)


def test_seeds_that_disagree_on_the_truth_are_refused_by_name():
    spec = get_task("toy-lesions")
    board = _auc_board({"a": (2.0, 1.8)})
    a = board.ranked[0]
    other = dict(a.records[1])
    other["per_case"] = dict(other["per_case"], y_true=[1 - v for v in other["per_case"]["y_true"]])
    with pytest.raises(RecordError, match=r"'a \(seed 0\)' and 'a \(seed 1\)' disagree"):
        run_tables([Entry("a", (a.records[0], other), a.files)])
    assert spec.name == "toy-lesions"


def test_paired_p_value_of_two_several_seed_entries_is_symmetric(dice_stat):
    values = RNG.uniform(0.5, 0.9, N)
    a = Runs(tuple(_dice(values + d) for d in (0.01, 0.0, 0.02)), "a")
    b = Runs(tuple(_dice(values + d) for d in (0.0, -0.01, 0.01)), "b")
    assert paired_p_value(dice_stat, a, b) == paired_p_value(dice_stat, b, a)


# --- the fixture board with several seeds: pages, exports, the figure ----------------------------


@pytest.fixture(scope="module")
def lesions():
    return next(b for b in build_boards(RESULTS) if b.spec.name == "toy-lesions")


def test_exports_carry_the_seed_numbers_and_the_interval_method(lesions):
    data = board_data(lesions)
    resnet = next(e for e in data["entries"] if e["submission"] == "resnet")
    cnn = next(e for e in data["entries"] if e["submission"] == "cnn")
    assert resnet["value"] == resnet["seed_mean"] and len(resnet["seed_values"]) == 3
    assert resnet["seed_mean"] == pytest.approx(np.mean(resnet["seed_values"]), abs=1e-6)
    assert resnet["ci_method"].startswith("two-level bootstrap")
    assert cnn["ci_method"] == "DeLong 95 % CI" and cnn["seed_sd"] is None
    block = data["seed_statistics"]
    assert block["two_level"] is True and any("Owen 2007" in r for r in block["references"])
    rows = {r["submission"]: r for r in csv.DictReader(io.StringIO(render_csv(lesions)))}
    assert rows["resnet"]["auc_seed_values"].split() == [repr(v) for v in resnet["seed_values"]]
    assert rows["resnet"]["auc_ci_method"] == resnet["ci_method"]
    assert float(rows["resnet"]["auc"]) == resnet["seed_mean"]


def test_the_page_shows_the_pooled_value_and_describes_the_method(lesions, tmp_path):
    page = render_markdown(lesions, tmp_path, [tmp_path / "figures" / "toy-lesions-seeds.png"])
    data = board_data(lesions)
    resnet = next(e for e in data["entries"] if e["submission"] == "resnet")
    cell = f"**{resnet['value']:.3f} [{resnet['ci_low']:.3f}, {resnet['ci_high']:.3f}]**"
    assert cell in page
    for phrase in (
        "Seeds in the statistics",
        "first draws the entry's seeds with replacement",
        "pigeonhole bootstrap (Owen 2007",
        "Davison & Hinkley 1997, §3.8",
        "Bouthillier et al. (2021",
        "two entries with one seed each keep DeLong's test",
        "mean over its seeds",
        "![Seeds](figures/toy-lesions-seeds.png)",
    ):
        assert phrase in page, phrase


def test_the_seeds_figure_is_a_valid_png_of_every_seed(lesions, tmp_path):
    png = figures_for(lesions)["seeds"]
    assert png.startswith(PNG_SIGNATURE) and b"Software" not in png[:200]
    width, height = int.from_bytes(png[16:20], "big"), int.from_bytes(png[20:24], "big")
    assert (width, height) == (600, 480)
    (tmp_path / "seeds.png").write_bytes(png)
    pixels = matplotlib.image.imread(tmp_path / "seeds.png")
    assert pixels.shape[:2] == (480, 600) and pixels.std() > 0.05  # decodes, and is not blank
    assert figure_seeds(lesions) == png  # twice: the same bytes


def test_numbers_and_figure_are_the_same_in_a_fresh_process(lesions):
    # Another interpreter (another hash seed, fresh numpy and matplotlib state), the same
    # medbench: the board's numbers and the seeds figure must be the same bytes.
    code = (
        "import hashlib, json, sys; from pathlib import Path; "
        "from medbench.leaderboard import build_boards; "
        "from medbench.leaderboard.export import board_data; "
        "from medbench.leaderboard.figures import figure_seeds; "
        "b = next(b for b in build_boards(Path(sys.argv[1])) if b.spec.name == 'toy-lesions'); "
        "print(json.dumps([board_data(b), hashlib.sha256(figure_seeds(b)).hexdigest()]))"
    )
    env = {**os.environ, "PYTHONHASHSEED": "321"}
    done = subprocess.run(
        [sys.executable, "-c", code, str(RESULTS)],
        check=True,
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    data, digest = json.loads(done.stdout)
    assert data == json.loads(json.dumps(board_data(lesions)))
    assert digest == hashlib.sha256(figure_seeds(lesions)).hexdigest()


def test_resampled_values_pool_each_entrys_seeds_on_shared_cases(dice_stat):
    # The same resampled cases for every seed of every entry: pooling one entry's per-seed
    # values by hand equals resampled_values.
    values = RNG.uniform(0.5, 0.9, N)
    runs = Runs(tuple(_dice(values + d) for d in (0.0, 0.02, -0.01)), "hand")
    flat = resampled_values(dice_stat, list(runs.tables), n_resamples=300)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        pooled = resampled_values(dice_stat, [runs], n_resamples=300)[:, 0]
    by_hand = (seed_weights(runs, 300) * flat).sum(axis=1)
    assert pooled == pytest.approx(by_hand, abs=1e-12)


def test_resampled_means_by_counts_are_the_gathered_nan_means():
    # The matrix-product form serves several-seed entries; it must be the same means as the
    # gathered np.nanmean (the exact form of single-seed boards), NaN where nothing is defined.
    values = RNG.uniform(0.2, 0.9, (40, 4))
    values[[1, 5, 6], 0] = np.nan
    values[:, 3] = np.nan
    values[7, 3] = 0.5  # one defined case: most resamples miss it
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        exact = resampled_means(values, n_resamples=500, exact=True)
    fast = resampled_means(values, n_resamples=500, exact=False)
    assert np.array_equal(np.isnan(exact), np.isnan(fast)) and np.isnan(fast[:, 3]).any()
    assert np.allclose(exact, fast, rtol=0, atol=1e-12, equal_nan=True)
