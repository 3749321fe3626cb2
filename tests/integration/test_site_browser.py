"""The committed static site (``leaderboards/site``) in real browsers.

Headless Chromium (Debian's ``/usr/bin/chromium``, driven by Playwright; never ``playwright
install``) loads every page from ``file://``: no request leaves the file system, no script error,
every image decodes, every link resolves; sorting by a column (mouse and keyboard) orders the
rows, a row opens to its record, the metric chooser switches the plot. A text browser (w3m)
reads the same pages. In CI (``MEDBENCH_REQUIRE_BROWSER=1``) a missing browser is a failure;
elsewhere these tests are skipped with a message.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path
from urllib.parse import unquote, urlparse

import pytest

ROOT = Path(__file__).resolve().parents[2]
SITE = ROOT / "leaderboards" / "site"
CHROMIUM = os.environ.get("MEDBENCH_CHROMIUM", "/usr/bin/chromium")
REQUIRED = os.environ.get("MEDBENCH_REQUIRE_BROWSER") == "1"
PAGES = sorted(p.name for p in SITE.glob("*.html"))


def _missing(what: str) -> None:
    if REQUIRED:
        pytest.fail(f"{what} (MEDBENCH_REQUIRE_BROWSER=1: CI must have it)")
    pytest.skip(f"{what}; install it to run the browser tests (apt-get install chromium w3m)")


@pytest.fixture(scope="module")
def browser():
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _missing("playwright is not installed (pip install playwright; no `playwright install`)")
    if not Path(CHROMIUM).is_file():
        _missing(f"no Chromium at {CHROMIUM}")
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, headless=True)
        yield b
        b.close()


class Page:
    """A loaded page and what it asked for and complained about."""

    def __init__(self, browser, name: str, *, javascript: bool = True) -> None:
        self.context = browser.new_context(
            java_script_enabled=javascript, viewport={"width": 1400, "height": 900}
        )
        self.page = self.context.new_page()
        self.requests: list[str] = []
        self.errors: list[str] = []
        self.page.on("request", lambda r: self.requests.append(r.url))
        self.page.on("pageerror", lambda e: self.errors.append(str(e)))
        self.page.on("console", lambda m: self.errors.append(m.text) if m.type == "error" else None)
        self.page.goto((SITE / name).as_uri())

    def close(self) -> None:
        self.context.close()

    def column(self, title_start: str) -> list[str]:
        """The data-value of each entry row in one column, in displayed order."""
        return self.page.evaluate(
            """(start) => {
                const table = document.getElementById("board");
                const heads = Array.from(table.tHead.rows[0].cells);
                const col = heads.findIndex(h => h.textContent.trim().startsWith(start));
                if (col < 0) throw new Error("no column " + start);
                const rows = table.tBodies[0].querySelectorAll("tr[data-order]");
                return Array.from(rows, r => r.cells[col].getAttribute("data-value"));
            }""",
            title_start,
        )


@pytest.fixture
def open_page(browser):
    opened: list[Page] = []

    def opener(name: str, **kw) -> Page:
        opened.append(Page(browser, name, **kw))
        return opened[-1]

    yield opener
    for p in opened:
        p.close()


def test_the_committed_site_has_a_page_per_leaderboard():
    assert SITE.is_dir(), "run `medbench leaderboard --format html --out leaderboards/site`"
    markdown = sorted(p.stem for p in (ROOT / "leaderboards").glob("*.md") if p.stem != "README")
    assert PAGES == sorted(["index.html", *(f"{m}.html" for m in markdown)])


@pytest.mark.parametrize("name", PAGES)
def test_page_loads_offline_with_every_image_and_link(open_page, name):
    view = open_page(name)
    page = view.page
    assert view.errors == []
    assert all(urlparse(u).scheme == "file" for u in view.requests), view.requests
    images = page.evaluate(
        "() => Array.from(document.images, i => [i.getAttribute('src'), i.complete, i.naturalWidth])"
    )
    for src, complete, width in images:
        assert complete and width > 0, f"{name}: {src} did not load"
    links = page.evaluate("() => Array.from(document.links, a => a.href)")
    assert links
    for url in links:
        parsed = urlparse(url)
        assert parsed.scheme == "file", f"{name}: {url} leaves the site"
        target = Path(unquote(parsed.path))
        assert target.exists(), f"{name}: {url} does not resolve"
        if parsed.fragment and target == SITE / name:
            assert page.locator(f"#{parsed.fragment}").count() == 1, url
    assert page.locator("table th[scope]").count() > 0
    assert page.locator("table th:not([scope])").count() == 0


def _numbers(values: list[str]) -> list[float]:
    return [float(v) for v in values if v != ""]


def test_clicking_a_column_title_sorts_the_rows(open_page):
    view = open_page("pneumoniamnist.html")
    page = view.page
    ranks = _numbers(view.column("Rank"))
    assert ranks == sorted(ranks)  # the page opens in rank order
    brier = page.locator("#board thead button", has_text="brier")
    brier.click()  # lower is better: the first click puts the best first
    values = _numbers(view.column("brier"))
    assert values == sorted(values) and values != _numbers(view.column("Rank"))
    assert page.locator("#board thead th", has_text="brier").get_attribute("aria-sort") == (
        "ascending"
    )
    brier.click()
    assert _numbers(view.column("brier")) == sorted(values, reverse=True)
    page.locator("#board thead button", has_text="accuracy@0.5").click()  # higher is better
    acc = _numbers(view.column("accuracy@0.5"))
    assert acc == sorted(acc, reverse=True)
    assert page.locator(".sort-status").inner_text().startswith("Sorted by accuracy@0.5")


def test_sorting_works_from_the_keyboard(open_page):
    view = open_page("pneumoniamnist.html")
    page = view.page
    button = page.locator("#board thead button", has_text="Submission")
    button.focus()
    page.keyboard.press("Enter")
    names = view.column("Submission")
    assert names == sorted(names, key=str.lower) and len(names) > 2
    page.keyboard.press("Space")
    assert view.column("Submission") == sorted(names, key=str.lower, reverse=True)


def test_missing_values_sort_last_both_ways(open_page):
    view = open_page("jsrt-nodule.html")
    page = view.page
    button = page.locator("#board thead button", has_text="Δ to leader")
    for _ in range(2):
        button.click()
        values = view.column("Δ to leader")
        assert values[-1] == "" and "" not in values[:-1]  # the leader has no Δ


def test_a_row_opens_to_its_record(open_page):
    view = open_page("pneumoniamnist.html")
    page = view.page
    first = page.locator("#board tbody.entries tr[data-order]").first
    name = first.locator("th").get_attribute("data-value")
    details = page.locator("#board tbody.entries tr.record").first.locator("details")
    assert details.locator("summary").inner_text() == f"record of {name}"
    assert details.get_attribute("open") is None
    assert not details.locator("dl").is_visible()
    details.locator("summary").click()
    assert details.get_attribute("open") is not None and details.locator("dl").is_visible()
    text = details.inner_text()
    record = json.loads(
        (ROOT / "leaderboards/results/pneumoniamnist" / f"{name}.seed0.json").read_text()
    )
    assert record["submission"]["content_sha256"] in text
    assert record["record_sha256"] in text and record["task"]["split_sha256"] in text
    assert f"epochs = {record['train']['epochs']}" in text if "epochs" in record["train"] else True


def test_the_metric_chooser_switches_the_ci_plot(open_page):
    view = open_page("pneumoniamnist.html")
    page = view.page
    plots = page.locator("figure.ci-plot")
    assert plots.count() > 2
    visible = [
        m
        for m in page.evaluate(
            "() => Array.from(document.querySelectorAll('figure.ci-plot'), f => [f.dataset.metric, !f.hidden])"
        )
        if m[1]
    ]
    assert [m for m, _ in visible] == ["auc"]
    page.select_option("#ci-metric", "brier")
    assert page.locator('figure.ci-plot[data-metric="brier"]').is_visible()
    assert not page.locator('figure.ci-plot[data-metric="auc"]').is_visible()


def test_without_javascript_the_page_is_complete(open_page):
    view = open_page("pneumoniamnist.html", javascript=False)
    page = view.page
    ranks = _numbers(view.column("Rank"))
    assert ranks == sorted(ranks) and len(ranks) > 2
    plots = page.locator("figure.ci-plot")
    assert all(plots.nth(i).is_visible() for i in range(plots.count()))


def test_index_links_to_each_task_page(open_page):
    view = open_page("index.html")
    page = view.page
    rows = page.locator("#index tbody tr")
    assert rows.count() == len(PAGES) - 1
    page.locator("#index a", has_text="pneumoniamnist").click()
    page.wait_for_load_state()
    assert page.url.endswith("/pneumoniamnist.html")
    assert "PneumoniaMNIST" in page.title()


def test_screenshot_of_a_page(open_page, tmp_path):
    view = open_page("pneumoniamnist.html")
    png = view.page.screenshot(full_page=False)
    assert png.startswith(b"\x89PNG\r\n\x1a\n") and len(png) > 20_000


@pytest.mark.parametrize("name", ["index.html", "pneumoniamnist.html", "jsrt-anatomy.html"])
def test_a_text_browser_reads_the_page(name):
    w3m = shutil.which("w3m")
    if w3m is None:
        _missing("w3m (a text browser) is not installed")
    text = subprocess.run(
        [w3m, "-dump", "-cols", "200", str(SITE / name)],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    ).stdout
    if name == "index.html":
        for page in PAGES:
            if page != "index.html":
                assert page.removesuffix(".html") in text
    else:
        from medbench.leaderboard import build_boards
        from medbench.leaderboard.export import board_data

        (board,) = build_boards(
            ROOT / "leaderboards" / "results", tasks=[name.removesuffix(".html")]
        )
        leader = board_data(board)["entries"][0]  # what the page shows, seeds and all
        # a narrow column may put the interval on the cell's next line; both are there
        assert f"{leader['value']:.3f}" in text
        assert f"[{leader['ci_low']:.3f}, {leader['ci_high']:.3f}]" in text
        assert "How to read this table" in text
