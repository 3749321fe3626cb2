"""medbench.leaderboard end to end: fixture records -> pages, figures, CSV and JSON.

The fixture records under ``leaderboard_fixtures/results`` are synthetic but scored by
:func:`medbench.scoring.score`, like a real run. The expected pages under
``leaderboard_fixtures/expected`` are golden files. Regenerate both (after a deliberate change)
with::

    MEDBENCH_REGENERATE_GOLDEN=1 pytest tests/unit/test_leaderboard.py -k regenerate
"""

from __future__ import annotations

import contextlib
import csv
import hashlib
import io
import json
import os
import re
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from medbench.errors import MedbenchError, RecordError
from medbench.leaderboard import build_boards, publish
from medbench.leaderboard.entries import load_task_records, select
from medbench.leaderboard.markdown import GENERATED
from medbench.leaderboard.stats import statistic_for
from medbench.results import canonical_json, read_record, record_path, write_record
from medbench.scoring import score
from medbench.tasks import get_task
from medbench.tasks.splits import load_split

FIXTURES = Path(__file__).parent / "leaderboard_fixtures"
RESULTS = FIXTURES / "results"
EXPECTED = FIXTURES / "expected"
REGENERATE = os.environ.get("MEDBENCH_REGENERATE_GOLDEN") == "1"
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
PAGES = ("README.md", "toy-anatomy.md", "toy-lesions.md")

# --- fixture records -----------------------------------------------------------------------------

ENVIRONMENT = {
    "medbench": "0.1.0",
    "python": "3.11.7",
    "numpy": "2.1.3",
    "torch": "2.5.1",
    "platform": "Linux-6.8-x86_64-with-glibc2.39",
    "git_commit": "0123456789abcdef0123456789abcdef01234567",
}
GPU = ("cuda", "NVIDIA H100 80GB HBM3")


def _record(
    spec,
    name,
    summary,
    version,
    seed,
    device,
    fit_s,
    created,
    report=None,
    error=None,
    task_version=None,
):
    """A record shaped exactly like ``runner._base_record`` + ``runner._finish`` make it."""
    digest = hashlib.sha256(f"{name}:{version}".encode()).hexdigest()
    record = {
        "schema": "medbench.result/1",
        "status": "ok" if error is None else "failed",
        "error": None if error is None else {"message": error, "log_tail": error.splitlines()[-1]},
        "task": {
            "name": spec.name,
            "version": task_version or spec.version,
            "kind": spec.kind,
            "split_sha256": spec.split_sha256,
            "data_sha256": hashlib.sha256(spec.name.encode()).hexdigest(),
            "data_source": {"dataset": spec.dataset, "layout": "generated"},
            "n_test": int((load_split(spec)["split"] == "test").sum()),
        },
        "submission": {
            "name": name,
            "summary": summary,
            "path": f"submissions/{name}",
            "content_sha256": digest,
        },
        "seed": seed,
        "device": device[0],
        "train": {"epochs": 20, "batch_size": 32},
        "primary_metric": spec.primary_metric,
        "higher_is_better": spec.primary.higher_is_better,
        "metrics": {},
        "per_class": {},
        "operating_points": {},
        "per_case": {},
    }
    if report is not None:
        data = report.to_dict()
        record.update(
            metrics=data["summary"],
            per_class=data["per_class"],
            operating_points=data["operating_points"],
            per_case=data["per_case"],
        )
    record["timings"] = {
        "prepare_s": 0.412,
        "fit_s": fit_s,
        "predict_s": 0.731,
        "score_s": 0.52,
        "total_s": round(fit_s + 1.663, 3),
    }
    record["device_name"] = device[1]
    record["peak_gpu_memory_mb"] = 1843.0 if device[0] == "cuda" else None
    record["environment"] = ENVIRONMENT
    record["created"] = created
    return record


def _cases(spec, split):
    frame = load_split(spec)
    return frame[frame["split"] == split][["case_id"]].reset_index(drop=True)


def _sigmoid(z):
    return 1 / (1 + np.exp(-z))


