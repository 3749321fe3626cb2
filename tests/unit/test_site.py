"""The static HTML site (``medbench leaderboard --format html``) from the fixture records.

What a browser does with the pages is tested in tests/integration/test_site_browser.py (headless
Chromium and a text browser); here: the files, their bytes, their markup and their numbers.
"""

from __future__ import annotations

import html
import json
import os
import re
import shutil
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path

import pytest
from test_leaderboard import RESULTS, render

from medbench.errors import MedbenchError
from medbench.leaderboard import build_boards, publish
from medbench.leaderboard.export import board_data
from medbench.leaderboard.html import GENERATED
from medbench.results import read_record, seal
from medbench.tasks import get_task

VOID = {"meta", "link", "br", "img", "input", "hr", "source", "wbr", "col", "area"}
SVG_EMPTY = {"rect", "line", "circle", "path"}  # written as <x .../>


class Markup(HTMLParser):
    """Checks that every element is closed in order, and collects what the tests look at."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.stack: list[str] = []
        self.errors: list[str] = []
        self.starts: list[tuple[str, dict[str, str | None]]] = []
        self.text: list[str] = []

    def handle_starttag(self, tag, attrs):
        self.starts.append((tag, dict(attrs)))
        if tag not in VOID:
            self.stack.append(tag)

    def handle_startendtag(self, tag, attrs):
        self.starts.append((tag, dict(attrs)))

    def handle_endtag(self, tag):
        if not self.stack or self.stack[-1] != tag:
            self.errors.append(f"</{tag}> closes {self.stack[-1:] or 'nothing'}")
            return
        self.stack.pop()

    def handle_data(self, data):
        self.text.append(data)


def parse(path: Path) -> Markup:
    m = Markup()
    m.feed(path.read_text(encoding="utf-8"))
    m.close()
    assert not m.errors, (path.name, m.errors[:5])
    assert not m.stack, (path.name, m.stack)
    return m


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    root = tmp_path_factory.mktemp("repo")
    out, files = render(root, fmt="html")
    return root, out, files


def test_site_files_are_pages_figures_and_assets(site):
    _, out, files = site
    names = sorted(str(f.relative_to(out)) for f in files)
    assert names == sorted(
        [
            "index.html",
            "toy-anatomy.html",
            "toy-lesions.html",
            "assets/medbench.css",
            "assets/medbench.js",
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
    for page in (f for f in files if f.suffix == ".html"):
        text = page.read_text(encoding="utf-8")
        assert text.startswith("<!DOCTYPE html>\n" + GENERATED + "\n"), page.name
        parse(page)


def test_the_site_needs_no_network(site):
    _, out, files = site
    for page in (f for f in files if f.suffix == ".html"):
        for tag, attrs in parse(page).starts:
            for key in ("src", "href"):
                url = attrs.get(key)
                if url is None or (tag == "a" and key == "href"):
                    continue  # links may point anywhere; what a page loads must be local
                assert not re.match(r"^[a-z]+:", url), (page.name, tag, url)
                assert (page.parent / url).is_file(), (page.name, url)


def test_every_relative_link_resolves(site):
    _, out, files = site
    for page in (f for f in files if f.suffix == ".html"):
        links = [a["href"] for t, a in parse(page).starts if t == "a" and a.get("href")]
        assert links, page.name
        for link in links:
            if link.startswith("#"):
                assert f'id="{link[1:]}"' in page.read_text(encoding="utf-8"), (page.name, link)
                continue
            assert not link.startswith(("http:", "https:", "/", "javascript:")), link
            assert (page.parent / link).exists(), f"{page.name}: {link} does not resolve"


def test_rendering_twice_and_in_a_fresh_process_gives_the_same_bytes(site, tmp_path):
    _, out, files = site
    out2, files2 = render(tmp_path / "a", fmt="html")
    assert [f.relative_to(out2) for f in files2] == [f.relative_to(out) for f in files]
    for a, b in zip(files, files2, strict=True):
        assert a.read_bytes() == b.read_bytes(), a.name
    code = (
        "import sys; from pathlib import Path; from medbench.leaderboard import publish; "
        "publish(Path(sys.argv[1]), Path(sys.argv[2]), format='html', "
        "submissions_root=Path(sys.argv[3]))"
    )
    other = tmp_path / "b" / "leaderboards"
    subprocess.run(
        [sys.executable, "-c", code, str(out / "results"), str(other), str(tmp_path / "s")],
        check=True,
        # a bare environment, but the medbench under test (PYTHONPATH, when it names it)
        env={"PYTHONHASHSEED": "99", "PATH": "/usr/bin:/bin"}
        | {k: v for k, v in os.environ.items() if k == "PYTHONPATH"},
        timeout=120,
    )
    for f in files:
        if f.suffix != ".html":  # pages link to the submission root, which differs here
            assert (other / f.relative_to(out)).read_bytes() == f.read_bytes(), f.name


def _rows(page: Path) -> list[dict[str, str]]:
    """The entry rows of a page's leaderboard: column title -> data-value, in page order."""
    text = page.read_text(encoding="utf-8")
    table = text[text.index('<table class="sortable" id="board">') :]
    table = table[: table.index("</table>")]
    heads = [
        html.unescape(re.sub(r"<[^>]+>", "", h))
        for h in re.findall(r"<th scope=\"col\"[^>]*>(.*?)</th>", table)
    ]
    body = table[table.index('<tbody class="entries">') : table.index("</tbody>")]
    rows = []
    for tr in re.findall(r"<tr data-order[^>]*>(.*?)</tr>", body, flags=re.S):
        values = re.findall(r"<t[hd][^>]*data-value=\"([^\"]*)\"", tr)
        rows.append(dict(zip(heads, values, strict=False)))
    return rows


