"""The published leaderboards are what the committed records say, for the committed submissions.

Anyone can check a leaderboard page: the records under ``leaderboards/results/`` are sealed,
each names the content hash of the submission folder it ran, and ``medbench leaderboard``
renders the pages from them alone. These tests hold the repository to that.
"""

from __future__ import annotations

import contextlib
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from medbench.cli import app
from medbench.leaderboard import publish
from medbench.results import read_record
from medbench.submission.loader import content_hash

ROOT = Path(__file__).resolve().parents[2]
BOARDS = ROOT / "leaderboards"
RECORDS = sorted((BOARDS / "results").glob("*/*.json"))
SUBMISSIONS = sorted(p.parent for p in (ROOT / "submissions").glob("*/submission.toml"))


def test_there_are_published_records_and_submissions():
    assert len(RECORDS) >= 10
    assert {p.name for p in SUBMISSIONS} >= {"dummy", "unet", "cnn", "lbp-svm"}


@pytest.mark.parametrize("path", RECORDS, ids=lambda p: f"{p.parent.name}/{p.stem}")
def test_each_record_is_sealed_and_ran_the_committed_submission(path):
    record = read_record(path)  # verifies the seal: refuses a record edited after it was made
    assert record["status"] == "ok"
    if record.get("ensemble"):  # no code of its own: its members are committed runs, unchanged
        for m in record["ensemble"]["members"]:
            member = read_record(path.parent / m["record"])
            assert member["record_sha256"] == m["record_sha256"], (
                f"{path}: its member {m['record']} changed: re-run `medbench ensemble`"
            )
            assert not member.get("ensemble") or m["record"] != path.name
        return
    if record.get("derived"):  # a fine-task run scored on this coarse task: that run, unchanged
        fine = read_record((path.parent / record["derived"]["fine_record"]).resolve())
        assert fine["record_sha256"] == record["derived"]["fine_record_sha256"], (
            f"{path}: its fine record changed: run `medbench coarse` on it again"
        )
    folder = ROOT / record["submission"]["path"]
    assert folder.is_dir(), f"{path} names a submission folder that is gone: {folder}"
    assert content_hash(folder) == record["submission"]["content_sha256"], (
        f"{folder} changed after {path} was made: re-run it (scripts/reference.sh)"
    )


def test_leaderboard_pages_render_byte_for_byte_from_the_records(tmp_path):
    # A second repository with the same records and submissions; the pages and the static site
    # (leaderboards/site) are rendered afresh, in one pass (--format all).
    shutil.copytree(BOARDS / "results", tmp_path / "leaderboards" / "results")
    shutil.copytree(ROOT / "submissions", tmp_path / "submissions")
    with contextlib.chdir(tmp_path):
        written = publish(Path("leaderboards/results"), Path("leaderboards"), format="all")
    pages = sorted(tmp_path / p for p in written if p.suffix == ".md")
    committed = sorted(BOARDS.glob("*.md"))
    assert [p.name for p in pages] == [p.name for p in committed]
    for new, old in zip(pages, committed, strict=True):
        assert new.read_text() == old.read_text(), (
            f"{old} differs from what the records render: run `medbench leaderboard`"
        )
    site = tmp_path / "leaderboards" / "site"
    fresh = sorted(str(p.relative_to(site)) for p in site.rglob("*") if p.is_file())
    kept = sorted(
        str(p.relative_to(BOARDS / "site")) for p in (BOARDS / "site").rglob("*") if p.is_file()
    )
    assert fresh == kept, "run `medbench leaderboard --format html --out leaderboards/site`"
    for name in fresh:
        assert (site / name).read_bytes() == (BOARDS / "site" / name).read_bytes(), (
            f"leaderboards/site/{name} differs from what the records render: run "
            "`medbench leaderboard --format html --out leaderboards/site`"
        )


@pytest.mark.parametrize("folder", SUBMISSIONS, ids=lambda p: p.name)
def test_each_reference_submission_passes_check(folder):
    result = CliRunner().invoke(app, ["check", str(folder)])
    assert result.exit_code == 0, result.output