def _lesion_records():
    """toy-lesions: cnn and resnet (3 seeds) nearly equal, logreg clearly worse, broken fails;
    an older content of cnn (superseded) and a record of an old task version (excluded)."""
    spec = get_task("toy-lesions")
    rng = np.random.default_rng(20240611)
    test, val = _cases(spec, "test"), _cases(spec, "val")
    y, yv = rng.permutation(np.arange(len(test)) % 2), rng.permutation(np.arange(len(val)) % 2)
    base, base_v = y * 1.7 + rng.normal(0, 1, y.size), yv * 1.7 + rng.normal(0, 1, yv.size)

    def run(latent, latent_v):
        return score(
            spec, _sigmoid(1.4 * latent - 1.2), y, test, val=(yv, _sigmoid(1.4 * latent_v - 1.2))
        )

    def noisy(sd):
        return base + rng.normal(0, sd, y.size), base_v + rng.normal(0, sd, yv.size)

    out = [
        _record(
            spec,
            "cnn",
            "small CNN, 4 conv blocks, from scratch",
            2,
            0,
            GPU,
            41.27,
            "2024-06-11T10:00:00Z",
            run(*noisy(0.25)),
        )
    ]
    out.append(
        _record(
            spec,
            "cnn",
            "small CNN, 4 conv blocks, from scratch",
            1,
            1,
            GPU,
            39.8,
            "2024-06-10T09:00:00Z",
            run(y * 4.0, yv * 4.0),
        )
    )  # older content: superseded
    for seed, fit in zip((0, 1, 2), (288.4, 291.0, 286.9), strict=True):
        out.append(
            _record(
                spec,
                "resnet",
                "ResNet-18, ImageNet weights, fine-tuned",
                1,
                seed,
                GPU,
                fit,
                f"2024-06-11T1{seed + 1}:00:00Z",
                run(*noisy(0.3)),
            )
        )
    weak = (y * 0.6 + rng.normal(0, 1, y.size), yv * 0.6 + rng.normal(0, 1, yv.size))
    out.append(
        _record(
            spec,
            "logreg",
            "logistic regression on pixel intensities",
            1,
            0,
            ("cpu", "cpu"),
            3.52,
            "2024-06-11T09:00:00Z",
            run(*weak),
        )
    )
    out.append(
        _record(
            spec,
            "broken",
            "a submission whose model does not fit in memory",
            1,
            0,
            GPU,
            0.0,
            "2024-06-11T14:00:00Z",
            error="RuntimeError: CUDA out of memory. Tried to allocate 2.00 GiB\nTraceback (most "
            'recent call last):\n  File "model.py", line 12',
        )
    )
    out.append(
        _record(
            spec,
            "oldnet",
            "a net scored on another version of the task",
            1,
            0,
            GPU,
            12.0,
            "2024-05-01T09:00:00Z",
            run(*noisy(0.2)),
            task_version=spec.version + 1,
        )
    )
    return spec, out


def _anatomy_truth(rng, n, size=64):
    yy, xx = np.mgrid[:size, :size]
    truth = np.zeros((n, 3, size, size), bool)
    for i in range(n):
        cy, cx, r = rng.uniform(22, 42), rng.uniform(22, 42), rng.uniform(9, 15)
        truth[i, 0] = (yy - cy) ** 2 + (xx - cx) ** 2 <= r * r
        y0, x0 = rng.integers(8, 48), rng.integers(4, 20)
        truth[i, 1, y0 : y0 + rng.integers(5, 9), x0 : x0 + rng.integers(25, 40)] = True
        for _ in range(rng.integers(0, 4)):  # some images have no spots: an empty reference
            sy, sx = rng.uniform(5, size - 5, 2)
            truth[i, 2] |= (yy - sy) ** 2 + (xx - sx) ** 2 <= rng.uniform(2, 4) ** 2
    return truth


def _anatomy_prediction(truth, rng, shift, miss_spots=0.0):
    pred = np.empty_like(truth)
    for i in range(truth.shape[0]):
        for c in range(truth.shape[1]):
            dy, dx = rng.integers(-shift, shift + 1, 2)
            pred[i, c] = np.roll(truth[i, c], (dy, dx), axis=(0, 1))
        if rng.random() < miss_spots:
            pred[i, 2] = False
    return pred