def test_table_values_are_the_board_numbers(site):
    root, out, _ = site
    for board in build_boards(out / "results"):
        data = board_data(board)
        rows = _rows(out / f"{board.spec.name}.html")
        p = board.spec.primary_metric
        assert len(rows) == len(data["entries"]) > 0
        for row, e in zip(rows, data["entries"], strict=True):
            assert row["Submission"] == e["submission"]
            assert float(row[next(h for h in row if h.startswith(p))]) == e["value"]
            assert row["Rank"] == ("" if e["rank"] is None else str(e["rank"]))


def test_page_holds_the_markdown_pages_text(site, tmp_path):
    # Same blocks as the markdown page: every CI, note and heading shows up on the HTML page.
    root, out, _ = site
    md_out, _ = render(tmp_path, fmt="markdown")
    for name in ("toy-lesions", "toy-anatomy"):
        page = " ".join(parse(out / f"{name}.html").text)
        md = (md_out / f"{name}.md").read_text(encoding="utf-8")
        for ci in re.findall(r"\d\.\d{3} \[\d\.\d{3}, \d\.\d{3}\]", md):
            assert ci in page, (name, ci)
        for heading in re.findall(r"^## (.+)$", md, flags=re.M):
            assert heading in page, (name, heading)
        assert "How to read this table:" in page


def test_tables_use_header_scopes_and_rows_share_tie_bands(site):
    _, out, _ = site
    text = (out / "toy-lesions.html").read_text(encoding="utf-8")
    assert "<th>" not in text  # every header cell says what it heads
    assert text.count('<th scope="row"') == len(_rows(out / "toy-lesions.html"))
    groups = re.findall(r'<tr data-order="\d+" class="band-(\d)" data-group="rank ([^"]+)"', text)
    assert groups
    for (band_a, rank_a), (band_b, rank_b) in zip(groups, groups[1:], strict=False):
        same = rank_a.rstrip("=") == rank_b.rstrip("=")
        assert (band_a == band_b) == same, (rank_a, rank_b)


def test_each_row_opens_to_its_record(site):
    _, out, _ = site
    text = (out / "toy-lesions.html").read_text(encoding="utf-8")
    checked = 0
    for path in sorted((out / "results" / "toy-lesions").glob("*.json")):
        record = read_record(path)
        if record["status"] != "ok" or record["task"]["version"] != get_task("toy-lesions").version:
            continue
        sub = record["submission"]
        if sub["content_sha256"] not in text:
            assert f"record of {sub['name']}" in text  # a superseded content of a listed entry
            continue
        assert record["record_sha256"] in text, path.name
        checked += 1
    assert checked >= 3
    assert text.count("<details>") == len(_rows(out / "toy-lesions.html"))


def test_ci_plots_one_per_metric_with_a_chooser(site):
    _, out, _ = site
    text = (out / "toy-lesions.html").read_text(encoding="utf-8")
    plotted = re.findall(r'<figure class="ci-plot" data-metric="([^"]+)">', text)
    options = re.findall(r'<option value="([^"]+)"', text)
    assert plotted == options and plotted[0] == "auc" and len(plotted) > 1
    n_rows = len(_rows(out / "toy-lesions.html"))
    for block in text.split('<figure class="ci-plot"')[1:]:
        assert block.count("<circle") <= n_rows and block.count("<rect") == n_rows


def test_hostile_text_in_records_is_shown_as_text(tmp_path):
    results = tmp_path / "results"
    shutil.copytree(RESULTS, results)
    failed = next(
        p for p in (results / "toy-lesions").glob("*.json") if json.loads(p.read_text())["error"]
    )
    record = json.loads(failed.read_text())
    attack = '<script>alert("x")</script><img src=x onerror=alert(1)> [a](javascript:alert(1))'
    record["error"]["message"] = record["error"]["log_tail"] = attack
    record.pop("record_sha256")
    failed.write_text(json.dumps(seal(record)))
    root = tmp_path / "repo"
    out, _ = render(root, fmt="html", results=results)
    text = (out / "toy-lesions.html").read_text(encoding="utf-8")
    assert text.count("<script") == 1  # ours, in the head
    assert "<img src=x" not in text and 'href="javascript:' not in text
    assert "&lt;script&gt;alert" in text


def test_format_all_writes_every_format_and_the_site_beside(tmp_path):
    out, files = render(tmp_path, fmt="all")
    names = {str(f.relative_to(out)) for f in files}
    for expected in ("README.md", "toy-lesions.md", "toy-lesions.csv", "toy-lesions.json"):
        assert expected in names
    assert {"site/index.html", "site/toy-lesions.html", "site/assets/medbench.js"} <= names
    assert (out / "figures" / "toy-lesions-roc.png").read_bytes() == (
        out / "site" / "figures" / "toy-lesions-roc.png"
    ).read_bytes()


def test_unknown_format_names_the_choices(tmp_path):
    with pytest.raises(MedbenchError, match="html"):
        publish(RESULTS, tmp_path, format="pdf")