def _anatomy_records():
    """toy-anatomy: unet and unet-lite similar, otsu clearly worse."""
    spec = get_task("toy-anatomy")
    rng = np.random.default_rng(7)
    test = _cases(spec, "test")
    truth = _anatomy_truth(rng, len(test))
    subs = [
        ("unet", "U-Net (Ronneberger et al. 2015), BCE + Dice", 1, 95.3, "2024-06-12T08:00:00Z"),
        ("unet-lite", "U-Net with half the channels", 1, 51.6, "2024-06-12T09:00:00Z"),
        ("otsu", "Otsu threshold + morphology, no learning", 1, 0.84, "2024-06-12T07:00:00Z"),
    ]
    out = []
    for name, summary, shift, fit, created in subs:
        pred = _anatomy_prediction(
            truth, rng, 3 if name == "otsu" else shift, 0.6 if name == "otsu" else 0.05
        )
        device = ("cpu", "cpu") if name == "otsu" else GPU
        out.append(
            _record(spec, name, summary, 1, 0, device, fit, created, score(spec, pred, truth, test))
        )
    return spec, out


def regenerate_fixtures() -> None:
    """Rewrite the fixture records and the golden pages (run with MEDBENCH_REGENERATE_GOLDEN=1)."""
    shutil.rmtree(RESULTS, ignore_errors=True)
    for spec, records in (_lesion_records(), _anatomy_records()):
        for rec in records:
            write_record(
                record_path(RESULTS, spec.name, rec["submission"]["name"], rec["seed"]), rec
            )
    # the superseded cnn record would collide with cnn.seed1 only if cnn had a seed 1 of its newest content
    shutil.rmtree(EXPECTED, ignore_errors=True)
    EXPECTED.mkdir(parents=True)
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        out, _ = render(Path(tmp))
        for page in PAGES:
            shutil.copy(out / page, EXPECTED / page)


@pytest.mark.skipif(
    not REGENERATE, reason="set MEDBENCH_REGENERATE_GOLDEN=1 to rewrite the golden files"
)
def test_regenerate_golden_files():
    regenerate_fixtures()
    assert sorted(p.name for p in EXPECTED.iterdir()) == sorted(PAGES)


# --- rendering helpers ---------------------------------------------------------------------------


def render(
    root: Path, fmt: str = "markdown", results: Path = RESULTS, **kwargs
) -> tuple[Path, list[Path]]:
    """Lay out a repository in ``root`` (records, submission folders) and publish from its root."""
    board_dir = root / "leaderboards"
    if not (board_dir / "results").exists():
        shutil.copytree(results, board_dir / "results")
    for path in sorted((board_dir / "results").glob("*/*.json")):
        (root / json.loads(path.read_text())["submission"]["path"]).mkdir(
            parents=True, exist_ok=True
        )
    with contextlib.chdir(root):
        files = publish(Path("leaderboards/results"), Path("leaderboards"), format=fmt, **kwargs)
    return board_dir, [root / f for f in files]


@pytest.fixture(scope="module")
def rendered(tmp_path_factory):
    root = tmp_path_factory.mktemp("repo")
    out, files = render(root)
    return root, out, files


def md_tables(text: str) -> list[list[dict[str, str]]]:
    """Every markdown table of a page as a list of {header: cell} rows."""
    tables, block = [], []
    for line in text.splitlines() + [""]:
        if line.startswith("|"):
            block.append(line)
            continue
        if block:
            split = [re.split(r"(?<!\\)\|", row.strip())[1:-1] for row in block]
            head = [h.strip() for h in split[0]]
            tables.append(
                [dict(zip(head, (c.strip() for c in row), strict=True)) for row in split[2:]]
            )
            block = []
    return tables


def numbers(cell: str) -> list[float]:
    return [float(x) for x in re.findall(r"[-+]?\d+\.\d+", cell.replace("**", ""))]


# --- tests ---------------------------------------------------------------------------------------


def test_fixture_records_are_valid_and_sealed():
    paths = sorted(RESULTS.glob("*/*.json"))
    assert len(paths) == 11
    for path in paths:
        record = read_record(path)  # raises on a hash mismatch
        assert record["task"]["name"] == path.parent.name


def test_pages_match_golden_files(rendered):
    _, out, _ = rendered
    for page in PAGES:
        assert (out / page).read_text(encoding="utf-8") == (EXPECTED / page).read_text(
            encoding="utf-8"
        ), page


def test_returned_files_exist_and_cover_pages_and_figures(rendered):
    _, out, files = rendered
    names = sorted(str(f.relative_to(out)) for f in files)
    assert names == sorted(
        [
            *PAGES,
            "figures/toy-lesions-roc.png",
            "figures/toy-lesions-reliability.png",
            "figures/toy-lesions-ranks.png",
            "figures/toy-lesions-seeds.png",  # resnet has three seeds
            "figures/toy-anatomy-cases.png",
            "figures/toy-anatomy-ranks.png",
            "figures/toy-lesions-cost.png",
            "figures/toy-anatomy-cost.png",
        ]
    )
    assert all(f.is_file() for f in files)


def test_rendering_twice_gives_identical_bytes(rendered, tmp_path):
    _, out, files = rendered
    first = {f.relative_to(out): f.read_bytes() for f in files}
    out2, files2 = render(tmp_path)
    second = {f.relative_to(out2): f.read_bytes() for f in files2}
    assert first.keys() == second.keys()
    for name in first:
        assert first[name] == second[name], name


def test_a_fresh_process_renders_the_same_bytes(rendered, tmp_path):
    # Another interpreter (other hash seed, fresh matplotlib state) must write the same files.
    import subprocess
    import sys

    _, out, files = rendered
    code = (
        "import sys; from pathlib import Path; from medbench.leaderboard import publish; "
        "publish(Path(sys.argv[1]), Path(sys.argv[2]), submissions_root=Path(sys.argv[3]))"
    )
    other = tmp_path / "repo" / "leaderboards"
    subprocess.run(
        [
            sys.executable,
            "-c",
            code,
            str(RESULTS),
            str(other),
            str(tmp_path / "repo" / "submissions"),
        ],
        check=True,
        env={**os.environ, "PYTHONHASHSEED": "123"},
        timeout=120,
    )
    for f in files:
        assert (other / f.relative_to(out)).read_bytes() == f.read_bytes(), f.name


def test_figures_are_real_pngs(rendered):
    _, out, files = rendered
    pngs = [f for f in files if f.suffix == ".png"]
    assert len(pngs) == 8  # roc, reliability, ranks, seeds, cost; cases, ranks, cost
    for f in pngs:
        data = f.read_bytes()
        assert data.startswith(PNG_SIGNATURE), f
        assert len(data) > 5000, (f, len(data))
        assert b"Software" not in data[:200], f"{f} carries a Software tag"


def test_every_relative_link_resolves(rendered):
    _, out, files = rendered
    for page in (f for f in files if f.suffix == ".md"):
        links = re.findall(r"\]\(([^)]+)\)", page.read_text(encoding="utf-8"))
        assert links, page
        for link in links:
            assert not link.startswith(("http:", "https:", "/")), link
            assert (page.parent / link).exists(), f"{page.name}: {link} does not resolve"


def test_page_starts_with_generated_line_and_header(rendered):
    _, out, _ = rendered
    text = (out / "toy-lesions.md").read_text(encoding="utf-8")
    assert text.splitlines()[0] == GENERATED
    spec = get_task("toy-lesions")
    sizes = load_split(spec)["split"].value_counts()
    assert f"# {spec.title}" in text
    assert f"task version {spec.version}" in text
    assert f"train {sizes['train']}, val {sizes['val']}, test {sizes['test']} cases" in text
    assert f"`{spec.split_sha256[:12]}`" in text
    assert "higher is better" in text and spec.primary.description in text
    assert spec.policies[1][1] in text


LESIONS = get_task("toy-lesions")


def test_lesions_ties_failed_and_superseded(rendered):
    _, out, _ = rendered
    text = (out / "toy-lesions.md").read_text(encoding="utf-8")
    board, _cost, failed, excluded = md_tables(text)
    ranks = {
        re.search(r"\[(.+?)\]", r["Submission"]).group(1): r["Rank"]
        for r in board
        if r["Rank"] != "–"
    }
    assert ranks == {"cnn": "1=", "resnet": "1=", "logreg": "3"}
    assert set(ranks) == {
        "cnn",
        "resnet",
        "logreg",
    }  # broken (failed) and oldnet (old version) are not ranked
    resnet = next(r for r in board if "[resnet]" in r["Submission"])
    assert resnet["seeds"] == "0, 1, 2"
    assert re.fullmatch(r"\d\.\d{3} ± \d\.\d{3}", resnet["mean ± sd over seeds"])
    cnn = next(r for r in board if "[cnn]" in r["Submission"])
    assert cnn["seeds"] == "0"  # the seed-1 run of cnn's older content is superseded
    assert [r["Submission"] for r in failed] == ["broken"]
    assert failed[0]["Reason"] == "RuntimeError: CUDA out of memory. Tried to allocate 2.00 GiB"
    assert {r["Record"]: r["Why"] for r in excluded} == {
        "toy-lesions/cnn.seed1.json": "superseded by newer content of 'cnn'",
        "toy-lesions/oldnet.seed0.json": f"task version {LESIONS.version + 1}; current is {LESIONS.version}",
    }
    logreg = next(r for r in board if "[logreg]" in r["Submission"])
    assert logreg["p vs leader (Holm)"] == "<0.001"
    assert float(resnet["p vs leader (Holm)"]) >= 0.05  # tied: not significantly different


def test_anatomy_per_class_columns_anchor_free_and_ranked(rendered):
    _, out, _ = rendered
    text = (out / "toy-anatomy.md").read_text(encoding="utf-8")
    board = md_tables(text)[0]
    assert {"dice: disc", "dice: bar", "dice: spots"} <= set(board[0])
    otsu = next(r for r in board if "[otsu]" in r["Submission"])
    assert otsu["Rank"] == "3"
    assert [r["Rank"] for r in board if "[otsu]" not in r["Submission"]] == ["1=", "1="]
    assert "figures/toy-anatomy-cases.png" in text and "figures/toy-anatomy-ranks.png" in text


def test_index_lists_each_task_with_leader_and_entries(rendered):
    _, out, _ = rendered
    text = (out / "README.md").read_text(encoding="utf-8")
    assert text.splitlines()[0] == GENERATED
    rows = {r["Task"]: r for r in md_tables(text)[0]}
    assert set(rows) == {"[toy-anatomy](toy-anatomy.md)", "[toy-lesions](toy-lesions.md)"}
    lesions = rows["[toy-lesions](toy-lesions.md)"]
    assert lesions["Entries"] == "3" and "(tied with 1 more)" in lesions["Leader"]
    assert lesions["Best published anchor"] == "–"


def test_anchor_rows_are_unranked_italics(tmp_path):
    # jsrt-anatomy has a published anchor (Novikov et al. 2018): reuse the toy-anatomy records as if
    # they were jsrt-anatomy runs (same kind; its split and hash are jsrt-anatomy's own).
    spec = get_task("jsrt-anatomy")
    src = tmp_path / "src"
    rename = {"disc": "lungs", "bar": "heart", "spots": "clavicles"}

    def renamed(column):
        return re.sub(r"_(disc|bar|spots)$", lambda m: "_" + rename[m.group(1)], column)

    for path in sorted((RESULTS / "toy-anatomy").glob("*.json")):
        rec = read_record(path)
        rec["task"].update(name=spec.name, split_sha256=spec.split_sha256)
        rec["per_class"] = {rename[c]: v for c, v in rec["per_class"].items()}
        rec["per_case"] = {renamed(k): v for k, v in rec["per_case"].items()}
        write_record(src / spec.name / path.name, rec)
    out, _ = render(tmp_path / "repo", results=src)
    text = (out / "jsrt-anatomy.md").read_text(encoding="utf-8")
    anchor = next(r for r in md_tables(text)[0] if "anchor" in r["Submission"])
    assert anchor["Rank"] == "–"
    assert anchor["Submission"].startswith(
        "*anchor (published; protocol differs): Novikov et al. 2018 (U-Net)"
    )
    assert anchor["**dice** ↑ [95 % CI]"] == "*0.930*"
    assert anchor["dice: heart"] == "*0.938*"
    index = md_tables((out / "README.md").read_text(encoding="utf-8"))[0][0]
    assert index["Best published anchor"] == "0.930 (Novikov et al. 2018 (U-Net))"


def _markdown_rows(out: Path, task: str) -> dict[str, dict[str, str]]:
    rows = md_tables((out / f"{task}.md").read_text(encoding="utf-8"))[0]
    named = {}
    for r in rows:
        m = re.search(r"\[(.+?)\]\(", r["Submission"])
        named[m.group(1) if m else r["Submission"]] = r
    return named


@pytest.mark.parametrize("task", ["toy-lesions", "toy-anatomy"])
def test_csv_and_json_hold_the_markdown_numbers(rendered, tmp_path, task):
    _, out, _ = rendered
    md = _markdown_rows(out, task)
    csv_out, _ = render(tmp_path / "csv", fmt="csv")
    json_out, _ = render(tmp_path / "json", fmt="json")
    rows = list(csv.DictReader(io.StringIO((csv_out / f"{task}.csv").read_text(encoding="utf-8"))))
    data = json.loads((json_out / f"{task}.json").read_text(encoding="utf-8"))
    spec = get_task(task)
    p = spec.primary_metric
    ok = [r for r in rows if r["status"] == "ok"]
    assert [r["submission"] for r in ok] == [e["submission"] for e in data["entries"]]
    assert len(ok) == sum(1 for k in md if not k.startswith("*"))
    for row, entry in zip(ok, data["entries"], strict=True):
        line = md[row["submission"]]
        assert numbers(line[f"**{p}** ↑ [95 % CI]"]) == pytest.approx(
            [round(float(row[k]), 3) for k in (p, f"{p}_ci_low", f"{p}_ci_high")], abs=1e-12
        )
        assert float(row[p]) == entry["value"] and float(row[f"{p}_ci_low"]) == entry["ci_low"]
        assert (
            line["Rank"]
            == entry["rank_label"]
            == (row["rank"] + ("=" if row["tied"] == "true" else ""))
        )
        assert line["rank 95 % interval"] == f"[{row['rank_low']}, {row['rank_high']}]"
        for m in spec.metric_names:
            if m != p and f"{m} {'↑' if spec.metric(m).higher_is_better else '↓'}" in line:
                header = f"{m} {'↑' if spec.metric(m).higher_is_better else '↓'}"
                assert numbers(line[header]) == pytest.approx(
                    [round(float(row[m]), 3)], abs=1e-12
                ), m
                assert float(row[m]) == entry["metrics"][m]
        for c in spec.classes if spec.primary.per_class else ():
            assert numbers(line[f"{p}: {c}"]) == pytest.approx(
                [round(float(row[f"{p}_{c}"]), 3)], abs=1e-12
            )
        if row["delta_to_leader"]:
            assert numbers(line["Δ to leader"]) == pytest.approx(
                [round(float(row["delta_to_leader"]), 3)]
            )
        if row["p_holm"] and float(row["p_holm"]) >= 0.001:
            assert float(line["p vs leader (Holm)"]) == round(float(row["p_holm"]), 3)
    failed = [r["submission"] for r in rows if r["status"] == "failed"]
    assert failed == [f["submission"] for f in data["failed"]]


def test_tampered_record_raises_naming_the_file(tmp_path):
    results = tmp_path / "results"
    shutil.copytree(RESULTS, results)
    path = results / "toy-lesions" / "logreg.seed0.json"
    record = json.loads(path.read_text())
    record["metrics"]["auc"]["value"] = 0.999  # the hash no longer matches
    path.write_text(json.dumps(record, indent=2))
    with pytest.raises(RecordError, match=r"logreg\.seed0\.json.*record_sha256"):
        publish(results, tmp_path / "out")
    # only asking for another task does not read (or trust) that file
    assert publish(results, tmp_path / "out", tasks=["toy-anatomy"], format="json")


def test_tasks_filter_and_unknown_format(tmp_path):
    files = publish(RESULTS, tmp_path / "out", tasks=["toy-lesions"], format="csv")
    assert [f.name for f in files] == ["toy-lesions.csv"]
    with pytest.raises(MedbenchError, match="format must be one of"):
        publish(RESULTS, tmp_path / "out", format="pdf")


def test_submissions_root_controls_the_link(tmp_path):
    subs = tmp_path / "elsewhere" / "subs"
    files = publish(RESULTS, tmp_path / "lb", tasks=["toy-anatomy"], submissions_root=subs)
    text = next(f for f in files if f.suffix == ".md").read_text(encoding="utf-8")
    assert "[unet](../elsewhere/subs/unet)" in text


def test_recomputed_primary_statistic_equals_the_recorded_value():
    found = load_task_records(RESULTS)
    for task, records in found.items():
        spec = get_task(task)
        stat = statistic_for(spec)
        for _, rec in records:
            if rec["status"] != "ok":
                continue
            cases = {
                k: pd.to_numeric(pd.Series(v), errors="coerce").to_numpy(float)
                for k, v in rec["per_case"].items()
                if k != "case_id"
            }
            assert stat(cases) == pytest.approx(
                rec["metrics"][spec.primary_metric]["value"], rel=1e-12
            )


def test_latest_content_wins_even_when_older_content_has_more_seeds():
    spec = get_task("toy-lesions")
    records = load_task_records(RESULTS, ["toy-lesions"])["toy-lesions"]
    chosen = select(spec, records)
    cnn = next(e for e in chosen.entries if e.name == "cnn")
    assert cnn.seeds == (0,)
    assert cnn.record["created"] == "2024-06-11T10:00:00Z"
    # make the older content the newest: now only its seed-1 run counts
    bumped = []
    for path, rec in records:
        if rec["submission"]["name"] == "cnn" and rec["seed"] == 1:
            rec = {**rec, "created": "2024-07-01T00:00:00Z"}
        bumped.append((path, rec))
    cnn = next(e for e in select(spec, bumped).entries if e.name == "cnn")
    assert cnn.seeds == (1,)


def test_a_several_seed_entry_shows_its_seed_mean_and_keeps_its_lowest_seed_as_representative():
    board = next(b for b in build_boards(RESULTS) if b.spec.name == "toy-lesions")
    row = next(r for r in board.rows if r.entry.name == "resnet")
    resnet = row.entry
    seed0 = read_record(RESULTS / "toy-lesions" / "resnet.seed0.json")
    assert resnet.value("auc") == seed0["metrics"]["auc"]["value"]  # the representative run
    values = [
        read_record(RESULTS / "toy-lesions" / f"resnet.seed{s}.json")["metrics"]["auc"]["value"]
        for s in range(3)
    ]
    mean, sd = resnet.seed_mean_sd("auc")
    assert mean == pytest.approx(np.mean(values)) and sd == pytest.approx(np.std(values, ddof=1))
    assert row.summary.value == mean and row.summary.sd == sd  # the value shown
    assert row.summary.ci_low < mean < row.summary.ci_high
    assert row.summary.method.startswith("two-level bootstrap")
    cnn = next(r for r in board.rows if r.entry.name == "cnn")  # one seed: as recorded
    assert cnn.summary.ci_low == cnn.entry.metric("auc")["ci_low"]
    assert canonical_json(seed0)  # sanity: the record is canonical-JSON serialisable


# --- the other task kinds (records made on the fly, not committed) -------------------------------


def _softmax(z):
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def _multiclass_predictions(spec, n, rng):
    k = len(spec.classes)
    y = rng.integers(0, k, n)
    shared = rng.normal(0, 0.8, (n, k))  # two similar models: correlated errors, own noise each

    def model():
        return 1.2 * np.eye(k)[y] + shared + rng.normal(0, 0.6, (n, k))

    return y, {"good": model(), "good-too": model(), "guess": rng.normal(0, 1, (n, k))}


def _instances(n, rng, size=48):
    yy, xx = np.mgrid[:size, :size]
    truth = []
    for _ in range(n):
        lab = np.zeros((size, size), np.int32)
        for obj in range(1, rng.integers(3, 7)):
            cy, cx = rng.uniform(6, size - 6, 2)
            lab[((yy - cy) ** 2 + (xx - cx) ** 2 <= rng.uniform(3, 6) ** 2) & (lab == 0)] = obj
        truth.append(lab)
    return truth


def _instance_predictions(truth, rng):
    def shifted(s):
        return [np.roll(t, tuple(rng.integers(-s, s + 1, 2)), axis=(0, 1)) for t in truth]

    merged = [(t > 0).astype(np.int32) for t in truth]  # every object merged into one: poor
    return {"good": shifted(1), "good-too": shifted(1), "blob": merged}


def _synthetic_records(task: str, results: Path) -> None:
    spec = get_task(task)
    rng = np.random.default_rng(3)
    if spec.kind == "multiclass":
        cases = _cases(spec, "test")
        y, logits = _multiclass_predictions(spec, len(cases), rng)
        runs = {name: score(spec, _softmax(z), y, cases) for name, z in logits.items()}
    else:
        cases = pd.DataFrame({"case_id": [f"02/t{i:03d}" for i in range(40)]})
        truth = _instances(len(cases), rng)
        runs = {
            name: score(spec, p, truth, cases)
            for name, p in _instance_predictions(truth, rng).items()
        }
    for i, (name, report) in enumerate(runs.items()):
        rec = _record(
            spec, name, f"{name} entry", 1, 0, GPU, 10.0 + i, f"2024-06-1{i}T00:00:00Z", report
        )
        rec["task"]["n_test"] = len(cases)
        write_record(record_path(results, spec.name, name, 0), rec)


@pytest.mark.parametrize("task", ["messidor2-grading", "retinamnist", "ctc-u373", "dsb2018-nuclei"])
def test_other_task_kinds_rank_the_poor_entry_last(tmp_path, task):
    src = tmp_path / "src"
    _synthetic_records(task, src)
    out, files = render(tmp_path / "repo", results=src)
    rows = _markdown_rows(out, task)
    ranked = {k: v for k, v in rows.items() if not k.startswith("*")}
    poor = "guess" if get_task(task).kind == "multiclass" else "blob"
    assert ranked[poor]["Rank"] == "3", ranked
    assert {ranked[k]["Rank"] for k in ("good", "good-too")} in ({"1="}, {"1", "2"})
    assert ranked[poor]["rank 95 % interval"] == "[3, 3]"
    figures = sorted(f.name for f in files if f.suffix == ".png")
    expected = [f"{task}-ranks.png", f"{task}-cost.png"] + (
        [f"{task}-cases.png"] if get_task(task).kind != "multiclass" else []
    )
    assert figures == sorted(expected)
    if task == "retinamnist":  # anchors of two metrics from one paper share one row
        anchors = [k for k in rows if k.startswith("*anchor")]
        assert len(anchors) == 2
        resnet = next(rows[k] for k in anchors if "ResNet-18 (28)" in k)
        assert (
            resnet["**macro_auc** ↑ [95 % CI]"] == "*0.717*" and resnet["accuracy ↑"] == "*0.524*"
        )
    if task == "ctc-u373":
        text = (out / f"{task}.md").read_text(encoding="utf-8")
        assert "train 1, val 0, test 1 sequences in the split file; 40 test images scored" in text


def test_task_with_only_failed_runs_lists_them_and_ranks_nothing(tmp_path):
    src = tmp_path / "src" / "toy-lesions"
    src.mkdir(parents=True)
    shutil.copy(RESULTS / "toy-lesions" / "broken.seed0.json", src)
    out, files = render(tmp_path / "repo", results=tmp_path / "src")
    assert sorted(f.name for f in files) == [
        "README.md",
        "toy-lesions.md",
    ]  # no figures without entries
    text = (out / "toy-lesions.md").read_text(encoding="utf-8")
    assert "No successful runs yet." in text and "## Failed runs" in text
    index = md_tables((out / "README.md").read_text(encoding="utf-8"))[0]
    assert index[0]["Leader"] == "–" and index[0]["Entries"] == "0"
